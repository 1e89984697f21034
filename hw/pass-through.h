/*
 * One passed-through host function as the guest sees it: a 4 KiB shadow of
 * its configuration space and per-byte masks built at open time from
 * register descriptor tables (header, capabilities, extended capabilities).
 *
 * Per byte:  emu   bits served from the shadow (the rest are read live)
 *            wr    bits the guest may change (emulated: in the shadow;
 *                  live: written through to the host)
 *            rw1c  bits a guest 1 clears
 * One generic merge serves reads and writes of every size; the few
 * registers with side effects have a hook found in O(1) by offset.
 */
#ifndef PASS_THROUGH_H
#define PASS_THROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include "host-pci.h"
#include "pci.h"
#include "pt-notation.h"

typedef struct PtFunc PtFunc;

typedef enum PtEvent {
    PT_EV_NONE,
    PT_EV_MSI,          /* MSI control, address or data written */
    PT_EV_MSIX,         /* MSI-X control written */
    PT_EV_RESET,        /* the function was reset */
    PT_EV_BAR_MAP,      /* a BAR was mapped or unmapped by the bus */
} PtEvent;

/* An event and, for PT_EV_BAR_MAP, the BAR: mapped at guest address addr,
 * or unmapped from it (told once the mapping changed). */
typedef struct PtEventInfo {
    PtEvent kind;
    int bar;
    uint64_t addr;
    bool mapped;
} PtEventInfo;

typedef void (*PtEventFn)(void *opaque, PtFunc *fn, const PtEventInfo *ev);

/*
 * Open a host function for the guest at vdevfn.  opts: permissive and
 * power_mgmt are honoured here (PT_UNSET counts as 0).
 */
PtFunc *pt_func_open(HostPci *host, PtBdf bdf, uint8_t vdevfn, const PtOptions *opts,
                     PtError *err);
void pt_func_close(PtFunc *fn);
/* The host function's write-through bits (bus mastering, INTx disable)
 * as they were at open: no more DMA of the guest's making. */
void pt_func_quiesce(PtFunc *fn);

/* Listeners of the function's events (its MSI/MSI-X state), keyed by
 * opaque: a second call with the same opaque replaces its function, cb
 * NULL removes it. */
void pt_func_listen(PtFunc *fn, PtEventFn cb, void *opaque);

/*
 * The MSI-X layout, checked at open: the table (nvec entries of
 * PCI_MSIX_ENTRY_SIZE bytes) and the PBA lie inside memory BARs.
 * -ENOENT: no visible MSI-X capability or a layout that does not fit
 * (logged at open; the function then runs without MSI-X).
 */
typedef struct PtMsixInfo {
    unsigned cap;           /* config offset of the capability */
    unsigned nvec;          /* table entries, 1..2048 */
    int table_bar, pba_bar;
    uint32_t table_off, pba_off;
} PtMsixInfo;

int pt_func_msix_info(const PtFunc *fn, PtMsixInfo *out);

/*
 * Who serves guest accesses to the trapped pages of the function's memory
 * BARs: the pages holding the MSI-X table and PBA.  Set before
 * pt_func_plug: then the bus maps the rest of such a BAR directly and
 * sends accesses to those pages here (pci_bus_mmio_read/write); without
 * it the whole BAR is mapped.  The pages stay trapped while plugged; with
 * ops set back to NULL accesses to them are refused.  offset is within BAR `bar`; return values
 * as PciDeviceOps.mmio_read/write.
 */
typedef struct PtMmioOps {
    int (*read)(void *opaque, int bar, uint64_t offset, unsigned len, uint64_t *val);
    int (*write)(void *opaque, int bar, uint64_t offset, unsigned len, uint64_t val);
} PtMmioOps;

void pt_func_set_mmio(PtFunc *fn, const PtMmioOps *ops, void *opaque);
/*
 * Is [offset, offset+len) of BAR `bar` trapped?  The MSI-X pages (served
 * by the PtMmioOps above), and the whole of every memory BAR smaller than
 * a page, which is never mapped: the bus sends each guest access to it
 * here and it is forwarded to the host's BAR (logged once per BAR at plug).
 */
bool pt_func_bar_trapped(const PtFunc *fn, int bar, uint64_t offset, unsigned len);

/* Guest config access, 1, 2 or 4 bytes, naturally aligned or not. */
uint32_t pt_func_cfg_read(PtFunc *fn, unsigned offset, unsigned len);
void pt_func_cfg_write(PtFunc *fn, unsigned offset, uint32_t val, unsigned len);

/* Back to the state the guest found at plug time (device reset / FLR). */
void pt_func_reset(PtFunc *fn);

/* 0 and *bar filled, or -ENOENT for a BAR the function does not have. */
int pt_func_bar(const PtFunc *fn, int index, PtBar *bar);
uint16_t pt_func_guest_command(const PtFunc *fn);

/* Guest offset of the first visible capability with this ID, or 0. */
unsigned pt_func_find_cap(const PtFunc *fn, uint8_t id);

/* "0000:00:1d.1 -> 07.1", the prefix of this function's log lines. */
const char *pt_func_name(const PtFunc *fn);
PtBdf pt_func_host_bdf(const PtFunc *fn);
uint8_t pt_func_vdevfn(const PtFunc *fn);
HostFunc *pt_func_host(PtFunc *fn);
unsigned pt_func_config_size(const PtFunc *fn);

/* The masks, for tests and fuzzers: bits a guest write may send to the host. */
uint8_t pt_func_host_writable(const PtFunc *fn, unsigned offset);
/* Writes dropped because they hit unclaimed or read-only live bits. */
unsigned long pt_func_dropped_writes(const PtFunc *fn);

/* Plug into the guest bus at the function's vdevfn (pci_bus_plug's errors). */
int pt_func_plug(PtFunc *fn, PciBus *bus, PciDevice **out);
/* The bus device of the function while it is plugged, else NULL. */
PciDevice *pt_func_device(PtFunc *fn);

/* The emulated state (the guest's shadow, PCI_EXT_CONFIG_SIZE bytes), for save. */
const uint8_t *pt_func_shadow(const PtFunc *fn);
/* Restore a saved shadow: only emulated bits are taken, so a saved image
 * cannot change what the host sees.  Fires PT_EV_MSI and PT_EV_MSIX so that
 * enabled MSI is bound again (the MSI-X table is not part of the shadow).
 * -EINVAL on a wrong length. */
int pt_func_load_shadow(PtFunc *fn, const uint8_t *shadow, size_t len);

#endif
