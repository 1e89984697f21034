/*
 * The `sim` hypervisor: no hypervisor at all, but a faithful witness.  Every
 * call is recorded (structured and as a text line) and checked against the
 * invariants a real hypervisor relies on: guest ranges never overlap, unmap
 * undoes exactly one earlier map, a device is assigned once, a pirq is bound
 * once.  Violations are recorded and printed, never fatal, so a test can
 * assert on them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <glib.h>
#include "hypervisor-sim.h"
#include "pt-place.h"

/* Where the sim hands out MSI pirqs; GSI pirqs equal their GSI (< 256). */
#define SIM_MSI_PIRQ_BASE 256
#define SIM_IOPORT_LIMIT  0x10000u

typedef struct SimRange {
    uint64_t guest, machine, count;
} SimRange;

typedef struct SimPirq {
    int pirq;
    bool msi;
    int gsi;                /* INTx */
    unsigned refs;          /* INTx: functions sharing one GSI map it again */
} SimPirq;

typedef struct SimIntx {
    int pirq;
    uint8_t devfn, intx;
    bool msi;               /* msitranslate: an MSI pirq as this INTx */
} SimIntx;

typedef struct SimMsi {
    int pirq;
    HvMsi msi;
} SimMsi;

typedef struct SimAssign {
    PtBdf host;
    uint8_t devfn;
} SimAssign;

typedef struct SimPerm {
    HvOp kind;
    uint64_t start, count;
} SimPerm;

typedef struct HvSim {
    Hypervisor hv;
    GArray *calls;          /* HvCall */
    GPtrArray *lines;       /* char *, one per call; NULL until asked for */
    GPtrArray *errors;      /* char * */
    GArray *mmio, *io;      /* SimRange */
    GArray *pirqs;          /* SimPirq */
    GArray *intx;           /* SimIntx */
    GArray *msi;            /* SimMsi */
    GArray *assigned;       /* SimAssign */
    GArray *perms;          /* SimPerm */
    unsigned long ncalls;
    bool armed, fired;
    unsigned long fail_at;  /* with armed: the call number that fails */
    int fail_err;
    bool msix_some_writes;  /* hypervisor_sim_set_msix_all_writes(false) */
} HvSim;

static const HypervisorOps sim_ops;

static HvSim *to_sim(Hypervisor *hv)
{
    g_assert(hv->ops == &sim_ops);
    return (HvSim *)hv;
}

/* ------------------------------------------------------------ violations */

static int G_GNUC_PRINTF(3, 4)
violation(HvSim *s, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("hypervisor-sim: error: %s\n", msg);
    g_ptr_array_add(s->errors, msg);
    return -err;
}

static const char *fmt_devfn(uint8_t devfn, char buf[8])
{
    snprintf(buf, 8, "%02x.%x", PT_SLOT(devfn), PT_FUNC(devfn));
    return buf;
}

/* Our own formatter: the sim must not depend on the notation module. */
static const char *fmt_bdf(PtBdf bdf, char buf[16])
{
    snprintf(buf, 16, "%04x:%02x:%02x.%x", bdf.domain, bdf.bus, bdf.dev, bdf.func);
    return buf;
}

static bool bdf_eq(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev && a.func == b.func;
}

/* ------------------------------------------------------------ ranges */

static bool ranges_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
    return a < b + bn && b < a + an;
}

static int range_map(HvSim *s, GArray *ranges, const char *what, const HvCall *c)
{
    if (c->count == 0)
        return violation(s, EINVAL, "map %s at 0x%" PRIx64 ": empty range", what, c->guest);
    for (guint i = 0; i < ranges->len; i++) {
        const SimRange *r = &g_array_index(ranges, SimRange, i);
        if (ranges_overlap(c->guest, c->count, r->guest, r->count))
            return violation(s, EEXIST,
                             "map %s 0x%" PRIx64 "+%" PRIu64 " overlaps live 0x%" PRIx64 "+%" PRIu64,
                             what, c->guest, c->count, r->guest, r->count);
    }
    SimRange r = { c->guest, c->machine, c->count };
    g_array_append_val(ranges, r);
    return 0;
}

static int range_unmap(HvSim *s, GArray *ranges, const char *what, const HvCall *c)
{
    for (guint i = 0; i < ranges->len; i++) {
        const SimRange *r = &g_array_index(ranges, SimRange, i);
        if (r->guest == c->guest && r->machine == c->machine && r->count == c->count) {
            g_array_remove_index(ranges, i);
            return 0;
        }
    }
    return violation(s, ENOENT,
                     "unmap %s 0x%" PRIx64 "->0x%" PRIx64 "+%" PRIu64 " matches no live mapping",
                     what, c->guest, c->machine, c->count);
}

static int apply_map_mmio(HvSim *s, HvCall *c)   { return range_map(s, s->mmio, "mmio", c); }
static int apply_unmap_mmio(HvSim *s, HvCall *c) { return range_unmap(s, s->mmio, "mmio", c); }

static int apply_map_ioport(HvSim *s, HvCall *c)
{
    if (c->guest + c->count > SIM_IOPORT_LIMIT || c->machine + c->count > SIM_IOPORT_LIMIT)
        return violation(s, EINVAL, "map ioport 0x%" PRIx64 "+%" PRIu64 " beyond port space",
                         c->guest, c->count);
    return range_map(s, s->io, "ioport", c);
}

static int apply_unmap_ioport(HvSim *s, HvCall *c) { return range_unmap(s, s->io, "ioport", c); }

/* ------------------------------------------------------------ devices */

static SimAssign *find_assigned(HvSim *s, PtBdf host, guint *index)
{
    for (guint i = 0; i < s->assigned->len; i++) {
        SimAssign *a = &g_array_index(s->assigned, SimAssign, i);
        if (bdf_eq(a->host, host)) {
            *index = i;
            return a;
        }
    }
    return NULL;
}

static int apply_test_device(HvSim *s, HvCall *c)
{
    guint i;
    /* Busy is an answer, not a violation: the caller asked. */
    return find_assigned(s, c->host, &i) ? -EBUSY : 0;
}

static int apply_assign(HvSim *s, HvCall *c)
{
    char b[16], d[8];
    guint i;
    if (find_assigned(s, c->host, &i))
        return violation(s, EBUSY, "assign %s: already assigned",
                         fmt_bdf(c->host, b));
    for (i = 0; i < s->assigned->len; i++)
        if (g_array_index(s->assigned, SimAssign, i).devfn == c->devfn)
            return violation(s, EEXIST, "assign %s: guest devfn %s already taken",
                             fmt_bdf(c->host, b), fmt_devfn(c->devfn, d));
    SimAssign a = { c->host, c->devfn };
    g_array_append_val(s->assigned, a);
    return 0;
}

static int apply_deassign(HvSim *s, HvCall *c)
{
    char b[16], d[8];
    guint i;
    SimAssign *a = find_assigned(s, c->host, &i);
    if (!a || a->devfn != c->devfn)
        return violation(s, ENOENT, "deassign %s from %s: not assigned there",
                         fmt_bdf(c->host, b), fmt_devfn(c->devfn, d));
    g_array_remove_index(s->assigned, i);
    return 0;
}

/* ------------------------------------------------------------ pirqs */

static SimPirq *find_pirq(HvSim *s, int pirq, guint *index)
{
    for (guint i = 0; i < s->pirqs->len; i++) {
        SimPirq *p = &g_array_index(s->pirqs, SimPirq, i);
        if (p->pirq == pirq) {
            *index = i;
            return p;
        }
    }
    return NULL;
}

static int alloc_pirq(HvSim *s, int preferred)
{
    guint i;
    int pirq = preferred;
    while (find_pirq(s, pirq, &i))
        pirq = pirq < SIM_MSI_PIRQ_BASE ? SIM_MSI_PIRQ_BASE : pirq + 1;
    return pirq;
}

static int apply_map_pirq(HvSim *s, HvCall *c)
{
    if (c->gsi < 0)
        return violation(s, EINVAL, "map_pirq: bad gsi %d", c->gsi);
    for (guint i = 0; i < s->pirqs->len; i++) {
        SimPirq *p = &g_array_index(s->pirqs, SimPirq, i);
        if (!p->msi && p->gsi == c->gsi) {
            p->refs++;
            c->pirq = p->pirq;
            return 0;
        }
    }
    SimPirq p = { .pirq = alloc_pirq(s, c->gsi), .gsi = c->gsi, .refs = 1 };
    g_array_append_val(s->pirqs, p);
    c->pirq = p.pirq;
    return 0;
}

/* The guest's own pirq when it names one (c->pirq >= 0), as Xen maps it. */
static int apply_map_pirq_msi(HvSim *s, HvCall *c)
{
    guint at;

    if (c->pirq >= 0 && find_pirq(s, c->pirq, &at))
        return violation(s, EEXIST, "map_pirq_msi: pirq %d already mapped", c->pirq);
    SimPirq p = { .pirq = c->pirq >= 0 ? c->pirq : alloc_pirq(s, SIM_MSI_PIRQ_BASE),
                  .msi = true, .refs = 1 };
    g_array_append_val(s->pirqs, p);
    c->pirq = p.pirq;
    return 0;
}

static bool pirq_bound(HvSim *s, int pirq)
{
    for (guint i = 0; i < s->intx->len; i++)
        if (g_array_index(s->intx, SimIntx, i).pirq == pirq)
            return true;
    for (guint i = 0; i < s->msi->len; i++)
        if (g_array_index(s->msi, SimMsi, i).pirq == pirq)
            return true;
    return false;
}

static int apply_unmap_pirq(HvSim *s, HvCall *c)
{
    guint i;
    SimPirq *p = find_pirq(s, c->pirq, &i);
    if (!p)
        return violation(s, ENOENT, "unmap_pirq %d: not mapped", c->pirq);
    if (p->refs == 1 && pirq_bound(s, c->pirq))
        return violation(s, EBUSY, "unmap_pirq %d: still bound to the guest", c->pirq);
    if (--p->refs == 0)
        g_array_remove_index(s->pirqs, i);
    return 0;
}

static bool find_intx(HvSim *s, const HvCall *c, guint *index)
{
    bool msi = c->op == HV_OP_BIND_MSI_INTX || c->op == HV_OP_UNBIND_MSI_INTX;

    for (guint i = 0; i < s->intx->len; i++) {
        const SimIntx *b = &g_array_index(s->intx, SimIntx, i);
        if (b->pirq == c->pirq && b->devfn == c->devfn && b->intx == c->intx && b->msi == msi) {
            *index = i;
            return true;
        }
    }
    return false;
}

static int apply_bind_intx(HvSim *s, HvCall *c)
{
    char d[8];
    guint i;
    const SimPirq *p = find_pirq(s, c->pirq, &i);
    if (!p || p->msi)
        return violation(s, ENOENT, "bind_intx pirq %d: no INTx pirq mapped", c->pirq);
    if (c->intx > 3)
        return violation(s, EINVAL, "bind_intx pirq %d: intx %u out of range", c->pirq, c->intx);
    if (find_intx(s, c, &i))
        return violation(s, EEXIST, "bind_intx pirq %d: already bound to %s INT%c",
                         c->pirq, fmt_devfn(c->devfn, d), 'A' + c->intx);
    SimIntx b = { c->pirq, c->devfn, c->intx, false };
    g_array_append_val(s->intx, b);
    return 0;
}

static SimMsi *find_msi(HvSim *s, int pirq, guint *index);

/* Is this MSI pirq delivered as an INTx (msitranslate)? */
static bool translated(HvSim *s, int pirq)
{
    for (guint i = 0; i < s->intx->len; i++)
        if (g_array_index(s->intx, SimIntx, i).pirq == pirq)
            return true;
    return false;
}

/* One INTx per translated pirq, and never also bound as an MSI (Xen: EBUSY). */
static int apply_bind_msi_intx(HvSim *s, HvCall *c)
{
    guint i;
    const SimPirq *p = find_pirq(s, c->pirq, &i);
    if (!p || !p->msi)
        return violation(s, ENOENT, "bind_msi_intx pirq %d: no MSI pirq mapped", c->pirq);
    if (c->intx > 3)
        return violation(s, EINVAL, "bind_msi_intx pirq %d: intx %u out of range", c->pirq,
                         c->intx);
    if (find_msi(s, c->pirq, &i) || translated(s, c->pirq))
        return violation(s, EBUSY, "bind_msi_intx pirq %d: already bound", c->pirq);
    SimIntx b = { c->pirq, c->devfn, c->intx, true };
    g_array_append_val(s->intx, b);
    return 0;
}

static int apply_unbind_intx(HvSim *s, HvCall *c)
{
    char d[8];
    guint i;
    if (!find_intx(s, c, &i))
        return violation(s, ENOENT, "unbind_intx pirq %d from %s INT%c: not bound",
                         c->pirq, fmt_devfn(c->devfn, d), 'A' + (c->intx & 3));
    g_array_remove_index(s->intx, i);
    return 0;
}

static SimMsi *find_msi(HvSim *s, int pirq, guint *index)
{
    for (guint i = 0; i < s->msi->len; i++) {
        SimMsi *b = &g_array_index(s->msi, SimMsi, i);
        if (b->pirq == pirq) {
            *index = i;
            return b;
        }
    }
    return NULL;
}

static int apply_bind_msi(HvSim *s, HvCall *c)
{
    guint i;
    const SimPirq *p = find_pirq(s, c->pirq, &i);
    if (!p || !p->msi)
        return violation(s, ENOENT, "bind_msi pirq %d: no MSI pirq mapped", c->pirq);
    if (find_msi(s, c->pirq, &i))
        return violation(s, EEXIST, "bind_msi pirq %d: already bound", c->pirq);
    if (translated(s, c->pirq))
        return violation(s, EBUSY, "bind_msi pirq %d: delivered as INTx", c->pirq);
    SimMsi b = { c->pirq, c->msi };
    g_array_append_val(s->msi, b);
    return 0;
}

static int apply_update_msi(HvSim *s, HvCall *c)
{
    guint i;
    SimMsi *b = find_msi(s, c->pirq, &i);
    if (!b)
        return violation(s, ENOENT, "update_msi pirq %d: not bound", c->pirq);
    b->msi = c->msi;
    return 0;
}

static int apply_unbind_msi(HvSim *s, HvCall *c)
{
    guint i;
    if (!find_msi(s, c->pirq, &i))
        return violation(s, ENOENT, "unbind_msi pirq %d: not bound", c->pirq);
    g_array_remove_index(s->msi, i);
    return 0;
}

/* ------------------------------------------------------------ permissions */

/* Grants pair with revokes exactly, so a leak shows in check_clean. */
static int apply_permission(HvSim *s, HvCall *c)
{
    for (guint i = 0; i < s->perms->len; i++) {
        const SimPerm *p = &g_array_index(s->perms, SimPerm, i);
        if (p->kind == c->op && p->start == c->machine && p->count == c->count) {
            if (!c->allow)
                g_array_remove_index(s->perms, i);
            return 0;   /* granting twice is harmless, as in Xen */
        }
    }
    if (!c->allow)
        return violation(s, ENOENT, "revoke 0x%" PRIx64 "+%" PRIu64 ": never granted",
                         c->machine, c->count);
    SimPerm p = { c->op, c->machine, c->count };
    g_array_append_val(s->perms, p);
    return 0;
}

/* ------------------------------------------------------------ text lines */

static void fmt_device(GString *g, const HvCall *c)
{
    char b[16], d[8];
    g_string_append_printf(g, " %s", fmt_bdf(c->host, b));
    if (c->op != HV_OP_TEST_DEVICE)
        g_string_append_printf(g, " devfn=%s", fmt_devfn(c->devfn, d));
}

static void fmt_mmio(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " gfn=0x%" PRIx64 " mfn=0x%" PRIx64 " n=%" PRIu64,
                           c->guest, c->machine, c->count);
}

static void fmt_ioport(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " gport=0x%" PRIx64 " mport=0x%" PRIx64 " n=%" PRIu64,
                           c->guest, c->machine, c->count);
}

static void fmt_map_pirq(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " gsi=%d", c->gsi);
    if (c->rc == 0)
        g_string_append_printf(g, " pirq=%d", c->pirq);
}

static void fmt_map_pirq_msi(GString *g, const HvCall *c)
{
    char b[16];
    g_string_append_printf(g, " %s entry=%d table=0x%" PRIx64,
                           fmt_bdf(c->host, b), c->gsi, c->table_base);
    if (c->rc == 0)
        g_string_append_printf(g, " pirq=%d", c->pirq);
}

static void fmt_pirq(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " pirq=%d", c->pirq);
}

static void fmt_intx(GString *g, const HvCall *c)
{
    char d[8];
    g_string_append_printf(g, " pirq=%d devfn=%s intx=%c", c->pirq,
                           fmt_devfn(c->devfn, d), 'A' + (c->intx & 3));
}

static void fmt_msi(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " pirq=%d vector=0x%02x dest=0x%x mode=%u flags=0x%x table=0x%" PRIx64,
                           c->pirq, c->msi.vector, c->msi.dest, c->msi.delivery_mode,
                           c->msi.flags, c->msi.table);
}

static void fmt_perm_range(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " start=0x%" PRIx64 " n=%" PRIu64 " allow=%d",
                           c->machine, c->count, c->allow);
}

static void fmt_perm_irq(GString *g, const HvCall *c)
{
    g_string_append_printf(g, " pirq=%d allow=%d", c->pirq, c->allow);
}

typedef struct SimOpDesc {
    const char *name;
    int (*apply)(HvSim *s, HvCall *c);
    void (*format)(GString *g, const HvCall *c);
} SimOpDesc;

static const SimOpDesc op_desc[HV_OP_COUNT] = {
    [HV_OP_TEST_DEVICE]       = { "test_device",       apply_test_device,  fmt_device },
    [HV_OP_ASSIGN_DEVICE]     = { "assign_device",     apply_assign,       fmt_device },
    [HV_OP_DEASSIGN_DEVICE]   = { "deassign_device",   apply_deassign,     fmt_device },
    [HV_OP_MAP_MMIO]          = { "map_mmio",          apply_map_mmio,     fmt_mmio },
    [HV_OP_UNMAP_MMIO]        = { "unmap_mmio",        apply_unmap_mmio,   fmt_mmio },
    [HV_OP_MAP_IOPORT]        = { "map_ioport",        apply_map_ioport,   fmt_ioport },
    [HV_OP_UNMAP_IOPORT]      = { "unmap_ioport",      apply_unmap_ioport, fmt_ioport },
    [HV_OP_MAP_PIRQ]          = { "map_pirq",          apply_map_pirq,     fmt_map_pirq },
    [HV_OP_MAP_PIRQ_MSI]      = { "map_pirq_msi",      apply_map_pirq_msi, fmt_map_pirq_msi },
    [HV_OP_UNMAP_PIRQ]        = { "unmap_pirq",        apply_unmap_pirq,   fmt_pirq },
    [HV_OP_BIND_INTX]         = { "bind_intx",         apply_bind_intx,    fmt_intx },
    [HV_OP_UNBIND_INTX]       = { "unbind_intx",       apply_unbind_intx,  fmt_intx },
    [HV_OP_BIND_MSI]          = { "bind_msi",          apply_bind_msi,     fmt_msi },
    [HV_OP_UPDATE_MSI]        = { "update_msi",        apply_update_msi,   fmt_msi },
    [HV_OP_UNBIND_MSI]        = { "unbind_msi",        apply_unbind_msi,   fmt_msi },
    [HV_OP_IOMEM_PERMISSION]  = { "iomem_permission",  apply_permission,   fmt_perm_range },
    [HV_OP_IOPORT_PERMISSION] = { "ioport_permission", apply_permission,   fmt_perm_range },
    [HV_OP_IRQ_PERMISSION]    = { "irq_permission",    apply_permission,   fmt_perm_irq },
    [HV_OP_BIND_MSI_INTX]     = { "bind_msi_intx",     apply_bind_msi_intx, fmt_intx },
    [HV_OP_UNBIND_MSI_INTX]   = { "unbind_msi_intx",   apply_unbind_intx,  fmt_intx },
};

static char *format_call(const HvCall *c)
{
    GString *g = g_string_new(op_desc[c->op].name);
    op_desc[c->op].format(g, c);
    if (c->rc)
        g_string_append_printf(g, " -> %d (%s)%s", c->rc, g_strerror(-c->rc),
                               c->injected ? " [injected]" : "");
    return g_string_free(g, FALSE);
}

/* ------------------------------------------------------------ dispatch */

static bool fault_due(HvSim *s)
{
    if (!s->armed || s->ncalls != s->fail_at)
        return false;
    s->armed = false;
    s->fired = true;
    return true;
}

/* The one path every op takes: count, maybe inject, apply, record. */
static int sim_call(HvSim *s, HvCall *c)
{
    s->ncalls++;
    if (fault_due(s)) {
        c->rc = -s->fail_err;
        c->injected = true;
    } else {
        c->rc = op_desc[c->op].apply(s, c);
    }
    g_array_append_val(s->calls, *c);
    g_ptr_array_add(s->lines, NULL);    /* formatted when read: most never are */
    return c->rc;
}

static int sim_test_device(Hypervisor *hv, PtBdf host)
{
    HvCall c = { .op = HV_OP_TEST_DEVICE, .host = host };
    return sim_call(to_sim(hv), &c);
}

static int sim_assign_device(Hypervisor *hv, PtBdf host, uint8_t devfn)
{
    HvCall c = { .op = HV_OP_ASSIGN_DEVICE, .host = host, .devfn = devfn };
    return sim_call(to_sim(hv), &c);
}

static int sim_deassign_device(Hypervisor *hv, PtBdf host, uint8_t devfn)
{
    HvCall c = { .op = HV_OP_DEASSIGN_DEVICE, .host = host, .devfn = devfn };
    return sim_call(to_sim(hv), &c);
}

static int sim_range(Hypervisor *hv, HvOp op, uint64_t g, uint64_t m, uint64_t n)
{
    HvCall c = { .op = op, .guest = g, .machine = m, .count = n };
    return sim_call(to_sim(hv), &c);
}

static int sim_map_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{
    return sim_range(hv, HV_OP_MAP_MMIO, gfn, mfn, n);
}

static int sim_unmap_mmio(Hypervisor *hv, uint64_t gfn, uint64_t mfn, uint64_t n)
{
    return sim_range(hv, HV_OP_UNMAP_MMIO, gfn, mfn, n);
}

static int sim_map_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{
    return sim_range(hv, HV_OP_MAP_IOPORT, g, m, n);
}

static int sim_unmap_ioport(Hypervisor *hv, uint32_t g, uint32_t m, uint32_t n)
{
    return sim_range(hv, HV_OP_UNMAP_IOPORT, g, m, n);
}

static int sim_map_pirq(Hypervisor *hv, int gsi, int *pirq)
{
    HvCall c = { .op = HV_OP_MAP_PIRQ, .gsi = gsi };
    int rc = sim_call(to_sim(hv), &c);
    if (rc == 0)
        *pirq = c.pirq;
    return rc;
}

static int sim_map_pirq_msi(Hypervisor *hv, PtBdf host, int entry,
                            uint64_t table_base, int *pirq)
{
    HvCall c = { .op = HV_OP_MAP_PIRQ_MSI, .host = host, .gsi = entry,
                 .table_base = table_base, .pirq = *pirq };
    int rc = sim_call(to_sim(hv), &c);
    if (rc == 0)
        *pirq = c.pirq;
    return rc;
}

static int sim_unmap_pirq(Hypervisor *hv, int pirq)
{
    HvCall c = { .op = HV_OP_UNMAP_PIRQ, .pirq = pirq };
    return sim_call(to_sim(hv), &c);
}

static int sim_intx(Hypervisor *hv, HvOp op, int pirq, uint8_t devfn, uint8_t intx)
{
    HvCall c = { .op = op, .pirq = pirq, .devfn = devfn, .intx = intx };
    return sim_call(to_sim(hv), &c);
}

static int sim_bind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return sim_intx(hv, HV_OP_BIND_INTX, pirq, devfn, intx);
}

static int sim_unbind_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return sim_intx(hv, HV_OP_UNBIND_INTX, pirq, devfn, intx);
}

static int sim_bind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return sim_intx(hv, HV_OP_BIND_MSI_INTX, pirq, devfn, intx);
}

static int sim_unbind_msi_intx(Hypervisor *hv, int pirq, uint8_t devfn, uint8_t intx)
{
    return sim_intx(hv, HV_OP_UNBIND_MSI_INTX, pirq, devfn, intx);
}

static int sim_msi(Hypervisor *hv, HvOp op, int pirq, const HvMsi *msi)
{
    HvCall c = { .op = op, .pirq = pirq, .msi = *msi };
    return sim_call(to_sim(hv), &c);
}

static int sim_bind_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{
    return sim_msi(hv, HV_OP_BIND_MSI, pirq, msi);
}

static int sim_update_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{
    return sim_msi(hv, HV_OP_UPDATE_MSI, pirq, msi);
}

static int sim_unbind_msi(Hypervisor *hv, int pirq, const HvMsi *msi)
{
    return sim_msi(hv, HV_OP_UNBIND_MSI, pirq, msi);
}

static int sim_iomem_permission(Hypervisor *hv, uint64_t mfn, uint64_t n, bool allow)
{
    HvCall c = { .op = HV_OP_IOMEM_PERMISSION, .machine = mfn, .count = n, .allow = allow };
    return sim_call(to_sim(hv), &c);
}

static int sim_ioport_permission(Hypervisor *hv, uint32_t port, uint32_t n, bool allow)
{
    HvCall c = { .op = HV_OP_IOPORT_PERMISSION, .machine = port, .count = n, .allow = allow };
    return sim_call(to_sim(hv), &c);
}

static int sim_irq_permission(Hypervisor *hv, int pirq, bool allow)
{
    /* Keyed like a one-wide range so the grant/revoke pairing is shared. */
    HvCall c = { .op = HV_OP_IRQ_PERMISSION, .pirq = pirq, .machine = (uint64_t)pirq,
                 .count = 1, .allow = allow };
    return sim_call(to_sim(hv), &c);
}

/* The sim sees every guest write: it is the contract, unless a test says. */
static bool sim_msix_all_writes(Hypervisor *hv)
{
    return !to_sim(hv)->msix_some_writes;
}

void hypervisor_sim_set_msix_all_writes(Hypervisor *hv, bool all)
{
    to_sim(hv)->msix_some_writes = !all;
}

/* ------------------------------------------------------------ life cycle */

Hypervisor *hypervisor_sim_new(void)
{
    HvSim *s = g_new0(HvSim, 1);
    s->hv.ops = &sim_ops;
    s->calls = g_array_new(FALSE, TRUE, sizeof(HvCall));
    s->lines = g_ptr_array_new_with_free_func(g_free);
    s->errors = g_ptr_array_new_with_free_func(g_free);
    s->mmio = g_array_new(FALSE, TRUE, sizeof(SimRange));
    s->io = g_array_new(FALSE, TRUE, sizeof(SimRange));
    s->pirqs = g_array_new(FALSE, TRUE, sizeof(SimPirq));
    s->intx = g_array_new(FALSE, TRUE, sizeof(SimIntx));
    s->msi = g_array_new(FALSE, TRUE, sizeof(SimMsi));
    s->assigned = g_array_new(FALSE, TRUE, sizeof(SimAssign));
    s->perms = g_array_new(FALSE, TRUE, sizeof(SimPerm));
    return &s->hv;
}

static void sim_free(Hypervisor *hv)
{
    HvSim *s = to_sim(hv);
    g_array_unref(s->calls);
    g_ptr_array_unref(s->lines);
    g_ptr_array_unref(s->errors);
    g_array_unref(s->mmio);
    g_array_unref(s->io);
    g_array_unref(s->pirqs);
    g_array_unref(s->intx);
    g_array_unref(s->msi);
    g_array_unref(s->assigned);
    g_array_unref(s->perms);
    g_free(s);
}

/* Lives here because sim is the implementation always linked in. */
void hypervisor_free(Hypervisor *hv)
{
    if (hv)
        hv->ops->free(hv);
}

bool hypervisor_is_sim(const Hypervisor *hv)
{
    return hv->ops == &sim_ops;
}

/* ------------------------------------------------------------ queries */

size_t hypervisor_sim_log_len(Hypervisor *hv)
{
    return to_sim(hv)->calls->len;
}

const HvCall *hypervisor_sim_log_at(Hypervisor *hv, size_t i)
{
    HvSim *s = to_sim(hv);
    g_return_val_if_fail(i < s->calls->len, NULL);
    return &g_array_index(s->calls, HvCall, i);
}

const char *hypervisor_sim_log_line(Hypervisor *hv, size_t i)
{
    HvSim *s = to_sim(hv);
    g_return_val_if_fail(i < s->lines->len, NULL);
    if (!g_ptr_array_index(s->lines, i))
        g_ptr_array_index(s->lines, i) = format_call(&g_array_index(s->calls, HvCall, i));
    return g_ptr_array_index(s->lines, i);
}

char *hypervisor_sim_log_text(Hypervisor *hv, size_t from)
{
    HvSim *s = to_sim(hv);
    GString *g = g_string_new("");
    for (guint i = (guint)from; i < s->lines->len; i++)
        g_string_append_printf(g, "%s\n", hypervisor_sim_log_line(hv, i));
    return g_string_free(g, FALSE);
}

void hypervisor_sim_log_clear(Hypervisor *hv)
{
    HvSim *s = to_sim(hv);
    g_array_set_size(s->calls, 0);
    g_ptr_array_set_size(s->lines, 0);
}

void hypervisor_sim_log_dump(Hypervisor *hv)
{
    char *text = hypervisor_sim_log_text(hv, 0);
    g_printerr("%s", text);
    g_free(text);
}

size_t hypervisor_sim_error_count(Hypervisor *hv)
{
    return to_sim(hv)->errors->len;
}

const char *hypervisor_sim_error_at(Hypervisor *hv, size_t i)
{
    HvSim *s = to_sim(hv);
    g_return_val_if_fail(i < s->errors->len, NULL);
    return g_ptr_array_index(s->errors, i);
}

size_t hypervisor_sim_mmio_mappings(Hypervisor *hv)   { return to_sim(hv)->mmio->len; }
size_t hypervisor_sim_ioport_mappings(Hypervisor *hv) { return to_sim(hv)->io->len; }
size_t hypervisor_sim_pirqs(Hypervisor *hv)           { return to_sim(hv)->pirqs->len; }
size_t hypervisor_sim_assigned(Hypervisor *hv)        { return to_sim(hv)->assigned->len; }
size_t hypervisor_sim_permissions(Hypervisor *hv)     { return to_sim(hv)->perms->len; }

size_t hypervisor_sim_bindings(Hypervisor *hv)
{
    HvSim *s = to_sim(hv);
    return s->intx->len + s->msi->len;
}

bool hypervisor_sim_mmio_lookup(Hypervisor *hv, uint64_t gfn, uint64_t *mfn)
{
    HvSim *s = to_sim(hv);
    for (guint i = 0; i < s->mmio->len; i++) {
        const SimRange *r = &g_array_index(s->mmio, SimRange, i);
        if (gfn >= r->guest && gfn < r->guest + r->count) {
            *mfn = r->machine + (gfn - r->guest);
            return true;
        }
    }
    return false;
}

static unsigned report_ranges(GArray *ranges, const char *what)
{
    for (guint i = 0; i < ranges->len; i++) {
        const SimRange *r = &g_array_index(ranges, SimRange, i);
        g_printerr("hypervisor-sim: leak: %s 0x%" PRIx64 "->0x%" PRIx64 "+%" PRIu64 "\n",
                   what, r->guest, r->machine, r->count);
    }
    return ranges->len;
}

static unsigned report_pirqs(HvSim *s)
{
    for (guint i = 0; i < s->pirqs->len; i++) {
        const SimPirq *p = &g_array_index(s->pirqs, SimPirq, i);
        g_printerr("hypervisor-sim: leak: %s pirq %d\n", p->msi ? "MSI" : "INTx", p->pirq);
    }
    for (guint i = 0; i < s->intx->len; i++)
        g_printerr("hypervisor-sim: leak: INTx binding of pirq %d\n",
                   g_array_index(s->intx, SimIntx, i).pirq);
    for (guint i = 0; i < s->msi->len; i++)
        g_printerr("hypervisor-sim: leak: MSI binding of pirq %d\n",
                   g_array_index(s->msi, SimMsi, i).pirq);
    return s->pirqs->len + s->intx->len + s->msi->len;
}

static unsigned report_devices(HvSim *s)
{
    char b[16];
    for (guint i = 0; i < s->assigned->len; i++)
        g_printerr("hypervisor-sim: leak: %s still assigned\n",
                   fmt_bdf(g_array_index(s->assigned, SimAssign, i).host, b));
    for (guint i = 0; i < s->perms->len; i++) {
        const SimPerm *p = &g_array_index(s->perms, SimPerm, i);
        g_printerr("hypervisor-sim: leak: %s 0x%" PRIx64 "+%" PRIu64 " still granted\n",
                   op_desc[p->kind].name, p->start, p->count);
    }
    return s->assigned->len + s->perms->len;
}

int hypervisor_sim_check_clean(Hypervisor *hv)
{
    HvSim *s = to_sim(hv);
    unsigned left = report_ranges(s->mmio, "mmio") + report_ranges(s->io, "ioport")
                  + report_pirqs(s) + report_devices(s);
    if (s->errors->len)
        g_printerr("hypervisor-sim: %u violation(s) recorded\n", s->errors->len);
    return left || s->errors->len ? -EBUSY : 0;
}

void hypervisor_sim_fail_call(Hypervisor *hv, unsigned k, int err)
{
    HvSim *s = to_sim(hv);
    s->armed = k > 0;
    s->fired = false;
    s->fail_at = s->ncalls + k;
    s->fail_err = err;
}

bool hypervisor_sim_fault_fired(Hypervisor *hv)
{
    return to_sim(hv)->fired;
}

unsigned long hypervisor_sim_calls(Hypervisor *hv)
{
    return to_sim(hv)->ncalls;
}

static const HypervisorOps sim_ops = {
    .name = "sim",
    .test_device = sim_test_device,
    .assign_device = sim_assign_device,
    .deassign_device = sim_deassign_device,
    .map_mmio = sim_map_mmio,
    .unmap_mmio = sim_unmap_mmio,
    .map_ioport = sim_map_ioport,
    .unmap_ioport = sim_unmap_ioport,
    .map_pirq = sim_map_pirq,
    .map_pirq_msi = sim_map_pirq_msi,
    .unmap_pirq = sim_unmap_pirq,
    .bind_intx = sim_bind_intx,
    .unbind_intx = sim_unbind_intx,
    .bind_msi = sim_bind_msi,
    .update_msi = sim_update_msi,
    .unbind_msi = sim_unbind_msi,
    .iomem_permission = sim_iomem_permission,
    .ioport_permission = sim_ioport_permission,
    .irq_permission = sim_irq_permission,
    .bind_msi_intx = sim_bind_msi_intx,
    .unbind_msi_intx = sim_unbind_msi_intx,
    .msix_all_writes = sim_msix_all_writes,
    .free = sim_free,
};
