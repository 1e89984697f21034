/*
 * Hot-plug on a real Xen guest: the guest's own device model (the
 * qemu-xen that libxl started, reached on a QMP socket of its own)
 * announces qemu-dm's slots through its ACPI PCI hot-plug, the one that
 * hvmloader's tables describe, while qemu-dm's ioreq server serves every
 * function's config space.
 *
 * Per slot the guest's QEMU gets one stand-in device at function 0
 * (pci-testdev, id ptSS_0): plugging it raises QEMU's hot-plug SCI, and
 * the guest's eject of the slot unplugs it (DEVICE_DELETED).  The guest
 * never sees the stand-in: Xen sends a BDF's config cycles to the newest
 * ioreq server that claims it, and qemu-dm's is created after the guest's
 * QEMU.  See README.multifunction, "Hot-plug on a real Xen".
 */
#ifndef GUEST_XEN_HOTPLUG_H
#define GUEST_XEN_HOTPLUG_H

#include <stddef.h>

#include "pt-guest.h"
#include "qemu-hotplug.h"

typedef struct XenHotplug XenHotplug;

/* Connect to qmp_path and announce every slot attached now; follows the
 * guest's slot changes from then on.  NULL with why on failure. */
XenHotplug *xen_hotplug_start(const char *qmp_path, PtGuest *guest, char *why, size_t len);
/* Ask the guest to eject a slot: see qemu_hotplug_request_eject. */
int xen_hotplug_request_eject(XenHotplug *xh, unsigned vslot, QemuHotplugEjectFn done,
                              void *opaque);
void xen_hotplug_free(XenHotplug *xh);

#endif
