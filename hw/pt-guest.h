/*
 * The pass-through devices of one guest: attach a spec as one unit (every
 * function or none, function 0 plugged last, one notification), detach a
 * whole guest slot.  qemu-dm's command line, the monitor and the xenstore
 * channel all come through here.
 */
#ifndef PT_GUEST_H
#define PT_GUEST_H

#include "host-assign.h"
#include "host-pci.h"
#include "hypervisor.h"
#include "pass-through.h"
#include "pci.h"
#include "pt-msi.h"
#include "pt-plan.h"

typedef struct PtGuest PtGuest;

/* A slot became visible (inserted) or was removed, after all its functions. */
typedef void (*PtSlotFn)(void *opaque, unsigned vslot, bool inserted);

PtGuest *pt_guest_new(HostPci *host, PciBus *bus, Hypervisor *hv, uint32_t reserved,
                      const PtPlanDefaults *dflt);
/* Detaches everything. */
void pt_guest_free(PtGuest *g);
/* Observers are keyed by opaque: a second call with the same opaque
 * replaces its function, fn NULL removes it.  Front-ends (the QEMU guest,
 * the ACPI hot-plug controller) each register one. */
void pt_guest_set_slot_observer(PtGuest *g, PtSlotFn fn, void *opaque);

/* Who else holds host functions (other domains), consulted with this
 * guest's own functions by every attach; NULL: nobody else known.  The
 * sources must outlive their use. */
void pt_guest_set_holders(PtGuest *g, const PtHolders *others);

/* Slots automatic placement keeps clear of while a boot list is attached
 * (the slots its later entries pin); 0 when done. */
void pt_guest_keep_clear(PtGuest *g, uint32_t slots);

/*
 * Reset every function through sysfs (hw/host-assign.h) before the guest
 * first sees it and after it lets it go, logging the method or why there
 * is none.  NULL (the default): no resets.
 */
void pt_guest_set_host_reset(PtGuest *g, HostAssign *reset);

/*
 * Attach a spec.  On failure nothing of it is left: no plugged function,
 * mapping, pirq or assignment, bus map as before; the return is the cause
 * as the layer that refused gave it (hw/pt-plan.h, the hypervisor's errno),
 * err its words.
 */
int pt_guest_attach(PtGuest *g, const char *spec, PtPlan *plan, PtError *err);
/* The same for an expanded request; partial: xend's per-function protocol
 * (a pinned function other than 0 may wait for its function 0). */
int pt_guest_attach_request(PtGuest *g, const PtRequest *req, const char *text, bool partial,
                            PtPlan *plan, PtError *err);

/* Detach the guest slot holding any function named by spec (unplug form),
 * or a slot by number: every function of it.  Returns how many functions
 * were removed, or a negative errno with err set. */
int pt_guest_detach(PtGuest *g, const char *spec, PtError *err);
int pt_guest_detach_slot(PtGuest *g, unsigned vslot, PtError *err);
/* The guest slot holding any function named by spec, or a negative errno. */
int pt_guest_slot_of_spec(const PtGuest *g, const char *spec, PtError *err);

/* Attached functions, in attach order. */
typedef struct PtGuestFunc {
    PtBdf host;
    uint8_t vdevfn;
    PtFunc *fn;
    PtMsi *msi;         /* its MSI/MSI-X bindings */
    PtOptions opts;
} PtGuestFunc;

int pt_guest_count(const PtGuest *g);
const PtGuestFunc *pt_guest_func_at(const PtGuest *g, int i);
/* The attached function of host function bdf, or NULL. */
const PtGuestFunc *pt_guest_func_of(const PtGuest *g, PtBdf bdf);
/* The guest slot of a host function, or -1. */
int pt_guest_vslot_of(const PtGuest *g, PtBdf host);
const PtBusMap *pt_guest_busmap(const PtGuest *g);

#endif
