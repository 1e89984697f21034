/*
 * The ACPI PCI hot-plug controller (hw/php.c) through the guest's ports:
 * one insert event per slot after function 0, the per-devfn nibbles with
 * odd functions in the high nibble, eject of any function powering off the
 * whole slot.  The test plays hvmloader's AML.
 */
#include <errno.h>
#include <glib.h>

#include "hypervisor-sim.h"
#include "php.h"
#include "rig.h"
#include "test-guest.h"

#define ASUS "asus-p6t6-x58-ich10-gt218.lspci"

typedef struct Fx {
    Rig rig;
    Php *php;
    unsigned scis;
    uint8_t funcs_at_sci;       /* slot population when the SCI was raised */
    int ejected_slot;
    bool defer_eject;           /* leave the detach for later, as xend's round trip does */
    unsigned slot_calls;        /* pt-guest's slot observer calls */
} Fx;

static void on_sci(void *opaque)
{
    Fx *fx = opaque;

    fx->scis++;
    fx->funcs_at_sci = pci_bus_slot_funcs(fx->rig.bus, PT_SLOT(php_ioport_read(fx->php,
                                                                  PHP_IOPORT_PSTB, 1)));
}

static void on_eject(void *opaque, unsigned vslot)
{
    Fx *fx = opaque;
    PtError err;

    fx->ejected_slot = (int)vslot;
    if (fx->defer_eject)
        return;
    g_assert_cmpint(pt_guest_detach_slot(fx->rig.guest, vslot, &err), >, 0);
}

static const PhpOps ops = { .sci = on_sci, .eject = on_eject };

static void on_slot(void *opaque, unsigned vslot, bool inserted)
{
    Fx *fx = opaque;

    fx->slot_calls++;
    if (inserted)
        php_slot_inserted(fx->php, vslot);
    else
        php_slot_removed(fx->php, vslot);
}

static void fx_up(Fx *fx)
{
    *fx = (Fx){ .ejected_slot = -1 };
    rig_up(&fx->rig, ASUS);
    fx->php = php_new(fx->rig.bus, &ops, fx);
    pt_guest_set_slot_observer(fx->rig.guest, on_slot, fx);
}

static void fx_down(Fx *fx)
{
    pt_guest_set_slot_observer(fx->rig.guest, NULL, fx);
    php_free(fx->php);
    rig_down(&fx->rig);
}

/* hvmloader's AML before Xen commit b190af7d3e: odd functions read the
 * low nibble, i.e. their even neighbour's status. */
static uint8_t buggy_sta(Php *php, uint8_t devfn)
{
    return php_ioport_read(php, (uint16_t)(PHP_IOPORT_SLOTS + devfn / 2), 1) & 0xf;
}

static void test_insert_one_event_after_function0(void)
{
    Fx fx;

    fx_up(&fx);
    size_t from = hypervisor_sim_log_len(fx.rig.hv);
    rig_attach(&fx.rig, "0000:00:1d.0-2@7");
    g_assert_cmpuint(fx.scis, ==, 1);
    g_assert_cmpuint(php_events(fx.php), ==, 1);
    g_assert_cmphex(fx.funcs_at_sci, ==, 0x07);        /* everything there first */
    /* Function 0 assigned last. */
    PtBdf last = { 0 };
    for (size_t i = from; i < hypervisor_sim_log_len(fx.rig.hv); i++) {
        const HvCall *c = hypervisor_sim_log_at(fx.rig.hv, i);
        if (c->op == HV_OP_ASSIGN_DEVICE)
            last = c->host;
    }
    g_assert_cmpuint(last.func, ==, 0);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTA, 1), ==, PHP_EVENT_INSERT);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTB, 1), ==, 0x38);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_SLOTS + 0x1c, 1), ==, 0xff);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_SLOTS + 0x1d, 1), ==, 0x0f);
    /* The guest's view of the event. */
    PhpGuestEvent ev;
    g_assert_cmpint(tg_php_sci(fx.php, &ev), ==, 0);
    g_assert_cmpint(ev.event, ==, PHP_EVENT_INSERT);
    g_assert_cmpuint(ev.vslot, ==, 7);
    g_assert_cmphex(ev.present, ==, 0x07);
    g_assert_false(ev.ejected);
    TgScan *scan = g_new0(TgScan, 1);
    tg_scan(fx.rig.bus, false, scan);
    g_assert_cmphex(tg_slot_funcs(scan, 7), ==, 0x07);
    g_free(scan);
    fx_down(&fx);
}

static void test_odd_functions_status(void)
{
    Fx fx;

    fx_up(&fx);
    rig_attach(&fx.rig, "0000:00:1d.*@7");     /* functions 0,1,2,7 */
    static const struct { uint8_t devfn; uint8_t sta; } want[] = {
        { 0x38, 0xf }, { 0x39, 0xf }, { 0x3a, 0xf }, { 0x3b, 0 },
        { 0x3c, 0 }, { 0x3d, 0 }, { 0x3e, 0 }, { 0x3f, 0xf },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
        g_assert_cmphex(tg_php_sta(fx.php, want[i].devfn), ==, want[i].sta);
    /* The historical AML would have called 07.7 absent and 07.3 present. */
    g_assert_cmphex(buggy_sta(fx.php, 0x3f), ==, 0);
    g_assert_cmphex(buggy_sta(fx.php, 0x3b), ==, 0xf);
    fx_down(&fx);
}

static void test_eject_through_odd_function_takes_the_slot(void)
{
    Fx fx;

    fx_up(&fx);
    rig_attach(&fx.rig, "0000:00:1d.0-2@7");
    g_assert_cmpint(php_request_eject(fx.php, 7), ==, 0);
    g_assert_cmpuint(fx.scis, ==, 2);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTA, 1), ==, PHP_EVENT_REMOVE);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTB, 1), ==, 0x38);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 3);      /* nothing until the guest acts */
    /* _EJ0 of 07.1 (odd: 0x10 in 07.0/07.1's byte). */
    php_ioport_write(fx.php, PHP_IOPORT_SLOTS + 0x1c, PHP_EJECT_ODD, 1);
    g_assert_cmpint(fx.ejected_slot, ==, 7);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    g_assert_cmphex(pci_bus_slot_funcs(fx.rig.bus, 7), ==, 0);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_SLOTS + 0x1c, 2), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
    /* A second eject finds nothing and changes nothing. */
    fx.ejected_slot = -1;
    php_ioport_write(fx.php, PHP_IOPORT_SLOTS + 0x1c, PHP_EJECT_EVEN, 1);
    g_assert_cmpint(fx.ejected_slot, ==, -1);
    fx_down(&fx);
}

/* The guest reads every function of the slot absent as soon as it ejects
 * one, before the device model has detached anything. */
static void test_eject_clears_every_function_of_the_slot(void)
{
    Fx fx;
    PtError err;

    fx_up(&fx);
    fx.defer_eject = true;
    rig_attach(&fx.rig, "0000:00:1d.*@7");     /* functions 0,1,2,7 */
    g_assert_cmpint(php_request_eject(fx.php, 7), ==, 0);
    /* _EJ0 of 07.2 (even: 0x01 in 07.2/07.3's byte). */
    php_ioport_write(fx.php, PHP_IOPORT_SLOTS + 0x1d, PHP_EJECT_EVEN, 1);
    g_assert_cmpint(fx.ejected_slot, ==, 7);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 4);      /* nothing detached yet */
    for (unsigned f = 0; f < PT_FUNCS_PER_SLOT; f++)
        g_assert_cmphex(tg_php_sta(fx.php, PT_DEVFN(7, f)), ==, 0);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_SLOTS + 0x1c, 4), ==, 0);
    g_assert_cmpint(pt_guest_detach_slot(fx.rig.guest, 7, &err), ==, 4);
    fx_down(&fx);
}

/* A function 1 inserted alone (xend asks function by function) is no
 * event: neither pt-guest's observers hear of the slot, nor does the
 * controller raise one when told of it, until function 0 comes. */
static void test_no_event_for_a_slot_without_function0(void)
{
    Fx fx;
    PtWire w;
    PtError err;

    fx_up(&fx);
    g_assert_cmpint(pt_wire_parse("0000:00:1d.1@39", &w, &err), ==, 0);
    PtRequest req = { .domain = 0, .bus = 0, .dev = 0x1d, .nfuncs = 1, .pfunc = { 1 },
                      .vfunc = { 1 }, .vslot = 7, .opts = w.opts };
    if (pt_guest_attach_request(fx.rig.guest, &req, "1d.1", true, NULL, &err) < 0)
        g_error("attach 1d.1: %s", err.msg);
    g_assert_cmphex(pci_bus_slot_funcs(fx.rig.bus, 7), ==, 0x02);
    g_assert_cmpuint(fx.slot_calls, ==, 0);
    /* Told anyway (an observer without pt-guest's guard): still nothing. */
    php_slot_inserted(fx.php, 7);
    g_assert_cmpuint(fx.scis, ==, 0);
    g_assert_cmpuint(php_events(fx.php), ==, 0);
    g_assert_cmphex(tg_php_sta(fx.php, PT_DEVFN(7, 1)), ==, 0);

    req.pfunc[0] = 0;
    req.vfunc[0] = 0;
    if (pt_guest_attach_request(fx.rig.guest, &req, "1d.0", true, NULL, &err) < 0)
        g_error("attach 1d.0: %s", err.msg);
    g_assert_cmpuint(fx.slot_calls, ==, 1);
    g_assert_cmpuint(fx.scis, ==, 1);
    g_assert_cmphex(fx.funcs_at_sci, ==, 0x03);
    g_assert_cmphex(tg_php_sta(fx.php, PT_DEVFN(7, 1)), ==, PHP_STA_PRESENT);
    fx_down(&fx);
}

static void test_guest_side_ejects_once(void)
{
    Fx fx;
    PhpGuestEvent ev;

    fx_up(&fx);
    rig_attach(&fx.rig, "0000:00:1d.1,2@9");
    g_assert_cmpint(php_request_eject(fx.php, 9), ==, 0);
    g_assert_cmpint(tg_php_sci(fx.php, &ev), ==, 0);
    g_assert_cmpint(ev.event, ==, PHP_EVENT_REMOVE);
    g_assert_cmpuint(ev.vslot, ==, 9);
    g_assert_cmphex(ev.present, ==, 0x05);     /* 1d.1 moved to 09.0, 1d.2 at 09.2 */
    g_assert_true(ev.ejected);
    g_assert_cmpint(fx.ejected_slot, ==, 9);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    fx_down(&fx);
}

static void test_refusals(void)
{
    Fx fx;

    fx_up(&fx);
    g_assert_cmpint(php_request_eject(fx.php, 7), ==, -ENOENT);      /* empty */
    g_assert_cmpint(php_request_eject(fx.php, 40), ==, -ENOENT);
    g_assert_cmpuint(fx.scis, ==, 0);
    /* PSTA/PSTB are read-only; bytes past the block read all ones. */
    php_ioport_write(fx.php, PHP_IOPORT_PSTA, 0x0303, 2);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTA, 2), ==, 0);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_END - 2, 4), ==, 0xffff0000);
    g_assert_cmphex(php_ioport_read(fx.php, PHP_IOPORT_PSTA, 3), ==, 0xffffffff);
    g_assert_true(php_claims_ioport(0x10c0));
    g_assert_true(php_claims_ioport(PHP_IOPORT_END - 1));
    g_assert_false(php_claims_ioport(PHP_IOPORT_END));
    g_assert_false(php_claims_ioport(0xcf8));
    fx_down(&fx);
}

/* Slots populated before the controller exists are present, silently. */
static void test_boot_devices_present_without_event(void)
{
    Rig rig;

    rig_up(&rig, ASUS);
    rig_attach(&rig, "0000:06:00.*@5");
    Php *php = php_new(rig.bus, NULL, NULL);
    g_assert_cmphex(tg_php_sta(php, 0x28), ==, 0xf);
    g_assert_cmphex(tg_php_sta(php, 0x29), ==, 0xf);
    g_assert_cmphex(tg_php_sta(php, 0x2a), ==, 0);
    g_assert_cmpuint(php_events(php), ==, 0);
    php_free(php);
    rig_down(&rig);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/php/insert-one-event-after-function0", test_insert_one_event_after_function0);
    g_test_add_func("/php/odd-functions-status", test_odd_functions_status);
    g_test_add_func("/php/eject-through-odd-function-takes-the-slot",
                    test_eject_through_odd_function_takes_the_slot);
    g_test_add_func("/php/eject-clears-every-function-of-the-slot",
                    test_eject_clears_every_function_of_the_slot);
    g_test_add_func("/php/no-event-for-a-slot-without-function0",
                    test_no_event_for_a_slot_without_function0);
    g_test_add_func("/php/guest-side-ejects-once", test_guest_side_ejects_once);
    g_test_add_func("/php/refusals", test_refusals);
    g_test_add_func("/php/boot-devices-present-without-event",
                    test_boot_devices_present_without_event);
    return g_test_run();
}
