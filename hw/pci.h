/*
 * Guest PCI bus 0: 32 slots x 8 functions, configuration mechanism #1,
 * multi-function visibility derived from slot population, generic BAR
 * semantics (sizing, decode on COMMAND, overlap) and INTx swizzling.
 *
 * A device is one function.  It plugs in with a const ops table and the
 * facts about its BARs; the bus owns these config registers and never
 * forwards accesses to them:
 *   PCI_BASE_ADDRESS_0..5, PCI_ROM_ADDRESS    (sizing and decode)
 *   PCI_HEADER_TYPE                           (bit 7 derived, low 7 from the device)
 *   PCI_INTERRUPT_LINE                        (guest scratch register)
 * Every other byte goes to the device.  After any write that touches
 * PCI_COMMAND or a BAR, the bus reads the guest-visible COMMAND back from
 * the device and maps/unmaps BARs to match: through the device's bar_map
 * hook if it has one, else directly through the hypervisor ops.
 */
#ifndef HW_PCI_H
#define HW_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pci/pci.h>
#include "hypervisor.h"
#include "pt-types.h"

#define PCI_BUS_DEVFNS      (PT_SLOTS * PT_FUNCS_PER_SLOT)

/* Configuration mechanism #1. */
#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_CONFIG_ENABLE       0x80000000u

typedef struct PciBus PciBus;
typedef struct PciDevice PciDevice;

typedef enum PciBarKind {
    PCI_BAR_NONE = 0,   /* not implemented: reads 0, writes ignored */
    PCI_BAR_IO,
    PCI_BAR_MEM32,      /* also the kind of the ROM */
    PCI_BAR_MEM64,      /* takes this BAR and the next (which stays NONE) */
} PciBarKind;

typedef struct PciBarInfo {
    PciBarKind kind;
    bool prefetch;
    uint64_t size;          /* a power of two; 0 with PCI_BAR_NONE */
    uint64_t host_addr;     /* what a direct mapping points at (host address) */
} PciBarInfo;

/* What the bus needs of a host BAR: its kind and where a direct mapping points. */
static inline PciBarInfo pci_bar_info(const PtBar *b)
{
    return (PciBarInfo){ .kind = b->io ? PCI_BAR_IO : b->mem64 ? PCI_BAR_MEM64 : PCI_BAR_MEM32,
                         .prefetch = b->prefetch, .size = b->size, .host_addr = b->base };
}

typedef struct PciDeviceOps {
    /* offset + len stays within one dword; len is 1, 2 or 4. */
    uint32_t (*cfg_read)(PciDevice *dev, unsigned offset, unsigned len);
    void (*cfg_write)(PciDevice *dev, unsigned offset, uint32_t val, unsigned len);
    /* Optional: back to power-on state (the bus has cleared its registers). */
    void (*reset)(PciDevice *dev);
    /* Optional: map (map=true) or unmap BAR `bar` at guest address gaddr.
     * NULL: the bus maps the BAR's host_addr directly (pci_map_direct). */
    int (*bar_map)(PciDevice *dev, int bar, uint64_t gaddr, bool map);
    /* Optional, with bar_map: guest accesses to the parts of memory BAR
     * `bar` that the device keeps trapped instead of mapping (an MSI-X
     * table).  offset within the BAR; len 1, 2, 4 or 8.  0: handled;
     * -ENOENT: not trapped there (the direct mapping serves it); another
     * -errno: trapped and refused (a read then gives all ones). */
    int (*mmio_read)(PciDevice *dev, int bar, uint64_t offset, unsigned len, uint64_t *val);
    int (*mmio_write)(PciDevice *dev, int bar, uint64_t offset, unsigned len, uint64_t val);
} PciDeviceOps;

typedef struct PciPlug {
    const PciDeviceOps *ops;
    void *opaque;               /* pci_device_opaque() gives it back */
    const char *name;           /* for logs and info, e.g. "0000:03:00.1"; copied */
    PciBarInfo bar[PCI_NUM_BARS];
    unsigned config_size;       /* PCI_CONFIG_SIZE or PCI_EXT_CONFIG_SIZE; 0: conventional */
    bool platform;              /* may occupy a reserved slot (host bridge, PIIX3...) */
} PciPlug;

/* ------------------------------------------------------------ the bus */

/* hv may be NULL for a bus of emulated devices that all have bar_map hooks. */
PciBus *pci_bus_new(Hypervisor *hv);

/* A BAR of dev was mapped at guest address addr (map) or unmapped from it,
 * told after the bus's state changed.  Listeners are keyed by opaque: a
 * second call with the same opaque replaces its function, NULL removes it. */
typedef void (*PciBarFn)(void *opaque, PciDevice *dev, int bar, uint64_t addr, bool map);
void pci_bus_listen_bars(PciBus *bus, PciBarFn fn, void *opaque);
/* Unplugs every device first. */
void pci_bus_free(PciBus *bus);
Hypervisor *pci_bus_hypervisor(PciBus *bus);

/*
 * Plug one function at devfn.  -EINVAL: bad ops or BAR facts; -EEXIST:
 * devfn taken; -EPERM: reserved slot and not plug->platform.  The BARs
 * start unassigned (0) and nothing is mapped until the guest enables decode.
 */
int pci_bus_plug(PciBus *bus, uint8_t devfn, const PciPlug *plug, PciDevice **out);
/* Unmap every BAR, then remove.  The device is gone even if an unmap
 * failed; the first failure is returned. -ENOENT: nothing there. */
int pci_bus_unplug(PciBus *bus, uint8_t devfn);
PciDevice *pci_bus_device(PciBus *bus, uint8_t devfn);
/* Bit F set: function F of the slot is plugged. */
uint8_t pci_bus_slot_funcs(PciBus *bus, unsigned slot);

/* A register the bus owns and the guest writes: a BAR, the ROM or the
 * interrupt line.  What a saved state keeps of each function. */
typedef struct PciGuestReg {
    uint8_t offset, size;
} PciGuestReg;
#define PCI_GUEST_REGS_MAX (PCI_NUM_BARS + 1)

/* Those of a normal header (bridge false) or of a bridge's, in config
 * order; *n: how many (at most PCI_GUEST_REGS_MAX). */
const PciGuestReg *pci_bus_guest_regs(bool bridge, size_t *n);

/* Platform reset: BARs cleared and unmapped, each device's reset hook. */
void pci_bus_reset(PciBus *bus);
/* What a platform reset does to one device (the address at 0xcf8 stays). */
void pci_device_reset(PciDevice *dev);

/* Bit S set: slot S is kept for platform devices. */
void pci_bus_set_reserved(PciBus *bus, uint32_t slots);
uint32_t pci_bus_reserved(PciBus *bus);

/* Test only: present slot `slot` as single-function whatever its population. */
void pci_bus_force_single_function(PciBus *bus, unsigned slot, bool force);

/*
 * What the guest sees.  An absent function, a function other than 0 in a
 * slot without function 0, an offset beyond the device's config space, or
 * an access that is not 1/2/4 bytes within one dword reads all ones and
 * drops writes.
 */
uint32_t pci_bus_cfg_read(PciBus *bus, uint8_t devfn, unsigned offset, unsigned len);
void pci_bus_cfg_write(PciBus *bus, uint8_t devfn, unsigned offset, uint32_t val,
                       unsigned len);

/* Mechanism #1 on ports 0xcf8 (address, 32-bit only) and 0xcfc-0xcff. */
static inline bool pci_bus_claims_ioport(uint16_t port)
{
    return port >= PCI_CONFIG_ADDRESS_PORT && port < PCI_CONFIG_DATA_PORT + 4;
}
uint32_t pci_bus_ioport_read(PciBus *bus, uint16_t port, unsigned len);
void pci_bus_ioport_write(PciBus *bus, uint16_t port, uint32_t val, unsigned len);

/*
 * A guest memory access at guest-physical addr, for front-ends (the test
 * guest, MPQEMU's BAR messages, Xen ioreqs): the device whose mapped memory
 * BAR decodes addr gets it if it keeps that part of the BAR trapped.
 * Returns the device's answer (0 handled, *val set on a read), or -ENOENT
 * when no trapped range is there: a directly mapped part of a BAR, which
 * the front-end serves as plain BAR memory, or nothing at all.  len 1, 2,
 * 4 or 8 (-EINVAL otherwise).  A refused read sets *val to all ones.
 */
int pci_bus_mmio_read(PciBus *bus, uint64_t addr, unsigned len, uint64_t *val);
int pci_bus_mmio_write(PciBus *bus, uint64_t addr, unsigned len, uint64_t val);

/* INTx pin (1 = INTA .. 4 = INTD) -> PCI link 0-3, the Xen/PIIX3 swizzle. */
static inline unsigned pci_intx_link(uint8_t devfn, unsigned pin)
{
    return (PT_SLOT(devfn) + pin - 1) & 3;
}

/* Bounded log of bus events (refused overlaps, failed maps), prefixed by
 * the function ("00:05.0 name: ..."); also printed to stderr. */
size_t pci_bus_log_count(PciBus *bus);
const char *pci_bus_log_line(PciBus *bus, size_t i);

/* `info pci`: every plugged function, IDs, class, pin/link, BARs and
 * whether each is mapped.  g_free the result. */
char *pci_bus_info(PciBus *bus);
/* `lspci -xxxx` text of what a guest enumerates through config reads
 * (function 0 first, others only behind the multi-function bit), readable
 * by `lspci -F FILE`.  g_free the result. */
char *pci_bus_dump_lspci(PciBus *bus);

/* ------------------------------------------------------------ a device */

void *pci_device_opaque(PciDevice *dev);
PciBus *pci_device_bus(PciDevice *dev);
uint8_t pci_device_devfn(PciDevice *dev);
const char *pci_device_name(PciDevice *dev);
/* Guest address the BAR registers hold, flag bits stripped. */
uint64_t pci_device_bar_addr(PciDevice *dev, int bar);
bool pci_device_bar_mapped(PciDevice *dev, int bar);
/* Link 0-3 of the device's INTx pin; -ENOENT when it has no pin. */
int pci_device_intx_link(PciDevice *dev);

/*
 * Map or unmap size bytes at guest gaddr onto host haddr: I/O ports as
 * they are, memory in whole 4 KiB frames (gaddr and haddr must agree in
 * their offset within the page, -EINVAL otherwise).  For bar_map hooks
 * that map part of a BAR directly.
 */
int pci_map_direct(Hypervisor *hv, bool io, uint64_t gaddr, uint64_t haddr,
                   uint64_t size, bool map);

#endif
