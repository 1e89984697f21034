/*
 * qemu-dm's Xen side, wired in one place: boot devices from the xenstore
 * backend list, the restored state, the ACPI hot-plug controller (and the
 * in-process test guest answering it), the device-model command channel,
 * and where pci-rem's eject request goes (the controller, or a QEMU's own
 * ACPI hot-plug: guest/qemu-hotplug.c).
 */
#ifndef DM_XEN_H
#define DM_XEN_H

#include <stdbool.h>

#include "host-pci.h"
#include "pci.h"
#include "pt-guest.h"
#include "xs-channel.h"

typedef struct DmXenConfig {
    int domid;                  /* -1: no xenstore channel */
    bool test_guest;            /* in-process guest answers hot-plug events */
    const char *save_state;     /* file the `save` command writes */
    const char *restore_state;  /* file loaded at start */
    bool serve_later;           /* the command channel waits for dm_xen_serve */
} DmXenConfig;

typedef struct DmXen DmXen;

/*
 * After the command line's devices: xenstore boot devices, the restored
 * state, the ACPI hot-plug controller and (with test_guest) the guest
 * answering it, then the command channel.  lost is called when xenstored
 * goes away.  NULL with err set on failure (everything undone).
 */
DmXen *dm_xen_start(const DmXenConfig *cfg, HostPci *host, PtGuest *guest, PciBus *bus,
                    void (*lost)(void *opaque), void *opaque, PtError *err);
/* Serve the command channel and say running (with serve_later: once the
 * guest can be served, e.g. the ioreq server claims its slots). */
int dm_xen_serve(DmXen *x, PtError *err);
/* Before pt_guest_free. */
void dm_xen_stop(DmXen *x);
/* The ACPI hot-plug controller, for a front-end that delivers the guest's
 * port accesses (the Xen ioreq server). */
struct Php;
struct Php *dm_xen_php(DmXen *x);

/*
 * How pci-rem asks the guest to eject a slot: 0 when asked (the answer
 * comes through dm_xen_slot_ejected), negative when the guest cannot be
 * asked (the slot is detached at once).  The default is the ACPI hot-plug
 * controller; a front-end with hot-plug of its own (QEMU's) installs its
 * ejector; fn NULL restores the controller.
 */
typedef int (*DmEjectFn)(void *opaque, unsigned vslot);
void dm_xen_set_ejector(DmXen *x, DmEjectFn fn, void *opaque);
/* The guest's answer: failure NULL, it ejected vslot (detached, pci-removed);
 * else it refused or did not answer (pci-remove-failed with failure,
 * nothing detached). */
void dm_xen_slot_ejected(DmXen *x, unsigned vslot, const char *failure);

#endif
