/*
 * Placement of pass-through functions on guest bus 0.
 *
 * Two phases: a Plan is computed from the request and a read-only view of
 * the bus (validate, pick the scheme, pick the slot, assign vfuncs, check
 * the slot stays visible), and only a complete Plan is committed to the
 * map.  Any error therefore leaves the map exactly as it was.
 */
#include "pt-place.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ALL_FUNCS 0xffu
#define BIT(n)    (1u << (n))
#define NO_FN0_REASON "a slot without function 0 is invisible to guests"

/* How the vfuncs of a request are chosen. */
typedef enum PlaceKind {
    KIND_SINGLE,        /* one function, vfunc 0 unless pinned */
    KIND_IDENTITY,      /* vfunc = pfunc, lowest moved to 0 if needed */
    KIND_LEAST,         /* lowest free vfunc, in the order written */
    KIND_EXPLICIT,      /* F=V as written */
} PlaceKind;

/* A placement being computed; nothing reaches the map until it is whole. */
typedef struct Plan {
    const PtRequest *req;
    const char *text;
    PtError *err;
    bool partial;
    PlaceKind kind;
    int slot;
    uint8_t taken;                      /* the slot's functions before us */
    uint8_t vfunc[PT_FUNCS_PER_SLOT];
    char note[sizeof(((PtPlacement *)0)->note)];
} Plan;

typedef int (*AssignFn)(Plan *p);

typedef struct KindOps {
    AssignFn assign;
} KindOps;

static const KindOps *kind_ops(PlaceKind kind);

static int fail(const Plan *p, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<text>: <reason>", the form every placement error takes. */
static int fail(const Plan *p, int errnum, const char *fmt, ...)
{
    size_t len = sizeof(p->err->msg), n;
    va_list ap;

    if (!p->err)
        return -errnum;
    n = (size_t)snprintf(p->err->msg, len, "%s: ", p->text);
    if (n < len) {
        va_start(ap, fmt);
        vsnprintf(p->err->msg + n, len - n, fmt, ap);
        va_end(ap);
    }
    return -errnum;
}

static int count_bits(uint32_t v)
{
    return __builtin_popcount(v);
}

static int lowest_bit(uint32_t v)
{
    return __builtin_ctz(v);
}

/* "slots 00-03, 07 are" / "slot 00 is": the reserved set, for messages. */
static void describe_reserved(uint32_t mask, char *buf, size_t len)
{
    bool many = count_bits(mask) > 1;
    size_t n = (size_t)snprintf(buf, len, "slot%s", many ? "s" : "");
    const char *sep = " ";

    for (int s = 0; s < PT_SLOTS && n < len; s++) {
        int e = s;

        if (!(mask & BIT(s)))
            continue;
        while (e + 1 < PT_SLOTS && (mask & BIT(e + 1)))
            e++;
        if (e > s)
            n += (size_t)snprintf(buf + n, len - n, "%s%02x-%02x", sep, s, e);
        else
            n += (size_t)snprintf(buf + n, len - n, "%s%02x", sep, s);
        sep = ", ";
        s = e;
    }
    if (n < len)
        snprintf(buf + n, len - n, many ? " are" : " is");
}

static int check_funcs(const Plan *p)
{
    const PtRequest *r = p->req;
    unsigned seen = 0, vseen = 0;

    for (int i = 0; i < r->nfuncs; i++) {
        unsigned f = r->pfunc[i];
        int v = r->vfunc[i];

        if (f >= PT_FUNCS_PER_SLOT)
            return fail(p, EINVAL, "function %u out of range 0-7", f);
        if (seen & BIT(f))
            return fail(p, EINVAL, "function %u is named twice", f);
        seen |= BIT(f);
        if (v == PT_UNSET)
            continue;
        if (v < 0 || v >= PT_FUNCS_PER_SLOT)
            return fail(p, EINVAL, "virtual function %d out of range 0-7", v);
        if (vseen & BIT(v))
            return fail(p, EINVAL, "virtual function %d is given twice", v);
        vseen |= BIT(v);
    }
    return 0;
}

static int check_request(const Plan *p)
{
    const PtRequest *r = p->req;

    if (r->nfuncs < 1 || r->nfuncs > PT_FUNCS_PER_SLOT)
        return fail(p, EINVAL, "%d functions requested, a device has 1 to 8",
                    r->nfuncs);
    if (r->vslot != PT_UNSET && r->vslot < 0)
        return fail(p, EINVAL, "guest slot %d out of range 00-1f", r->vslot);
    if (r->vslot >= PT_SLOTS)
        return fail(p, EINVAL, "guest slot %x out of range 00-1f", r->vslot);
    return check_funcs(p);
}

static int count_pinned(const PtRequest *r)
{
    int n = 0;

    for (int i = 0; i < r->nfuncs; i++)
        n += r->vfunc[i] != PT_UNSET;
    return n;
}

/* What each written scheme means; not given at all means identity. */
static const PlaceKind scheme_kinds[] = {
    [PT_MAP_DEFAULT]  = KIND_IDENTITY,
    [PT_MAP_IDENTITY] = KIND_IDENTITY,
    [PT_MAP_LEAST]    = KIND_LEAST,
};

/* The scheme that applies: the request's own, else the guest's. */
static int choose_kind(Plan *p, PtMapScheme dflt)
{
    const PtRequest *r = p->req;
    int pinned = count_pinned(r);
    PtMapScheme s;

    /* Several functions share one slot even if the multi flag is clear. */
    if (!r->multi && r->nfuncs == 1) {
        p->kind = KIND_SINGLE;
        return 0;
    }
    if (pinned == r->nfuncs) {
        p->kind = KIND_EXPLICIT;
        return 0;
    }
    if (pinned)
        return fail(p, EINVAL, "virtual functions are given for %d of %d "
                    "functions; give all or none", pinned, r->nfuncs);
    s = r->opts.map != PT_MAP_DEFAULT ? r->opts.map : dflt;
    if ((unsigned)s >= sizeof(scheme_kinds) / sizeof(scheme_kinds[0]))
        return fail(p, EINVAL, "unknown mapping scheme %d", (int)s);
    p->kind = scheme_kinds[s];
    return 0;
}

static int choose_slot(Plan *p, const PtBusMap *map)
{
    int n = p->req->nfuncs;

    if (p->req->vslot != PT_UNSET) {
        char what[160];

        if (map->reserved & BIT(p->req->vslot)) {
            describe_reserved(map->reserved, what, sizeof(what));
            return fail(p, EBUSY, "guest slot %02x is reserved (%s kept for "
                        "the platform)", p->req->vslot, what);
        }
        p->slot = p->req->vslot;
        return 0;
    }
    /* Automatic: a slot of its own, so later functions of a hand-built
     * slot never collide with it. */
    for (int s = 0; s < PT_SLOTS; s++) {
        if (!((map->reserved | map->pinned) & BIT(s)) && map->used[s] == 0) {
            p->slot = s;
            return 0;
        }
    }
    return fail(p, ENOSPC, "no free guest slot for %d function%s",
                n, n == 1 ? "" : "s");
}

static int assign_single(Plan *p)
{
    int v = p->req->vfunc[0];

    p->vfunc[0] = v == PT_UNSET ? 0 : (uint8_t)v;
    return 0;
}

static int assign_identity(Plan *p)
{
    const PtRequest *r = p->req;
    unsigned pfuncs = 0;
    int low = 0;

    for (int i = 0; i < r->nfuncs; i++) {
        p->vfunc[i] = r->pfunc[i];
        pfuncs |= BIT(r->pfunc[i]);
        if (r->pfunc[i] < r->pfunc[low])
            low = i;
    }
    if ((pfuncs & BIT(0)) || (p->taken & BIT(0)))
        return 0;
    /* Guests probe function 0 first and skip a slot without it. */
    p->vfunc[low] = 0;
    snprintf(p->note, sizeof(p->note), "%04x:%02x:%02x.%x moved to vfunc 0: "
             NO_FN0_REASON, r->domain, r->bus, r->dev, r->pfunc[low]);
    return 0;
}

static int assign_least(Plan *p)
{
    unsigned free_fns = ~p->taken & ALL_FUNCS;
    int n = p->req->nfuncs;

    if (count_bits(free_fns) < n)
        return fail(p, ENOSPC, "guest slot %02x has %d free functions, "
                    "%d needed", p->slot, count_bits(free_fns), n);
    for (int i = 0; i < n; i++) {
        p->vfunc[i] = (uint8_t)lowest_bit(free_fns);
        free_fns &= free_fns - 1;
    }
    return 0;
}

static int assign_explicit(Plan *p)
{
    for (int i = 0; i < p->req->nfuncs; i++)
        p->vfunc[i] = (uint8_t)p->req->vfunc[i];
    return 0;
}

/* " (by 0000:00:1d.0)", or "" when the map does not know (0000:00:00.0,
 * the host bridge, is never placed). */
static void describe_holder(PtBdf h, char *buf, size_t len)
{
    char bdf[16];

    buf[0] = '\0';
    if (h.domain | h.bus | h.dev | h.func)
        snprintf(buf, len, " (by %s)", pt_bdf_format(h, bdf, sizeof(bdf)));
}

/* Every vfunc free in the slot, and the slot visible afterwards. */
static int check_plan(const Plan *p, const PtBusMap *map)
{
    unsigned after = p->taken;

    for (int i = 0; i < p->req->nfuncs; i++) {
        char by[32];
        describe_holder(map->holder[p->slot][p->vfunc[i]], by, sizeof(by));
        if (p->taken & BIT(p->vfunc[i]))
            return fail(p, EBUSY, "guest slot %02x function %u is already "
                        "taken%s", p->slot, p->vfunc[i], by);
        after |= BIT(p->vfunc[i]);
    }
    if (after & BIT(0))
        return 0;
    /* xend inserts function 0 last, one function at a time. */
    if (p->partial && p->kind == KIND_SINGLE)
        return 0;
    if (p->kind == KIND_EXPLICIT)
        return fail(p, EINVAL, "the mapping does not include virtual "
                    "function 0 (" NO_FN0_REASON ")");
    return fail(p, EINVAL, "guest slot %02x would have no function 0 ("
                NO_FN0_REASON ")", p->slot);
}

static void commit(const Plan *p, PtBusMap *map, PtPlacement *out)
{
    const PtRequest *r = p->req;

    memset(out, 0, sizeof(*out));
    out->nfuncs = r->nfuncs;
    out->vslot = p->slot;
    for (int i = 0; i < r->nfuncs; i++) {
        out->host[i] = (PtBdf){ r->domain, r->bus, r->dev, r->pfunc[i] };
        out->vdevfn[i] = PT_DEVFN(p->slot, p->vfunc[i]);
        map->used[p->slot] |= BIT(p->vfunc[i]);
        map->holder[p->slot][p->vfunc[i]] = out->host[i];
    }
    memcpy(out->note, p->note, sizeof(out->note));
}

void pt_busmap_init(PtBusMap *map, uint32_t reserved)
{
    memset(map, 0, sizeof(*map));
    map->reserved = reserved;
}

int pt_place(PtBusMap *map, const PtRequest *req, PtMapScheme scheme,
             bool partial, const char *text, PtPlacement *out, PtError *err)
{
    char name[32];
    Plan p;
    int rc;

    memset(&p, 0, sizeof(p));
    if (!text) {
        snprintf(name, sizeof(name), "%04x:%02x:%02x", req->domain, req->bus,
                 req->dev);
        text = name;
    }
    p.req = req;
    p.text = text;
    p.err = err;
    p.partial = partial;

    rc = check_request(&p);
    if (!rc)
        rc = choose_kind(&p, scheme);
    if (!rc)
        rc = choose_slot(&p, map);
    if (!rc) {
        p.taken = map->used[p.slot];
        rc = kind_ops(p.kind)->assign(&p);
    }
    if (!rc)
        rc = check_plan(&p, map);
    if (!rc)
        commit(&p, map, out);
    return rc;
}

void pt_unplace(PtBusMap *map, const PtPlacement *pl)
{
    int n = pl->nfuncs;

    if (n < 0 || n > PT_FUNCS_PER_SLOT)
        return;
    for (int i = 0; i < n; i++) {
        uint8_t devfn = pl->vdevfn[i];

        map->used[PT_SLOT(devfn)] &= (uint8_t)~BIT(PT_FUNC(devfn));
        map->holder[PT_SLOT(devfn)][PT_FUNC(devfn)] = (PtBdf){ 0 };
    }
}

static const KindOps place_kinds[] = {
    [KIND_SINGLE]   = { assign_single },
    [KIND_IDENTITY] = { assign_identity },
    [KIND_LEAST]    = { assign_least },
    [KIND_EXPLICIT] = { assign_explicit },
};

static const KindOps *kind_ops(PlaceKind kind)
{
    return &place_kinds[kind];
}
