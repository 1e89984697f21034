/*
 * MSI and MSI-X of one passed-through function: the guest programs its
 * vectors in the emulated capability (hw/pass-through.c) and in an
 * emulated MSI-X table; this module turns that into host pirqs bound to
 * the guest's vectors through hw/hypervisor.h.
 *
 * The hypervisor owns the host's messages (it programs the host's
 * address/data and masks): no MSI or MSI-X address, data or mask of the
 * guest reaches the host (XSA-128, XSA-129).  The function's MSI/MSI-X
 * enable bits are set on the host once the binding is in place and cleared
 * before it goes: Xen 4.17 leaves them to dom0.
 *
 * A Xen HVM guest with pirq-based MSI (Linux on Xen: "xen-pirq") names its
 * own pirq in the message: vector 0, the pirq in the address's destination
 * and extended-destination bits (Linux 6.1 sets delivery mode ExtINT, older
 * ones 3; Xen and QEMU go by the vector).  That pirq is the one mapped,
 * since Xen delivers to the guest's event channel bound to it.  Such a guest
 * never unmasks the MSI-X entry (masking is the event channel's), so the
 * entry's mask bit does not hold it back.
 *
 * MSI: enabling maps one pirq per enabled message (multiple-message enable:
 * 2^QSIZE, at most what the function can do; message i is map_pirq_msi
 * entry i, vector = (data vector & ~(n-1)) | i) and binds each with the
 * vector, destination and delivery mode decoded from the guest's x86
 * address and data.  Re-programming while enabled updates the bindings;
 * disabling unbinds and unmaps.
 *
 * MSI-X: the table is latched here; an entry is bound when it is unmasked
 * with the function enabled and not function-masked.  Address/data written
 * to an unmasked entry are kept and applied at the next unmask write (the
 * spec leaves such writes undefined; they are counted as bad accesses when
 * the hypervisor forwards every mask write, hv_msix_all_writes: without
 * that, Xen 4.17 applies a bound entry's mask itself and forwards only the
 * unmask that follows a new address/data, so the entry seen unmasked here
 * may well have been masked).
 * Masking a bound entry updates it without HV_MSI_UNMASKED.  The table and
 * PBA pages are trapped, the rest of the BAR is mapped directly.  Table
 * accesses must be 4 or 8 bytes, naturally aligned: others are refused and
 * logged once.  PBA reads come from the host; writes to it are refused.
 * Disable, reset and unplug unbind and unmap every vector.
 *
 * Bad accesses (refused, misprogrammed, written while unmasked) are
 * counted; the first PT_MSI_LOG_BURST are logged, then one line says the
 * rest are only counted, and a summary follows at reset or unplug
 * (XSA-130: a guest cannot flood the log).
 */
#ifndef PT_MSI_H
#define PT_MSI_H

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor.h"
#include "pass-through.h"

#define PT_MSI_LOG_BURST 8

/* x86 MSI address and data (Intel SDM vol. 3, 11.11). */
#define PT_MSI_ADDR_BASE        0xfee00000u
#define PT_MSI_ADDR_BASE_SHIFT  20         /* bits 31:20 are 0xfee */
#define PT_MSI_ADDR_DEST_SHIFT  12
#define PT_MSI_ADDR_DEST_MASK   0xffu
#define PT_MSI_ADDR_RH          (1u << 3)
#define PT_MSI_ADDR_DM          (1u << 2)
#define PT_MSI_DATA_VECTOR_MASK 0xffu
#define PT_MSI_DATA_MODE_SHIFT  8
#define PT_MSI_DATA_MODE_MASK   0x7u
#define PT_MSI_DATA_LEVEL       (1u << 15)
/* Xen's pirq-based MSI: vector 0, delivery mode 3 or ExtINT (7), the
 * pirq's bits 7:0 in the destination, bits 31:8 in the high address. */
#define PT_MSI_XEN_PIRQ_MODES   (1u << 3 | 1u << 7)
#define PT_MSI_ADDR_EXT_DEST    0xffffff00u

/* MSI-X table entry (PCI spec 6.8.2). */
#define PT_MSIX_ENTRY_ADDR_LO   0
#define PT_MSIX_ENTRY_ADDR_HI   4
#define PT_MSIX_ENTRY_DATA      8
#define PT_MSIX_ENTRY_CTRL      12
#define PT_MSIX_ENTRY_MASKED    0x1u

typedef struct PtMsi PtMsi;

/*
 * Take over MSI/MSI-X of fn: its events and its trapped BAR pages.  Call
 * before pt_func_plug.
 */
PtMsi *pt_msi_new(PtFunc *fn, Hypervisor *hv);
/* Unbind and unmap every vector, log the summary, let go of fn. */
void pt_msi_free(PtMsi *m);

/*
 * msitranslate=1: deliver the function's MSI (message 0) as the guest's
 * INTx of devfn, pin intx (0 = INTA), through the hypervisor's MSI-to-INTx
 * binding, while the guest does not enable MSI itself: its own MSI takes
 * over when it does, and the translation comes back when it disables MSI
 * or resets.  0, -ENODEV without an MSI capability, or the hypervisor's
 * -errno (nothing left mapped or bound).
 */
int pt_msi_translate(PtMsi *m, uint8_t devfn, uint8_t intx);
bool pt_msi_translating(const PtMsi *m);

/* Decode an x86 MSI address/data pair; false if the address is not an
 * interrupt message (0xfeexxxxx). */
bool pt_msi_decode(uint64_t addr, uint32_t data, HvMsi *out);
/* The pirq a Xen guest's pirq-based message names, or -1 for an ordinary one. */
int pt_msi_guest_pirq(uint64_t addr, uint32_t data);

/*
 * Trapped BAR pages (normally reached through pci_bus_mmio_read/write):
 * offset within BAR `bar`; len 1, 2, 4 or 8.  0 or -errno (refused).
 */
int pt_msi_mmio_read(PtMsi *m, int bar, uint64_t offset, unsigned len, uint64_t *val);
int pt_msi_mmio_write(PtMsi *m, int bar, uint64_t offset, unsigned len, uint64_t val);

/* For tests and fuzzers. */
unsigned pt_msi_bound(const PtMsi *m);          /* live MSI + MSI-X bindings */
/* Host bits at a config offset that this module itself sets or clears:
 * the MSI and MSI-X enable bits (beyond pt_func_host_writable). */
uint8_t pt_msi_host_enable_bits(const PtFunc *fn, unsigned offset);
unsigned long pt_msi_bad_accesses(const PtMsi *m);

#endif
