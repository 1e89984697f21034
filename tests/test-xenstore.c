/*
 * qemu-dm's xenstore side against the real xenstored: boot-time devices
 * from the backend list (xend's and libxl's formats), the command channel
 * (pci-ins per function and in one command, pci-rem through the guest's
 * eject), hostile contents, failure atomicity, save/restore, and a long
 * attach/detach run.  The device model runs in this process on its main
 * loop; the toolstack side runs in a thread on its own handle, as xm would.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hypervisor-sim.h"
#include "monitor.h"
#include "php.h"
#include "rig.h"
#include "test-guest.h"
#include "dm-state.h"
#include "dm-xen.h"
#include "xs-channel.h"
#include "xenstored.h"

#define ASUS   "asus-p6t6-x58-ich10-gt218.lspci"
#define SAMSUNG "samsung-r730-gt216m.lspci"
#define DOMID  1
#define TMO    5000

typedef struct Fx {
    Xenstored *xsd;
    Rig rig;
    DmXen *dmx;
    struct xs_handle *ts;       /* the toolstack's handle */
    bool lost;
} Fx;

/* ---------------------------------------------------------------- store helpers */

static void put(Fx *fx, const char *path, const char *v)
{
    g_assert_true(xs_write(fx->ts, XBT_NULL, path, v, (unsigned)strlen(v)));
}

static char *get(Fx *fx, const char *path)
{
    unsigned len;
    char *v = xs_read(fx->ts, XBT_NULL, path, &len);
    char *copy = v ? g_strndup(v, len) : NULL;

    free(v);
    return copy;
}

static void put_be(Fx *fx, const char *node, const char *v)
{
    char path[128];

    xs_path_backend(DOMID, node, path, sizeof(path));
    put(fx, path, v);
}

static char *get_be(Fx *fx, const char *node)
{
    char path[128];

    xs_path_backend(DOMID, node, path, sizeof(path));
    return get(fx, path);
}

static char *get_dm(Fx *fx, const char *node)
{
    char path[128];

    xs_path_dm(DOMID, node, path, sizeof(path));
    return get(fx, path);
}

static int cmp_strp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every node under a path with its value, sorted: "what the store holds". */
static void snapshot_into(Fx *fx, const char *path, GString *out)
{
    unsigned n = 0;
    g_autofree char *v = get(fx, path);
    char **kids = xs_directory(fx->ts, XBT_NULL, path, &n);

    g_string_append_printf(out, "%s=%s\n", path, v ? v : "");
    if (kids)
        qsort(kids, n, sizeof(char *), cmp_strp);
    for (unsigned i = 0; kids && i < n; i++) {
        g_autofree char *child = g_strdup_printf("%s/%s", path, kids[i]);
        snapshot_into(fx, child, out);
    }
    free(kids);
}

static char *snapshot(Fx *fx, const char *path)
{
    GString *s = g_string_new(NULL);

    snapshot_into(fx, path, s);
    return g_string_free(s, FALSE);
}

static char *backend_snapshot(Fx *fx)
{
    char path[128];

    xs_path_backend(DOMID, NULL, path, sizeof(path));
    return snapshot(fx, path);
}

/* ---------------------------------------------------------------- fixture */

static void on_lost(void *opaque)
{
    ((Fx *)opaque)->lost = true;
}

static void fx_store(Fx *fx)
{
    fx->xsd = xenstored_start();
    fx->ts = xs_open(0);
    g_assert_nonnull(fx->ts);
}

static int fx_dm_try(Fx *fx, const char *dump, bool guest, const char *restore, PtError *err)
{
    DmXenConfig cfg = { .domid = DOMID, .test_guest = guest, .restore_state = restore };

    rig_up(&fx->rig, dump);
    fx->dmx = dm_xen_start(&cfg, fx->rig.host, fx->rig.guest, fx->rig.bus, on_lost, fx, err);
    return fx->dmx ? 0 : -1;
}

static void fx_dm(Fx *fx, bool guest)
{
    PtError err;

    if (fx_dm_try(fx, ASUS, guest, NULL, &err) < 0)
        g_error("dm_xen_start: %s", err.msg);
}

static void fx_up(Fx *fx, bool guest)
{
    *fx = (Fx){ 0 };
    fx_store(fx);
    fx_dm(fx, guest);
}

static void fx_down(Fx *fx)
{
    dm_xen_stop(fx->dmx);
    rig_down(&fx->rig);
    xs_close(fx->ts);
    xenstored_stop(fx->xsd);
}

/* ---------------------------------------------------------------- toolstack calls */

typedef struct Call {
    struct xs_handle *h;
    const char *cmd, *param;
    const char *const *replies;
    int timeout_ms;
    char *state, *reply;
    PtError err;
    int rc;
    gint done;
} Call;

static gpointer call_thread(gpointer p)
{
    Call *c = p;

    c->rc = xs_tool_request(c->h, DOMID, c->cmd, c->param, c->replies, c->timeout_ms, &c->state,
                            &c->reply, &c->err);
    g_atomic_int_set(&c->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

/* The request from a thread while this one runs the device model's loop. */
static int call(Fx *fx, const char *cmd, const char *param, const char *const *replies,
                int timeout_ms, char **state, char **reply, PtError *err)
{
    Call c = { .h = fx->ts, .cmd = cmd, .param = param, .replies = replies,
               .timeout_ms = timeout_ms };
    GThread *t = g_thread_new("toolstack", call_thread, &c);

    while (!g_atomic_int_get(&c.done))
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(t);
    *state = c.state;
    *reply = c.reply;
    if (err)
        *err = c.err;
    return c.rc;
}

/* pci-ins that must answer; returns the reply state, *reply the parameter. */
static char *pci_ins(Fx *fx, const char *param, char **reply)
{
    char *state;
    PtError err;

    if (call(fx, "pci-ins", param, xs_replies_pci_ins, TMO, &state, reply, &err) < 0)
        g_error("pci-ins %s: %s", param, err.msg);
    return state;
}

static char *pci_rem(Fx *fx, const char *param, char **reply)
{
    char *state;
    PtError err;

    if (call(fx, "pci-rem", param, xs_replies_pci_rem, TMO, &state, reply, &err) < 0)
        g_error("pci-rem %s: %s", param, err.msg);
    return state;
}

static void expect_ins(Fx *fx, const char *param, const char *vdevfns)
{
    g_autofree char *reply = NULL;
    g_autofree char *state = pci_ins(fx, param, &reply);

    if (strcmp(state, "pci-inserted") != 0)
        g_error("pci-ins %s: %s %s", param, state, reply);
    g_assert_cmpstr(reply, ==, vdevfns);
}

static void expect_ins_failed(Fx *fx, const char *param, const char *reason)
{
    g_autofree char *reply = NULL;
    g_autofree char *state = pci_ins(fx, param, &reply);

    g_assert_cmpstr(state, ==, "pci-insert-failed");
    if (!strstr(reply, reason))
        g_error("pci-ins %s: reason '%s' lacks '%s'", param, reply, reason);
}

/* ---------------------------------------------------------------- layout helpers */

/* "0000:00:1d.0=07.0 ..." in attach order. */
static char *layout(Fx *fx)
{
    GString *s = g_string_new(NULL);

    for (int i = 0; i < pt_guest_count(fx->rig.guest); i++) {
        const PtGuestFunc *f = pt_guest_func_at(fx->rig.guest, i);
        char bdf[16];
        g_string_append_printf(s, "%s%s=%02x.%x", s->len ? " " : "",
                               pt_bdf_format(f->host, bdf, sizeof(bdf)), PT_SLOT(f->vdevfn),
                               PT_FUNC(f->vdevfn));
    }
    return g_string_free(s, FALSE);
}

/* The sorted version, for comparing layouts reached in different orders. */
static char *layout_sorted(Fx *fx)
{
    g_autofree char *l = layout(fx);
    g_auto(GStrv) parts = g_strsplit(l, " ", -1);

    qsort(parts, g_strv_length(parts), sizeof(char *), cmp_strp);
    return g_strjoinv(" ", parts);
}

static char *be_entry(Fx *fx, const char *field, int n)
{
    g_autofree char *node = g_strdup_printf("%s-%d", field, n);

    return get_be(fx, node);
}

static void assert_backend(Fx *fx, const char *const *dev_vdevfn)
{
    int n = 0;

    while (dev_vdevfn[2 * n])
        n++;
    g_autofree char *num = get_be(fx, "num_devs");
    g_autofree char *want_num = g_strdup_printf("%d", n);
    g_assert_cmpstr(num, ==, want_num);
    for (int i = 0; i < n; i++) {
        g_autofree char *dev = be_entry(fx, "dev", i);
        g_autofree char *vdevfn = be_entry(fx, "vdevfn", i);
        g_autofree char *st = be_entry(fx, "state", i);
        g_assert_cmpstr(dev, ==, dev_vdevfn[2 * i]);
        g_assert_cmpstr(vdevfn, ==, dev_vdevfn[2 * i + 1]);
        g_assert_cmpstr(st, ==, "4");
    }
    g_autofree char *stale = be_entry(fx, "dev", n);
    g_assert_null(stale);
}

static size_t assign_index(Hypervisor *hv, size_t from, uint8_t func)
{
    for (size_t i = from; i < hypervisor_sim_log_len(hv); i++) {
        const HvCall *c = hypervisor_sim_log_at(hv, i);
        if (c->op == HV_OP_ASSIGN_DEVICE && c->host.func == func)
            return i;
    }
    return SIZE_MAX;
}

/* ================================================================ boot-time devices */

static void test_boot_xend_format(void)
{
    Fx fx = { 0 };

    fx_store(&fx);
    put_be(&fx, "num_devs", "3");
    for (int i = 0; i < 3; i++) {
        g_autofree char *dev = g_strdup_printf("dev-%d", i);
        g_autofree char *v = g_strdup_printf("0000:00:1d.%d", i);
        g_autofree char *vd = g_strdup_printf("vdevfn-%d", i), *k = g_strdup_printf("key-%d", i);
        g_autofree char *o = g_strdup_printf("opts-%d", i), *s = g_strdup_printf("state-%d", i);
        put_be(&fx, dev, v);
        put_be(&fx, vd, "100");
        put_be(&fx, k, "0000:00:1d.0-2@7");
        put_be(&fx, o, "msitranslate=1,power_mgmt=0");
        put_be(&fx, s, "1");
    }
    fx_dm(&fx, true);
    g_autofree char *l = layout(&fx);
    g_assert_cmpstr(l, ==, "0000:00:1d.1=07.1 0000:00:1d.2=07.2 0000:00:1d.0=07.0");
    const char *const want[] = { "0000:00:1d.0", "38", "0000:00:1d.1", "39", "0000:00:1d.2",
                                 "3a", NULL };
    assert_backend(&fx, want);
    g_autofree char *key = be_entry(&fx, "key", 2);
    g_assert_cmpstr(key, ==, "0000:00:1d.0-2@7");
    g_autofree char *opts = be_entry(&fx, "opts", 1);
    g_assert_cmpstr(opts, ==, "msitranslate=1,power_mgmt=0");
    g_autofree char *state = get_dm(&fx, "state");
    g_assert_cmpstr(state, ==, "running");
    fx_down(&fx);
}

static void test_boot_libxl_format(void)
{
    Fx fx = { 0 };

    fx_store(&fx);
    put_be(&fx, "num_devs", "3");
    put_be(&fx, "dev-0", "0000:00:1a.0");
    put_be(&fx, "key-0", "0000:00:1a.0");
    put_be(&fx, "opts-0", "msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict");
    put_be(&fx, "dev-1", "0000:06:00.0");
    put_be(&fx, "vdevfn-1", "48");
    put_be(&fx, "dev-2", "0000:06:00.1");
    put_be(&fx, "vdevfn-2", "49");
    fx_dm(&fx, false);
    g_autofree char *l = layout(&fx);
    g_assert_cmpstr(l, ==, "0000:00:1a.0=04.0 0000:06:00.0=09.0 0000:06:00.1=09.1");
    const char *const want[] = { "0000:00:1a.0", "20", "0000:06:00.0", "48", "0000:06:00.1",
                                 "49", NULL };
    assert_backend(&fx, want);
    /* Only the MF bit says 09 has two functions: the guest sees both. */
    TgScan *scan = g_new0(TgScan, 1);
    tg_scan(fx.rig.bus, false, scan);
    g_assert_cmphex(tg_slot_funcs(scan, 9), ==, 0x03);
    g_free(scan);
    fx_down(&fx);
}

/* Each malformed list: a clear error, nothing attached, nothing written. */
typedef struct BadBoot {
    const char *node, *value;
    const char *reason;
} BadBoot;

static const BadBoot bad_boots[] = {
    { "num_devs", "2x", "backend num_devs: '2x': expected a decimal count" },
    { "num_devs", "-1", "expected a decimal count 0-256" },
    { "num_devs", "999", "expected a decimal count 0-256" },
    { "num_devs", "3", "backend dev-2: missing (num_devs counts it)" },
    { "dev-1", "0000:00:1d.1,permissive=1", "backend dev-1: '0000:00:1d.1,permissive=1': "
                                            "expected a plain DDDD:BB:SS.F" },
    { "dev-1", "0000:00:1d.9", "backend dev-1: " },
    { "dev-1", "0000:00:1d.1\001", "byte 0x01 at column 13 is not printable ASCII" },
    { "vdevfn-0", "1ff", "backend vdevfn-0: '1ff': expected a hex devfn 00-ff, or 100-107" },
    { "vdevfn-0", "0x38", "backend vdevfn-0: '0x38'" },
    { "opts-0", "foo=1", "backend opts-0: 'foo=1': not a list of options" },
    { "opts-0", "msitranslate=1@7", "backend opts-0" },
    { "state-0", "nine", "backend state-0: 'nine': expected a XenbusState" },
    { "key-0", "0000:00:1d.0-2@7", "names functions 0x07 of 0000:00:1d, but its dev-N entries "
                                   "name 0x01 of 0000:00:1d.0" },
    { "dev-1", "0000:00:1a.1", "" },    /* key group split across devices: not in 07.0 */
    { "vdevfn-1", "3b", "" },           /* fine on its own; key-1 differs from key-0 */
};

static void put_two_entries(Fx *fx)
{
    put_be(fx, "num_devs", "2");
    put_be(fx, "dev-0", "0000:00:1d.0");
    put_be(fx, "dev-1", "0000:00:1d.1");
    put_be(fx, "key-0", "0000:00:1d.0,1@7");
    put_be(fx, "key-1", "0000:00:1d.0,1@7");
}

static void rm_backend(Fx *fx)
{
    char path[128];

    xs_path_backend(DOMID, NULL, path, sizeof(path));
    xs_rm(fx->ts, XBT_NULL, path);
}

/* One store and one rig for all cases: the device model's boot step alone. */
static void test_boot_malformed(void)
{
    Fx fx = { 0 };

    fx_store(&fx);
    rig_up(&fx.rig, ASUS);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_boots); i++) {
        const BadBoot *b = &bad_boots[i];
        PtError err;

        if (!*b->reason)
            continue;
        rm_backend(&fx);
        put_two_entries(&fx);
        put_be(&fx, b->node, b->value);
        g_autofree char *before = backend_snapshot(&fx);
        XsDm *dm = xs_dm_open(DOMID, fx.rig.guest, fx.rig.host, NULL, &err);
        g_assert_nonnull(dm);
        g_assert_cmpint(xs_dm_attach_boot_devices(dm, &err), <, 0);
        xs_dm_close(dm);
        if (!strstr(err.msg, b->reason))
            g_error("%s=%s: '%s' lacks '%s'", b->node, b->value, err.msg, b->reason);
        g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
        g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
        g_autofree char *after = backend_snapshot(&fx);
        g_assert_cmpstr(after, ==, before);
        g_autofree char *state = get_dm(&fx, "state");
        g_assert_null(state);
    }
    rig_down(&fx.rig);
    xs_close(fx.ts);
    xenstored_stop(fx.xsd);
}

/* A host device the list names that the host cannot give: all or none. */
static void test_boot_all_or_none(void)
{
    Fx fx = { 0 };
    PtError err;

    fx_store(&fx);
    put_be(&fx, "num_devs", "2");
    put_be(&fx, "dev-0", "0000:06:00.0");
    put_be(&fx, "dev-1", "0000:05:00.0");
    g_autofree char *before = backend_snapshot(&fx);
    g_assert_cmpint(fx_dm_try(&fx, ASUS, false, NULL, &err), <, 0);
    if (!strstr(err.msg, "backend dev-1: 0000:05:00.0: no host device 0000:05:00"))
        g_error("%s", err.msg);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    g_autofree char *after = backend_snapshot(&fx);
    g_assert_cmpstr(after, ==, before);
    fx_down(&fx);
}

/* ================================================================ one owner per function */

/* Domain 2 ("hvm2") has 06:00.0 and 06:00.1 in its backend list. */
static void put_other_domain(Fx *fx)
{
    char path[128];

    put(fx, "/local/domain/2/name", "hvm2");
    xs_path_backend(2, "num_devs", path, sizeof(path));
    put(fx, path, "2");
    for (int i = 0; i < 2; i++) {
        g_autofree char *node = g_strdup_printf("dev-%d", i);
        g_autofree char *v = g_strdup_printf("0000:06:00.%d", i);
        xs_path_backend(2, node, path, sizeof(path));
        put(fx, path, v);
    }
}

/* Every way in names the owner: the boot list, both pci-ins forms; this
 * guest's own functions are "already attached" with where, as the monitor says. */
static void test_one_owner(void)
{
    Fx fx = { 0 };
    PtError err;

    fx_store(&fx);
    put_other_domain(&fx);
    put_be(&fx, "num_devs", "1");
    put_be(&fx, "dev-0", "0000:06:00.1");
    g_assert_cmpint(fx_dm_try(&fx, ASUS, false, NULL, &err), <, 0);
    g_assert_cmpstr(err.msg, ==, "backend dev-0 (0000:06:00.1): 0000:06:00.1 is passed through "
                                 "to domain 2 (hvm2) already");
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    rig_down(&fx.rig);
    put_be(&fx, "num_devs", "0");
    fx_dm(&fx, true);
    size_t calls = hypervisor_sim_log_len(fx.rig.hv);
    expect_ins_failed(&fx, "06:00.*", "06:00.*: 0000:06:00.0 is passed through to domain 2 "
                                      "(hvm2) already");
    expect_ins_failed(&fx, "0000:06:00.1@101", "0000:06:00.1@101: 0000:06:00.1 is passed "
                                               "through to domain 2 (hvm2) already");
    /* The monitor of the same qemu-dm: the same words. */
    MonitorTarget t = { .guest = fx.rig.guest, .bus = fx.rig.bus };
    Monitor *mon = monitor_new(&t);
    g_autoptr(GString) reply = g_string_new("");
    g_assert_cmpint(monitor_execute(mon, "pci_add 06:00.*", reply), ==, -1);
    g_assert_cmpstr(reply->str, ==, "error: 06:00.*: 0000:06:00.0 is passed through to domain 2 "
                                    "(hvm2) already\n");
    monitor_free(mon);
    /* The other domain lets go: the function is free. */
    char path[128];
    xs_path_backend(2, NULL, path, sizeof(path));
    g_assert_true(xs_rm(fx.ts, XBT_NULL, path));
    expect_ins(&fx, "0000:06:00.1@101", "0x21");
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    calls = hypervisor_sim_log_len(fx.rig.hv);
    expect_ins_failed(&fx, "0000:00:1d.1", "0000:00:1d.1 is already attached to this guest "
                                           "(at 07.1)");
    expect_ins_failed(&fx, "00:1d.*", "00:1d.*: 0000:00:1d.0 is already attached to this guest "
                                      "(at 07.0)");
    g_assert_cmpuint(hypervisor_sim_log_len(fx.rig.hv), ==, calls);
    /* A domain that takes a function between two requests is seen by the
     * next, the monitor's or the channel's. */
    expect_ins(&fx, "0000:00:1f.3@58", "0x58");
    put_other_domain(&fx);
    mon = monitor_new(&t);
    g_string_truncate(reply, 0);
    g_assert_cmpint(monitor_execute(mon, "pci_add 06:00.0@0c", reply), ==, -1);
    g_assert_cmpstr(reply->str, ==, "error: 06:00.0@0c: 0000:06:00.0 is passed through to "
                                    "domain 2 (hvm2) already\n");
    monitor_free(mon);
    expect_ins_failed(&fx, "0000:06:00.0@102", "0000:06:00.0@102: 0000:06:00.0 is passed "
                                               "through to domain 2 (hvm2) already");
    fx_down(&fx);
}

/* ================================================================ groups that stay together */

/* Domain 2 ("hvm2") has one function, bdf, in its backend list. */
static void put_holder(Fx *fx, const char *bdf)
{
    char path[128];

    put(fx, "/local/domain/2/name", "hvm2");
    xs_path_backend(2, "num_devs", path, sizeof(path));
    put(fx, path, "1");
    xs_path_backend(2, "dev-0", path, sizeof(path));
    put(fx, path, bdf);
}

/*
 * Domain 2 has the GT218's GPU.  Its HDMI audio function shares the GPU's
 * bus reset (neither has FLR) and, on this simulated Linux host, its IOMMU
 * group: the boot list and pci-ins refuse it, each rule is relaxed by its
 * own option, and each relaxed rule is one warning in qemu-dm's log.
 */
static void test_groups_reset_iommu(void)
{
    static const char reset[] = "0000:06:00.1 shares reset with 0000:06:00.0 (no FLR; bus reset) "
                                "which is passed through to domain 2";
    static const char iommu[] = "0000:06:00.1 shares an IOMMU group with 0000:06:00.0 (IOMMU "
                                "group 13) which is passed through to domain 2";
    Fx fx = { 0 };
    PtError err;

    fx_store(&fx);
    put_holder(&fx, "0000:06:00.0");
    put_be(&fx, "num_devs", "1");
    put_be(&fx, "dev-0", "0000:06:00.1");
    g_assert_cmpint(fx_dm_try(&fx, ASUS, false, NULL, &err), <, 0);
    g_autofree char *boot = g_strdup_printf("backend dev-0 (0000:06:00.1): %s", reset);
    g_assert_cmpstr(err.msg, ==, boot);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    rig_down(&fx.rig);
    put_be(&fx, "num_devs", "0");
    fx_dm(&fx, true);
    size_t calls = hypervisor_sim_log_len(fx.rig.hv);
    expect_ins_failed(&fx, "0000:06:00.1", reset);
    expect_ins_failed(&fx, "06:00.1@6", reset);
    expect_ins_failed(&fx, "0000:06:00.1,strict_reset=0", iommu);
    g_assert_cmpuint(hypervisor_sim_log_len(fx.rig.hv), ==, calls);
    g_assert_cmpuint(pt_guest_count(fx.rig.guest), ==, 0);
    expect_ins(&fx, "0000:06:00.1,strict_reset=0,strict_iommu=0", "0x20");
    g_autofree char *w1 = g_strdup_printf("warning: %s: allowed by strict_reset=0", reset);
    g_autofree char *w2 = g_strdup_printf("warning: %s: allowed by strict_iommu=0", iommu);
    g_assert_cmpuint(rig_log_count(w1), ==, 1);
    g_assert_cmpuint(rig_log_count(w2), ==, 1);
    g_assert_cmpuint(rig_log_count("warning: "), ==, 2);
    /* The options stay with the function in the backend list. */
    g_autofree char *opts = be_entry(&fx, "opts", 0);
    g_assert_cmpstr(opts, ==, "strict_reset=0,strict_iommu=0");
    fx_down(&fx);
}

/*
 * The Samsung R730's two EHCIs have 1 KiB BARs in one 4 KiB page
 * (fcb06000 and fcb06400): the hypervisor maps pages, so each owner would
 * reach the other's registers.  Domain 2 has 1a.0; 1d.0 is refused here,
 * by pci-ins and the monitor alike, unless strict_page=0.
 */
static void test_groups_page(void)
{
    static const char page[] = "0000:00:1d.0 shares a 4 KiB BAR page with 0000:00:1a.0 (page "
                               "0xfcb06000) which is passed through to domain 2";
    Fx fx = { 0 };
    PtError err;

    fx_store(&fx);
    put_holder(&fx, "0000:00:1a.0");
    if (fx_dm_try(&fx, SAMSUNG, true, NULL, &err) < 0)
        g_error("dm_xen_start: %s", err.msg);
    expect_ins_failed(&fx, "0000:00:1d.0", page);
    MonitorTarget t = { .guest = fx.rig.guest, .bus = fx.rig.bus };
    Monitor *mon = monitor_new(&t);
    g_autoptr(GString) reply = g_string_new("");
    g_assert_cmpint(monitor_execute(mon, "pci_add 00:1d.0@6", reply), ==, -1);
    g_autofree char *want = g_strdup_printf("error: 00:1d.0@6: %s\n", page);
    g_assert_cmpstr(reply->str, ==, want);
    monitor_free(mon);
    expect_ins(&fx, "0000:00:1d.0@30,strict_page=0", "0x30");
    g_autofree char *w = g_strdup_printf("warning: %s: allowed by strict_page=0", page);
    g_assert_cmpuint(rig_log_count(w), ==, 1);
    fx_down(&fx);
}

/* ================================================================ pci-ins / pci-rem */

static void test_ins_extended_one_command(void)
{
    Fx fx;

    fx_up(&fx, true);
    size_t from = hypervisor_sim_log_len(fx.rig.hv);
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    /* Function 0 assigned after 1 and 2; the guest had one event. */
    g_assert_cmpuint(assign_index(fx.rig.hv, from, 0), >, assign_index(fx.rig.hv, from, 1));
    g_assert_cmpuint(assign_index(fx.rig.hv, from, 0), >, assign_index(fx.rig.hv, from, 2));
    g_assert_cmpuint(rig_log_count("test-guest: event 0 slot 07 (_STA 0x07): sees 07.0 "
                                   "8086:3a34 07.1 8086:3a35 07.2 8086:3a36"), ==, 1);
    g_assert_cmpuint(rig_log_count("test-guest: event"), ==, 1);
    const char *const want[] = { "0000:00:1d.0", "38", "0000:00:1d.1", "39", "0000:00:1d.2",
                                 "3a", NULL };
    assert_backend(&fx, want);
    g_autofree char *key = be_entry(&fx, "key", 0);
    g_assert_cmpstr(key, ==, "0000:00:1d.0-2@7");
    /* The toolstack put the state back. */
    g_autofree char *state = get_dm(&fx, "state");
    g_assert_cmpstr(state, ==, "running");
    fx_down(&fx);
}

static void test_ins_every_form(void)
{
    static const struct { const char *param, *reply; } forms[] = {
        { "0000:00:1d.0,1,2,7@7", "0x38,0x39,0x3a,0x3f" },
        { "00:1a.*", "0x20,0x21,0x22,0x27" },
        { "0000:06:00.1,0@5,map=least", "0x28,0x29" },
        { "00:1f.2=0,3=1@8", "0x40,0x41" },
        { "0000:ff:03.0@9.0", "0x48" },
        { "0000:ff:03.1@9.1,msitranslate=1", "0x49" },
    };
    Fx fx;

    fx_up(&fx, true);
    for (size_t i = 0; i < G_N_ELEMENTS(forms); i++)
        expect_ins(&fx, forms[i].param, forms[i].reply);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 14);
    g_autofree char *num = get_be(&fx, "num_devs");
    g_assert_cmpstr(num, ==, "14");
    fx_down(&fx);
}

/* xend: head function 0x100|vfunc, the others pinned, vfunc 0 last; the
 * same layout as the one-shot command, one guest event. */
static void test_ins_legacy_per_function_as_xend(void)
{
    Fx one, xend;
    g_autofree char *r1 = NULL, *r2 = NULL, *r3 = NULL;

    fx_up(&one, true);
    expect_ins(&one, "0000:00:1d.0-2", "0x20,0x21,0x22");
    g_autofree char *want = layout_sorted(&one);
    fx_down(&one);

    fx_up(&xend, true);
    g_autofree char *s1 = pci_ins(&xend, "0000:00:1d.1@101,msitranslate=1,power_mgmt=0", &r1);
    g_assert_cmpstr(s1, ==, "pci-inserted");
    g_assert_cmpstr(r1, ==, "0x21");
    g_assert_cmpuint(rig_log_count("test-guest: event"), ==, 0);    /* no function 0 yet */
    g_autofree char *s2 = pci_ins(&xend, "0000:00:1d.2@22,msitranslate=1,power_mgmt=0", &r2);
    g_assert_cmpstr(r2, ==, "0x22");
    g_autofree char *s3 = pci_ins(&xend, "0000:00:1d.0@20,msitranslate=1,power_mgmt=0", &r3);
    g_assert_cmpstr(r3, ==, "0x20");
    g_assert_cmpuint(rig_log_count("test-guest: event 0 slot 04 (_STA 0x07)"), ==, 1);
    g_assert_cmpuint(rig_log_count("test-guest: event"), ==, 1);
    g_autofree char *got = layout_sorted(&xend);
    g_assert_cmpstr(got, ==, want);
    const char *const be[] = { "0000:00:1d.1", "21", "0000:00:1d.2", "22", "0000:00:1d.0",
                               "20", NULL };
    assert_backend(&xend, be);
    /* libxl's form: a devfn, no auto flag. */
    expect_ins(&xend, "0000:06:00.0@28,msitranslate=0,power_mgmt=0,permissive=0,"
                      "rdm_policy=strict", "0x28");
    expect_ins(&xend, "0000:00:1a.0", "0x30");
    fx_down(&xend);
}

static void test_rem_by_any_function(void)
{
    Fx fx;
    g_autofree char *reply = NULL;

    fx_up(&fx, true);
    expect_ins(&fx, "0000:06:00.*@5", "0x28,0x29");
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    g_autofree char *state = pci_rem(&fx, "0000:00:1d.2", &reply);
    g_assert_cmpstr(state, ==, "pci-removed");
    g_assert_cmpstr(reply, ==, "0x38,0x39,0x3a");
    g_assert_cmpuint(rig_log_count("test-guest: event 3 slot 07 (_STA 0x07): ejected"), ==, 1);
    g_assert_cmphex(pci_bus_slot_funcs(fx.rig.bus, 7), ==, 0);
    const char *const want[] = { "0000:06:00.0", "28", "0000:06:00.1", "29", NULL };
    assert_backend(&fx, want);
    g_autofree char *r2 = NULL;
    g_autofree char *s2 = pci_rem(&fx, "06:00.1", &r2);
    g_assert_cmpstr(r2, ==, "0x28,0x29");
    const char *const none[] = { NULL };
    assert_backend(&fx, none);
    g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
    fx_down(&fx);
}

/* A guest that never answers: the toolstack times out and says so. */
static void test_rem_guest_never_ejects(void)
{
    Fx fx;
    char *state, *reply;
    PtError err;

    fx_up(&fx, false);
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    g_assert_cmpint(call(&fx, "pci-rem", "0000:00:1d.0", xs_replies_pci_rem, 300, &state, &reply,
                         &err), ==, -ETIMEDOUT);
    g_assert_nonnull(strstr(err.msg, "timed out after 0.300 s: qemu-dm of domain 1 took the "
                                     "pci-rem command but did not answer (the guest did not "
                                     "eject the slot)"));
    g_free(state);
    g_free(reply);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 3);
    fx_down(&fx);
}

/* A front-end with hot-plug of its own (QEMU's) asks the guest instead of
 * the controller, and answers later from the loop, as QEMU's events come. */
typedef struct FakeEjector {
    DmXen *dmx;
    const char *answer;         /* NULL: the guest ejects */
    int asked;
} FakeEjector;

static gboolean fake_answer(gpointer opaque)
{
    FakeEjector *f = opaque;

    dm_xen_slot_ejected(f->dmx, 7, f->answer);
    return G_SOURCE_REMOVE;
}

static int fake_eject(void *opaque, unsigned vslot)
{
    FakeEjector *f = opaque;

    g_assert_cmpuint(vslot, ==, 7);
    f->asked++;
    g_idle_add(fake_answer, f);
    return 0;
}

static void test_rem_front_end_ejector(void)
{
    Fx fx;
    g_autofree char *r1 = NULL, *r2 = NULL;

    fx_up(&fx, true);
    FakeEjector f = { .dmx = fx.dmx, .answer = "QEMU refused device_del pt07_0: busy" };
    dm_xen_set_ejector(fx.dmx, fake_eject, &f);
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    /* Refused: the reason goes back, nothing is detached. */
    g_autofree char *s1 = pci_rem(&fx, "0000:00:1d.1", &r1);
    g_assert_cmpstr(s1, ==, "pci-remove-failed");
    g_assert_cmpstr(r1, ==, f.answer);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 3);
    g_assert_cmphex(pci_bus_slot_funcs(fx.rig.bus, 7), ==, 0x7);
    /* Ejected: detached, and the controller's guest was never asked. */
    f.answer = NULL;
    g_autofree char *s2 = pci_rem(&fx, "0000:00:1d.1", &r2);
    g_assert_cmpstr(s2, ==, "pci-removed");
    g_assert_cmpstr(r2, ==, "0x38,0x39,0x3a");
    g_assert_cmpint(f.asked, ==, 2);
    g_assert_cmpuint(rig_log_count("test-guest: event 3"), ==, 0);
    g_assert_cmphex(pci_bus_slot_funcs(fx.rig.bus, 7), ==, 0);
    const char *const none[] = { NULL };
    assert_backend(&fx, none);
    g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
    fx_down(&fx);
}

/* Nobody serving the channel: the command is taken back. */
static void test_request_without_device_model(void)
{
    Fx fx = { 0 };
    char *state, *reply;
    PtError err;

    fx_store(&fx);
    g_assert_cmpint(xs_tool_request(fx.ts, 7, "pci-ins", "0000:00:1d.0", xs_replies_pci_ins, 200,
                                    &state, &reply, &err), ==, -ETIMEDOUT);
    g_assert_nonnull(strstr(err.msg, "qemu-dm of domain 7 did not take the pci-ins command"));
    char path[128];
    xs_path_dm(7, "command", path, sizeof(path));
    g_autofree char *cmd = get(&fx, path);
    g_assert_null(cmd);
    g_free(state);
    g_free(reply);
    xs_close(fx.ts);
    xenstored_stop(fx.xsd);
}

/* ================================================================ hostile channel */

static void test_hostile_parameters(void)
{
    static const struct { const char *param, *reason; } cases[] = {
        { "0000:00:1d.0\001", "parameter: byte 0x01 at column 13 is not printable ASCII" },
        { "0000:00:1d.0-9@7", "function 9 out of range 0-7" },
        { "0000:00:1d.1@1ff", "" },
        { "", "empty" },
        { "0000:00:1d.0,foo=1", "unknown option 'foo'" },
        { "0000:00:1d.0@2", "reserved" },
        { "0000:00:1d.3", "function 3 is not present on the host" },
        { "0000:05:00.0", "no host device 0000:05:00" },
    };
    Fx fx;

    fx_up(&fx, true);
    expect_ins(&fx, "0000:06:00.*@5", "0x28,0x29");
    g_autofree char *before = backend_snapshot(&fx);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        expect_ins_failed(&fx, cases[i].param, cases[i].reason);
    g_autofree char *longp = g_strnfill(400, 'a');
    expect_ins_failed(&fx, longp, "parameter: 400 bytes, at most 255 accepted");
    g_autofree char *after = backend_snapshot(&fx);
    g_assert_cmpstr(after, ==, before);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 2);

    char *state, *reply;
    g_assert_cmpint(call(&fx, "pci-rem", "0000:00:1d.0", xs_replies_pci_rem, TMO, &state, &reply,
                         NULL), ==, 0);
    g_assert_cmpstr(state, ==, "pci-remove-failed");
    g_assert_cmpstr(reply, ==, "0000:00:1d.0: not attached to this guest");
    g_free(state);
    g_free(reply);
    g_assert_cmpint(call(&fx, "pci-rem", "0000:06:00.0@5", xs_replies_pci_rem, TMO, &state,
                         &reply, NULL), ==, 0);
    g_assert_cmpstr(state, ==, "pci-remove-failed");
    g_assert_nonnull(strstr(reply, "detach takes no @VSLOT"));
    g_free(state);
    g_free(reply);
    const char *const err_state[] = { "error", NULL };
    g_assert_cmpint(call(&fx, "reboot-host", "", err_state, TMO, &state, &reply, NULL), ==, 0);
    g_assert_cmpstr(reply, ==, "unknown command 'reboot-host' (known: pci-ins, pci-rem, save, "
                               "continue)");
    g_free(state);
    g_free(reply);
    g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 2);
    fx_down(&fx);
}

/* ================================================================ failure atomicity */

typedef struct Live {
    size_t mmio, io, pirqs, bindings, assigned, perms;
    uint8_t slots[PT_SLOTS];
    int count;
} Live;

static Live live(Fx *fx)
{
    Live l = { hypervisor_sim_mmio_mappings(fx->rig.hv), hypervisor_sim_ioport_mappings(fx->rig.hv),
               hypervisor_sim_pirqs(fx->rig.hv), hypervisor_sim_bindings(fx->rig.hv),
               hypervisor_sim_assigned(fx->rig.hv), hypervisor_sim_permissions(fx->rig.hv),
               { 0 }, pt_guest_count(fx->rig.guest) };

    for (unsigned s = 0; s < PT_SLOTS; s++)
        l.slots[s] = pci_bus_slot_funcs(fx->rig.bus, s);
    return l;
}

static void assert_same_live(const Live *a, const Live *b)
{
    g_assert_cmpuint(a->mmio, ==, b->mmio);
    g_assert_cmpuint(a->io, ==, b->io);
    g_assert_cmpuint(a->pirqs, ==, b->pirqs);
    g_assert_cmpuint(a->bindings, ==, b->bindings);
    g_assert_cmpuint(a->assigned, ==, b->assigned);
    g_assert_cmpuint(a->perms, ==, b->perms);
    g_assert_cmpmem(a->slots, sizeof(a->slots), b->slots, sizeof(b->slots));
    g_assert_cmpint(a->count, ==, b->count);
}

/* Boot a device with decode on, so "as before" includes live mappings. */
static void fx_up_busy(Fx *fx)
{
    fx_up(fx, true);
    expect_ins(fx, "0000:06:00.*@5", "0x28,0x29");
    TgScan *scan = g_new0(TgScan, 1);
    tg_scan(fx->rig.bus, true, scan);
    g_free(scan);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(fx->rig.hv), >, 0);
}

static void test_atomic_unopenable_function(void)
{
    Fx fx;

    fx_up_busy(&fx);
    g_autofree char *config = rig_host_config_path(&fx.rig, "0000:00:1d.1");
    g_autofree char *hidden = g_strconcat(config, ".hidden", NULL);
    g_assert_cmpint(g_rename(config, hidden), ==, 0);
    Live before = live(&fx);
    g_autofree char *be = backend_snapshot(&fx);
    expect_ins_failed(&fx, "0000:00:1d.0-2@7", "0000:00:1d.1");
    Live after = live(&fx);
    assert_same_live(&before, &after);
    g_autofree char *be2 = backend_snapshot(&fx);
    g_assert_cmpstr(be2, ==, be);
    g_assert_cmpuint(rig_log_count("test-guest: event 0 slot 07"), ==, 0);
    g_assert_cmpint(g_rename(hidden, config), ==, 0);
    expect_ins(&fx, "0000:00:1d.0-2@7", "0x38,0x39,0x3a");
    fx_down(&fx);
}

/* The hypervisor fails its k-th call, for every k the insert makes. */
static void test_atomic_every_hypervisor_fault(void)
{
    Fx fx;
    unsigned k;

    fx_up_busy(&fx);
    for (k = 1;; k++) {
        Live before = live(&fx);
        g_autofree char *be = backend_snapshot(&fx);
        g_autofree char *reply = NULL;
        size_t from = hypervisor_sim_log_len(fx.rig.hv);
        hypervisor_sim_fail_call(fx.rig.hv, k, EIO);
        g_autofree char *state = pci_ins(&fx, "0000:00:1d.0-2@7", &reply);
        if (g_test_verbose())
            g_test_message("k=%u: %s %s\n%s", k, state, reply,
                           hypervisor_sim_log_text(fx.rig.hv, from));
        bool fired = hypervisor_sim_fault_fired(fx.rig.hv);
        hypervisor_sim_fail_call(fx.rig.hv, 0, 0);
        if (!fired) {
            g_assert_cmpstr(state, ==, "pci-inserted");
            break;
        }
        g_assert_cmpstr(state, ==, "pci-insert-failed");
        g_assert_nonnull(strstr(reply, "Input/output error"));
        Live after = live(&fx);
        assert_same_live(&before, &after);
        g_autofree char *be2 = backend_snapshot(&fx);
        g_assert_cmpstr(be2, ==, be);
    }
    g_test_message("faults injected at calls 1..%u of the insert", k - 1);
    g_assert_cmpuint(k, >, 10);
    g_assert_cmpuint(rig_log_count("test-guest: event 0 slot 07"), ==, 1);
    fx_down(&fx);
}

/* ================================================================ save/restore */

static GBytes *guest_config(PciBus *bus, uint8_t devfn)
{
    guint8 *b = g_malloc(PCI_EXT_CONFIG_SIZE);

    for (unsigned o = 0; o < PCI_EXT_CONFIG_SIZE; o += 4) {
        uint32_t v = pci_bus_cfg_read(bus, devfn, o, 4);
        memcpy(b + o, &v, 4);
    }
    return g_bytes_new_take(b, PCI_EXT_CONFIG_SIZE);
}

/* The guest used the devices: BARs assigned, decode on, interrupt lines,
 * bus mastering, a PM state. */
static void guest_uses_devices(PciBus *bus)
{
    TgScan *scan = g_new0(TgScan, 1);

    tg_scan(bus, true, scan);
    for (int i = 0; i < scan->nfuncs; i++) {
        const TgFunc *f = &scan->funcs[i];
        tg_cfg_write(bus, f->devfn, PCI_INTERRUPT_LINE, 5 + (unsigned)i, 1);
        uint16_t cmd = (uint16_t)tg_cfg_read(bus, f->devfn, PCI_COMMAND, 2);
        tg_cfg_write(bus, f->devfn, PCI_COMMAND, cmd | PCI_COMMAND_MASTER, 2);
    }
    g_free(scan);
}

static char *state_path(void)
{
    return g_build_filename(g_get_tmp_dir(), "qemu-dm-state-XXXXXX", NULL);
}

static void test_save_restore_least_reversed(void)
{
    Rig a, b;
    PtError err;
    PtPlanDefaults ident = pt_plan_defaults();
    g_autofree char *path = state_path();
    int fd = g_mkstemp(path);

    close(fd);
    rig_up_with(&a, ASUS, &ident);
    rig_attach(&a, "0000:00:1d.7,1,0@7,map=least");
    guest_uses_devices(a.bus);
    const uint8_t devfns[] = { 0x38, 0x39, 0x3a };
    GBytes *before[3];
    for (int i = 0; i < 3; i++)
        before[i] = guest_config(a.bus, devfns[i]);
    g_assert_cmpint(dm_state_save(a.guest, a.bus, path, &err), ==, 0);
    rig_down(&a);

    /* A new device model whose default is identity: least must not run again. */
    rig_up_with(&b, ASUS, &ident);
    if (dm_state_restore(b.guest, b.bus, path, &err) < 0)
        g_error("restore: %s", err.msg);
    static const struct { uint8_t func, vdevfn; } want[] = { { 7, 0x38 }, { 1, 0x39 },
                                                              { 0, 0x3a } };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        PtBdf h = { 0, 0, 0x1d, want[i].func };
        g_assert_cmpint(pt_guest_vslot_of(b.guest, h), ==, 7);
        for (int j = 0; j < pt_guest_count(b.guest); j++)
            if (pt_guest_func_at(b.guest, j)->host.func == want[i].func)
                g_assert_cmphex(pt_guest_func_at(b.guest, j)->vdevfn, ==, want[i].vdevfn);
    }
    for (int i = 0; i < 3; i++) {
        g_autoptr(GBytes) after = guest_config(b.bus, devfns[i]);
        g_assert_true(g_bytes_equal(before[i], after));
        g_bytes_unref(before[i]);
    }
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(b.hv) + hypervisor_sim_ioport_mappings(b.hv),
                     >, 0);
    rig_down(&b);
    g_unlink(path);
}

typedef struct SlotSeen {
    unsigned inserts;
    uint8_t funcs_at_first;     /* the slot's functions at the first insert */
    PciBus *bus;
} SlotSeen;

static void on_slot_seen(void *opaque, unsigned vslot, bool inserted)
{
    SlotSeen *seen = opaque;

    if (inserted && !seen->inserts++)
        seen->funcs_at_first = pci_bus_slot_funcs(seen->bus, vslot);
}

/* Two host devices share guest slot 07, the one at vfunc 0 attached (and
 * so saved) first: the restore plugs it last, and the slot is inserted
 * once, whole.  The other has two functions (07.1, 07.2). */
static void test_restore_shared_slot_function0_last(void)
{
    Rig a, b;
    PtError err;
    g_autofree char *path = state_path();
    int fd = g_mkstemp(path);

    close(fd);
    rig_up(&a, ASUS);
    rig_attach(&a, "0000:06:00.1=0@7");
    /* 1d.0 and 1d.1 at 07.1 and 07.2, one function at a time as xend
     * inserts them (the notation refuses a device without vfunc 0). */
    PtWire w;
    g_assert_cmpint(pt_wire_parse("0000:00:1d.0", &w, &err), ==, 0);
    for (uint8_t f = 0; f < 2; f++) {
        PtRequest usb = { .dev = 0x1d, .nfuncs = 1, .pfunc = { f }, .vfunc = { f + 1 },
                          .vslot = 7, .opts = w.opts };
        if (pt_guest_attach_request(a.guest, &usb, "1d", true, NULL, &err) < 0)
            g_error("attach 1d.%u: %s", f, err.msg);
    }
    g_assert_cmphex(pci_bus_slot_funcs(a.bus, 7), ==, 0x07);
    guest_uses_devices(a.bus);
    g_assert_cmpint(dm_state_save(a.guest, a.bus, path, &err), ==, 0);
    rig_down(&a);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_assert_true(g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL));
    g_autofree char *first = g_key_file_get_string(kf, "function 0", "host", NULL);
    g_assert_cmpstr(first, ==, "0000:06:00.1");

    rig_up(&b, ASUS);
    SlotSeen seen = { .bus = b.bus };
    pt_guest_set_slot_observer(b.guest, on_slot_seen, &seen);
    size_t from = hypervisor_sim_log_len(b.hv);
    if (dm_state_restore(b.guest, b.bus, path, &err) < 0)
        g_error("restore: %s", err.msg);
    g_assert_cmpuint(seen.inserts, ==, 1);
    g_assert_cmphex(seen.funcs_at_first, ==, 0x07);
    static const struct { PtBdf host; uint8_t vdevfn; } want[] = {
        { { 0, 6, 0, 1 }, 0x38 }, { { 0, 0, 0x1d, 0 }, 0x39 }, { { 0, 0, 0x1d, 1 }, 0x3a },
    };
    g_assert_cmpint(pt_guest_count(b.guest), ==, 3);
    for (int i = 0; i < pt_guest_count(b.guest); i++) {
        const PtGuestFunc *f = pt_guest_func_at(b.guest, i);
        size_t k = 0;
        while (k < G_N_ELEMENTS(want) && (want[k].host.bus != f->host.bus ||
                                           want[k].host.dev != f->host.dev ||
                                           want[k].host.func != f->host.func))
            k++;
        g_assert_cmpuint(k, <, G_N_ELEMENTS(want));
        g_assert_cmphex(f->vdevfn, ==, want[k].vdevfn);
    }
    PtBdf last = { 0 };
    for (size_t i = from; i < hypervisor_sim_log_len(b.hv); i++) {
        const HvCall *c = hypervisor_sim_log_at(b.hv, i);
        if (c->op == HV_OP_ASSIGN_DEVICE)
            last = c->host;
    }
    g_assert_cmphex(last.bus, ==, 6);
    g_assert_cmphex(last.func, ==, 1);
    pt_guest_set_slot_observer(b.guest, NULL, &seen);
    rig_down(&b);
    g_unlink(path);
}

/* Through xenstore: the backend names the saved vdevfns, qemu-dm puts the
 * functions there and loads their state; vdevfn-N stays as saved. */
static void test_restore_through_backend(void)
{
    Fx fx = { 0 };
    Rig a;
    PtError err;
    g_autofree char *path = state_path();
    int fd = g_mkstemp(path);

    close(fd);
    rig_up(&a, ASUS);
    rig_attach(&a, "0000:00:1d.7,1,0@7,map=least");
    guest_uses_devices(a.bus);
    g_autoptr(GBytes) cfg0 = guest_config(a.bus, 0x3a);
    g_assert_cmpint(dm_state_save(a.guest, a.bus, path, &err), ==, 0);
    rig_down(&a);

    fx_store(&fx);
    put_be(&fx, "num_devs", "3");
    const char *devs[] = { "0000:00:1d.7", "0000:00:1d.1", "0000:00:1d.0" };
    const char *vdevfns[] = { "38", "39", "3a" };
    for (int i = 0; i < 3; i++) {
        g_autofree char *d = g_strdup_printf("dev-%d", i), *v = g_strdup_printf("vdevfn-%d", i);
        g_autofree char *k = g_strdup_printf("key-%d", i);
        put_be(&fx, d, devs[i]);
        put_be(&fx, v, vdevfns[i]);
        put_be(&fx, k, "0000:00:1d.7,1,0@7,map=least");
    }
    if (fx_dm_try(&fx, ASUS, true, path, &err) < 0)
        g_error("%s", err.msg);
    g_autofree char *l = layout_sorted(&fx);
    g_assert_cmpstr(l, ==, "0000:00:1d.0=07.2 0000:00:1d.1=07.1 0000:00:1d.7=07.0");
    g_autoptr(GBytes) cfg1 = guest_config(fx.rig.bus, 0x3a);
    g_assert_true(g_bytes_equal(cfg0, cfg1));
    const char *const want[] = { "0000:00:1d.7", "38", "0000:00:1d.1", "39", "0000:00:1d.0",
                                 "3a", NULL };
    assert_backend(&fx, want);
    fx_down(&fx);
    g_unlink(path);
}

static void test_save_command(void)
{
    Fx fx = { 0 };
    PtError err;
    g_autofree char *path = state_path();
    int fd = g_mkstemp(path);
    DmXenConfig cfg = { .domid = DOMID, .test_guest = true, .save_state = path };
    char *state, *reply;

    close(fd);
    fx_store(&fx);
    rig_up(&fx.rig, ASUS);
    fx.dmx = dm_xen_start(&cfg, fx.rig.host, fx.rig.guest, fx.rig.bus, NULL, NULL, &err);
    g_assert_nonnull(fx.dmx);
    expect_ins(&fx, "0000:00:1d.7,1,0@7,map=least", "0x38,0x39,0x3a");
    g_assert_cmpint(call(&fx, "save", "", xs_replies_save, TMO, &state, &reply, &err), ==, 0);
    g_assert_cmpstr(state, ==, "paused");
    g_free(state);
    g_free(reply);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_assert_true(g_key_file_load_from_file(kf, path, 0, NULL));
    g_assert_cmpint(g_key_file_get_integer(kf, "qemu-dm", "functions", NULL), ==, 3);
    g_autofree char *v0 = g_key_file_get_string(kf, "function 0", "vdevfn", NULL);
    g_autofree char *h0 = g_key_file_get_string(kf, "function 0", "host", NULL);
    g_assert_nonnull(v0);
    g_assert_nonnull(h0);
    fx_down(&fx);
    g_unlink(path);
}

static void test_restore_refuses_bad_files(void)
{
    static const char *const bad[] = {
        "[qemu-dm]\nformat=2\nfunctions=0\n",
        "[qemu-dm]\nformat=1\nfunctions=1\n",
        "[qemu-dm]\nformat=1\nfunctions=1\n[function 0]\nhost=0000:00:1d.0\nvdevfn=138\n"
        "options=\nshadow=AAAA\nbus=10=0\ncommand=0\n",
        "[qemu-dm]\nformat=1\nfunctions=1\n[function 0]\nhost=0000:00:1d.0\nvdevfn=38\n"
        "options=\nshadow=AAAA\nbus=10=0\ncommand=0\n",
    };
    static const char *const reasons[] = { "not a qemu-dm state", "[function 0] has no host",
                                           "vdevfn '138'", "shadow: 3 bytes, expected 4096" };
    Rig r;
    PtError err;
    g_autofree char *path = state_path();
    int fd = g_mkstemp(path);

    close(fd);
    rig_up(&r, ASUS);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_true(g_file_set_contents(path, bad[i], -1, NULL));
        g_assert_cmpint(dm_state_restore(r.guest, r.bus, path, &err), <, 0);
        if (!strstr(err.msg, reasons[i]))
            g_error("'%s' lacks '%s'", err.msg, reasons[i]);
        g_assert_cmpint(pt_guest_count(r.guest), ==, 0);
    }
    rig_down(&r);
    g_unlink(path);
}

/* ================================================================ many cycles */

static int count_fds(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    int n = 0;

    while (d && g_dir_read_name(d))
        n++;
    return n;
}

static void test_cycles_leak_nothing(void)
{
    Fx fx;
    const int cycles = 1000;

    fx_up(&fx, true);
    /* One cycle first: lazily created things (threads, caches) exist after it. */
    expect_ins(&fx, "0000:00:1d.*@7", "0x38,0x39,0x3a,0x3f");
    g_autofree char *r0 = NULL;
    g_free(pci_rem(&fx, "0000:00:1d.0", &r0));
    int fds = count_fds();
    for (int i = 0; i < cycles; i++) {
        g_autofree char *reply = NULL;
        expect_ins(&fx, "0000:00:1d.*@7", "0x38,0x39,0x3a,0x3f");
        g_autofree char *state = pci_rem(&fx, "0000:00:1d.2", &reply);
        g_assert_cmpstr(state, ==, "pci-removed");
        g_assert_cmpint(pt_guest_count(fx.rig.guest), ==, 0);
    }
    g_assert_cmpint(count_fds(), ==, fds);
    g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(fx.rig.hv), ==, 0);
    g_autofree char *num = get_be(&fx, "num_devs");
    g_assert_cmpstr(num, ==, "0");
    fx_down(&fx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    unsetenv("XENSTORED_PATH");
    g_test_add_func("/xenstore/boot/xend-format", test_boot_xend_format);
    g_test_add_func("/xenstore/boot/libxl-format", test_boot_libxl_format);
    g_test_add_func("/xenstore/boot/malformed", test_boot_malformed);
    g_test_add_func("/xenstore/boot/all-or-none", test_boot_all_or_none);
    g_test_add_func("/xenstore/one-owner", test_one_owner);
    g_test_add_func("/xenstore/groups/reset-iommu", test_groups_reset_iommu);
    g_test_add_func("/xenstore/groups/page", test_groups_page);
    g_test_add_func("/xenstore/ins/extended-one-command", test_ins_extended_one_command);
    g_test_add_func("/xenstore/ins/every-form", test_ins_every_form);
    g_test_add_func("/xenstore/ins/legacy-per-function-as-xend",
                    test_ins_legacy_per_function_as_xend);
    g_test_add_func("/xenstore/rem/by-any-function", test_rem_by_any_function);
    g_test_add_func("/xenstore/rem/guest-never-ejects", test_rem_guest_never_ejects);
    g_test_add_func("/xenstore/rem/front-end-ejector", test_rem_front_end_ejector);
    g_test_add_func("/xenstore/request-without-device-model", test_request_without_device_model);
    g_test_add_func("/xenstore/hostile-parameters", test_hostile_parameters);
    g_test_add_func("/xenstore/atomic/unopenable-function", test_atomic_unopenable_function);
    g_test_add_func("/xenstore/atomic/every-hypervisor-fault", test_atomic_every_hypervisor_fault);
    g_test_add_func("/xenstore/save-restore/least-reversed", test_save_restore_least_reversed);
    g_test_add_func("/xenstore/save-restore/shared-slot-function0-last",
                    test_restore_shared_slot_function0_last);
    g_test_add_func("/xenstore/save-restore/through-backend", test_restore_through_backend);
    g_test_add_func("/xenstore/save-restore/save-command", test_save_command);
    g_test_add_func("/xenstore/save-restore/bad-files", test_restore_refuses_bad_files);
    g_test_add_func("/xenstore/cycles-leak-nothing", test_cycles_leak_nothing);
    return g_test_run();
}
