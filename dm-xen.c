/*
 * qemu-dm's Xen side wired together: the xenstore channel, the ACPI
 * hot-plug controller, the in-process test guest and where an eject
 * request goes.  See dm-xen.h.
 */
#include "dm-xen.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "dm-log.h"
#include "dm-state.h"
#include "php.h"
#include "test-guest.h"

struct DmXen {
    DmXenConfig cfg;
    PtGuest *guest;
    PciBus *bus;
    Php *php;
    XsDm *xs;
    DmEjectFn eject;            /* NULL: the hot-plug controller asks */
    void *eject_opaque;
    void (*lost)(void *opaque);
    void *opaque;
};

static void on_slot(void *opaque, unsigned vslot, bool inserted)
{
    DmXen *x = opaque;

    if (inserted)
        php_slot_inserted(x->php, vslot);
    else
        php_slot_removed(x->php, vslot);
    xs_dm_slot_changed(x->xs, vslot, inserted);
}

static void test_guest_sci(void *opaque)
{
    DmXen *x = opaque;
    PhpGuestEvent ev;
    char view[256];

    if (tg_php_sci(x->php, &ev) < 0)
        return;
    if (ev.event == PHP_EVENT_INSERT) {
        tg_slot_view(x->bus, ev.vslot, view, sizeof(view));
        dm_log("test-guest", "event %d slot %02x (_STA 0x%02x): sees %s", ev.event, ev.vslot,
               ev.present, view);
    } else {
        dm_log("test-guest", "event %d slot %02x (_STA 0x%02x): %s", ev.event, ev.vslot,
               ev.present, ev.ejected ? "ejected" : "nothing to eject");
    }
}

static void php_eject(void *opaque, unsigned vslot)
{
    DmXen *x = opaque;
    PtError e;

    if (pt_guest_detach_slot(x->guest, vslot, &e) < 0)
        dm_log("php", "eject of slot %02x: %s", vslot, e.msg);
}

static const PhpOps dm_php_ops = { .sci = NULL, .eject = php_eject };
static const PhpOps dm_php_ops_guest = { .sci = test_guest_sci, .eject = php_eject };

static int xen_request_eject(void *opaque, unsigned vslot)
{
    DmXen *x = opaque;

    if (x->eject)
        return x->eject(x->eject_opaque, vslot);
    return php_request_eject(x->php, vslot);
}

static int xen_save(void *opaque, PtError *err)
{
    DmXen *x = opaque;

    if (!x->cfg.save_state) {
        pt_error_set(err, "this qemu-dm was started without -save-state FILE");
        return -ENOTSUP;
    }
    return dm_state_save(x->guest, x->bus, x->cfg.save_state, err);
}

static void xen_lost(void *opaque)
{
    DmXen *x = opaque;

    if (x->lost)
        x->lost(x->opaque);
}

static void log_boot_view(DmXen *x)
{
    char view[256];

    for (unsigned s = 0; s < PT_SLOTS; s++)
        if (pci_bus_slot_funcs(x->bus, s) & 1) {
            tg_slot_view(x->bus, s, view, sizeof(view));
            dm_log("test-guest", "boot: slot %02x: sees %s", s, view);
        }
}

DmXen *dm_xen_start(const DmXenConfig *cfg, HostPci *host, PtGuest *guest, PciBus *bus,
                    void (*lost)(void *opaque), void *opaque, PtError *err)
{
    DmXen *x = g_new0(DmXen, 1);
    XsDmHooks hooks = { .request_eject = xen_request_eject, .save = xen_save, .lost = xen_lost,
                        .opaque = x };

    *x = (DmXen){ .cfg = *cfg, .guest = guest, .bus = bus, .lost = lost, .opaque = opaque };
    if (cfg->domid >= 0) {
        if (!(x->xs = xs_dm_open((unsigned)cfg->domid, guest, host, &hooks, err)) ||
            xs_dm_attach_boot_devices(x->xs, err) < 0)
            goto fail;
    }
    if (cfg->restore_state && (dm_state_restore(guest, bus, cfg->restore_state, err) < 0 ||
                               (x->xs && xs_dm_sync_backend(x->xs, err) < 0)))
        goto fail;
    x->php = php_new(bus, cfg->test_guest ? &dm_php_ops_guest : &dm_php_ops, x);
    pt_guest_set_slot_observer(guest, on_slot, x);
    if (cfg->test_guest)
        log_boot_view(x);
    if (!cfg->serve_later && dm_xen_serve(x, err) < 0)
        goto fail;
    return x;
fail:
    dm_xen_stop(x);
    return NULL;
}

int dm_xen_serve(DmXen *x, PtError *err)
{
    return x->xs ? xs_dm_start(x->xs, err) : 0;
}

Php *dm_xen_php(DmXen *x)
{
    return x ? x->php : NULL;
}

void dm_xen_set_ejector(DmXen *x, DmEjectFn fn, void *opaque)
{
    x->eject = fn;
    x->eject_opaque = opaque;
}

void dm_xen_slot_ejected(DmXen *x, unsigned vslot, const char *failure)
{
    PtError e;

    if (failure) {
        xs_dm_eject_failed(x->xs, vslot, failure);
        return;
    }
    /* As the controller's eject: the detach's observer replies pci-removed. */
    if (pt_guest_detach_slot(x->guest, vslot, &e) < 0) {
        dm_log("eject", "slot %02x: %s", vslot, e.msg);
        xs_dm_eject_failed(x->xs, vslot, e.msg);
    }
}

void dm_xen_stop(DmXen *x)
{
    if (!x)
        return;
    pt_guest_set_slot_observer(x->guest, NULL, x);
    xs_dm_close(x->xs);
    php_free(x->php);
    g_free(x);
}
