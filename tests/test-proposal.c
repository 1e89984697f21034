/*
 * The proposal's examples, each against a simulated host built from a
 * bundled real dump:
 *   asus-p6t6-x58-ich10-gt218.lspci      ICH10 USB 00:1d.{0,1,2,7}, 00:1a.{0,1,2,7},
 *                                        GeForce 210 06:00.{0,1}
 *   constructed-ich7-usb-0123457.lspci   a device with functions 0,1,2,3,5,7
 *                                        (real ICH7 USB functions plus a copy at .5)
 *   gigabyte-ich7m-rootports.lspci       drivers as the dump recorded them
 * Placement goes through pt_plan_spec (what qemu-dm, the monitor and xenstore
 * use), and the command line through build/qemu-dm -dry-run.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "pt-plan.h"
#include "simtree.h"

#define ASUS  "asus-p6t6-x58-ich10-gt218.lspci"
#define CONST "constructed-ich7-usb-0123457.lspci"
#define ICH7  "gigabyte-ich7m-rootports.lspci"

typedef struct Example {
    const char *name;
    const char *host;
    const char *specs[6];
    PtMapScheme scheme;
    const char *lines;      /* "HOST -> GUEST" per function, in placement order */
    const char *note;       /* the note of the last spec, or NULL */
} Example;

static const Example examples[] = {
    { "single-function table", ASUS,
      { "0000:00:1d.0", "0000:00:1d.1", "0000:00:1d.2", "0000:00:1d.7" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:04.0\n0000:00:1d.1 -> 00:05.0\n0000:00:1d.2 -> 00:06.0\n"
      "0000:00:1d.7 -> 00:07.0\n", NULL },
    { "identity 0-2@7", ASUS, { "0000:00:1d.0-2@7" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.2 -> 00:07.2\n", NULL },
    { "identity star@7", ASUS, { "0000:00:1d.*@7" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.2 -> 00:07.2\n"
      "0000:00:1d.7 -> 00:07.7\n", NULL },
    { "least 0,2,7@7", ASUS, { "0000:00:1d.0,2,7@7,map=least" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.2 -> 00:07.1\n0000:00:1d.7 -> 00:07.2\n", NULL },
    /* Erratum 1: 1d.0 lands on 07.2; 07.1 is already 1d.1's. */
    { "least reversed", ASUS, { "0000:00:1d.7,1,0@7,map=least" }, PT_MAP_IDENTITY,
      "0000:00:1d.7 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.0 -> 00:07.2\n", NULL },
    { "least as guest default", ASUS, { "0000:00:1d.7,2@7" }, PT_MAP_LEAST,
      "0000:00:1d.7 -> 00:07.0\n0000:00:1d.2 -> 00:07.1\n", NULL },
    /* Erratum 2: 0,3,5,7 are functions 0,3,5,7 (the proposal printed "0d"). */
    { "list 0,3,5,7 identity", CONST, { "0000:00:1d.0,3,5,7" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:04.0\n0000:00:1d.3 -> 00:04.3\n0000:00:1d.5 -> 00:04.5\n"
      "0000:00:1d.7 -> 00:04.7\n", NULL },
    { "list 0,3,5,7 least", CONST, { "0000:00:1d.0,3,5,7@7,map=least" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.3 -> 00:07.1\n0000:00:1d.5 -> 00:07.2\n"
      "0000:00:1d.7 -> 00:07.3\n", NULL },
    /* Erratum 3: '*' expands to single-digit functions, ascending. */
    { "star on 0,1,2,3,5,7 identity", CONST, { "0000:00:1d.*@7" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.2 -> 00:07.2\n"
      "0000:00:1d.3 -> 00:07.3\n0000:00:1d.5 -> 00:07.5\n0000:00:1d.7 -> 00:07.7\n", NULL },
    { "star on 0,1,2,3,5,7 least", CONST, { "0000:00:1d.*@7,map=least" }, PT_MAP_IDENTITY,
      "0000:00:1d.0 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.2 -> 00:07.2\n"
      "0000:00:1d.3 -> 00:07.3\n0000:00:1d.5 -> 00:07.4\n0000:00:1d.7 -> 00:07.5\n", NULL },
    { "explicit pairs", ASUS, { "00:1d.2=0,1=1,0=2@7" }, PT_MAP_IDENTITY,
      "0000:00:1d.2 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n0000:00:1d.0 -> 00:07.2\n", NULL },
    { "identity without function 0", ASUS, { "0000:00:1d.1-2@7" }, PT_MAP_IDENTITY,
      "0000:00:1d.1 -> 00:07.0\n0000:00:1d.2 -> 00:07.2\n",
      "0000:00:1d.1 moved to vfunc 0: a slot without function 0 is invisible to guests" },
    { "two USB controllers and a GPU, automatic slots", ASUS,
      { "00:1a.*", "00:1d.*", "06:00.0-1" }, PT_MAP_IDENTITY,
      "0000:00:1a.0 -> 00:04.0\n0000:00:1a.1 -> 00:04.1\n0000:00:1a.2 -> 00:04.2\n"
      "0000:00:1a.7 -> 00:04.7\n0000:00:1d.0 -> 00:05.0\n0000:00:1d.1 -> 00:05.1\n"
      "0000:00:1d.2 -> 00:05.2\n0000:00:1d.7 -> 00:05.7\n0000:06:00.0 -> 00:06.0\n"
      "0000:06:00.1 -> 00:06.1\n", NULL },
};

/* A simulated host from a bundled dump, an empty guest bus map, defaults. */
typedef struct Fixture {
    char *dir;
    HostPci *host;
    PtPlanDefaults dflt;
    PtBusMap map;
} Fixture;

static void fixture_up(Fixture *fx, const char *dump, bool all_assignable)
{
    PtError err;

    fx->dir = simtree_build(dump, all_assignable);
    fx->host = host_pci_open(fx->dir, &err);
    g_assert_nonnull(fx->host);
    fx->dflt = pt_plan_defaults();
    pt_busmap_init(&fx->map, PT_RESERVED_DEFAULT);
}

static void fixture_down(Fixture *fx)
{
    host_pci_close(fx->host);
    simtree_remove(fx->dir);
}

static GString *placement_lines(const PtPlacement *pl, GString *out)
{
    for (int f = 0; f < pl->nfuncs; f++) {
        char bdf[16];
        g_string_append_printf(out, "%s -> 00:%02x.%x\n", pt_bdf_format(pl->host[f], bdf, sizeof(bdf)),
                               PT_SLOT(pl->vdevfn[f]), PT_FUNC(pl->vdevfn[f]));
    }
    return out;
}

static void run_example(gconstpointer data)
{
    const Example *ex = data;
    g_autoptr(GString) got = g_string_new("");
    PtPlan plan = { 0 };
    PtError err;
    Fixture fx;

    fixture_up(&fx, ex->host, true);
    fx.dflt.opts.map = ex->scheme;
    for (int i = 0; ex->specs[i]; i++) {
        if (pt_plan_spec(fx.host, &fx.map, ex->specs[i], &fx.dflt, NULL, &plan, &err) < 0)
            g_error("%s: %s", ex->name, err.msg);
        placement_lines(&plan.placement, got);
    }
    g_assert_cmpstr(got->str, ==, ex->lines);
    g_assert_cmpstr(plan.placement.note, ==, ex->note ? ex->note : "");
    fixture_down(&fx);
}

/* ff:03.{0,1,4}: identity keeps the holes, one slot per device. */
static void test_uncore_holes(void)
{
    g_autoptr(GString) got = g_string_new("");
    PtError err;
    PtPlan plan;
    Fixture fx;

    fixture_up(&fx, ASUS, true);
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "ff:03.*", &fx.dflt, NULL, &plan, &err), ==, 0);
    placement_lines(&plan.placement, got);
    g_assert_cmpstr(got->str, ==, "0000:ff:03.0 -> 00:04.0\n0000:ff:03.1 -> 00:04.1\n"
                                  "0000:ff:03.4 -> 00:04.4\n");
    fixture_down(&fx);
}

/* A failing spec leaves the bus exactly as it was. */
static void test_failure_changes_nothing(void)
{
    /* The cause as the layer that found it gave it: the placer's, the notation's. */
    static const struct { const char *spec; const char *msg; int rc; } failing[] = {
        { "00:1a.0-2@7", "00:1a.0-2@7: guest slot 07 function 0 is already taken (by 0000:00:1d.0)",
          -EBUSY },
        { "00:1a.3", "00:1a.3: function 3 is not present on the host (0000:00:1a has functions 0,1,2,7)",
          -ENODEV },
        { "00:1d.0@2", "00:1d.0@2: guest slot 02 is reserved (slots 00-03 are kept for the platform)",
          -EBUSY },
        { "00:1a.0-9", "00:1a.0-9: function 9 out of range 0-7 (at column 9)", -EINVAL },
        { "05:00.0", "05:00.0: no host device 0000:05:00", -ENODEV },
    };
    PtBusMap before;
    PtError err;
    PtPlan plan;
    Fixture fx;

    fixture_up(&fx, ASUS, true);
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "0000:00:1d.0-2@7", &fx.dflt, NULL, &plan, &err), ==, 0);
    before = fx.map;
    for (size_t i = 0; i < G_N_ELEMENTS(failing); i++) {
        g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, failing[i].spec, &fx.dflt, NULL, &plan, &err), ==,
                        failing[i].rc);
        g_assert_cmpstr(err.msg, ==, failing[i].msg);
        g_assert_cmpmem(&fx.map, sizeof(fx.map), &before, sizeof(before));
    }
    fixture_down(&fx);
}

/* Functions still bound to a host driver are refused with the driver's name. */
static void test_not_assignable(void)
{
    PtBusMap before;
    PtError err;
    PtPlan plan;
    Fixture fx;

    fixture_up(&fx, ICH7, false);
    before = fx.map;
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "00:1d.*@7", &fx.dflt, NULL, &plan, &err), ==,
                    -EPERM);
    g_assert_cmpstr(err.msg, ==, "00:1d.*@7: 0000:00:1d.0 is not assignable: bound to uhci_hcd "
                                 "(bind it to pciback or pci-stub first)");
    g_assert_cmpmem(&fx.map, sizeof(fx.map), &before, sizeof(before));
    fixture_down(&fx);
}

/* A laptop GPU's audio function powered off (all ones) and a CardBus
 * bridge at function 0, made in the ASUS tree: 06:00.1 and 00:1a.0. */
static void make_odd_functions(const char *dir)
{
    const uint8_t cardbus = 0x82;       /* multi-function, header type 2 */

    simtree_all_ones(dir, "0000:06:00.1");
    simtree_poke(dir, "0000:00:1a.0", 0x0e, &cardbus, 1);
}

/* One policy: all ones and CardBus are refused with the reason, '*' skips
 * what reads all ones, and a function is this guest's only once. */
static void test_policy(void)
{
    static const struct { const char *spec, *msg; int rc; } refused[] = {
        { "06:00.1", "0000:06:00.1 reads all ones (powered off or absent): not passed through",
          -ENODEV },
        { "06:00.1,0", "06:00.1,0: 0000:06:00.1 reads all ones (powered off or absent): not "
                       "passed through", -ENODEV },
        { "00:1a.*", "00:1a.*: 0000:00:1a.0 has header type 0x02 (CardBus bridge), which "
                     "cannot be passed through", -ENOTSUP },
        { "00:1d.1", "0000:00:1d.1 is already attached to this guest (at 07.1)", -EBUSY },
        { "00:1d.7,1@9", "00:1d.7,1@9: 0000:00:1d.1 is already attached to this guest (at 07.1)",
          -EBUSY },
    };
    PtPlan plans[2];
    PtPlanList earlier = { plans, 0 };
    PtHolders holders = { .held = pt_plan_list_holds, .opaque = &earlier };
    PtBusMap before;
    PtError err;
    Fixture fx;

    fixture_up(&fx, ASUS, true);
    make_odd_functions(fx.dir);
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "00:1d.0-2@7", &fx.dflt, &holders, &plans[0],
                                 &err), ==, 0);
    earlier.n = 1;
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "06:00.*", &fx.dflt, &holders, &plans[1],
                                 &err), ==, 0);
    g_autoptr(GString) got = placement_lines(&plans[1].placement, g_string_new(""));
    g_assert_cmpstr(got->str, ==, "0000:06:00.0 -> 00:04.0\n");
    g_assert_cmpstr(plans[1].placement.note, ==,
                    "0000:06:00.1 reads all ones (powered off or absent): skipped");
    earlier.n = 2;
    before = fx.map;
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        PtPlan plan;
        g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, refused[i].spec, &fx.dflt, &holders,
                                     &plan, &err), ==, refused[i].rc);
        g_assert_cmpstr(err.msg, ==, refused[i].msg);
        g_assert_cmpmem(&fx.map, sizeof(fx.map), &before, sizeof(before));
    }
    fixture_down(&fx);
}

/* ---- the command line ---- */

static void run_qemu_dm(const char *const *args, int *status, char **out, char **errout)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) gerr = NULL;

    g_ptr_array_add(argv, (char *)BUILDDIR "/qemu-dm");
    for (int i = 0; args[i]; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, errout, status, &gerr));
    g_assert_no_error(gerr);
}

/* A function's config file gone (or cut short) after the host was opened:
 * the host's own cause (its errno, the file and what failed) is the
 * refusal's, not a bare "cannot be read". */
static void test_host_cause_kept(void)
{
    PtError err;
    PtPlan plan;
    Fixture fx;

    fixture_up(&fx, ASUS, true);
    g_autofree char *gone = g_build_filename(fx.dir, "devices", "0000:00:1d.1", "config", NULL);
    g_autofree char *cut = g_build_filename(fx.dir, "devices", "0000:00:1d.2", "config", NULL);
    g_assert_cmpint(unlink(gone), ==, 0);
    g_assert_cmpint(truncate(cut, 4), ==, 0);
    PtBusMap before = fx.map;
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "00:1d.1", &fx.dflt, NULL, &plan, &err), ==,
                    -ENOENT);
    g_autofree char *want = g_strdup_printf("0000:00:1d.1 has a config space that cannot be "
                                            "read: config read of 15 bytes at 0x000: Cannot "
                                            "open %s: %s", gone, strerror(ENOENT));
    g_assert_cmpstr(err.msg, ==, want);
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "00:1d.0-2", &fx.dflt, NULL, &plan, &err), ==,
                    -ENOENT);
    g_assert_cmpint(pt_plan_spec(fx.host, &fx.map, "00:1d.2", &fx.dflt, NULL, &plan, &err), ==,
                    -EIO);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.2 has a config space that cannot be read: config "
                                 "read of 15 bytes at 0x000: short read");
    g_assert_cmpmem(&fx.map, sizeof(fx.map), &before, sizeof(before));

    /* The front-end says the same words, dry or real. */
    for (int real = 0; real < 2; real++) {
        const char *args[] = { "-host-sysfs", fx.dir, "-pci", "00:1d.1",
                               real ? "-hypervisor" : "-dry-run", real ? "sim" : NULL, NULL };
        g_autofree char *out = NULL, *errout = NULL;
        int status;
        run_qemu_dm(args, &status, &out, &errout);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 2);
        g_autofree char *line = g_strdup_printf("qemu-dm: %s\n", want);
        g_assert_nonnull(strstr(errout, line));
    }
    fixture_down(&fx);
}

static void test_cli_dry_run(void)
{
    char *dir = simtree_build(ASUS, true);
    const char *ok_args[] = { "-host-sysfs", dir, "-pci", "0000:00:1d.7,1,0@7", "-pci",
                              "06:00.*", "-pci-map", "least", "-dry-run", NULL };
    const char *bad_args[] = { "-host-sysfs", dir, "-pci", "0000:00:1d.0-2@7", "-pci",
                               "0000:00:1d.0-9", "-dry-run", NULL };
    g_autofree char *out = NULL, *errout = NULL;
    int status;

    run_qemu_dm(ok_args, &status, &out, &errout);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_cmpstr(out, ==, "0000:00:1d.7 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n"
                             "0000:00:1d.0 -> 00:07.2\n0000:06:00.0 -> 00:04.0\n"
                             "0000:06:00.1 -> 00:04.1\n");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&errout, g_free);

    run_qemu_dm(bad_args, &status, &out, &errout);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 2);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpstr(errout, ==, "qemu-dm: 0000:00:1d.0-9: function 9 out of range 0-7 (at column 14)\n");
    simtree_remove(dir);
}

/* -dry-run gives the real run's verdict and words, and neither prints a
 * placement before every -pci is accepted. */
static void test_cli_dry_run_is_real(void)
{
    static const struct { const char *pci[2]; const char *says; } cases[] = {
        { { "00:1d.0@7", "00:1d.0-1@8" },
          "qemu-dm: 00:1d.0-1@8: 0000:00:1d.0 is already attached to this guest (at 07.0)\n" },
        { { "00:1d.*@7", "06:00.1" },
          "qemu-dm: 0000:06:00.1 reads all ones (powered off or absent): not passed through\n" },
        { { "00:1d.*@7", "00:1a.0" },
          "qemu-dm: 0000:00:1a.0 has header type 0x02 (CardBus bridge), which cannot be passed "
          "through\n" },
    };
    char *dir = simtree_build(ASUS, true);

    make_odd_functions(dir);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        for (int real = 0; real < 2; real++) {
            const char *args[] = { "-host-sysfs", dir, "-pci", cases[i].pci[0], "-pci",
                                   cases[i].pci[1], real ? "-hypervisor" : "-dry-run",
                                   real ? "sim" : NULL, NULL };
            g_autofree char *out = NULL, *errout = NULL;
            int status;
            run_qemu_dm(args, &status, &out, &errout);
            g_assert_true(WIFEXITED(status));
            g_assert_cmpint(WEXITSTATUS(status), ==, 2);
            g_assert_cmpstr(out, ==, "");
            /* The real run also logs what it attached and undid (not "qemu-dm:" lines). */
            g_auto(GStrv) lines = g_strsplit(errout, "\n", -1);
            g_autoptr(GString) said = g_string_new("");
            for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, "qemu-dm: "))
                    g_string_append_printf(said, "%s\n", *l);
            g_assert_cmpstr(said->str, ==, cases[i].says);
        }
    /* An automatic spec keeps clear of the slot a later one pins. */
    const char *pinned[] = { "-host-sysfs", dir, "-pci", "00:1d.0", "-pci", "00:1d.1@4",
                             "-dry-run", NULL };
    g_autofree char *pout = NULL, *perr = NULL;
    int pstatus;
    run_qemu_dm(pinned, &pstatus, &pout, &perr);
    g_assert_true(g_spawn_check_wait_status(pstatus, NULL));
    g_assert_cmpstr(pout, ==, "0000:00:1d.0 -> 00:05.0\n0000:00:1d.1 -> 00:04.0\n");
    /* '*' skips the dark function with a note. */
    const char *ok[] = { "-host-sysfs", dir, "-pci", "06:00.*", "-dry-run", NULL };
    g_autofree char *out = NULL, *errout = NULL;
    int status;
    run_qemu_dm(ok, &status, &out, &errout);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_cmpstr(out, ==, "0000:06:00.0 -> 00:04.0\n");
    g_assert_cmpstr(errout, ==, "qemu-dm: note: 0000:06:00.1 reads all ones (powered off or "
                                "absent): skipped\n");
    simtree_remove(dir);
}

static void test_cli_usage_errors(void)
{
    static const struct { const char *args[4]; const char *msg; } cases[] = {
        { { "-pci-map", "most", NULL }, "qemu-dm: -pci-map 'most': expected identity or least\n" },
        { { "-pci", NULL }, "qemu-dm: -pci needs SPEC\n" },
        { { "-bogus", NULL }, "qemu-dm: unknown option '-bogus' (try -help)\n" },
        { { "-pci-reserved", "0-20", NULL },
          "qemu-dm: -pci-reserved '0-20': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-pci-reserved", "", NULL },
          "qemu-dm: -pci-reserved '': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-pci-reserved", "3-1", NULL }, "qemu-dm: -pci-reserved '3-1': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-pci-reserved", "0-3,,1f", NULL }, "qemu-dm: -pci-reserved '0-3,,1f': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-pci-reserved", "0-3,-1", NULL }, "qemu-dm: -pci-reserved '0-3,-1': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-pci-reserved", "0x3", NULL }, "qemu-dm: -pci-reserved '0x3': expected hex slots and ranges 00-1f, e.g. 0-3,1f\n" },
        { { "-domid", "0", NULL }, "qemu-dm: -domid '0': expected a guest domain id, 1-32751\n" },
        { { "-domid", "32752", NULL },
          "qemu-dm: -domid '32752': expected a guest domain id, 1-32751\n" },
        { { "-domid", "+7", NULL }, "qemu-dm: -domid '+7': expected a guest domain id, 1-32751\n" },
        { { "-x-single-function", "20", NULL },
          "qemu-dm: -x-single-function '20': expected a hex slot 00-1f\n" },
        { { "-guest-timeout", "86401", NULL },
          "qemu-dm: -guest-timeout '86401': expected seconds, 1-86400\n" },
        { { "-guest-timeout", "9s", NULL },
          "qemu-dm: -guest-timeout '9s': expected seconds, 1-86400\n" },
        { { "-host-sysfs", "/nonexistent/tree", "-dry-run", NULL }, NULL },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL, *errout = NULL;
        int status;

        run_qemu_dm(cases[i].args, &status, &out, &errout);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 2);
        if (cases[i].msg)
            g_assert_cmpstr(errout, ==, cases[i].msg);
        else
            g_assert_true(g_str_has_prefix(errout, "qemu-dm: ") && strlen(errout) > 12);
    }
    /* Slots and ranges as given keep automatic placement off them. */
    static const struct { const char *reserved, *placed; } lists[] = {
        { "0-4", "0000:00:1d.0 -> 00:05.0\n" },
        { "0-4,5,1f", "0000:00:1d.0 -> 00:06.0\n" },
        { "00-03,04-06", "0000:00:1d.0 -> 00:07.0\n" },
    };
    char *dir = simtree_build(ASUS, true);
    for (size_t i = 0; i < G_N_ELEMENTS(lists); i++) {
        const char *args[] = { "-host-sysfs", dir, "-pci-reserved", lists[i].reserved, "-pci",
                               "00:1d.0", "-dry-run", NULL };
        g_autofree char *out = NULL, *errout = NULL;
        int status;
        run_qemu_dm(args, &status, &out, &errout);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_cmpstr(out, ==, lists[i].placed);
    }
    simtree_remove(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(examples); i++) {
        g_autofree char *path = g_strdup_printf("/proposal/%s", examples[i].name);
        g_test_add_data_func(path, &examples[i], run_example);
    }
    g_test_add_func("/proposal/X58 uncore, non-contiguous functions", test_uncore_holes);
    g_test_add_func("/proposal/failure changes nothing", test_failure_changes_nothing);
    g_test_add_func("/proposal/not assignable", test_not_assignable);
    g_test_add_func("/proposal/qemu-dm -dry-run", test_cli_dry_run);
    g_test_add_func("/proposal/qemu-dm usage errors", test_cli_usage_errors);
    g_test_add_func("/proposal/policy", test_policy);
    g_test_add_func("/proposal/the host's cause is kept", test_host_cause_kept);
    g_test_add_func("/proposal/qemu-dm -dry-run is the real check", test_cli_dry_run_is_real);
    return g_test_run();
}
