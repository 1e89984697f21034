/*
 * The `xen` hypervisor: the ops of hw/hypervisor.h through libxenctrl of
 * Xen 4.17, for one HVM guest domain.
 *
 * libxenctrl returns -1 with errno set (a few calls return -errno); both
 * become a negative errno here, and every failure is logged once with the
 * call and its arguments.
 *
 * Two things are kept here because Xen does not keep them the way the ops
 * promise (the sim's semantics are the contract):
 *  - A GSI shared by several functions is mapped to one pirq once; Xen has
 *    no reference count on it (one unmap would take it from every sharer),
 *    so the references are counted here and Xen is asked on the first map
 *    and the last unmap.
 *  - XEN_DOMCTL_irq_permission names the caller's (dom0's) pirq, not the
 *    guest's: for a GSI pirq mapped here the GSI is passed, which is dom0's
 *    pirq for that GSI.
 *
 * Xen's features (XENVER_get_features) are read once, at open: whether all
 * MSI-X vector-control writes reach the device model (Xen 4.19 and later,
 * XENFEAT_dm_msix_all_writes; Debian's 4.17 has not got it).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <xenctrl.h>
#include <xen/features.h>

#include "dm-log.h"
#include "hypervisor.h"
#include "pt-place.h"

#define XEN_PRIVCMD "/dev/xen/privcmd"

/* public/features.h of Xen 4.19; 4.17's header does not name it. */
#ifndef XENFEAT_dm_msix_all_writes
#define XENFEAT_dm_msix_all_writes 20
#endif

typedef struct XenGsi {
    int gsi, pirq;
    unsigned refs;
} XenGsi;

typedef struct HvXen {
    Hypervisor hv;
    xc_interface *xch;
    uint32_t domid;
    char who[24];               /* log prefix: "xen dom5" */
    bool msix_all_writes;       /* XENFEAT_dm_msix_all_writes */
    bool trace;                 /* QEMU_DM_XEN_TRACE=1: log every call */
    XenGsi *gsis;
    size_t ngsis, cap;
} HvXen;

static const HypervisorOps xen_ops;

static HvXen *to_xen(Hypervisor *hv)
{
    return (HvXen *)hv;
}

/* ------------------------------------------------------------ errors */

/* rc of a libxenctrl call -> 0 or -errno; a failure is logged with the
 * call, and so is a success when tracing. */
static int __attribute__((format(printf, 4, 5)))
xen_rc(HvXen *x, int rc, const char *call, const char *fmt, ...)
{
    if (rc >= 0 && !x->trace)
        return 0;
    int err = rc >= 0 ? 0 : rc != -1 ? -rc : errno > 0 ? errno : EIO;  /* -1/errno, or -errno */
    char args[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    dm_log(x->who, "%s(%s): %s", call, args, err ? strerror(err) : "ok");
    return -err;
}

/* Xen's SBDF: segment 31:16, bus 15:8, devfn 7:0. */
static uint32_t xen_sbdf(PtBdf b)
{
    return (uint32_t)b.domain << 16 | (uint32_t)b.bus << 8 | PT_DEVFN(b.dev, b.func);
}

/* ------------------------------------------------------------ devices */

static int xen_test_device(Hypervisor *hv, PtBdf h)
{
    HvXen *x = to_xen(hv);
    uint32_t sbdf = xen_sbdf(h);

    return xen_rc(x, xc_test_assign_device(x->xch, x->domid, sbdf),
                  "xc_test_assign_device", "sbdf=0x%x", sbdf);
}

/* Flag 0: reserved device memory strict, xl's per-device default
 * (xl-pci-configuration(5), rdm_policy); not XEN_DOMCTL_DEV_RDM_RELAXED. */
#define XEN_ASSIGN_RDM_STRICT 0u

static int xen_assign_device(Hypervisor *hv, PtBdf h, uint8_t devfn)
{
    HvXen *x = to_xen(hv);
    uint32_t sbdf = xen_sbdf(h);

    (void)devfn;        /* Xen assigns by host SBDF; the guest devfn is ours */
    return xen_rc(x, xc_assign_device(x->xch, x->domid, sbdf, XEN_ASSIGN_RDM_STRICT),
                  "xc_assign_device", "sbdf=0x%x", sbdf);
}

static int xen_deassign_device(Hypervisor *hv, PtBdf h, uint8_t devfn)
{
    HvXen *x = to_xen(hv);
    uint32_t sbdf = xen_sbdf(h);

    (void)devfn;
    return xen_rc(x, xc_deassign_device(x->xch, x->domid, sbdf),
                  "xc_deassign_device", "sbdf=0x%x", sbdf);
}

/* ------------------------------------------------------------ mappings */

static int memory_mapping(HvXen *x, uint64_t gfn, uint64_t mfn, uint64_t n, uint32_t add)
{
    return xen_rc(x, xc_domain_memory_mapping(x->xch, x->domid, gfn, mfn, n, add),
                  "xc_domain_memory_mapping",
                  "gfn=0x%" PRIx64 " mfn=0x%" PRIx64 " n=%" PRIu64 " add=%u",
                  gfn, mfn, n, add);
}

static int xen_map_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{
    return memory_mapping(to_xen(hv), gfn, mfn, n, DPCI_ADD_MAPPING);
}

static int xen_unmap_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{
    return memory_mapping(to_xen(hv), gfn, mfn, n, DPCI_REMOVE_MAPPING);
}

static int ioport_mapping(HvXen *x, uint32_t g, uint32_t m, uint32_t n, uint32_t add)
{
    return xen_rc(x, xc_domain_ioport_mapping(x->xch, x->domid, g, m, n, add),
                  "xc_domain_ioport_mapping", "gport=0x%x mport=0x%x n=%u add=%u",
                  g, m, n, add);
}

static int xen_map_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{
    return ioport_mapping(to_xen(hv), g, m, n, DPCI_ADD_MAPPING);
}

static int xen_unmap_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{
    return ioport_mapping(to_xen(hv), g, m, n, DPCI_REMOVE_MAPPING);
}

/* ------------------------------------------------------------ pirqs */

static XenGsi *gsi_by(HvXen *x, bool by_pirq, int key)
{
    for (size_t i = 0; i < x->ngsis; i++)
        if ((by_pirq ? x->gsis[i].pirq : x->gsis[i].gsi) == key)
            return &x->gsis[i];
    return NULL;
}

static void gsi_add(HvXen *x, int gsi, int pirq)
{
    if (x->ngsis == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 8;
        x->gsis = g_renew(XenGsi, x->gsis, cap);
        x->cap = cap;
    }
    x->gsis[x->ngsis++] = (XenGsi){ gsi, pirq, 1 };
}

static int xen_map_pirq(Hypervisor *hv, int gsi, int *pirq)
{
    HvXen *x = to_xen(hv);
    XenGsi *g = gsi_by(x, false, gsi);
    int p = -1, rc;

    if (g) {
        g->refs++;
        *pirq = g->pirq;
        return 0;
    }
    rc = xen_rc(x, xc_physdev_map_pirq(x->xch, x->domid, gsi, &p),
                "xc_physdev_map_pirq", "index=%d", gsi);
    if (rc < 0)
        return rc;
    gsi_add(x, gsi, p);
    *pirq = p;
    return 0;
}

/* Xen 4.17's xc_physdev_map_pirq_msi has no segment (MAP_PIRQ_TYPE_MSI). */
static int xen_map_pirq_msi(Hypervisor *hv, PtBdf h, int entry, uint64_t table_base, int *pirq)
{
    HvXen *x = to_xen(hv);
    int p = *pirq, rc;

    if (h.domain != 0) {
        dm_log(x->who, "xc_physdev_map_pirq_msi: segment %04x is not reachable "
               "through Xen 4.17's libxenctrl", h.domain);
        return -EOPNOTSUPP;
    }
    rc = xen_rc(x, xc_physdev_map_pirq_msi(x->xch, x->domid, -1, &p, PT_DEVFN(h.dev, h.func),
                                           h.bus, entry, table_base),
                "xc_physdev_map_pirq_msi", "pirq=%d bus=0x%x devfn=0x%x entry=%d table=0x%" PRIx64,
                *pirq, h.bus, PT_DEVFN(h.dev, h.func), entry, table_base);
    if (rc == 0)
        *pirq = p;
    if (rc == 0 && x->trace)
        dm_log(x->who, "xc_physdev_map_pirq_msi: pirq %d", p);
    return rc;
}

static int xen_unmap_pirq(Hypervisor *hv, int pirq)
{
    HvXen *x = to_xen(hv);
    XenGsi *g = gsi_by(x, true, pirq);

    if (g && --g->refs > 0)
        return 0;
    if (g)
        *g = x->gsis[--x->ngsis];
    return xen_rc(x, xc_physdev_unmap_pirq(x->xch, x->domid, pirq),
                  "xc_physdev_unmap_pirq", "pirq=%d", pirq);
}

/* ------------------------------------------------------------ INTx */

/* Xen routes by guest device and pin; the function does not matter. */
static int xen_bind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    HvXen *x = to_xen(hv);

    if (pirq < 0 || pirq > UINT8_MAX || intx > 3)
        return -EINVAL;
    return xen_rc(x, xc_domain_bind_pt_pci_irq(x->xch, x->domid, (uint8_t)pirq, 0,
                                               PT_SLOT(devfn), intx),
                  "xc_domain_bind_pt_pci_irq", "irq=%d dev=0x%x intx=%u",
                  pirq, PT_SLOT(devfn), intx);
}

static int xen_unbind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    HvXen *x = to_xen(hv);

    if (pirq < 0 || pirq > UINT8_MAX || intx > 3)
        return -EINVAL;
    return xen_rc(x, xc_domain_unbind_pt_irq(x->xch, x->domid, (uint8_t)pirq, PT_IRQ_TYPE_PCI,
                                             0, PT_SLOT(devfn), intx, 0),
                  "xc_domain_unbind_pt_irq", "irq=%d dev=0x%x intx=%u",
                  pirq, PT_SLOT(devfn), intx);
}

/* ------------------------------------------------------------ MSI as INTx */

/*
 * PT_IRQ_TYPE_MSI_TRANSLATE (Xen 4.17's pt_irq_create_bind takes it as the
 * PCI type: the MSI pirq asserts the guest's INTx of device/intx, and Xen
 * EOIs the MSI itself as soon as it is delivered).  libxenctrl's
 * xc_domain_bind_pt_irq carries the pirq in 8 bits.
 */
static int msi_intx(HvXen *x, int pirq, uint8_t devfn, uint8_t intx, bool bind)
{
    const char *call = bind ? "xc_domain_bind_pt_irq" : "xc_domain_unbind_pt_irq";

    if (intx > 3)
        return -EINVAL;
    if (pirq < 0 || pirq > UINT8_MAX) {
        dm_log(x->who, "%s(irq=%d type=MSI_TRANSLATE): the pirq does not fit the 8 bits "
               "Xen 4.17's libxenctrl has for it", call, pirq);
        return -ERANGE;
    }
    int rc = bind ? xc_domain_bind_pt_irq(x->xch, x->domid, (uint8_t)pirq,
                                          PT_IRQ_TYPE_MSI_TRANSLATE, 0, PT_SLOT(devfn), intx, 0)
                  : xc_domain_unbind_pt_irq(x->xch, x->domid, (uint8_t)pirq,
                                            PT_IRQ_TYPE_MSI_TRANSLATE, 0, PT_SLOT(devfn), intx, 0);
    return xen_rc(x, rc, call, "irq=%d type=MSI_TRANSLATE dev=0x%x intx=%u",
                  pirq, PT_SLOT(devfn), intx);
}

static int xen_bind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return msi_intx(to_xen(hv), pirq, devfn, intx, true);
}

static int xen_unbind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return msi_intx(to_xen(hv), pirq, devfn, intx, false);
}

/* ------------------------------------------------------------ MSI */

/* value placed in the field that mask covers */
static uint32_t field(uint32_t mask, uint32_t value)
{
    return (value << __builtin_ctz(mask)) & mask;
}

static const struct {
    uint32_t hv_flag, gflag;
} msi_flag_bits[] = {
    { HV_MSI_REDIR_HINT,   XEN_DOMCTL_VMSI_X86_RH_MASK },
    { HV_MSI_DEST_LOGICAL, XEN_DOMCTL_VMSI_X86_DM_MASK },
    { HV_MSI_TRIG_LEVEL,   XEN_DOMCTL_VMSI_X86_TRIG_MASK },
    { HV_MSI_UNMASKED,     XEN_DOMCTL_VMSI_X86_UNMASKED },
};

/* gflags of XEN_DOMCTL_bind_pt_irq (public/domctl.h, 4.17): 8-bit APIC
 * destination, RH, DM, delivery mode, trigger, unmasked.  -EINVAL for what
 * the layout cannot carry. */
static int msi_gflags(const HvMsi *m, uint32_t *out)
{
    uint32_t g;

    if (m->dest > 0xff || m->delivery_mode > 7)
        return -EINVAL;
    g = field(XEN_DOMCTL_VMSI_X86_DEST_ID_MASK, m->dest) |
        field(XEN_DOMCTL_VMSI_X86_DELIV_MASK, m->delivery_mode);
    for (size_t i = 0; i < sizeof(msi_flag_bits) / sizeof(msi_flag_bits[0]); i++)
        if (m->flags & msi_flag_bits[i].hv_flag)
            g |= msi_flag_bits[i].gflag;
    *out = g;
    return 0;
}

/* Bind and update are the same domctl: it rebinds a live pirq in place. */
static int xen_update_msi(Hypervisor *hv, int pirq, const HvMsi *m)
{
    HvXen *x = to_xen(hv);
    uint32_t gflags;

    if (msi_gflags(m, &gflags) < 0) {
        dm_log(x->who, "pirq %d: MSI destination 0x%x / mode %u does not fit Xen's gflags",
               pirq, m->dest, m->delivery_mode);
        return -EINVAL;
    }
    return xen_rc(x, xc_domain_update_msi_irq(x->xch, x->domid, m->vector, (uint32_t)pirq,
                                              gflags, m->table),
                  "xc_domain_update_msi_irq", "gvec=0x%x pirq=%d gflags=0x%x gtable=0x%" PRIx64,
                  m->vector, pirq, gflags, m->table);
}

static int xen_unbind_msi(Hypervisor *hv, int pirq, const HvMsi *m)
{
    HvXen *x = to_xen(hv);
    uint32_t gflags;

    if (msi_gflags(m, &gflags) < 0)
        return -EINVAL;
    return xen_rc(x, xc_domain_unbind_msi_irq(x->xch, x->domid, m->vector, (uint32_t)pirq,
                                              gflags),
                  "xc_domain_unbind_msi_irq", "gvec=0x%x pirq=%d gflags=0x%x",
                  m->vector, pirq, gflags);
}

/* ------------------------------------------------------------ permissions */

static int xen_iomem_permission(Hypervisor *hv, uint64_t mfn, uint64_t n, bool allow)
{
    HvXen *x = to_xen(hv);

    return xen_rc(x, xc_domain_iomem_permission(x->xch, x->domid, mfn, n, allow),
                  "xc_domain_iomem_permission", "mfn=0x%" PRIx64 " n=%" PRIu64 " allow=%d",
                  mfn, n, allow);
}

static int xen_ioport_permission(Hypervisor *hv, uint32_t port, uint32_t n, bool allow)
{
    HvXen *x = to_xen(hv);

    return xen_rc(x, xc_domain_ioport_permission(x->xch, x->domid, port, n, allow),
                  "xc_domain_ioport_permission", "port=0x%x n=%u allow=%d", port, n, allow);
}

static int xen_irq_permission(Hypervisor *hv, int pirq, bool allow)
{
    HvXen *x = to_xen(hv);
    XenGsi *g = gsi_by(x, true, pirq);
    int own = g ? g->gsi : pirq;

    if (own < 0)
        return -EINVAL;
    return xen_rc(x, xc_domain_irq_permission(x->xch, x->domid, (uint32_t)own, allow),
                  "xc_domain_irq_permission", "pirq=%d allow=%d", own, allow);
}

/* ------------------------------------------------------------ features */

static bool xen_msix_all_writes(Hypervisor *hv)
{
    return to_xen(hv)->msix_all_writes;
}

/* Once per qemu-dm: what Xen does with MSI-X mask writes, said in one line. */
static void read_features(HvXen *x)
{
    xen_feature_info_t fi = { .submap_idx = 0 };
    int rc = xc_version(x->xch, XENVER_get_features, &fi);
    char unknown[96] = "";

    x->msix_all_writes = rc >= 0 && (fi.submap & (1u << XENFEAT_dm_msix_all_writes));
    if (rc < 0)
        snprintf(unknown, sizeof(unknown), " (XENVER_get_features: %s)", strerror(errno));
    if (x->msix_all_writes)
        dm_log("xen", "XENFEAT_dm_msix_all_writes present: every MSI-X mask write reaches "
               "qemu-dm");
    else
        dm_log("xen", "XENFEAT_dm_msix_all_writes absent%s: MSI-X mask writes stay in Xen; "
               "an entry's new address/data is bound at the unmask Xen forwards", unknown);
}

/* ------------------------------------------------------------ life */

static void xen_free(Hypervisor *hv)
{
    HvXen *x = to_xen(hv);

    xc_interface_close(x->xch);
    g_free(x->gsis);
    g_free(x);
}

/* libxenctrl would print its own lines on a failed open; ours is enough. */
static void quiet_vmessage(struct xentoollog_logger *l, xentoollog_level level, int errnoval,
                           const char *context, const char *format, va_list al)
{
    (void)l, (void)level, (void)errnoval, (void)context, (void)format, (void)al;
}

static void quiet_destroy(struct xentoollog_logger *l)
{
    (void)l;
}

static xentoollog_logger quiet_logger = { quiet_vmessage, NULL, quiet_destroy };

/* Why the hypervisor interface cannot be opened, in the kernel's words. */
static int privcmd_errno(void)
{
    int fd = open(XEN_PRIVCMD, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

Hypervisor *hypervisor_xen_new(uint32_t domid, PtError *err)
{
    HvXen *x;
    xc_interface *xch = xc_interface_open(&quiet_logger, &quiet_logger, 0);

    if (!xch) {
        int e = privcmd_errno();
        pt_error_set(err, "no Xen here: cannot open the hypervisor interface (%s: %s)",
                     XEN_PRIVCMD, e ? strerror(e) : "opens, but libxenctrl refused it");
        return NULL;
    }
    if (domid == 0 || domid >= DOMID_FIRST_RESERVED) {
        pt_error_set(err, "Xen is here, but no guest domain is named (domid %u): give its domid",
                     domid);
        xc_interface_close(xch);
        return NULL;
    }
    x = g_new0(HvXen, 1);
    x->hv.ops = &xen_ops;
    x->xch = xch;
    x->domid = domid;
    x->trace = g_strcmp0(getenv("QEMU_DM_XEN_TRACE"), "1") == 0;
    snprintf(x->who, sizeof(x->who), "xen dom%u", domid);
    read_features(x);
    return &x->hv;
}

static const HypervisorOps xen_ops = {
    .name = "xen",
    .test_device = xen_test_device,
    .assign_device = xen_assign_device,
    .deassign_device = xen_deassign_device,
    .map_mmio = xen_map_mmio,
    .unmap_mmio = xen_unmap_mmio,
    .map_ioport = xen_map_ioport,
    .unmap_ioport = xen_unmap_ioport,
    .map_pirq = xen_map_pirq,
    .map_pirq_msi = xen_map_pirq_msi,
    .unmap_pirq = xen_unmap_pirq,
    .bind_intx = xen_bind_intx,
    .unbind_intx = xen_unbind_intx,
    .bind_msi = xen_update_msi,
    .update_msi = xen_update_msi,
    .unbind_msi = xen_unbind_msi,
    .iomem_permission = xen_iomem_permission,
    .ioport_permission = xen_ioport_permission,
    .irq_permission = xen_irq_permission,
    .bind_msi_intx = xen_bind_msi_intx,
    .unbind_msi_intx = xen_unbind_msi_intx,
    .msix_all_writes = xen_msix_all_writes,
    .free = xen_free,
};
