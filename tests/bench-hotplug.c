/*
 * Hot-plug latency over xenstore, next to xenstore's own round trip in the
 * same run: the real xenstored, qemu-dm's channel on this process's main
 * loop, the toolstack in a thread on its own handle (as xm).  pci-ins of a
 * three-function device is timed from the command write to the reply seen;
 * pci-rem includes the guest's eject.  Three other domains have two
 * functions each in their backend lists, as on a host running guests.
 *
 * Two device models run side by side, their cycles interleaved so the
 * machine's load falls on both alike: "after" as qemu-dm is, and "before"
 * as it was: the host's facts read in full for every group check
 * (host_groups_forget before each request) and every other domain's list
 * read again for every question about a function (a PtHolders source that
 * is never in a request).
 *
 * xenstore round trips are counted where libxenstore is called: this file
 * defines the calls qemu-dm makes and passes them on to the library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host-groups.h"
#include "rig.h"
#include "dm-xen.h"
#include "xs-channel.h"
#include "xenstored.h"

#define ASUS    "asus-p6t6-x58-ich10-gt218.lspci"
#define SPEC    "0000:00:1d.0-2@7"
#define FUNCS   3
#define CYCLES  300
#define TRIPS   2000

/* ================================================================ round trips */

enum { SIDE_AFTER, SIDE_BEFORE, SIDES };
enum { CMD_NONE, CMD_INS, CMD_REM, CMDS };

static const unsigned side_domid[SIDES] = { 1, 5 };
static GThread *dm_thread;
/* The dm thread's round trips, by the command it is serving (the last one
 * it read: a pci-rem's eject and reply come after its command is done). */
static unsigned long dm_trips[SIDES][CMDS];
static int dm_side, dm_cmd;
static gint tool_trips;
static double dm_trip_us[SIDES][CMDS];

static void count_trip(gint64 t0)
{
    if (g_thread_self() == dm_thread) {
        dm_trips[dm_side][dm_cmd]++;
        dm_trip_us[dm_side][dm_cmd] += (double)(g_get_monotonic_time() - t0);
    } else {
        g_atomic_int_inc(&tool_trips);
    }
}

/* A device model reading its command node starts counting for that command. */
static void note_command(const char *path, const char *value)
{
    unsigned domid;
    int end = 0;

    if (g_thread_self() != dm_thread ||
        sscanf(path, "/local/domain/0/device-model/%u/command%n", &domid, &end) != 1 ||
        path[end])
        return;
    for (int s = 0; s < SIDES; s++)
        if (side_domid[s] == domid)
            dm_side = s;
    dm_cmd = !value ? CMD_NONE : !strcmp(value, "pci-ins") ? CMD_INS :
             !strcmp(value, "pci-rem") ? CMD_REM : CMD_NONE;
}

/* Each libxenstore call that is one request to xenstored: passed on to the
 * library, timed and counted; then `after` (with the result r). */
#define PASS_ON(type, fn, params, args, after)                        \
    type fn params                                                    \
    {                                                                 \
        static __typeof__(&fn) real;                                  \
        if (!real)                                                    \
            real = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn);            \
        gint64 t0 = g_get_monotonic_time();                           \
        type r = real args;                                           \
        after;                                                        \
        count_trip(t0);                                               \
        return r;                                                     \
    }

PASS_ON(void *, xs_read, (struct xs_handle *h, xs_transaction_t t, const char *path,
                          unsigned *len), (h, t, path, len), note_command(path, r))
PASS_ON(bool, xs_write, (struct xs_handle *h, xs_transaction_t t, const char *path,
                         const void *data, unsigned len), (h, t, path, data, len), (void)0)
PASS_ON(bool, xs_rm, (struct xs_handle *h, xs_transaction_t t, const char *path),
        (h, t, path), (void)0)
PASS_ON(char **, xs_directory, (struct xs_handle *h, xs_transaction_t t, const char *path,
                                unsigned *num), (h, t, path, num), (void)0)
PASS_ON(xs_transaction_t, xs_transaction_start, (struct xs_handle *h), (h), (void)0)
PASS_ON(bool, xs_transaction_end, (struct xs_handle *h, xs_transaction_t t, bool abort),
        (h, t, abort), (void)0)
PASS_ON(bool, xs_watch, (struct xs_handle *h, const char *path, const char *token),
        (h, path, token), (void)0)
PASS_ON(bool, xs_unwatch, (struct xs_handle *h, const char *path, const char *token),
        (h, path, token), (void)0)

/* ================================================================ samples */

typedef struct Samples {
    double *us;
    int n;
} Samples;

typedef struct Side {
    Rig rig;
    DmXen *dm;
    Samples ins, rem;
    int tool_trips;             /* the toolstack's, all requests */
} Side;

typedef struct Bench {
    struct xs_handle *h;
    Samples read, watch;
    Side side[SIDES];
    gint done;
} Bench;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(Samples *s)
{
    qsort(s->us, (size_t)s->n, sizeof(double), cmp_double);
    return s->n ? s->us[s->n / 2] : 0;
}

static double p99(Samples *s)
{
    qsort(s->us, (size_t)s->n, sizeof(double), cmp_double);
    return s->n ? s->us[(s->n * 99) / 100] : 0;
}

static double now_us(void)
{
    return (double)g_get_monotonic_time();
}

static void sample(Samples *s, double t0)
{
    s->us[s->n++] = now_us() - t0;
}

static void alloc(Samples *s, int n)
{
    s->us = g_new0(double, n);
    s->n = 0;
}

/* ================================================================ the toolstack */

static void round_trips(Bench *b)
{
    xs_write(b->h, XBT_NULL, "/bench/x", "1", 1);
    for (int i = 0; i < TRIPS; i++) {
        unsigned len;
        double t0 = now_us();
        free(xs_read(b->h, XBT_NULL, "/bench/x", &len));
        sample(&b->read, t0);
    }
    for (int i = 0; i < TRIPS / 4; i++) {
        char v[16], *got;
        const char *const want[] = { v, NULL };
        snprintf(v, sizeof(v), "%d", i);
        double t0 = now_us();
        xs_write(b->h, XBT_NULL, "/bench/w", v, (unsigned)strlen(v));
        xs_tool_wait(b->h, "/bench/w", want, 5000, &got);
        sample(&b->watch, t0);
        g_free(got);
    }
}

static int request(Bench *b, int side, const char *cmd, const char *param,
                   const char *const *replies, const char *ok, Samples *s)
{
    char *state, *reply;
    PtError err;
    int trips = g_atomic_int_get(&tool_trips);
    double t0 = now_us();
    int rc = xs_tool_request(b->h, side_domid[side], cmd, param, replies, 5000, &state, &reply,
                             &err);

    if (rc == 0)
        sample(s, t0);
    b->side[side].tool_trips += g_atomic_int_get(&tool_trips) - trips;
    if (rc < 0 || strcmp(state, ok)) {
        fprintf(stderr, "bench-hotplug: domain %u: %s %s: %s\n", side_domid[side], cmd, param,
                rc < 0 ? err.msg : reply);
        rc = -1;
    }
    g_free(state);
    g_free(reply);
    return rc;
}

static int cycle(Bench *b, int side)
{
    Side *sd = &b->side[side];

    if (side == SIDE_BEFORE)
        host_groups_forget(sd->rig.tree);
    return request(b, side, "pci-ins", SPEC, xs_replies_pci_ins, "pci-inserted", &sd->ins) < 0 ||
           request(b, side, "pci-rem", "0000:00:1d.0", xs_replies_pci_rem, "pci-removed",
                   &sd->rem) < 0 ? -1 : 0;
}

static gpointer toolstack(gpointer opaque)
{
    Bench *b = opaque;

    round_trips(b);
    for (int i = 0; i < CYCLES; i++)
        if (cycle(b, SIDE_AFTER) < 0 || cycle(b, SIDE_BEFORE) < 0)
            break;
    g_atomic_int_set(&b->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

/* ================================================================ before */

/*
 * qemu-dm's holders source as it was (xs_backend_holds before it read the
 * lists once per request): every question reads the backend directory and
 * every other domain's whole list through xs_backend_read.
 */
static bool per_question_holds(void *opaque, PtBdf bdf, PtHolder *who)
{
    const XsHolders *xh = opaque;
    unsigned n = 0;
    char **ids = xs_directory(xh->h, XBT_NULL, "/local/domain/0/backend/pci", &n);
    XsBackendList *l = g_new0(XsBackendList, 1);
    bool held = false;
    PtError err;

    for (unsigned i = 0; ids && i < n && !held; i++) {
        unsigned id = (unsigned)atoi(ids[i]);
        if (id == xh->self || xs_backend_read(xh->h, XBT_NULL, id, l, &err) < 0)
            continue;
        for (int k = 0; k < l->n && !held; k++)
            held = l->dev[k].bdf.domain == bdf.domain && l->dev[k].bdf.bus == bdf.bus &&
                   l->dev[k].bdf.dev == bdf.dev && l->dev[k].bdf.func == bdf.func &&
                   l->dev[k].state != XS_STATE_CLOSED;
        if (held)
            *who = (PtHolder){ .domid = id, .vdevfn = -1 };
    }
    free(ids);
    g_free(l);
    return held;
}

/* ================================================================ set-up and report */

/* Domains 2-4 ("guest2"...) have two functions each, in groups of their own. */
static void put_other_domains(struct xs_handle *h)
{
    static const char *const held[][2] = {
        { "0000:ff:00.0", "0000:ff:00.1" },
        { "0000:ff:02.0", "0000:ff:02.1" },
        { "0000:00:14.0", "0000:00:14.1" },
    };

    for (unsigned d = 0; d < G_N_ELEMENTS(held); d++) {
        char path[128], v[32];
        snprintf(path, sizeof(path), "/local/domain/%u/name", d + 2);
        snprintf(v, sizeof(v), "guest%u", d + 2);
        xs_write(h, XBT_NULL, path, v, (unsigned)strlen(v));
        xs_path_backend(d + 2, "num_devs", path, sizeof(path));
        xs_write(h, XBT_NULL, path, "2", 1);
        for (int i = 0; i < 2; i++) {
            char node[16];
            snprintf(node, sizeof(node), "dev-%d", i);
            xs_path_backend(d + 2, node, path, sizeof(path));
            xs_write(h, XBT_NULL, path, held[d][i], (unsigned)strlen(held[d][i]));
            snprintf(node, sizeof(node), "state-%d", i);
            xs_path_backend(d + 2, node, path, sizeof(path));
            xs_write(h, XBT_NULL, path, "4", 1);
        }
    }
}

static int side_up(Side *sd, int side, PtError *err)
{
    DmXenConfig cfg = { .domid = (int)side_domid[side], .test_guest = true };

    rig_up(&sd->rig, ASUS);
    alloc(&sd->ins, CYCLES);
    alloc(&sd->rem, CYCLES);
    sd->dm = dm_xen_start(&cfg, sd->rig.host, sd->rig.guest, sd->rig.bus, NULL, NULL, err);
    return sd->dm ? 0 : -1;
}

static void side_down(Side *sd)
{
    dm_xen_stop(sd->dm);
    rig_down(&sd->rig);
    g_free(sd->ins.us);
    g_free(sd->rem.us);
}

static void report_line(const char *what, Samples *before, Samples *after)
{
    double bm = median(before), bp = p99(before), am = median(after), ap = p99(after);

    printf("  %-36s %8.1f %9.1f   %8.1f %9.1f   %5.2fx %5.2fx\n", what, bm, bp, am, ap,
           am / bm, ap / bp);
}

static void report_trips(const char *what, int cmd)
{
    double b = (double)dm_trips[SIDE_BEFORE][cmd] / CYCLES;
    double a = (double)dm_trips[SIDE_AFTER][cmd] / CYCLES;

    printf("  %-36s %8.1f (%5.1f/fn)   %8.1f (%5.1f/fn)\n", what, b, b / FUNCS, a, a / FUNCS);
    printf("  %-36s %8.1f us             %8.1f us\n", "  time in them, mean",
           dm_trip_us[SIDE_BEFORE][cmd] / CYCLES, dm_trip_us[SIDE_AFTER][cmd] / CYCLES);
}

static void report(Bench *b)
{
    Side *bf = &b->side[SIDE_BEFORE], *af = &b->side[SIDE_AFTER];

    printf("bench-hotplug: real xenstored, sim hypervisor, %d cycles of %s; 3 other domains "
           "with 2 functions each\n", CYCLES, SPEC);
    printf("  %-36s median %8.1f us   p99 %8.1f us   (%d)\n", "xenstore round trip (xs_read)",
           median(&b->read), p99(&b->read), b->read.n);
    printf("  %-36s median %8.1f us   p99 %8.1f us   (%d)\n", "xenstore write -> watch seen",
           median(&b->watch), p99(&b->watch), b->watch.n);
    printf("  %-36s %-21s   %-21s   %s\n", "", "before (read again)", "after (kept)",
           "after/before");
    printf("  %-36s %8s %9s   %8s %9s   %6s %6s\n", "us", "median", "p99", "median", "p99",
           "median", "p99");
    report_line("hot-plug pci-ins -> pci-inserted", &bf->ins, &af->ins);
    report_line("hot-unplug pci-rem -> eject -> removed", &bf->rem, &af->rem);
    printf("  xenstore round trips, qemu-dm's side, per request (per function of %d):\n", FUNCS);
    report_trips("pci-ins", CMD_INS);
    report_trips("pci-rem (with the eject)", CMD_REM);
    printf("  %-36s %8.1f               %8.1f\n", "the toolstack's, per request",
           (double)bf->tool_trips / (2 * CYCLES), (double)af->tool_trips / (2 * CYCLES));
    double ap = p99(&af->ins);
    printf("  goal: pci-ins p99 at most 2000 us: %.1f us, %s\n", ap,
           ap <= 2000 ? "holds" : "misses");
}

int main(void)
{
    rig_tmp_in_memory();
    Xenstored *xsd = xenstored_start();
    Bench b = { .h = xs_open(0) };
    PtError err;

    dm_thread = g_thread_self();
    if (!b.h) {
        fprintf(stderr, "bench-hotplug: no xenstore handle\n");
        return 1;
    }
    put_other_domains(b.h);
    for (int s = 0; s < SIDES; s++)
        if (side_up(&b.side[s], s, &err) < 0) {
            fprintf(stderr, "bench-hotplug: domain %u: %s\n", side_domid[s], err.msg);
            return 1;
        }
    /* Before: every question reads every other domain's list again. */
    XsHolders live = { xs_open(0), side_domid[SIDE_BEFORE] };
    PtHolders per_question = { .held = per_question_holds, .opaque = &live };
    pt_guest_set_holders(b.side[SIDE_BEFORE].rig.guest, &per_question);
    memset(dm_trips, 0, sizeof(dm_trips));
    alloc(&b.read, TRIPS);
    alloc(&b.watch, TRIPS / 4);
    GThread *t = g_thread_new("toolstack", toolstack, &b);
    while (!g_atomic_int_get(&b.done))
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(t);
    int ok = 1;
    for (int s = 0; s < SIDES; s++)
        ok &= b.side[s].ins.n == CYCLES && b.side[s].rem.n == CYCLES;
    if (ok)
        report(&b);
    for (int s = SIDES; s-- > 0;)
        side_down(&b.side[s]);
    xs_close(live.h);
    xs_close(b.h);
    xenstored_stop(xsd);
    g_free(b.read.us);
    g_free(b.watch.us);
    return ok ? 0 : 1;
}
