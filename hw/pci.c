/*
 * Guest PCI bus 0.  See pci.h for the split of config registers between the
 * bus and the device.  State that can be derived is derived: the
 * multi-function bit from slot population, BAR mappings from COMMAND and
 * the BAR registers after every write that touches them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "pci.h"

#include "dm-log.h"

#define PCI_LOG_MAX     256     /* bound on kept and printed bus log lines */
#define PCI_BUS_HEADER  0x40    /* the bus only owns registers in the header */
#define PCI_MEM64_LIMIT (1ull << 52)    /* x86 physical address width */

typedef struct PciBarState {
    PciBarInfo info;
    uint64_t addr;          /* address bits as the guest programmed them */
    bool rom_enable;
    bool mapped;
    uint64_t map_addr;      /* guest address of the live mapping */
    uint64_t map_start;     /* extent the live mapping occupies */
    uint64_t map_len;
    bool offset_logged;     /* the page-offset refusal is said once per BAR */
    struct PciDevice *dev;  /* owner and index, for the bus's map of live mappings */
    int index;
} PciBarState;

struct PciDevice {
    PciBus *bus;
    uint8_t devfn;
    const PciDeviceOps *ops;
    void *opaque;
    char *name;
    unsigned config_size;
    PciBarState bar[PCI_NUM_BARS];
    uint8_t irq_line;
    const struct BusRegMap *regs;   /* by header layout: normal or bridge */
};

struct PciBus {
    Hypervisor *hv;
    PciDevice *dev[PCI_BUS_DEVFNS];
    uint32_t config_address;
    uint32_t reserved;
    uint32_t force_single;
    GPtrArray *log;
    unsigned long log_dropped;
    /* Live mappings (PciBarState) by map_start, I/O and memory apart: they
     * never overlap, so the overlap check and the MMIO lookup are a search. */
    GTree *live[2];
    PtListeners bar_listeners;      /* PciBarFn */
};

/* ------------------------------------------------------------ helpers */

static uint32_t ones(unsigned len)
{
    return len >= 4 ? UINT32_MAX : (1u << (8 * len)) - 1;
}

static bool access_ok(unsigned offset, unsigned len)
{
    return (len == 1 || len == 2 || len == 4) && (offset & 3) + len <= 4;
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static void G_GNUC_PRINTF(2, 3)
bus_log(PciDevice *d, const char *fmt, ...)
{
    PciBus *bus = d->bus;
    if (bus->log->len >= PCI_LOG_MAX) {
        bus->log_dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *line = g_strdup_printf("%02x.%x %s: %s", PT_SLOT(d->devfn), PT_FUNC(d->devfn),
                                 d->name, msg);
    g_free(msg);
    dm_log("pci", "%s", line);
    g_ptr_array_add(bus->log, line);
}

/* ------------------------------------------------------------ BAR kinds */

typedef struct BarDesc {
    const char *name;
    bool io;
    uint32_t flag_bits;     /* low register bits that are not address */
    uint32_t type_bits;     /* read-only flags the register shows */
    uint64_t min_size;
    uint64_t limit;         /* a mapping must end at or below this */
} BarDesc;

static const BarDesc bar_descs[] = {
    [PCI_BAR_IO]    = { "io", true, 0x3, PCI_BASE_ADDRESS_SPACE_IO, 4, 0x10000 },
    [PCI_BAR_MEM32] = { "mem32", false, 0xf, PCI_BASE_ADDRESS_MEM_TYPE_32, 16, 1ull << 32 },
    [PCI_BAR_MEM64] = { "mem64", false, 0xf, PCI_BASE_ADDRESS_MEM_TYPE_64, 16, PCI_MEM64_LIMIT },
};

/* Bits 10:1 of the ROM register are reserved; bit 0 is the enable. */
static const BarDesc rom_desc = { "rom", false, 0x7ff, 0, 2048, 1ull << 32 };

static const BarDesc *bar_desc(int bar, PciBarKind kind)
{
    return bar == PCI_BAR_ROM ? &rom_desc : &bar_descs[kind];
}

/* The upper dword of a 64-bit BAR? */
static bool bar_is_upper(const PciDevice *d, int bar)
{
    return bar > 0 && bar < PCI_BAR_ROM && d->bar[bar - 1].info.kind == PCI_BAR_MEM64;
}

static uint32_t bar_reg_value(const PciDevice *d, int bar)
{
    if (bar_is_upper(d, bar))
        return (uint32_t)(d->bar[bar - 1].addr >> 32);
    const PciBarState *b = &d->bar[bar];
    if (b->info.kind == PCI_BAR_NONE)
        return 0;
    uint32_t flags = bar_desc(bar, b->info.kind)->type_bits;
    if (b->info.prefetch && bar != PCI_BAR_ROM)
        flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    if (b->rom_enable)
        flags |= PCI_ROM_ADDRESS_ENABLE;
    return (uint32_t)b->addr | flags;
}

/* Sizing falls out of the mask: writing all ones reads back ~(size-1). */
static void bar_reg_store(PciDevice *d, int bar, uint32_t val)
{
    bool upper = bar_is_upper(d, bar);
    PciBarState *b = &d->bar[upper ? bar - 1 : bar];
    if (b->info.kind == PCI_BAR_NONE)
        return;
    const BarDesc *desc = bar_desc(upper ? bar - 1 : bar, b->info.kind);
    uint64_t amask = ~(b->info.size - 1) & ~(uint64_t)desc->flag_bits;
    if (b->info.kind != PCI_BAR_MEM64)
        amask &= UINT32_MAX;
    uint64_t v = upper ? (uint64_t)val << 32 : val;
    uint64_t half = upper ? ~(uint64_t)UINT32_MAX : UINT32_MAX;
    b->addr = (b->addr & ~half) | (v & half & amask);
    if (bar == PCI_BAR_ROM)
        b->rom_enable = val & PCI_ROM_ADDRESS_ENABLE;
}

/* ------------------------------------------------------------ mapping */

/* Where a mapping of this BAR at addr would live, and whether it can. */
static int bar_extent(const PciDevice *d, int bar, uint64_t addr,
                      uint64_t *start, uint64_t *len)
{
    const PciBarState *b = &d->bar[bar];
    *start = addr;
    *len = b->info.size;
    if (d->ops->bar_map || bar_desc(bar, b->info.kind)->io)
        return 0;
    if ((addr ^ b->info.host_addr) & (PT_PAGE_SIZE - 1))
        return -EINVAL;
    *start = addr & ~(uint64_t)(PT_PAGE_SIZE - 1);
    *len = ((addr + b->info.size - 1) | (PT_PAGE_SIZE - 1)) + 1 - *start;
    return 0;
}

int pci_map_direct(Hypervisor *hv, bool io, uint64_t gaddr, uint64_t haddr,
                   uint64_t size, bool map)
{
    if (!hv)
        return -ENODEV;
    if (io)
        return map ? hv_map_ioport(hv, (uint32_t)gaddr, (uint32_t)haddr, (uint32_t)size)
                   : hv_unmap_ioport(hv, (uint32_t)gaddr, (uint32_t)haddr, (uint32_t)size);
    if (size == 0 || (gaddr ^ haddr) & (PT_PAGE_SIZE - 1))
        return -EINVAL;
    uint64_t gfn = gaddr >> PT_PAGE_SHIFT;
    uint64_t mfn = haddr >> PT_PAGE_SHIFT;
    uint64_t n = ((gaddr + size - 1) >> PT_PAGE_SHIFT) - gfn + 1;
    return map ? hv_map_mmio(hv, gfn, mfn, n) : hv_unmap_mmio(hv, gfn, mfn, n);
}

static int bar_do_map(PciDevice *d, int bar, uint64_t addr, bool map)
{
    const PciBarState *b = &d->bar[bar];
    if (d->ops->bar_map)
        return d->ops->bar_map(d, bar, addr, map);
    return pci_map_direct(d->bus->hv, bar_desc(bar, b->info.kind)->io, addr,
                          b->info.host_addr, b->info.size, map);
}

static const char *bar_label(int bar, char buf[8])
{
    if (bar == PCI_BAR_ROM)
        return "ROM";
    snprintf(buf, 8, "BAR%d", bar & 7);   /* 0-5 here */
    return buf;
}

static gint by_map_start(gconstpointer a, gconstpointer b)
{
    uint64_t x = ((const PciBarState *)a)->map_start, y = ((const PciBarState *)b)->map_start;

    return (x > y) - (x < y);
}

/* The live mapping with the greatest start at or below addr, if any. */
static const PciBarState *live_at_or_below(GTree *live, uint64_t addr)
{
    PciBarState probe = { .map_start = addr };
    GTreeNode *n = g_tree_upper_bound(live, &probe);

    n = n ? g_tree_node_previous(n) : g_tree_node_last(live);
    return n ? g_tree_node_key(n) : NULL;
}

/* Another live mapping in the same space that [start, start+len) hits.  The
 * live ones are disjoint: only the neighbours around start can. */
static bool find_overlap(PciBus *bus, bool io, uint64_t start, uint64_t len,
                         const PciDevice **who, int *which)
{
    GTree *live = bus->live[io];
    PciBarState probe = { .map_start = start };
    const PciBarState *below = live_at_or_below(live, start);
    GTreeNode *n = g_tree_lower_bound(live, &probe);
    const PciBarState *above = n ? g_tree_node_key(n) : NULL;
    const PciBarState *hit = below && below->map_start + below->map_len > start ? below
                             : above && above->map_start < start + len ? above : NULL;

    if (!hit)
        return false;
    *who = hit->dev;
    *which = hit->index;
    return true;
}

static bool bar_is_io(const PciBarState *b)
{
    return bar_desc(b->index, b->info.kind)->io;
}

void pci_bus_listen_bars(PciBus *bus, PciBarFn fn, void *opaque)
{
    pt_listeners_set(&bus->bar_listeners, (PtAnyFn)fn, opaque);
}

/* After the bus's own state changed: listeners see the BAR as it now is. */
static void bar_changed(PciDevice *d, int bar, uint64_t addr, bool map)
{
    const PtListeners *ls = &d->bus->bar_listeners;

    for (int i = 0; i < PT_LISTENERS; i++)
        if (ls->at[i].fn)
            ((PciBarFn)ls->at[i].fn)(ls->at[i].opaque, d, bar, addr, map);
}

static int bar_unmap(PciDevice *d, int bar)
{
    PciBarState *b = &d->bar[bar];
    char l[8];
    int rc = bar_do_map(d, bar, b->map_addr, false);
    if (rc) {
        bus_log(d, "%s unmap at 0x%" PRIx64 " failed: %s", bar_label(bar, l),
                b->map_addr, g_strerror(-rc));
        return rc;      /* still live: a later reconcile or unplug retries */
    }
    g_tree_remove(d->bus->live[bar_is_io(b)], b);
    b->mapped = false;
    bar_changed(d, bar, b->map_addr, false);
    return 0;
}

static void bar_map(PciDevice *d, int bar)
{
    PciBarState *b = &d->bar[bar];
    const BarDesc *desc = bar_desc(bar, b->info.kind);
    uint64_t start, len;
    const PciDevice *o;
    int ob;
    char l[8], ol[8];

    if (bar_extent(d, bar, b->addr, &start, &len)) {
        /* A sub-page BAR the host did not page-align cannot be mapped at a
         * guest address with another page offset (Xen's advice: boot the
         * host with pci=resource_alignment=...). */
        if (!b->offset_logged)
            bus_log(d, "%s at 0x%" PRIx64 " shares no page offset with host 0x%" PRIx64
                    ", not mapped (said once)", bar_label(bar, l), b->addr, b->info.host_addr);
        b->offset_logged = true;
        return;
    }
    if (find_overlap(d->bus, desc->io, start, len, &o, &ob)) {
        bus_log(d, "%s %s 0x%" PRIx64 "+0x%" PRIx64 " overlaps %02x.%x %s, not mapped",
                bar_label(bar, l), desc->name, b->addr, b->info.size,
                PT_SLOT(o->devfn), PT_FUNC(o->devfn), bar_label(ob, ol));
        return;
    }
    int rc = bar_do_map(d, bar, b->addr, true);
    if (rc) {
        bus_log(d, "%s map at 0x%" PRIx64 " failed: %s", bar_label(bar, l), b->addr,
                g_strerror(-rc));
        return;
    }
    b->mapped = true;
    b->map_addr = b->addr;
    b->map_start = start;
    b->map_len = len;
    g_tree_insert(d->bus->live[desc->io], b, b);
    bar_changed(d, bar, b->addr, true);
}

static uint32_t dev_read(PciDevice *d, unsigned offset, unsigned len)
{
    return d->ops->cfg_read(d, offset, len) & ones(len);
}

/* Should this BAR decode now?  Invalid addresses never do: 0, a range that
 * reaches the limit (what sizing leaves behind: all ones), as QEMU rules. */
static bool bar_decodes(const PciDevice *d, int bar, uint16_t cmd)
{
    const PciBarState *b = &d->bar[bar];
    const BarDesc *desc = bar_desc(bar, b->info.kind);
    uint16_t need = desc->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    if (!(cmd & need) || (bar == PCI_BAR_ROM && !b->rom_enable))
        return false;
    return b->addr != 0 && b->addr + b->info.size > b->addr
        && b->addr + b->info.size < desc->limit;
}

/* Bring the live mappings of BARs first..last in line with COMMAND and
 * their registers. */
static void reconcile_bars(PciDevice *d, int first, int last)
{
    uint16_t cmd = (uint16_t)dev_read(d, PCI_COMMAND, 2);
    for (int i = first; i <= last; i++) {
        PciBarState *b = &d->bar[i];
        if (b->info.kind == PCI_BAR_NONE)
            continue;
        bool want = bar_decodes(d, i, cmd);
        if (b->mapped && (!want || b->map_addr != b->addr) && bar_unmap(d, i))
            continue;
        if (want && !b->mapped)
            bar_map(d, i);
    }
}

static void reconcile(PciDevice *d)
{
    reconcile_bars(d, 0, PCI_NUM_BARS - 1);
}

/* ------------------------------------------------------------ bus registers */

static bool slot_multi(PciBus *bus, unsigned slot)
{
    uint8_t funcs = pci_bus_slot_funcs(bus, slot);
    return (funcs & (funcs - 1)) && !(bus->force_single & (1u << slot));
}

typedef struct BusReg {
    unsigned offset, size;
    int bar;
    uint32_t (*read)(PciDevice *d, const struct BusReg *r);
    void (*write)(PciDevice *d, const struct BusReg *r, uint32_t val);  /* NULL: RO */
} BusReg;

static uint32_t hdr_read(PciDevice *d, const BusReg *r)
{
    uint32_t type = pt_header_layout((uint8_t)dev_read(d, r->offset, 1));
    return type | (slot_multi(d->bus, PT_SLOT(d->devfn)) ? PCI_HEADER_TYPE_MFD : 0);
}

static uint32_t bar_read(PciDevice *d, const BusReg *r)
{
    return bar_reg_value(d, r->bar);
}

static void bar_write(PciDevice *d, const BusReg *r, uint32_t val)
{
    bar_reg_store(d, r->bar, val);
}

static uint32_t line_read(PciDevice *d, const BusReg *r)
{
    (void)r;
    return d->irq_line;
}

static void line_write(PciDevice *d, const BusReg *r, uint32_t val)
{
    (void)r;
    d->irq_line = (uint8_t)val;
}

#define BAR_REG(n) { .offset = PCI_BASE_ADDRESS_0 + 4 * (n), .size = 4, .bar = (n), \
                    .read = bar_read, .write = bar_write }
#define HDR_REG    { .offset = PCI_HEADER_TYPE, .size = 1, .read = hdr_read }
#define LINE_REG   { .offset = PCI_INTERRUPT_LINE, .size = 1, .read = line_read, \
                     .write = line_write }
#define ROM_REG(o) { .offset = (o), .size = 4, .bar = PCI_BAR_ROM, .read = bar_read, \
                     .write = bar_write }

/* A normal function: six BARs and the ROM at 0x30. */
static const BusReg bus_regs_normal[] = {
    HDR_REG,
    BAR_REG(0), BAR_REG(1), BAR_REG(2), BAR_REG(3), BAR_REG(4), BAR_REG(5),
    ROM_REG(PCI_ROM_ADDRESS),
    LINE_REG,
};

/* A bridge: two BARs, bus numbers and windows in between, the ROM at 0x38. */
static const BusReg bus_regs_bridge[] = {
    HDR_REG,
    BAR_REG(0), BAR_REG(1),
    ROM_REG(PCI_ROM_ADDRESS1),
    LINE_REG,
};

/* O(1) offset -> bus register; NULL: the byte belongs to the device. */
typedef struct BusRegMap {
    const BusReg *at[PCI_BUS_HEADER];
    unsigned decode_lo, decode_hi;  /* BARs and ROM: [lo, hi) */
    uint16_t dwords;                /* bit N: dword N holds a bus register byte */
    PciGuestReg guest[PCI_GUEST_REGS_MAX];  /* the writable ones */
    size_t nguest;
} BusRegMap;

static BusRegMap map_normal, map_bridge;

static void fill_map(BusRegMap *m, const BusReg *regs, size_t n)
{
    m->decode_lo = PCI_BASE_ADDRESS_0;
    for (size_t i = 0; i < n; i++) {
        if (regs[i].write)
            m->guest[m->nguest++] = (PciGuestReg){ .offset = (uint8_t)regs[i].offset,
                                                   .size = (uint8_t)regs[i].size };
        for (unsigned b = 0; b < regs[i].size; b++) {
            m->at[regs[i].offset + b] = &regs[i];
            m->dwords |= (uint16_t)(1u << ((regs[i].offset + b) / 4));
        }
        if (regs[i].write == bar_write)
            m->decode_hi = MAX(m->decode_hi, regs[i].offset + regs[i].size);
    }
}

static void bus_regs_init(void)
{
    static gsize done;
    if (!g_once_init_enter(&done))
        return;
    fill_map(&map_normal, bus_regs_normal, G_N_ELEMENTS(bus_regs_normal));
    fill_map(&map_bridge, bus_regs_bridge, G_N_ELEMENTS(bus_regs_bridge));
    g_once_init_leave(&done, 1);
}

const PciGuestReg *pci_bus_guest_regs(bool bridge, size_t *n)
{
    const BusRegMap *m = bridge ? &map_bridge : &map_normal;

    bus_regs_init();
    *n = m->nguest;
    return m->guest;
}

static const BusReg *bus_reg_at(const PciDevice *d, unsigned offset)
{
    return offset < PCI_BUS_HEADER ? d->regs->at[offset] : NULL;
}

/* Writes here change what should be mapped: COMMAND, BARs, ROM. */
static bool touches_decode(const PciDevice *d, unsigned offset, unsigned len)
{
    bool command = offset < PCI_COMMAND + 2 && PCI_COMMAND < offset + len;
    bool bars = offset < d->regs->decode_hi && d->regs->decode_lo < offset + len;

    return command || bars;
}

/*
 * The next piece of an access at offset with `left` bytes to go: the bytes
 * of one bus register, or a naturally aligned run of device bytes.
 */
static unsigned piece_len(const PciDevice *d, unsigned offset, unsigned left,
                          const BusReg **reg)
{
    *reg = bus_reg_at(d, offset);
    if (*reg)
        return MIN(left, (*reg)->offset + (*reg)->size - offset);
    unsigned run = 1;
    while (run < left && !bus_reg_at(d, offset + run))
        run++;
    for (unsigned n = 4; n > 1; n /= 2)
        if (run >= n && offset % n == 0)
            return n;
    return 1;
}

/* The bus register that is exactly this access, if any. */
static const BusReg *exact_reg(const PciDevice *d, unsigned offset, unsigned len)
{
    const BusReg *reg = bus_reg_at(d, offset);
    return reg && reg->offset == offset && reg->size == len ? reg : NULL;
}

/* Is the whole access the device's?  (offset + len stays in one dword.) */
static bool all_device(const PciDevice *d, unsigned offset)
{
    return offset >= PCI_BUS_HEADER || !(d->regs->dwords & (1u << (offset / 4)));
}

/* One generic path for reads of every size; most accesses skip the split. */
static uint32_t cfg_read(PciDevice *d, unsigned offset, unsigned len)
{
    if (all_device(d, offset))
        return dev_read(d, offset, len);
    const BusReg *whole = exact_reg(d, offset, len);
    if (whole)
        return whole->read(d, whole);
    uint32_t val = 0;
    for (unsigned i = 0, n; i < len; i += n) {
        const BusReg *reg;
        n = piece_len(d, offset + i, len - i, &reg);
        uint32_t piece = reg ? reg->read(d, reg) >> (8 * (offset + i - reg->offset))
                             : dev_read(d, offset + i, n);
        val |= (piece & ones(n)) << (8 * i);
    }
    return val;
}

static void reg_write_bytes(PciDevice *d, const BusReg *reg, unsigned offset,
                            uint32_t bytes, unsigned n)
{
    if (!reg->write)
        return;
    unsigned shift = 8 * (offset - reg->offset);
    uint32_t mask = ones(n) << shift;
    uint32_t old = reg->read(d, reg);
    reg->write(d, reg, (old & ~mask) | ((bytes << shift) & mask));
}

/* ... and of writes. */
static void cfg_write_pieces(PciDevice *d, unsigned offset, uint32_t val, unsigned len)
{
    for (unsigned i = 0, n; i < len; i += n) {
        const BusReg *reg;
        n = piece_len(d, offset + i, len - i, &reg);
        uint32_t bytes = (val >> (8 * i)) & ones(n);
        if (reg)
            reg_write_bytes(d, reg, offset + i, bytes, n);
        else
            d->ops->cfg_write(d, offset + i, bytes, n);
    }
}

/* A write of one whole BAR register can only change that BAR's mapping. */
static void reconcile_after(PciDevice *d, const BusReg *whole, unsigned offset, unsigned len)
{
    int bar = whole && whole->write == bar_write ? whole->bar : -1;
    if (bar >= 0 && !(offset < PCI_COMMAND + 2 && PCI_COMMAND < offset + len)) {
        bar -= bar_is_upper(d, bar);
        reconcile_bars(d, bar, bar);
    } else if (touches_decode(d, offset, len)) {
        reconcile(d);
    }
}

static void cfg_write(PciDevice *d, unsigned offset, uint32_t val, unsigned len)
{
    const BusReg *whole = NULL;
    if (all_device(d, offset))
        d->ops->cfg_write(d, offset, val, len);
    else if ((whole = exact_reg(d, offset, len)) != NULL && whole->write)
        whole->write(d, whole, val);
    else if (!whole)
        cfg_write_pieces(d, offset, val, len);
    reconcile_after(d, whole, offset, len);
}

/* ------------------------------------------------------------ guest access */

/* The device a guest reaches at devfn, if any: function 0 must be there
 * for the others to answer, as on real hardware. */
static PciDevice *visible(PciBus *bus, uint8_t devfn)
{
    if (!bus->dev[devfn] || !bus->dev[PT_DEVFN(PT_SLOT(devfn), 0)])
        return NULL;
    return bus->dev[devfn];
}

static PciDevice *target(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len)
{
    PciDevice *d = visible(bus, devfn);
    if (!d || !access_ok(offset, len) || offset >= d->config_size)
        return NULL;
    return d;
}

uint32_t pci_bus_cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len)
{
    PciDevice *d = target(bus, devfn, offset, len);
    return d ? cfg_read(d, offset, len) : ones(len);
}

void pci_bus_cfg_write(PciBus *bus, uint8_t devfn, unsigned offset, uint32_t val,
                       unsigned len)
{
    PciDevice *d = target(bus, devfn, offset, len);
    if (d)
        cfg_write(d, offset, val & ones(len), len);
}

/* Decode 0xcf8 for an access to data port `port`. */
static bool cfg_address(PciBus *bus, uint16_t port, unsigned len,
                        uint8_t *devfn, unsigned *offset)
{
    uint32_t a = bus->config_address;
    unsigned byte = port - PCI_CONFIG_DATA_PORT;
    if (port < PCI_CONFIG_DATA_PORT || !access_ok(byte, len))
        return false;
    if (!(a & PCI_CONFIG_ENABLE) || ((a >> 16) & 0xff) != 0)
        return false;   /* only bus 0 exists */
    *devfn = (uint8_t)(a >> 8);
    *offset = (a & 0xfc) | byte;
    return true;
}

static bool is_address_access(uint16_t port, unsigned len)
{
    return port == PCI_CONFIG_ADDRESS_PORT && len == 4;
}

uint32_t pci_bus_ioport_read(PciBus *bus, uint16_t port, unsigned len)
{
    uint8_t devfn;
    unsigned offset;
    if (is_address_access(port, len))
        return bus->config_address;
    if (cfg_address(bus, port, len, &devfn, &offset))
        return pci_bus_cfg_read(bus, devfn, offset, len);
    return ones(len);
}

void pci_bus_ioport_write(PciBus *bus, uint16_t port, uint32_t val, unsigned len)
{
    uint8_t devfn;
    unsigned offset;
    /* Reserved bits 30:24 and 1:0 read back as 0. */
    if (is_address_access(port, len))
        bus->config_address = val & (PCI_CONFIG_ENABLE | 0x00fffffcu);
    else if (cfg_address(bus, port, len, &devfn, &offset))
        pci_bus_cfg_write(bus, devfn, offset, val, len);
}

/* ------------------------------------------------------------ guest memory */

/* The mapped memory BAR (not the ROM) whose range holds [addr, addr+len):
 * only the live mapping starting at or below addr can. */
static PciDevice *mmio_target(PciBus *bus, uint64_t addr, unsigned len, int *bar,
                              uint64_t *offset)
{
    const PciBarState *b = live_at_or_below(bus->live[false], addr);

    if (!b || b->index == PCI_BAR_ROM || addr < b->map_addr ||
        addr - b->map_addr + len > b->info.size)
        return NULL;
    *bar = b->index;
    *offset = addr - b->map_addr;
    return b->dev;
}

static bool mmio_len_ok(unsigned len)
{
    return len == 1 || len == 2 || len == 4 || len == 8;
}

int pci_bus_mmio_read(PciBus *bus, uint64_t addr, unsigned len, uint64_t *val)
{
    uint64_t offset;
    int bar;

    *val = UINT64_MAX;
    if (!mmio_len_ok(len))
        return -EINVAL;
    PciDevice *d = mmio_target(bus, addr, len, &bar, &offset);
    if (!d || !d->ops->mmio_read)
        return -ENOENT;
    int rc = d->ops->mmio_read(d, bar, offset, len, val);
    if (rc)
        *val = UINT64_MAX;
    if (len < 8)
        *val &= (1ull << (8 * len)) - 1;
    return rc;
}

int pci_bus_mmio_write(PciBus *bus, uint64_t addr, unsigned len, uint64_t val)
{
    uint64_t offset;
    int bar;

    if (!mmio_len_ok(len))
        return -EINVAL;
    PciDevice *d = mmio_target(bus, addr, len, &bar, &offset);
    if (!d || !d->ops->mmio_write)
        return -ENOENT;
    if (len < 8)
        val &= (1ull << (8 * len)) - 1;
    return d->ops->mmio_write(d, bar, offset, len, val);
}

/* ------------------------------------------------------------ plug */

static int check_bar(const PciPlug *plug, int i)
{
    const PciBarInfo *b = &plug->bar[i];
    if (b->kind == PCI_BAR_NONE)
        return b->size ? -EINVAL : 0;
    if ((unsigned)b->kind >= G_N_ELEMENTS(bar_descs))
        return -EINVAL;
    if (i == PCI_BAR_ROM && b->kind != PCI_BAR_MEM32)
        return -EINVAL;
    if (b->kind == PCI_BAR_MEM64
        && (i >= PCI_BAR_ROM - 1 || plug->bar[i + 1].kind != PCI_BAR_NONE))
        return -EINVAL;
    const BarDesc *desc = bar_desc(i, b->kind);
    if (!is_pow2(b->size) || b->size < desc->min_size || b->size >= desc->limit)
        return -EINVAL;
    return 0;
}

static int check_plug(PciBus *bus, uint8_t devfn, const PciPlug *plug)
{
    if (!plug->ops || !plug->ops->cfg_read || !plug->ops->cfg_write)
        return -EINVAL;
    /* Trapped parts of a BAR only exist where the device maps the rest. */
    if ((plug->ops->mmio_read || plug->ops->mmio_write) && !plug->ops->bar_map)
        return -EINVAL;
    if (plug->config_size && plug->config_size != PCI_CONFIG_SIZE
        && plug->config_size != PCI_EXT_CONFIG_SIZE)
        return -EINVAL;
    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (check_bar(plug, i))
            return -EINVAL;
    if (bus->dev[devfn])
        return -EEXIST;
    if ((bus->reserved & (1u << PT_SLOT(devfn))) && !plug->platform)
        return -EPERM;
    return 0;
}

int pci_bus_plug(PciBus *bus, uint8_t devfn, const PciPlug *plug, PciDevice **out)
{
    int rc = check_plug(bus, devfn, plug);
    if (rc)
        return rc;
    PciDevice *d = g_new0(PciDevice, 1);
    d->bus = bus;
    d->devfn = devfn;
    d->ops = plug->ops;
    d->opaque = plug->opaque;
    d->name = g_strdup(plug->name ? plug->name : "");
    d->config_size = plug->config_size ? plug->config_size : PCI_CONFIG_SIZE;
    for (int i = 0; i < PCI_NUM_BARS; i++)
        d->bar[i] = (PciBarState){ .info = plug->bar[i], .dev = d, .index = i };
    bool bridge = pt_header_is_bridge((uint8_t)d->ops->cfg_read(d, PCI_HEADER_TYPE, 1));
    d->regs = bridge ? &map_bridge : &map_normal;
    bus->dev[devfn] = d;
    if (out)
        *out = d;
    return 0;
}

int pci_bus_unplug(PciBus *bus, uint8_t devfn)
{
    PciDevice *d = bus->dev[devfn];
    int first = 0;
    if (!d)
        return -ENOENT;
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        int rc = d->bar[i].mapped ? bar_unmap(d, i) : 0;
        if (rc && !first)
            first = rc;
        if (rc)     /* the device goes anyway: so does its idea of the mapping */
            g_tree_remove(bus->live[bar_is_io(&d->bar[i])], &d->bar[i]);
    }
    bus->dev[devfn] = NULL;
    g_free(d->name);
    g_free(d);
    return first;
}

PciDevice *pci_bus_device(PciBus *bus, uint8_t devfn)
{
    return bus->dev[devfn];
}

uint8_t pci_bus_slot_funcs(PciBus *bus, unsigned slot)
{
    uint8_t funcs = 0;
    for (unsigned f = 0; slot < PT_SLOTS && f < PT_FUNCS_PER_SLOT; f++)
        if (bus->dev[PT_DEVFN(slot, f)])
            funcs |= 1u << f;
    return funcs;
}

static void device_reset(PciDevice *d)
{
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        d->bar[i].addr = 0;
        d->bar[i].rom_enable = false;
    }
    d->irq_line = 0;
    if (d->ops->reset)
        d->ops->reset(d);
    reconcile(d);
}

void pci_device_reset(PciDevice *dev)
{
    device_reset(dev);
}

void pci_bus_reset(PciBus *bus)
{
    bus->config_address = 0;
    for (unsigned f = 0; f < PCI_BUS_DEVFNS; f++)
        if (bus->dev[f])
            device_reset(bus->dev[f]);
}

/* ------------------------------------------------------------ bus */

PciBus *pci_bus_new(Hypervisor *hv)
{
    bus_regs_init();
    PciBus *bus = g_new0(PciBus, 1);
    bus->hv = hv;
    bus->log = g_ptr_array_new_with_free_func(g_free);
    for (int io = 0; io < 2; io++)
        bus->live[io] = g_tree_new(by_map_start);
    return bus;
}

void pci_bus_free(PciBus *bus)
{
    if (!bus)
        return;
    for (unsigned f = 0; f < PCI_BUS_DEVFNS; f++)
        if (bus->dev[f])
            pci_bus_unplug(bus, (uint8_t)f);
    g_ptr_array_unref(bus->log);
    for (int io = 0; io < 2; io++)
        g_tree_destroy(bus->live[io]);
    g_free(bus);
}

Hypervisor *pci_bus_hypervisor(PciBus *bus)     { return bus->hv; }
void pci_bus_set_reserved(PciBus *bus, uint32_t slots) { bus->reserved = slots; }
uint32_t pci_bus_reserved(PciBus *bus)          { return bus->reserved; }

void pci_bus_force_single_function(PciBus *bus, unsigned slot, bool force)
{
    g_return_if_fail(slot < PT_SLOTS);
    if (force)
        bus->force_single |= 1u << slot;
    else
        bus->force_single &= ~(1u << slot);
}

size_t pci_bus_log_count(PciBus *bus)
{
    return bus->log->len;
}

const char *pci_bus_log_line(PciBus *bus, size_t i)
{
    g_return_val_if_fail(i < bus->log->len, NULL);
    return g_ptr_array_index(bus->log, i);
}

/* ------------------------------------------------------------ device */

void *pci_device_opaque(PciDevice *dev)     { return dev->opaque; }
PciBus *pci_device_bus(PciDevice *dev)      { return dev->bus; }
uint8_t pci_device_devfn(PciDevice *dev)    { return dev->devfn; }
const char *pci_device_name(PciDevice *dev) { return dev->name; }

uint64_t pci_device_bar_addr(PciDevice *dev, int bar)
{
    g_return_val_if_fail(bar >= 0 && bar < PCI_NUM_BARS, 0);
    return dev->bar[bar].addr;
}

bool pci_device_bar_mapped(PciDevice *dev, int bar)
{
    g_return_val_if_fail(bar >= 0 && bar < PCI_NUM_BARS, false);
    return dev->bar[bar].mapped;
}

int pci_device_intx_link(PciDevice *dev)
{
    unsigned pin = dev_read(dev, PCI_INTERRUPT_PIN, 1);
    if (pin < 1 || pin > 4)
        return -ENOENT;
    return (int)pci_intx_link(dev->devfn, pin);
}

/* ------------------------------------------------------------ export */

static void info_bars(GString *g, PciDevice *d)
{
    char l[8];
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        const PciBarState *b = &d->bar[i];
        if (b->info.kind == PCI_BAR_NONE)
            continue;
        g_string_append_printf(g, "    %-4s %-5s 0x%08" PRIx64 " size 0x%" PRIx64 "%s%s%s\n",
                               bar_label(i, l), bar_desc(i, b->info.kind)->name, b->addr,
                               b->info.size, b->info.prefetch ? " prefetch" : "",
                               i == PCI_BAR_ROM && !b->rom_enable ? " disabled" : "",
                               b->mapped ? " mapped" : "");
    }
}

static void info_device(GString *g, PciDevice *d)
{
    uint8_t devfn = d->devfn;
    uint32_t pin = dev_read(d, PCI_INTERRUPT_PIN, 1);
    g_string_append_printf(g, "  %02x.%x %04x:%04x class %04x rev %02x header %02x %s\n",
                           PT_SLOT(devfn), PT_FUNC(devfn), dev_read(d, PCI_VENDOR_ID, 2),
                           dev_read(d, PCI_DEVICE_ID, 2), dev_read(d, PCI_CLASS_DEVICE, 2),
                           dev_read(d, PCI_REVISION_ID, 1), cfg_read(d, PCI_HEADER_TYPE, 1),
                           d->name);
    if (pin >= 1 && pin <= 4)
        g_string_append_printf(g, "    INT%c -> link %u, line %u\n", 'A' + pin - 1,
                               pci_intx_link(devfn, pin), d->irq_line);
    info_bars(g, d);
}

char *pci_bus_info(PciBus *bus)
{
    GString *g = g_string_new("PCI bus 0:\n");
    for (unsigned f = 0; f < PCI_BUS_DEVFNS; f++)
        if (bus->dev[f])
            info_device(g, bus->dev[f]);
    return g_string_free(g, FALSE);
}

/* Linux probe.c's next_fn: other functions only behind the MF bit. */
static bool next_fn(PciBus *bus, unsigned slot, unsigned *fn)
{
    uint32_t hdr = pci_bus_cfg_read(bus, PT_DEVFN(slot, 0), PCI_HEADER_TYPE, 1);
    if (*fn == 0 && !(hdr & PCI_HEADER_TYPE_MFD))
        return false;
    return ++*fn < PT_FUNCS_PER_SLOT;
}

static void dump_function(GString *g, PciBus *bus, uint8_t devfn, unsigned size)
{
    g_string_append_printf(g, "00:%02x.%x Class %04x: Device %04x:%04x\n",
                           PT_SLOT(devfn), PT_FUNC(devfn),
                           pci_bus_cfg_read(bus, devfn, PCI_CLASS_DEVICE, 2),
                           pci_bus_cfg_read(bus, devfn, PCI_VENDOR_ID, 2),
                           pci_bus_cfg_read(bus, devfn, PCI_DEVICE_ID, 2));
    for (unsigned off = 0; off < size; off += 4) {
        uint32_t v = pci_bus_cfg_read(bus, devfn, off, 4);
        if (off % 16 == 0)
            g_string_append_printf(g, "%02x:", off);
        for (unsigned b = 0; b < 4; b++)
            g_string_append_printf(g, " %02x", (v >> (8 * b)) & 0xff);
        if (off % 16 == 12)
            g_string_append_c(g, '\n');
    }
    g_string_append_c(g, '\n');
}

char *pci_bus_dump_lspci(PciBus *bus)
{
    GString *g = g_string_new("");
    for (unsigned slot = 0; slot < PT_SLOTS; slot++) {
        unsigned fn = 0;
        do {
            uint8_t devfn = PT_DEVFN(slot, fn);
            if (pci_bus_cfg_read(bus, devfn, PCI_VENDOR_ID, 2) == 0xffff)
                continue;
            dump_function(g, bus, devfn, bus->dev[devfn]->config_size);
        } while (next_fn(bus, slot, &fn));
    }
    return g_string_free(g, FALSE);
}
