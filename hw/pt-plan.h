/*
 * From a spec as a person writes it to a placement on the guest bus:
 * parse, expand against the host's functions, check every function is
 * assignable, place.  Used by qemu-dm's command line, the monitor and the
 * xenstore channel alike, so all of them accept and refuse the same things.
 */
#ifndef PT_PLAN_H
#define PT_PLAN_H

#include "host-pci.h"
#include "pt-place.h"

/* Per-guest defaults; opts.map is the mapping scheme (identity unless the
 * guest says least). */
typedef struct PtPlanDefaults {
    PtOptions opts;
} PtPlanDefaults;

typedef struct PtPlan {
    PtPlacement placement;
    PtOptions opts;             /* merged: spec over guest defaults */
} PtPlan;

/* On failure the bus map is unchanged and err says why. */
int pt_plan_spec(HostPci *host, PtBusMap *map, const char *text,
                 const PtPlanDefaults *dflt, PtPlan *plan, PtError *err);

/* The same from an expanded request (the per-function wire protocol);
 * partial as for pt_place. */
int pt_plan_request(HostPci *host, PtBusMap *map, const PtRequest *req, const char *text,
                    const PtPlanDefaults *dflt, bool partial, PtPlan *plan, PtError *err);

PtPlanDefaults pt_plan_defaults(void);

#endif
