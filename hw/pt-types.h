/*
 * The types and helpers every layer shares: a host function's address
 * (PtBdf, one format, one equality), the error type (one setter), guest
 * devfn/slot/function, little-endian access to config-space bytes, and
 * the two config fields every layer decodes: the header type and MSI-X's
 * table/PBA layout.
 */
#ifndef PT_TYPES_H
#define PT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pci/header.h>

#define PT_FUNCS_PER_SLOT 8
#define PT_SLOTS          32

#define PCI_CONFIG_SIZE     256     /* conventional config space */
#define PCI_EXT_CONFIG_SIZE 4096    /* PCIe */

#define PCI_STD_BARS 6              /* BAR0-5 */
#define PCI_NUM_BARS 7              /* and the expansion ROM */
#define PCI_BAR_ROM  6

/*
 * A BAR, index 0-5 or PCI_BAR_ROM: what the host says of it
 * (host_func_bar), what pass-through gives the guest bus, which owns the
 * BAR registers (pt_func_bar: the size rounded up to a power of two), and
 * what a guest found when it sized and placed it (the test guest).
 */
typedef struct PtBar {
    uint64_t base;      /* address, flag bits stripped: the host's, or the guest's */
    uint64_t size;      /* 0: not implemented */
    bool io, mem64, prefetch;
} PtBar;

/* Frames of MMIO mappings, host and guest. */
#define PT_PAGE_SHIFT 12
#define PT_PAGE_SIZE  (1u << PT_PAGE_SHIFT)
#define PT_UNSET          (-1)

#define PT_DEVFN(slot, fn) ((uint8_t)(((slot) << 3) | (fn)))
#define PT_SLOT(devfn)     ((devfn) >> 3)
#define PT_FUNC(devfn)     ((devfn) & 7)

/* Room for "<spec>: <reason> (at column N)" with any realistic spec. */
typedef struct PtError {
    char msg[320];
} PtError;

/* The error type's one setter. */
void pt_error_set(PtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct PtBdf {
    uint16_t domain;
    uint8_t bus, dev, func;
} PtBdf;

/* "0000:00:1d.1" into buf (at least 13 bytes). */
const char *pt_bdf_format(PtBdf bdf, char *buf, size_t len);

static inline bool pt_bdf_equal(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev && a.func == b.func;
}

/* The same device (slot), any function. */
static inline bool pt_bdf_same_device(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev;
}

/*
 * A short list of listeners, keyed by their opaque: setting one with the
 * same opaque replaces its function, a NULL function removes it.  The
 * owner calls each set entry with its own function type (the one it was
 * given as, cast back).
 */
typedef void (*PtAnyFn)(void);
#define PT_LISTENERS 4
typedef struct PtListeners {
    struct { PtAnyFn fn; void *opaque; } at[PT_LISTENERS];
} PtListeners;
void pt_listeners_set(PtListeners *ls, PtAnyFn fn, void *opaque);

/* Config space is little-endian whatever the machine. */
static inline uint16_t pt_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pt_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void pt_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Header type: bit 7 is the multi-function bit, the rest the layout. */
#ifndef PCI_HEADER_TYPE_MFD
#define PCI_HEADER_TYPE_MFD 0x80
#endif

static inline uint8_t pt_header_layout(uint8_t header_type)
{
    return (uint8_t)(header_type & ~PCI_HEADER_TYPE_MFD);
}

static inline bool pt_header_is_normal(uint8_t header_type)
{
    return pt_header_layout(header_type) == PCI_HEADER_TYPE_NORMAL;
}

static inline bool pt_header_is_bridge(uint8_t header_type)
{
    return pt_header_layout(header_type) == PCI_HEADER_TYPE_BRIDGE;
}

/* A bridge has BAR0-1 and its ROM register at 0x38; the bus treats every
 * other layout as a normal header's (BAR0-5, ROM at 0x30). */
static inline unsigned pt_header_bars(uint8_t header_type)
{
    return pt_header_is_bridge(header_type) ? 2 : PCI_STD_BARS;
}

static inline unsigned pt_header_rom_reg(uint8_t header_type)
{
    return pt_header_is_bridge(header_type) ? PCI_ROM_ADDRESS1 : PCI_ROM_ADDRESS;
}

/* MSI-X: libpci names the control bits but not the register. */
#define PT_MSIX_FLAGS      2
#define PT_MSIX_ENTRY_SIZE 16

/* Table entries: Message Control holds N-1. */
static inline unsigned pt_msix_table_size(uint16_t msix_flags)
{
    return (msix_flags & PCI_MSIX_TABSIZE) + 1u;
}

/* The PBA's bytes: a bit per entry, in whole qwords. */
static inline uint32_t pt_msix_pba_size(unsigned nvec)
{
    return (nvec + 63) / 64 * 8;
}

/* A Table or PBA register: the BAR it is in (BIR) and the offset there. */
static inline int pt_msix_bir(uint32_t reg)
{
    return (int)(reg & PCI_MSIX_BIR);
}

static inline uint32_t pt_msix_offset(uint32_t reg)
{
    return reg & ~(uint32_t)PCI_MSIX_BIR;
}

#endif
