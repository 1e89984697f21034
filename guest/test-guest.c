#include "test-guest.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "php.h"
#include "pt-msi.h"

TgWindows tg_default_windows(void)
{
    return (TgWindows){ .mmio_base = 0xc0000000, .mmio_limit = 0xfebfffff,
                        .io_base = 0xc000, .io_limit = 0xffff };
}

/* ---- mechanism #1 ---- */

static uint32_t cf8_address(uint8_t devfn, unsigned offset)
{
    return PCI_CONFIG_ENABLE | (uint32_t)devfn << 8 | (offset & 0xfc);
}

static TgAccessFn access_hook;
static void *access_opaque;

void tg_set_access_hook(TgAccessFn fn, void *opaque)
{
    access_hook = fn;
    access_opaque = opaque;
}

static uint32_t cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len)
{
    if (offset >= PCI_CONFIG_SIZE)      /* beyond mechanism #1: the ECAM path */
        return pci_bus_cfg_read(bus, devfn, offset, len);
    pci_bus_ioport_write(bus, PCI_CONFIG_ADDRESS_PORT, cf8_address(devfn, offset), 4);
    return pci_bus_ioport_read(bus, (uint16_t)(PCI_CONFIG_DATA_PORT + (offset & 3)), len);
}

uint32_t tg_cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len)
{
    uint32_t val = cfg_read(bus, devfn, offset, len);

    if (access_hook)
        access_hook(access_opaque, devfn, offset, len, false, val);
    return val;
}

void tg_cfg_write(PciBus *bus, uint8_t devfn, unsigned offset, uint32_t val, unsigned len)
{
    if (offset >= PCI_CONFIG_SIZE) {
        pci_bus_cfg_write(bus, devfn, offset, val, len);
    } else {
        pci_bus_ioport_write(bus, PCI_CONFIG_ADDRESS_PORT, cf8_address(devfn, offset), 4);
        pci_bus_ioport_write(bus, (uint16_t)(PCI_CONFIG_DATA_PORT + (offset & 3)), val, len);
    }
    if (access_hook)
        access_hook(access_opaque, devfn, offset, len, true, val);
}

/* ---- BARs ---- */

static unsigned bar_offset(uint8_t header_type, int bar)
{
    if (bar == PCI_BAR_ROM)
        return pt_header_rom_reg(header_type);
    return PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
}

static uint32_t probe(PciBus *bus, uint8_t devfn, unsigned off, uint32_t ones)
{
    uint32_t saved = tg_cfg_read(bus, devfn, off, 4);

    tg_cfg_write(bus, devfn, off, ones, 4);
    uint32_t mask = tg_cfg_read(bus, devfn, off, 4);
    tg_cfg_write(bus, devfn, off, saved, 4);
    return mask;
}

static PtBar size_bar(PciBus *bus, uint8_t devfn, uint8_t hdr, int bar)
{
    unsigned off = bar_offset(hdr, bar);
    PtBar b = { 0 };

    if (bar == PCI_BAR_ROM) {
        uint32_t m = probe(bus, devfn, off, (uint32_t)PCI_ROM_ADDRESS_MASK) & (uint32_t)PCI_ROM_ADDRESS_MASK;
        b.size = m ? (uint64_t)(~m + 1) & 0xffffffffu : 0;
        return b;
    }
    uint32_t lo = probe(bus, devfn, off, 0xffffffff);
    if (!lo || lo == 0xffffffff)
        return b;
    b.io = lo & PCI_BASE_ADDRESS_SPACE_IO;
    if (b.io) {
        uint32_t m = lo & PCI_BASE_ADDRESS_IO_MASK & 0xffff;
        b.size = m ? (~m + 1) & 0xffff : 0;
        return b;
    }
    b.prefetch = lo & PCI_BASE_ADDRESS_MEM_PREFETCH;
    b.mem64 = (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
    uint64_t m = lo & PCI_BASE_ADDRESS_MEM_MASK;
    m |= b.mem64 ? (uint64_t)probe(bus, devfn, off + 4, 0xffffffff) << 32 : 0xffffffff00000000ull;
    b.size = m ? ~m + 1 : 0;
    return b;
}

PtBar tg_size_bar(PciBus *bus, uint8_t devfn, int bar)
{
    uint8_t hdr = (uint8_t)tg_cfg_read(bus, devfn, PCI_HEADER_TYPE, 1);
    uint16_t cmd = (uint16_t)tg_cfg_read(bus, devfn, PCI_COMMAND, 2);

    /* Decode off while the BAR holds all ones, as Linux does. */
    tg_cfg_write(bus, devfn, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 2);
    PtBar b = size_bar(bus, devfn, hdr, bar);
    tg_cfg_write(bus, devfn, PCI_COMMAND, cmd, 2);
    return b;
}

static void size_bars(PciBus *bus, TgFunc *f)
{
    int nbars = (int)pt_header_bars(f->header_type);
    uint16_t cmd = (uint16_t)tg_cfg_read(bus, f->devfn, PCI_COMMAND, 2);

    tg_cfg_write(bus, f->devfn, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 2);
    for (int i = 0; i < nbars; i++) {
        f->bar[i] = size_bar(bus, f->devfn, f->header_type, i);
        if (f->bar[i].mem64)
            i++;
    }
    f->bar[PCI_BAR_ROM] = size_bar(bus, f->devfn, f->header_type, PCI_BAR_ROM);
    tg_cfg_write(bus, f->devfn, PCI_COMMAND, cmd, 2);
}

/* Largest first, naturally aligned: what firmware does to pack a window. */
typedef struct BarRef {
    TgFunc *f;
    int bar;
} BarRef;

static int by_size_desc(const void *a, const void *b)
{
    const BarRef *x = a, *y = b;
    uint64_t sx = x->f->bar[x->bar].size, sy = y->f->bar[y->bar].size;

    return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static void program_bar(PciBus *bus, TgFunc *f, int bar, uint64_t addr)
{
    unsigned off = bar_offset(f->header_type, bar);

    f->bar[bar].base = addr;
    tg_cfg_write(bus, f->devfn, off, (uint32_t)addr, 4);
    if (f->bar[bar].mem64)
        tg_cfg_write(bus, f->devfn, off + 4, (uint32_t)(addr >> 32), 4);
}

static void assign_bars(PciBus *bus, TgScan *scan)
{
    BarRef *refs = g_new0(BarRef, (size_t)scan->nfuncs * PCI_NUM_BARS + 1);
    TgWindows w = tg_default_windows();
    uint64_t mmio = w.mmio_base, io = w.io_base;
    int n = 0;

    for (int i = 0; i < scan->nfuncs; i++)
        for (int b = 0; b < PCI_NUM_BARS; b++)
            if (scan->funcs[i].bar[b].size)
                refs[n++] = (BarRef){ &scan->funcs[i], b };
    qsort(refs, (size_t)n, sizeof(*refs), by_size_desc);
    for (int k = 0; k < n; k++) {
        PtBar *b = &refs[k].f->bar[refs[k].bar];
        uint64_t *next = b->io ? &io : &mmio;
        uint64_t limit = b->io ? w.io_limit : w.mmio_limit;
        uint64_t at = align_up(*next, b->size);
        if (at + b->size - 1 > limit)
            continue;           /* no room: stays unassigned, as on a full window */
        program_bar(bus, refs[k].f, refs[k].bar, at);
        *next = at + b->size;
    }
    g_free(refs);
}

static void enable_decode(PciBus *bus, TgFunc *f)
{
    uint16_t cmd = (uint16_t)tg_cfg_read(bus, f->devfn, PCI_COMMAND, 2);

    for (int b = 0; b < PCI_BAR_ROM; b++)
        if (f->bar[b].size && f->bar[b].base)
            cmd |= f->bar[b].io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    tg_cfg_write(bus, f->devfn, PCI_COMMAND, cmd, 2);
}

/* ---- capabilities ---- */

static void walk_caps(PciBus *bus, TgFunc *f)
{
    uint8_t seen[256] = { 0 };

    if (!(tg_cfg_read(bus, f->devfn, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
        return;
    unsigned off = tg_cfg_read(bus, f->devfn, PCI_CAPABILITY_LIST, 1) & ~3u;
    while (off >= 0x40 && f->ncaps < TG_MAX_CAPS) {
        if (seen[off]++) {
            f->cap_loop = true;
            return;
        }
        uint16_t hdr = (uint16_t)tg_cfg_read(bus, f->devfn, off, 2);
        f->cap_off[f->ncaps] = (uint8_t)off;
        f->caps[f->ncaps++] = (uint8_t)hdr;
        off = (hdr >> 8) & ~3u;
    }
}

static void walk_ext_caps(PciBus *bus, TgFunc *f)
{
    unsigned off = 0x100;

    for (int hops = 0; off >= 0x100 && hops < TG_MAX_CAPS; hops++) {
        uint32_t hdr = tg_cfg_read(bus, f->devfn, off, 4);
        if (hdr == 0 || hdr == 0xffffffff)
            return;
        if (hdr & 0xffff)
            f->ext_caps[f->next_ext++] = (uint16_t)(hdr & 0xffff);
        off = (hdr >> 20) & 0xffc;
    }
}

/* ---- the scan ---- */

static bool probe_function(PciBus *bus, uint8_t devfn, TgFunc *f)
{
    uint32_t id = tg_cfg_read(bus, devfn, PCI_VENDOR_ID, 4);

    if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
        return false;
    memset(f, 0, sizeof(*f));
    f->devfn = devfn;
    f->vendor = (uint16_t)id;
    f->device = (uint16_t)(id >> 16);
    f->class_rev = tg_cfg_read(bus, devfn, PCI_CLASS_REVISION, 4);
    f->header_type = (uint8_t)tg_cfg_read(bus, devfn, PCI_HEADER_TYPE, 1);
    f->int_pin = (uint8_t)tg_cfg_read(bus, devfn, PCI_INTERRUPT_PIN, 1);
    if (pt_header_is_normal(f->header_type)) {
        f->subsys_vendor = (uint16_t)tg_cfg_read(bus, devfn, PCI_SUBSYSTEM_VENDOR_ID, 2);
        f->subsys = (uint16_t)tg_cfg_read(bus, devfn, PCI_SUBSYSTEM_ID, 2);
    }
    return true;
}

void tg_scan(PciBus *bus, bool assign, TgScan *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned slot = 0; slot < PT_SLOTS; slot++) {
        for (unsigned fn = 0; fn < PT_FUNCS_PER_SLOT; fn++) {
            TgFunc *f = &out->funcs[out->nfuncs];
            if (!probe_function(bus, PT_DEVFN(slot, fn), f)) {
                if (fn == 0)
                    break;      /* no function 0: nothing else is looked at */
                continue;
            }
            out->nfuncs++;
            if (fn == 0 && !(f->header_type & PCI_HEADER_TYPE_MFD))
                break;          /* single-function: functions 1-7 are not probed */
        }
    }
    for (int i = 0; i < out->nfuncs; i++) {
        walk_caps(bus, &out->funcs[i]);
        walk_ext_caps(bus, &out->funcs[i]);
        size_bars(bus, &out->funcs[i]);
    }
    if (!assign)
        return;
    assign_bars(bus, out);
    for (int i = 0; i < out->nfuncs; i++)
        enable_decode(bus, &out->funcs[i]);
}

uint8_t tg_slot_funcs(const TgScan *scan, unsigned slot)
{
    uint8_t mask = 0;

    for (int i = 0; i < scan->nfuncs; i++)
        if (PT_SLOT(scan->funcs[i].devfn) == slot)
            mask |= (uint8_t)(1u << PT_FUNC(scan->funcs[i].devfn));
    return mask;
}

const TgFunc *tg_find(const TgScan *scan, uint8_t devfn)
{
    for (int i = 0; i < scan->nfuncs; i++)
        if (scan->funcs[i].devfn == devfn)
            return &scan->funcs[i];
    return NULL;
}

/* ---- interrupts ---- */

uint64_t tg_msi_address(uint8_t dest, bool logical, bool redir_hint)
{
    return PT_MSI_ADDR_BASE | (uint32_t)dest << PT_MSI_ADDR_DEST_SHIFT |
           (redir_hint ? PT_MSI_ADDR_RH : 0) | (logical ? PT_MSI_ADDR_DM : 0);
}

uint32_t tg_msi_data(uint8_t vector, unsigned delivery_mode, bool level)
{
    return vector | (delivery_mode & PT_MSI_DATA_MODE_MASK) << PT_MSI_DATA_MODE_SHIFT |
           (level ? PT_MSI_DATA_LEVEL : 0);
}

static unsigned find_cap(PciBus *bus, uint8_t devfn, uint8_t id)
{
    TgFunc f = { .devfn = devfn };

    walk_caps(bus, &f);
    for (int i = 0; i < f.ncaps; i++)
        if (f.caps[i] == id)
            return f.cap_off[i];
    return 0;
}

static unsigned log2_of(unsigned n)
{
    unsigned l = 0;

    while ((1u << l) < n)
        l++;
    return l;
}

unsigned tg_msi_enable(PciBus *bus, uint8_t devfn, uint64_t addr, uint32_t data, unsigned nvec)
{
    unsigned cap = find_cap(bus, devfn, PCI_CAP_ID_MSI);

    if (!cap)
        return 0;
    uint16_t ctrl = (uint16_t)tg_cfg_read(bus, devfn, cap + PCI_MSI_FLAGS, 2);
    bool is64 = ctrl & PCI_MSI_FLAGS_64BIT;
    tg_cfg_write(bus, devfn, cap + PCI_MSI_ADDRESS_LO, (uint32_t)addr, 4);
    if (is64)
        tg_cfg_write(bus, devfn, cap + PCI_MSI_ADDRESS_HI, (uint32_t)(addr >> 32), 4);
    tg_cfg_write(bus, devfn, cap + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), data & 0xffff, 2);
    ctrl = (uint16_t)((ctrl & ~PCI_MSI_FLAGS_QSIZE) | log2_of(nvec) << 4 | PCI_MSI_FLAGS_ENABLE);
    tg_cfg_write(bus, devfn, cap + PCI_MSI_FLAGS, ctrl, 2);
    return cap;
}

void tg_msi_disable(PciBus *bus, uint8_t devfn)
{
    unsigned cap = find_cap(bus, devfn, PCI_CAP_ID_MSI);

    if (!cap)
        return;
    uint16_t ctrl = (uint16_t)tg_cfg_read(bus, devfn, cap + PCI_MSI_FLAGS, 2);
    tg_cfg_write(bus, devfn, cap + PCI_MSI_FLAGS, ctrl & ~PCI_MSI_FLAGS_ENABLE, 2);
}

int tg_mmio_read(PciBus *bus, uint64_t addr, unsigned len, uint64_t *val)
{
    return pci_bus_mmio_read(bus, addr, len, val);
}

int tg_mmio_write(PciBus *bus, uint64_t addr, unsigned len, uint64_t val)
{
    return pci_bus_mmio_write(bus, addr, len, val);
}

/* A BAR's guest address as the guest programmed it. */
static uint64_t bar_address(PciBus *bus, uint8_t devfn, int bar)
{
    unsigned off = PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
    uint32_t lo = tg_cfg_read(bus, devfn, off, 4);
    uint64_t addr = lo & PCI_BASE_ADDRESS_MEM_MASK;

    if ((lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64)
        addr |= (uint64_t)tg_cfg_read(bus, devfn, off + 4, 4) << 32;
    return addr;
}

int tg_msix_find(PciBus *bus, uint8_t devfn, TgMsix *out)
{
    unsigned cap = find_cap(bus, devfn, PCI_CAP_ID_MSIX);

    if (!cap)
        return -ENOENT;
    uint32_t table = tg_cfg_read(bus, devfn, cap + PCI_MSIX_TABLE, 4);
    uint32_t pba = tg_cfg_read(bus, devfn, cap + PCI_MSIX_PBA, 4);
    *out = (TgMsix){
        .cap = cap,
        .nvec = pt_msix_table_size((uint16_t)tg_cfg_read(bus, devfn, cap + PT_MSIX_FLAGS, 2)),
        .table_bar = pt_msix_bir(table), .pba_bar = pt_msix_bir(pba),
    };
    out->table = bar_address(bus, devfn, out->table_bar) + pt_msix_offset(table);
    out->pba = bar_address(bus, devfn, out->pba_bar) + pt_msix_offset(pba);
    return 0;
}

void tg_msix_control(PciBus *bus, uint8_t devfn, const TgMsix *x, bool enable, bool fmask)
{
    uint16_t ctrl = (uint16_t)tg_cfg_read(bus, devfn, x->cap + PT_MSIX_FLAGS, 2);

    ctrl &= (uint16_t)~(PCI_MSIX_ENABLE | PCI_MSIX_MASK);
    ctrl |= (enable ? PCI_MSIX_ENABLE : 0) | (fmask ? PCI_MSIX_MASK : 0);
    tg_cfg_write(bus, devfn, x->cap + PT_MSIX_FLAGS, ctrl, 2);
}

int tg_msix_mask(PciBus *bus, const TgMsix *x, unsigned entry, bool masked)
{
    uint64_t at = x->table + (uint64_t)entry * PT_MSIX_ENTRY_SIZE + PT_MSIX_ENTRY_CTRL;

    return tg_mmio_write(bus, at, 4, masked ? PT_MSIX_ENTRY_MASKED : 0);
}

int tg_msix_program(PciBus *bus, const TgMsix *x, unsigned entry, uint64_t addr,
                    uint32_t data, bool unmask)
{
    uint64_t e = x->table + (uint64_t)entry * PT_MSIX_ENTRY_SIZE;
    int rc = tg_msix_mask(bus, x, entry, true);

    if (!rc)
        rc = tg_mmio_write(bus, e + PT_MSIX_ENTRY_ADDR_LO, 4, (uint32_t)addr);
    if (!rc)
        rc = tg_mmio_write(bus, e + PT_MSIX_ENTRY_ADDR_HI, 4, (uint32_t)(addr >> 32));
    if (!rc)
        rc = tg_mmio_write(bus, e + PT_MSIX_ENTRY_DATA, 4, data);
    if (!rc && unmask)
        rc = tg_msix_mask(bus, x, entry, false);
    return rc;
}

/* What the in-process guest finds in a slot through mechanism #1, the
 * way Linux looks: function 0, the others behind the multi-function bit. */
void tg_slot_view(PciBus *bus, unsigned vslot, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    uint32_t id0 = tg_cfg_read(bus, PT_DEVFN(vslot, 0), PCI_VENDOR_ID, 4);
    if ((id0 & 0xffff) == 0xffff) {
        snprintf(buf, len, "nothing");
        return;
    }
    bool mf = tg_cfg_read(bus, PT_DEVFN(vslot, 0), PCI_HEADER_TYPE, 1) & PCI_HEADER_TYPE_MFD;
    for (unsigned f = 0; f < (mf ? PT_FUNCS_PER_SLOT : 1u) && used < len; f++) {
        uint32_t id = tg_cfg_read(bus, PT_DEVFN(vslot, f), PCI_VENDOR_ID, 4);
        if ((id & 0xffff) != 0xffff)
            used += (size_t)snprintf(buf + used, len - used, "%s%02x.%x %04x:%04x",
                                     used ? " " : "", vslot, f, id & 0xffff, id >> 16);
    }
}

/* ---- ACPI hot-plug as hvmloader's AML and the OS's driver drive it ---- */

uint8_t tg_php_sta(Php *php, uint8_t devfn)
{
    uint8_t b = (uint8_t)php_ioport_read(php, (uint16_t)(PHP_IOPORT_SLOTS + devfn / 2), 1);

    /* The fixed AML: odd functions live in the high nibble. */
    return (devfn & 1) ? b >> 4 : b & 0xf;
}

int tg_php_sci(Php *php, PhpGuestEvent *ev)
{
    uint8_t psta = (uint8_t)php_ioport_read(php, PHP_IOPORT_PSTA, 1);
    uint8_t pstb = (uint8_t)php_ioport_read(php, PHP_IOPORT_PSTB, 1);

    *ev = (PhpGuestEvent){ .event = psta, .vslot = PT_SLOT(pstb) };
    if (psta != PHP_EVENT_INSERT && psta != PHP_EVENT_REMOVE)
        return -EINVAL;
    for (unsigned f = 0; f < PT_FUNCS_PER_SLOT; f++)
        if (tg_php_sta(php, PT_DEVFN(ev->vslot, f)) == PHP_STA_PRESENT)
            ev->present |= (uint8_t)(1u << f);
    if (psta != PHP_EVENT_REMOVE)
        return 0;
    for (unsigned f = 0; f < PT_FUNCS_PER_SLOT && !ev->ejected; f++) {
        uint8_t devfn = PT_DEVFN(ev->vslot, f);
        if (tg_php_sta(php, devfn) != PHP_STA_PRESENT)
            continue;
        php_ioport_write(php, (uint16_t)(PHP_IOPORT_SLOTS + devfn / 2),
                         (devfn & 1) ? PHP_EJECT_ODD : PHP_EJECT_EVEN, 1);
        ev->ejected = true;
    }
    return 0;
}
