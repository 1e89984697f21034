/*
 * MSI and MSI-X of a passed-through function (see pt-msi.h).  State that
 * can be derived is: after every event the guest's registers (the shadow,
 * the latched table) are compared with what the hypervisor holds, and
 * only the difference is sent.
 */
#include "pt-msi.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <pci/pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm-log.h"

#define MSI_MAX_MESSAGES 32         /* multiple-message enable: 2^5 at most */
#define MSIX_WORDS       (PT_MSIX_ENTRY_SIZE / 4)

/* One vector as the hypervisor holds it. */
typedef struct Vec {
    int pirq;           /* -1: none mapped */
    bool bound;
    HvMsi msi;          /* valid while bound */
} Vec;

/* One MSI-X table entry: the guest's words, and what was applied. */
typedef struct Entry {
    uint32_t word[MSIX_WORDS];  /* address low, address high, data, vector control */
    bool live;                  /* unmasked and enabled when last applied */
    bool dirty;                 /* address/data written while live */
    Vec v;
} Entry;

/* The guest's MSI-X control register and table address, once per pass. */
typedef struct MsixState {
    bool enabled, fmask;
    uint64_t table;             /* guest address of the table */
} MsixState;

struct PtMsi {
    PtFunc *fn;
    Hypervisor *hv;
    PtBdf host;
    const char *name;

    unsigned msi_cap;                   /* 0: no MSI */
    Vec msi[MSI_MAX_MESSAGES];
    unsigned msi_n;                     /* messages the guest has bound */

    /* msitranslate=1: the host's MSI as the guest's INTx while the guest
     * has not enabled MSI itself (tr.bound: the translated binding). */
    bool tr_wanted;
    uint8_t tr_devfn, tr_intx;
    Vec tr;

    bool has_msix;
    PtMsixInfo x;
    uint64_t host_table_base;           /* host address of the table's BAR */
    uint64_t table_gaddr;               /* the guest's, from the last map of its BAR */
    Entry *table;

    unsigned long bad, bad_logged;
    bool warned_size;
    /* Something may differ from reset state (a vector or a table entry):
     * a reset with this clear has nothing to do. */
    bool stirred;
};

/* What the guest may change in each word of an entry; the rest reads 0. */
static const uint32_t entry_wmask[MSIX_WORDS] = {
    [PT_MSIX_ENTRY_ADDR_LO / 4] = 0xfffffffc,     /* a dword-aligned address */
    [PT_MSIX_ENTRY_ADDR_HI / 4] = 0xffffffff,
    [PT_MSIX_ENTRY_DATA / 4] = 0xffffffff,
    [PT_MSIX_ENTRY_CTRL / 4] = PT_MSIX_ENTRY_MASKED,
};

/* ---- bounded complaints (XSA-130) ---- */

static void __attribute__((format(printf, 2, 3))) complain(PtMsi *m, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    m->bad++;
    if (m->bad_logged >= PT_MSI_LOG_BURST)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dm_log(m->name, "%s", msg);
    if (++m->bad_logged == PT_MSI_LOG_BURST)
        dm_log(m->name, "further bad MSI/MSI-X accesses are counted, not logged");
}

/* An access of the wrong size or alignment: refused, logged once per function. */
static int refuse_access(PtMsi *m, const char *what, int bar, uint64_t offset, unsigned len)
{
    m->bad++;
    if (!m->warned_size) {
        m->warned_size = true;
        m->bad_logged++;
        dm_log(m->name, "%u-byte MSI-X %s access at BAR%d+%#" PRIx64 " refused: aligned 4 or "
               "8 bytes only (logged once)", len, what, bar, offset);
    }
    return -EINVAL;
}

/* ---- decoding ---- */

typedef struct FlagBit {
    bool in_data;       /* a bit of the data, else of the address */
    uint32_t bit;
    uint32_t flag;
} FlagBit;

static const FlagBit msi_flag_bits[] = {
    { .in_data = false, .bit = PT_MSI_ADDR_DM, .flag = HV_MSI_DEST_LOGICAL },
    { .in_data = false, .bit = PT_MSI_ADDR_RH, .flag = HV_MSI_REDIR_HINT },
    { .in_data = true, .bit = PT_MSI_DATA_LEVEL, .flag = HV_MSI_TRIG_LEVEL },
};

/* Vector 0 is never an interrupt (0-15 are reserved): Xen reads it as "a
 * pirq, named in the destination" (as QEMU's xen_pt does).  The delivery
 * mode must be one Linux on Xen writes (3, or ExtINT since 6.1), neither
 * valid for MSI, so that a half-written entry (data still 0) is not one. */
static bool xen_pirq_message(uint32_t data)
{
    unsigned mode = data >> PT_MSI_DATA_MODE_SHIFT & PT_MSI_DATA_MODE_MASK;

    return (data & PT_MSI_DATA_VECTOR_MASK) == 0 && (1u << mode & PT_MSI_XEN_PIRQ_MODES);
}

int pt_msi_guest_pirq(uint64_t addr, uint32_t data)
{
    if (!xen_pirq_message(data) ||
        (uint32_t)addr >> PT_MSI_ADDR_BASE_SHIFT != PT_MSI_ADDR_BASE >> PT_MSI_ADDR_BASE_SHIFT ||
        addr >> 32 & ~(uint64_t)PT_MSI_ADDR_EXT_DEST)
        return -1;
    int pirq = (int)((addr >> 32 & PT_MSI_ADDR_EXT_DEST) |
                     (addr >> PT_MSI_ADDR_DEST_SHIFT & PT_MSI_ADDR_DEST_MASK));
    return pirq > 0 ? pirq : -1;        /* 0: misprogrammed, not a pirq */
}

bool pt_msi_decode(uint64_t addr, uint32_t data, HvMsi *out)
{
    /* High address bits only as a pirq-based message's extended pirq. */
    if (pt_msi_guest_pirq(addr, data) >= 0)
        addr &= 0xffffffffu;
    if (addr >> PT_MSI_ADDR_BASE_SHIFT != PT_MSI_ADDR_BASE >> PT_MSI_ADDR_BASE_SHIFT)
        return false;       /* also refuses any other high address bits */
    *out = (HvMsi){
        .vector = (uint8_t)(data & PT_MSI_DATA_VECTOR_MASK),
        .dest = (uint32_t)(addr >> PT_MSI_ADDR_DEST_SHIFT) & PT_MSI_ADDR_DEST_MASK,
        .delivery_mode = (uint8_t)((data >> PT_MSI_DATA_MODE_SHIFT) & PT_MSI_DATA_MODE_MASK),
    };
    for (size_t i = 0; i < sizeof(msi_flag_bits) / sizeof(msi_flag_bits[0]); i++) {
        const FlagBit *f = &msi_flag_bits[i];
        if ((f->in_data ? data : (uint32_t)addr) & f->bit)
            out->flags |= f->flag;
    }
    return true;
}

static bool msi_equal(const HvMsi *a, const HvMsi *b)
{
    return a->vector == b->vector && a->dest == b->dest &&
           a->delivery_mode == b->delivery_mode && a->flags == b->flags &&
           a->table == b->table;
}

/* ---- one vector in the hypervisor ---- */

static void vec_release(PtMsi *m, Vec *v);

/* Map a pirq on first use (the guest's own when it names one: a new name
 * maps again), then bind, or update a live binding. */
static int vec_set(PtMsi *m, Vec *v, int entry, uint64_t table_base, const HvMsi *want,
                   int guest_pirq)
{
    int rc;

    if (v->pirq >= 0 && guest_pirq >= 0 && v->pirq != guest_pirq)
        vec_release(m, v);
    if (v->pirq < 0) {
        v->pirq = guest_pirq;
        if ((rc = hv_map_pirq_msi(m->hv, m->host, entry, table_base, &v->pirq)) < 0) {
            v->pirq = -1;
            return rc;
        }
    }
    rc = v->bound ? hv_update_msi(m->hv, v->pirq, want) : hv_bind_msi(m->hv, v->pirq, want);
    if (rc < 0)
        return rc;
    v->bound = true;
    v->msi = *want;
    return 0;
}

/* What the hypervisor refuses to let go of is kept, for the next try
 * (the next disable, reset or unplug): a pirq is never forgotten. */
static void vec_release(PtMsi *m, Vec *v)
{
    if (v->bound && hv_unbind_msi(m->hv, v->pirq, &v->msi) < 0)
        return;
    v->bound = false;
    if (v->pirq >= 0 && hv_unmap_pirq(m->hv, v->pirq) < 0)
        return;
    v->pirq = -1;
}

/* ---- the function's own enable bits ---- */

/*
 * Xen 4.17 programs the host's messages but leaves the function's enable
 * bits to dom0's device model (its "split brain" model: dom0 enables MSI
 * and disables INTx).  Left clear, the device keeps signalling INTx and no
 * message arrives.  Set after the binding, cleared before it goes: the
 * device never sends a message nothing is bound to.
 */
static void host_enable(PtMsi *m, unsigned reg, uint16_t bit, bool on)
{
    HostFunc *h = pt_func_host(m->fn);
    uint8_t b[2];
    int rc = host_func_read(h, reg, b, 2);

    if (rc == 0) {
        uint16_t v = pt_le16(b);
        uint16_t want = on ? v | bit : v & (uint16_t)~bit;
        if (want == v)
            return;
        b[0] = (uint8_t)want;
        b[1] = (uint8_t)(want >> 8);
        rc = host_func_write(h, reg, b, 2);
    }
    if (rc < 0)
        complain(m, "cannot %s %s on the host (%s)", on ? "enable" : "disable",
                 reg == m->msi_cap + PCI_MSI_FLAGS ? "MSI" : "MSI-X", strerror(-rc));
}

static void msi_host_enable(PtMsi *m, bool on)
{
    if (m->msi_cap)
        host_enable(m, m->msi_cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, on);
}

static void msix_host_enable(PtMsi *m, bool on)
{
    if (m->has_msix)
        host_enable(m, m->x.cap + PT_MSIX_FLAGS, PCI_MSIX_ENABLE, on);
}

/* ---- MSI as INTx (msitranslate=1) ---- */

/* Map message 0 (the hypervisor programs the host's address/data), bind it
 * to the guest's INTx, then let the function send it.  Already on: the
 * enable bit is set again (a reset may have cleared it). */
static int translate_on(PtMsi *m)
{
    int pirq = -1, rc;

    if (!m->tr_wanted || m->tr.pirq >= 0) {
        if (m->tr.bound)
            msi_host_enable(m, true);
        return 0;
    }
    if ((rc = hv_map_pirq_msi(m->hv, m->host, 0, 0, &pirq)) < 0)
        return rc;
    if ((rc = hv_bind_msi_intx(m->hv, pirq, m->tr_devfn, m->tr_intx)) < 0) {
        hv_unmap_pirq(m->hv, pirq);
        return rc;
    }
    m->tr = (Vec){ .pirq = pirq, .bound = true };
    msi_host_enable(m, true);
    return 0;
}

/* What the hypervisor will not let go of is kept for the next try. */
static void translate_off(PtMsi *m)
{
    if (m->tr.pirq < 0)
        return;
    msi_host_enable(m, false);
    if (m->tr.bound && hv_unbind_msi_intx(m->hv, m->tr.pirq, m->tr_devfn, m->tr_intx) < 0)
        return;
    m->tr.bound = false;
    if (hv_unmap_pirq(m->hv, m->tr.pirq) < 0)
        return;
    m->tr.pirq = -1;
}

static void translate_resume(PtMsi *m)
{
    int rc = translate_on(m);

    if (rc < 0)
        complain(m, "msitranslate=1: MSI as INTx not restored (%s)", strerror(-rc));
}

int pt_msi_translate(PtMsi *m, uint8_t devfn, uint8_t intx)
{
    int rc;

    if (!m->msi_cap)
        return -ENODEV;
    m->tr_wanted = true;
    m->tr_devfn = devfn;
    m->tr_intx = intx;
    if ((rc = translate_on(m)) < 0)
        m->tr_wanted = false;
    return rc;
}

bool pt_msi_translating(const PtMsi *m)
{
    return m->tr.bound;
}

/* ---- MSI ---- */

static uint32_t shadow_le(const PtMsi *m, unsigned off, unsigned len)
{
    const uint8_t *s = pt_func_shadow(m->fn);
    uint32_t v = 0;

    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)s[off + i] << (8 * i);
    return v;
}

/* Enabled messages: 2^QSIZE, never more than the function can do. */
static unsigned msi_messages(uint16_t ctrl)
{
    unsigned want = (ctrl & PCI_MSI_FLAGS_QSIZE) >> 4, can = (ctrl & PCI_MSI_FLAGS_QMASK) >> 1;
    unsigned log2 = want < can ? want : can;

    return 1u << (log2 > 5 ? 5 : log2);
}

static void msi_release(PtMsi *m)
{
    for (unsigned i = 0; i < MSI_MAX_MESSAGES; i++)
        vec_release(m, &m->msi[i]);
    m->msi_n = 0;
}

static void msi_apply(PtMsi *m)
{
    unsigned c = m->msi_cap;

    m->stirred = true;
    if (!c)
        return;
    uint16_t ctrl = (uint16_t)shadow_le(m, c + PCI_MSI_FLAGS, 2);
    bool is64 = ctrl & PCI_MSI_FLAGS_64BIT;
    uint64_t addr = shadow_le(m, c + PCI_MSI_ADDRESS_LO, 4) |
                    (is64 ? (uint64_t)shadow_le(m, c + PCI_MSI_ADDRESS_HI, 4) << 32 : 0);
    uint32_t data = shadow_le(m, c + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2);
    unsigned n = msi_messages(ctrl);
    HvMsi base;

    if (!(ctrl & PCI_MSI_FLAGS_ENABLE)) {
        if (!m->tr.bound)
            msi_host_enable(m, false);
        msi_release(m);
        translate_resume(m);
        return;
    }
    if (!pt_msi_decode(addr, data, &base)) {
        complain(m, "MSI enabled with address %#" PRIx64 ", not an interrupt message: "
                 "binding left as it was", addr);
        return;
    }
    base.flags |= HV_MSI_UNMASKED;      /* no per-vector masking for the guest (XSA-129) */
    translate_off(m);                   /* the guest's own MSI from now on */
    if (n != m->msi_n)
        msi_release(m);
    for (unsigned i = 0; i < n; i++) {
        HvMsi want = base;
        want.vector = (uint8_t)((base.vector & ~(n - 1)) | i);
        if (m->msi[i].bound && msi_equal(&m->msi[i].msi, &want))
            continue;
        int rc = vec_set(m, &m->msi[i], (int)i, 0, &want,
                         i == 0 ? pt_msi_guest_pirq(addr, data) : -1);
        if (rc < 0) {
            complain(m, "MSI message %u: the hypervisor refused it (%s): MSI not delivered",
                     i, strerror(-rc));
            msi_host_enable(m, false);
            msi_release(m);
            return;
        }
    }
    m->msi_n = n;
    msi_host_enable(m, true);
}

/* ---- MSI-X ---- */

static MsixState msix_state(const PtMsi *m)
{
    uint16_t ctrl = (uint16_t)shadow_le(m, m->x.cap + PT_MSIX_FLAGS, 2);

    return (MsixState){ .enabled = ctrl & PCI_MSIX_ENABLE, .fmask = ctrl & PCI_MSIX_MASK,
                        .table = m->table_gaddr };
}

static uint64_t entry_addr(const Entry *e)
{
    return e->word[PT_MSIX_ENTRY_ADDR_LO / 4] |
           (uint64_t)e->word[PT_MSIX_ENTRY_ADDR_HI / 4] << 32;
}

/* A Xen guest masks a pirq-based message through its event channel and
 * never unmasks it in the table (Linux: pci_msi_ignore_mask), so its mask
 * bit is left as it was at reset: not a mask. */
static bool entry_masked(const Entry *e)
{
    return e->word[PT_MSIX_ENTRY_CTRL / 4] & PT_MSIX_ENTRY_MASKED &&
           pt_msi_guest_pirq(entry_addr(e), e->word[PT_MSIX_ENTRY_DATA / 4]) < 0;
}

/*
 * The spec's rules for one entry: bound when unmasked with the function
 * enabled and not function-masked, the guest's address/data taken at that
 * moment; a later mask or a moved table updates the binding; disable
 * releases it.
 */
static void entry_apply(PtMsi *m, unsigned i, const MsixState *s)
{
    Entry *e = &m->table[i];
    bool live = s->enabled && !s->fmask && !entry_masked(e);
    bool unmasking = live && !e->live;
    HvMsi want;

    if (!s->enabled) {
        vec_release(m, &e->v);
        e->live = e->dirty = false;
        return;
    }
    e->live = live;
    e->dirty &= live && !unmasking;
    if (unmasking && !pt_msi_decode(entry_addr(e), e->word[PT_MSIX_ENTRY_DATA / 4], &want)) {
        complain(m, "MSI-X entry %u unmasked with address %#" PRIx64 ", not an interrupt "
                 "message: not bound", i, entry_addr(e));
        return;
    }
    if (!unmasking && !e->v.bound)
        return;
    if (!unmasking)
        want = e->v.msi;
    want.flags = live ? want.flags | HV_MSI_UNMASKED : want.flags & ~HV_MSI_UNMASKED;
    want.table = s->table;
    if (e->v.bound && msi_equal(&e->v.msi, &want))
        return;
    int pirq = unmasking ? pt_msi_guest_pirq(entry_addr(e), e->word[PT_MSIX_ENTRY_DATA / 4])
                         : e->v.pirq;
    int rc = vec_set(m, &e->v, (int)i, m->host_table_base, &want, pirq);
    if (rc < 0)
        complain(m, "MSI-X entry %u: the hypervisor refused it (%s)", i, strerror(-rc));
}

static void msix_apply(PtMsi *m)
{
    if (!m->has_msix)
        return;
    m->stirred = true;
    MsixState s = msix_state(m);
    if (!s.enabled)
        msix_host_enable(m, false);
    for (unsigned i = 0; i < m->x.nvec; i++)
        entry_apply(m, i, &s);
    if (s.enabled)
        msix_host_enable(m, true);
}

/* Power-on state of an entry: masked, nothing bound. */
static const Entry entry_init = {
    .word = { [PT_MSIX_ENTRY_CTRL / 4] = PT_MSIX_ENTRY_MASKED },
    .v = { .pirq = -1 },
};

static void msix_reset(PtMsi *m)
{
    for (unsigned i = 0; m->has_msix && i < m->x.nvec; i++) {
        Vec kept = m->table[i].v;
        vec_release(m, &kept);
        m->table[i] = entry_init;
        m->table[i].v = kept;
    }
}

/* ---- the trapped pages ---- */

typedef enum Region { REGION_TABLE, REGION_PBA, REGION_OTHER } Region;

static bool within(uint64_t off, unsigned len, uint64_t start, uint64_t size)
{
    return off >= start && off - start < size && len <= size - (off - start);
}

static Region region_of(const PtMsi *m, int bar, uint64_t off, unsigned len)
{
    if (bar == m->x.table_bar &&
        within(off, len, m->x.table_off, (uint64_t)m->x.nvec * PT_MSIX_ENTRY_SIZE))
        return REGION_TABLE;
    if (bar == m->x.pba_bar && within(off, len, m->x.pba_off, pt_msix_pba_size(m->x.nvec)))
        return REGION_PBA;
    return REGION_OTHER;
}

static bool table_access_ok(uint64_t rel, unsigned len)
{
    return (len == 4 || len == 8) && rel % len == 0;
}

/* One generic path for 4- and 8-byte accesses: a dword at a time. */
static uint64_t table_read(const PtMsi *m, uint64_t rel, unsigned len)
{
    uint64_t v = 0;

    for (unsigned k = 0; k < len; k += 4) {
        const Entry *e = &m->table[(rel + k) / PT_MSIX_ENTRY_SIZE];
        v |= (uint64_t)e->word[(rel + k) % PT_MSIX_ENTRY_SIZE / 4] << (8 * k);
    }
    return v;
}

static void table_write(PtMsi *m, uint64_t rel, unsigned len, uint64_t val)
{
    unsigned i = (unsigned)(rel / PT_MSIX_ENTRY_SIZE);
    Entry *e = &m->table[i];
    bool ctrl = false;

    m->stirred = true;
    for (unsigned k = 0; k < len; k += 4) {
        unsigned w = (unsigned)((rel + k) % PT_MSIX_ENTRY_SIZE / 4);
        uint32_t v = (uint32_t)(val >> (8 * k));
        ctrl |= w == PT_MSIX_ENTRY_CTRL / 4;
        if (w != PT_MSIX_ENTRY_CTRL / 4 && e->live && v != e->word[w]) {
            e->dirty = true;
            /* Without the contract the mask Xen kept may have come first. */
            if (hv_msix_all_writes(m->hv))
                complain(m, "MSI-X entry %u written while unmasked: kept for its next unmask",
                         i);
        }
        e->word[w] = (e->word[w] & ~entry_wmask[w]) | (v & entry_wmask[w]);
    }
    /* An unmask after address/data changed binds them: Xen without
     * XENFEAT_dm_msix_all_writes forwards only that unmask, not the mask. */
    if (ctrl && e->dirty && !(e->word[PT_MSIX_ENTRY_CTRL / 4] & PT_MSIX_ENTRY_MASKED))
        e->live = false;
    MsixState s = msix_state(m);
    entry_apply(m, i, &s);
}

/* Table and PBA take aligned 4- and 8-byte accesses only; NULL if fine. */
static const char *misfit(const PtMsi *m, Region r, uint64_t off, unsigned len)
{
    if (r == REGION_TABLE && !table_access_ok(off - m->x.table_off, len))
        return "table";
    if (r == REGION_PBA && !table_access_ok(off - m->x.pba_off, len))
        return "PBA";
    return NULL;
}

/* Where the access falls, or -EINVAL for one of the wrong size or alignment. */
static int classify(PtMsi *m, int bar, uint64_t off, unsigned len, Region *r)
{
    *r = region_of(m, bar, off, len);
    const char *bad = misfit(m, *r, off, len);

    return bad ? refuse_access(m, bad, bar, off, len) : 0;
}

int pt_msi_mmio_read(PtMsi *m, int bar, uint64_t off, unsigned len, uint64_t *val)
{
    Region r;
    int rc;

    *val = 0;
    if ((rc = classify(m, bar, off, len, &r)) < 0)
        return rc;
    if (r == REGION_TABLE) {
        *val = table_read(m, off - m->x.table_off, len);
        return 0;
    }
    /* The PBA and whatever else shares the trapped pages are the host's. */
    rc = host_func_bar_read(pt_func_host(m->fn), bar, off, val, len);
    if (rc < 0)
        complain(m, "BAR%d+%#" PRIx64 ": host read failed (%s)", bar, off, strerror(-rc));
    return rc;
}

int pt_msi_mmio_write(PtMsi *m, int bar, uint64_t off, unsigned len, uint64_t val)
{
    Region r;
    int rc;

    if ((rc = classify(m, bar, off, len, &r)) < 0)
        return rc;
    if (r == REGION_TABLE) {
        table_write(m, off - m->x.table_off, len, val);
        return 0;
    }
    if (r == REGION_PBA) {
        complain(m, "guest write to the MSI-X PBA (BAR%d+%#" PRIx64 ") refused: read-only",
                 bar, off);
        return -EPERM;
    }
    rc = host_func_bar_write(pt_func_host(m->fn), bar, off, &val, len);
    if (rc < 0)
        complain(m, "BAR%d+%#" PRIx64 ": host write failed (%s)", bar, off, strerror(-rc));
    return rc;
}

static int mmio_read(void *opaque, int bar, uint64_t off, unsigned len, uint64_t *val)
{
    return pt_msi_mmio_read(opaque, bar, off, len, val);
}

static int mmio_write(void *opaque, int bar, uint64_t off, unsigned len, uint64_t val)
{
    return pt_msi_mmio_write(opaque, bar, off, len, val);
}

static const PtMmioOps msix_mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
};

/* ---- events ---- */

static void ev_msi(PtMsi *m, const PtEventInfo *ev)
{
    (void)ev;
    msi_apply(m);
}

static void ev_msix(PtMsi *m, const PtEventInfo *ev)
{
    (void)ev;
    msix_apply(m);
}

/* A moved table BAR changes the table address the bindings carry; an
 * unmap keeps the last one (the guest's next map says where it went). */
static void ev_bar_map(PtMsi *m, const PtEventInfo *ev)
{
    if (!m->has_msix || ev->bar != m->x.table_bar)
        return;
    if (ev->mapped)
        m->table_gaddr = ev->addr + m->x.table_off;
    msix_apply(m);
}

/* A vector the hypervisor would not let go of stays: the next reset retries. */
static bool vec_held(const Vec *v)
{
    return v->bound || v->pirq >= 0;
}

static bool any_held(const PtMsi *m)
{
    for (unsigned i = 0; i < MSI_MAX_MESSAGES; i++)
        if (vec_held(&m->msi[i]))
            return true;
    for (unsigned i = 0; m->has_msix && i < m->x.nvec; i++)
        if (vec_held(&m->table[i].v))
            return true;
    return false;
}

static void ev_reset(PtMsi *m, const PtEventInfo *ev)
{
    (void)ev;
    if (!m->stirred)
        return;
    msi_host_enable(m, false);
    msix_host_enable(m, false);
    msi_release(m);
    msix_reset(m);
    m->stirred = any_held(m);
    translate_resume(m);
}

static void (*const event_handlers[])(PtMsi *m, const PtEventInfo *ev) = {
    [PT_EV_MSI] = ev_msi,
    [PT_EV_MSIX] = ev_msix,
    [PT_EV_RESET] = ev_reset,
    [PT_EV_BAR_MAP] = ev_bar_map,
};

static void on_event(void *opaque, PtFunc *fn, const PtEventInfo *ev)
{
    (void)fn;
    if ((size_t)ev->kind < sizeof(event_handlers) / sizeof(event_handlers[0]) &&
        event_handlers[ev->kind])
        event_handlers[ev->kind](opaque, ev);
}

/* ---- life ---- */

PtMsi *pt_msi_new(PtFunc *fn, Hypervisor *hv)
{
    PtMsi *m = g_new0(PtMsi, 1);
    PtBar bar;

    m->fn = fn;
    m->hv = hv;
    m->host = pt_func_host_bdf(fn);
    m->name = pt_func_name(fn);
    m->msi_cap = pt_func_find_cap(fn, PCI_CAP_ID_MSI);
    m->tr.pirq = -1;
    for (unsigned i = 0; i < MSI_MAX_MESSAGES; i++)
        m->msi[i].pirq = -1;
    if (pt_func_msix_info(fn, &m->x) == 0 && pt_func_bar(fn, m->x.table_bar, &bar) == 0) {
        m->table = g_new0(Entry, m->x.nvec);
        for (unsigned i = 0; i < m->x.nvec; i++)
            m->table[i] = entry_init;
        m->has_msix = true;
        m->host_table_base = bar.base;
        pt_func_set_mmio(fn, &msix_mmio_ops, m);
    }
    pt_func_listen(fn, on_event, m);
    return m;
}

void pt_msi_free(PtMsi *m)
{
    if (!m)
        return;
    translate_off(m);
    msi_host_enable(m, false);
    msix_host_enable(m, false);
    msi_release(m);
    msix_reset(m);
    unsigned held = m->tr.pirq >= 0;
    for (unsigned i = 0; i < MSI_MAX_MESSAGES; i++)
        held += m->msi[i].pirq >= 0;
    for (unsigned i = 0; m->has_msix && i < m->x.nvec; i++)
        held += m->table[i].v.pirq >= 0;
    if (held)
        dm_log(m->name, "%u MSI pirqs the hypervisor would not release", held);
    if (m->bad > m->bad_logged)
        dm_log(m->name, "%lu bad MSI/MSI-X accesses in all, %lu of them not logged",
               m->bad, m->bad - m->bad_logged);
    pt_func_listen(m->fn, NULL, m);
    if (m->has_msix)
        pt_func_set_mmio(m->fn, NULL, NULL);
    g_free(m->table);
    g_free(m);
}

/* ---- queries ---- */

unsigned pt_msi_bound(const PtMsi *m)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MSI_MAX_MESSAGES; i++)
        n += m->msi[i].bound;
    for (unsigned i = 0; m->has_msix && i < m->x.nvec; i++)
        n += m->table[i].v.bound;
    return n;
}

uint8_t pt_msi_host_enable_bits(const PtFunc *fn, unsigned offset)
{
    unsigned msi = pt_func_find_cap(fn, PCI_CAP_ID_MSI);
    PtMsixInfo x;
    uint8_t bits = 0;

    if (msi && offset == msi + PCI_MSI_FLAGS)
        bits |= PCI_MSI_FLAGS_ENABLE;
    if (pt_func_msix_info(fn, &x) == 0 && offset == x.cap + PT_MSIX_FLAGS + 1)
        bits |= PCI_MSIX_ENABLE >> 8;
    return bits;
}

unsigned long pt_msi_bad_accesses(const PtMsi *m)
{
    return m->bad;
}
