/*
 * Looking inside the sim hypervisor (hypervisor_sim_new): the calls it
 * recorded, the invariant violations it saw, what is live now, and fault
 * injection.  For tests and fuzzers; the device model itself only creates
 * it, through hypervisor.h.
 */
#ifndef HYPERVISOR_SIM_H
#define HYPERVISOR_SIM_H

#include "hypervisor.h"

typedef enum HvOp {
    HV_OP_TEST_DEVICE,
    HV_OP_ASSIGN_DEVICE,
    HV_OP_DEASSIGN_DEVICE,
    HV_OP_MAP_MMIO,
    HV_OP_UNMAP_MMIO,
    HV_OP_MAP_IOPORT,
    HV_OP_UNMAP_IOPORT,
    HV_OP_MAP_PIRQ,
    HV_OP_MAP_PIRQ_MSI,
    HV_OP_UNMAP_PIRQ,
    HV_OP_BIND_INTX,
    HV_OP_UNBIND_INTX,
    HV_OP_BIND_MSI,
    HV_OP_UPDATE_MSI,
    HV_OP_UNBIND_MSI,
    HV_OP_IOMEM_PERMISSION,
    HV_OP_IOPORT_PERMISSION,
    HV_OP_IRQ_PERMISSION,
    HV_OP_BIND_MSI_INTX,
    HV_OP_UNBIND_MSI_INTX,
    HV_OP_COUNT
} HvOp;

/* One recorded call; only the fields of its op are meaningful. */
typedef struct HvCall {
    HvOp op;
    int rc;                 /* what the caller got back */
    bool injected;          /* rc came from fault injection */
    PtBdf host;             /* device ops, map_pirq_msi */
    uint8_t devfn;          /* assign/deassign, bind/unbind_(msi_)intx */
    uint8_t intx;           /* bind/unbind_(msi_)intx */
    uint64_t guest;         /* gfn, gport */
    uint64_t machine;       /* mfn, mport, permission start */
    uint64_t count;         /* frames, ports */
    int gsi;                /* map_pirq; MSI-X entry for map_pirq_msi */
    uint64_t table_base;    /* map_pirq_msi */
    int pirq;               /* result of map_pirq*, argument otherwise */
    HvMsi msi;              /* bind/update/unbind_msi */
    bool allow;             /* permissions */
} HvCall;

bool hypervisor_is_sim(const Hypervisor *hv);
/* Play a hypervisor that keeps MSI-X mask writes to itself (Xen without
 * XENFEAT_dm_msix_all_writes); the default is true. */
void hypervisor_sim_set_msix_all_writes(Hypervisor *hv, bool all);

/* Log: one structured record and one text line per call, in order. */
size_t hypervisor_sim_log_len(Hypervisor *hv);
const HvCall *hypervisor_sim_log_at(Hypervisor *hv, size_t i);
/* e.g. "map_mmio gfn=0xf0000 mfn=0xfe000 n=4" */
const char *hypervisor_sim_log_line(Hypervisor *hv, size_t i);
/* Lines from..end, each ending in '\n'; g_free the result. */
char *hypervisor_sim_log_text(Hypervisor *hv, size_t from);
/* Print the log to stderr (debugging a failing test). */
void hypervisor_sim_log_dump(Hypervisor *hv);
/* Forget the calls logged so far (the live state and the call count stay):
 * for long runs such as fuzzers, whose checks look at live state. */
void hypervisor_sim_log_clear(Hypervisor *hv);

/* Invariant violations, in order (also printed to stderr as they happen). */
size_t hypervisor_sim_error_count(Hypervisor *hv);
const char *hypervisor_sim_error_at(Hypervisor *hv, size_t i);

/* What is live now. */
size_t hypervisor_sim_mmio_mappings(Hypervisor *hv);
size_t hypervisor_sim_ioport_mappings(Hypervisor *hv);
size_t hypervisor_sim_pirqs(Hypervisor *hv);          /* mapped pirqs */
size_t hypervisor_sim_bindings(Hypervisor *hv);       /* INTx + MSI bindings */
size_t hypervisor_sim_assigned(Hypervisor *hv);       /* assigned devices */
size_t hypervisor_sim_permissions(Hypervisor *hv);    /* granted, not revoked */
/* Is guest frame gfn mapped, and to which host frame? */
bool hypervisor_sim_mmio_lookup(Hypervisor *hv, uint64_t gfn, uint64_t *mfn);

/*
 * 0 when nothing is live (no mapping, pirq, binding, assignment or
 * permission left) and no violation was recorded; -EBUSY otherwise, with
 * each leftover printed to stderr.  For unplug tests.
 */
int hypervisor_sim_check_clean(Hypervisor *hv);

/*
 * Fault injection: the k-th call from now (k = 1: the next one) fails with
 * -err and changes nothing.  k = 0 disarms.  Counts every op.
 */
void hypervisor_sim_fail_call(Hypervisor *hv, unsigned k, int err);
/* Has the armed fault fired since it was armed? */
bool hypervisor_sim_fault_fired(Hypervisor *hv);
/* Calls made since creation. */
unsigned long hypervisor_sim_calls(Hypervisor *hv);

#endif
