/*
 * Benchmark: the test guest's full enumeration (tg_scan with BAR
 * assignment) over every bundled host, three ways side by side:
 *   ours          the pass-through emulation, as qemu-dm plugs it
 *   read-through  every config read the bus forwards is a host read, every
 *                 write goes to the host (qemu-xen-traditional's way;
 *                 tests/lib/readthrough.c)
 *   raw           the same guest accesses replayed on plain 4 KiB arrays:
 *                 the floor
 * For each host dump, every device that has a function 0 is attached as
 * "DDDD:BB:SS.*" into the free slots 4-31; devices that do not fit or fail
 * to attach are skipped and counted.
 *
 * A guest config access is one tg_cfg_read/tg_cfg_write: a data-port
 * access of mechanism #1 with the 0xcf8 write in front of it, or one
 * direct access beyond offset 0xff.  They are counted through the test
 * guest's access hook on one tg_scan; the timed runs are tg_scan without
 * the hook.
 *
 * Timing is reported, never judged.  The exit status is non-zero only when
 * a functional invariant breaks: the two modes enumerate different
 * functions, a function placed is not found, or the sim hypervisor records
 * an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "dm-log.h"
#include "hypervisor-sim.h"
#include "pass-through.h"
#include "pci.h"
#include "pt-guest.h"
#include "readthrough.h"
#include "rig.h"
#include "simtree.h"
#include "test-guest.h"

#define FIRST_SLOT     4
#define BUDGET_NS      (100 * 1000 * 1000ull)  /* per mode and host */
#define RAW_BUDGET_NS  (20 * 1000 * 1000ull)
#define MIN_ITERS      5
#define TOP_REGS       12

static unsigned failures;

static void G_GNUC_PRINTF(1, 2) fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    failures++;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ modes */

typedef HostCounters (*CountersFn)(void *opaque);

typedef struct Mode {
    const char *name;
    PciBus *bus;
    CountersFn counters;    /* host accesses of the mode's functions, summed */
    void *opaque;
    Hypervisor *hv;
} Mode;

static HostCounters ours_counters(void *opaque)
{
    const PtGuest *g = opaque;
    HostCounters sum = { 0 };

    for (int i = 0; i < pt_guest_count(g); i++) {
        HostCounters c = host_func_counters(pt_func_host(pt_guest_func_at(g, i)->fn));
        sum.reads += c.reads;
        sum.writes += c.writes;
    }
    return sum;
}

static HostCounters rt_counters(void *opaque)
{
    return readthrough_counters(opaque);
}

static uint64_t host_reads(const Mode *m)
{
    return m->counters(m->opaque).reads;
}

/* ------------------------------------------------------------ counting pass */

typedef struct Access {
    uint16_t offset;
    uint8_t devfn;
    uint8_t len;
    bool write;
    bool host_io;           /* this access read or wrote the host */
    bool hv_call;           /* ... or called the hypervisor (a BAR mapped or unmapped) */
    uint32_t val;
} Access;

/* Host reads caused by guest accesses, by [write][offset]: why a mode reads. */
typedef struct Attribution {
    uint64_t reads[2][PCI_EXT_CONFIG_SIZE];
} Attribution;

static struct {
    const Mode *mode;
    GArray *trace;          /* Access */
    Attribution *attr;
    HostCounters before;    /* host accesses when the access began */
    unsigned long hv_before;    /* hypervisor calls, likewise */
} counting;

/* The test guest's access hook: runs after each access, so the host reads
 * since the previous one are this access's. */
static void count_access(void *opaque, uint8_t devfn, unsigned offset, unsigned len,
                         bool write, uint32_t val)
{
    HostCounters now = counting.mode->counters(counting.mode->opaque);
    unsigned long hv_now = hypervisor_sim_calls(counting.mode->hv);
    bool host_io = now.reads != counting.before.reads || now.writes != counting.before.writes;
    Access a = { (uint16_t)offset, devfn, (uint8_t)len, write, host_io,
                 hv_now != counting.hv_before, write ? val : 0 };

    (void)opaque;
    g_array_append_val(counting.trace, a);
    if (offset < PCI_EXT_CONFIG_SIZE)
        counting.attr->reads[write][offset] += now.reads - counting.before.reads;
    counting.before = now;
    counting.hv_before = hv_now;
}

/* One counted enumeration from reset (tg_scan itself, its accesses seen
 * through the hook); returns the trace of its accesses. */
static GArray *count_scan(const Mode *m, Attribution *attr, TgScan *scan, HostCounters *host)
{
    HostCounters before;

    counting.mode = m;
    counting.trace = g_array_new(FALSE, FALSE, sizeof(Access));
    counting.attr = attr;
    pci_bus_reset(m->bus);
    before = m->counters(m->opaque);
    counting.before = before;
    counting.hv_before = hypervisor_sim_calls(m->hv);
    tg_set_access_hook(count_access, NULL);
    tg_scan(m->bus, true, scan);
    tg_set_access_hook(NULL, NULL);
    *host = m->counters(m->opaque);
    host->reads -= before.reads;
    host->writes -= before.writes;
    counting.mode = NULL;
    return counting.trace;
}

/* ------------------------------------------------------------ timing */

typedef struct Result {
    uint64_t accesses;      /* per scan */
    uint64_t iters;
    uint64_t ns;            /* all timed scans */
    uint64_t host_reads;    /* during the timed scans */
} Result;

static double per_access(uint64_t v, const Result *r)
{
    return r->accesses && r->iters ? (double)v / (double)(r->accesses * r->iters) : 0;
}

/* Boot-time enumerations: each one from a platform reset (not timed). */
static void time_scans(const Mode *m, Result *r, TgScan *scan)
{
    while (r->iters < MIN_ITERS || r->ns < BUDGET_NS) {
        pci_bus_reset(m->bus);
        uint64_t reads = host_reads(m);
        uint64_t t0 = now_ns();
        tg_scan(m->bus, true, scan);
        uint64_t t1 = now_ns();
        r->host_reads += host_reads(m) - reads;
        r->ns += t1 - t0;
        r->iters++;
    }
}

static uint8_t raw_space[PCI_BUS_DEVFNS][PCI_EXT_CONFIG_SIZE];

static uint32_t replay(const GArray *trace)
{
    uint32_t sum = 0;

    for (guint i = 0; i < trace->len; i++) {
        const Access *a = &g_array_index(trace, Access, i);
        uint8_t *p = &raw_space[a->devfn][a->offset];
        uint32_t v = 0;
        if (a->write) {
            memcpy(p, &a->val, a->len);
            continue;
        }
        memcpy(&v, p, a->len);
        sum += v;
    }
    return sum;
}

/* The floor with mechanism #1's framing: the 0xcf8 word stored, then the
 * data port's access decoded from it (as pci_bus_ioport_* must). */
static volatile uint32_t raw_cf8;

static uint32_t replay_framed(const GArray *trace)
{
    uint32_t sum = 0;

    for (guint i = 0; i < trace->len; i++) {
        const Access *a = &g_array_index(trace, Access, i);
        unsigned offset = a->offset;
        uint8_t devfn = a->devfn;
        if (offset < PCI_CONFIG_SIZE) {
            raw_cf8 = PCI_CONFIG_ENABLE | (uint32_t)devfn << 8 | (offset & 0xfc);
            uint32_t cf8 = raw_cf8;
            devfn = (uint8_t)(cf8 >> 8);
            offset = (cf8 & 0xfc) | (a->offset & 3);
        }
        uint8_t *p = &raw_space[devfn][offset];
        uint32_t v = 0;
        if (a->write) {
            memcpy(p, &a->val, a->len);
            continue;
        }
        memcpy(&v, p, a->len);
        sum += v;
    }
    return sum;
}

/* The floor: the same accesses on arrays, no bus, no host. */
static void time_raw(const GArray *trace, Result *r)
{
    static volatile uint32_t sink;

    r->accesses = trace->len;
    while (r->iters < MIN_ITERS || r->ns < RAW_BUDGET_NS) {
        uint64_t t0 = now_ns();
        sink += replay(trace);
        r->ns += now_ns() - t0;
        r->iters++;
    }
}

/* ------------------------------------------------------------ one access */

/*
 * One guest config access against the floor: the accesses of the counted
 * scan replayed in scan order, reads and writes separately, three ways:
 * straight into the bus (pci_bus_cfg_*), framed as the test guest frames
 * them (mechanism #1: the 0xcf8 write, then the data port), and on the
 * plain arrays.  Each round times the three back to back so the machine's
 * noise falls on all of them; ratios are taken within a round and the
 * median round is shown.  Writes replay from a platform reset, so every
 * pass makes the scan's BAR moves again.  "emulated": the accesses that
 * our emulation serves alone, without a host access or a hypervisor call
 * (as seen in the counted scan): the cost of the emulation itself.
 */
enum { PATH_DIRECT, PATH_MECH1, PATH_RAW, PATH_RAW_MECH1, NPATHS };
enum { SET_READS, SET_READS_EMU, SET_WRITES, SET_WRITES_EMU, NSETS };
#define ROUNDS          9
#define REPLAY_NS       (3 * 1000 * 1000ull)    /* per set, round and host */
#define REPLAY_MIN      3

static const char *const set_names[NSETS] = {
    "reads, all", "reads, emulated", "writes, all", "writes, emulated",
};

typedef struct AccessTimes {
    double ns[ROUNDS][NSETS][NPATHS];   /* summed over hosts, per pass */
    uint64_t accesses[NSETS];           /* per pass, summed over hosts */
} AccessTimes;

static GArray *subset(const GArray *trace, bool write, bool emu_only)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(Access));

    for (guint i = 0; i < trace->len; i++) {
        const Access *a = &g_array_index(trace, Access, i);
        if (a->write == write && !(emu_only && (a->host_io || a->hv_call)))
            g_array_append_val(out, *a);
    }
    return out;
}

static uint32_t replay_bus(PciBus *bus, const GArray *trace, bool mech1)
{
    uint32_t sum = 0;

    for (guint i = 0; i < trace->len; i++) {
        const Access *a = &g_array_index(trace, Access, i);
        if (a->write && mech1)
            tg_cfg_write(bus, a->devfn, a->offset, a->val, a->len);
        else if (a->write)
            pci_bus_cfg_write(bus, a->devfn, a->offset, a->val, a->len);
        else
            sum += mech1 ? tg_cfg_read(bus, a->devfn, a->offset, a->len)
                         : pci_bus_cfg_read(bus, a->devfn, a->offset, a->len);
    }
    return sum;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU ns of one pass of the trace on one path (writes from a reset, not timed). */
static uint64_t time_pass(PciBus *bus, const GArray *trace, int path, bool writes)
{
    static volatile uint32_t sink;

    if (writes && path < PATH_RAW)
        pci_bus_reset(bus);
    uint64_t t0 = cpu_ns();
    sink += path == PATH_RAW ? replay(trace) : path == PATH_RAW_MECH1 ? replay_framed(trace)
                                              : replay_bus(bus, trace, path == PATH_MECH1);
    return cpu_ns() - t0;
}

/* One round: passes of the three paths in turn; the fastest pass of each
 * (what the access costs when nothing else takes the core). */
static void time_round(PciBus *bus, const GArray *trace, bool writes, double out[NPATHS])
{
    uint64_t best[NPATHS], spent = 0;

    for (int p = 0; p < NPATHS; p++)
        best[p] = UINT64_MAX;
    for (int k = 0; k < REPLAY_MIN || spent < REPLAY_NS; k++)
        for (int p = 0; p < NPATHS; p++) {
            uint64_t ns = time_pass(bus, trace, p, writes);
            best[p] = MIN(best[p], ns);
            spent += ns;
        }
    for (int p = 0; p < NPATHS; p++)
        out[p] += (double)best[p];
}

static void time_accesses(PciBus *bus, const GArray *trace, AccessTimes *at)
{
    GArray *sets[NSETS] = {
        subset(trace, false, false), subset(trace, false, true),
        subset(trace, true, false), subset(trace, true, true),
    };

    for (int s = 0; s < NSETS; s++)
        at->accesses[s] += sets[s]->len;
    for (int r = 0; r < ROUNDS; r++)
        for (int s = 0; s < NSETS; s++)
            if (sets[s]->len)
                time_round(bus, sets[s], s >= SET_WRITES, at->ns[r][s]);
    for (int s = 0; s < NSETS; s++)
        g_array_free(sets[s], TRUE);
    pci_bus_reset(bus);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), by_double);
    return v[n / 2];
}

/* Median over the rounds of ns per access, or of its ratio to path `ref`
 * within each round (ref < 0: ns). */
static double access_figure(const AccessTimes *at, int s, int p, int ref)
{
    double v[ROUNDS];

    for (int r = 0; r < ROUNDS; r++)
        v[r] = ref >= 0 ? at->ns[r][s][p] / at->ns[r][s][ref]
                        : at->ns[r][s][p] / (double)at->accesses[s];
    return median(v, ROUNDS);
}

static void print_accesses(const AccessTimes *at)
{
    printf("\none guest config access: the scans' accesses replayed, fastest pass of "
           "interleaved ones, median of %d rounds (ratios within each round); goal: at most "
           "3x raw\n", ROUNDS);
    printf("%-17s %6s | %7s %5s | %7s %5s %5s | %6s %6s\n", "", "", "direct", "",
           "mech#1", "", "", "raw", "raw");
    printf("%-17s %6s | %7s %5s | %7s %5s %5s | %6s %6s\n", "", "access", "ns",
           "x raw", "ns", "x raw", "x rm1", "ns", "mech#1");
    for (int s = 0; s < NSETS; s++)
        printf("%-17s %6llu | %7.2f %4.1fx | %7.2f %4.1fx %4.1fx | %6.2f %6.2f\n", set_names[s],
               (unsigned long long)at->accesses[s], access_figure(at, s, PATH_DIRECT, -1),
               access_figure(at, s, PATH_DIRECT, PATH_RAW),
               access_figure(at, s, PATH_MECH1, -1), access_figure(at, s, PATH_MECH1, PATH_RAW),
               access_figure(at, s, PATH_MECH1, PATH_RAW_MECH1),
               access_figure(at, s, PATH_RAW, -1), access_figure(at, s, PATH_RAW_MECH1, -1));
    printf("(x rm1: against the raw replay framed the same way, the 0xcf8 word stored and "
           "decoded; emulated: no host access, no hypervisor call)\n");
}

/* ------------------------------------------------------------ invariants */

static bool same_bars(const TgFunc *a, const TgFunc *b)
{
    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (a->bar[i].size != b->bar[i].size || a->bar[i].base != b->bar[i].base ||
            a->bar[i].io != b->bar[i].io || a->bar[i].mem64 != b->bar[i].mem64)
            return false;
    return true;
}

/* Identity, header and BARs; capability lists differ by design (ours hides some). */
static bool same_func(const TgFunc *a, const TgFunc *b)
{
    return a->devfn == b->devfn && a->vendor == b->vendor && a->device == b->device &&
           a->class_rev == b->class_rev && a->header_type == b->header_type &&
           a->subsys_vendor == b->subsys_vendor && a->subsys == b->subsys &&
           a->int_pin == b->int_pin && same_bars(a, b);
}

static void check_same_scan(const char *host, const char *what, const TgScan *a,
                            const TgScan *b)
{
    if (a->nfuncs != b->nfuncs) {
        fail("%s: %s: %d functions vs %d", host, what, a->nfuncs, b->nfuncs);
        return;
    }
    for (int i = 0; i < a->nfuncs; i++)
        if (!same_func(&a->funcs[i], &b->funcs[i]))
            fail("%s: %s: function %02x.%x differs", host, what,
                 PT_SLOT(a->funcs[i].devfn), PT_FUNC(a->funcs[i].devfn));
}

static void check_hv(const char *host, const char *what, Hypervisor *hv)
{
    if (hypervisor_sim_error_count(hv))
        fail("%s: %s: hypervisor: %s", host, what, hypervisor_sim_error_at(hv, 0));
}

/* ------------------------------------------------------------ one host */

typedef struct Row {
    char host[40];
    int candidates, placed, funcs;
    Result ours, rt, raw;
} Row;

/* Every device with a function 0, whole, into the lowest free slot. */
static void place_all(Rig *rig, Row *row)
{
    HostPci *host = rig->host;

    for (int i = 0; i < host_pci_count(host); i++) {
        PtBdf b = host_pci_bdf_at(host, i);
        char spec[32];
        PtError err;
        if (b.func != 0)
            continue;
        row->candidates++;
        snprintf(spec, sizeof(spec), "%04x:%02x:%02x.*", b.domain, b.bus, b.dev);
        if (pt_guest_attach(rig->guest, spec, NULL, &err) == 0)
            row->placed++;
        else
            printf("  %s: %s not placed: %s\n", row->host, spec, err.msg);
    }
    row->funcs = pt_guest_count(rig->guest);
}

static ReadThrough *plug_readthrough(Rig *rig, Hypervisor *hv, const char *name)
{
    ReadThrough *rt = readthrough_new(rig->host, hv);

    for (int i = 0; i < pt_guest_count(rig->guest); i++) {
        int rc = readthrough_plug_like(rt, pt_guest_func_at(rig->guest, i)->fn);
        if (rc < 0)
            fail("%s: read-through plug of %s: %s", name,
                 pt_func_name(pt_guest_func_at(rig->guest, i)->fn), g_strerror(-rc));
    }
    return rt;
}

/* Count and check once, then time (the first runs are the warm-up). */
static GArray *run_mode(const Row *row, const Mode *m, Attribution *attr, Result *r,
                        TgScan *scan)
{
    HostCounters host;
    GArray *trace = count_scan(m, attr, scan, &host);

    r->accesses = trace->len;
    time_scans(m, r, scan);
    check_hv(row->host, m->name, m->hv);
    return trace;
}

/*
 * rig_down without its assertion: a hypervisor complaint while detaching is
 * reported as a note (the bench measures enumeration; detach has its tests).
 */
static void teardown(Rig *rig, const char *host)
{
    pt_guest_free(rig->guest);
    for (size_t i = 0; i < hypervisor_sim_error_count(rig->hv); i++)
        printf("  %s: note: on detach the sim hypervisor says: %s\n", host,
               hypervisor_sim_error_at(rig->hv, i));
    if (hypervisor_sim_error_count(rig->hv) == 0 && hypervisor_sim_check_clean(rig->hv))
        fail("%s: detach left hypervisor state behind", host);
    pci_bus_free(rig->bus);
    hypervisor_free(rig->hv);
    host_pci_close(rig->host);
    simtree_remove(rig->tree);
    dm_log_set_sink(NULL, NULL);
    *rig = (Rig){ 0 };
}

static void bench_host(const char *dump, Row *row, Attribution *attr_ours,
                       Attribution *attr_rt, AccessTimes *at)
{
    static TgScan ours_scan, rt_scan;
    Rig rig;

    g_strlcpy(row->host, dump, sizeof(row->host));
    *strrchr(row->host, '.') = '\0';
    rig_up(&rig, dump);
    place_all(&rig, row);

    Hypervisor *rt_hv = hypervisor_sim_new();
    ReadThrough *rt = plug_readthrough(&rig, rt_hv, row->host);
    Mode ours = { "ours", rig.bus, ours_counters, rig.guest, rig.hv };
    Mode thru = { "read-through", readthrough_bus(rt), rt_counters, rt, rt_hv };
    GArray *ours_trace = run_mode(row, &ours, attr_ours, &row->ours, &ours_scan);
    GArray *rt_trace = run_mode(row, &thru, attr_rt, &row->rt, &rt_scan);
    time_raw(ours_trace, &row->raw);
    time_accesses(rig.bus, ours_trace, at);
    check_same_scan(row->host, "ours vs read-through", &ours_scan, &rt_scan);
    if (ours_scan.nfuncs != row->funcs)
        fail("%s: %d functions placed, the guest found %d", row->host, row->funcs,
             ours_scan.nfuncs);

    g_array_free(ours_trace, TRUE);
    g_array_free(rt_trace, TRUE);
    readthrough_free(rt);
    if (hypervisor_sim_check_clean(rt_hv))
        fail("%s: read-through left mappings behind", row->host);
    hypervisor_free(rt_hv);
    teardown(&rig, row->host);
}

/* ------------------------------------------------------------ report */

static void add_result(Result *sum, const Result *r)
{
    /* Totals weigh each host by one scan: per-access figures over all hosts. */
    sum->accesses += r->accesses;
    sum->iters = 1;
    sum->ns += r->iters ? r->ns / r->iters : 0;
    sum->host_reads += r->iters ? r->host_reads / r->iters : 0;
}

static double reads_per_scan(const Result *r)
{
    return r->iters ? (double)r->host_reads / (double)r->iters : 0;
}

static void print_header(void)
{
    printf("\n%-30s %9s | %-25s | %-25s | %7s | %s\n", "", "", "ours", "read-through",
           "raw", "host reads");
    printf("%-30s %9s | %6s %7s %10s | %6s %7s %10s | %7s | %s\n", "host",
           "dev/funcs", "acc", "ns/acc", "hreads/acc", "acc", "ns/acc", "hreads/acc",
           "ns/acc", "rt / ours");
}

static void print_row(const char *host, const char *placed, const Result *ours,
                      const Result *rt, const Result *raw)
{
    double ro = reads_per_scan(ours), rr = reads_per_scan(rt);

    printf("%-30s %9s | %6llu %7.1f %10.3f | %6llu %7.1f %10.3f | %7.2f | ", host, placed,
           (unsigned long long)ours->accesses, per_access(ours->ns, ours),
           per_access(ours->host_reads, ours), (unsigned long long)rt->accesses,
           per_access(rt->ns, rt), per_access(rt->host_reads, rt), per_access(raw->ns, raw));
    if (ro > 0)
        printf("%.1fx (%.0f / %.0f per scan)\n", rr / ro, rr, ro);
    else
        printf("- (%.0f / 0 per scan)\n", rr);
}

static const char *reg_name(unsigned off, char buf[24])
{
    static const struct { unsigned off; const char *name; } regs[] = {
        { PCI_VENDOR_ID, "VENDOR_ID" }, { PCI_COMMAND, "COMMAND" }, { PCI_STATUS, "STATUS" },
        { PCI_CLASS_REVISION, "CLASS_REVISION" }, { PCI_HEADER_TYPE, "HEADER_TYPE" },
        { PCI_BASE_ADDRESS_0, "BAR0" }, { PCI_BASE_ADDRESS_1, "BAR1" },
        { PCI_BASE_ADDRESS_2, "BAR2" }, { PCI_BASE_ADDRESS_3, "BAR3" },
        { PCI_BASE_ADDRESS_4, "BAR4" }, { PCI_BASE_ADDRESS_5, "BAR5" },
        { PCI_SUBSYSTEM_VENDOR_ID, "SUBSYSTEM_VENDOR_ID" },
        { PCI_SUBSYSTEM_ID, "SUBSYSTEM_ID" }, { PCI_ROM_ADDRESS, "ROM (type 0)" },
        { PCI_CAPABILITY_LIST, "CAPABILITY_LIST" }, { PCI_ROM_ADDRESS1, "ROM (bridge)" },
        { PCI_INTERRUPT_PIN, "INTERRUPT_PIN" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(regs); i++)
        if (regs[i].off == off)
            return regs[i].name;
    snprintf(buf, 24, off >= 0x100 ? "ext cap header %#x" : "cap header %#x", off);
    return buf;
}

/* Which guest accesses made the host reads, most first. */
static void print_attribution(const char *mode, const Attribution *a, uint64_t scans_reads)
{
    bool used[2][PCI_EXT_CONFIG_SIZE] = { { false } };

    printf("%s: host reads of one enumeration of every host, by guest access:\n", mode);
    for (int k = 0; k < TOP_REGS; k++) {
        int bw = 0, bo = 0;
        uint64_t best = 0;
        for (int w = 0; w < 2; w++)
            for (int o = 0; o < PCI_EXT_CONFIG_SIZE; o++)
                if (!used[w][o] && a->reads[w][o] > best) {
                    best = a->reads[w][o];
                    bw = w;
                    bo = o;
                }
        if (!best)
            break;
        used[bw][bo] = true;
        char buf[24];
        printf("  %6llu (%4.1f%%)  guest %s %s\n", (unsigned long long)best,
               scans_reads ? 100.0 * (double)best / (double)scans_reads : 0,
               bw ? "write" : "read ", reg_name((unsigned)bo, buf));
    }
}

static uint64_t attribution_total(const Attribution *a)
{
    uint64_t n = 0;

    for (int w = 0; w < 2; w++)
        for (int o = 0; o < PCI_EXT_CONFIG_SIZE; o++)
            n += a->reads[w][o];
    return n;
}

static GPtrArray *list_dumps(void)
{
    g_autofree char *dir = g_build_filename(SRCDIR, "tests", "data", "hosts", NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *e;

    while (d && (e = g_dir_read_name(d)))
        if (g_str_has_suffix(e, ".lspci"))
            g_ptr_array_add(names, g_strdup(e));
    if (d)
        g_dir_close(d);
    return names;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Bus complaints (BARs the guest put where they cannot be mapped) repeat
 * on every scan; count them instead of printing thousands of lines. */
static unsigned long printerr_lines;
static char printerr_first[160];

static void count_printerr(const gchar *msg)
{
    if (!printerr_lines++)
        g_strlcpy(printerr_first, msg, sizeof(printerr_first));
    g_strchomp(printerr_first);
}

int main(void)
{
    GPtrArray *dumps = list_dumps();
    Row *rows = g_new0(Row, dumps->len);
    Attribution *attr_ours = g_new0(Attribution, 1), *attr_rt = g_new0(Attribution, 1);
    AccessTimes *at = g_new0(AccessTimes, 1);
    Result sum_ours = { 0 }, sum_rt = { 0 }, sum_raw = { 0 };
    int placed = 0, candidates = 0, funcs = 0;

    g_set_printerr_handler(count_printerr);
    qsort(dumps->pdata, dumps->len, sizeof(char *), by_name);
    printf("bench-enumerate: tg_scan with BAR assignment from reset, every device of each "
           "bundled host in slots %d-31\n", FIRST_SLOT);
    for (guint i = 0; i < dumps->len; i++) {
        bench_host(g_ptr_array_index(dumps, i), &rows[i], attr_ours, attr_rt, at);
        add_result(&sum_ours, &rows[i].ours);
        add_result(&sum_rt, &rows[i].rt);
        add_result(&sum_raw, &rows[i].raw);
        placed += rows[i].placed;
        candidates += rows[i].candidates;
        funcs += rows[i].funcs;
    }
    print_header();
    for (guint i = 0; i < dumps->len; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d/%d", rows[i].placed, rows[i].funcs);
        print_row(rows[i].host, p, &rows[i].ours, &rows[i].rt, &rows[i].raw);
    }
    char p[16];
    snprintf(p, sizeof(p), "%d/%d", placed, funcs);
    print_row("ALL (one scan of each)", p, &sum_ours, &sum_rt, &sum_raw);
    printf("\n%d of %d devices with a function 0 placed (%d functions); acc: guest config "
           "accesses per scan; hreads: host config reads\n\n", placed, candidates, funcs);
    if (printerr_lines)
        printf("(%lu stderr lines of bus and sim logs not shown; the first: %s)\n\n",
               printerr_lines, printerr_first);
    print_attribution("ours", attr_ours, attribution_total(attr_ours));
    print_attribution("read-through", attr_rt, attribution_total(attr_rt));
    print_accesses(at);

    g_free(attr_ours);
    g_free(attr_rt);
    g_free(at);
    g_free(rows);
    g_ptr_array_unref(dumps);
    if (failures)
        printf("\n%u functional invariant(s) broken\n", failures);
    return failures ? 1 : 0;
}
