/*
 * A simulated host: a parsed dump written out in the shape of /sys/bus/pci,
 * so that libpci's linux-sysfs method (and real lspci with
 * `-A linux-sysfs -O sysfs.path=DIR`) reads it like the machine it came from.
 *
 * What libpci 3.9 reads per function: `vendor`, `device`, `class`, `irq`
 * (mandatory), `subsystem_vendor`, `subsystem_device`, `revision` (optional),
 * `resource` (start end flags per line: 6 BARs, the ROM, 6 SR-IOV lines, and
 * for bridges 4 window lines), `config`, and the `driver` link's basename.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <pci/pci.h>

#include "host-dump.h"

/* Linux's bus-specific ROM resource bits (include/linux/ioport.h). */
#define SIM_IORESOURCE_ROM_ENABLE  0x1
#define SIM_IORESOURCE_ROM_SHADOW  0x2
/* A BAR the firmware left unassigned: start 0, the size kept. */
#define SIM_IORESOURCE_UNSET       0x20000000
/* Lines Linux prints after the ROM: 6 SR-IOV BARs, then bridge windows. */
#define SIM_IOV_LINES     6
#define SIM_BRIDGE_LINES  4
#define SIM_PCIBACK       "pciback"

typedef struct SimCtx {
    const char *dir;
    int devices_fd;
    int drivers_fd;
    PtError *err;
} SimCtx;

static int sim_fail(PtError *err, int rc, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int sim_fail(PtError *err, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (err)
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

static const char *bdf_name(PtBdf b, char *buf, size_t len)
{
    snprintf(buf, len, "%04x:%02x:%02x.%x", b.domain, b.bus, b.dev, b.func);
    return buf;
}

static unsigned cfg16(const DumpFunc *fn, unsigned off)
{
    return (unsigned)fn->config[off] | (unsigned)fn->config[off + 1] << 8;
}

static uint64_t cfg32(const DumpFunc *fn, unsigned off)
{
    return cfg16(fn, off) | (uint64_t)cfg16(fn, off + 2) << 16;
}

static unsigned header_type(const DumpFunc *fn)
{
    return fn->config[PCI_HEADER_TYPE] & 0x7f;
}

/* Write a whole file in the device directory; the name is for messages. */
static int write_file(SimCtx *c, int dirfd, const char *rel, const char *file,
                      const void *data, size_t len, mode_t mode)
{
    const char *p = data;
    int fd, rc = 0;

    fd = openat(dirfd, file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return sim_fail(c->err, -errno, "%s/%s/%s: %s", c->dir, rel, file, strerror(errno));
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = sim_fail(c->err, n < 0 ? -errno : -EIO, "%s/%s/%s: %s", c->dir, rel,
                          file, n < 0 ? strerror(errno) : "short write");
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) < 0 && !rc)
        rc = sim_fail(c->err, -errno, "%s/%s/%s: %s", c->dir, rel, file, strerror(errno));
    return rc;
}

static int write_text(SimCtx *c, int dirfd, const char *rel, const char *file,
                      const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static int write_text(SimCtx *c, int dirfd, const char *rel, const char *file,
                      const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return write_file(c, dirfd, rel, file, buf, (size_t)n, 0444);
}

/* Offset of the bridge's Subsystem ID capability, 0 if none. */
static unsigned find_ssvid_cap(const DumpFunc *fn)
{
    unsigned pos = fn->config[PCI_CAPABILITY_LIST] & ~3u;

    if (!(cfg16(fn, PCI_STATUS) & PCI_STATUS_CAP_LIST))
        return 0;
    /* 48 hops at most: a capability list cannot be longer, loops end here. */
    for (int hops = 0; hops < 48 && pos >= 0x40 && pos + 8 <= fn->config_len; hops++) {
        if (fn->config[pos + PCI_CAP_LIST_ID] == PCI_CAP_ID_SSVID)
            return pos;
        pos = fn->config[pos + PCI_CAP_LIST_NEXT] & ~3u;
    }
    return 0;
}

/* Where the subsystem IDs live: by header type, as Linux reads them. */
static unsigned subsys_offset(const DumpFunc *fn)
{
    unsigned cap;

    switch (header_type(fn)) {
    case PCI_HEADER_TYPE_NORMAL:
        return PCI_SUBSYSTEM_VENDOR_ID;
    case PCI_HEADER_TYPE_CARDBUS:
        return fn->config_len > PCI_CB_SUBSYSTEM_ID ? PCI_CB_SUBSYSTEM_VENDOR_ID : 0;
    case PCI_HEADER_TYPE_BRIDGE:
        cap = find_ssvid_cap(fn);
        return cap ? cap + PCI_SSVID_VENDOR : 0;
    default:
        return 0;
    }
}

/*
 * A function that reads all ones now (powered off) was enumerated when it
 * was on: Linux's sysfs keeps the IDs it read then, which the dump's device
 * line names (lspci -nn).
 */
static bool ids_from_text(const DumpFunc *fn)
{
    return fn->has_text_ids && host_dump_reads_all_ones(fn);
}

static unsigned get_vendor(const DumpFunc *fn)
{
    return ids_from_text(fn) ? fn->text_vendor : cfg16(fn, PCI_VENDOR_ID);
}

static unsigned get_device(const DumpFunc *fn)
{
    return ids_from_text(fn) ? fn->text_device : cfg16(fn, PCI_DEVICE_ID);
}

static unsigned get_revision(const DumpFunc *fn) { return fn->config[PCI_REVISION_ID]; }

static unsigned get_class(const DumpFunc *fn)
{
    if (ids_from_text(fn) && fn->text_class >= 0)
        return (unsigned)fn->text_class << 8;
    return (unsigned)(cfg32(fn, PCI_REVISION_ID) >> 8);
}

static unsigned get_subsys_vendor(const DumpFunc *fn)
{
    unsigned off = subsys_offset(fn);
    return off ? cfg16(fn, off) : 0;
}

static unsigned get_subsys_device(const DumpFunc *fn)
{
    unsigned off = subsys_offset(fn);
    return off ? cfg16(fn, off + 2) : 0;
}

/*
 * The kernel's IRQ from the -vvv text; a hex-only dump has none, and then
 * the BIOS-assigned interrupt line is the best evidence there is.
 */
static unsigned get_irq(const DumpFunc *fn)
{
    if (host_dump_reads_all_ones(fn))
        return 0;           /* the all-ones "interrupt line" is no evidence */
    if (fn->irq)
        return (unsigned)fn->irq;
    return fn->config[PCI_INTERRUPT_PIN] ? fn->config[PCI_INTERRUPT_LINE] : 0;
}

typedef struct ValueFile {
    const char *name;
    const char *fmt;
    unsigned (*get)(const DumpFunc *fn);
} ValueFile;

/* One-value files, in the formats Linux's pci-sysfs.c prints. */
static const ValueFile value_files[] = {
    { "vendor",           "0x%04x\n", get_vendor },
    { "device",           "0x%04x\n", get_device },
    { "class",            "0x%06x\n", get_class },
    { "revision",         "0x%02x\n", get_revision },
    { "subsystem_vendor", "0x%04x\n", get_subsys_vendor },
    { "subsystem_device", "0x%04x\n", get_subsys_device },
    { "irq",              "%u\n",     get_irq },
};

static void resource_line(GString *out, uint64_t start, uint64_t size, uint64_t flags)
{
    uint64_t end = size ? start + size - 1 : start;

    if (!start && !size)
        flags = 0;          /* unimplemented: Linux prints an all-zero line */
    g_string_append_printf(out, "0x%016llx 0x%016llx 0x%016llx\n",
                           (unsigned long long)start, (unsigned long long)end,
                           (unsigned long long)flags);
}

/* Linux's flags for a BAR: resource type bits plus the register's low bits. */
static uint64_t bar_flags(const HostBar *bar)
{
    uint64_t f;

    if (bar->io)
        return PCI_IORESOURCE_IO | PCI_BASE_ADDRESS_SPACE_IO;
    f = PCI_IORESOURCE_MEM;
    if (bar->mem64)
        f |= PCI_IORESOURCE_MEM_64 | PCI_BASE_ADDRESS_MEM_TYPE_64;
    if (bar->prefetch)
        f |= PCI_IORESOURCE_PREFETCH | PCI_BASE_ADDRESS_MEM_PREFETCH;
    return f;
}

static uint64_t unset(const HostBar *bar)
{
    return bar->size && !bar->base ? SIM_IORESOURCE_UNSET : 0;
}

static uint64_t rom_flags(const DumpFunc *fn, const HostBar *rom)
{
    unsigned reg = header_type(fn) == PCI_HEADER_TYPE_BRIDGE ? PCI_ROM_ADDRESS1
                                                             : PCI_ROM_ADDRESS;
    uint64_t f = PCI_IORESOURCE_MEM | PCI_IORESOURCE_PREFETCH;

    if (cfg32(fn, reg) & PCI_ROM_ADDRESS_ENABLE)
        f |= SIM_IORESOURCE_ROM_ENABLE;
    if (rom->base && !(cfg32(fn, reg) & PCI_ROM_ADDRESS_MASK))
        f |= SIM_IORESOURCE_ROM_SHADOW;   /* lspci shows "[virtual]" */
    return f;
}

typedef struct Window {
    uint64_t base, limit, flags;
} Window;

static Window bridge_io(const DumpFunc *fn)
{
    unsigned lo = fn->config[PCI_IO_BASE], hi = fn->config[PCI_IO_LIMIT];
    Window w = { (uint64_t)(lo & PCI_IO_RANGE_MASK) << 8,
                 ((uint64_t)(hi & PCI_IO_RANGE_MASK) << 8) | 0xfff, PCI_IORESOURCE_IO };

    if ((lo & PCI_IO_RANGE_TYPE_MASK) == PCI_IO_RANGE_TYPE_32) {
        w.base |= (uint64_t)cfg16(fn, PCI_IO_BASE_UPPER16) << 16;
        w.limit |= (uint64_t)cfg16(fn, PCI_IO_LIMIT_UPPER16) << 16;
    }
    return w;
}

static Window bridge_mem(const DumpFunc *fn)
{
    return (Window){ (uint64_t)(cfg16(fn, PCI_MEMORY_BASE) & PCI_MEMORY_RANGE_MASK) << 16,
                     ((uint64_t)(cfg16(fn, PCI_MEMORY_LIMIT) & PCI_MEMORY_RANGE_MASK) << 16)
                     | 0xfffff, PCI_IORESOURCE_MEM };
}

static Window bridge_pref(const DumpFunc *fn)
{
    unsigned lo = cfg16(fn, PCI_PREF_MEMORY_BASE);
    Window w = { (uint64_t)(lo & PCI_PREF_RANGE_MASK) << 16,
                 ((uint64_t)(cfg16(fn, PCI_PREF_MEMORY_LIMIT) & PCI_PREF_RANGE_MASK) << 16)
                 | 0xfffff, PCI_IORESOURCE_MEM | PCI_IORESOURCE_PREFETCH };

    if ((lo & PCI_PREF_RANGE_TYPE_MASK) == PCI_PREF_RANGE_TYPE_64) {
        w.base |= cfg32(fn, PCI_PREF_BASE_UPPER32) << 32;
        w.limit |= cfg32(fn, PCI_PREF_LIMIT_UPPER32) << 32;
        w.flags |= PCI_IORESOURCE_MEM_64;
    }
    return w;
}

static Window (*const bridge_windows[])(const DumpFunc *fn) = {
    bridge_io, bridge_mem, bridge_pref,
};

static void bridge_lines(GString *out, const DumpFunc *fn)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bridge_windows); i++) {
        Window w = bridge_windows[i](fn);
        if (w.base <= w.limit)
            resource_line(out, w.base, w.limit - w.base + 1, w.flags);
        else
            resource_line(out, 0, 0, 0);       /* window closed */
    }
    for (size_t i = G_N_ELEMENTS(bridge_windows); i < SIM_BRIDGE_LINES; i++)
        resource_line(out, 0, 0, 0);
}

static int write_resource(SimCtx *c, int fd, const char *rel, const DumpFunc *fn,
                          const HostBar bars[HOST_BARS])
{
    GString *out = g_string_new(NULL);
    int rc;

    for (int i = 0; i < HOST_BAR_ROM; i++)
        resource_line(out, bars[i].base, bars[i].size, bar_flags(&bars[i]) | unset(&bars[i]));
    resource_line(out, bars[HOST_BAR_ROM].base, bars[HOST_BAR_ROM].size,
                  rom_flags(fn, &bars[HOST_BAR_ROM]) | unset(&bars[HOST_BAR_ROM]));
    for (int i = 0; i < SIM_IOV_LINES; i++)
        resource_line(out, 0, 0, 0);
    if (header_type(fn) == PCI_HEADER_TYPE_BRIDGE)
        bridge_lines(out, fn);
    rc = write_file(c, fd, rel, "resource", out->str, out->len, 0444);
    g_string_free(out, TRUE);
    return rc;
}

/* resourceN: a sparse file as large as the memory BAR, for mmap users. */
static int write_backing(SimCtx *c, int dirfd, const char *rel, const HostBar bars[HOST_BARS])
{
    for (int i = 0; i < HOST_BAR_ROM; i++) {
        char file[24];
        int fd, rc = 0;

        if (bars[i].io || !bars[i].size)
            continue;
        snprintf(file, sizeof(file), "resource%d", i);
        fd = openat(dirfd, file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return sim_fail(c->err, -errno, "%s/%s/%s: %s", c->dir, rel, file,
                            strerror(errno));
        if (ftruncate(fd, (off_t)bars[i].size) < 0)
            rc = sim_fail(c->err, -errno, "%s/%s/%s: %s", c->dir, rel, file,
                          strerror(errno));
        close(fd);
        if (rc)
            return rc;
    }
    return 0;
}

/* driver -> ../../drivers/NAME, and drivers/NAME/BDF back, as in sysfs. */
static int link_driver(SimCtx *c, int dirfd, const char *rel, const char *name)
{
    char *target = g_strdup_printf("../../drivers/%s", name);
    char *back = g_strdup_printf("../../devices/%s", rel);
    int drv = -1, rc = 0;

    if (mkdirat(c->drivers_fd, name, 0755) < 0 && errno != EEXIST) {
        rc = sim_fail(c->err, -errno, "%s/drivers/%s: %s", c->dir, name, strerror(errno));
        goto out;
    }
    if (symlinkat(target, dirfd, "driver") < 0) {
        rc = sim_fail(c->err, -errno, "%s/%s/driver: %s", c->dir, rel, strerror(errno));
        goto out;
    }
    drv = openat(c->drivers_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (drv < 0 || symlinkat(back, drv, rel) < 0)
        rc = sim_fail(c->err, -errno, "%s/drivers/%s/%s: %s", c->dir, name, rel,
                      strerror(errno));
out:
    if (drv >= 0)
        close(drv);
    g_free(target);
    g_free(back);
    return rc;
}

static bool in_list(PtBdf bdf, const PtBdf *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i].domain == bdf.domain && list[i].bus == bdf.bus &&
            list[i].dev == bdf.dev && list[i].func == bdf.func)
            return true;
    return false;
}

static int write_values(SimCtx *c, int fd, const char *rel, const DumpFunc *fn)
{
    for (size_t i = 0; i < G_N_ELEMENTS(value_files); i++) {
        int rc = write_text(c, fd, rel, value_files[i].name, value_files[i].fmt,
                            value_files[i].get(fn));
        if (rc)
            return rc;
    }
    return 0;
}

static int write_function(SimCtx *c, const DumpFunc *fn, const char *driver)
{
    HostBar bars[HOST_BARS];
    char rel[16];
    int fd, rc;

    bdf_name(fn->bdf, rel, sizeof(rel));
    if (mkdirat(c->devices_fd, rel, 0755) < 0)
        return sim_fail(c->err, -errno, "%s/devices/%s: %s", c->dir, rel, strerror(errno));
    fd = openat(c->devices_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sim_fail(c->err, -errno, "%s/devices/%s: %s", c->dir, rel, strerror(errno));
    host_dump_bars(fn, bars);
    /* config is writable: pass-through writes must land somewhere visible. */
    rc = write_file(c, fd, rel, "config", fn->config, fn->config_len, 0644);
    if (!rc)
        rc = write_values(c, fd, rel, fn);
    if (!rc)
        rc = write_resource(c, fd, rel, fn, bars);
    if (!rc)
        rc = write_backing(c, fd, rel, bars);
    if (!rc && driver[0])
        rc = link_driver(c, fd, rel, driver);
    close(fd);
    return rc;
}

static int open_subdir(SimCtx *c, int parent, const char *name)
{
    int fd;

    if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
        return sim_fail(c->err, -errno, "%s/%s: %s", c->dir, name, strerror(errno));
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sim_fail(c->err, -errno, "%s/%s: %s", c->dir, name, strerror(errno));
    return fd;
}

static int check_assignable(const HostDump *dump, const PtBdf *assignable, int n,
                            PtError *err)
{
    char b[16];

    for (int i = 0; i < n; i++)
        if (!host_dump_find(dump, assignable[i]))
            return sim_fail(err, -ENOENT, "%s: assignable function is not in the dump",
                            bdf_name(assignable[i], b, sizeof(b)));
    return 0;
}

int host_sim_write(const HostDump *dump, const char *dir,
                   const PtBdf *assignable, int nassignable, PtError *err)
{
    SimCtx c = { .dir = dir, .devices_fd = -1, .drivers_fd = -1, .err = err };
    int root, rc;

    rc = check_assignable(dump, assignable, nassignable, err);
    if (rc)
        return rc;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return sim_fail(err, -errno, "%s: %s", dir, strerror(errno));
    root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return sim_fail(err, -errno, "%s: %s", dir, strerror(errno));
    rc = c.devices_fd = open_subdir(&c, root, "devices");
    if (rc < 0)
        goto out;
    rc = c.drivers_fd = open_subdir(&c, root, "drivers");
    if (rc < 0)
        goto out;
    rc = 0;
    for (int i = 0; i < dump->nfuncs && !rc; i++) {
        const DumpFunc *fn = &dump->funcs[i];
        bool pciback = in_list(fn->bdf, assignable, nassignable);
        rc = write_function(&c, fn, pciback ? SIM_PCIBACK : fn->driver);
    }
out:
    if (c.drivers_fd >= 0)
        close(c.drivers_fd);
    if (c.devices_fd >= 0)
        close(c.devices_fd);
    close(root);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

int host_sim_remove(const char *dir)
{
    /* FTW_PHYS: a driver link is removed, never followed. */
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return -errno;
    return 0;
}
