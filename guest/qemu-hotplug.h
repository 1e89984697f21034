/*
 * Hot-plug through a QEMU's own ACPI PCI hot-plug, driven over QMP: the
 * one path for a guest whose slots QEMU announces and ejects.
 *
 *   slot inserted in qemu-dm  -> ops->plug queues the slot's device_adds
 *                                (function 0 last); QEMU raises the SCI
 *   eject asked (pci-rem ...)  -> device_del of function 0; the guest's _EJ0
 *                                makes QEMU emit DEVICE_DELETED -> answer
 *   guest ejects unasked       -> DEVICE_DELETED -> the slot is detached
 *                                from qemu-dm too
 *
 * What goes into QEMU is the user's business (ops): the QEMU guest plugs
 * one x-pci-proxy-dev per function; on Xen the guest's device model gets
 * one stand-in at function 0 while qemu-dm's ioreq server serves the
 * slot's config space.  Device ids are "ptSS_F".
 */
#ifndef GUEST_QEMU_HOTPLUG_H
#define GUEST_QEMU_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"
#include "pt-guest.h"
#include "qmp.h"

typedef struct QemuHotplug QemuHotplug;

typedef struct QemuHotplugOps {
    /* Queue slot's device_adds with qemu_hotplug_add (function 0 last):
     * the number queued, or -errno with why. */
    int (*plug)(void *opaque, QemuHotplug *hp, unsigned slot, char *why, size_t len);
    /* device_del of slot is going out (optional). */
    void (*unplugging)(void *opaque, unsigned slot);
    /* What plug made for slot is out of QEMU; how says why, for the log
     * (NULL: a refused plug or QEMU's end, already said). */
    void (*released)(void *opaque, unsigned slot, const char *how);
} QemuHotplugOps;

/* who: the log's prefix ("qemu-vm", "xen-hotplug").  qmp may be set later. */
QemuHotplug *qemu_hotplug_new(const char *who, PtGuest *guest, const QemuHotplugOps *ops,
                              void *opaque);
void qemu_hotplug_free(QemuHotplug *hp);
void qemu_hotplug_set_qmp(QemuHotplug *hp, Qmp *qmp);

/* For ops->plug: one device_add (opts "driver,key=value,...", fd sent with
 * a getfd named id first when >= 0); last ends the slot's plug. */
void qemu_hotplug_add(QemuHotplug *hp, unsigned slot, uint8_t devfn, const char *opts, int fd,
                      bool last);
void qemu_hotplug_dev_id(char *buf, size_t len, uint8_t devfn);

/* A slot already in QEMU (its command line). */
void qemu_hotplug_slot_in(QemuHotplug *hp, unsigned slot, int nfuncs);
/* Plug every slot of the guest with a function 0 (what is there at start). */
void qemu_hotplug_plug_present(QemuHotplug *hp);

/* The PtGuest slot observer. */
void qemu_hotplug_slot_changed(void *hp, unsigned vslot, bool inserted);
/* A QMP event line. */
void qemu_hotplug_event(QemuHotplug *hp, const char *event, const char *line);
/* QEMU is gone: every slot is out, pending ejects are answered. */
void qemu_hotplug_gone(QemuHotplug *hp);

/* Functions of slot in plug order: 1..7 first, function 0 last. */
int qemu_hotplug_slot_devfns(PtGuest *guest, unsigned slot, uint8_t out[PT_FUNCS_PER_SLOT]);

typedef void (*QemuHotplugEjectFn)(void *opaque, unsigned vslot, const char *failure);
/*
 * Ask the guest to eject slot vslot (device_del of function 0) without
 * detaching it from qemu-dm.  done follows once: NULL after DEVICE_DELETED
 * (the caller detaches), or why not (the slot stays).  -ENOENT: the guest
 * cannot see the slot; -ENOTCONN: no QMP; -EBUSY: being removed.
 */
int qemu_hotplug_request_eject(QemuHotplug *hp, unsigned vslot, QemuHotplugEjectFn done,
                               void *opaque);

#endif
