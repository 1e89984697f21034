#include "pt-guest.h"

#include <errno.h>
#include <glib.h>
#include <pci/pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm-log.h"

#define MAX_ATTACHED PCI_BUS_DEVFNS

/* One attached function and what it holds in the hypervisor. */
typedef struct Attached {
    PtGuestFunc pub;
    PciDevice *dev;
    int pirq;               /* INTx pirq, -1 if none */
    uint8_t pin;            /* 1 = INTA .. 4 = INTD, 0 none */
    bool assigned;
    int nperms;             /* BAR permissions granted */
} Attached;

/*
 * Functions can share what the hypervisor grants: a host GSI's pirq, a page
 * holding several small BARs (ICH USB functions), an I/O range.  Xen's
 * permissions are not counted, so a grant is asked for on first use and
 * revoked on last.
 */
typedef enum GrantKind { GRANT_IRQ, GRANT_IOMEM, GRANT_IOPORT } GrantKind;

typedef struct Grant {
    GrantKind kind;
    uint64_t start, count;
    int refs;
} Grant;

#define MAX_GRANTS (MAX_ATTACHED * (PCI_NUM_BARS + 1))

struct PtGuest {
    Grant grants[MAX_GRANTS];
    int ngrants;
    HostPci *host;
    PciBus *bus;
    Hypervisor *hv;
    PtPlanDefaults dflt;
    const PtHolders *others;    /* other domains' functions, or NULL */
    PtBusMap map;
    Attached *fns[MAX_ATTACHED];
    int nfns;
    PtListeners observers;      /* PtSlotFn */
    HostAssign *reset;          /* NULL: functions are not reset */
};

PtGuest *pt_guest_new(HostPci *host, PciBus *bus, Hypervisor *hv, uint32_t reserved,
                      const PtPlanDefaults *dflt)
{
    PtGuest *g = g_new0(PtGuest, 1);

    g->host = host;
    g->bus = bus;
    g->hv = hv;
    g->dflt = *dflt;
    pt_busmap_init(&g->map, reserved);
    return g;
}

void pt_guest_set_slot_observer(PtGuest *g, PtSlotFn fn, void *opaque)
{
    pt_listeners_set(&g->observers, (PtAnyFn)fn, opaque);
}

static void notify_slot(PtGuest *g, unsigned vslot, bool inserted)
{
    for (int i = 0; i < PT_LISTENERS; i++)
        if (g->observers.at[i].fn)
            ((PtSlotFn)g->observers.at[i].fn)(g->observers.at[i].opaque, vslot, inserted);
}

/* ---- permissions, counted per guest ---- */

static int apply_irq(Hypervisor *hv, uint64_t start, uint64_t count, bool allow)
{
    (void)count;
    return hv_irq_permission(hv, (int)start, allow);
}

static int apply_iomem(Hypervisor *hv, uint64_t start, uint64_t count, bool allow)
{
    return hv_iomem_permission(hv, start, count, allow);
}

static int apply_ioport(Hypervisor *hv, uint64_t start, uint64_t count, bool allow)
{
    return hv_ioport_permission(hv, (uint32_t)start, (uint32_t)count, allow);
}

static int (*const grant_apply[])(Hypervisor *, uint64_t, uint64_t, bool) = {
    [GRANT_IRQ] = apply_irq, [GRANT_IOMEM] = apply_iomem, [GRANT_IOPORT] = apply_ioport,
};

static Grant *find_grant(PtGuest *g, GrantKind kind, uint64_t start, uint64_t count)
{
    for (int i = 0; i < g->ngrants; i++) {
        Grant *gr = &g->grants[i];
        if (gr->kind == kind && gr->start == start && gr->count == count)
            return gr;
    }
    return NULL;
}

static int hold(PtGuest *g, GrantKind kind, uint64_t start, uint64_t count)
{
    Grant *gr = find_grant(g, kind, start, count);

    if (gr) {
        gr->refs++;
        return 0;
    }
    if (g->ngrants == MAX_GRANTS)
        return -ENOSPC;
    int rc = grant_apply[kind](g->hv, start, count, true);
    if (rc == 0)
        g->grants[g->ngrants++] = (Grant){ kind, start, count, 1 };
    return rc;
}

static void drop(PtGuest *g, GrantKind kind, uint64_t start, uint64_t count)
{
    Grant *gr = find_grant(g, kind, start, count);

    if (!gr || --gr->refs > 0)
        return;
    grant_apply[kind](g->hv, start, count, false);
    *gr = g->grants[--g->ngrants];
}

/* The hypervisor range a BAR needs: whole pages of memory, or its ports. */
static GrantKind bar_grant(const PtBar *b, uint64_t *start, uint64_t *count)
{
    if (b->io) {
        *start = b->base;
        *count = b->size;
        return GRANT_IOPORT;
    }
    *start = b->base >> PT_PAGE_SHIFT;
    *count = ((b->base + b->size + PT_PAGE_SIZE - 1) >> PT_PAGE_SHIFT) - *start;
    return GRANT_IOMEM;
}

/* Grant (or, with allow false, give back) the BARs' ranges; a failed grant
 * leaves the ones before it held, counted in nperms, for release to undo. */
static int grant_bars(PtGuest *g, Attached *a, bool allow)
{
    for (int i = 0; i < PCI_NUM_BARS && (allow || a->nperms); i++) {
        PtBar b;
        uint64_t start, count;
        if (pt_func_bar(a->pub.fn, i, &b) < 0)
            continue;
        GrantKind kind = bar_grant(&b, &start, &count);
        if (!allow) {
            drop(g, kind, start, count);
            a->nperms--;
            continue;
        }
        int rc = hold(g, kind, start, count);
        if (rc < 0)
            return rc;
        a->nperms++;
    }
    return 0;
}

static int hold_pirq(PtGuest *g, int pirq)
{
    return hold(g, GRANT_IRQ, (uint64_t)pirq, 1);
}

static void drop_pirq(PtGuest *g, int pirq)
{
    drop(g, GRANT_IRQ, (uint64_t)pirq, 1);
}

/*
 * msitranslate=1: the host's MSI delivered as the guest's INTx (Xen 4.17
 * still binds PT_IRQ_TYPE_MSI_TRANSLATE, see hw/pt-msi.h).  A function
 * without MSI has nothing to translate: its INTx goes through the GSI, said
 * once.  Only the guest's pin matters then, not the host's line.
 */
static bool translating(const Attached *a)
{
    if (a->pub.opts.msitranslate != 1)
        return false;
    if (pt_func_find_cap(a->pub.fn, PCI_CAP_ID_MSI))
        return true;
    dm_log(pt_func_name(a->pub.fn), "msitranslate=1: no MSI capability; INTx goes through "
           "the GSI");
    return false;
}

static int bind_intx(PtGuest *g, Attached *a)
{
    Hypervisor *hv = g->hv;
    int irq = host_func_irq(pt_func_host(a->pub.fn));
    int pirq, rc;

    a->pin = (uint8_t)pt_func_cfg_read(a->pub.fn, PCI_INTERRUPT_PIN, 1);
    if (a->pin >= 1 && a->pin <= 4 && translating(a))
        return pt_msi_translate(a->pub.msi, a->pub.vdevfn, (uint8_t)(a->pin - 1));
    if (!a->pin || a->pin > 4 || irq <= 0) {
        a->pin = 0;
        return 0;
    }
    rc = hv_map_pirq(hv, irq, &pirq);
    if (rc < 0)
        return rc;
    rc = hold_pirq(g, pirq);
    if (rc < 0) {
        hv_unmap_pirq(hv, pirq);
        return rc;
    }
    rc = hv_bind_intx(hv, pirq, a->pub.vdevfn, (uint8_t)(a->pin - 1));
    if (rc < 0) {
        drop_pirq(g, pirq);
        hv_unmap_pirq(hv, pirq);
        return rc;
    }
    a->pirq = pirq;
    return 0;
}

static void unbind_intx(PtGuest *g, Attached *a)
{
    if (a->pirq < 0)
        return;
    hv_unbind_intx(g->hv, a->pirq, a->pub.vdevfn, (uint8_t)(a->pin - 1));
    drop_pirq(g, a->pirq);
    hv_unmap_pirq(g->hv, a->pirq);
    a->pirq = -1;
}

/* ---- one function in, one function out ---- */

void pt_guest_set_host_reset(PtGuest *g, HostAssign *reset)
{
    g->reset = reset;
}

/* A function without a reset method is still passed through: the log says so. */
static void reset_host_function(PtGuest *g, PtBdf bdf, const char *when)
{
    HostAssignReport rep;
    PtError err;
    char name[16];

    if (!g->reset)
        return;
    host_reset(g->reset, bdf, &rep, &err);
    dm_log(pt_bdf_format(bdf, name, sizeof(name)), "%s: %s", when, rep.reset);
}

/* Everything but the plug; undone by release_function. */
static int prepare_function(PtGuest *g, PtBdf bdf, uint8_t vdevfn, const PtOptions *opts,
                            Attached **out, PtError *err)
{
    Attached *a = g_new0(Attached, 1);
    char name[16];
    int rc;

    a->pirq = -1;
    a->pub = (PtGuestFunc){ .host = bdf, .vdevfn = vdevfn, .opts = *opts };
    pt_bdf_format(bdf, name, sizeof(name));
    rc = hv_test_device(g->hv, bdf);
    if (rc < 0) {
        pt_error_set(err, "%s: the hypervisor refuses the device (%s)",
                     name, strerror(-rc));
        g_free(a);
        return rc;
    }
    reset_host_function(g, bdf, "before the guest sees it");
    a->pub.fn = pt_func_open(g->host, bdf, vdevfn, opts, err);
    if (!a->pub.fn) {
        g_free(a);
        return -EIO;
    }
    /* Before the plug: it decides which BAR pages stay trapped. */
    a->pub.msi = pt_msi_new(a->pub.fn, g->hv);
    const char *step = "assign";
    rc = hv_assign_device(g->hv, bdf, vdevfn);
    a->assigned = rc == 0;
    if (rc == 0 && (step = "grant BAR access to", rc = grant_bars(g, a, true)) == 0 &&
        (step = a->pub.opts.msitranslate == 1 ? "bind MSI as INTx (msitranslate=1) for"
                                              : "bind the interrupt of",
         rc = bind_intx(g, a)) == 0) {
        *out = a;
        return 0;
    }
    pt_error_set(err, "%s: the hypervisor failed to %s the device (%s)",
                 pt_func_name(a->pub.fn), step, strerror(-rc));
    *out = a;
    return rc;
}

static void release_function(PtGuest *g, Attached *a)
{
    /* Its DMA stops first, while the IOMMU still maps the guest's memory;
     * then the vectors: no binding may outlive the guest's view of it. */
    pt_func_quiesce(a->pub.fn);
    pt_msi_free(a->pub.msi);
    if (a->dev)
        pci_bus_unplug(g->bus, a->pub.vdevfn);
    unbind_intx(g, a);
    grant_bars(g, a, false);
    if (a->assigned)
        hv_deassign_device(g->hv, a->pub.host, a->pub.vdevfn);
    pt_func_close(a->pub.fn);
    reset_host_function(g, a->pub.host, "after the guest let it go");
    g_free(a);
}

static int plug_function(PtGuest *g, Attached *a, PtError *err)
{
    int rc = pt_func_plug(a->pub.fn, g->bus, &a->dev);

    if (rc < 0)
        pt_error_set(err, "%s: cannot plug into the guest bus (%s)",
                     pt_func_name(a->pub.fn), strerror(-rc));
    return rc;
}

/* ---- attach ---- */

static void unplace_one(PtGuest *g, PtBdf host, uint8_t vdevfn)
{
    PtPlacement one = { .nfuncs = 1, .host = { host }, .vdevfn = { vdevfn },
                        .vslot = PT_SLOT(vdevfn) };

    pt_unplace(&g->map, &one);
}

/* Function 0 of the slot goes last: plugging it makes the slot visible. */
static void plug_order(const PtPlacement *pl, int order[])
{
    int n = 0;

    for (int i = 0; i < pl->nfuncs; i++)
        if (PT_FUNC(pl->vdevfn[i]) != 0)
            order[n++] = i;
    for (int i = 0; i < pl->nfuncs; i++)
        if (PT_FUNC(pl->vdevfn[i]) == 0)
            order[n++] = i;
}

/* This guest's functions: a PtHolders source for the policy. */
static bool guest_holds(void *opaque, PtBdf bdf, PtHolder *who)
{
    const PtGuest *g = opaque;

    for (int i = 0; i < g->nfns; i++) {
        if (pt_bdf_equal(g->fns[i]->pub.host, bdf)) {
            *who = (PtHolder){ .self = true, .vdevfn = g->fns[i]->pub.vdevfn };
            return true;
        }
    }
    return false;
}

static PtHolders holders_of(PtGuest *g)
{
    return (PtHolders){ .held = guest_holds, .opaque = g, .next = g->others };
}

void pt_guest_keep_clear(PtGuest *g, uint32_t slots)
{
    g->map.pinned = slots;
}

void pt_guest_set_holders(PtGuest *g, const PtHolders *others)
{
    g->others = others;
}

/* A placed plan into the guest: every function, or none and the map as before. */
static int realize(PtGuest *g, PtPlan *plan, const char *text, PtPlan *plan_out, PtError *err)
{
    Attached *staged[PT_FUNCS_PER_SLOT] = { 0 };
    int order[PT_FUNCS_PER_SLOT], n = 0, rc = 0;
    const PtPlacement *pl = &plan->placement;

    plug_order(pl, order);
    for (n = 0; n < pl->nfuncs; n++) {
        int i = order[n];
        rc = prepare_function(g, pl->host[i], pl->vdevfn[i], &plan->opts, &staged[n], err);
        if (rc == 0)
            rc = plug_function(g, staged[n], err);
        if (rc < 0) {
            n += staged[n] != NULL;
            goto rollback;
        }
    }
    for (int k = 0; k < n; k++)
        g->fns[g->nfns++] = staged[k];
    for (int k = 0; k < pl->nfuncs; k++)
        dm_log(pt_func_name(staged[k]->pub.fn), "attached (%s)", text);
    if (pl->note[0])
        dm_log(text, "%s", pl->note);
    for (int w = 0; w < plan->warnings.n; w++)
        dm_log(text, "warning: %s", plan->warnings.line[w]);
    if (pci_bus_slot_funcs(g->bus, (unsigned)pl->vslot) & 1)
        notify_slot(g, (unsigned)pl->vslot, true);
    if (plan_out)
        *plan_out = *plan;
    return 0;
rollback:
    while (n-- > 0)
        release_function(g, staged[n]);
    pt_unplace(&g->map, pl);
    return rc;
}

int pt_guest_attach_request(PtGuest *g, const PtRequest *req, const char *text, bool partial,
                            PtPlan *plan_out, PtError *err)
{
    PtHolders holders = holders_of(g);
    PtPlan plan;
    int rc = pt_plan_request(g->host, &g->map, req, text, &g->dflt, &holders, partial, &plan,
                             err);

    return rc < 0 ? rc : realize(g, &plan, text, plan_out, err);
}

int pt_guest_attach(PtGuest *g, const char *spec, PtPlan *plan_out, PtError *err)
{
    PtHolders holders = holders_of(g);
    PtPlan plan;
    int rc = pt_plan_spec(g->host, &g->map, spec, &g->dflt, &holders, &plan, err);

    return rc < 0 ? rc : realize(g, &plan, spec, plan_out, err);
}

/* ---- detach ---- */

static void remove_at(PtGuest *g, int i)
{
    Attached *a = g->fns[i];

    memmove(&g->fns[i], &g->fns[i + 1], sizeof(g->fns[0]) * (size_t)(g->nfns - i - 1));
    g->nfns--;
    dm_log(pt_func_name(a->pub.fn), "detached");
    unplace_one(g, a->pub.host, a->pub.vdevfn);
    release_function(g, a);
}

int pt_guest_detach_slot(PtGuest *g, unsigned vslot, PtError *err)
{
    int removed = 0;

    if (vslot >= PT_SLOTS || !g->map.used[vslot]) {
        pt_error_set(err, "guest slot %02x has no pass-through device",
                     vslot);
        return -ENOENT;
    }
    /* Function 0 first: the slot disappears from the guest at once. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = g->nfns - 1; i >= 0; i--) {
            uint8_t d = g->fns[i]->pub.vdevfn;
            if (PT_SLOT(d) == vslot && (PT_FUNC(d) == 0) == (pass == 0)) {
                remove_at(g, i);
                removed++;
            }
        }
    if (removed)
        notify_slot(g, vslot, false);
    return removed;
}

int pt_guest_slot_of_spec(const PtGuest *g, const char *spec, PtError *err)
{
    PtSpec parsed;

    if (pt_spec_parse_unplug(spec, &parsed, err) < 0)
        return -EINVAL;     /* the notation's words name what is wrong */
    for (int f = 0; f < PT_FUNCS_PER_SLOT; f++) {
        bool named = parsed.all_funcs;
        for (int i = 0; i < parsed.nfuncs; i++)
            named |= parsed.funcs[i] == f;
        PtBdf bdf = { parsed.domain, parsed.bus, parsed.dev, (uint8_t)f };
        int vslot = pt_guest_vslot_of(g, bdf);
        if (named && vslot >= 0)
            return vslot;
    }
    pt_error_set(err, "%s: not attached to this guest", spec);
    return -ENOENT;
}

int pt_guest_detach(PtGuest *g, const char *spec, PtError *err)
{
    int vslot = pt_guest_slot_of_spec(g, spec, err);

    return vslot < 0 ? vslot : pt_guest_detach_slot(g, (unsigned)vslot, err);
}

void pt_guest_free(PtGuest *g)
{
    if (!g)
        return;
    while (g->nfns > 0)
        remove_at(g, g->nfns - 1);
    g_free(g);
}

/* ---- queries ---- */

int pt_guest_count(const PtGuest *g)
{
    return g->nfns;
}

const PtGuestFunc *pt_guest_func_at(const PtGuest *g, int i)
{
    return i >= 0 && i < g->nfns ? &g->fns[i]->pub : NULL;
}

const PtGuestFunc *pt_guest_func_of(const PtGuest *g, PtBdf bdf)
{
    for (int i = 0; i < g->nfns; i++)
        if (pt_bdf_equal(g->fns[i]->pub.host, bdf))
            return &g->fns[i]->pub;
    return NULL;
}

int pt_guest_vslot_of(const PtGuest *g, PtBdf host)
{
    const PtGuestFunc *f = pt_guest_func_of(g, host);

    return f ? PT_SLOT(f->vdevfn) : -1;
}

const PtBusMap *pt_guest_busmap(const PtGuest *g)
{
    return &g->map;
}
