/*
 * Hot-plug on a real Xen guest through its own QEMU.  See xen-hotplug.h.
 */
#include "xen-hotplug.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>

#include "dm-log.h"
#include "qmp.h"

#define WHO "xen-hotplug"
/* No side effects: its BARs are never enabled, since the guest's config
 * writes to the slot reach qemu-dm, not the guest's QEMU. */
#define STAND_IN "pci-testdev"

struct XenHotplug {
    PtGuest *guest;
    Qmp *qmp;
    QemuHotplug *hp;
};

static int plug_stand_in(void *opaque, QemuHotplug *hp, unsigned slot, char *why, size_t len)
{
    char id[16];
    (void)opaque, (void)why, (void)len;

    qemu_hotplug_dev_id(id, sizeof(id), PT_DEVFN(slot, 0));
    g_autofree char *opts = g_strdup_printf(STAND_IN ",id=%s,addr=%02x.0", id, slot);
    qemu_hotplug_add(hp, slot, PT_DEVFN(slot, 0), opts, -1, true);
    return 1;
}

static void released(void *opaque, unsigned slot, const char *how)
{
    (void)opaque;
    if (how)
        dm_log(WHO, "slot %02x: %s", slot, how);
}

static const QemuHotplugOps xen_hotplug_ops = { .plug = plug_stand_in, .released = released };

static void on_event(void *opaque, const char *event, const char *line)
{
    qemu_hotplug_event(((XenHotplug *)opaque)->hp, event, line);
}

/* The guest's QEMU is gone (so is the guest, or it is going). */
static void on_closed(void *opaque)
{
    XenHotplug *xh = opaque;
    dm_log(WHO, "the guest's QEMU closed its QMP socket: slots are no longer announced");
    qemu_hotplug_gone(xh->hp);
}

XenHotplug *xen_hotplug_start(const char *qmp_path, PtGuest *guest, char *why, size_t len)
{
    XenHotplug *xh = g_new0(XenHotplug, 1);

    xh->guest = guest;
    xh->hp = qemu_hotplug_new(WHO, guest, &xen_hotplug_ops, xh);
    xh->qmp = qmp_connect(qmp_path, on_event, on_closed, xh, why, len);
    if (!xh->qmp) {
        qemu_hotplug_free(xh->hp);
        g_free(xh);
        return NULL;
    }
    qemu_hotplug_set_qmp(xh->hp, xh->qmp);
    dm_log(WHO, "announcing slots through the guest's QEMU at %s", qmp_path);
    qemu_hotplug_plug_present(xh->hp);
    pt_guest_set_slot_observer(guest, qemu_hotplug_slot_changed, xh->hp);
    return xh;
}

int xen_hotplug_request_eject(XenHotplug *xh, unsigned vslot, QemuHotplugEjectFn done,
                              void *opaque)
{
    return qemu_hotplug_request_eject(xh->hp, vslot, done, opaque);
}

void xen_hotplug_free(XenHotplug *xh)
{
    if (!xh)
        return;
    pt_guest_set_slot_observer(xh->guest, NULL, xh->hp);
    qmp_free(xh->qmp);
    qemu_hotplug_free(xh->hp);
    g_free(xh);
}
