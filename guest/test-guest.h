/*
 * The in-process test guest: reaches the bus only through configuration
 * mechanism #1 (ports 0xcf8/0xcfc), and enumerates as Linux does: function
 * 0 first, other functions only when function 0 says multi-function; sizes
 * and assigns BARs in fixed windows, walks the capability lists, enables
 * decode.
 */
#ifndef TEST_GUEST_H
#define TEST_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "php.h"

#define TG_MAX_CAPS 32

typedef struct TgFunc {
    uint8_t devfn;
    uint16_t vendor, device;
    uint32_t class_rev;     /* class << 8 | revision */
    uint16_t subsys_vendor, subsys;
    uint8_t header_type;
    uint8_t int_pin;
    PtBar bar[PCI_NUM_BARS];        /* base: the guest address assigned */
    int ncaps;
    uint8_t caps[TG_MAX_CAPS];          /* IDs in chain order */
    uint8_t cap_off[TG_MAX_CAPS];
    int next_ext;
    uint16_t ext_caps[TG_MAX_CAPS];
    bool cap_loop;                      /* the guest had to stop a looping chain */
} TgFunc;

typedef struct TgScan {
    int nfuncs;
    TgFunc funcs[PCI_BUS_DEVFNS];
} TgScan;

/* Where the guest puts BARs: like a firmware, bottom-up, naturally aligned. */
typedef struct TgWindows {
    uint64_t mmio_base, mmio_limit;
    uint32_t io_base, io_limit;
} TgWindows;

TgWindows tg_default_windows(void);

/* Enumerate; with assign, size + assign BARs and enable decode (IO|MEM). */
void tg_scan(PciBus *bus, bool assign, TgScan *out);

/* Functions found in a slot, as a bitmask. */
uint8_t tg_slot_funcs(const TgScan *scan, unsigned slot);
const TgFunc *tg_find(const TgScan *scan, uint8_t devfn);

/* Called after each config access the test guest makes (val: what was
 * written or read); for benchmarks that count and attribute them. */
typedef void (*TgAccessFn)(void *opaque, uint8_t devfn, unsigned offset, unsigned len,
                           bool write, uint32_t val);
void tg_set_access_hook(TgAccessFn fn, void *opaque);

/* Config access through mechanism #1, as the guest does it. */
uint32_t tg_cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len);
void tg_cfg_write(PciBus *bus, uint8_t devfn, unsigned offset, uint32_t val, unsigned len);

/* Size one BAR the way Linux does (decode off around it). */
PtBar tg_size_bar(PciBus *bus, uint8_t devfn, int bar);

/* ---- interrupts, as Linux's x86 MSI code programs them ---- */

/* x86 message address (fixed 0xfee, destination APIC ID, RH, DM) and data
 * (vector, delivery mode 0 fixed / 1 lowest priority..., level trigger). */
uint64_t tg_msi_address(uint8_t dest, bool logical, bool redir_hint);
uint32_t tg_msi_data(uint8_t vector, unsigned delivery_mode, bool level);

/* MSI: program address/data, then enable nvec messages (a power of two).
 * Returns the capability's offset, 0 if the function shows none. */
unsigned tg_msi_enable(PciBus *bus, uint8_t devfn, uint64_t addr, uint32_t data,
                       unsigned nvec);
void tg_msi_disable(PciBus *bus, uint8_t devfn);

/* Guest memory accesses: what a CPU load/store to a BAR becomes.  As
 * pci_bus_mmio_read/write: -ENOENT means a directly mapped page (the
 * access never reaches the device model). */
int tg_mmio_read(PciBus *bus, uint64_t addr, unsigned len, uint64_t *val);
int tg_mmio_write(PciBus *bus, uint64_t addr, unsigned len, uint64_t val);

/* MSI-X as the guest finds it: capability, table size, and where the
 * table and PBA are in guest memory (BARs must be assigned). */
typedef struct TgMsix {
    unsigned cap, nvec;
    int table_bar, pba_bar;
    uint64_t table, pba;
} TgMsix;

/* 0, or -ENOENT when the function shows no MSI-X capability. */
int tg_msix_find(PciBus *bus, uint8_t devfn, TgMsix *out);
void tg_msix_control(PciBus *bus, uint8_t devfn, const TgMsix *x, bool enable, bool fmask);
/* Linux's order for one entry: mask, address, data, then unmask if asked.
 * The first failing access's error, else 0. */
int tg_msix_program(PciBus *bus, const TgMsix *x, unsigned entry, uint64_t addr,
                    uint32_t data, bool unmask);
int tg_msix_mask(PciBus *bus, const TgMsix *x, unsigned entry, bool masked);

/* What the guest finds in a slot, the way Linux looks (function 0, the
 * others behind the multi-function bit): "07.0 8086:2934 07.1 ..." or
 * "nothing". */
void tg_slot_view(PciBus *bus, unsigned vslot, char *buf, size_t len);

/*
 * qemu-dm's ACPI hot-plug controller as this guest drives it: what
 * hvmloader's _L03 and the OS's ACPI hot-plug driver do on the SCI,
 * through the I/O ports only.
 * Reads PSTA/PSTB; evaluates _STA of the slot's eight functions (with the
 * fixed odd-function nibble); on a remove event ejects the first present
 * function (which takes the slot).  Returns 0 with *ev filled.
 */
typedef struct PhpGuestEvent {
    int event;              /* PHP_EVENT_INSERT or PHP_EVENT_REMOVE */
    unsigned vslot;
    uint8_t present;        /* bit F: _STA of function F said present (before an eject) */
    bool ejected;
} PhpGuestEvent;

int tg_php_sci(Php *php, PhpGuestEvent *ev);
/* _STA of one function as the guest evaluates it. */
uint8_t tg_php_sta(Php *php, uint8_t devfn);

#endif
