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

#define TG_MAX_CAPS 32

typedef struct TgBar {
    uint64_t size;          /* 0: not implemented */
    uint64_t addr;          /* assigned guest address */
    bool io, mem64, prefetch;
} TgBar;

typedef struct TgFunc {
    uint8_t devfn;
    uint16_t vendor, device;
    uint32_t class_rev;     /* class << 8 | revision */
    uint16_t subsys_vendor, subsys;
    uint8_t header_type;
    uint8_t int_pin;
    TgBar bar[PCI_NUM_BARS];
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

/* Config access through mechanism #1, as the guest does it. */
uint32_t tg_cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len);
void tg_cfg_write(PciBus *bus, uint8_t devfn, unsigned offset, uint32_t val, unsigned len);

/* Size one BAR the way Linux does (decode off around it). */
TgBar tg_size_bar(PciBus *bus, uint8_t devfn, int bar);

#endif
