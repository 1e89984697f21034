/*
 * Hypervisor operations the device model needs for pass-through: device
 * assignment, direct MMIO and I/O-port mappings, pirqs for INTx and MSI,
 * and the permissions behind them.
 *
 * One const ops table per implementation, reached through a Hypervisor
 * handle.  Implementations embed `Hypervisor` as their first member.
 *   sim: records every call and checks invariants (hypervisor_sim_new).
 *   xen: libxenctrl of Xen 4.17 (hypervisor_xen_new).
 * Every call returns 0 or a negative errno.
 */
#ifndef HYPERVISOR_H
#define HYPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pt-types.h"

typedef struct Hypervisor Hypervisor;

/* How the guest wants an MSI delivered (from the guest's address/data). */
typedef struct HvMsi {
    uint8_t vector;
    uint32_t dest;          /* APIC destination ID */
    uint8_t delivery_mode;  /* MSI data bits 10:8: 0 fixed, 1 lowest prio... */
    uint32_t flags;         /* HV_MSI_* */
    uint64_t table;         /* MSI-X: guest address of the table, else 0 */
} HvMsi;

#define HV_MSI_DEST_LOGICAL (1u << 0)
#define HV_MSI_REDIR_HINT   (1u << 1)
#define HV_MSI_TRIG_LEVEL   (1u << 2)
#define HV_MSI_UNMASKED     (1u << 3)

typedef struct HypervisorOps {
    const char *name;

    /* Devices, by host BDF; guest devfn on bus 0. */
    int (*test_device)(Hypervisor *hv, PtBdf host);
    int (*assign_device)(Hypervisor *hv, PtBdf host, uint8_t devfn);
    int (*deassign_device)(Hypervisor *hv, PtBdf host, uint8_t devfn);

    /* Guest frames gfn..gfn+n-1 -> host frames mfn..mfn+n-1. */
    int (*map_mmio)(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n);
    int (*unmap_mmio)(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n);
    /* Guest ports gport..gport+n-1 -> host ports mport... */
    int (*map_ioport)(Hypervisor *hv, uint32_t gport, uint32_t mport, uint32_t n);
    int (*unmap_ioport)(Hypervisor *hv, uint32_t gport, uint32_t mport, uint32_t n);

    /* A pirq for a host GSI (INTx) or for an MSI/MSI-X vector of a device
     * (entry: MSI-X table entry, 0 for MSI; table_base: host table address).
     * map_pirq_msi's *pirq is in/out: the guest's own pirq to map (a Xen
     * HVM guest names one in its message, see pt-msi.h), or -1 for any. */
    int (*map_pirq)(Hypervisor *hv, int gsi, int *pirq);
    int (*map_pirq_msi)(Hypervisor *hv, PtBdf host, int entry,
                        uint64_t table_base, int *pirq);
    int (*unmap_pirq)(Hypervisor *hv, int pirq);

    /* INTx: pirq -> guest devfn, pin 0 = INTA .. 3 = INTD (the hypervisor
     * derives the link with the same swizzle as hw/pci.h). */
    int (*bind_intx)(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx);
    int (*unbind_intx)(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx);
    /* msitranslate: an MSI pirq (map_pirq_msi, entry 0) delivered as the
     * guest's INTx of devfn, pin intx (Xen: PT_IRQ_TYPE_MSI_TRANSLATE).  An
     * MSI pirq is bound either this way or by bind_msi, never both. */
    int (*bind_msi_intx)(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx);
    int (*unbind_msi_intx)(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx);
    /* MSI: pirq -> guest vector; update rewrites a live binding. */
    int (*bind_msi)(Hypervisor *hv, int pirq, const HvMsi *msi);
    int (*update_msi)(Hypervisor *hv, int pirq, const HvMsi *msi);
    int (*unbind_msi)(Hypervisor *hv, int pirq, const HvMsi *msi);

    /* Permissions the mappings rely on: allow or revoke. */
    int (*iomem_permission)(Hypervisor *hv, uint64_t mfn, uint64_t n, bool allow);
    int (*ioport_permission)(Hypervisor *hv, uint32_t port, uint32_t n, bool allow);
    int (*irq_permission)(Hypervisor *hv, int pirq, bool allow);

    /* Does every guest write of an MSI-X entry's vector control reach the
     * device model?  Xen: XENFEAT_dm_msix_all_writes; without it Xen applies
     * the mask writes of a bound entry itself and forwards an unmask only
     * after the entry's address or data changed. */
    bool (*msix_all_writes)(Hypervisor *hv);

    void (*free)(Hypervisor *hv);
} HypervisorOps;

/* The handle; implementations put it first in their own struct. */
struct Hypervisor {
    const HypervisorOps *ops;
};

void hypervisor_free(Hypervisor *hv);

/* Thin dispatchers so callers never spell hv->ops->x(hv, ...). */
static inline int hv_test_device(Hypervisor *hv, PtBdf h)
{ return hv->ops->test_device(hv, h); }
static inline int hv_assign_device(Hypervisor *hv, PtBdf h, uint8_t devfn)
{ return hv->ops->assign_device(hv, h, devfn); }
static inline int hv_deassign_device(Hypervisor *hv, PtBdf h, uint8_t devfn)
{ return hv->ops->deassign_device(hv, h, devfn); }
static inline int hv_map_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{ return hv->ops->map_mmio(hv, gfn, mfn, n); }
static inline int hv_unmap_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{ return hv->ops->unmap_mmio(hv, gfn, mfn, n); }
static inline int hv_map_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{ return hv->ops->map_ioport(hv, g, m, n); }
static inline int hv_unmap_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{ return hv->ops->unmap_ioport(hv, g, m, n); }
static inline int hv_map_pirq(Hypervisor *hv, int gsi, int *pirq)
{ return hv->ops->map_pirq(hv, gsi, pirq); }
static inline int hv_map_pirq_msi(Hypervisor *hv, PtBdf h, int entry,
                                  uint64_t table_base, int *pirq)
{ return hv->ops->map_pirq_msi(hv, h, entry, table_base, pirq); }
static inline int hv_unmap_pirq(Hypervisor *hv, int pirq)
{ return hv->ops->unmap_pirq(hv, pirq); }
static inline int hv_bind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{ return hv->ops->bind_intx(hv, pirq, devfn, intx); }
static inline int hv_unbind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{ return hv->ops->unbind_intx(hv, pirq, devfn, intx); }
static inline int hv_bind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{ return hv->ops->bind_msi_intx(hv, pirq, devfn, intx); }
static inline int hv_unbind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{ return hv->ops->unbind_msi_intx(hv, pirq, devfn, intx); }
static inline int hv_bind_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{ return hv->ops->bind_msi(hv, pirq, msi); }
static inline int hv_update_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{ return hv->ops->update_msi(hv, pirq, msi); }
static inline int hv_unbind_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{ return hv->ops->unbind_msi(hv, pirq, msi); }
static inline int hv_iomem_permission(Hypervisor *hv, uint64_t mfn, uint64_t n, bool allow)
{ return hv->ops->iomem_permission(hv, mfn, n, allow); }
static inline int hv_ioport_permission(Hypervisor *hv, uint32_t port, uint32_t n, bool allow)
{ return hv->ops->ioport_permission(hv, port, n, allow); }
static inline int hv_irq_permission(Hypervisor *hv, int pirq, bool allow)
{ return hv->ops->irq_permission(hv, pirq, allow); }
static inline bool hv_msix_all_writes(Hypervisor *hv)
{ return hv->ops->msix_all_writes(hv); }

/* ------------------------------------------------------------------ xen */

/*
 * Guest domain domid through libxenctrl (Xen 4.17).  NULL with err set when
 * the hypervisor interface cannot be opened (the message starts "no Xen
 * here: ") or domid is not a guest's (0, or reserved).  Reads Xen's
 * features once and logs one line on XENFEAT_dm_msix_all_writes.
 */
Hypervisor *hypervisor_xen_new(uint32_t domid, PtError *err);

/* ------------------------------------------------------------------ sim */

/*
 * Records every call and checks its invariants; what it recorded is read
 * through hypervisor-sim.h (tests and fuzzers).
 */
Hypervisor *hypervisor_sim_new(void);

#endif
