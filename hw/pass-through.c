/*
 * Configuration-space emulation of a passed-through function (see the
 * header for the mask model).  Security semantics by default:
 *  - COMMAND decode bits are the guest's view only; host decode stays on
 *    (XSA-126).  Bus mastering and INTx disable go through.
 *  - Every write is merged per byte, so a wide write never reaches a field
 *    it does not own (XSA-128).
 *  - MSI per-vector masking is hidden (XSA-129).
 *  - Unclaimed offsets and reserved bits never reach the host unless the
 *    device is permissive, with one warning per device (XSA-131).
 */
#include "pass-through.h"

#include <assert.h>
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <pci/pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm-log.h"
#include "pt-place.h"

#define EXT_CAP_ID(hdr)   ((hdr) & 0xffff)
#define EXT_CAP_NEXT(hdr) (((hdr) >> 20) & 0xffc)

/* ---- register descriptors ---- */

/*
 * One register of a block (header or capability).  Bits of a block that no
 * descriptor names are emulated and read-only (served from the snapshot).
 */
typedef struct RegDesc {
    uint16_t offset;        /* from the start of the block */
    uint8_t size;           /* 1, 2 or 4 */
    uint32_t emulated;      /* served from the shadow; other bits are live */
    uint32_t writable;      /* the guest may change */
    uint32_t rw1c;          /* a guest 1 clears */
    uint32_t live_if_pm;    /* with power_mgmt=1 these go to the host */
    PtEvent event;          /* raised by a guest write, PT_EV_NONE: none */
    uint32_t through;       /* emulated, and written through to the host too */
} RegDesc;

#define CMD_GUEST_WR (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |       \
                      PCI_COMMAND_SPECIAL | PCI_COMMAND_INVALIDATE |                    \
                      PCI_COMMAND_VGA_PALETTE | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | \
                      PCI_COMMAND_FAST_BACK | PCI_COMMAND_DISABLE_INTx)
#define STATUS_RW1C  (PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |                 \
                      PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |       \
                      PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)

static const RegDesc header_common[] = {
    /* Decode is the guest's view (XSA-126); bus mastering and INTx disable
     * are written through to the host (Xen leaves INTx to dom0 once MSI is
     * on) but read from the shadow, so reading COMMAND costs no host access. */
    { .offset = PCI_COMMAND, .size = 2, .emulated = 0xffff, .writable = CMD_GUEST_WR,
      .through = PCI_COMMAND_MASTER | PCI_COMMAND_DISABLE_INTx },
    /* Error bits are live and cleared on the host; the list bit is ours. */
    { .offset = PCI_STATUS, .size = 2, .emulated = PCI_STATUS_CAP_LIST | 0x0007,
      .writable = STATUS_RW1C, .rw1c = STATUS_RW1C },
    { .offset = PCI_CACHE_LINE_SIZE, .size = 1, .emulated = 0xff, .writable = 0xff },
    { .offset = PCI_LATENCY_TIMER, .size = 1, .emulated = 0xff, .writable = 0xff },
};

/* A bridge's windows and bus numbers are the guest's own business. */
static const RegDesc header_type1[] = {
    { .offset = PCI_PRIMARY_BUS, .size = 4, .emulated = 0xffffffff, .writable = 0xffffffff },
    { .offset = PCI_IO_BASE, .size = 2, .emulated = 0xffff, .writable = 0xf0f0 },
    { .offset = PCI_MEMORY_BASE, .size = 4, .emulated = 0xffffffff, .writable = 0xfff0fff0 },
    { .offset = PCI_PREF_MEMORY_BASE, .size = 4, .emulated = 0xffffffff,
      .writable = 0xfff0fff0 },
    { .offset = PCI_PREF_BASE_UPPER32, .size = 4, .emulated = 0xffffffff,
      .writable = 0xffffffff },
    { .offset = PCI_PREF_LIMIT_UPPER32, .size = 4, .emulated = 0xffffffff,
      .writable = 0xffffffff },
    { .offset = PCI_IO_BASE_UPPER16, .size = 4, .emulated = 0xffffffff, .writable = 0xffffffff },
    { .offset = PCI_BRIDGE_CONTROL, .size = 2, .emulated = 0xffff, .writable = 0x0fff },
};

static const RegDesc cap_pm[] = {
    { .offset = PCI_PM_CTRL, .size = 2, .emulated = (uint32_t)~PCI_PM_CTRL_PME_STATUS & 0xffff,
      .writable = PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS,
      .rw1c = PCI_PM_CTRL_PME_STATUS, .live_if_pm = PCI_PM_CTRL_STATE_MASK },
};

/* The mask and pending registers stay emulated zeros: Xen owns them (XSA-129). */
#define MSI_FLAGS_REG { .offset = PCI_MSI_FLAGS, .size = 2, .emulated = 0xffff,              \
                        .writable = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE,              \
                        .event = PT_EV_MSI }
#define MSI_ADDR_LO_REG { .offset = PCI_MSI_ADDRESS_LO, .size = 4, .emulated = 0xffffffff,   \
                          .writable = 0xfffffffc, .event = PT_EV_MSI }

static const RegDesc cap_msi32[] = {
    MSI_FLAGS_REG,
    MSI_ADDR_LO_REG,
    { .offset = PCI_MSI_DATA_32, .size = 2, .emulated = 0xffff, .writable = 0xffff,
      .event = PT_EV_MSI },
};

static const RegDesc cap_msi64[] = {
    MSI_FLAGS_REG,
    MSI_ADDR_LO_REG,
    { .offset = PCI_MSI_ADDRESS_HI, .size = 4, .emulated = 0xffffffff, .writable = 0xffffffff,
      .event = PT_EV_MSI },
    { .offset = PCI_MSI_DATA_64, .size = 2, .emulated = 0xffff, .writable = 0xffff,
      .event = PT_EV_MSI },
};

static const RegDesc cap_msix[] = {
    { .offset = PT_MSIX_FLAGS, .size = 2, .emulated = 0xffff,
      .writable = PCI_MSIX_ENABLE | PCI_MSIX_MASK, .event = PT_EV_MSIX },
};

/* DEVCAP and LNKCAP stay read-only; status errors are live and cleared on the host. */
static const RegDesc cap_exp[] = {
    { .offset = PCI_EXP_DEVCTL, .size = 2, .emulated = 0xffff, .writable = 0x7fff },
    { .offset = PCI_EXP_DEVSTA, .size = 2, .emulated = 0x0000, .writable = 0x000f,
      .rw1c = 0x000f },
    { .offset = PCI_EXP_LNKCTL, .size = 2, .emulated = 0xffff, .writable = 0x0fff },
    { .offset = PCI_EXP_LNKSTA, .size = 2, .emulated = 0x0000 },
};

static const RegDesc ext_aer[] = {
    { .offset = PCI_ERR_UNCOR_STATUS, .size = 4, .writable = 0xffffffff, .rw1c = 0xffffffff },
    { .offset = PCI_ERR_UNCOR_MASK, .size = 4, .emulated = 0xffffffff, .writable = 0xffffffff },
    { .offset = PCI_ERR_UNCOR_SEVER, .size = 4, .emulated = 0xffffffff,
      .writable = 0xffffffff },
    { .offset = PCI_ERR_COR_STATUS, .size = 4, .writable = 0xffffffff, .rw1c = 0xffffffff },
    { .offset = PCI_ERR_COR_MASK, .size = 4, .emulated = 0xffffffff, .writable = 0xffffffff },
};

/* ---- the function ---- */

#define MAX_CAPS  48

typedef struct VisibleCap {
    uint16_t offset;
    uint8_t id;
    bool ext;
} VisibleCap;

struct PtFunc {
    HostFunc *host;
    PtBdf bdf;
    uint8_t vdevfn;
    char name[32];
    unsigned cfg_size;
    bool permissive, power_mgmt;
    uint8_t header_type;

    uint8_t shadow[PCI_EXT_CONFIG_SIZE];
    uint8_t initial[PCI_EXT_CONFIG_SIZE];   /* what a reset restores */
    uint8_t emu[PCI_EXT_CONFIG_SIZE];
    uint8_t wr[PCI_EXT_CONFIG_SIZE];
    uint8_t rw1c[PCI_EXT_CONFIG_SIZE];
    uint8_t claimed[PCI_EXT_CONFIG_SIZE / 8];   /* bit per byte: in the header or a visible cap */
    /* Write-through registers (bus mastering) are in the conventional space
     * only: these two arrays stop there (asserted where they are filled). */
    uint8_t thru[PCI_CONFIG_SIZE];     /* emulated bits also written to the host */
    /* The host's value of fully emulated bytes with write-through bits: only
     * we write them, so a read-modify-write needs no host read. */
    uint8_t hostval[PCI_CONFIG_SIZE];
    uint8_t event_at[PCI_EXT_CONFIG_SIZE];  /* PtEvent a guest write raises, PT_EV_NONE: none */

    PtBar bars[PCI_NUM_BARS];
    bool has_bar[PCI_NUM_BARS];
    VisibleCap caps[MAX_CAPS];
    int ncaps;

    PtMsixInfo msix;
    bool has_msix;
    const PtMmioOps *mmio;
    void *mmio_opaque;
    PciBus *bus;                    /* where it was plugged */
    bool trapping;                  /* plugged with its MSI-X pages trapped */
    uint8_t served;                 /* bit N: sub-page BAR N, trapped whole (see plug) */
    bool warned_forward;

    PtListeners listeners;          /* PtEventFn */
    unsigned long dropped;
    bool warned_dropped, warned_permissive;
};

/* ---- building the masks ---- */

static bool is_claimed(const PtFunc *f, unsigned o)
{
    return f->claimed[o / 8] >> (o % 8) & 1;
}

static void claim_bytes(PtFunc *f, unsigned start, unsigned len)
{
    for (unsigned o = start; o < start + len && o < PCI_EXT_CONFIG_SIZE; o++) {
        f->claimed[o / 8] |= (uint8_t)(1u << (o % 8));
        f->emu[o] = 0xff;
        f->wr[o] = 0;
        f->rw1c[o] = 0;
        if (o < PCI_CONFIG_SIZE)
            f->thru[o] = 0;
    }
}

static void apply_reg(PtFunc *f, unsigned base, const RegDesc *r)
{
    uint32_t emu = r->emulated;

    if (f->power_mgmt)
        emu &= ~r->live_if_pm;
    for (unsigned i = 0; i < r->size; i++) {
        unsigned o = base + r->offset + i;
        if (o >= PCI_EXT_CONFIG_SIZE)
            return;
        f->emu[o] = (uint8_t)(emu >> (8 * i));
        f->wr[o] = (uint8_t)(r->writable >> (8 * i));
        f->rw1c[o] = (uint8_t)(r->rw1c >> (8 * i));
        assert(o < PCI_CONFIG_SIZE || !(uint8_t)(r->through >> (8 * i)));
        if (o < PCI_CONFIG_SIZE)
            f->thru[o] = (uint8_t)(r->through >> (8 * i));
        f->event_at[o] = (uint8_t)r->event;
    }
}

static void apply_regs(PtFunc *f, unsigned base, const RegDesc *regs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        apply_reg(f, base, &regs[i]);
}

/* ---- BARs: facts for the bus, which owns the BAR registers ---- */

static uint64_t pow2_at_least(uint64_t v, uint64_t floor)
{
    uint64_t p = floor;

    while (p < v && p)
        p <<= 1;
    return p;
}

/* Type bits come from the host's BAR register, the size from the host. */
static int setup_bar(PtFunc *f, int i, unsigned nbars)
{
    uint32_t reg = pt_le32(f->initial + PCI_BASE_ADDRESS_0 + 4 * (unsigned)i);
    PtBar hb;

    host_func_bar(f->host, i, &hb);
    if (!hb.size)
        return 1;
    bool io = reg & PCI_BASE_ADDRESS_SPACE_IO;
    bool mem64 = !io && (reg & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64 &&
                 (unsigned)i + 1 < nbars;
    uint64_t size = pow2_at_least(hb.size, io ? 4 : 16);

    if (size != hb.size)
        dm_log(f->name, "BAR%d size %#llx is not a power of two; using %#llx", i,
               (unsigned long long)hb.size, (unsigned long long)size);
    f->has_bar[i] = true;
    f->bars[i] = (PtBar){ .size = size, .base = hb.base, .io = io, .mem64 = mem64,
                          .prefetch = !io && (reg & PCI_BASE_ADDRESS_MEM_PREFETCH) };
    return mem64 ? 2 : 1;
}

static void setup_bars(PtFunc *f)
{
    unsigned nbars = pt_header_bars(f->header_type);
    PtBar rom;

    for (unsigned i = 0; i < nbars;)
        i += (unsigned)setup_bar(f, (int)i, nbars);
    host_func_bar(f->host, PCI_BAR_ROM, &rom);
    if (!rom.size)
        return;
    f->has_bar[PCI_BAR_ROM] = true;
    f->bars[PCI_BAR_ROM] = (PtBar){ .size = pow2_at_least(rom.size, 2048), .base = rom.base };
}

/* ---- capabilities ---- */

typedef struct CapKind {
    uint16_t id;
    const char *name;
    unsigned (*size)(const PtFunc *f, unsigned off);
    void (*setup)(PtFunc *f, unsigned off);
} CapKind;

static unsigned size_pm(const PtFunc *f, unsigned off) { (void)f, (void)off; return 8; }
static unsigned size_msix(const PtFunc *f, unsigned off) { (void)f, (void)off; return 12; }
static unsigned size_dsn(const PtFunc *f, unsigned off) { (void)f, (void)off; return 12; }

static unsigned size_msi(const PtFunc *f, unsigned off)
{
    uint16_t flags = pt_le16(f->initial + off + PCI_MSI_FLAGS);
    unsigned size = flags & PCI_MSI_FLAGS_64BIT ? 14 : 10;

    return flags & PCI_MSI_FLAGS_MASK_BIT ? size + 10 : size;
}

static unsigned size_vndr(const PtFunc *f, unsigned off)
{
    unsigned len = f->initial[off + 2];

    return len < 3 ? 3 : len;
}

static unsigned size_exp(const PtFunc *f, unsigned off)
{
    return (pt_le16(f->initial + off + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_VERS) >= 2 ? 0x3c : 0x24;
}

static unsigned size_aer(const PtFunc *f, unsigned off)
{
    (void)f, (void)off;
    return 0x38;
}

static void setup_pm(PtFunc *f, unsigned off)
{
    apply_regs(f, off, cap_pm, sizeof(cap_pm) / sizeof(cap_pm[0]));
}

static void setup_msi(PtFunc *f, unsigned off)
{
    uint16_t flags = pt_le16(f->initial + off + PCI_MSI_FLAGS);

    if (flags & PCI_MSI_FLAGS_64BIT)
        apply_regs(f, off, cap_msi64, sizeof(cap_msi64) / sizeof(cap_msi64[0]));
    else
        apply_regs(f, off, cap_msi32, sizeof(cap_msi32) / sizeof(cap_msi32[0]));
    /* Reset state, per-vector masking hidden (XSA-129). */
    flags &= (uint16_t)~(PCI_MSI_FLAGS_MASK_BIT | PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    f->initial[off + PCI_MSI_FLAGS] = (uint8_t)flags;
    f->initial[off + PCI_MSI_FLAGS + 1] = (uint8_t)(flags >> 8);
    memset(f->initial + off + PCI_MSI_ADDRESS_LO, 0, size_msi(f, off) - PCI_MSI_ADDRESS_LO);
}

/* Does [off, off+len) lie inside memory BAR `bar`? */
static bool inside_mem_bar(const PtFunc *f, int bar, uint64_t off, uint64_t len)
{
    const PtBar *b = &f->bars[bar];

    return bar < PCI_BAR_ROM && f->has_bar[bar] && !b->io && off < b->size &&
           len <= b->size - off;
}

/* Table and PBA where the capability says, or no MSI-X for this guest. */
static void read_msix_layout(PtFunc *f, unsigned off)
{
    uint32_t table = pt_le32(f->initial + off + PCI_MSIX_TABLE);
    uint32_t pba = pt_le32(f->initial + off + PCI_MSIX_PBA);
    PtMsixInfo m = {
        .cap = off,
        .nvec = pt_msix_table_size(pt_le16(f->initial + off + PT_MSIX_FLAGS)),
        .table_bar = pt_msix_bir(table), .table_off = pt_msix_offset(table),
        .pba_bar = pt_msix_bir(pba), .pba_off = pt_msix_offset(pba),
    };

    if (!inside_mem_bar(f, m.table_bar, m.table_off, (uint64_t)m.nvec * PT_MSIX_ENTRY_SIZE) ||
        !inside_mem_bar(f, m.pba_bar, m.pba_off, pt_msix_pba_size(m.nvec))) {
        dm_log(f->name, "MSI-X table (BAR%d+%#x) or PBA (BAR%d+%#x) outside a memory BAR: "
               "MSI-X not available", m.table_bar, m.table_off, m.pba_bar, m.pba_off);
        return;
    }
    f->msix = m;
    f->has_msix = true;
}

static void setup_msix(PtFunc *f, unsigned off)
{
    apply_regs(f, off, cap_msix, sizeof(cap_msix) / sizeof(cap_msix[0]));
    f->initial[off + PT_MSIX_FLAGS + 1] &= (uint8_t)~((PCI_MSIX_ENABLE | PCI_MSIX_MASK) >> 8);
    read_msix_layout(f, off);
}

static void setup_exp(PtFunc *f, unsigned off)
{
    apply_regs(f, off, cap_exp, sizeof(cap_exp) / sizeof(cap_exp[0]));
}

static void setup_aer(PtFunc *f, unsigned off)
{
    apply_regs(f, off, ext_aer, sizeof(ext_aer) / sizeof(ext_aer[0]));
}

static void setup_readonly(PtFunc *f, unsigned off)
{
    (void)f, (void)off;
}

/*
 * What the guest sees.  Hidden (documented in README.multifunction): VPD
 * (host VPD cycles can hang devices), PCI-X, HyperTransport, AGP and the
 * rest of the legacy list; of the extended list everything that configures
 * the host's fabric or BAR layout (SR-IOV, ARI, ATS, PRI, PASID, Resizable
 * BAR, VC, ACS, LTR, L1SS, Power Budgeting, RC links, vendor-specific).
 */
static const CapKind legacy_caps[] = {
    { PCI_CAP_ID_PM, "Power Management", size_pm, setup_pm },
    { PCI_CAP_ID_MSI, "MSI", size_msi, setup_msi },
    { PCI_CAP_ID_VNDR, "Vendor Specific", size_vndr, setup_readonly },
    { PCI_CAP_ID_EXP, "PCI Express", size_exp, setup_exp },
    { PCI_CAP_ID_MSIX, "MSI-X", size_msix, setup_msix },
};

static const CapKind ext_caps[] = {
    { PCI_EXT_CAP_ID_AER, "Advanced Error Reporting", size_aer, setup_aer },
    { PCI_EXT_CAP_ID_DSN, "Device Serial Number", size_dsn, setup_readonly },
};

static const CapKind *find_kind(const CapKind *kinds, size_t n, uint16_t id)
{
    for (size_t i = 0; i < n; i++)
        if (kinds[i].id == id)
            return &kinds[i];
    return NULL;
}

static bool overlaps_claimed(const PtFunc *f, unsigned off, unsigned size)
{
    for (unsigned o = off; o < off + size; o++)
        if (is_claimed(f, o))
            return true;
    return false;
}

static void keep_cap(PtFunc *f, const CapKind *k, unsigned off, unsigned size, bool ext)
{
    claim_bytes(f, off, size);
    k->setup(f, off);
    f->caps[f->ncaps++] = (VisibleCap){ (uint16_t)off, (uint8_t)k->id, ext };
}

/* Walks the host's legacy chain; guards against loops and wild pointers. */
static void walk_legacy(PtFunc *f)
{
    uint8_t seen[256] = { 0 };
    unsigned off = f->initial[PCI_CAPABILITY_LIST] & ~3u;

    if (!(pt_le16(f->initial + PCI_STATUS) & PCI_STATUS_CAP_LIST))
        return;
    for (int hops = 0; off && hops < MAX_CAPS; hops++) {
        if (off < 0x40 || off > 0xfc) {
            dm_log(f->name, "capability pointer %#x out of range 0x40-0xfc: list cut there", off);
            return;
        }
        if (seen[off]++) {
            dm_log(f->name, "capability list loops back to %#x: list cut there", off);
            return;
        }
        uint8_t id = f->initial[off];
        unsigned next = f->initial[off + PCI_CAP_LIST_NEXT] & ~3u;
        const CapKind *k = find_kind(legacy_caps, sizeof(legacy_caps) / sizeof(legacy_caps[0]), id);
        unsigned size = k ? k->size(f, off) : 0;
        if (k && off + size <= 256 && !overlaps_claimed(f, off, size) && f->ncaps < MAX_CAPS)
            keep_cap(f, k, off, size, false);
        off = next;
    }
}

static void walk_extended(PtFunc *f)
{
    static uint8_t seen[PCI_EXT_CONFIG_SIZE / 4];
    unsigned off = 0x100;

    memset(seen, 0, sizeof(seen));
    for (int hops = 0; off && hops < MAX_CAPS; hops++) {
        if (off < 0x100 || off > PCI_EXT_CONFIG_SIZE - 4 || (off & 3)) {
            dm_log(f->name, "extended capability pointer %#x out of range: list cut there", off);
            return;
        }
        if (seen[off / 4]++) {
            dm_log(f->name, "extended capability list loops back to %#x: list cut there", off);
            return;
        }
        uint32_t hdr = pt_le32(f->initial + off);
        if (hdr == 0 || hdr == 0xffffffff)
            return;
        const CapKind *k = find_kind(ext_caps, sizeof(ext_caps) / sizeof(ext_caps[0]),
                                     (uint16_t)EXT_CAP_ID(hdr));
        unsigned size = k ? k->size(f, off) : 0;
        if (k && off + size <= PCI_EXT_CONFIG_SIZE && !overlaps_claimed(f, off, size) &&
            f->ncaps < MAX_CAPS)
            keep_cap(f, k, off, size, true);
        off = EXT_CAP_NEXT(hdr);
    }
}

/* Link the visible capabilities to each other, in host order. */
static void rechain(PtFunc *f)
{
    unsigned prev_legacy = PCI_CAPABILITY_LIST, prev_ext = 0;
    bool any_legacy = false;

    f->initial[PCI_CAPABILITY_LIST] = 0;
    if (f->cfg_size > 256) {
        claim_bytes(f, 0x100, 4);
        pt_put_le32(f->initial + 0x100, 0);
    }
    for (int i = 0; i < f->ncaps; i++) {
        VisibleCap *c = &f->caps[i];
        if (!c->ext) {
            f->initial[prev_legacy] = (uint8_t)c->offset;
            f->initial[c->offset + PCI_CAP_LIST_NEXT] = 0;
            prev_legacy = c->offset + PCI_CAP_LIST_NEXT;
            any_legacy = true;
            continue;
        }
        uint32_t hdr = pt_le32(f->initial + c->offset) & 0x000fffff;
        if (prev_ext)
            pt_put_le32(f->initial + prev_ext, (pt_le32(f->initial + prev_ext) & 0x000fffff) |
                                         (uint32_t)c->offset << 20);
        else if (c->offset != 0x100)
            pt_put_le32(f->initial + 0x100, (uint32_t)c->offset << 20);   /* a null header leads on */
        pt_put_le32(f->initial + c->offset, hdr);
        prev_ext = c->offset;
    }
    if (any_legacy)
        f->initial[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    else
        f->initial[PCI_STATUS] &= (uint8_t)~PCI_STATUS_CAP_LIST;
}

/* ---- open ---- */

static const RegDesc *header_regs(uint8_t type, size_t *n)
{
    *n = type == PCI_HEADER_TYPE_BRIDGE ? sizeof(header_type1) / sizeof(header_type1[0]) : 0;
    return header_type1;
}

/* The bus owns BAR registers; host addresses never show through ours. */
static void clear_bar_registers(PtFunc *f)
{
    memset(f->initial + PCI_BASE_ADDRESS_0, 0, 4 * pt_header_bars(f->header_type));
    pt_put_le32(f->initial + pt_header_rom_reg(f->header_type), 0);
}

static void setup_header(PtFunc *f)
{
    size_t n;
    const RegDesc *regs = header_regs(f->header_type, &n);

    claim_bytes(f, 0, 0x40);
    apply_regs(f, 0, header_common, sizeof(header_common) / sizeof(header_common[0]));
    apply_regs(f, 0, regs, n);
    /* What a freshly reset function shows: no decode. */
    f->initial[PCI_COMMAND] = 0;
    f->initial[PCI_COMMAND + 1] = 0;
}

/* Unclaimed bytes: live reads; writes dropped, or passed through when permissive. */
static void set_unclaimed(PtFunc *f, unsigned o, unsigned n)
{
    bool beyond = o >= f->cfg_size;     /* a run never straddles cfg_size (a multiple of 8) */

    memset(f->emu + o, beyond ? 0xff : 0, n);
    memset(f->wr + o, f->permissive && !beyond ? 0xff : 0, n);
    memset(f->initial + o, beyond ? 0xff : 0, n);
}

/* Eight bytes at a time: most groups are wholly claimed or wholly not. */
static void setup_unclaimed(PtFunc *f)
{
    for (unsigned o = 0; o < PCI_EXT_CONFIG_SIZE; o += 8) {
        uint8_t bits = f->claimed[o / 8];
        if (bits == 0)
            set_unclaimed(f, o, 8);
        for (unsigned i = 0; bits && bits != 0xff && i < 8; i++)
            if (!(bits >> i & 1))
                set_unclaimed(f, o + i, 1);
    }
}

/* The guest never turns host decode off (XSA-126), so turn on what the BARs need. */
static void enable_host_decode(PtFunc *f)
{
    uint16_t want = 0, cmd = (uint16_t)(f->hostval[PCI_COMMAND] | f->hostval[PCI_COMMAND + 1] << 8);

    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (f->has_bar[i])
            want |= f->bars[i].io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    if ((cmd & want) == want)
        return;
    cmd |= want;
    if (host_func_write(f->host, PCI_COMMAND, &cmd, 2) == 0) {
        f->hostval[PCI_COMMAND] = (uint8_t)cmd;
        f->hostval[PCI_COMMAND + 1] = (uint8_t)(cmd >> 8);
    }
}

PtFunc *pt_func_open(HostPci *host, PtBdf bdf, uint8_t vdevfn, const PtOptions *opts,
                     PtError *err)
{
    PtFunc *f = g_new0(PtFunc, 1);
    char bdfs[16];

    f->host = host_func_open(host, bdf, err);
    if (!f->host)
        goto fail;
    f->bdf = bdf;
    f->vdevfn = vdevfn;
    f->permissive = opts && opts->permissive == 1;
    f->power_mgmt = opts && opts->power_mgmt == 1;
    snprintf(f->name, sizeof(f->name), "%s -> %02x.%x", pt_bdf_format(bdf, bdfs, sizeof(bdfs)),
             PT_SLOT(vdevfn), PT_FUNC(vdevfn));
    f->cfg_size = host_func_config_size(f->host);
    if (host_func_read(f->host, 0, f->initial, f->cfg_size) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot read the host's config space", bdfs);
        goto fail;
    }
    memcpy(f->hostval, f->initial, sizeof(f->hostval));
    f->header_type = pt_header_layout(f->initial[PCI_HEADER_TYPE]);
    if (f->header_type != PCI_HEADER_TYPE_NORMAL && f->header_type != PCI_HEADER_TYPE_BRIDGE) {
        snprintf(err->msg, sizeof(err->msg), "%s: header type 0x%02x cannot be passed through",
                 bdfs, f->header_type);
        goto fail;
    }
    setup_header(f);
    setup_bars(f);
    clear_bar_registers(f);
    walk_legacy(f);
    if (f->cfg_size > 256)
        walk_extended(f);
    rechain(f);
    setup_unclaimed(f);
    enable_host_decode(f);
    memcpy(f->shadow, f->initial, sizeof(f->shadow));
    return f;
fail:
    if (f->host)
        host_func_close(f->host);
    g_free(f);
    return NULL;
}

void pt_func_close(PtFunc *f)
{
    if (!f)
        return;
    host_func_close(f->host);
    g_free(f);
}

void pt_func_listen(PtFunc *f, PtEventFn cb, void *opaque)
{
    pt_listeners_set(&f->listeners, (PtAnyFn)cb, opaque);
}

static void emit_info(PtFunc *f, const PtEventInfo *ev)
{
    for (int i = 0; i < PT_LISTENERS; i++)
        if (f->listeners.at[i].fn)
            ((PtEventFn)f->listeners.at[i].fn)(f->listeners.at[i].opaque, f, ev);
}

static void emit(PtFunc *f, PtEvent kind)
{
    emit_info(f, &(PtEventInfo){ .kind = kind });
}

/* ---- guest accesses: one generic merge for every size ---- */

static bool access_ok(unsigned offset, unsigned len)
{
    return (len == 1 || len == 2 || len == 4) && offset <= PCI_EXT_CONFIG_SIZE - len;
}

/* Bytes [offset, offset+len) of a per-byte array as one little-endian word
 * (len 1, 2 or 4). */
static inline uint32_t load_bytes(const uint8_t *a, unsigned offset, unsigned len)
{
    const uint8_t *p = a + offset;

    return len == 4 ? pt_le32(p) : len == 2 ? pt_le16(p) : p[0];
}

/* The write-through bits of [offset, offset+len); none past the conventional space. */
static uint32_t load_thru(const PtFunc *f, unsigned offset, unsigned len)
{
    uint32_t v = 0;

    if (offset + len <= PCI_CONFIG_SIZE)
        return load_bytes(f->thru, offset, len);
    for (unsigned i = 0; offset + i < PCI_CONFIG_SIZE && i < len; i++)
        v |= (uint32_t)f->thru[offset + i] << (8 * i);
    return v;
}

static uint32_t len_ones(unsigned len)
{
    return len >= 4 ? UINT32_MAX : (1u << (8 * len)) - 1;
}

/* The masks are merged a word at a time: the same per-byte rule for every bit. */
uint32_t pt_func_cfg_read(PtFunc *f, unsigned offset, unsigned len)
{
    uint8_t live[4] = { 0 };

    if (!access_ok(offset, len))
        return 0xffffffff;
    uint32_t emu = load_bytes(f->emu, offset, len);
    uint32_t shadow = load_bytes(f->shadow, offset, len);
    if (emu == len_ones(len))
        return shadow;
    if (host_func_read(f->host, offset, live, len) < 0)
        memset(live, 0xff, sizeof(live));
    return (shadow & emu) | (load_bytes(live, 0, len) & ~emu & len_ones(len));
}

static void note_dropped(PtFunc *f, unsigned offset, uint32_t val, unsigned len)
{
    f->dropped++;
    if (f->warned_dropped)
        return;
    f->warned_dropped = true;
    dm_log(f->name, "guest write of %#x (%u bytes) to %#x dropped: no emulated register there "
           "(try permissive=1 if the device needs it)", val, len, offset);
}

/*
 * The live bits of a write go to the host by read-modify-write of the
 * bytes concerned; live RW1C bits the guest did not set are written as 0
 * so that the merge never clears them by accident.
 */
static void write_host(PtFunc *f, unsigned offset, unsigned len, const uint8_t *val,
                       const uint8_t *mask)
{
    unsigned first = len, last = 0;
    bool known;
    uint8_t cur[4];

    for (unsigned i = 0; i < len; i++)
        if (mask[i]) {
            first = first < i ? first : i;
            last = i;
        }
    if (first == len)
        return;
    known = offset + last < PCI_CONFIG_SIZE;  /* only write-through bytes can be known */
    for (unsigned i = first; i <= last; i++)
        known &= f->emu[offset + i] == 0xff;
    if (known)
        memcpy(cur, f->hostval + offset + first, last - first + 1);
    else if (host_func_read(f->host, offset + first, cur, last - first + 1) < 0)
        return;
    for (unsigned i = first; i <= last; i++) {
        uint8_t keep = (uint8_t)~mask[i] & (uint8_t)~f->rw1c[offset + i];
        cur[i - first] = (uint8_t)((cur[i - first] & keep) | (val[i] & mask[i]));
    }
    /* Bytes only we write, already holding this value: the host has it. */
    if (known && !memcmp(cur, f->hostval + offset + first, last - first + 1))
        return;
    if (host_func_write(f->host, offset + first, cur, last - first + 1) < 0)
        return;
    for (unsigned i = first; i <= last && offset + i < PCI_CONFIG_SIZE; i++)
        f->hostval[offset + i] = cur[i - first];
}

/* Every bit the guest wrote through to the host (bus mastering, INTx
 * disable) back to its value at open, a dword at a time: a function the
 * guest let go must not go on DMAing into memory that is no longer its. */
void pt_func_quiesce(PtFunc *f)
{
    for (unsigned o = 0; o < PCI_CONFIG_SIZE; o += 4)
        if (pt_le32(f->thru + o))
            write_host(f, o, 4, f->initial + o, f->thru + o);
}

/* Each event the written registers name, once per write. */
static void raise_events(PtFunc *f, unsigned offset, unsigned len)
{
    uint8_t raised[4];
    unsigned n = 0;

    for (unsigned i = 0; i < len; i++) {
        uint8_t ev = f->event_at[offset + i];
        if (ev != PT_EV_NONE && !memchr(raised, ev, n)) {
            raised[n++] = ev;
            emit(f, (PtEvent)ev);
        }
    }
}

static void store_bytes(uint8_t *a, unsigned offset, uint32_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        a[offset + i] = (uint8_t)(v >> (8 * i));
}

/* Does the access reach bytes of the config space outside every claimed block? */
static bool hits_unclaimed(const PtFunc *f, unsigned offset, unsigned len)
{
    unsigned room = offset < f->cfg_size ? f->cfg_size - offset : 0;
    unsigned in = room < len ? room : len;

    for (unsigned i = 0; i < in; i++)
        if (!is_claimed(f, offset + i))
            return true;
    return false;
}

static void check_claimed(PtFunc *f, unsigned offset, uint32_t val, unsigned len)
{
    if (!hits_unclaimed(f, offset, len))
        return;
    if (!f->permissive)
        note_dropped(f, offset, val, len);
    else if (!f->warned_permissive) {
        f->warned_permissive = true;
        dm_log(f->name, "permissive: guest write to unclaimed offset %#x passed to the host",
               offset);
    }
}

void pt_func_cfg_write(PtFunc *f, unsigned offset, uint32_t val, unsigned len)
{
    if (!access_ok(offset, len))
        return;
    val &= len_ones(len);
    uint32_t e = load_bytes(f->emu, offset, len), w = load_bytes(f->wr, offset, len);
    uint32_t c = load_bytes(f->rw1c, offset, len);
    uint32_t shadow = load_bytes(f->shadow, offset, len);
    uint32_t mine = e & w & ~c;

    shadow = ((shadow & ~mine) | (val & mine)) & ~(val & e & c);
    store_bytes(f->shadow, offset, shadow, len);
    /* A 0 written to a live RW1C bit changes nothing: leave it out. */
    uint32_t to_host = ((w & ~e & (~c | val)) | (w & load_thru(f, offset, len))) &
                       len_ones(len);
    check_claimed(f, offset, val, len);
    if (to_host) {
        uint8_t bytes[4] = { 0 }, host_mask[4] = { 0 };
        store_bytes(bytes, 0, val, len);
        store_bytes(host_mask, 0, to_host, len);
        write_host(f, offset, len, bytes, host_mask);
    }
    if (load_bytes(f->event_at, offset, len))
        raise_events(f, offset, len);
}

void pt_func_reset(PtFunc *f)
{
    memcpy(f->shadow, f->initial, sizeof(f->shadow));
    emit(f, PT_EV_RESET);
}

/* ---- queries ---- */

int pt_func_bar(const PtFunc *f, int index, PtBar *bar)
{
    if (index < 0 || index >= PCI_NUM_BARS || !f->has_bar[index])
        return -ENOENT;
    *bar = f->bars[index];
    return 0;
}

uint16_t pt_func_guest_command(const PtFunc *f)
{
    return pt_le16(f->shadow + PCI_COMMAND);
}

unsigned pt_func_find_cap(const PtFunc *f, uint8_t id)
{
    for (int i = 0; i < f->ncaps; i++)
        if (!f->caps[i].ext && f->caps[i].id == id)
            return f->caps[i].offset;
    return 0;
}

const char *pt_func_name(const PtFunc *f) { return f->name; }
PtBdf pt_func_host_bdf(const PtFunc *f) { return f->bdf; }
uint8_t pt_func_vdevfn(const PtFunc *f) { return f->vdevfn; }
HostFunc *pt_func_host(PtFunc *f) { return f->host; }
unsigned pt_func_config_size(const PtFunc *f) { return f->cfg_size; }
unsigned long pt_func_dropped_writes(const PtFunc *f) { return f->dropped; }
const uint8_t *pt_func_shadow(const PtFunc *f) { return f->shadow; }

int pt_func_load_shadow(PtFunc *f, const uint8_t *shadow, size_t len)
{
    if (len != PCI_EXT_CONFIG_SIZE)
        return -EINVAL;
    for (size_t o = 0; o < PCI_EXT_CONFIG_SIZE; o++)
        f->shadow[o] = (uint8_t)((f->shadow[o] & ~f->emu[o]) | (shadow[o] & f->emu[o]));
    /* Interrupt state came back with it: let its listener bind it again. */
    emit(f, PT_EV_MSI);
    emit(f, PT_EV_MSIX);
    return 0;
}

uint8_t pt_func_host_writable(const PtFunc *f, unsigned offset)
{
    if (offset >= PCI_EXT_CONFIG_SIZE)
        return 0;
    return (uint8_t)(f->wr[offset] & (~f->emu[offset] | load_thru(f, offset, 1)));
}

/* ---- trapped BAR pages (MSI-X table and PBA) ---- */

typedef struct BarRange {
    uint64_t start, end;
} BarRange;

static uint64_t page_down(uint64_t v) { return v & ~(uint64_t)(PT_PAGE_SIZE - 1); }
static uint64_t page_up(uint64_t v)   { return page_down(v + PT_PAGE_SIZE - 1); }

/* The trapped pages of a BAR, sorted and merged; how many (0-2). */
static int trapped_ranges(const PtFunc *f, int bar, BarRange out[2])
{
    const PtMsixInfo *m = &f->msix;
    BarRange r[2];
    int n = 0;

    if (f->served & (1u << bar)) {
        out[0] = (BarRange){ 0, f->bars[bar].size };
        return 1;
    }
    if (!f->trapping)
        return 0;
    if (m->table_bar == bar)
        r[n++] = (BarRange){ page_down(m->table_off),
                             page_up(m->table_off + (uint64_t)m->nvec * PT_MSIX_ENTRY_SIZE) };
    if (m->pba_bar == bar)
        r[n++] = (BarRange){ page_down(m->pba_off), page_up(m->pba_off + pt_msix_pba_size(m->nvec)) };
    if (n == 2 && r[1].start < r[0].start) {
        BarRange t = r[0];
        r[0] = r[1];
        r[1] = t;
    }
    if (n == 2 && r[1].start <= r[0].end) {
        r[0].end = r[1].end > r[0].end ? r[1].end : r[0].end;
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        out[i] = r[i];
        if (out[i].end > f->bars[bar].size)
            out[i].end = f->bars[bar].size;
    }
    return n;
}

bool pt_func_bar_trapped(const PtFunc *f, int bar, uint64_t offset, unsigned len)
{
    BarRange r[2];
    int n = bar >= 0 && bar < PCI_BAR_ROM ? trapped_ranges(f, bar, r) : 0;

    for (int i = 0; i < n; i++)
        if (offset >= r[i].start && offset + len <= r[i].end)
            return true;
    return false;
}

/* The parts of a BAR that are mapped directly: what the trapped pages leave. */
static int direct_ranges(const PtFunc *f, int bar, BarRange out[3])
{
    BarRange t[2];
    int nt = bar < PCI_BAR_ROM ? trapped_ranges(f, bar, t) : 0, n = 0;
    uint64_t at = 0;

    for (int i = 0; i < nt; i++) {
        if (t[i].start > at)
            out[n++] = (BarRange){ at, t[i].start };
        at = t[i].end;
    }
    if (at < f->bars[bar].size)
        out[n++] = (BarRange){ at, f->bars[bar].size };
    return n;
}

int pt_func_msix_info(const PtFunc *f, PtMsixInfo *out)
{
    if (!f->has_msix)
        return -ENOENT;
    *out = f->msix;
    return 0;
}

void pt_func_set_mmio(PtFunc *f, const PtMmioOps *ops, void *opaque)
{
    f->mmio = ops;
    f->mmio_opaque = opaque;
}

/* ---- on the guest bus ---- */

static uint32_t dev_cfg_read(PciDevice *dev, unsigned offset, unsigned len)
{
    return pt_func_cfg_read(pci_device_opaque(dev), offset, len);
}

static void dev_cfg_write(PciDevice *dev, unsigned offset, uint32_t val, unsigned len)
{
    pt_func_cfg_write(pci_device_opaque(dev), offset, val, len);
}

static void dev_reset(PciDevice *dev)
{
    pt_func_reset(pci_device_opaque(dev));
}

/* A BAR with trapped pages maps around them, piece by piece.  All or
 * nothing: a piece that fails to map (or unmap) puts the pieces already
 * done back, so the bus's idea of the BAR stays true. */
static int dev_bar_map(PciDevice *dev, int bar, uint64_t gaddr, bool map)
{
    PtFunc *f = pci_device_opaque(dev);
    Hypervisor *hv = pci_bus_hypervisor(pci_device_bus(dev));
    const PtBar *b = &f->bars[bar];
    BarRange r[3];
    int n = direct_ranges(f, bar, r);

    for (int i = 0; i < n; i++) {
        int rc = pci_map_direct(hv, b->io, gaddr + r[i].start, b->base + r[i].start,
                                r[i].end - r[i].start, map);
        if (rc) {
            while (i-- > 0)
                pci_map_direct(hv, b->io, gaddr + r[i].start, b->base + r[i].start,
                               r[i].end - r[i].start, !map);
            return rc;
        }
    }
    emit_info(f, &(PtEventInfo){ .kind = PT_EV_BAR_MAP, .bar = bar, .addr = gaddr,
                                 .mapped = map });
    return 0;
}

/* MSI-X's trapped pages are its handler's (which forwards the rest of
 * those pages itself); the other trapped BARs are sub-page ones. */
static bool msix_serves(const PtFunc *f, int bar)
{
    return f->trapping && (f->msix.table_bar == bar || f->msix.pba_bar == bar);
}

/* A sub-page BAR: the guest's access goes to the host's BAR as it is. */
static int forward_to_host(PtFunc *f, int bar, uint64_t offset, unsigned len, uint64_t *val,
                           bool write)
{
    int rc = write ? host_func_bar_write(f->host, bar, offset, val, len)
                   : host_func_bar_read(f->host, bar, offset, val, len);

    if (rc < 0 && !f->warned_forward) {
        f->warned_forward = true;
        dm_log(f->name, "BAR%d+%#" PRIx64 " (%u bytes): host %s failed (%s); later failures "
               "are not logged", bar, offset, len, write ? "write" : "read", strerror(-rc));
    }
    return rc;
}

static int dev_mmio_read(PciDevice *dev, int bar, uint64_t offset, unsigned len, uint64_t *val)
{
    PtFunc *f = pci_device_opaque(dev);

    if (!pt_func_bar_trapped(f, bar, offset, len))
        return -ENOENT;
    if (!msix_serves(f, bar)) {
        *val = 0;
        return forward_to_host(f, bar, offset, len, val, false);
    }
    return f->mmio ? f->mmio->read(f->mmio_opaque, bar, offset, len, val) : -ENODEV;
}

static int dev_mmio_write(PciDevice *dev, int bar, uint64_t offset, unsigned len, uint64_t val)
{
    PtFunc *f = pci_device_opaque(dev);

    if (!pt_func_bar_trapped(f, bar, offset, len))
        return -ENOENT;
    if (!msix_serves(f, bar))
        return forward_to_host(f, bar, offset, len, &val, true);
    return f->mmio ? f->mmio->write(f->mmio_opaque, bar, offset, len, val) : -ENODEV;
}

static const PciDeviceOps pt_device_ops = {
    .cfg_read = dev_cfg_read,
    .cfg_write = dev_cfg_write,
    .reset = dev_reset,
};

/* With trapped MSI-X pages: the bus leaves BAR mapping to us. */
static const PciDeviceOps pt_trapping_device_ops = {
    .cfg_read = dev_cfg_read,
    .cfg_write = dev_cfg_write,
    .reset = dev_reset,
    .bar_map = dev_bar_map,
    .mmio_read = dev_mmio_read,
    .mmio_write = dev_mmio_write,
};

/*
 * Memory BARs smaller than a page are never mapped: a mapping is whole
 * pages, so it would give the guest the rest of the host's page (other
 * functions' registers, often) and work only where the guest happens to
 * put the BAR at the host's offset within the page.  Every guest access
 * to them is trapped and forwarded to the host's BAR instead.
 */
static uint8_t subpage_bars(const PtFunc *f)
{
    uint8_t mask = 0;

    for (int i = 0; i < PCI_BAR_ROM; i++)
        if (f->has_bar[i] && !f->bars[i].io && f->bars[i].size < PT_PAGE_SIZE)
            mask |= (uint8_t)(1u << i);
    return mask;
}

static void log_served(const PtFunc *f)
{
    for (int i = 0; i < PCI_BAR_ROM; i++)
        if (f->served & (1u << i))
            dm_log(f->name, "BAR%d (%#" PRIx64 " bytes at host %#" PRIx64 ") is smaller than "
                   "a page: served by qemu-dm, each guest access forwarded to the host "
                   "(not mapped)", i, f->bars[i].size, f->bars[i].base);
}

int pt_func_plug(PtFunc *f, PciBus *bus, PciDevice **out)
{
    char name[24], bdf[16];
    bool msix_traps = f->has_msix && f->mmio;
    uint8_t served = subpage_bars(f);
    PciPlug plug = { .ops = msix_traps || served ? &pt_trapping_device_ops : &pt_device_ops,
                     .opaque = f, .name = name, .config_size = f->cfg_size };

    snprintf(name, sizeof(name), "host %s", pt_bdf_format(f->bdf, bdf, sizeof(bdf)));

    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (f->has_bar[i])
            plug.bar[i] = pci_bar_info(&f->bars[i]);
    /* Fixed while plugged: unmaps match the maps. */
    f->trapping = msix_traps;
    f->served = served;
    int rc = pci_bus_plug(bus, f->vdevfn, &plug, out);
    if (rc < 0) {
        f->trapping = false;
        f->served = 0;
        return rc;
    }
    f->bus = bus;
    log_served(f);
    return 0;
}

PciDevice *pt_func_device(PtFunc *f)
{
    PciDevice *d = f->bus ? pci_bus_device(f->bus, f->vdevfn) : NULL;

    return d && pci_device_opaque(d) == f ? d : NULL;
}
