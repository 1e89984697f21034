/*
 * From a spec as a person writes it to a placement on the guest bus:
 * parse, expand against the host's functions, apply every acceptance rule,
 * place.  The one policy of every front-end: qemu-dm's command line and
 * -dry-run, the monitor, the xenstore channel and xm all come through here,
 * so all of them accept and refuse the same things with the same words.
 *
 * The rules, per function, in this order:
 *   - it is present on the host;
 *   - nobody holds it: not this guest (already attached, or named earlier
 *     in the same list) and no other domain (its backend list);
 *   - it is bound to pciback or pci-stub;
 *   - its config space reads (not all ones: powered off or absent) and its
 *     header type is 0 or 1 (a CardBus bridge, type 2, is refused);
 * then, for the request as a whole:
 *   - no group of functions that must stay together (hw/host-groups.h:
 *     reset, IOMMU group, INTx line, BAR page, phantom functions) is split
 *     between this guest and another owner (another domain's holder, or a
 *     driver of dom0's own that is not a stub), unless the options relax
 *     that rule (strict_reset=0...), which is said in a warning;
 *   - it fits on the guest bus (hw/pt-place.c).
 * '*' skips functions that read all ones, with a note.
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

/* What the relaxed group rules allowed: one line per split (the first few). */
#define PT_PLAN_WARNINGS 6

typedef struct PtWarnings {
    int n;
    char line[PT_PLAN_WARNINGS][sizeof(((PtError *)0)->msg)];
} PtWarnings;

typedef struct PtPlan {
    PtPlacement placement;
    PtOptions opts;             /* merged: spec over guest defaults */
    PtWarnings warnings;
} PtPlan;

/* Who holds a host function already. */
typedef struct PtHolder {
    bool self;                  /* the guest being planned for */
    unsigned domid;             /* otherwise the domain holding it */
    char name[72];              /* its name, "" when unknown */
    int vdevfn;                 /* self: where, or -1 */
} PtHolder;

/* Sources of holders, asked in turn: held() fills *who and returns true. */
typedef struct PtHolders PtHolders;
struct PtHolders {
    bool (*held)(void *opaque, PtBdf bdf, PtHolder *who);
    void *opaque;
    const PtHolders *next;
};

/* Plans made earlier in one list (several -pci, a config's pci = [...]):
 * their functions are this guest's.  A PtHolders source. */
typedef struct PtPlanList {
    const PtPlan *plans;
    int n;
} PtPlanList;
bool pt_plan_list_holds(void *plan_list, PtBdf bdf, PtHolder *who);

/*
 * On failure the bus map is unchanged, err says why and the return is the
 * cause as a negative errno, the lower layer's own where one refused:
 * -EINVAL unparsable, -ENODEV absent or reading all ones, -EBUSY held by
 * someone or a group split, -EPERM not bound to a stub, -ENOTSUP a header
 * type that cannot go, the host's errno when its config cannot be read (its
 * words in err), the placer's (hw/pt-place.h).  holders may be NULL.
 */
int pt_plan_spec(HostPci *host, PtBusMap *map, const char *text, const PtPlanDefaults *dflt,
                 const PtHolders *holders, PtPlan *plan, PtError *err);

/* Parse and expand a spec against the host: '*' leaves out functions that
 * read all ones, said in note (len bytes, "" when none). */
int pt_plan_expand(HostPci *host, const char *text, PtRequest *req, char *note, size_t len,
                   PtError *err);

/* The function exists on the host; the notation's message if not. */
int pt_plan_check_present(HostPci *host, PtBdf bdf, const char *text, PtError *err);

/* The acceptance rules without placement (xm restore checks a saved layout).
 * req->opts are the merged options (their strict_X decide the group rules);
 * what a relaxed rule allowed goes to warnings. */
int pt_plan_accept(HostPci *host, const PtRequest *req, const char *text,
                   const PtHolders *holders, PtWarnings *warnings, PtError *err);

/* The group rule alone: would giving req's functions to a guest split a
 * group (xm pci-assignable-add says so beforehand)? */
int pt_plan_check_groups(HostPci *host, const PtRequest *req, const char *text,
                         const PtHolders *holders, PtWarnings *warnings, PtError *err);

/* The same from an expanded request (the per-function wire protocol);
 * partial as for pt_place. */
int pt_plan_request(HostPci *host, PtBusMap *map, const PtRequest *req, const char *text,
                    const PtPlanDefaults *dflt, const PtHolders *holders, bool partial,
                    PtPlan *plan, PtError *err);

/* The guest slots a list of specs pins with @VSLOT (unparsable specs add
 * nothing): a PtBusMap's pinned set while the list is placed in order, so
 * an automatic spec never takes the slot a later one names. */
uint32_t pt_plan_pinned_slots(const char *const *specs, int n);

PtPlanDefaults pt_plan_defaults(void);
/* A guest's relaxed group rules, "strict_reset=0,strict_intx=0" (qemu-dm
 * -pci-strict, xm's pci_strict): the default of every spec that does not say. */
int pt_plan_defaults_strict(PtPlanDefaults *dflt, const char *text, PtError *err);

#endif
