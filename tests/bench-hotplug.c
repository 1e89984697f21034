/*
 * Hot-plug latency over xenstore, next to xenstore's own round trip in the
 * same run: the real xenstored, qemu-dm's channel on this process's main
 * loop, the toolstack in a thread on its own handle (as xm).  pci-ins of a
 * three-function device is timed from the command write to the reply seen;
 * pci-rem includes the guest's eject.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "rig.h"
#include "dm-xen.h"
#include "xs-channel.h"
#include "xenstored.h"

#define ASUS   "asus-p6t6-x58-ich10-gt218.lspci"
#define DOMID  1
#define CYCLES 300
#define TRIPS  2000

typedef struct Samples {
    double *us;
    int n;
} Samples;

typedef struct Bench {
    struct xs_handle *h;
    Samples read, watch, ins, rem;
    gint done;
} Bench;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void report(const char *what, Samples *s)
{
    qsort(s->us, (size_t)s->n, sizeof(double), cmp_double);
    printf("  %-38s median %8.1f us   p99 %8.1f us   (%d)\n", what, s->us[s->n / 2],
           s->us[(s->n * 99) / 100], s->n);
}

static double now_us(void)
{
    return (double)g_get_monotonic_time();
}

static void sample(Samples *s, double t0)
{
    s->us[s->n++] = now_us() - t0;
}

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

static int request(Bench *b, const char *cmd, const char *param, const char *const *replies,
                   const char *ok, Samples *s)
{
    char *state, *reply;
    PtError err;
    double t0 = now_us();
    int rc = xs_tool_request(b->h, DOMID, cmd, param, replies, 5000, &state, &reply, &err);

    if (rc == 0)
        sample(s, t0);
    if (rc < 0 || strcmp(state, ok)) {
        fprintf(stderr, "bench-hotplug: %s %s: %s\n", cmd, param, rc < 0 ? err.msg : reply);
        rc = -1;
    }
    g_free(state);
    g_free(reply);
    return rc;
}

static gpointer toolstack(gpointer opaque)
{
    Bench *b = opaque;

    round_trips(b);
    for (int i = 0; i < CYCLES; i++)
        if (request(b, "pci-ins", "0000:00:1d.0-2@7", xs_replies_pci_ins, "pci-inserted",
                    &b->ins) < 0 ||
            request(b, "pci-rem", "0000:00:1d.0", xs_replies_pci_rem, "pci-removed",
                    &b->rem) < 0)
            break;
    g_atomic_int_set(&b->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

static void alloc(Samples *s, int n)
{
    s->us = g_new0(double, n);
    s->n = 0;
}

int main(void)
{
    Xenstored *xsd = xenstored_start();
    DmXenConfig cfg = { .domid = DOMID, .test_guest = true };
    Bench b = { .h = xs_open(0) };
    PtError err;
    Rig rig;

    rig_up(&rig, ASUS);
    DmXen *x = dm_xen_start(&cfg, rig.host, rig.guest, rig.bus, NULL, NULL, &err);
    if (!x || !b.h) {
        fprintf(stderr, "bench-hotplug: %s\n", x ? "no xenstore handle" : err.msg);
        return 1;
    }
    alloc(&b.read, TRIPS);
    alloc(&b.watch, TRIPS / 4);
    alloc(&b.ins, CYCLES);
    alloc(&b.rem, CYCLES);
    GThread *t = g_thread_new("toolstack", toolstack, &b);
    while (!g_atomic_int_get(&b.done))
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(t);
    int ok = b.ins.n == CYCLES && b.rem.n == CYCLES;
    printf("bench-hotplug: real xenstored, sim hypervisor, %d cycles of 0000:00:1d.0-2@7\n",
           CYCLES);
    report("xenstore round trip (xs_read)", &b.read);
    report("xenstore write -> watch seen", &b.watch);
    if (b.ins.n)
        report("hot-plug pci-ins -> pci-inserted", &b.ins);
    if (b.rem.n)
        report("hot-unplug pci-rem -> eject -> removed", &b.rem);
    dm_xen_stop(x);
    rig_down(&rig);
    xs_close(b.h);
    xenstored_stop(xsd);
    g_free(b.read.us);
    g_free(b.watch.us);
    g_free(b.ins.us);
    g_free(b.rem.us);
    return ok ? 0 : 1;
}
