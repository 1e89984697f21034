#include "pt-plan.h"

#include <errno.h>
#include <limits.h>
#include <pci/header.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "host-assign.h"
#include "host-groups.h"

/* The notation's strict_X index the group kinds they relax. */
_Static_assert((int)PT_STRICT_RESET == (int)HOST_GROUP_RESET &&
               (int)PT_STRICT_IOMMU == (int)HOST_GROUP_IOMMU &&
               (int)PT_STRICT_INTX == (int)HOST_GROUP_INTX &&
               (int)PT_STRICT_PAGE == (int)HOST_GROUP_PAGE,
               "PtOptions.strict[] follows HostGroupKind");

PtPlanDefaults pt_plan_defaults(void)
{
    PtPlanDefaults d = { .opts = pt_options_unset() };

    d.opts.map = PT_MAP_IDENTITY;
    return d;
}

int pt_plan_defaults_strict(PtPlanDefaults *dflt, const char *text, PtError *err)
{
    HostGroupOpts o = host_group_opts_default();

    if (host_group_opts_parse(text, &o, err) < 0)
        return -EINVAL;
    for (int k = 0; k < PT_STRICT_RULES; k++)
        dflt->opts.strict[k] = o.strict[k] ? PT_STRICT_ON : PT_STRICT_OFF;
    return 0;
}

/* Does the spec TEXT name just the function called name ("0000:00:1d.1")? */
static bool names_just(const char *text, const char *name)
{
    return !strcmp(text, name) || (!strncmp(name, "0000:", 5) && !strcmp(text, name + 5));
}

/* "TEXT: BDF why", or "BDF why" when TEXT names just that function;
 * returns -errnum, the cause for the caller. */
static int refuse(PtError *err, int errnum, const char *text, PtBdf bdf, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(PtError *err, int errnum, const char *text, PtBdf bdf, const char *fmt, ...)
{
    char name[16], why[260];
    va_list ap;

    pt_bdf_format(bdf, name, sizeof(name));
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (names_just(text, name))
        pt_error_set(err, "%s %.240s", name, why);
    else
        pt_error_set(err, "%.60s: %s %.240s", text, name, why);
    return -errnum;
}

/* ---- who holds a function ---- */

bool pt_plan_list_holds(void *plan_list, PtBdf bdf, PtHolder *who)
{
    const PtPlanList *l = plan_list;

    for (int i = 0; i < l->n; i++) {
        const PtPlacement *pl = &l->plans[i].placement;
        for (int f = 0; f < pl->nfuncs; f++)
            if (pt_bdf_equal(pl->host[f], bdf)) {
                *who = (PtHolder){ .self = true, .vdevfn = pl->vdevfn[f] };
                return true;
            }
    }
    return false;
}

static int check_holders(const PtHolders *holders, PtBdf bdf, const char *text, PtError *err)
{
    for (const PtHolders *h = holders; h; h = h->next) {
        PtHolder who = { .vdevfn = -1 };
        if (!h->held(h->opaque, bdf, &who))
            continue;
        if (who.self && who.vdevfn >= 0)
            return refuse(err, EBUSY, text, bdf, "is already attached to this guest (at %02x.%x)",
                          PT_SLOT(who.vdevfn), PT_FUNC(who.vdevfn));
        if (who.self)
            return refuse(err, EBUSY, text, bdf, "is already attached to this guest");
        if (who.name[0])
            return refuse(err, EBUSY, text, bdf, "is passed through to domain %u (%.64s) already",
                          who.domid, who.name);
        return refuse(err, EBUSY, text, bdf, "is passed through to domain %u already", who.domid);
    }
    return 0;
}

/* ---- what the host says of a function ---- */

static int check_assignable(HostPci *host, PtBdf bdf, const char *text, PtError *err)
{
    const char *driver;

    if (host_pci_assignable(host, bdf))
        return 0;
    driver = host_pci_driver(host, bdf);
    if (driver)
        return refuse(err, EPERM, text, bdf, "is not assignable: bound to %.32s (bind it to pciback "
                      "or pci-stub first)", driver);
    return refuse(err, EPERM, text, bdf, "is not assignable: no driver bound (bind it to pciback or "
                  "pci-stub first)");
}

/* The first bytes of a function's config space, up to its header type:
 * 0, or the host's -errno with its words in why. */
static int read_header(HostPci *host, PtBdf bdf, uint8_t hdr[PCI_HEADER_TYPE + 1], PtError *why)
{
    HostFunc *fn = host_func_open(host, bdf, why);
    int rc = fn ? host_func_read(fn, 0, hdr, PCI_HEADER_TYPE + 1) : -ENODEV;

    if (fn && rc < 0)
        pt_error_set(why, "%s", host_func_error(fn));
    host_func_close(fn);
    return rc;
}

/* A function powered off (D3cold) or gone answers every read with ones. */
static bool reads_all_ones(const uint8_t *hdr)
{
    return (hdr[PCI_VENDOR_ID] & hdr[PCI_VENDOR_ID + 1] & hdr[PCI_DEVICE_ID] &
            hdr[PCI_DEVICE_ID + 1]) == 0xff;
}

static const char *const header_names[] = {
    [PCI_HEADER_TYPE_NORMAL] = "normal", [PCI_HEADER_TYPE_BRIDGE] = "PCI-to-PCI bridge",
    [PCI_HEADER_TYPE_CARDBUS] = "CardBus bridge",
};

static int check_config(HostPci *host, PtBdf bdf, const char *text, PtError *err)
{
    uint8_t hdr[PCI_HEADER_TYPE + 1];
    PtError why;
    int rc = read_header(host, bdf, hdr, &why);

    if (rc < 0)
        return refuse(err, -rc, text, bdf, "has a config space that cannot be read: %.200s",
                      why.msg);
    if (reads_all_ones(hdr))
        return refuse(err, ENODEV, text, bdf, "reads all ones (powered off or absent): not "
                      "passed through");
    uint8_t type = pt_header_layout(hdr[PCI_HEADER_TYPE]);
    if (type == PCI_HEADER_TYPE_NORMAL || type == PCI_HEADER_TYPE_BRIDGE)
        return 0;
    return refuse(err, ENOTSUP, text, bdf, "has header type 0x%02x (%s), which cannot be passed "
                  "through", type, type < sizeof(header_names) / sizeof(header_names[0])
                                       ? header_names[type] : "unknown");
}

/* Requests made without the notation's expansion (the per-function wire
 * form, a saved layout) get its words for an absent function or device. */
int pt_plan_check_present(HostPci *host, PtBdf bdf, const char *text, PtError *err)
{
    PtSpec spec = { .domain = bdf.domain, .bus = bdf.bus, .dev = bdf.dev, .nfuncs = 1,
                    .funcs = { bdf.func }, .vslot = PT_UNSET, .vfunc = PT_UNSET,
                    .opts = pt_options_unset() };
    PtRequest req;

    return pt_spec_expand(&spec, text, host_pci_present_funcs(host, bdf.domain, bdf.bus, bdf.dev),
                          &req, err) < 0 ? -ENODEV : 0;
}

/* ---- groups that must stay together ---- */

/* The guest being planned for, as host_groups_check's domain: no domid is this high. */
#define PLAN_SELF INT_MAX

typedef struct GroupCtx {
    const HostFacts *facts;
    const PtHolders *holders;
    PtWarnings *warnings;
} GroupCtx;

/*
 * Who has a group member: dom0 when a driver of its own is bound, nobody
 * when none is; a function bound to a stub is a holder's (this guest or
 * another domain) or nobody's.  Only stubs are asked of the holders: a
 * guest's function is bound to one, and each question may cost xenstore
 * reads.  A bridge's driver (pcieport) does not count: a bridge does no
 * DMA of its own, and VFIO lets it stay in a group given to a guest.
 */
static HostOwner group_owner(PtBdf bdf, void *opaque)
{
    const GroupCtx *c = opaque;
    const HostFuncFacts *f = host_facts_find(c->facts, bdf);
    HostOwner owner = { .domid = HOST_OWNER_NONE };

    if (!f || !f->driver[0] || (f->bridge && !host_assign_is_stub(f->driver)))
        return owner;
    if (!host_assign_is_stub(f->driver)) {
        owner.domid = 0;
        snprintf(owner.driver, sizeof(owner.driver), "%s", f->driver);
        return owner;
    }
    for (const PtHolders *h = c->holders; h; h = h->next) {
        PtHolder who = { .vdevfn = -1 };
        if (h->held(h->opaque, bdf, &who)) {
            owner.domid = who.self ? PLAN_SELF : (int)who.domid;
            return owner;
        }
    }
    return owner;
}

static void add_warning(const char *msg, void *opaque)
{
    PtWarnings *w = ((GroupCtx *)opaque)->warnings;

    if (w->n < PT_PLAN_WARNINGS)
        snprintf(w->line[w->n++], sizeof(w->line[0]), "%s", msg);
}

/* host_groups_check's message, with the spec in front as refuse() puts it:
 * a split group is a function held elsewhere (-EBUSY). */
static int refuse_group(PtError *err, const char *text, const char *msg)
{
    char name[16];
    size_t n = strcspn(msg, " ");

    snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : 0), msg);
    if (names_just(text, name))
        pt_error_set(err, "%s", msg);
    else
        pt_error_set(err, "%.60s: %.250s", text, msg);
    return -EBUSY;
}

int pt_plan_check_groups(HostPci *host, const PtRequest *req, const char *text,
                         const PtHolders *holders, PtWarnings *warnings, PtError *err)
{
    PtBdf funcs[PT_FUNCS_PER_SLOT];
    HostGroupOpts opts = host_group_opts_default();
    HostGroupRequest greq = { .domid = PLAN_SELF, .n = req->nfuncs, .funcs = funcs };
    HostFacts facts;
    HostGroups groups;
    PtError e;
    int rc;

    for (int i = 0; i < req->nfuncs; i++)
        funcs[i] = (PtBdf){ req->domain, req->bus, req->dev, req->pfunc[i] };
    for (int k = 0; k < PT_STRICT_RULES; k++)
        opts.strict[k] = req->opts.strict[k] != PT_STRICT_OFF;
    warnings->n = 0;
    if ((rc = host_groups_read(host_pci_root(host), &facts, &groups, &e)) < 0) {
        pt_error_set(err, "%.60s: the host's groups cannot be read: %.200s",
                     text, e.msg);
        return rc;
    }
    GroupCtx ctx = { &facts, holders, warnings };
    rc = host_groups_check(&groups, &greq, group_owner, &ctx, &opts, add_warning, &ctx, &e);
    host_groups_free(&groups);
    host_facts_free(&facts);
    return rc < 0 ? refuse_group(err, text, e.msg) : 0;
}

int pt_plan_accept(HostPci *host, const PtRequest *req, const char *text,
                   const PtHolders *holders, PtWarnings *warnings, PtError *err)
{
    int rc = 0;

    warnings->n = 0;
    for (int i = 0; i < req->nfuncs && rc == 0; i++) {
        PtBdf bdf = { req->domain, req->bus, req->dev, req->pfunc[i] };
        if ((rc = pt_plan_check_present(host, bdf, text, err)) < 0 ||
            (rc = check_holders(holders, bdf, text, err)) < 0 ||
            (rc = check_assignable(host, bdf, text, err)) < 0)
            break;
        rc = check_config(host, bdf, text, err);
    }
    if (rc < 0)
        return rc;
    return pt_plan_check_groups(host, req, text, holders, warnings, err);
}

/* ---- expansion and placement ---- */

/* The present functions of a device that read all ones, as a mask. */
static uint8_t all_ones_funcs(HostPci *host, const PtSpec *spec, uint8_t present)
{
    uint8_t dark = 0, hdr[PCI_HEADER_TYPE + 1];
    PtError why;

    for (uint8_t f = 0; f < PT_FUNCS_PER_SLOT; f++) {
        PtBdf bdf = { spec->domain, spec->bus, spec->dev, f };
        if ((present & (1u << f)) && read_header(host, bdf, hdr, &why) == 0 &&
            reads_all_ones(hdr))
            dark |= (uint8_t)(1u << f);
    }
    return dark;
}

static void skipped_note(const PtSpec *spec, uint8_t dark, char *note, size_t len)
{
    size_t at = 0;
    int n = 0;

    for (uint8_t f = 0; f < PT_FUNCS_PER_SLOT && at < len; f++)
        if (dark & (1u << f)) {
            at += (size_t)snprintf(note + at, len - at, "%s%04x:%02x:%02x.%x", n++ ? ", " : "",
                                   spec->domain, spec->bus, spec->dev, f);
        }
    if (at < len)
        snprintf(note + at, len - at, " %s all ones (powered off or absent): skipped",
                 n > 1 ? "read" : "reads");
}

int pt_plan_expand(HostPci *host, const char *text, PtRequest *req, char *note, size_t len,
                   PtError *err)
{
    PtSpec spec;

    note[0] = '\0';
    if (pt_spec_parse(text, &spec, err) < 0)
        return -EINVAL;
    uint8_t present = host_pci_present_funcs(host, spec.domain, spec.bus, spec.dev);
    uint8_t dark = spec.all_funcs ? all_ones_funcs(host, &spec, present) : 0;
    /* Nothing left to skip to: the acceptance rules name the first one. */
    if (dark && dark != present) {
        present &= (uint8_t)~dark;
        skipped_note(&spec, dark, note, len);
    }
    return pt_spec_expand(&spec, text, present, req, err) < 0 ? -ENODEV : 0;
}

static void add_note(PtPlacement *pl, const char *note)
{
    size_t at = strlen(pl->note);

    if (note[0])
        snprintf(pl->note + at, sizeof(pl->note) - at, "%s%s", at ? "; " : "", note);
}

int pt_plan_request(HostPci *host, PtBusMap *map, const PtRequest *request, const char *text,
                    const PtPlanDefaults *dflt, const PtHolders *holders, bool partial,
                    PtPlan *plan, PtError *err)
{
    PtRequest req = *request;
    PtPlan out;
    int rc;

    out.opts = pt_options_merge(req.opts, dflt->opts);
    req.opts = out.opts;
    if ((rc = pt_plan_accept(host, &req, text, holders, &out.warnings, err)) < 0 ||
        (rc = pt_place(map, &req, dflt->opts.map, partial, text, &out.placement, err)) < 0)
        return rc;
    *plan = out;
    return 0;
}

int pt_plan_spec(HostPci *host, PtBusMap *map, const char *text, const PtPlanDefaults *dflt,
                 const PtHolders *holders, PtPlan *plan, PtError *err)
{
    PtRequest req;
    char note[sizeof(plan->placement.note)];
    int rc;

    if ((rc = pt_plan_expand(host, text, &req, note, sizeof(note), err)) < 0 ||
        (rc = pt_plan_request(host, map, &req, text, dflt, holders, false, plan, err)) < 0)
        return rc;
    add_note(&plan->placement, note);
    return 0;
}

uint32_t pt_plan_pinned_slots(const char *const *specs, int n)
{
    uint32_t mask = 0;

    for (int i = 0; i < n; i++) {
        PtSpec spec;
        PtError e;
        if (pt_spec_parse(specs[i], &spec, &e) == 0 && spec.vslot != PT_UNSET)
            mask |= 1u << spec.vslot;
    }
    return mask;
}
