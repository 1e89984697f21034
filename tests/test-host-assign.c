/*
 * The host side of a device's life on simulated hosts from real dumps:
 * the simulated kernel's answers to sysfs writes, making functions
 * assignable and giving them back (host-assign, xm pci-assignable-*),
 * resets, and the groups that must not be split between owners.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <pci/pci.h>

#include "host-assign.h"
#include "host-groups.h"
#include "host-pci.h"
#include "guest-image.h"
#include "host-sim.h"
#include "simtree.h"
#include "xs-channel.h"
#include "xenstored.h"

#define ASUS    "asus-p6t6-x58-ich10-gt218.lspci"      /* no drivers in the dump */
#define ICH7M   "gigabyte-ich7m-rootports.lspci"       /* uhci_hcd, ehci_hcd, ... */
#define SAMSUNG "samsung-r730-gt216m.lspci"

static PtBdf bdf(unsigned bus, unsigned dev, unsigned func)
{
    return (PtBdf){ 0, (uint8_t)bus, (uint8_t)dev, (uint8_t)func };
}

typedef struct Fx {
    char *tree;
    char *state;
    char *rundir;
    HostAssign *ha;
} Fx;

static void fx_up(Fx *fx, const char *dump)
{
    PtError err;

    fx->tree = simtree_build(dump, false);
    fx->rundir = g_dir_make_tmp("host-assign-XXXXXX", NULL);
    fx->state = g_build_filename(fx->rundir, "pci-assignable.state", NULL);
    fx->ha = host_assign_open(fx->tree, fx->state, &err);
    g_assert_nonnull(fx->ha);
    g_assert_cmpstr(host_assign_backend(fx->ha), ==, "sim");
}

static void fx_down(Fx *fx)
{
    host_assign_close(fx->ha);
    g_unlink(fx->state);
    g_rmdir(fx->rundir);
    simtree_remove(fx->tree);
    g_free(fx->state);
    g_free(fx->rundir);
}

static char *driver_of(Fx *fx, PtBdf b)
{
    char buf[32];

    g_assert_cmpint(host_assign_driver(fx->ha, b, buf, sizeof(buf)), ==, 0);
    return g_strdup(buf);
}

static char *tree_file(Fx *fx, const char *rel)
{
    g_autofree char *path = g_build_filename(fx->tree, rel, NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return text;
}

static int kwrite(Fx *fx, const char *rel, const char *value, PtError *err)
{
    return host_sim_kernel_write(fx->tree, rel, value, err);
}

/* ================================================================ the simulated kernel */

/* The dump's own drivers match by ID table; stubs only through driver_override. */
static void test_sim_bind_rules(void)
{
    Fx fx;
    PtError err;
    g_autofree char *drv = NULL, *ovr = NULL;

    fx_up(&fx, ICH7M);
    g_autofree char *ovr0 = tree_file(&fx, "devices/0000:00:1d.0/driver_override");
    g_assert_cmpstr(ovr0, ==, "(null)\n");
    /* Bound already: -EBUSY; the wrong driver's unbind: -ENODEV. */
    g_assert_cmpint(kwrite(&fx, "drivers/uhci_hcd/bind", "0000:00:1d.0", &err), ==, -EBUSY);
    g_assert_cmpint(kwrite(&fx, "drivers/ehci_hcd/unbind", "0000:00:1d.0", &err), ==, -ENODEV);
    g_assert_nonnull(strstr(err.msg, "drivers/ehci_hcd/unbind: No such device"));
    g_assert_cmpint(kwrite(&fx, "drivers/uhci_hcd/unbind", "0000:00:1d.0", &err), ==, 0);
    drv = driver_of(&fx, bdf(0, 0x1d, 0));
    g_assert_cmpstr(drv, ==, "");
    /* pci-stub has no ID for it: only an override lets it bind. */
    g_assert_cmpint(kwrite(&fx, "drivers/pci-stub/bind", "0000:00:1d.0", &err), ==, -ENODEV);
    g_assert_cmpint(kwrite(&fx, "devices/0000:00:1d.0/driver_override", "pci-stub\n", &err), ==, 0);
    ovr = tree_file(&fx, "devices/0000:00:1d.0/driver_override");
    g_assert_cmpstr(ovr, ==, "pci-stub\n");
    /* With the override, the own driver no longer matches. */
    g_assert_cmpint(kwrite(&fx, "drivers/uhci_hcd/bind", "0000:00:1d.0", &err), ==, -ENODEV);
    g_assert_cmpint(kwrite(&fx, "drivers_probe", "0000:00:1d.0", &err), ==, 0);
    g_free(drv);
    drv = driver_of(&fx, bdf(0, 0x1d, 0));
    g_assert_cmpstr(drv, ==, "pci-stub");
    g_autofree char *back = g_build_filename(fx.tree, "drivers/pci-stub/0000:00:1d.0", NULL);
    g_assert_true(g_file_test(back, G_FILE_TEST_IS_SYMLINK));
    /* Bad input: no such device, no such attribute file, a bad reset value. */
    g_assert_cmpint(kwrite(&fx, "drivers/pci-stub/bind", "0000:00:1d.9", &err), ==, -ENODEV);
    g_assert_cmpint(kwrite(&fx, "drivers/pci-stub/bind", "junk", &err), ==, -ENODEV);
    g_assert_cmpint(kwrite(&fx, "drivers/nosuch/bind", "0000:00:1d.0", &err), ==, -ENOENT);
    g_assert_cmpint(kwrite(&fx, "devices/0000:00:1d.7/reset", "2", &err), ==, -EINVAL);
    /* UHCI on the ICH7: no FLR, no PM: Linux shows no reset file at all. */
    g_assert_cmpint(kwrite(&fx, "devices/0000:00:1d.0/reset", "1", &err), ==, -ENOENT);
    g_assert_cmpint(kwrite(&fx, "devices/0000:00:1d.0/remove", "1", &err), ==, -ENOENT);
    fx_down(&fx);
}

/* reset_method as Linux probes it from each function's config space. */
static void test_sim_reset_methods(void)
{
    static const struct {
        PtBdf b;
        const char *methods;    /* NULL: no reset_method file */
    } want[] = {
        { { 0, 0x00, 0x1d, 0 }, "af\n" },       /* ICH10 UHCI: Advanced Features FLR */
        { { 0, 0x00, 0x1d, 7 }, "af pm\n" },
        { { 0, 0x00, 0x1b, 0 }, "flr pm\n" },   /* HD audio: PCIe FLR */
        { { 0, 0x06, 0x00, 0 }, NULL },         /* GT218: no FLR, NoSoftRst+, a sibling */
        { { 0, 0x06, 0x00, 1 }, NULL },
        { { 0, 0x07, 0x00, 0 }, "bus\n" },      /* RTL8111 alone below root port 1c.2 */
    };
    Fx fx;

    fx_up(&fx, ASUS);
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        char name[16];
        g_autofree char *rel = g_strdup_printf("devices/%s/reset_method",
                                               pt_bdf_format(want[i].b, name, sizeof(name)));
        g_autofree char *text = tree_file(&fx, rel);
        g_assert_cmpstr(text, ==, want[i].methods);
    }
    fx_down(&fx);
}

/* ================================================================ assignable */

static void test_assign_whole_device(void)
{
    static const char *const native[] = { "uhci_hcd", "uhci_hcd", "uhci_hcd", "uhci_hcd",
                                          NULL, NULL, NULL, "ehci_hcd" };
    Fx fx;
    PtError err;
    HostAssignReport rep;
    char orig[32];

    fx_up(&fx, ICH7M);
    for (int f = 0; f < 8; f++) {
        if (!native[f])
            continue;
        g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, f), "pci-stub", &rep, &err), ==, 0);
        g_assert_cmpstr(rep.was, ==, native[f]);
        g_assert_cmpstr(rep.now, ==, "pci-stub");
        g_assert_true(host_assign_original(fx.ha, bdf(0, 0x1d, f), orig, sizeof(orig)));
        g_assert_cmpstr(orig, ==, native[f]);
    }
    /* libpci (what qemu-dm asks) now calls them assignable. */
    HostPci *host = host_pci_open(fx.tree, &err);
    g_assert_nonnull(host);
    g_assert_true(host_pci_assignable(host, bdf(0, 0x1d, 7)));
    g_assert_false(host_pci_assignable(host, bdf(0, 0x1b, 0)));
    host_pci_close(host);
    /* Twice is harmless and keeps the first record. */
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 0), "pci-stub", &rep, &err), ==, 0);
    g_assert_true(host_assign_original(fx.ha, bdf(0, 0x1d, 0), orig, sizeof(orig)));
    g_assert_cmpstr(orig, ==, "uhci_hcd");
    for (int f = 0; f < 8; f++) {
        g_autofree char *drv = NULL;
        if (!native[f])
            continue;
        g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, f), true, &rep, &err), ==, 0);
        drv = driver_of(&fx, bdf(0, 0x1d, f));
        g_assert_cmpstr(drv, ==, native[f]);
        g_assert_false(host_assign_original(fx.ha, bdf(0, 0x1d, f), orig, sizeof(orig)));
    }
    g_autofree char *ovr = tree_file(&fx, "devices/0000:00:1d.7/driver_override");
    g_assert_cmpstr(ovr, ==, "(null)\n");
    fx_down(&fx);
}

/*
 * A function bound to a stub after qemu-dm opened the host is assignable
 * at once, and one given back is not (an admin's xl pci-assignable-add
 * next to a running qemu-dm; libpci had kept the driver it saw at its scan).
 */
static void test_bound_while_open(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;

    fx_up(&fx, ICH7M);
    HostPci *host = host_pci_open(fx.tree, &err);
    g_assert_nonnull(host);
    g_assert_false(host_pci_assignable(host, bdf(0, 0x1d, 7)));
    g_assert_cmpstr(host_pci_driver(host, bdf(0, 0x1d, 7)), ==, "ehci_hcd");
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 7), "pciback", &rep, &err), ==, 0);
    g_assert_true(host_pci_assignable(host, bdf(0, 0x1d, 7)));
    g_assert_cmpstr(host_pci_driver(host, bdf(0, 0x1d, 7)), ==, "pciback");
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 7), true, &rep, &err), ==, 0);
    g_assert_false(host_pci_assignable(host, bdf(0, 0x1d, 7)));
    host_pci_close(host);
    fx_down(&fx);
}

/* Giving back to a driver that is not loaded any more: refused before the unbind. */
static void test_remove_driver_gone(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    g_autofree char *drv = NULL;

    fx_up(&fx, ICH7M);
    g_autofree char *dir = g_build_filename(fx.tree, "drivers", "ehci_hcd", NULL);
    g_autofree char *gone = g_build_filename(fx.tree, "drivers", "ehci_hcd.unloaded", NULL);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 7), "pci-stub", &rep, &err), ==, 0);
    g_assert_cmpint(g_rename(dir, gone), ==, 0);
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 7), true, &rep, &err), ==, -ENOENT);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.7: its driver ehci_hcd is not loaded (modprobe "
                    "ehci_hcd)");
    drv = driver_of(&fx, bdf(0, 0x1d, 7));
    g_assert_cmpstr(drv, ==, "pci-stub");
    g_assert_cmpint(g_rename(gone, dir), ==, 0);
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 7), true, &rep, &err), ==, 0);
    g_assert_cmpstr(rep.now, ==, "ehci_hcd");
    fx_down(&fx);
}

/* Without -r the function is left without a driver; a device that had none gets none. */
static void test_remove_without_rebind(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    g_autofree char *drv = NULL, *drv2 = NULL;

    fx_up(&fx, ICH7M);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 1), "pciback", &rep, &err), ==, 0);
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 1), false, &rep, &err), ==, 0);
    drv = driver_of(&fx, bdf(0, 0x1d, 1));
    g_assert_cmpstr(drv, ==, "");
    /* A function that is not assignable cannot be removed. */
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 2), true, &rep, &err), ==, -EINVAL);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.2 is not assignable: bound to uhci_hcd");
    drv2 = driver_of(&fx, bdf(0, 0x1d, 2));
    g_assert_cmpstr(drv2, ==, "uhci_hcd");
    fx_down(&fx);
}

/* A driver that is not loaded: its directory is gone from drivers/. */
static int remove_driver_dir(const char *dir)
{
    g_autofree char *bind = g_build_filename(dir, "bind", NULL);
    g_autofree char *unbind = g_build_filename(dir, "unbind", NULL);

    g_unlink(bind);
    g_unlink(unbind);
    return g_rmdir(dir);
}

/* A failed bind leaves the function with its driver and nothing recorded. */
static void test_add_failure_keeps_driver(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    char orig[32];
    g_autofree char *stub = NULL, *drv = NULL;

    fx_up(&fx, ICH7M);
    stub = g_build_filename(fx.tree, "drivers", "vfio-pci", NULL);
    g_assert_cmpint(remove_driver_dir(stub), ==, 0);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 0), "vfio-pci", &rep, &err), ==, -ENOENT);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.0: driver vfio-pci is not loaded (modprobe vfio-pci)");
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 0), "e1000", &rep, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(err.msg, "'e1000' is not a driver that holds a function"));
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 6), "pci-stub", &rep, &err), ==, -ENODEV);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.6: no such host function");
    drv = driver_of(&fx, bdf(0, 0x1d, 0));
    g_assert_cmpstr(drv, ==, "uhci_hcd");
    g_assert_false(host_assign_original(fx.ha, bdf(0, 0x1d, 0), orig, sizeof(orig)));
    fx_down(&fx);
}

/* ================================================================ reset */

static int count_lines(const char *text)
{
    int n = 0;

    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* The reset clears what the device holds (BAR memory), and says how. */
static void test_reset_clears_device(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    g_autofree char *bar = NULL;
    char pattern[64], *back = NULL;
    gsize len;

    fx_up(&fx, ICH7M);
    bar = g_build_filename(fx.tree, "devices/0000:00:1d.7/resource0", NULL);
    memset(pattern, 0xa5, sizeof(pattern));
    FILE *f = fopen(bar, "r+");
    g_assert_nonnull(f);
    g_assert_cmpuint(fwrite(pattern, 1, sizeof(pattern), f), ==, sizeof(pattern));
    fclose(f);
    g_assert_cmpint(host_reset(fx.ha, bdf(0, 0x1d, 7), &rep, &err), ==, 0);
    g_assert_cmpstr(rep.reset, ==, "reset (pm)");
    g_assert_true(g_file_get_contents(bar, &back, &len, NULL));
    g_assert_cmpuint(len, ==, 1024);
    for (gsize i = 0; i < len; i++)
        g_assert_cmpint(back[i], ==, 0);
    g_free(back);
    /* No method: nothing written, the reason said. */
    g_assert_cmpint(host_reset(fx.ha, bdf(0, 0x1d, 0), &rep, &err), ==, -ENOTTY);
    g_assert_nonnull(strstr(rep.reset, "not reset: the kernel offers no reset for it"));
    g_assert_null(tree_file(&fx, "devices/0000:00:1d.0/.sim-resets"));
    fx_down(&fx);
}

/* Reset before a guest first sees it (add) and after it lets it go (remove). */
static void test_reset_on_add_and_remove(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;

    fx_up(&fx, ICH7M);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 7), "pci-stub", &rep, &err), ==, 0);
    g_assert_cmpstr(rep.reset, ==, "reset (pm)");
    g_autofree char *one = tree_file(&fx, "devices/0000:00:1d.7/.sim-resets");
    g_assert_cmpstr(one, ==, "pm\n");
    g_assert_cmpint(host_assign_remove(fx.ha, bdf(0, 0x1d, 7), true, &rep, &err), ==, 0);
    g_autofree char *two = tree_file(&fx, "devices/0000:00:1d.7/.sim-resets");
    g_assert_cmpint(count_lines(two), ==, 2);
    fx_down(&fx);
}

/* ================================================================ groups */

typedef struct Hosts {
    Fx fx;
    HostFacts facts;
    HostGroups groups;
} Hosts;

static void groups_up(Hosts *h, const char *dump)
{
    PtError err;

    fx_up(&h->fx, dump);
    g_assert_cmpint(host_facts_read(h->fx.tree, &h->facts, &err), ==, 0);
    host_groups_compute(&h->facts, &h->groups);
}

static void groups_down(Hosts *h)
{
    host_groups_free(&h->groups);
    host_facts_free(&h->facts);
    fx_down(&h->fx);
}

static bool same(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev && a.func == b.func;
}

static bool has_member(const HostGroup *g, PtBdf b)
{
    for (int i = 0; i < g->n; i++)
        if (same(g->member[i], b))
            return true;
    return false;
}

static const HostGroup *group_with(const Hosts *h, HostGroupKind kind, PtBdf b)
{
    for (int i = 0; i < h->groups.n; i++)
        if (h->groups.g[i].kind == kind && has_member(&h->groups.g[i], b))
            return &h->groups.g[i];
    return NULL;
}

/* Who owns what in a test: a short table. */
typedef struct Owners {
    int n;
    PtBdf bdf[4];
    HostOwner owner[4];
} Owners;

static HostOwner table_owner(PtBdf b, void *ctx)
{
    Owners *o = ctx;

    for (int i = 0; i < o->n; i++)
        if (same(o->bdf[i], b))
            return o->owner[i];
    return (HostOwner){ .domid = HOST_OWNER_NONE };
}

static void collect_warning(const char *msg, void *ctx)
{
    g_strlcpy(ctx, msg, 320);
}

/*
 * One split of a group: refused by default with exactly want, allowed
 * with the relaxing option (want + ": allowed by OPTION=0" as the warning).
 */
static void check_split(const Hosts *h, PtBdf asked, PtBdf other, HostOwner owner,
                        const char *option, const char *want)
{
    Owners o = { 1, { other }, { owner } };
    HostGroupRequest req = { .domid = 3, .n = 1, .funcs = &asked };
    HostGroupOpts opts = host_group_opts_default();
    PtError err;
    char warning[320] = "";

    g_assert_cmpint(host_groups_check(&h->groups, &req, table_owner, &o, NULL, NULL, NULL,
                                      &err), ==, -1);
    g_assert_cmpstr(err.msg, ==, want);
    g_autofree char *relax = g_strdup_printf("%s=0", option);
    g_assert_cmpint(host_group_opts_parse(relax, &opts, &err), ==, 0);
    g_assert_cmpint(host_groups_check(&h->groups, &req, table_owner, &o, &opts,
                                      collect_warning, warning, &err), ==, 0);
    g_autofree char *w = g_strdup_printf("%s: allowed by %s", want, relax);
    g_assert_cmpstr(warning, ==, w);
    /* The same domain, or nobody, owning the other: no split at all. */
    o.owner[0].domid = 3;
    g_assert_cmpint(host_groups_check(&h->groups, &req, table_owner, &o, NULL, NULL, NULL,
                                      &err), ==, 0);
}

static const HostOwner DOMAIN2 = { .domid = 2 };

/* A Xen dom0 has no IOMMU groups (the IOMMU is Xen's): no iommu_group links. */
static void drop_iommu_groups(Fx *fx)
{
    g_autofree char *devices = g_build_filename(fx->tree, "devices", NULL);
    g_autoptr(GDir) d = g_dir_open(devices, 0, NULL);

    for (const char *name; d && (name = g_dir_read_name(d));) {
        g_autofree char *link = g_build_filename(devices, name, "iommu_group", NULL);
        g_assert_cmpint(g_unlink(link), ==, 0);
    }
}

static void test_groups_reset(void)
{
    Hosts h;
    PtError err;

    fx_up(&h.fx, ASUS);
    drop_iommu_groups(&h.fx);
    g_assert_cmpint(host_facts_read(h.fx.tree, &h.facts, &err), ==, 0);
    host_groups_compute(&h.facts, &h.groups);
    g_assert_null(group_with(&h, HOST_GROUP_IOMMU, bdf(6, 0, 0)));
    const HostGroup *g = group_with(&h, HOST_GROUP_RESET, bdf(6, 0, 0));
    g_assert_nonnull(g);
    g_assert_cmpint(g->n, ==, 2);
    g_assert_true(has_member(g, bdf(6, 0, 1)));
    g_assert_cmpstr(g->why, ==, "no FLR; bus reset");
    /* Functions with FLR or a bus of their own share no reset. */
    g_assert_null(group_with(&h, HOST_GROUP_RESET, bdf(0, 0x1d, 0)));
    g_assert_null(group_with(&h, HOST_GROUP_RESET, bdf(7, 0, 0)));
    check_split(&h, bdf(6, 0, 1), bdf(6, 0, 0), DOMAIN2, "strict_reset",
                "0000:06:00.1 shares reset with 0000:06:00.0 (no FLR; bus reset) which is "
                "passed through to domain 2");
    groups_down(&h);
}

static void test_groups_iommu(void)
{
    Hosts h;

    groups_up(&h, ASUS);
    /* ICH10 UHCI 1d.0 and 1d.1: one IOMMU group, nothing else shared. */
    const HostGroup *g = group_with(&h, HOST_GROUP_IOMMU, bdf(0, 0x1d, 1));
    g_assert_nonnull(g);
    g_assert_true(has_member(g, bdf(0, 0x1d, 0)));
    g_assert_false(has_member(g, bdf(6, 0, 0)));
    check_split(&h, bdf(0, 0x1d, 1), bdf(0, 0x1d, 0), DOMAIN2, "strict_iommu",
                "0000:00:1d.1 shares an IOMMU group with 0000:00:1d.0 (IOMMU group 9) which "
                "is passed through to domain 2");
    /* Relaxing the other rules does not relax this one. */
    PtBdf asked = bdf(0, 0x1d, 1);
    Owners o = { 1, { bdf(0, 0x1d, 0) }, { DOMAIN2 } };
    HostGroupRequest req = { .domid = 3, .n = 1, .funcs = &asked };
    HostGroupOpts opts = host_group_opts_default();
    PtError err;
    g_assert_cmpint(host_group_opts_parse("strict_reset=0,strict_intx=0,strict_page=0", &opts,
                                          &err), ==, 0);
    g_assert_cmpint(host_groups_check(&h.groups, &req, table_owner, &o, &opts, NULL, NULL,
                                      &err), ==, -1);
    groups_down(&h);
}

static void test_groups_intx(void)
{
    Hosts h;
    HostOwner dom0 = { .domid = 0, .driver = "nouveau" };

    groups_up(&h, ASUS);
    /* IRQ 11: UHCI 1d.0, EHCI 1d.7 and the GT218, across devices. */
    const HostGroup *g = group_with(&h, HOST_GROUP_INTX, bdf(0, 0x1d, 0));
    g_assert_nonnull(g);
    g_assert_true(has_member(g, bdf(0, 0x1d, 7)));
    g_assert_true(has_member(g, bdf(6, 0, 0)));
    g_assert_cmpstr(g->why, ==, "IRQ 11");
    check_split(&h, bdf(0, 0x1d, 0), bdf(6, 0, 0), DOMAIN2, "strict_intx",
                "0000:00:1d.0 shares an INTx line with 0000:06:00.0 (IRQ 11) which is passed "
                "through to domain 2");
    /* dom0's own driver on the other end is a split too. */
    check_split(&h, bdf(0, 0x1d, 0), bdf(6, 0, 0), dom0, "strict_intx",
                "0000:00:1d.0 shares an INTx line with 0000:06:00.0 (IRQ 11) which is in use "
                "by dom0 (nouveau)");
    groups_down(&h);
}

static void test_groups_page(void)
{
    Hosts h;

    groups_up(&h, SAMSUNG);
    /* The two EHCIs' 1 KiB BARs in page 0xfcb06000, with the SMBus's. */
    const HostGroup *g = group_with(&h, HOST_GROUP_PAGE, bdf(0, 0x1a, 0));
    g_assert_nonnull(g);
    g_assert_true(has_member(g, bdf(0, 0x1d, 0)));
    g_assert_cmpstr(g->why, ==, "page 0xfcb06000");
    check_split(&h, bdf(0, 0x1d, 0), bdf(0, 0x1a, 0), DOMAIN2, "strict_page",
                "0000:00:1d.0 shares a 4 KiB BAR page with 0000:00:1a.0 (page 0xfcb06000) "
                "which is passed through to domain 2");
    groups_down(&h);
}

/* DevCap Phantom Functions = 3 on the GT218: every other function number is its. */
static void set_phantom_bits(Fx *fx, PtBdf b, unsigned bits)
{
    char name[16];
    g_autofree char *path = g_strdup_printf("%s/devices/%s/config", fx->tree,
                                            pt_bdf_format(b, name, sizeof(name)));
    g_autofree uint8_t *cfg = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, (char **)&cfg, &len, NULL));
    unsigned exp = host_cfg_find_cap(cfg, (unsigned)len, PCI_CAP_ID_EXP);
    g_assert_cmpuint(exp, !=, 0);
    cfg[exp + PCI_EXP_DEVCAP] = (uint8_t)((cfg[exp + PCI_EXP_DEVCAP] & ~PCI_EXP_DEVCAP_PHANTOM) |
                                          bits << 3);
    g_assert_true(g_file_set_contents(path, (char *)cfg, (gssize)len, NULL));
}

static void test_groups_phantom(void)
{
    Hosts h;
    PtError err;
    PtBdf both[2] = { bdf(6, 0, 0), bdf(6, 0, 1) };
    HostGroupOpts relaxed = host_group_opts_default();
    Owners nobody = { 0 };
    HostGroupRequest alone = { .domid = 3, .n = 1, .funcs = both };
    HostGroupRequest together = { .domid = 3, .n = 2, .funcs = both };

    fx_up(&h.fx, ASUS);
    set_phantom_bits(&h.fx, bdf(6, 0, 0), 3);
    g_assert_cmpint(host_facts_read(h.fx.tree, &h.facts, &err), ==, 0);
    host_groups_compute(&h.facts, &h.groups);
    g_assert_cmpuint(host_facts_find(&h.facts, bdf(6, 0, 0))->phantom_stride, ==, 1);
    const HostGroup *g = group_with(&h, HOST_GROUP_PHANTOM, bdf(6, 0, 1));
    g_assert_nonnull(g);
    /* Alone: refused even with nobody else owning anything, and no option relaxes it. */
    g_assert_cmpint(host_group_opts_parse("strict_reset=0,strict_iommu=0,strict_intx=0,"
                                          "strict_page=0", &relaxed, &err), ==, 0);
    g_assert_cmpint(host_groups_check(&h.groups, &alone, table_owner, &nobody, &relaxed, NULL,
                                      NULL, &err), ==, -1);
    g_assert_cmpstr(err.msg, ==, "0000:06:00.0 shares a requester ID with 0000:06:00.1 "
                    "(phantom functions of 0000:06:00.0): assign them together or not at all");
    g_assert_cmpint(host_groups_check(&h.groups, &together, table_owner, &nobody, NULL, NULL,
                                      NULL, &err), ==, 0);
    groups_down(&h);
}

static void test_groups_pure_stride(void)
{
    static const uint8_t none[256];

    g_assert_cmpuint(host_cfg_phantom_stride(none, sizeof(none), 0), ==, 0);
    g_assert_cmpuint(host_reset_methods_parse("flr bus newfangled\n"), ==,
                     HOST_RESET_FLR | HOST_RESET_BUS);
    g_assert_null(host_reset_method_first(0));
    g_assert_cmpstr(host_reset_method_first(HOST_RESET_PM | HOST_RESET_BUS), ==, "pm");
}

/* ---- facts kept between requests (host_groups_read) ---- */

static bool same_group(const HostGroup *a, const HostGroup *b)
{
    if (a->kind != b->kind || a->n != b->n || strcmp(a->why, b->why))
        return false;
    for (int m = 0; m < a->n; m++)
        if (!same(a->member[m], b->member[m]))
            return false;
    return true;
}

/* What the check sees from the kept facts is what a fresh read of the tree says. */
static void assert_kept_is_fresh(const char *tree)
{
    HostFacts kept, fresh;
    HostGroups kept_g, fresh_g;
    PtError err;

    g_assert_cmpint(host_groups_read(tree, &kept, &kept_g, &err), ==, 0);
    g_assert_cmpint(host_facts_read(tree, &fresh, &err), ==, 0);
    host_groups_compute(&fresh, &fresh_g);
    g_assert_cmpint(kept.n, ==, fresh.n);
    for (int i = 0; i < kept.n; i++) {
        g_assert_true(same(kept.f[i].bdf, fresh.f[i].bdf));
        g_assert_cmpstr(kept.f[i].driver, ==, fresh.f[i].driver);
        g_assert_cmpint(kept.f[i].bridge, ==, fresh.f[i].bridge);
    }
    g_assert_cmpint(kept_g.n, ==, fresh_g.n);
    for (int i = 0; i < kept_g.n; i++)
        g_assert_true(same_group(&kept_g.g[i], &fresh_g.g[i]));
    host_groups_free(&kept_g);
    host_groups_free(&fresh_g);
    host_facts_free(&kept);
    host_facts_free(&fresh);
}

/* The kept facts of one function, and whether it is in the INTx group of 1d.0. */
static HostFuncFacts kept_fact(const char *tree, PtBdf b, bool *on_1d0_line)
{
    HostFacts facts;
    HostGroups groups;
    PtError err;
    HostFuncFacts f;

    g_assert_cmpint(host_groups_read(tree, &facts, &groups, &err), ==, 0);
    g_assert_nonnull(host_facts_find(&facts, b));
    f = *host_facts_find(&facts, b);
    *on_1d0_line = false;
    for (int i = 0; i < groups.n; i++)
        if (groups.g[i].kind == HOST_GROUP_INTX && has_member(&groups.g[i], bdf(0, 0x1d, 0)))
            *on_1d0_line = has_member(&groups.g[i], b);
    host_groups_free(&groups);
    host_facts_free(&facts);
    return f;
}

static void write_tree_file(const char *tree, const char *rel, const char *text)
{
    g_autofree char *path = g_build_filename(tree, rel, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* The kernel's rescan: the entry goes, and comes back as a new one. */
static void rescan_entry(const char *tree, const char *name, void (*edit)(const char *dir))
{
    g_autofree char *entry = g_build_filename(tree, "devices", name, NULL);
    g_autofree char *away = g_strconcat(entry, ".removed", NULL);
    const char *cp[] = { "cp", "-a", away, entry, NULL };
    int status;

    g_assert_cmpint(g_rename(entry, away), ==, 0);
    assert_kept_is_fresh(tree);
    g_assert_true(g_spawn_sync(NULL, (char **)cp, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, NULL));
    g_assert_cmpint(status, ==, 0);
    edit(entry);
    simtree_remove(g_steal_pointer(&away));
}

static void no_pin(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, "config", NULL);
    g_autofree char *cfg = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &cfg, &len, NULL));
    cfg[PCI_INTERRUPT_PIN] = 0;
    g_assert_true(g_file_set_contents(path, cfg, (gssize)len, NULL));
}

/*
 * Between two requests a host changes where a running system changes it:
 * a rebind, a dom0 driver turning INTx off (MSI), an IRQ, reset_method, a
 * function removed and rescanned.  Each is seen; what only changes with a
 * new entry (here a BAR edited in place) is kept until then.
 */
static void test_groups_kept(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    bool on_line;
    const PtBdf hda = bdf(0, 0x1b, 0), smbus = bdf(0, 0x1f, 3), ath9k = bdf(2, 0, 0);

    fx_up(&fx, ICH7M);
    assert_kept_is_fresh(fx.tree);
    /* IRQ 16: UHCI 1d.0 with dom0's HDA (1b.0) and the EHCI. */
    g_assert_cmpstr(kept_fact(fx.tree, hda, &on_line).driver, ==, "HDA Intel");
    g_assert_true(on_line);
    /* HDA's driver disables INTx (MSI on): it leaves the line, no rebind. */
    uint8_t hi, quiet;
    simtree_peek(fx.tree, "0000:00:1b.0", PCI_COMMAND + 1, &hi, 1);
    quiet = hi | PCI_COMMAND_DISABLE_INTx >> 8;
    simtree_poke(fx.tree, "0000:00:1b.0", PCI_COMMAND + 1, &quiet, 1);
    g_assert_true(kept_fact(fx.tree, hda, &on_line).intx_quiet);
    g_assert_false(on_line);
    assert_kept_is_fresh(fx.tree);
    /* Rebound to pci-stub: some guest's now, quiet or not, so back on the line. */
    g_assert_cmpint(host_assign_add(fx.ha, hda, "pci-stub", &rep, &err), ==, 0);
    g_assert_cmpstr(kept_fact(fx.tree, hda, &on_line).driver, ==, "pci-stub");
    g_assert_true(on_line);
    assert_kept_is_fresh(fx.tree);
    /* An IRQ that moves (dom0's SMBus driver on MSI): off IRQ 17. */
    write_tree_file(fx.tree, "devices/0000:00:1f.3/irq", "40\n");
    g_assert_cmpint(kept_fact(fx.tree, smbus, &on_line).irq, ==, 40);
    assert_kept_is_fresh(fx.tree);
    /* reset_method written below a bridge without FLR: ath9k down to "bus". */
    write_tree_file(fx.tree, "devices/0000:02:00.0/reset_method", "bus\n");
    g_assert_cmpuint(kept_fact(fx.tree, ath9k, &on_line).reset_methods, ==, HOST_RESET_BUS);
    assert_kept_is_fresh(fx.tree);
    /* EHCI 1d.7 removed, then rescanned without its pin: off IRQ 16. */
    rescan_entry(fx.tree, "0000:00:1d.7", no_pin);
    g_assert_cmpuint(kept_fact(fx.tree, bdf(0, 0x1d, 7), &on_line).pin, ==, 0);
    g_assert_false(on_line);
    assert_kept_is_fresh(fx.tree);
    /* A BAR edited in place, same entry, same driver: kept until forgotten. */
    HostFuncFacts was = kept_fact(fx.tree, ath9k, &on_line);
    write_tree_file(fx.tree, "devices/0000:02:00.0/resource",
                    "0x00000000f0100000 0x00000000f010ffff 0x0000000000040200\n");
    g_assert_cmphex(kept_fact(fx.tree, ath9k, &on_line).bar_base[0], ==, was.bar_base[0]);
    host_groups_forget(fx.tree);
    g_assert_cmphex(kept_fact(fx.tree, ath9k, &on_line).bar_base[0], ==, 0xf0100000);
    assert_kept_is_fresh(fx.tree);
    /* A tree that is gone: the error of a fresh read, and nothing kept. */
    g_autofree char *gone = g_strdup(fx.tree);
    fx_down(&fx);
    HostFacts facts;
    HostGroups groups;
    g_assert_cmpint(host_groups_read(gone, &facts, &groups, &err), ==, -ENOENT);
    g_assert_nonnull(strstr(err.msg, "/devices: No such file or directory"));
}

/* pciback where Xen is, pci-stub elsewhere: /proc/xen, or the hypervisor type file. */
static void test_xen_detection(void)
{
    g_autofree char *dir = g_dir_make_tmp("xen-XXXXXX", NULL);
    g_autofree char *proc = g_build_filename(dir, "proc-xen", NULL);
    g_autofree char *type = g_build_filename(dir, "type", NULL);

    g_assert_false(host_xen_present(proc, type));
    g_assert_true(g_file_set_contents(type, "kvm\n", -1, NULL));
    g_assert_false(host_xen_present(proc, type));
    g_assert_true(g_file_set_contents(type, "xen\n", -1, NULL));
    g_assert_true(host_xen_present(proc, type));
    g_unlink(type);
    g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
    g_assert_true(host_xen_present(proc, type));
    g_rmdir(proc);
    g_rmdir(dir);
    g_assert_cmpstr(host_assign_default_stub(true), ==, "pciback");
    g_assert_cmpstr(host_assign_default_stub(false), ==, "pci-stub");
    g_assert_true(host_assign_is_stub("vfio-pci"));
    g_assert_false(host_assign_is_stub("uhci_hcd"));
    g_assert_false(host_assign_is_stub(NULL));
}

static void test_group_opts_errors(void)
{
    HostGroupOpts o = host_group_opts_default();
    PtError err;

    g_assert_cmpint(host_group_opts_parse("strict_phantom=0", &o, &err), ==, -1);
    g_assert_cmpstr(err.msg, ==, "strict_phantom=0: unknown option 'strict_phantom' (known: "
                    "strict_reset, strict_iommu, strict_intx, strict_page)");
    g_assert_cmpint(host_group_opts_parse("strict_reset=no", &o, &err), ==, -1);
    g_assert_cmpstr(err.msg, ==, "strict_reset=no: option strict_reset: the value must be 0 or 1");
    g_assert_cmpint(host_group_opts_parse("strict_reset", &o, &err), ==, -1);
    for (int k = 0; k < HOST_GROUP_KINDS; k++)
        g_assert_true(o.strict[k]);
}

/* ================================================================ xm */

/* Run a built program; exit status, output in *out and *err (g_free them). */
static int run(char **out, char **err, const char *const *argv)
{
    g_autoptr(GError) gerr = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, out, err, &status, &gerr))
        g_error("%s: %s", argv[0], gerr->message);
    if (g_test_verbose())
        g_test_message("%s %s: %s%s", argv[0], argv[1], *out, *err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define XM(...) (const char *const[]){ BUILDDIR "/xm", __VA_ARGS__, NULL }

static void expect(int rc, const char *const *argv, const char *out_has, const char *err_has)
{
    g_autofree char *out = NULL, *err = NULL;

    g_assert_cmpint(run(&out, &err, argv), ==, rc);
    if (out_has)
        g_assert_nonnull(strstr(out, out_has));
    if (err_has)
        g_assert_nonnull(strstr(err, err_has));
}

static void put_backend(struct xs_handle *h, unsigned domid, PtBdf b)
{
    g_autofree XsBackendList *l = g_new0(XsBackendList, 1);

    l->n = 1;
    l->dev[0] = (XsBackendDev){ .bdf = b, .has_vdevfn = true, .auto_slot = true,
                                .opts = pt_options_unset(), .state = 1 };
    pt_bdf_format(b, l->dev[0].key, sizeof(l->dev[0].key));
    g_assert_cmpint(xs_backend_write(h, XBT_NULL, domid, l, 0), ==, 0);
}

static void dry_run_spec(const char *tree, const char *spec, int rc, const char *out_has,
                         const char *err_has)
{
    const char *argv[] = { BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-pci", spec, "-dry-run",
                           NULL };

    expect(rc, argv, out_has, err_has);
}

static void qemu_dm_dry_run(const char *tree, int rc, const char *has)
{
    dry_run_spec(tree, "00:1d.*@7", rc, rc ? NULL : has, rc ? has : NULL);
}

/* The whole ICH7 USB device: add, list, refused while a guest has one, removed with -r. */
static void test_xm_assignable(void)
{
    Xenstored *xsd = xenstored_start();
    char *tree = simtree_build(ICH7M, false);
    g_autofree char *rundir = g_dir_make_tmp("xm-assign-XXXXXX", NULL);
    g_autofree char *state = g_build_filename(rundir, "pci-assignable.state", NULL);
    struct xs_handle *h = xs_open(0);
    g_autofree char *list = NULL, *lerr = NULL;

    setenv("XM_HOST_SYSFS", tree, 1);
    setenv("XM_RUNDIR", rundir, 1);
    setenv("XM_ASSIGN_DRIVER", "pci-stub", 1);
    qemu_dm_dry_run(tree, 2, "0000:00:1d.0 is not assignable: bound to uhci_hcd");
    expect(0, XM("pci-assignable-add", "0000:00:1d.*"), "0000:00:1d.7: ehci_hcd -> pci-stub; "
           "reset (pm)\n", "xm: note: 0000:00:1d.*: 0000:00:1d.0 shares an INTx line with "
           "0000:00:1b.0 (IRQ 16) which is in use by dom0 (HDA Intel): a guest given these "
           "functions would be refused\n");
    g_assert_cmpint(run(&list, &lerr, XM("pci-assignable-list")), ==, 0);
    g_assert_cmpstr(list, ==, "0000:00:1d.0 pci-stub\n0000:00:1d.1 pci-stub\n"
                    "0000:00:1d.2 pci-stub\n0000:00:1d.3 pci-stub\n0000:00:1d.7 pci-stub\n");
    /* As the note said: dom0's HDA driver shares 1d.0's line.  Relaxed, both
     * of the device's shared lines are allowed, one warning each. */
    qemu_dm_dry_run(tree, 2, "qemu-dm: 00:1d.*@7: 0000:00:1d.0 shares an INTx line with "
                    "0000:00:1b.0 (IRQ 16) which is in use by dom0 (HDA Intel)\n");
    dry_run_spec(tree, "00:1d.*@7,strict_intx=0", 0, "0000:00:1d.7 -> 00:07.7\n",
                 "qemu-dm: warning: 0000:00:1d.0 shares an INTx line with 0000:00:1b.0 (IRQ 16) "
                 "which is in use by dom0 (HDA Intel): allowed by strict_intx=0\n"
                 "qemu-dm: warning: 0000:00:1d.1 shares an INTx line with 0000:00:1f.2 (IRQ 17) "
                 "which is in use by dom0 (ata_piix): allowed by strict_intx=0\n");
    const char *guest_wide[] = { BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-pci-strict",
                                 "strict_intx=0", "-pci", "00:1d.*@7", "-dry-run", NULL };
    expect(0, guest_wide, "0000:00:1d.7 -> 00:07.7\n", "allowed by strict_intx=0\n");
    /* A dom0 driver with INTx disabled (as on MSI) has no handler on the
     * line: HDA's IRQ 16 is no longer shared, ata_piix's IRQ 17 still is. */
    uint8_t hda_hi;
    simtree_peek(tree, "0000:00:1b.0", PCI_COMMAND + 1, &hda_hi, 1);
    uint8_t hda_quiet = hda_hi | PCI_COMMAND_DISABLE_INTx >> 8;
    simtree_poke(tree, "0000:00:1b.0", PCI_COMMAND + 1, &hda_quiet, 1);
    qemu_dm_dry_run(tree, 2, "qemu-dm: 00:1d.*@7: 0000:00:1d.1 shares an INTx line with "
                    "0000:00:1f.2 (IRQ 17) which is in use by dom0 (ata_piix)\n");
    simtree_poke(tree, "0000:00:1b.0", PCI_COMMAND + 1, &hda_hi, 1);
    /* A guest has 1d.1: nothing is given back, and the reason says who has it. */
    put_backend(h, 2, bdf(0, 0x1d, 1));
    expect(1, XM("pci-assignable-remove", "-r", "0000:00:1d.*"), NULL,
           "xm: pci-assignable-remove: 0000:00:1d.1 is in use by domain 2 "
           "(xm pci-detach 2 0000:00:1d.1 first)");
    expect(0, XM("pci-assignable-list"), "0000:00:1d.0 pci-stub\n0000:00:1d.1 pci-stub domain 2\n",
           NULL);
    g_assert_true(xs_rm(h, XBT_NULL, "/local/domain/0/backend/pci/2"));
    expect(0, XM("pci-assignable-remove", "-r", "0000:00:1d.*"),
           "0000:00:1d.0: pci-stub -> uhci_hcd;", NULL);
    expect(0, XM("pci-assignable-list"), "", NULL);
    qemu_dm_dry_run(tree, 2, "0000:00:1d.0 is not assignable: bound to uhci_hcd");
    /* Bad input changes nothing. */
    expect(2, XM("pci-assignable-add", "00:1d.0@7"), NULL,
           "xm: pci-assignable-add: 00:1d.0@7: host functions only: no @VSLOT, no options");
    expect(2, XM("pci-assignable-add", "00:1d.0,permissive=1"), NULL, "no options");
    expect(2, XM("pci-assignable-add", "00:1d.9"), NULL, "function 9 out of range 0-7");
    expect(1, XM("pci-assignable-add", "00:05.0"), NULL, "no host device 0000:00:05");
    expect(1, XM("pci-assignable-add", "00:1d.4"), NULL,
           "function 4 is not present on the host (0000:00:1d has functions 0,1,2,3,7)");
    expect(1, XM("pci-assignable-remove", "00:1d.0"), NULL,
           "0000:00:1d.0 is not assignable: bound to uhci_hcd");
    expect(2, XM("pci-assignable-remove", "-x", "00:1d.0"), NULL, "usage");
    qemu_dm_dry_run(tree, 2, "bound to uhci_hcd");
    unsetenv("XM_ASSIGN_DRIVER");
    unsetenv("XM_HOST_SYSFS");
    unsetenv("XM_RUNDIR");
    xs_close(h);
    xenstored_stop(xsd);
    g_unlink(state);
    g_rmdir(rundir);
    simtree_remove(tree);
}

/*
 * qemu-dm -dry-run applies the group rules with what it can know: dom0's
 * drivers and its own -pci list (it reads no xenstore, so other domains'
 * functions are not seen).  The Samsung's EHCI 1d.0 shares a page with
 * 1a.0, which dom0's ehci-pci drives; the ASUS GT218 with phantom functions
 * goes whole or not at all.
 */
static void test_dry_run_groups(void)
{
    Fx fx;
    HostAssignReport rep;
    PtError err;

    fx_up(&fx, SAMSUNG);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 0), "pci-stub", &rep, &err), ==, 0);
    dry_run_spec(fx.tree, "00:1d.0", 2, NULL, "qemu-dm: 0000:00:1d.0 shares a 4 KiB BAR page "
                 "with 0000:00:1a.0 (page 0xfcb06000) which is in use by dom0 (ehci-pci)\n");
    dry_run_spec(fx.tree, "00:1d.0,strict_page=0", 0, "0000:00:1d.0 -> 00:04.0\n",
                 "qemu-dm: warning: 0000:00:1d.0 shares a 4 KiB BAR page with 0000:00:1a.0 (page "
                 "0xfcb06000) which is in use by dom0 (ehci-pci): allowed by strict_page=0\n");
    fx_down(&fx);

    fx_up(&fx, ASUS);
    for (unsigned f = 0; f < 2; f++)
        g_assert_cmpint(host_assign_add(fx.ha, bdf(6, 0, f), "pci-stub", &rep, &err), ==, 0);
    set_phantom_bits(&fx, bdf(6, 0, 0), 3);
    const char *phantom = "qemu-dm: 0000:06:00.0 shares a requester ID with 0000:06:00.1 "
                          "(phantom functions of 0000:06:00.0): assign them together or not at "
                          "all\n";
    dry_run_spec(fx.tree, "06:00.0", 2, NULL, phantom);
    dry_run_spec(fx.tree, "06:00.0,strict_reset=0,strict_iommu=0,strict_intx=0,strict_page=0", 2,
                 NULL, "phantom functions of 0000:06:00.0");
    dry_run_spec(fx.tree, "06:00.*@6", 0, "0000:06:00.0 -> 00:06.0\n0000:06:00.1 -> 00:06.1\n",
                 NULL);
    fx_down(&fx);
}

/* Each of want[] in text, in this order. */
static void assert_in_order(const char *text, const char *const *want)
{
    const char *at = text;

    for (int i = 0; want[i]; i++) {
        const char *hit = strstr(at, want[i]);
        if (!hit)
            g_error("guest console: '%s' missing after offset %td:\n%s", want[i], at - text,
                    text);
        at = hit + strlen(want[i]);
    }
}

/* qemu-dm -host-reset: a reset at attach and one at detach, each logged with its method. */
static void test_qemu_dm_resets(void)
{
    Fx fx;
    PtError err;
    HostAssignReport rep;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *out = NULL, *log = NULL;

    fx_up(&fx, ICH7M);
    g_assert_cmpint(host_assign_add(fx.ha, bdf(0, 0x1d, 7), "pci-stub", &rep, &err), ==, 0);
    GSubprocess *dm = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                       G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                       G_SUBPROCESS_FLAGS_STDERR_PIPE, &gerr,
                                       BUILDDIR "/qemu-dm", "-host-sysfs", fx.tree,
                                       "-hypervisor", "sim", "-host-reset", "-monitor", "stdio",
                                       /* dom0 keeps the UHCIs: a split IOMMU group and line */
                                       "-pci-strict", "strict_iommu=0,strict_intx=0",
                                       "-pci", "00:1d.7@7", NULL);
    g_assert_no_error(gerr);
    g_assert_true(g_subprocess_communicate_utf8(dm, "quit\n", NULL, &out, &log, &gerr));
    g_assert_true(g_subprocess_get_if_exited(dm) && g_subprocess_get_exit_status(dm) == 0);
    g_object_unref(dm);
    assert_in_order(log, (const char *const[]){
        "0000:00:1d.7: before the guest sees it: reset (pm)\n",
        "0000:00:1d.7 -> 07.0: attached", "0000:00:1d.7 -> 07.0: detached",
        "0000:00:1d.7: after the guest let it go: reset (pm)\n", NULL });
    /* One at assignable-add, one at attach, one at detach. */
    g_autofree char *resets = tree_file(&fx, "devices/0000:00:1d.7/.sim-resets");
    g_assert_cmpstr(resets, ==, "pm\npm\npm\n");
    fx_down(&fx);
}

/* ================================================================ a real kernel */

/*
 * Debian's Linux 6.1 under QEMU (tests/lib/host-assign-guest.sh): xm binds
 * the ICH9 USB set to pci-stub through driver_override, qemu-dm accepts
 * them only then, and -remove -r gives them back to uhci_hcd and ehci-pci.
 * With QEMU's VT-d the kernel puts the four in one IOMMU group: making
 * 1d.1 alone assignable says a guest given it would be refused.
 * The kernel offers no reset for those four (no FLR, no PM reset, root
 * bus); the virtio device's FLR shows what a reset clears: its status
 * register, set to 1 while bound to pci-stub, reads 0 after remove, after
 * add, once qemu-dm -host-reset attached it and after it detached it.
 */
static void test_real_kernel(void)
{
    static const char *const want[] = {
        "HL-FN 0000:00:1d.0 driver=uhci_hcd override=(null)",
        "HL-FN 0000:00:1d.7 driver=ehci-pci override=(null)",
        "0000:00:1d.0 is not assignable: bound to uhci_hcd", "HL-RC 2",
        "HL-STEP /xm/xm pci-assignable-add",
        "0000:00:1d.0: uhci_hcd -> pci-stub; not reset: the kernel offers no reset for it",
        "0000:00:1d.7: ehci-pci -> pci-stub;", "HL-RC 0",
        "HL-FN 0000:00:1d.0 driver=pci-stub override=pci-stub",
        "HL-FN 0000:00:1d.1 driver=pci-stub override=pci-stub",
        "HL-FN 0000:00:1d.2 driver=pci-stub override=pci-stub",
        "HL-FN 0000:00:1d.7 driver=pci-stub override=pci-stub",
        "HL-STEP /xm/xm pci-assignable-list\n", "0000:00:1d.0 pci-stub\n0000:00:1d.1 pci-stub\n"
        "0000:00:1d.2 pci-stub\n0000:00:1d.7 pci-stub\nHL-RC 0",
        "0000:00:1d.7 -> 00:07.7\nHL-RC 0",
        "0000:00:1d.7: pci-stub -> ehci-pci;", "HL-RC 0",
        "HL-FN 0000:00:1d.0 driver=uhci_hcd override=(null)",
        "HL-FN 0000:00:1d.1 driver=uhci_hcd override=(null)",
        "HL-FN 0000:00:1d.2 driver=uhci_hcd override=(null)",
        "HL-FN 0000:00:1d.7 driver=ehci-pci override=(null)",
        "HL-GROUP 0000:00:1d.0 iommu_group=", "HL-GROUP 0000:00:1d.7 iommu_group=",
        "HL-STEP /xm/xm pci-assignable-add 0000:00:1d.1",
        "xm: note: 0000:00:1d.1 shares an IOMMU group with 0000:00:1d.0 (IOMMU group ",
        ") which is in use by dom0 (uhci_hcd): a guest given these functions would be refused",
        "HL-RC 0", "0000:00:1d.1: pci-stub -> uhci_hcd;", "HL-RC 0",
        "reset_method=flr,pm,bus", "-> pci-stub; reset (flr)", "HL-STATUS written 0x01",
        "pci-stub -> no driver; reset (flr)", "HL-STATUS after-remove 0x00",
        "HL-STATUS written 0x01", "-> pci-stub; reset (flr)", "HL-STATUS after-add 0x00",
        "HL-STATUS written 0x01", "HL-STATUS attached 0x00", "HL-STATUS written 0x01",
        "HL-RC 0", ": before the guest sees it: reset (flr)\n", "attached", "detached",
        ": after the guest let it go: reset (flr)\n", "HL-STATUS detached 0x00",
        "HL-END", NULL,
    };
    const char *argv[] = { SRCDIR "/tests/lib/host-assign-guest.sh", NULL };
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) gerr = NULL;
    int status;

    if (!guest_image_ready())
        return;
    g_assert_true(g_spawn_sync(SRCDIR, (char **)argv, NULL, 0, NULL, NULL, &out, &err, &status,
                               &gerr));
    /* A serial console ends lines with CR LF. */
    for (char *r; (r = strchr(out, '\r'));)
        memmove(r, r + 1, strlen(r));
    if (g_test_verbose())
        g_test_message("%s", out);
    g_assert_null(strstr(out, "HL-INSMOD-FAILED"));
    assert_in_order(out, want);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/host-sim/kernel/bind-rules", test_sim_bind_rules);
    g_test_add_func("/host-sim/kernel/reset-methods", test_sim_reset_methods);
    g_test_add_func("/host-assign/xen-detection", test_xen_detection);
    g_test_add_func("/host-assign/whole-device", test_assign_whole_device);
    g_test_add_func("/host-assign/bound-while-open", test_bound_while_open);
    g_test_add_func("/host-assign/remove-without-rebind", test_remove_without_rebind);
    g_test_add_func("/host-assign/add-failure-keeps-driver", test_add_failure_keeps_driver);
    g_test_add_func("/host-assign/remove-driver-gone", test_remove_driver_gone);
    g_test_add_func("/host-assign/reset/clears-device", test_reset_clears_device);
    g_test_add_func("/host-assign/reset/add-and-remove", test_reset_on_add_and_remove);
    g_test_add_func("/host-groups/reset", test_groups_reset);
    g_test_add_func("/host-groups/iommu", test_groups_iommu);
    g_test_add_func("/host-groups/intx", test_groups_intx);
    g_test_add_func("/host-groups/page", test_groups_page);
    g_test_add_func("/host-groups/phantom", test_groups_phantom);
    g_test_add_func("/host-groups/pure", test_groups_pure_stride);
    g_test_add_func("/host-groups/kept", test_groups_kept);
    g_test_add_func("/host-groups/options", test_group_opts_errors);
    g_test_add_func("/xm/assignable", test_xm_assignable);
    g_test_add_func("/qemu-dm/dry-run-groups", test_dry_run_groups);
    g_test_add_func("/qemu-dm/host-reset", test_qemu_dm_resets);
    g_test_add_func("/real-kernel/assignable-and-reset", test_real_kernel);
    return g_test_run();
}
