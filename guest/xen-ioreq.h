/*
 * The Xen front-end: an ioreq server (libxendevicemodel, Xen 4.17) through
 * which the guest's accesses to what qemu-dm emulates reach it.
 *
 * Claimed from Xen: every populated function of guest bus 0 (PCI config
 * ioreqs, decoded as Xen encodes them), the trapped MSI-X table/PBA pages
 * of mapped BARs (MMIO ioreqs -> pci_bus_mmio_read/write), and the I/O
 * port ranges other modules register (e.g. the hot-plug controller).  The
 * rest of each BAR is mapped directly by the hypervisor ops, never seen here.
 *
 * Synchronous ioreqs only (no buffered ring); served from the default GLib
 * main context, one event channel per vCPU.
 */
#ifndef XEN_IOREQ_H
#define XEN_IOREQ_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "pt-guest.h"

typedef struct XenIoreq XenIoreq;

/* Guest I/O ports: len 1, 2 or 4. */
typedef struct XenPortOps {
    uint32_t (*read)(void *opaque, uint16_t port, unsigned len);
    void (*write)(void *opaque, uint16_t port, uint32_t val, unsigned len);
} XenPortOps;

/*
 * Create the server for domid, map its ioreq page, bind each vCPU's event
 * channel, enable it and claim what bus and guest hold now (xen_ioreq_sync).
 * guest may be NULL (no MSI-X traps then).  NULL with err set naming the
 * failing call; nothing is left behind.
 */
XenIoreq *xen_ioreq_new(uint32_t domid, PciBus *bus, PtGuest *guest, PtError *err);
/* Release every claim, disable and destroy the server, close the handles. */
void xen_ioreq_free(XenIoreq *s);

/* Claim ports first..first+count-1 and send their ioreqs to ops.
 * -EEXIST: overlaps a registered range; -ENOSPC: table full; else the
 * failing call's -errno. */
int xen_ioreq_add_ports(XenIoreq *s, uint16_t first, uint16_t count, const XenPortOps *ops,
                        void *opaque, PtError *err);
/* Release a range registered at first; -ENOENT if none. */
int xen_ioreq_del_ports(XenIoreq *s, uint16_t first);

/*
 * Claim what is there now and release what went: populated functions of
 * bus 0 and the trapped pages of mapped MSI-X BARs.  Run after every
 * ioreq served (a config write may have moved a BAR; the guest's hot-plug
 * port accesses follow slot changes) and, where the caller can observe
 * them, on slot changes (xen_ioreq_slot_changed).
 * 0 or the first failure's -errno (the rest is still attempted).
 */
int xen_ioreq_sync(XenIoreq *s);
/* A PtSlotFn for pt_guest_set_slot_observer (opaque: the XenIoreq). */
void xen_ioreq_slot_changed(void *opaque, unsigned vslot, bool inserted);

/* What the server holds and did, for tests and logs. */
unsigned xen_ioreq_vcpus(const XenIoreq *s);
unsigned xen_ioreq_claimed_pcidevs(const XenIoreq *s);
unsigned xen_ioreq_claimed_mmio(const XenIoreq *s);
unsigned long xen_ioreq_served(const XenIoreq *s);
/* Claim re-syncs so far: one per slot change and per BAR (un)mapping, none
 * for other guest accesses. */
unsigned long xen_ioreq_syncs(const XenIoreq *s);

#endif
