/*
 * Host PCI functions through libpci's linux-sysfs method, on the real
 * /sys/bus/pci or on a simulated tree.
 *
 * libpci reports fatal errors through acc->error, whose default prints and
 * calls exit(), and its callers assume it never returns.  A device model
 * must survive a missing file in sysfs, so every libpci call runs under a
 * guard: the error handler longjmps back to the guard, which turns the
 * message into a PtError or -EIO.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>
#include <glib.h>
#include <pci/pci.h>

#include "host-pci.h"
#include "dm-log.h"

#define HOST_FILL (PCI_FILL_IDENT | PCI_FILL_BASES | PCI_FILL_SIZES | PCI_FILL_ROM_BASE | \
                   PCI_FILL_IRQ | PCI_FILL_CLASS | PCI_FILL_IO_FLAGS | PCI_FILL_DRIVER)

struct HostPci {
    struct pci_access *acc;
    char *root;                 /* the directory holding devices/ */
    int ndevs;
    struct pci_dev **devs;      /* in BDF order */
    char driver[64];            /* host_pci_driver's answer */
};

struct HostFunc {
    HostPci *host;
    struct pci_dev *dev;
    PtBdf bdf;
    unsigned config_size;
    HostCounters counters;
    char first_failure[200];    /* logged once; "" until the first */
};

/* The guard in force on this thread, and what libpci last said. */
static __thread jmp_buf *guard_jmp;
static __thread char guard_msg[256];

static void PCI_NONRET on_pci_error(char *msg, ...) PCI_PRINTF(1, 2);

static void on_pci_error(char *msg, ...)
{
    va_list ap;

    va_start(ap, msg);
    vsnprintf(guard_msg, sizeof(guard_msg), msg, ap);
    va_end(ap);
    if (guard_jmp)
        longjmp(*guard_jmp, 1);
    /* Unreachable by construction: every libpci call here is guarded. */
    abort();
}

static void on_pci_warning(char *msg, ...) PCI_PRINTF(1, 2);

static void on_pci_warning(char *msg, ...)
{
    va_list ap;

    /* Kept for the next failure message; libpci goes on after a warning. */
    va_start(ap, msg);
    vsnprintf(guard_msg, sizeof(guard_msg), msg, ap);
    va_end(ap);
}

static void on_pci_debug(char *msg, ...) PCI_PRINTF(1, 2);

static void on_pci_debug(char *msg, ...)
{
    (void)msg;
}

static PtBdf dev_bdf(const struct pci_dev *d)
{
    return (PtBdf){ .domain = (uint16_t)d->domain, .bus = d->bus, .dev = d->dev,
                    .func = d->func };
}

static int bdf_cmp(PtBdf a, PtBdf b)
{
    uint64_t ka = (uint64_t)a.domain << 24 | (uint64_t)a.bus << 16 | a.dev << 8 | a.func;
    uint64_t kb = (uint64_t)b.domain << 24 | (uint64_t)b.bus << 16 | b.dev << 8 | b.func;

    return ka < kb ? -1 : ka > kb;
}

static int dev_cmp(const void *a, const void *b)
{
    return bdf_cmp(dev_bdf(*(struct pci_dev *const *)a), dev_bdf(*(struct pci_dev *const *)b));
}

/* Scan and fill every device: the part of open where libpci can fail. */
static int fill_guarded(struct pci_access *acc)
{
    jmp_buf jb, *volatile saved = guard_jmp;

    if (setjmp(jb)) {
        guard_jmp = saved;
        return -EIO;
    }
    guard_jmp = &jb;
    pci_init(acc);
    pci_scan_bus(acc);
    for (struct pci_dev *d = acc->devices; d; d = d->next)
        pci_fill_info(d, HOST_FILL);
    guard_jmp = saved;
    return 0;
}

/* Index the devices in BDF order, for lookups and listings. */
static void index_devices(HostPci *host)
{
    int n = 0;

    for (struct pci_dev *d = host->acc->devices; d; d = d->next)
        n++;
    host->devs = g_new(struct pci_dev *, n ? n : 1);
    for (struct pci_dev *d = host->acc->devices; d; d = d->next)
        host->devs[host->ndevs++] = d;
    qsort(host->devs, (size_t)host->ndevs, sizeof(*host->devs), dev_cmp);
}

static void cleanup_guarded(struct pci_access *acc)
{
    jmp_buf jb, *volatile saved = guard_jmp;

    if (!setjmp(jb)) {
        guard_jmp = &jb;
        pci_cleanup(acc);
    }
    guard_jmp = saved;
}

/* A clear message for the common mistake, before libpci sees the path. */
static int check_root(const char *root, PtError *err)
{
    char *devices = g_strdup_printf("%s/devices", root);
    struct stat st;
    int rc = 0;

    if (stat(devices, &st) < 0)
        rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc)
        pt_error_set(err, "%s: %s", devices, strerror(-rc));
    g_free(devices);
    return rc;
}

HostPci *host_pci_open(const char *sysfs_root, PtError *err)
{
    const char *root = sysfs_root ? sysfs_root : HOST_SYSFS_DEFAULT;
    HostPci *host;

    if (check_root(root, err))
        return NULL;
    host = g_new0(HostPci, 1);
    host->root = g_strdup(root);
    host->acc = pci_alloc();
    host->acc->error = on_pci_error;
    host->acc->warning = on_pci_warning;
    host->acc->debug = on_pci_debug;
    host->acc->method = PCI_ACCESS_SYS_BUS_PCI;
    if (pci_set_param(host->acc, "sysfs.path", host->root) < 0) {
        pt_error_set(err, "libpci has no sysfs.path parameter");
        goto fail;
    }
    guard_msg[0] = '\0';
    if (fill_guarded(host->acc) < 0) {
        pt_error_set(err, "%s: %s", root, guard_msg);
        goto fail;
    }
    index_devices(host);
    return host;
fail:
    host_pci_close(host);
    return NULL;
}

const char *host_pci_root(const HostPci *host)
{
    return host->root;
}

void host_pci_close(HostPci *host)
{
    if (!host)
        return;
    cleanup_guarded(host->acc);
    g_free(host->devs);
    g_free(host->root);
    g_free(host);
}

static struct pci_dev *find_dev(HostPci *host, PtBdf bdf)
{
    int lo = 0, hi = host->ndevs - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = bdf_cmp(dev_bdf(host->devs[mid]), bdf);
        if (c == 0)
            return host->devs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

uint8_t host_pci_present_funcs(HostPci *host, uint16_t domain, uint8_t bus, uint8_t dev)
{
    uint8_t mask = 0;

    for (int i = 0; i < host->ndevs; i++) {
        PtBdf b = dev_bdf(host->devs[i]);
        if (b.domain == domain && b.bus == bus && b.dev == dev)
            mask |= (uint8_t)(1u << b.func);
    }
    return mask;
}

int host_pci_count(HostPci *host)
{
    return host->ndevs;
}

PtBdf host_pci_bdf_at(HostPci *host, int index)
{
    return dev_bdf(host->devs[index]);
}

/* Read from sysfs at each call: libpci fills the driver once, at the scan,
 * and functions go to pciback while qemu-dm runs. */
const char *host_pci_driver(HostPci *host, PtBdf bdf)
{
    char *link = g_strdup_printf("%s/devices/%04x:%02x:%02x.%x/driver", host->root, bdf.domain,
                                 bdf.bus, bdf.dev, bdf.func);
    g_autofree char *target = find_dev(host, bdf) ? g_file_read_link(link, NULL) : NULL;

    g_free(link);
    if (!target)
        return NULL;
    g_autofree char *name = g_path_get_basename(target);
    snprintf(host->driver, sizeof(host->driver), "%s", name);
    return host->driver;
}

/* Drivers that hold a function for a guest. */
static const char *const assign_drivers[] = { "pciback", "pci-stub" };

bool host_pci_assignable(HostPci *host, PtBdf bdf)
{
    const char *drv = host_pci_driver(host, bdf);

    for (size_t i = 0; drv && i < G_N_ELEMENTS(assign_drivers); i++)
        if (strcmp(drv, assign_drivers[i]) == 0)
            return true;
    return false;
}

/* 4096 when the host exposes extended config space, else 256. */
static unsigned config_file_size(HostPci *host, PtBdf b)
{
    char *path = g_strdup_printf("%s/devices/%04x:%02x:%02x.%x/config", host->root,
                                 b.domain, b.bus, b.dev, b.func);
    struct stat st;
    unsigned size = 256;

    if (stat(path, &st) == 0 && st.st_size >= 4096)
        size = 4096;
    g_free(path);
    return size;
}

/* A BAR as sysfs gives it, before host_func_bar drops unassigned ones. */
static void raw_bar(const struct pci_dev *d, int i, uint64_t *base, uint64_t *size, bool *shown)
{
    if (i == PCI_BAR_ROM) {
        *base = d->rom_base_addr & PCI_ROM_ADDRESS_MASK;
        *size = d->rom_size;
        *shown = *base || *size;
        return;
    }
    *base = d->base_addr[i] & (d->flags[i] & PCI_IORESOURCE_IO ? PCI_ADDR_IO_MASK
                                                               : PCI_ADDR_MEM_MASK);
    *size = d->size[i];
    *shown = d->flags[i] || d->base_addr[i] || *size;
}

/*
 * libpci gives no size for a 1-byte region (legacy IDE control ports), nor
 * does a simulated host from a dump without sizes; a BAR the firmware left
 * unassigned keeps its size at address 0.  None can reach the guest: say
 * so once, when the function is opened.
 */
static void log_unusable_bars(const HostFunc *fn)
{
    char who[16];

    pt_bdf_format(fn->bdf, who, sizeof(who));
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        uint64_t base, size;
        char name[8];
        bool shown;

        raw_bar(fn->dev, i, &base, &size, &shown);
        snprintf(name, sizeof(name), i == PCI_BAR_ROM ? "ROM" : "BAR%d", i);
        if (shown && !size)
            dm_log(who, "%s at %#llx has no size on the host (a 1-byte region, or a "
                   "simulated host built without BAR sizes: simhost --sizes): not passed "
                   "through", name, (unsigned long long)base);
        else if (size && !base)
            dm_log(who, "%s (size %#llx) is unassigned on the host (address 0): not passed "
                   "through", name, (unsigned long long)size);
    }
}

HostFunc *host_func_open(HostPci *host, PtBdf bdf, PtError *err)
{
    struct pci_dev *d = find_dev(host, bdf);
    HostFunc *fn;

    if (!d) {
        pt_error_set(err, "%04x:%02x:%02x.%x: no such function on the host",
                     bdf.domain, bdf.bus, bdf.dev, bdf.func);
        return NULL;
    }
    fn = g_new0(HostFunc, 1);
    fn->host = host;
    fn->dev = d;
    fn->bdf = bdf;
    fn->config_size = config_file_size(host, bdf);
    log_unusable_bars(fn);
    return fn;
}

void host_func_close(HostFunc *fn)
{
    g_free(fn);
}

PtBdf host_func_bdf(const HostFunc *fn)
{
    return fn->bdf;
}

unsigned host_func_config_size(const HostFunc *fn)
{
    return fn->config_size;
}

/*
 * A host access of an opened function failed (its sysfs file gone, short,
 * unreadable): counted, and said once per function, so a guest polling a
 * dead function does not flood the log.
 */
static int note_failure(HostFunc *fn, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int note_failure(HostFunc *fn, int rc, const char *fmt, ...)
{
    char name[16];
    va_list ap;

    if (fn->counters.failures++)
        return rc;
    va_start(ap, fmt);
    vsnprintf(fn->first_failure, sizeof(fn->first_failure), fmt, ap);
    va_end(ap);
    dm_log(pt_bdf_format(fn->bdf, name, sizeof(name)), "host access failed: %s (later failures "
           "of this function are counted, not logged)", fn->first_failure);
    return rc;
}

/* One config access under the guard; libpci returns 1 on success and
 * leaves open's errno (none for a short read) and its warning. */
static int config_io(HostFunc *fn, unsigned offset, void *buf, unsigned len, bool write)
{
    jmp_buf jb, *volatile saved = guard_jmp;
    volatile int ok = 0;

    if (offset > fn->config_size || len > fn->config_size - offset)
        return -EINVAL;
    if (len == 0)
        return 0;
    guard_msg[0] = '\0';
    errno = 0;
    if (!setjmp(jb)) {
        guard_jmp = &jb;
        if (write)
            ok = pci_write_block(fn->dev, (int)offset, buf, (int)len);
        else
            ok = pci_read_block(fn->dev, (int)offset, buf, (int)len);
    }
    guard_jmp = saved;
    if (ok)
        return 0;
    int rc = errno ? -errno : -EIO;
    const char *what = write ? "write" : "read";
    if (!errno)
        return note_failure(fn, rc, "config %s of %u bytes at 0x%03x: short %s%s%s", what, len,
                            offset, what, guard_msg[0] ? ": " : "", guard_msg);
    return note_failure(fn, rc, "config %s of %u bytes at 0x%03x: %s%s%s", what, len, offset,
                        guard_msg, guard_msg[0] ? ": " : "", strerror(-rc));
}

int host_func_read(HostFunc *fn, unsigned offset, void *buf, unsigned len)
{
    int rc = config_io(fn, offset, buf, len, false);

    if (!rc)
        fn->counters.reads++;
    return rc;
}

int host_func_write(HostFunc *fn, unsigned offset, const void *buf, unsigned len)
{
    /* libpci takes a non-const buffer but only reads from it on write. */
    int rc = config_io(fn, offset, (void *)(uintptr_t)buf, len, true);

    if (!rc)
        fn->counters.writes++;
    return rc;
}

const char *host_func_error(const HostFunc *fn)
{
    return fn->first_failure;
}

void host_func_bar(const HostFunc *fn, int index, PtBar *bar)
{
    const struct pci_dev *d = fn->dev;
    pciaddr_t flags;
    bool shown;

    memset(bar, 0, sizeof(*bar));
    if (index < 0 || index >= PCI_NUM_BARS)
        return;
    if (index < PCI_BAR_ROM) {
        flags = d->flags[index];
        bar->io = (flags & PCI_IORESOURCE_IO) != 0;
        bar->mem64 = (flags & PCI_IORESOURCE_MEM_64) != 0;
        bar->prefetch = (flags & PCI_IORESOURCE_PREFETCH) != 0;
    }
    raw_bar(d, index, &bar->base, &bar->size, &shown);
    if (!bar->base)
        bar->size = 0;      /* unassigned: nothing on the host to reach */
}

int host_func_irq(const HostFunc *fn)
{
    return fn->dev->irq;
}

/* ---- BAR contents ---- */

static int bar_access_ok(const HostFunc *fn, int bar, uint64_t offset, unsigned len)
{
    PtBar b;

    host_func_bar(fn, bar, &b);
    if (bar < 0 || bar >= PCI_BAR_ROM || !b.size || b.io)
        return -ENOENT;
    if ((len != 1 && len != 2 && len != 4 && len != 8) || offset % len ||
        offset >= b.size || len > b.size - offset)
        return -EINVAL;
    return 0;
}

/* Device memory wants one access of the right width, not a byte loop. */
static uint64_t mmio_load(const volatile void *at, unsigned len)
{
    if (len == 8)
        return *(const volatile uint64_t *)at;
    if (len == 4)
        return *(const volatile uint32_t *)at;
    if (len == 2)
        return *(const volatile uint16_t *)at;
    return *(const volatile uint8_t *)at;
}

static void mmio_store(volatile void *at, uint64_t v, unsigned len)
{
    if (len == 8)
        *(volatile uint64_t *)at = v;
    else if (len == 4)
        *(volatile uint32_t *)at = (uint32_t)v;
    else if (len == 2)
        *(volatile uint16_t *)at = (uint16_t)v;
    else
        *(volatile uint8_t *)at = (uint8_t)v;
}

/*
 * Where BAR offset 0 lies in a mapping of resourceN from file offset 0.
 * Linux maps the page that holds the BAR's start (pci_mmap_resource_range
 * adds start >> PAGE_SHIFT), so a BAR off the page grid (a 1K EHCI at
 * ...c00) begins at its offset within that page; a simulated host's
 * resourceN is a plain file holding the BAR from its first byte.
 */
static uint64_t bar_lead(const HostFunc *fn, int bar, int fd, long page)
{
    struct statfs fs;
    PtBar b;

    host_func_bar(fn, bar, &b);
    if (fstatfs(fd, &fs) < 0 || fs.f_type != SYSFS_MAGIC)
        return 0;
    return b.base & (uint64_t)(page - 1);
}

/* The page of resourceN that holds pos, or -errno.  A plain file that ends
 * before the access does (a simulated host's, cut) would fault on touch:
 * refused. */
static int map_bar_page(int fd, uint64_t pos, uint64_t end, long page, bool write, uint8_t **map)
{
    off_t base = (off_t)(pos & ~(uint64_t)(page - 1));
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end)
        return -EIO;
    *map = mmap(NULL, (size_t)page, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
                base);
    return *map == MAP_FAILED ? -errno : 0;
}

/* sysfs resource files of memory BARs allow mmap only, so map the page. */
static int bar_io(HostFunc *fn, int bar, uint64_t offset, void *buf, unsigned len, bool write)
{
    PtBdf b = fn->bdf;
    int rc = bar_access_ok(fn, bar, offset, len);
    uint8_t *map = NULL;

    if (rc)
        return rc;
    char *path = g_strdup_printf("%s/devices/%04x:%02x:%02x.%x/resource%d", fn->host->root,
                                 b.domain, b.bus, b.dev, b.func, bar);
    int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    rc = fd < 0 ? -errno : 0;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pos = 0;

    g_free(path);
    if (fd >= 0) {
        pos = bar_lead(fn, bar, fd, page) + offset;
        rc = map_bar_page(fd, pos, offset + len, page, write, &map);
        close(fd);
    }
    if (rc)
        return note_failure(fn, rc, "BAR %d %s of %u bytes at 0x%" PRIx64 ": resource%d: %s", bar,
                            write ? "write" : "read", len, offset, bar, strerror(-rc));
    uint8_t *at = map + (pos & (uint64_t)(page - 1));
    uint64_t v = 0;
    /* x86 and PCI are little-endian: the buffer's bytes are the value's. */
    if (write) {
        memcpy(&v, buf, len);
        mmio_store(at, v, len);
    } else {
        v = mmio_load(at, len);
        memcpy(buf, &v, len);
    }
    munmap(map, (size_t)page);
    return 0;
}

int host_func_bar_read(HostFunc *fn, int bar, uint64_t offset, void *buf, unsigned len)
{
    return bar_io(fn, bar, offset, buf, len, false);
}

int host_func_bar_write(HostFunc *fn, int bar, uint64_t offset, const void *buf, unsigned len)
{
    /* Only read from on a write; the cast spares a second copy of bar_io. */
    return bar_io(fn, bar, offset, (void *)(uintptr_t)buf, len, true);
}

HostCounters host_func_counters(const HostFunc *fn)
{
    return fn->counters;
}
