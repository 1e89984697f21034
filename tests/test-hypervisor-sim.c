/* The sim hypervisor: log format, invariants, leak checks, fault injection. */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include "hypervisor-sim.h"
#include "pt-place.h"

static const PtBdf dev_a = { 0, 3, 0, 0 };
static const PtBdf dev_b = { 0, 3, 0, 1 };

static Hypervisor *sim(void)
{
    Hypervisor *hv = hypervisor_sim_new();
    g_assert_true(hypervisor_is_sim(hv));
    return hv;
}

static void assert_log(Hypervisor *hv, size_t from, const char *expect)
{
    char *text = hypervisor_sim_log_text(hv, from);
    g_assert_cmpstr(text, ==, expect);
    g_free(text);
}

static void test_log_lines(void)
{
    Hypervisor *hv = sim();
    int pirq = 0;
    HvMsi msi = { .vector = 0x31, .dest = 2, .delivery_mode = 1, .flags = HV_MSI_DEST_LOGICAL };

    g_assert_cmpint(hv_test_device(hv, dev_a), ==, 0);
    g_assert_cmpint(hv_assign_device(hv, dev_a, PT_DEVFN(5, 0)), ==, 0);
    g_assert_cmpint(hv_map_mmio(hv, 0xf0000, 0xfe000, 4), ==, 0);
    g_assert_cmpint(hv_map_ioport(hv, 0xc000, 0xe000, 32), ==, 0);
    g_assert_cmpint(hv_map_pirq(hv, 16, &pirq), ==, 0);
    g_assert_cmpint(pirq, ==, 16);
    g_assert_cmpint(hv_bind_intx(hv, pirq, PT_DEVFN(5, 0), 0), ==, 0);
    pirq = -1;                                  /* any: the sim picks */
    g_assert_cmpint(hv_map_pirq_msi(hv, dev_a, 0, 0, &pirq), ==, 0);
    g_assert_cmpint(hv_bind_msi(hv, pirq, &msi), ==, 0);
    g_assert_cmpint(hv_iomem_permission(hv, 0xfe000, 4, true), ==, 0);

    assert_log(hv, 0,
               "test_device 0000:03:00.0\n"
               "assign_device 0000:03:00.0 devfn=05.0\n"
               "map_mmio gfn=0xf0000 mfn=0xfe000 n=4\n"
               "map_ioport gport=0xc000 mport=0xe000 n=32\n"
               "map_pirq gsi=16 pirq=16\n"
               "bind_intx pirq=16 devfn=05.0 intx=A\n"
               "map_pirq_msi 0000:03:00.0 entry=0 table=0x0 pirq=256\n"
               "bind_msi pirq=256 vector=0x31 dest=0x2 mode=1 flags=0x1 table=0x0\n"
               "iomem_permission start=0xfe000 n=4 allow=1\n");

    /* The structured record carries the same facts. */
    const HvCall *c = hypervisor_sim_log_at(hv, 2);
    g_assert_cmpint(c->op, ==, HV_OP_MAP_MMIO);
    g_assert_cmpuint(c->guest, ==, 0xf0000);
    g_assert_cmpuint(c->machine, ==, 0xfe000);
    g_assert_cmpuint(c->count, ==, 4);
    g_assert_cmpint(c->rc, ==, 0);
    g_assert_cmpstr(hypervisor_sim_log_line(hv, 2), ==, "map_mmio gfn=0xf0000 mfn=0xfe000 n=4");
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_calls(hv), ==, 9);
    hypervisor_free(hv);
}

static void test_mmio_overlap(void)
{
    Hypervisor *hv = sim();
    g_assert_cmpint(hv_map_mmio(hv, 0x100, 0x900, 4), ==, 0);
    /* Any shared guest frame is refused, whatever the host side. */
    g_assert_cmpint(hv_map_mmio(hv, 0x103, 0xa00, 1), ==, -EEXIST);
    g_assert_cmpint(hv_map_mmio(hv, 0xff, 0xa00, 2), ==, -EEXIST);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 2);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 1);
    /* Adjacent is fine. */
    g_assert_cmpint(hv_map_mmio(hv, 0x104, 0xa00, 1), ==, 0);
    g_assert_cmpint(hv_map_mmio(hv, 0xff, 0xa00, 1), ==, 0);
    /* I/O space is separate: the same numbers do not collide. */
    g_assert_cmpint(hv_map_ioport(hv, 0x100, 0x100, 4), ==, 0);
    g_assert_cmpint(hv_map_ioport(hv, 0x102, 0x200, 4), ==, -EEXIST);
    g_assert_cmpint(hv_map_ioport(hv, 0xfff0, 0x200, 0x20), ==, -EINVAL);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 3);
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(hv), ==, 1);

    uint64_t mfn;
    g_assert_true(hypervisor_sim_mmio_lookup(hv, 0x102, &mfn));
    g_assert_cmpuint(mfn, ==, 0x902);
    g_assert_false(hypervisor_sim_mmio_lookup(hv, 0x105, &mfn));
    hypervisor_free(hv);
}

static void test_unmap_exact(void)
{
    Hypervisor *hv = sim();
    g_assert_cmpint(hv_map_mmio(hv, 0x100, 0x900, 4), ==, 0);
    /* Partial, shifted or wrong-host unmaps are violations and change nothing. */
    g_assert_cmpint(hv_unmap_mmio(hv, 0x100, 0x900, 2), ==, -ENOENT);
    g_assert_cmpint(hv_unmap_mmio(hv, 0x101, 0x901, 3), ==, -ENOENT);
    g_assert_cmpint(hv_unmap_mmio(hv, 0x100, 0x800, 4), ==, -ENOENT);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 1);
    g_assert_cmpint(hv_unmap_mmio(hv, 0x100, 0x900, 4), ==, 0);
    g_assert_cmpint(hv_unmap_mmio(hv, 0x100, 0x900, 4), ==, -ENOENT);
    g_assert_cmpint(hv_unmap_ioport(hv, 0xc000, 0xc000, 8), ==, -ENOENT);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 5);
    g_assert_nonnull(strstr(hypervisor_sim_error_at(hv, 0), "matches no live mapping"));
    hypervisor_free(hv);
}

static void test_assign(void)
{
    Hypervisor *hv = sim();
    g_assert_cmpint(hv_assign_device(hv, dev_a, PT_DEVFN(5, 0)), ==, 0);
    g_assert_cmpint(hv_test_device(hv, dev_a), ==, -EBUSY);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 0);   /* asking is no violation */
    g_assert_cmpint(hv_assign_device(hv, dev_a, PT_DEVFN(6, 0)), ==, -EBUSY);
    g_assert_cmpint(hv_assign_device(hv, dev_b, PT_DEVFN(5, 0)), ==, -EEXIST);
    g_assert_cmpint(hv_assign_device(hv, dev_b, PT_DEVFN(5, 1)), ==, 0);
    g_assert_cmpuint(hypervisor_sim_assigned(hv), ==, 2);
    g_assert_cmpint(hv_deassign_device(hv, dev_a, PT_DEVFN(5, 1)), ==, -ENOENT);
    g_assert_cmpint(hv_deassign_device(hv, dev_a, PT_DEVFN(5, 0)), ==, 0);
    g_assert_cmpint(hv_deassign_device(hv, dev_b, PT_DEVFN(5, 1)), ==, 0);
    g_assert_cmpuint(hypervisor_sim_assigned(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 3);
    hypervisor_free(hv);
}

static void test_intx_pirq(void)
{
    Hypervisor *hv = sim();
    int pirq, again;
    g_assert_cmpint(hv_bind_intx(hv, 16, PT_DEVFN(5, 0), 0), ==, -ENOENT);
    g_assert_cmpint(hv_map_pirq(hv, 16, &pirq), ==, 0);
    g_assert_cmpint(hv_bind_intx(hv, pirq, PT_DEVFN(5, 0), 0), ==, 0);
    g_assert_cmpint(hv_bind_intx(hv, pirq, PT_DEVFN(5, 0), 0), ==, -EEXIST);
    g_assert_cmpint(hv_bind_intx(hv, pirq, PT_DEVFN(5, 1), 4), ==, -EINVAL);
    /* Two functions sharing a host GSI: one pirq, mapped twice, bound twice. */
    g_assert_cmpint(hv_map_pirq(hv, 16, &again), ==, 0);
    g_assert_cmpint(again, ==, pirq);
    g_assert_cmpint(hv_bind_intx(hv, pirq, PT_DEVFN(5, 1), 1), ==, 0);
    g_assert_cmpuint(hypervisor_sim_pirqs(hv), ==, 1);
    g_assert_cmpuint(hypervisor_sim_bindings(hv), ==, 2);

    g_assert_cmpint(hv_unbind_intx(hv, pirq, PT_DEVFN(5, 1), 1), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, pirq), ==, 0);          /* one reference left */
    g_assert_cmpint(hv_unmap_pirq(hv, pirq), ==, -EBUSY);     /* still bound */
    g_assert_cmpint(hv_unbind_intx(hv, pirq, PT_DEVFN(5, 0), 1), ==, -ENOENT);
    g_assert_cmpint(hv_unbind_intx(hv, pirq, PT_DEVFN(5, 0), 0), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, pirq), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, pirq), ==, -ENOENT);
    g_assert_cmpuint(hypervisor_sim_pirqs(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_bindings(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 6);
    hypervisor_free(hv);
}

static void test_msi_pirq(void)
{
    Hypervisor *hv = sim();
    HvMsi msi = { .vector = 0x40 }, moved = { .vector = 0x41, .dest = 1 };
    int p0 = -1, p1 = -1, gsi_pirq;
    g_assert_cmpint(hv_map_pirq_msi(hv, dev_a, 0, 0xfe001000, &p0), ==, 0);
    g_assert_cmpint(hv_map_pirq_msi(hv, dev_a, 1, 0xfe001000, &p1), ==, 0);
    g_assert_cmpint(p0, !=, p1);
    g_assert_cmpint(hv_map_pirq(hv, 20, &gsi_pirq), ==, 0);
    g_assert_cmpint(hv_bind_msi(hv, gsi_pirq, &msi), ==, -ENOENT);   /* not an MSI pirq */
    g_assert_cmpint(hv_bind_intx(hv, p0, PT_DEVFN(5, 0), 0), ==, -ENOENT);
    g_assert_cmpint(hv_update_msi(hv, p0, &moved), ==, -ENOENT);      /* not bound yet */
    g_assert_cmpint(hv_bind_msi(hv, p0, &msi), ==, 0);
    g_assert_cmpint(hv_bind_msi(hv, p0, &msi), ==, -EEXIST);          /* bound once */
    g_assert_cmpint(hv_update_msi(hv, p0, &moved), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, p0), ==, -EBUSY);
    g_assert_cmpint(hv_unbind_msi(hv, p1, &msi), ==, -ENOENT);
    g_assert_cmpint(hv_unbind_msi(hv, p0, &moved), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, p0), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, p1), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, gsi_pirq), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 6);
    g_assert_cmpuint(hypervisor_sim_pirqs(hv), ==, 0);
    hypervisor_free(hv);
}

/* msitranslate: only an MSI pirq, bound once, and never as MSI too (Xen: EBUSY). */
static void test_msi_as_intx(void)
{
    Hypervisor *hv = sim();
    HvMsi msi = { .vector = 0x40 };
    int p0 = -1, gsi_pirq;
    g_assert_cmpint(hv_map_pirq(hv, 20, &gsi_pirq), ==, 0);
    g_assert_cmpint(hv_map_pirq_msi(hv, dev_a, 0, 0, &p0), ==, 0);
    g_assert_cmpint(hv_bind_msi_intx(hv, gsi_pirq, PT_DEVFN(5, 0), 0), ==, -ENOENT);
    g_assert_cmpint(hv_bind_msi_intx(hv, p0, PT_DEVFN(5, 0), 4), ==, -EINVAL);
    g_assert_cmpint(hv_bind_msi_intx(hv, p0, PT_DEVFN(5, 0), 1), ==, 0);
    g_assert_cmpint(hv_bind_msi_intx(hv, p0, PT_DEVFN(6, 0), 0), ==, -EBUSY);
    g_assert_cmpint(hv_bind_msi(hv, p0, &msi), ==, -EBUSY);
    g_assert_cmpint(hv_unbind_intx(hv, p0, PT_DEVFN(5, 0), 1), ==, -ENOENT);   /* not a GSI's */
    g_assert_cmpint(hv_unmap_pirq(hv, p0), ==, -EBUSY);
    g_assert_cmpuint(hypervisor_sim_bindings(hv), ==, 1);
    g_assert_cmpint(hv_unbind_msi_intx(hv, p0, PT_DEVFN(5, 0), 1), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, p0), ==, 0);
    g_assert_cmpint(hv_unmap_pirq(hv, gsi_pirq), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 6);
    g_assert_true(hv_msix_all_writes(hv));          /* the sim plays the contract */
    hypervisor_sim_set_msix_all_writes(hv, false);
    g_assert_false(hv_msix_all_writes(hv));
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);   /* the errors */
    hypervisor_free(hv);
}

static void test_permissions(void)
{
    Hypervisor *hv = sim();
    g_assert_cmpint(hv_iomem_permission(hv, 0xfe000, 4, true), ==, 0);
    g_assert_cmpint(hv_iomem_permission(hv, 0xfe000, 4, true), ==, 0);   /* idempotent */
    g_assert_cmpint(hv_ioport_permission(hv, 0xe000, 32, true), ==, 0);
    g_assert_cmpint(hv_irq_permission(hv, 16, true), ==, 0);
    g_assert_cmpuint(hypervisor_sim_permissions(hv), ==, 3);
    /* Kinds are separate: an ioport revoke does not match an iomem grant. */
    g_assert_cmpint(hv_ioport_permission(hv, 0xfe000, 4, false), ==, -ENOENT);
    g_assert_cmpint(hv_iomem_permission(hv, 0xfe000, 4, false), ==, 0);
    g_assert_cmpint(hv_ioport_permission(hv, 0xe000, 32, false), ==, 0);
    g_assert_cmpint(hv_irq_permission(hv, 16, false), ==, 0);
    g_assert_cmpuint(hypervisor_sim_permissions(hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 1);
    hypervisor_free(hv);
}

static void test_check_clean(void)
{
    Hypervisor *hv = sim();
    int pirq;
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, 0);

    /* Each kind of leftover alone makes the sim unclean. */
    g_assert_cmpint(hv_map_mmio(hv, 0x100, 0x900, 1), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    g_assert_cmpint(hv_unmap_mmio(hv, 0x100, 0x900, 1), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, 0);

    g_assert_cmpint(hv_map_ioport(hv, 0xc000, 0xc000, 8), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    g_assert_cmpint(hv_unmap_ioport(hv, 0xc000, 0xc000, 8), ==, 0);

    g_assert_cmpint(hv_map_pirq(hv, 17, &pirq), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    g_assert_cmpint(hv_unmap_pirq(hv, pirq), ==, 0);

    g_assert_cmpint(hv_assign_device(hv, dev_a, PT_DEVFN(4, 0)), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    g_assert_cmpint(hv_deassign_device(hv, dev_a, PT_DEVFN(4, 0)), ==, 0);

    g_assert_cmpint(hv_irq_permission(hv, 17, true), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    g_assert_cmpint(hv_irq_permission(hv, 17, false), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, 0);

    /* A violation, even with nothing live, is not clean. */
    g_assert_cmpint(hv_unmap_pirq(hv, 99), ==, -ENOENT);
    g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, -EBUSY);
    hypervisor_free(hv);
}

static void test_fault_injection(void)
{
    Hypervisor *hv = sim();
    g_assert_cmpint(hv_map_mmio(hv, 0x100, 0x900, 1), ==, 0);   /* before arming */
    hypervisor_sim_fail_call(hv, 3, EIO);
    g_assert_cmpint(hv_map_mmio(hv, 0x200, 0x900, 1), ==, 0);
    g_assert_cmpint(hv_map_mmio(hv, 0x300, 0x900, 1), ==, 0);
    g_assert_false(hypervisor_sim_fault_fired(hv));
    g_assert_cmpint(hv_map_mmio(hv, 0x400, 0x900, 1), ==, -EIO);
    g_assert_true(hypervisor_sim_fault_fired(hv));
    /* Nothing changed and it fires once. */
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 3);
    g_assert_cmpint(hv_map_mmio(hv, 0x400, 0x900, 1), ==, 0);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(hv), ==, 4);
    const HvCall *c = hypervisor_sim_log_at(hv, 3);
    g_assert_true(c->injected);
    g_assert_cmpint(c->rc, ==, -EIO);
    g_assert_nonnull(strstr(hypervisor_sim_log_line(hv, 3), "[injected]"));
    /* An injected failure is the test's doing, not a violation. */
    g_assert_cmpuint(hypervisor_sim_error_count(hv), ==, 0);

    /* Any op counts; a failed map_pirq reports no pirq. */
    int pirq = -1;
    hypervisor_sim_fail_call(hv, 1, ENOSPC);
    g_assert_cmpint(hv_map_pirq(hv, 16, &pirq), ==, -ENOSPC);
    g_assert_cmpint(pirq, ==, -1);
    g_assert_cmpuint(hypervisor_sim_pirqs(hv), ==, 0);
    g_assert_cmpstr(hypervisor_sim_log_line(hv, 5), ==,
                    "map_pirq gsi=16 -> -28 (No space left on device) [injected]");

    /* k = 0 disarms. */
    hypervisor_sim_fail_call(hv, 1, EIO);
    hypervisor_sim_fail_call(hv, 0, EIO);
    g_assert_cmpint(hv_test_device(hv, dev_a), ==, 0);
    g_assert_false(hypervisor_sim_fault_fired(hv));
    hypervisor_free(hv);
}

/* A walk over k: every prefix of a sequence can fail, and undoing what
 * succeeded always leaves the sim clean: the pattern atomicity tests use. */
static int plug_like(Hypervisor *hv)
{
    int rc, pirq;
    if ((rc = hv_assign_device(hv, dev_a, PT_DEVFN(5, 0))))
        return rc;
    if ((rc = hv_map_mmio(hv, 0xf0000, 0xfe000, 4)))
        goto undo_assign;
    if ((rc = hv_map_pirq(hv, 16, &pirq)))
        goto undo_mmio;
    if ((rc = hv_bind_intx(hv, pirq, PT_DEVFN(5, 0), 0)))
        goto undo_pirq;
    return 0;
undo_pirq:
    hv_unmap_pirq(hv, pirq);
undo_mmio:
    hv_unmap_mmio(hv, 0xf0000, 0xfe000, 4);
undo_assign:
    hv_deassign_device(hv, dev_a, PT_DEVFN(5, 0));
    return rc;
}

static void test_fault_walk(void)
{
    unsigned k;
    for (k = 1;; k++) {
        Hypervisor *hv = sim();
        hypervisor_sim_fail_call(hv, k, EIO);
        int rc = plug_like(hv);
        bool fired = hypervisor_sim_fault_fired(hv);
        if (fired) {
            g_assert_cmpint(rc, ==, -EIO);
            g_assert_cmpint(hypervisor_sim_check_clean(hv), ==, 0);
        }
        hypervisor_free(hv);
        if (!fired)
            break;
    }
    g_assert_cmpuint(k, ==, 5);     /* four calls, each failed once */
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hypervisor-sim/log-lines", test_log_lines);
    g_test_add_func("/hypervisor-sim/mmio-overlap", test_mmio_overlap);
    g_test_add_func("/hypervisor-sim/unmap-exact", test_unmap_exact);
    g_test_add_func("/hypervisor-sim/assign", test_assign);
    g_test_add_func("/hypervisor-sim/intx-pirq", test_intx_pirq);
    g_test_add_func("/hypervisor-sim/msi-pirq", test_msi_pirq);
    g_test_add_func("/hypervisor-sim/msi-as-intx", test_msi_as_intx);
    g_test_add_func("/hypervisor-sim/permissions", test_permissions);
    g_test_add_func("/hypervisor-sim/check-clean", test_check_clean);
    g_test_add_func("/hypervisor-sim/fault-injection", test_fault_injection);
    g_test_add_func("/hypervisor-sim/fault-walk", test_fault_walk);
    return g_test_run();
}
