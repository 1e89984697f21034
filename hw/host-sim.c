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
#include "host-groups.h"
#include "host-sim.h"

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
    return pt_header_layout(fn->config[PCI_HEADER_TYPE]);
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

/* Offset of the bridge's Subsystem ID capability (its IDs inside the
 * dump), 0 if none. */
static unsigned find_ssvid_cap(const DumpFunc *fn)
{
    unsigned pos = host_cfg_find_cap(fn->config, fn->config_len, PCI_CAP_ID_SSVID);

    return pos && pos + 8 <= fn->config_len ? pos : 0;
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
static uint64_t bar_flags(const PtBar *bar)
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

static uint64_t unset(const PtBar *bar)
{
    return bar->size && !bar->base ? SIM_IORESOURCE_UNSET : 0;
}

static uint64_t rom_flags(const DumpFunc *fn, const PtBar *rom)
{
    unsigned reg = pt_header_rom_reg(header_type(fn));
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
                          const PtBar bars[PCI_NUM_BARS])
{
    GString *out = g_string_new(NULL);
    int rc;

    for (int i = 0; i < PCI_BAR_ROM; i++)
        resource_line(out, bars[i].base, bars[i].size, bar_flags(&bars[i]) | unset(&bars[i]));
    resource_line(out, bars[PCI_BAR_ROM].base, bars[PCI_BAR_ROM].size,
                  rom_flags(fn, &bars[PCI_BAR_ROM]) | unset(&bars[PCI_BAR_ROM]));
    for (int i = 0; i < SIM_IOV_LINES; i++)
        resource_line(out, 0, 0, 0);
    if (header_type(fn) == PCI_HEADER_TYPE_BRIDGE)
        bridge_lines(out, fn);
    rc = write_file(c, fd, rel, "resource", out->str, out->len, 0444);
    g_string_free(out, TRUE);
    return rc;
}

/* resourceN: a sparse file as large as the memory BAR, for mmap users. */
static int write_backing(SimCtx *c, int dirfd, const char *rel, const PtBar bars[PCI_NUM_BARS])
{
    for (int i = 0; i < PCI_BAR_ROM; i++) {
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
    PtBar bars[PCI_NUM_BARS];
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

static int write_kernel_side(SimCtx *c, int root, const HostDump *dump);

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
    if (!rc)
        rc = write_kernel_side(&c, root, dump);
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

/* ================================================================ the kernel side (host-sim.h) */

#define SIM_IDS     ".sim-ids"
#define SIM_RESETS  ".sim-resets"
/* Linux's REQ_ACS_FLAGS for a path, and what a multi-function device needs. */
#define SIM_ACS_PATH (PCI_ACS_CAP_VALID | PCI_ACS_CAP_REQ_RED | PCI_ACS_CAP_CMPLT_RED | \
                      PCI_ACS_CAP_FORWARD)
#define SIM_ACS_MF   (PCI_ACS_CAP_REQ_RED | PCI_ACS_CAP_CMPLT_RED)

/* The stub drivers a Xen dom0 with pciback and pci-stub/vfio-pci loaded has. */
static const char *const sim_stubs[] = { SIM_PCIBACK, "pci-stub", "vfio-pci" };

static const DumpFunc *parent_bridge(const HostDump *dump, PtBdf bdf)
{
    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *b = &dump->funcs[i];
        if (header_type(b) == PCI_HEADER_TYPE_BRIDGE && b->bdf.domain == bdf.domain &&
            b->config[PCI_SECONDARY_BUS] == bdf.bus)
            return b;
    }
    return NULL;
}

static bool alone_below_bridge(const HostDump *dump, const DumpFunc *fn)
{
    int on_bus = 0;

    for (int i = 0; i < dump->nfuncs; i++)
        on_bus += dump->funcs[i].bdf.domain == fn->bdf.domain &&
                  dump->funcs[i].bdf.bus == fn->bdf.bus;
    return on_bus == 1 && parent_bridge(dump, fn->bdf);
}

static bool acs_has(const DumpFunc *fn, unsigned need)
{
    unsigned pos = host_cfg_find_ext_cap(fn->config, fn->config_len, PCI_EXT_CAP_ID_ACS);

    return pos && (cfg16(fn, pos + PCI_ACS_CAP) & need) == need;
}

/* A PCIe port with ACS on the path; a PCIe-to-PCI bridge never isolates. */
static bool isolating_bridge(const DumpFunc *b)
{
    unsigned exp = host_cfg_find_cap(b->config, b->config_len, PCI_CAP_ID_EXP);
    unsigned type = exp ? (cfg16(b, exp + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_TYPE) >> 4 : 0;

    return exp && type != PCI_EXP_TYPE_PCI_BRIDGE && acs_has(b, SIM_ACS_PATH);
}

/*
 * Whose IOMMU group fn is in: Linux's pci_device_group without its quirk
 * tables (IOMMU and ACS enabled).  Up through bridges without ACS, else the
 * lowest function of its slot unless the functions isolate each other.
 */
static const DumpFunc *group_owner(const HostDump *dump, const DumpFunc *fn, int depth)
{
    const DumpFunc *b = parent_bridge(dump, fn->bdf);

    if (b && depth < 32 && !isolating_bridge(b))
        return group_owner(dump, b, depth + 1);
    if (acs_has(fn, SIM_ACS_MF))
        return fn;
    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *s = &dump->funcs[i];
        if (s->bdf.domain == fn->bdf.domain && s->bdf.bus == fn->bdf.bus &&
            s->bdf.dev == fn->bdf.dev && !acs_has(s, SIM_ACS_MF))
            return s;
    }
    return fn;
}

static int iommu_group_of(const HostDump *dump, const DumpFunc *fn)
{
    const DumpFunc *owner = group_owner(dump, fn, 0);
    int group = 0;

    /* Numbered in the order groups first appear in the dump. */
    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *o = group_owner(dump, &dump->funcs[i], 0);
        bool seen = false;
        if (o == owner)
            return group;
        for (int j = 0; j < i && !seen; j++)
            seen = group_owner(dump, &dump->funcs[j], 0) == o;
        group += !seen;
    }
    return group;
}

static int write_iommu_group(SimCtx *c, int root, const HostDump *dump, const DumpFunc *fn)
{
    int group = iommu_group_of(dump, fn);
    char rel[16];

    bdf_name(fn->bdf, rel, sizeof(rel));
    g_autofree char *dir = g_strdup_printf("%s/iommu_groups/%d/devices", c->dir, group);
    g_autofree char *target = g_strdup_printf("../../iommu_groups/%d", group);
    g_autofree char *link = g_strdup_printf("%s/iommu_group", rel);
    g_autofree char *back = g_strdup_printf("iommu_groups/%d/devices/%s", group, rel);
    g_autofree char *back_target = g_strdup_printf("../../../devices/%s", rel);

    if (g_mkdir_with_parents(dir, 0755) < 0 || symlinkat(target, c->devices_fd, link) < 0 ||
        symlinkat(back_target, root, back) < 0)
        return sim_fail(c->err, -errno, "%s/%s: %s", c->dir, back, strerror(errno));
    return 0;
}

static int write_reset_files(SimCtx *c, int fd, const char *rel, const HostDump *dump,
                             const DumpFunc *fn)
{
    unsigned m = host_cfg_reset_methods(fn->config, fn->config_len,
                                        alone_below_bridge(dump, fn));
    char text[96];
    int rc;

    /* Linux shows reset and reset_method only where some method applies. */
    if (!m)
        return 0;
    host_reset_methods_format(m, text, sizeof(text) - 1);
    strcat(text, "\n");
    rc = write_file(c, fd, rel, "reset_method", text, strlen(text), 0644);
    return rc ? rc : write_file(c, fd, rel, "reset", "", 0, 0200);
}

static int write_lifecycle_files(SimCtx *c, int root, const HostDump *dump, const DumpFunc *fn)
{
    char rel[16];
    int fd, rc;

    bdf_name(fn->bdf, rel, sizeof(rel));
    fd = openat(c->devices_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sim_fail(c->err, -errno, "%s/devices/%s: %s", c->dir, rel, strerror(errno));
    rc = write_file(c, fd, rel, "driver_override", "(null)\n", 7, 0644);
    if (!rc)
        rc = write_reset_files(c, fd, rel, dump, fn);
    close(fd);
    return rc ? rc : write_iommu_group(c, root, dump, fn);
}

/* drivers/NAME/.sim-ids: the functions NAME's ID table matches (the dump's driver). */
static int add_sim_id(SimCtx *c, const DumpFunc *fn)
{
    char rel[16];
    g_autofree char *dir = g_strdup_printf("%s/drivers/%s", c->dir, fn->driver);
    g_autofree char *ids = g_strdup_printf("%s/" SIM_IDS, dir);
    FILE *f;

    if (g_mkdir_with_parents(dir, 0755) < 0 || !(f = fopen(ids, "a")))
        return sim_fail(c->err, -errno, "%s: %s", ids, strerror(errno));
    fprintf(f, "%s\n", bdf_name(fn->bdf, rel, sizeof(rel)));
    return fclose(f) ? sim_fail(c->err, -errno, "%s: %s", ids, strerror(errno)) : 0;
}

static int write_driver_files(SimCtx *c)
{
    g_autofree char *drivers = g_build_filename(c->dir, "drivers", NULL);
    GDir *d = g_dir_open(drivers, 0, NULL);
    const char *name;
    int rc = 0;

    while (d && !rc && (name = g_dir_read_name(d))) {
        int fd = openat(c->drivers_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_autofree char *rel = g_strdup_printf("../drivers/%s", name);
        if (fd < 0)
            continue;
        rc = write_file(c, fd, rel, "bind", "", 0, 0200);
        if (!rc)
            rc = write_file(c, fd, rel, "unbind", "", 0, 0200);
        close(fd);
    }
    if (d)
        g_dir_close(d);
    return rc;
}

static const char sim_marker_text[] =
    "A simulated host (tools/simhost): no kernel reacts to writes here; hw/host-sim.c does.\n";

static int write_kernel_side(SimCtx *c, int root, const HostDump *dump)
{
    int rc = write_file(c, root, ".", HOST_SIM_MARKER, sim_marker_text,
                        sizeof(sim_marker_text) - 1, 0444);

    if (!rc)
        rc = write_file(c, root, ".", "drivers_probe", "", 0, 0200);
    for (size_t i = 0; !rc && i < G_N_ELEMENTS(sim_stubs); i++)
        if (mkdirat(c->drivers_fd, sim_stubs[i], 0755) < 0 && errno != EEXIST)
            rc = sim_fail(c->err, -errno, "%s/drivers/%s: %s", c->dir, sim_stubs[i],
                          strerror(errno));
    for (int i = 0; !rc && i < dump->nfuncs; i++) {
        rc = write_lifecycle_files(c, root, dump, &dump->funcs[i]);
        if (!rc && dump->funcs[i].driver[0])
            rc = add_sim_id(c, &dump->funcs[i]);
    }
    return rc ? rc : write_driver_files(c);
}

/* ---------------------------------------------------------------- writes */

typedef struct SimWrite {
    const char *root;
    char *name;         /* the %-part of the path: a BDF or a driver */
    char *value;        /* as written, without the trailing newline */
} SimWrite;

static char *sim_path(const SimWrite *w, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static char *sim_path(const SimWrite *w, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *rel = NULL;

    va_start(ap, fmt);
    rel = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return g_build_filename(w->root, rel, NULL);
}

static bool sim_device_exists(const SimWrite *w, const char *bdf)
{
    PtBdf b;
    const char *end = NULL;
    g_autofree char *dir = sim_path(w, "devices/%s", bdf);

    return host_dump_parse_bdf(bdf, &end, &b) && !*end && g_file_test(dir, G_FILE_TEST_IS_DIR);
}

/* The driver bound now ("" none), as the driver link says. */
static void sim_bound(const SimWrite *w, const char *bdf, char *buf, size_t len)
{
    g_autofree char *link = sim_path(w, "devices/%s/driver", bdf);
    g_autofree char *target = g_file_read_link(link, NULL);

    g_strlcpy(buf, target && strrchr(target, '/') ? strrchr(target, '/') + 1 : "", len);
}

static bool sim_override(const SimWrite *w, const char *bdf, char *buf, size_t len)
{
    g_autofree char *path = sim_path(w, "devices/%s/driver_override", bdf);
    g_autofree char *text = NULL;

    buf[0] = 0;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return false;
    g_strstrip(text);
    if (!strcmp(text, "(null)"))
        return false;
    g_strlcpy(buf, text, len);
    return true;
}

/* pci_match_device: an override names the only driver; else the ID table. */
static bool sim_matches(const SimWrite *w, const char *driver, const char *bdf)
{
    char over[64];
    g_autofree char *ids_path = sim_path(w, "drivers/%s/" SIM_IDS, driver);
    g_autofree char *ids = NULL;

    if (sim_override(w, bdf, over, sizeof(over)))
        return !strcmp(over, driver);
    if (!g_file_get_contents(ids_path, &ids, NULL, NULL))
        return false;
    g_auto(GStrv) lines = g_strsplit(ids, "\n", -1);
    return g_strv_contains((const char *const *)lines, bdf);
}

static int sim_attach(const SimWrite *w, const char *driver, const char *bdf)
{
    g_autofree char *link = sim_path(w, "devices/%s/driver", bdf);
    g_autofree char *target = g_strdup_printf("../../drivers/%s", driver);
    g_autofree char *back = sim_path(w, "drivers/%s/%s", driver, bdf);
    g_autofree char *back_target = g_strdup_printf("../../devices/%s", bdf);

    if (symlink(target, link) < 0 || symlink(back_target, back) < 0)
        return -errno;
    return 0;
}

static int sim_bind(const SimWrite *w)
{
    char bound[64];

    if (!sim_device_exists(w, w->value))
        return -ENODEV;
    sim_bound(w, w->value, bound, sizeof(bound));
    if (bound[0])
        return -EBUSY;
    return sim_matches(w, w->name, w->value) ? sim_attach(w, w->name, w->value) : -ENODEV;
}

static int sim_unbind(const SimWrite *w)
{
    char bound[64];
    g_autofree char *link = NULL, *back = NULL;

    if (!sim_device_exists(w, w->value))
        return -ENODEV;
    sim_bound(w, w->value, bound, sizeof(bound));
    if (strcmp(bound, w->name))
        return -ENODEV;
    link = sim_path(w, "devices/%s/driver", w->value);
    back = sim_path(w, "drivers/%s/%s", w->name, w->value);
    return unlink(link) < 0 || unlink(back) < 0 ? -errno : 0;
}

/* bus_rescan_devices_helper: an unbound device gets the driver that matches, if any. */
static int sim_probe(const SimWrite *w)
{
    g_autofree char *drivers = sim_path(w, "drivers");
    g_autoptr(GDir) d = NULL;
    const char *name;
    char bound[64];

    if (!sim_device_exists(w, w->value))
        return -ENODEV;
    sim_bound(w, w->value, bound, sizeof(bound));
    d = bound[0] ? NULL : g_dir_open(drivers, 0, NULL);
    while (d && (name = g_dir_read_name(d)))
        if (sim_matches(w, name, w->value))
            return sim_attach(w, name, w->value);
    return 0;
}

static int sim_set_override(const SimWrite *w)
{
    g_autofree char *path = sim_path(w, "devices/%s/driver_override", w->name);
    g_autofree char *text = g_strdup_printf("%s\n", w->value[0] ? w->value : "(null)");

    return g_file_set_contents(path, text, -1, NULL) ? 0 : -EIO;
}

/* What a reset clears: the device's registers, i.e. its BAR memory. */
static int sim_clear_bars(const SimWrite *w)
{
    for (int i = 0; i < PCI_BAR_ROM; i++) {
        g_autofree char *path = sim_path(w, "devices/%s/resource%d", w->name, i);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (truncate(path, 0) < 0 || truncate(path, st.st_size) < 0)
            return -errno;
    }
    return 0;
}

static int sim_reset(const SimWrite *w)
{
    g_autofree char *methods_path = sim_path(w, "devices/%s/reset_method", w->name);
    g_autofree char *log_path = sim_path(w, "devices/%s/" SIM_RESETS, w->name);
    g_autofree char *methods = NULL;
    const char *first;
    FILE *log;
    int rc;

    if (strcmp(w->value, "1"))
        return -EINVAL;
    if (!g_file_get_contents(methods_path, &methods, NULL, NULL) ||
        !(first = host_reset_method_first(host_reset_methods_parse(methods))))
        return -ENOTTY;
    /* The kernel saves config space around the reset and restores it. */
    rc = sim_clear_bars(w);
    if (rc)
        return rc;
    if (!(log = fopen(log_path, "a")))
        return -errno;
    fprintf(log, "%s\n", first);
    return fclose(log) ? -errno : 0;
}

static const struct {
    const char *prefix, *suffix;    /* rel = prefix NAME suffix; NAME may not hold '/' */
    int (*apply)(const SimWrite *w);
} sim_attrs[] = {
    { "devices/", "/driver_override", sim_set_override },
    { "devices/", "/reset", sim_reset },
    { "drivers/", "/bind", sim_bind },
    { "drivers/", "/unbind", sim_unbind },
    { "drivers_probe", "", sim_probe },
};

static int sim_attr(const char *rel, char **name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(sim_attrs); i++) {
        size_t p = strlen(sim_attrs[i].prefix), s = strlen(sim_attrs[i].suffix), n = strlen(rel);
        if (n < p + s || strncmp(rel, sim_attrs[i].prefix, p) ||
            strcmp(rel + n - s, sim_attrs[i].suffix))
            continue;
        *name = g_strndup(rel + p, n - p - s);
        if (!strchr(*name, '/'))
            return (int)i;
        g_free(*name);
    }
    *name = NULL;
    return -1;
}

bool host_sim_is_sim(const char *root)
{
    g_autofree char *marker = g_build_filename(root, HOST_SIM_MARKER, NULL);

    return g_file_test(marker, G_FILE_TEST_IS_REGULAR);
}

/* The write itself: only into a file that exists, as sysfs allows. */
static int sim_store(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), rc = 0;
    size_t len = strlen(value);

    if (fd < 0)
        return -errno;
    if (write(fd, value, len) != (ssize_t)len)
        rc = -EIO;
    close(fd);
    return rc;
}

int host_sim_kernel_write(const char *root, const char *rel, const char *value, PtError *err)
{
    g_autofree char *path = g_build_filename(root, rel, NULL);
    SimWrite w = { .root = root, .value = g_strchomp(g_strdup(value)) };
    int kind = sim_attr(rel, &w.name);
    int rc = sim_store(path, value);

    if (!rc && kind < 0)
        rc = -EOPNOTSUPP;       /* an attribute the simulated kernel does not model */
    if (!rc)
        rc = sim_attrs[kind].apply(&w);
    if (rc)
        sim_fail(err, rc, "write '%s' to %s: %s", w.value, path, strerror(-rc));
    g_free(w.name);
    g_free(w.value);
    return rc;
}
