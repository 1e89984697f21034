/*
 * xenstub.so: an LD_PRELOAD stand-in for the Xen 4.17 calls qemu-dm's xen
 * backend makes (hw/hypervisor-xen.c, guest/xen-ioreq.c), so that code runs
 * unchanged on a machine without Xen.  It plays the hypervisor's part:
 *
 *  - every call appends one line with its arguments (and its result) to the
 *    file named by XENSTUB_LOG;
 *  - it keeps what a hypervisor would keep (assigned devices, p2m mappings,
 *    permissions, pirqs, INTx and MSI bindings, ioreq servers, event
 *    channels) and refuses what Xen would refuse, recording each refusal as
 *    a violation; xenstub_check_clean() says what is left;
 *  - it hands out pirqs as Xen does for an HVM guest (GSI: lowest free from
 *    16; MSI: from the top of the guest's 24 + 32 (Xen's nr_irqs_gsi of a
 *    one-IO-APIC host plus its extra_domU_irqs), or the pirq the device
 *    model names: a guest's own, for pirq-based MSI), event channel ports,
 *    and the ioreq page (memfd-backed shared memory) with vp_eport filled
 *    once the server is enabled;
 *  - a test acts as the guest through xenstub_ioreq_post()/_poll() (found
 *    with dlsym): a request goes into a vCPU's ioreq slot, the bound event
 *    channel fires, and the response is there once the device model
 *    notified;
 *  - XENVER_get_features answers as Debian's Xen 4.17 (no
 *    XENFEAT_dm_msix_all_writes) unless a test sets the bits
 *    (xenstub_set_features);
 *  - PT_IRQ_TYPE_MSI_TRANSLATE is taken as Xen 4.17's pt_irq_create_bind
 *    takes it: an MSI pirq bound to a guest device's INTx.
 *
 * Environment: XENSTUB_LOG (log file), XENSTUB_VCPUS (guest vCPUs, default
 * 2), XENSTUB_FAIL=call:nth:errno (the nth call of that name fails).
 *
 * Built only as the shared object (tests/xenstub.mk defines XENSTUB_SO); in
 * the test helper library this file is empty, since its Xen symbols must
 * never reach a test program's link.
 */
#ifdef XENSTUB_SO

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/hvm/ioreq.h>

#include "xenstub.h"

#define STUB_PAGE        4096
#define STUB_MAX         512         /* entries per table */
#define STUB_GSI_PIRQ0   16
#define STUB_NR_PIRQS    (24 + 32)
#define STUB_MAX_VCPUS   (STUB_PAGE / sizeof(ioreq_t))
#define STUB_MAX_RANGES  64

/* ------------------------------------------------------------ log, faults */

static int log_fd = -1;
static char violations[32][200];
static unsigned nviolations;

static void stub_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void stub_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (log_fd < 0) {
        const char *path = getenv("XENSTUB_LOG");
        if (!path || !*path)
            return;
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0)
            return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) != n)
        return;     /* one line per write (O_APPEND): nothing else to do */
}

/* A refusal Xen would make: recorded, and the caller gets -1/errno. */
static int violation(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int violation(int err, const char *fmt, ...)
{
    va_list ap;
    char *slot = violations[nviolations < 32 ? nviolations : 31];

    va_start(ap, fmt);
    vsnprintf(slot, sizeof(violations[0]), fmt, ap);
    va_end(ap);
    nviolations++;
    stub_log("xenstub: violation: %s", slot);
    errno = err;
    return -1;
}

static char fail_call[64];
static unsigned fail_nth;
static int fail_err;

static void fail_from_env(void)
{
    static bool done;
    const char *spec = getenv("XENSTUB_FAIL");
    unsigned nth;
    int err;
    char name[64];

    if (done || !spec)
        return;
    done = true;
    if (sscanf(spec, "%63[^:]:%u:%d", name, &nth, &err) == 3)
        xenstub_fail(name, nth, err);
}

/* Should this call fail (fault injection)?  Logs the failure. */
static bool injected(const char *call)
{
    fail_from_env();
    if (!fail_nth || strcmp(call, fail_call) != 0 || --fail_nth)
        return false;
    errno = fail_err;
    stub_log("%s -> -1 errno=%d [injected]", call, fail_err);
    return true;
}

#define INJECT(call)            \
    do {                        \
        if (injected(call))     \
            return -1;          \
    } while (0)

static int ok_or_fail(int rc)
{
    if (rc < 0)
        stub_log("    -> -1 errno=%d (%s)", errno, strerror(errno));
    return rc;
}

/* ------------------------------------------------------------ state */

typedef struct Range { uint64_t a, b, c; uint32_t dom; bool live; } Range;

enum { PERM_IOMEM, PERM_IOPORT, PERM_IRQ };

typedef struct Pirq {
    uint32_t dom;
    int pirq, index;            /* index: GSI, or -1 for MSI */
    bool msi, live;
    uint32_t sbdf;              /* MSI: the device */
    int entry;                  /* MSI-X: the table entry (entry_nr), else -1 */
    bool gmasked;               /* MSI-X: Xen's guest_masked of the entry */
    bool addr_written;          /* MSI-X: Xen's table_flags bit of the entry */
} Pirq;

typedef struct Bind {
    uint32_t dom, pirq;
    uint8_t dev, intx;          /* INTx */
    bool msi, live;
    bool translate;             /* an MSI pirq as INTx (PT_IRQ_TYPE_MSI_TRANSLATE) */
    uint32_t gvec, gflags;      /* MSI */
    uint64_t gtable;            /* MSI-X: guest address of the table */
} Bind;

typedef struct Server {
    uint32_t dom;
    ioservid_t id;
    bool live, enabled;
    int memfd;
    ioreq_t *page;              /* the stub's own view of the ioreq page */
    unsigned nvcpus;
    Range ranges[STUB_MAX_RANGES];      /* a: type, b: start, c: end */
} Server;

struct xc_interface_core { int magic; };
struct xendevicemodel_handle { int magic; };
struct xenforeignmemory_handle { int magic; };
struct xenforeignmemory_resource_handle { void *addr; size_t size; };

typedef struct Port { int local; uint32_t dom, remote; bool live; } Port;

struct xenevtchn_handle {
    int efd;
    int pending[64];
    unsigned npending;
};

static Range assigned[STUB_MAX], mmio[STUB_MAX], io[STUB_MAX], perms[STUB_MAX];
static Pirq pirqs[STUB_MAX];
static Bind binds[STUB_MAX];
static Server servers[8];
static Port ports[STUB_MAX];
static xenevtchn_handle *evtchn_handle;     /* the one the device model opened */
static int next_local_port = 1, next_server_id = 1;
static uint32_t features;       /* XENVER_get_features, submap 0 */
static unsigned handles_open, resources_mapped, notifies, notified[STUB_MAX];

static Range *range_slot(Range *t)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (!t[i].live)
            return &t[i];
    return NULL;
}

static Range *range_find(Range *t, uint32_t dom, uint64_t a, uint64_t b, uint64_t c)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (t[i].live && t[i].dom == dom && t[i].a == a && t[i].b == b && t[i].c == c)
            return &t[i];
    return NULL;
}

static int range_add(Range *t, uint32_t dom, uint64_t a, uint64_t b, uint64_t c)
{
    Range *r = range_slot(t);

    if (!r)
        return violation(ENOSPC, "table full");
    *r = (Range){ a, b, c, dom, true };
    return 0;
}

static unsigned vcpus(void)
{
    const char *v = getenv("XENSTUB_VCPUS");
    unsigned n = v ? (unsigned)strtoul(v, NULL, 10) : 2;

    return n && n <= STUB_MAX_VCPUS ? n : 2;
}

static bool domain_ok(uint32_t dom)
{
    return dom > 0 && dom < DOMID_FIRST_RESERVED;
}

#define CHECK_DOM(dom)                                                  \
    do {                                                                \
        if (!domain_ok(dom))                                            \
            return ok_or_fail(violation(ESRCH, "no guest domain %u", dom)); \
    } while (0)

/* ------------------------------------------------------------ libxenctrl */

static struct xc_interface_core the_xch = { 0x78632121 };

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    (void)logger, (void)dombuild_logger;
    stub_log("xc_interface_open flags=0x%x", open_flags);
    if (injected("xc_interface_open"))
        return NULL;
    handles_open++;
    return &the_xch;
}

int xc_interface_close(xc_interface *xch)
{
    stub_log("xc_interface_close");
    if (xch != &the_xch)
        return violation(EINVAL, "xc_interface_close of a handle not ours");
    handles_open--;
    return 0;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                      xc_dominfo_t *info)
{
    (void)xch;
    stub_log("xc_domain_getinfo first=%u max=%u", first_domid, max_doms);
    INJECT("xc_domain_getinfo");
    if (!max_doms || !domain_ok(first_domid))
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    info->hvm = 1;
    info->running = 1;
    info->nr_online_vcpus = vcpus();
    info->max_vcpu_id = vcpus() - 1;
    return 1;
}

static int sbdf_call(const char *call, uint32_t dom, uint32_t sbdf, bool assign, bool test)
{
    Range *r = NULL;

    for (int i = 0; i < STUB_MAX && !r; i++)
        if (assigned[i].live && assigned[i].a == sbdf)
            r = &assigned[i];
    CHECK_DOM(dom);
    if (test)
        return ok_or_fail(r ? (errno = EBUSY, -1) : 0);
    if (assign)
        return ok_or_fail(r ? violation(EBUSY, "%s: 0x%x already assigned to dom%u", call, sbdf,
                                        r->dom)
                            : range_add(assigned, dom, sbdf, 0, 0));
    if (!r || r->dom != dom)
        return ok_or_fail(violation(EINVAL, "%s: 0x%x not assigned to dom%u", call, sbdf, dom));
    r->live = false;
    return 0;
}

int xc_test_assign_device(xc_interface *xch, uint32_t domid, uint32_t machine_sbdf)
{
    (void)xch;
    stub_log("xc_test_assign_device dom=%u sbdf=0x%x", domid, machine_sbdf);
    INJECT("xc_test_assign_device");
    return sbdf_call("xc_test_assign_device", domid, machine_sbdf, false, true);
}

int xc_assign_device(xc_interface *xch, uint32_t domid, uint32_t machine_sbdf, uint32_t flag)
{
    (void)xch;
    stub_log("xc_assign_device dom=%u sbdf=0x%x flag=%u", domid, machine_sbdf, flag);
    INJECT("xc_assign_device");
    if (flag > XEN_DOMCTL_DEV_RDM_RELAXED)
        return ok_or_fail(violation(EINVAL, "xc_assign_device: flag %u", flag));
    return sbdf_call("xc_assign_device", domid, machine_sbdf, true, false);
}

int xc_deassign_device(xc_interface *xch, uint32_t domid, uint32_t machine_sbdf)
{
    (void)xch;
    stub_log("xc_deassign_device dom=%u sbdf=0x%x", domid, machine_sbdf);
    INJECT("xc_deassign_device");
    return sbdf_call("xc_deassign_device", domid, machine_sbdf, false, false);
}

/* p2m mappings: guest ranges never overlap; a remove undoes one add exactly. */
static int mapping(const char *call, Range *t, uint32_t dom, uint64_t g, uint64_t m, uint64_t n,
                   uint32_t add)
{
    CHECK_DOM(dom);
    if (!n || add > 1)
        return ok_or_fail(violation(EINVAL, "%s: n=%lu add=%u", call, (unsigned long)n, add));
    if (!add) {
        Range *r = range_find(t, dom, g, m, n);
        if (!r)
            return ok_or_fail(violation(ENOENT, "%s: remove 0x%lx+%lu matches no mapping", call,
                                        (unsigned long)g, (unsigned long)n));
        r->live = false;
        return 0;
    }
    for (int i = 0; i < STUB_MAX; i++)
        if (t[i].live && t[i].dom == dom && g < t[i].a + t[i].c && t[i].a < g + n)
            return ok_or_fail(violation(EBUSY, "%s: 0x%lx+%lu overlaps 0x%lx+%lu", call,
                                        (unsigned long)g, (unsigned long)n,
                                        (unsigned long)t[i].a, (unsigned long)t[i].c));
    return ok_or_fail(range_add(t, dom, g, m, n));
}

int xc_domain_memory_mapping(xc_interface *xch, uint32_t domid, unsigned long first_gfn,
                             unsigned long first_mfn, unsigned long nr_mfns, uint32_t add_mapping)
{
    (void)xch;
    stub_log("xc_domain_memory_mapping dom=%u gfn=0x%lx mfn=0x%lx n=%lu add=%u", domid,
             first_gfn, first_mfn, nr_mfns, add_mapping);
    INJECT("xc_domain_memory_mapping");
    return mapping("xc_domain_memory_mapping", mmio, domid, first_gfn, first_mfn, nr_mfns,
                   add_mapping);
}

int xc_domain_ioport_mapping(xc_interface *xch, uint32_t domid, uint32_t first_gport,
                             uint32_t first_mport, uint32_t nr_ports, uint32_t add_mapping)
{
    (void)xch;
    stub_log("xc_domain_ioport_mapping dom=%u gport=0x%x mport=0x%x n=%u add=%u", domid,
             first_gport, first_mport, nr_ports, add_mapping);
    INJECT("xc_domain_ioport_mapping");
    if ((uint64_t)first_gport + nr_ports > 0x10000 || (uint64_t)first_mport + nr_ports > 0x10000)
        return ok_or_fail(violation(EINVAL, "ioport range beyond 0xffff"));
    return mapping("xc_domain_ioport_mapping", io, domid, first_gport, first_mport, nr_ports,
                   add_mapping);
}

/* Rangeset semantics: granting twice is one grant; revoking absent is no error. */
static int permission(uint32_t dom, int kind, uint64_t start, uint64_t n, bool allow)
{
    Range *r = range_find(perms, dom, (uint64_t)kind, start, n);

    CHECK_DOM(dom);
    if (allow)
        return r ? 0 : ok_or_fail(range_add(perms, dom, (uint64_t)kind, start, n));
    if (r)
        r->live = false;
    return 0;
}

int xc_domain_iomem_permission(xc_interface *xch, uint32_t domid, unsigned long first_mfn,
                               unsigned long nr_mfns, uint8_t allow_access)
{
    (void)xch;
    stub_log("xc_domain_iomem_permission dom=%u mfn=0x%lx n=%lu allow=%u", domid, first_mfn,
             nr_mfns, allow_access);
    INJECT("xc_domain_iomem_permission");
    return permission(domid, PERM_IOMEM, first_mfn, nr_mfns, allow_access);
}

int xc_domain_ioport_permission(xc_interface *xch, uint32_t domid, uint32_t first_port,
                                uint32_t nr_ports, uint32_t allow_access)
{
    (void)xch;
    stub_log("xc_domain_ioport_permission dom=%u port=0x%x n=%u allow=%u", domid, first_port,
             nr_ports, allow_access);
    INJECT("xc_domain_ioport_permission");
    return permission(domid, PERM_IOPORT, first_port, nr_ports, allow_access);
}

int xc_domain_irq_permission(xc_interface *xch, uint32_t domid, uint32_t pirq, bool allow_access)
{
    (void)xch;
    stub_log("xc_domain_irq_permission dom=%u pirq=%u allow=%d", domid, pirq, allow_access);
    INJECT("xc_domain_irq_permission");
    if (pirq >= STUB_NR_PIRQS)
        return ok_or_fail(violation(EINVAL, "irq_permission: pirq %u", pirq));
    return permission(domid, PERM_IRQ, pirq, 1, allow_access);
}

static Pirq *pirq_find(uint32_t dom, int pirq)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (pirqs[i].live && pirqs[i].dom == dom && pirqs[i].pirq == pirq)
            return &pirqs[i];
    return NULL;
}

/* Xen's get_free_pirq for an HVM guest: GSIs from 16 up, MSIs from the top. */
static int pirq_alloc(uint32_t dom, bool msi)
{
    for (int k = 0; k < STUB_NR_PIRQS - STUB_GSI_PIRQ0; k++) {
        int p = msi ? STUB_NR_PIRQS - 1 - k : STUB_GSI_PIRQ0 + k;
        if (!pirq_find(dom, p))
            return p;
    }
    return -1;
}

/* *pirq >= 0: that pirq (an HVM guest's own, for MSI), as Xen maps it. */
static int pirq_new(uint32_t dom, int index, bool msi, uint32_t sbdf, int *pirq)
{
    Pirq *slot = NULL;
    int p = *pirq >= 0 ? *pirq : pirq_alloc(dom, msi);

    if (*pirq >= STUB_NR_PIRQS)
        return violation(EINVAL, "pirq %d beyond the domain's %d", *pirq, STUB_NR_PIRQS);
    if (*pirq >= 0 && pirq_find(dom, *pirq))
        return violation(EEXIST, "pirq %d already mapped", *pirq);

    for (int i = 0; i < STUB_MAX && !slot; i++)
        if (!pirqs[i].live)
            slot = &pirqs[i];
    if (p < 0 || !slot)
        return violation(ENOSPC, "no free pirq");
    *slot = (Pirq){ dom, p, index, msi, true, sbdf, -1, false, false };
    *pirq = p;
    return 0;
}

int xc_physdev_map_pirq(xc_interface *xch, uint32_t domid, int index, int *pirq)
{
    int in = *pirq, rc;

    (void)xch;
    if (injected("xc_physdev_map_pirq"))
        return -1;
    rc = !domain_ok(domid) ? violation(ESRCH, "no guest domain %u", domid)
       : index <= 0 || in != -1 ? violation(EINVAL, "map_pirq index=%d pirq=%d", index, in)
       : 0;
    for (int i = 0; rc == 0 && i < STUB_MAX; i++)
        if (pirqs[i].live && pirqs[i].dom == domid && !pirqs[i].msi && pirqs[i].index == index)
            rc = violation(EEXIST, "GSI %d already mapped to pirq %d", index, pirqs[i].pirq);
    if (rc == 0)
        rc = pirq_new(domid, index, false, 0, pirq);
    stub_log("xc_physdev_map_pirq dom=%u index=%d pirq=%d -> pirq=%d", domid, index, in,
             rc ? -1 : *pirq);
    return ok_or_fail(rc);
}

int xc_physdev_map_pirq_msi(xc_interface *xch, uint32_t domid, int index, int *pirq, int devfn,
                            int bus, int entry_nr, uint64_t table_base)
{
    int in = *pirq, rc = 0;
    uint32_t sbdf = (uint32_t)(bus & 0xff) << 8 | (uint32_t)(devfn & 0xff);
    Range *dev = NULL;

    (void)xch;
    if (injected("xc_physdev_map_pirq_msi"))
        return -1;
    for (int i = 0; i < STUB_MAX && !dev; i++)
        if (assigned[i].live && assigned[i].dom == domid && assigned[i].a == sbdf)
            dev = &assigned[i];
    rc = !domain_ok(domid) ? violation(ESRCH, "no guest domain %u", domid)
       : index != -1 || in < -1 || entry_nr < 0 ? violation(EINVAL, "map_pirq_msi index=%d "
                                                            "pirq=%d entry=%d", index, in, entry_nr)
       : !dev ? violation(ENODEV, "map_pirq_msi: 0x%x is not assigned to dom%u", sbdf, domid)
       : pirq_new(domid, -1, true, sbdf, pirq);
    if (rc == 0 && table_base) {        /* MSI-X: Xen masks the entry at map time */
        Pirq *np = pirq_find(domid, *pirq);
        np->entry = entry_nr;
        np->gmasked = true;
    }
    stub_log("xc_physdev_map_pirq_msi dom=%u index=%d pirq=%d devfn=0x%x bus=0x%x entry=%d "
             "table=0x%lx -> pirq=%d", domid, index, in, devfn, bus, entry_nr,
             (unsigned long)table_base, rc ? -1 : *pirq);
    return ok_or_fail(rc);
}

static bool pirq_bound_translated(uint32_t dom, uint32_t pirq)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (binds[i].live && binds[i].dom == dom && binds[i].pirq == pirq && binds[i].translate)
            return true;
    return false;
}

static bool pirq_bound(uint32_t dom, uint32_t pirq)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (binds[i].live && binds[i].dom == dom && binds[i].pirq == pirq)
            return true;
    return false;
}

int xc_physdev_unmap_pirq(xc_interface *xch, uint32_t domid, int pirq)
{
    Pirq *p = pirq_find(domid, pirq);

    (void)xch;
    stub_log("xc_physdev_unmap_pirq dom=%u pirq=%d", domid, pirq);
    INJECT("xc_physdev_unmap_pirq");
    if (!p)
        return ok_or_fail(violation(EINVAL, "unmap_pirq: pirq %d not mapped", pirq));
    if (pirq_bound(domid, (uint32_t)pirq))
        return ok_or_fail(violation(EBUSY, "unmap_pirq: pirq %d still bound", pirq));
    p->live = false;
    return 0;
}

static Bind *bind_find_kind(uint32_t dom, uint32_t pirq, bool msi, bool translate, uint8_t dev,
                            uint8_t intx)
{
    for (int i = 0; i < STUB_MAX; i++) {
        Bind *b = &binds[i];
        if (b->live && b->dom == dom && b->pirq == pirq && b->msi == msi &&
            b->translate == translate && (msi || (b->dev == dev && b->intx == intx)))
            return b;
    }
    return NULL;
}

static Bind *bind_find(uint32_t dom, uint32_t pirq, bool msi, uint8_t dev, uint8_t intx)
{
    return bind_find_kind(dom, pirq, msi, false, dev, intx);
}

static int bind_add(Bind b)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (!binds[i].live) {
            binds[i] = b;
            binds[i].live = true;
            return 0;
        }
    return violation(ENOSPC, "binding table full");
}

int xc_domain_bind_pt_pci_irq(xc_interface *xch, uint32_t domid, uint8_t machine_irq,
                              uint8_t bus, uint8_t device, uint8_t intx)
{
    Pirq *p = pirq_find(domid, machine_irq);

    (void)xch;
    stub_log("xc_domain_bind_pt_pci_irq dom=%u irq=%u bus=%u dev=0x%x intx=%u", domid,
             machine_irq, bus, device, intx);
    INJECT("xc_domain_bind_pt_pci_irq");
    if (!p || p->msi)
        return ok_or_fail(violation(EINVAL, "bind_pt_pci_irq: %u is no GSI pirq", machine_irq));
    if (bus || device > 31 || intx > 3)
        return ok_or_fail(violation(EINVAL, "bind_pt_pci_irq: bus %u dev %u intx %u", bus,
                                    device, intx));
    return ok_or_fail(bind_add((Bind){ .dom = domid, .pirq = machine_irq, .dev = device,
                                       .intx = intx }));
}

/*
 * Xen 4.17's pt_irq_create_bind for PT_IRQ_TYPE_MSI_TRANSLATE: an MSI pirq
 * mapped for the guest asserts the INTx of device/intx.  Xen refuses a
 * pirq it cannot bind (not mapped) and an MSI binding of it later (EBUSY);
 * it would accept a translation of a pirq already bound as MSI, which no
 * device model should ask: recorded as a violation.
 */
static int bind_translate(uint32_t dom, uint8_t irq, uint8_t bus, uint8_t dev, uint8_t intx)
{
    Pirq *p = pirq_find(dom, irq);

    if (!p || !p->msi)
        return violation(EINVAL, "bind_pt_irq MSI_TRANSLATE: %u is no MSI pirq", irq);
    if (bus || dev > 31 || intx > 3)
        return violation(EINVAL, "bind_pt_irq MSI_TRANSLATE: bus %u dev %u intx %u", bus, dev,
                         intx);
    if (pirq_bound(dom, irq))
        return violation(EBUSY, "bind_pt_irq MSI_TRANSLATE: pirq %u already bound", irq);
    return bind_add((Bind){ .dom = dom, .pirq = irq, .dev = dev, .intx = intx,
                            .translate = true });
}

int xc_domain_bind_pt_irq(xc_interface *xch, uint32_t domid, uint8_t machine_irq,
                          uint8_t irq_type, uint8_t bus, uint8_t device, uint8_t intx,
                          uint8_t isa_irq)
{
    (void)xch;
    if (irq_type == PT_IRQ_TYPE_PCI)
        return xc_domain_bind_pt_pci_irq(xch, domid, machine_irq, bus, device, intx);
    stub_log("xc_domain_bind_pt_irq dom=%u irq=%u type=%u bus=%u dev=0x%x intx=%u isa=%u",
             domid, machine_irq, irq_type, bus, device, intx, isa_irq);
    INJECT("xc_domain_bind_pt_irq");
    if (irq_type != PT_IRQ_TYPE_MSI_TRANSLATE)
        return ok_or_fail(violation(EOPNOTSUPP, "bind_pt_irq: type %u not modelled", irq_type));
    return ok_or_fail(bind_translate(domid, machine_irq, bus, device, intx));
}

int xc_domain_unbind_pt_irq(xc_interface *xch, uint32_t domid, uint8_t machine_irq,
                            uint8_t irq_type, uint8_t bus, uint8_t device, uint8_t intx,
                            uint8_t isa_irq)
{
    bool translate = irq_type == PT_IRQ_TYPE_MSI_TRANSLATE;
    Bind *b = bind_find_kind(domid, machine_irq, false, translate, device, intx);

    (void)xch;
    stub_log("xc_domain_unbind_pt_irq dom=%u irq=%u type=%u bus=%u dev=0x%x intx=%u isa=%u",
             domid, machine_irq, irq_type, bus, device, intx, isa_irq);
    INJECT("xc_domain_unbind_pt_irq");
    if ((irq_type != PT_IRQ_TYPE_PCI && !translate) || bus || !b)
        return ok_or_fail(violation(EINVAL, "unbind_pt_irq: no PCI binding of irq %u dev %u "
                                    "intx %u", machine_irq, device, intx));
    b->live = false;
    return 0;
}

int xc_domain_update_msi_irq(xc_interface *xch, uint32_t domid, uint32_t gvec, uint32_t pirq,
                             uint32_t gflags, uint64_t gtable)
{
    Pirq *p = pirq_find(domid, (int)pirq);
    Bind *b = bind_find(domid, pirq, true, 0, 0);

    (void)xch;
    stub_log("xc_domain_update_msi_irq dom=%u gvec=0x%x pirq=%u gflags=0x%x gtable=0x%lx",
             domid, gvec, pirq, gflags, (unsigned long)gtable);
    INJECT("xc_domain_update_msi_irq");
    if (!p || !p->msi)
        return ok_or_fail(violation(EINVAL, "update_msi_irq: %u is no MSI pirq", pirq));
    if (gvec > 0xff || gflags & ~0x1ffffu)
        return ok_or_fail(violation(EINVAL, "update_msi_irq: gvec 0x%x gflags 0x%x", gvec,
                                    gflags));
    if (pirq_bound_translated(domid, pirq))
        return ok_or_fail(violation(EBUSY, "update_msi_irq: pirq %u is delivered as INTx", pirq));
    if (gflags & XEN_DOMCTL_VMSI_X86_UNMASKED)
        p->gmasked = false;
    if (b) {
        b->gvec = gvec;
        b->gflags = gflags;
        b->gtable = gtable;
        return 0;
    }
    return ok_or_fail(bind_add((Bind){ .dom = domid, .pirq = pirq, .msi = true, .gvec = gvec,
                                       .gflags = gflags, .gtable = gtable }));
}

int xc_domain_unbind_msi_irq(xc_interface *xch, uint32_t domid, uint32_t gvec, uint32_t pirq,
                             uint32_t gflags)
{
    Bind *b = bind_find(domid, pirq, true, 0, 0);

    (void)xch;
    stub_log("xc_domain_unbind_msi_irq dom=%u gvec=0x%x pirq=%u gflags=0x%x", domid, gvec, pirq,
             gflags);
    INJECT("xc_domain_unbind_msi_irq");
    if (!b)
        return ok_or_fail(violation(EINVAL, "unbind_msi_irq: pirq %u not bound", pirq));
    if (b->gvec != gvec)
        return ok_or_fail(violation(EINVAL, "unbind_msi_irq: pirq %u is bound to 0x%x, not "
                                    "0x%x", pirq, b->gvec, gvec));
    b->live = false;
    Pirq *p = pirq_find(domid, (int)pirq);
    if (p && p->entry >= 0)             /* pt_irq_destroy_bind leaves it masked */
        p->gmasked = true, p->addr_written = false;
    return 0;
}

/* Debian's Xen 4.17: XENFEAT_dm_msix_all_writes (4.19) is not among them. */
int xc_version(xc_interface *xch, int cmd, void *arg)
{
    (void)xch;
    stub_log("xc_version cmd=%d", cmd);
    INJECT("xc_version");
    if (cmd != XENVER_get_features)
        return ok_or_fail(violation(ENOSYS, "xc_version: cmd %d not modelled", cmd));
    xen_feature_info_t *fi = arg;
    fi->submap = fi->submap_idx == 0 ? features : 0;
    return 0;
}

/* ------------------------------------------------------------ libxendevicemodel */

static struct xendevicemodel_handle the_dmod = { 0x646d6f64 };

xendevicemodel_handle *xendevicemodel_open(struct xentoollog_logger *logger,
                                           unsigned int open_flags)
{
    (void)logger;
    stub_log("xendevicemodel_open flags=0x%x", open_flags);
    if (injected("xendevicemodel_open"))
        return NULL;
    handles_open++;
    return &the_dmod;
}

int xendevicemodel_close(xendevicemodel_handle *dmod)
{
    stub_log("xendevicemodel_close");
    if (dmod != &the_dmod)
        return violation(EINVAL, "xendevicemodel_close of a handle not ours");
    handles_open--;
    return 0;
}

static Server *server_find(domid_t dom, ioservid_t id)
{
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        if (servers[i].live && servers[i].dom == dom && servers[i].id == id)
            return &servers[i];
    return NULL;
}

#define FIND_SERVER(s, dom, id)                                                     \
    Server *s = server_find(dom, id);                                               \
    if (!s)                                                                         \
        return ok_or_fail(violation(ENOENT, "no ioreq server %u of dom%u", id, dom))

int xendevicemodel_create_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                       int handle_bufioreq, ioservid_t *id)
{
    Server *s = NULL;

    (void)dmod;
    stub_log("xendevicemodel_create_ioreq_server dom=%u bufioreq=%d", domid, handle_bufioreq);
    INJECT("xendevicemodel_create_ioreq_server");
    CHECK_DOM(domid);
    if (handle_bufioreq != HVM_IOREQSRV_BUFIOREQ_OFF)
        return ok_or_fail(violation(EOPNOTSUPP, "the stand-in serves no buffered ioreqs"));
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]) && !s; i++)
        if (!servers[i].live)
            s = &servers[i];
    if (!s)
        return ok_or_fail(violation(ENOSPC, "too many ioreq servers"));
    int fd = memfd_create("xenstub-ioreq", MFD_CLOEXEC);
    void *page = fd < 0 || ftruncate(fd, STUB_PAGE) < 0 ? MAP_FAILED
               : mmap(NULL, STUB_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED) {
        if (fd >= 0)
            close(fd);
        return ok_or_fail(-1);
    }
    *s = (Server){ .dom = domid, .id = (ioservid_t)next_server_id++, .live = true, .memfd = fd,
                   .page = page, .nvcpus = vcpus() };
    *id = s->id;
    stub_log("    -> id=%u", s->id);
    return 0;
}

int xendevicemodel_get_ioreq_server_info(xendevicemodel_handle *dmod, domid_t domid,
                                         ioservid_t id, xen_pfn_t *ioreq_gfn,
                                         xen_pfn_t *bufioreq_gfn, evtchn_port_t *bufioreq_port)
{
    (void)dmod;
    stub_log("xendevicemodel_get_ioreq_server_info dom=%u id=%u gfns=%s port=%s", domid, id,
             ioreq_gfn || bufioreq_gfn ? "asked" : "no", bufioreq_port ? "asked" : "no");
    INJECT("xendevicemodel_get_ioreq_server_info");
    FIND_SERVER(s, domid, id);
    (void)s;
    /* Legacy gfn mapping is not modelled: the resource is the way in 4.17. */
    if (ioreq_gfn || bufioreq_gfn)
        return ok_or_fail(violation(EOPNOTSUPP, "ioreq gfns asked for; map the resource"));
    if (bufioreq_port)
        *bufioreq_port = 0;
    return 0;
}

static bool range_overlaps(const Server *s, int type, uint64_t start, uint64_t end)
{
    for (int i = 0; i < STUB_MAX_RANGES; i++) {
        const Range *r = &s->ranges[i];
        if (r->live && r->a == (uint64_t)type && start <= r->c && r->b <= end)
            return true;
    }
    return false;
}

static int server_range(const char *call, domid_t domid, ioservid_t id, int type,
                        uint64_t start, uint64_t end, bool map)
{
    FIND_SERVER(s, domid, id);
    if (start > end)
        return ok_or_fail(violation(EINVAL, "%s: start > end", call));
    for (int i = 0; i < STUB_MAX_RANGES; i++) {
        Range *r = &s->ranges[i];
        if (!map && r->live && r->a == (uint64_t)type && r->b == start && r->c == end) {
            r->live = false;
            return 0;
        }
        if (map && !r->live && !range_overlaps(s, type, start, end)) {
            *r = (Range){ (uint64_t)type, start, end, domid, true };
            return 0;
        }
    }
    return ok_or_fail(violation(map ? EEXIST : ENOENT, "%s: type %d 0x%lx-0x%lx %s", call, type,
                                (unsigned long)start, (unsigned long)end,
                                map ? "overlaps a claimed range" : "matches no claimed range"));
}

int xendevicemodel_map_io_range_to_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                ioservid_t id, int is_mmio, uint64_t start,
                                                uint64_t end)
{
    (void)dmod;
    stub_log("xendevicemodel_map_io_range_to_ioreq_server dom=%u id=%u mmio=%d start=0x%lx "
             "end=0x%lx", domid, id, is_mmio, (unsigned long)start, (unsigned long)end);
    INJECT("xendevicemodel_map_io_range_to_ioreq_server");
    return server_range("map_io_range", domid, id, is_mmio ? XEN_DMOP_IO_RANGE_MEMORY
                                                           : XEN_DMOP_IO_RANGE_PORT,
                        start, end, true);
}

int xendevicemodel_unmap_io_range_from_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                    ioservid_t id, int is_mmio, uint64_t start,
                                                    uint64_t end)
{
    (void)dmod;
    stub_log("xendevicemodel_unmap_io_range_from_ioreq_server dom=%u id=%u mmio=%d start=0x%lx "
             "end=0x%lx", domid, id, is_mmio, (unsigned long)start, (unsigned long)end);
    INJECT("xendevicemodel_unmap_io_range_from_ioreq_server");
    return server_range("unmap_io_range", domid, id, is_mmio ? XEN_DMOP_IO_RANGE_MEMORY
                                                             : XEN_DMOP_IO_RANGE_PORT,
                        start, end, false);
}

/* Xen keeps a PCI claim as a one-SBDF range (XEN_DMOP_PCI_SBDF). */
static uint64_t pci_sbdf(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
    return (uint64_t)seg << 16 | (uint64_t)bus << 8 | (uint64_t)(dev & 0x1f) << 3 | (fn & 7);
}

int xendevicemodel_map_pcidev_to_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                              ioservid_t id, uint16_t segment, uint8_t bus,
                                              uint8_t device, uint8_t function)
{
    uint64_t sbdf = pci_sbdf(segment, bus, device, function);

    (void)dmod;
    stub_log("xendevicemodel_map_pcidev_to_ioreq_server dom=%u id=%u seg=%u bus=%u dev=0x%x "
             "fn=%u", domid, id, segment, bus, device, function);
    INJECT("xendevicemodel_map_pcidev_to_ioreq_server");
    if (device > 31 || function > 7)
        return ok_or_fail(violation(EINVAL, "map_pcidev: dev %u fn %u", device, function));
    return server_range("map_pcidev", domid, id, XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf, true);
}

int xendevicemodel_unmap_pcidev_from_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                  ioservid_t id, uint16_t segment, uint8_t bus,
                                                  uint8_t device, uint8_t function)
{
    uint64_t sbdf = pci_sbdf(segment, bus, device, function);

    (void)dmod;
    stub_log("xendevicemodel_unmap_pcidev_from_ioreq_server dom=%u id=%u seg=%u bus=%u dev=0x%x "
             "fn=%u", domid, id, segment, bus, device, function);
    INJECT("xendevicemodel_unmap_pcidev_from_ioreq_server");
    return server_range("unmap_pcidev", domid, id, XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf, false);
}

/* Xen allocates one event channel per vCPU and tells the emulator in the
 * page; here the ports are visible once the server is enabled. */
static evtchn_port_t remote_port(const Server *s, unsigned vcpu)
{
    return (evtchn_port_t)(0x100 * s->id + 0x10 + vcpu);
}

int xendevicemodel_set_ioreq_server_state(xendevicemodel_handle *dmod, domid_t domid,
                                          ioservid_t id, int enabled)
{
    (void)dmod;
    stub_log("xendevicemodel_set_ioreq_server_state dom=%u id=%u enabled=%d", domid, id, enabled);
    INJECT("xendevicemodel_set_ioreq_server_state");
    FIND_SERVER(s, domid, id);
    s->enabled = enabled != 0;
    for (unsigned v = 0; v < s->nvcpus; v++)
        s->page[v].vp_eport = remote_port(s, v);
    return 0;
}

int xendevicemodel_destroy_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                        ioservid_t id)
{
    (void)dmod;
    stub_log("xendevicemodel_destroy_ioreq_server dom=%u id=%u", domid, id);
    INJECT("xendevicemodel_destroy_ioreq_server");
    FIND_SERVER(s, domid, id);
    for (int i = 0; i < STUB_MAX_RANGES; i++)
        if (s->ranges[i].live)
            violation(EBUSY, "ioreq server %u destroyed with range type %lu 0x%lx-0x%lx claimed",
                      id, (unsigned long)s->ranges[i].a, (unsigned long)s->ranges[i].b,
                      (unsigned long)s->ranges[i].c);
    munmap(s->page, STUB_PAGE);
    close(s->memfd);
    s->live = false;
    return 0;
}

/* ------------------------------------------------------------ libxenforeignmemory */

static struct xenforeignmemory_handle the_fmem = { 0x666d656d };

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger,
                                               unsigned open_flags)
{
    (void)logger;
    stub_log("xenforeignmemory_open flags=0x%x", open_flags);
    if (injected("xenforeignmemory_open"))
        return NULL;
    handles_open++;
    return &the_fmem;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
    stub_log("xenforeignmemory_close");
    if (fmem != &the_fmem)
        return violation(EINVAL, "xenforeignmemory_close of a handle not ours");
    handles_open--;
    return 0;
}

xenforeignmemory_resource_handle *xenforeignmemory_map_resource(
    xenforeignmemory_handle *fmem, domid_t domid, unsigned int type, unsigned int id,
    unsigned long frame, unsigned long nr_frames, void **paddr, int prot, int flags)
{
    Server *s = server_find(domid, (ioservid_t)id);
    xenforeignmemory_resource_handle *h;

    (void)fmem;
    stub_log("xenforeignmemory_map_resource dom=%u type=%u id=%u frame=%lu n=%lu prot=0x%x "
             "flags=0x%x", domid, type, id, frame, nr_frames, prot, flags);
    if (injected("xenforeignmemory_map_resource"))
        return NULL;
    if (type != XENMEM_resource_ioreq_server || !s ||
        frame != XENMEM_resource_ioreq_server_frame_ioreq(0) || nr_frames != 1 || *paddr) {
        violation(EINVAL, "map_resource: only the ioreq frame of a live server, at any address");
        ok_or_fail(-1);
        return NULL;
    }
    h = malloc(sizeof(*h));
    void *addr = h ? mmap(NULL, STUB_PAGE, prot, MAP_SHARED, s->memfd, 0) : MAP_FAILED;
    if (addr == MAP_FAILED) {
        free(h);
        errno = ENOMEM;
        return NULL;
    }
    *h = (xenforeignmemory_resource_handle){ addr, STUB_PAGE };
    *paddr = addr;
    resources_mapped++;
    return h;
}

int xenforeignmemory_unmap_resource(xenforeignmemory_handle *fmem,
                                    xenforeignmemory_resource_handle *fres)
{
    (void)fmem;
    stub_log("xenforeignmemory_unmap_resource");
    if (!fres)
        return 0;
    munmap(fres->addr, fres->size);
    free(fres);
    resources_mapped--;
    return 0;
}

/* ------------------------------------------------------------ libxenevtchn */

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    xenevtchn_handle *x;

    (void)logger;
    stub_log("xenevtchn_open flags=0x%x", open_flags);
    if (injected("xenevtchn_open"))
        return NULL;
    x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (x->efd < 0) {
        free(x);
        return NULL;
    }
    evtchn_handle = x;
    handles_open++;
    return x;
}

int xenevtchn_close(xenevtchn_handle *xce)
{
    stub_log("xenevtchn_close");
    if (!xce)
        return 0;
    for (int i = 0; i < STUB_MAX; i++)
        if (ports[i].live)
            violation(EBUSY, "event channel %d still bound at close", ports[i].local);
    close(xce->efd);
    if (evtchn_handle == xce)
        evtchn_handle = NULL;
    free(xce);
    handles_open--;
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    return xce->efd;
}

static Port *port_by(bool by_local, uint32_t dom, uint32_t n)
{
    for (int i = 0; i < STUB_MAX; i++)
        if (ports[i].live && (by_local ? (uint32_t)ports[i].local == n
                                       : ports[i].dom == dom && ports[i].remote == n))
            return &ports[i];
    return NULL;
}

static bool remote_exists(uint32_t dom, evtchn_port_t remote)
{
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        for (unsigned v = 0; servers[i].live && servers[i].enabled && servers[i].dom == dom &&
                             v < servers[i].nvcpus; v++)
            if (remote_port(&servers[i], v) == remote)
                return true;
    return false;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    Port *p = NULL;

    (void)xce;
    stub_log("xenevtchn_bind_interdomain dom=%u remote=%u", domid, remote_port);
    INJECT("xenevtchn_bind_interdomain");
    if (!remote_exists(domid, remote_port) || port_by(false, domid, remote_port))
        return ok_or_fail(violation(EINVAL, "bind_interdomain: dom%u has no unbound port %u "
                                    "for us", domid, remote_port));
    for (int i = 0; i < STUB_MAX && !p; i++)
        if (!ports[i].live)
            p = &ports[i];
    if (!p)
        return ok_or_fail(violation(ENOSPC, "no free event channel"));
    *p = (Port){ next_local_port++, domid, remote_port, true };
    stub_log("    -> local=%d", p->local);
    return p->local;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    Port *p = port_by(true, 0, port);

    (void)xce;
    stub_log("xenevtchn_unbind port=%u", port);
    INJECT("xenevtchn_unbind");
    if (!p)
        return ok_or_fail(violation(EINVAL, "unbind: port %u not bound", port));
    p->live = false;
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    uint64_t v;
    int port;

    if (!xce->npending) {
        errno = EAGAIN;
        return -1;
    }
    port = xce->pending[0];
    memmove(xce->pending, xce->pending + 1, --xce->npending * sizeof(xce->pending[0]));
    if (!xce->npending && read(xce->efd, &v, sizeof(v)) < 0)
        v = 0;      /* already drained */
    stub_log("xenevtchn_pending -> %d", port);
    return port;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce;
    stub_log("xenevtchn_unmask port=%u", port);
    return 0;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce;
    stub_log("xenevtchn_notify port=%u", port);
    INJECT("xenevtchn_notify");
    if (!port_by(true, 0, port))
        return ok_or_fail(violation(EINVAL, "notify: port %u not bound", port));
    notifies++;
    if (port < STUB_MAX)
        notified[port]++;
    return 0;
}

/* ------------------------------------------------------------ Xen's MSI-X table handlers */

#define STUB_FEAT_MSIX_ALL_WRITES (1u << 20)       /* XENFEAT_dm_msix_all_writes (4.19) */
#define STUB_MSIX_ENTRY           16
#define STUB_MSIX_CTRL            12

/* The pirq of the bound MSI-X entry at a guest address (Xen's
 * msixtbl_range: only entries with an msi_desc are Xen's). */
static Pirq *msix_bound_at(uint64_t addr)
{
    for (int i = 0; i < STUB_MAX; i++) {
        const Bind *b = &binds[i];
        if (!b->live || !b->msi || !b->gtable)
            continue;
        Pirq *p = pirq_find(b->dom, (int)b->pirq);
        if (!p || p->entry < 0)
            continue;
        uint64_t at = b->gtable + (uint64_t)p->entry * STUB_MSIX_ENTRY;
        if (addr >= at && addr < at + STUB_MSIX_ENTRY)
            return p;
    }
    return NULL;
}

/*
 * Xen 4.17's msixtbl_read/msixtbl_write (arch/x86/hvm/vmsi.c) for a bound
 * entry: the vector control reads as Xen's guest mask; a write of it is
 * applied by Xen and, for a 4-byte write, not sent on, unless it unmasks
 * after the address or data changed (then the device model sees it).
 * With XENFEAT_dm_msix_all_writes (4.19) every write is also sent on.
 * True when Xen answered itself (*answer: what a read returns).
 */
static bool msixtbl_handles(const ioreq_t *req, uint64_t *answer)
{
    unsigned off = (unsigned)(req->addr % STUB_MSIX_ENTRY);
    uint64_t val = req->data;
    Pirq *p;

    if (req->type != IOREQ_TYPE_COPY || req->data_is_ptr || (req->size != 4 && req->size != 8) ||
        req->addr % req->size || !(p = msix_bound_at(req->addr)))
        return false;
    if (req->dir == IOREQ_READ) {
        *answer = p->gmasked;
        return off == STUB_MSIX_CTRL;
    }
    if (off != STUB_MSIX_CTRL) {
        p->addr_written = true;
        if (req->size != 8 || off != 8)
            return false;
        val >>= 32;
    }
    if (!(val & 1) && p->addr_written) {
        p->addr_written = false;
        p->gmasked = false;             /* once the device model has rebound it */
        return false;
    }
    p->gmasked = val & 1;
    stub_log("msixtbl: pirq %d entry %d %s by Xen", p->pirq, p->entry,
             val & 1 ? "masked" : "unmasked");
    return req->size == 4 && !(features & STUB_FEAT_MSIX_ALL_WRITES);
}

/* ------------------------------------------------------------ the test's side */

void xenstub_set_features(uint32_t submap0)
{
    features = submap0;
}

void xenstub_fail(const char *call, unsigned nth, int err)
{
    snprintf(fail_call, sizeof(fail_call), "%s", call);
    fail_nth = nth;
    fail_err = err;
}

static Server *enabled_server(void)
{
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        if (servers[i].live && servers[i].enabled)
            return &servers[i];
    return NULL;
}

/* Is the request claimed by the server (Xen would route it there)? */
static bool claimed(const Server *s, const ioreq_t *req)
{
    int type = req->type == IOREQ_TYPE_PIO ? XEN_DMOP_IO_RANGE_PORT
             : req->type == IOREQ_TYPE_COPY ? XEN_DMOP_IO_RANGE_MEMORY
             : XEN_DMOP_IO_RANGE_PCI;
    uint64_t a = type == XEN_DMOP_IO_RANGE_PCI ? req->addr >> 32 : req->addr;
    uint64_t b = type == XEN_DMOP_IO_RANGE_PCI ? a : a + req->size - 1;

    for (int i = 0; i < STUB_MAX_RANGES; i++) {
        const Range *r = &s->ranges[i];
        if (r->live && r->a == (uint64_t)type && r->b <= a && b <= r->c)
            return true;
    }
    return false;
}

/* Requests Xen completed itself, per vCPU, for the next poll. */
static ioreq_t xen_done[STUB_MAX_VCPUS];
static bool xen_done_ready[STUB_MAX_VCPUS];

int xenstub_ioreq_post(unsigned vcpu, const ioreq_t *req)
{
    Server *s = enabled_server();
    Port *p;
    uint64_t one = 1, answer = 0;

    if (!s || vcpu >= s->nvcpus || !evtchn_handle)
        return -ENODEV;
    if (xen_done_ready[vcpu])
        return -EBUSY;
    if (msixtbl_handles(req, &answer)) {
        xen_done[vcpu] = *req;
        if (req->dir == IOREQ_READ)
            xen_done[vcpu].data = answer;
        xen_done[vcpu].state = STATE_IORESP_READY;
        xen_done_ready[vcpu] = true;
        return 0;
    }
    if (!claimed(s, req))
        return -ENOENT;     /* Xen would send it to another server, or drop it */
    p = port_by(false, s->dom, remote_port(s, vcpu));
    if (!p)
        return -ENOTCONN;
    ioreq_t *slot = &s->page[vcpu];
    if (slot->state != STATE_IOREQ_NONE)
        return -EBUSY;
    evtchn_port_t eport = slot->vp_eport;
    *slot = *req;
    slot->vp_eport = eport;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    slot->state = STATE_IOREQ_READY;
    if (evtchn_handle->npending < 64)
        evtchn_handle->pending[evtchn_handle->npending++] = p->local;
    if (write(evtchn_handle->efd, &one, sizeof(one)) != sizeof(one))
        return -EIO;
    return 0;
}

int xenstub_ioreq_poll(unsigned vcpu, ioreq_t *out)
{
    Server *s = enabled_server();
    Port *p;

    if (!s || vcpu >= s->nvcpus)
        return -ENODEV;
    if (xen_done_ready[vcpu]) {
        *out = xen_done[vcpu];
        xen_done_ready[vcpu] = false;
        return 1;
    }
    p = port_by(false, s->dom, remote_port(s, vcpu));
    ioreq_t *slot = &s->page[vcpu];
    if (slot->state != STATE_IORESP_READY || !p || p->local >= STUB_MAX ||
        !notified[p->local])
        return 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    notified[p->local]--;
    *out = *slot;
    slot->state = STATE_IOREQ_NONE;
    return 1;
}

unsigned xenstub_violations(void)
{
    return nviolations;
}

const char *xenstub_violation(unsigned i)
{
    return i < nviolations && i < 32 ? violations[i] : NULL;
}

#define LEFT(cond, ...)                                                       \
    do {                                                                      \
        if (cond) {                                                           \
            int k = snprintf(buf + used, used < len ? len - used : 0, __VA_ARGS__); \
            used += k > 0 ? (size_t)k : 0;                                    \
            left++;                                                           \
        }                                                                     \
    } while (0)

int xenstub_check_clean(char *buf, size_t len)
{
    size_t used = 0;
    int left = 0;

    buf[0] = '\0';
    for (int i = 0; i < STUB_MAX; i++) {
        LEFT(assigned[i].live, "assigned 0x%lx; ", (unsigned long)assigned[i].a);
        LEFT(mmio[i].live, "mmio gfn 0x%lx+%lu; ", (unsigned long)mmio[i].a,
             (unsigned long)mmio[i].c);
        LEFT(io[i].live, "ioport 0x%lx+%lu; ", (unsigned long)io[i].a, (unsigned long)io[i].c);
        LEFT(perms[i].live, "permission kind %lu 0x%lx+%lu; ", (unsigned long)perms[i].a,
             (unsigned long)perms[i].b, (unsigned long)perms[i].c);
        LEFT(pirqs[i].live, "pirq %d; ", pirqs[i].pirq);
        LEFT(binds[i].live, "%s binding of pirq %u; ",
             binds[i].msi ? "MSI" : binds[i].translate ? "MSI-as-INTx" : "INTx", binds[i].pirq);
        LEFT(ports[i].live, "event channel %d; ", ports[i].local);
    }
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        LEFT(servers[i].live, "ioreq server %u; ", servers[i].id);
    LEFT(resources_mapped, "%u mapped resources; ", resources_mapped);
    LEFT(handles_open, "%u open handles; ", handles_open);
    for (unsigned i = 0; i < nviolations && i < 32; i++)
        LEFT(true, "violation: %s; ", violations[i]);
    return left ? -1 : 0;
}

void xenstub_reset(void)
{
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        if (servers[i].live) {
            munmap(servers[i].page, STUB_PAGE);
            close(servers[i].memfd);
        }
    memset(assigned, 0, sizeof(assigned));
    memset(mmio, 0, sizeof(mmio));
    memset(io, 0, sizeof(io));
    memset(perms, 0, sizeof(perms));
    memset(pirqs, 0, sizeof(pirqs));
    memset(binds, 0, sizeof(binds));
    memset(servers, 0, sizeof(servers));
    memset(ports, 0, sizeof(ports));
    memset(notified, 0, sizeof(notified));
    memset(xen_done_ready, 0, sizeof(xen_done_ready));
    nviolations = 0;
    features = 0;
    handles_open = resources_mapped = notifies = 0;
    fail_nth = 0;
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;        /* XENSTUB_LOG is read again: a test may switch files */
}

#else
/* Not a stand-in here: see the top of the file. */
typedef int xenstub_not_built_here;
#endif
