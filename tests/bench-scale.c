/*
 * Benchmark: costs as a guest fills up.  A simulated host with 31 eight-
 * function devices, each function a copy of the ICH7 UHCI controller of the
 * bundled constructed-ich7-usb-0123457 dump (its own bus, its own I/O
 * ports), is attached slot by slot into slots 1-31 (only slot 0 kept for
 * the platform), up to 248 functions.  After each slot, side by side:
 *   attach   ns per function of attaching the slot's 8 functions (the
 *            fastest of 3: attach, detach, attach again...)
 *   access   ns of one guest config read through mechanism #1, reads of
 *            8 emulated registers of every function attached so far, and
 *            the same reads replayed on plain arrays (raw)
 *   BAR move ns of moving the I/O BAR of slot 1's function 0 with decode
 *            on: an unmap, the overlap check against every live mapping,
 *            a map
 *   memory   heap bytes per function of the slot's attach (mallinfo2)
 * Timing is CPU time, the fastest of several passes.  Exits non-zero only
 * when an attach fails or the sim hypervisor records an error.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "dm-log.h"
#include "hypervisor-sim.h"
#include "pass-through.h"
#include "pci.h"
#include "pt-guest.h"
#include "simtree.h"
#include "test-guest.h"

#define SLOTS        31
#define FUNCS        8
#define IO_HOST_BASE 0x1000u
#define IO_GUEST     0xc000u    /* slot s function f: IO_GUEST + 0x20 * index */
#define IO_MOVE_A    0xf000u    /* beyond every function's place */
#define IO_MOVE_B    0xf800u
#define PASSES       7
#define MOVES        200

static const uint16_t regs[] = {
    PCI_VENDOR_ID, PCI_COMMAND, PCI_CLASS_REVISION, PCI_HEADER_TYPE,
    PCI_BASE_ADDRESS_4, PCI_SUBSYSTEM_VENDOR_ID, PCI_INTERRUPT_LINE, PCI_CACHE_LINE_SIZE,
};
#define NREGS (sizeof(regs) / sizeof(regs[0]))

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void quiet(const char *line, void *opaque)
{
    (void)line, (void)opaque;
}

/* ------------------------------------------------------------ the host */

/* The first function of the real dump, as text. */
static char *uhci_block(void)
{
    g_autofree char *path = simtree_dump_path("constructed-ich7-usb-0123457.lspci");
    char *text, *end;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        g_error("%s: cannot read", path);
    end = strstr(text, "\n\n");
    if (!end)
        g_error("%s: no first function", path);
    end[1] = '\0';
    return text;
}

/* One copy at bus:00.func with its own I/O ports (region line and BAR4). */
static void append_copy(GString *g, const char *block, unsigned bus, unsigned fn,
                        unsigned port)
{
    g_auto(GStrv) lines = g_strsplit(block, "\n", -1);

    for (int i = 0; lines[i]; i++) {
        const char *l = lines[i];
        if (i == 0)
            g_string_append_printf(g, "%02x:00.%x%s\n", bus, fn, strchr(l, ' '));
        else if (strstr(l, "Region 4: I/O ports at "))
            g_string_append_printf(g, "\tRegion 4: I/O ports at %04x [size=32]\n", port);
        else if (g_str_has_prefix(l, "20: "))
            g_string_append_printf(g, "20: %02x %02x%s\n", (port & 0xff) | 1, port >> 8, l + 9);
        else if (*l)
            g_string_append_printf(g, "%s\n", l);
    }
    g_string_append_c(g, '\n');
}

static char *build_host(void)
{
    g_autofree char *block = uhci_block();
    g_autoptr(GString) g = g_string_new("");
    g_autoptr(GError) gerr = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("bench-scale-XXXXXX.lspci", &path, &gerr);

    g_assert_no_error(gerr);
    for (unsigned b = 1; b <= SLOTS; b++)
        for (unsigned f = 0; f < FUNCS; f++)
            append_copy(g, block, b, f, IO_HOST_BASE + 0x20 * ((b - 1) * FUNCS + f));
    if (write(fd, g->str, g->len) != (ssize_t)g->len)
        g_error("%s: short write", path);
    close(fd);
    char *tree = simtree_build_path(path, true);
    g_unlink(path);
    g_free(path);
    return tree;
}

/* ------------------------------------------------------------ measures */

typedef struct Row {
    int k;
    double attach_ns, access_ns, raw_ns, move_ns, bytes;
} Row;

static void spec_of(char buf[32], unsigned slot)
{
    snprintf(buf, 32, "%02x:00.*@%x", slot, slot);
}

static void attach_slot(PtGuest *g, unsigned slot)
{
    char spec[32];
    PtError err;

    spec_of(spec, slot);
    if (pt_guest_attach(g, spec, NULL, &err) < 0)
        g_error("attach %s: %s", spec, err.msg);
}

static double time_attach(PtGuest *g, unsigned slot, double *bytes)
{
    uint64_t best = UINT64_MAX;
    char spec[32];
    PtError err;

    spec_of(spec, slot);
    for (int rep = 0; rep < 3; rep++) {
        if (rep && pt_guest_detach_slot(g, slot, &err) < 0)
            g_error("detach slot %u: %s", slot, err.msg);
        size_t before = mallinfo2().uordblks;
        uint64_t t0 = cpu_ns();
        attach_slot(g, slot);
        uint64_t ns = cpu_ns() - t0;
        *bytes = (double)(mallinfo2().uordblks - before) / FUNCS;
        best = MIN(best, ns);
    }
    return (double)best / FUNCS;
}

/* The guest gives the slot's functions their I/O BARs and turns decode on. */
static void program_slot(PciBus *bus, unsigned slot)
{
    for (unsigned f = 0; f < FUNCS; f++) {
        uint8_t devfn = PT_DEVFN(slot, f);
        unsigned index = (slot - 1) * FUNCS + f;
        tg_cfg_write(bus, devfn, PCI_BASE_ADDRESS_4, IO_GUEST + 0x20 * index, 4);
        tg_cfg_write(bus, devfn, PCI_COMMAND, PCI_COMMAND_IO, 2);
    }
}

static uint8_t raw_space[PCI_BUS_DEVFNS][PCI_CONFIG_SIZE];

/* ns per read: NREGS registers of every function attached so far. */
static void time_access(PciBus *bus, unsigned slots, double *ours, double *raw)
{
    static volatile uint32_t sink;
    uint64_t best = UINT64_MAX, best_raw = UINT64_MAX;
    unsigned n = slots * FUNCS * NREGS;

    for (int p = 0; p < PASSES; p++) {
        uint32_t sum = 0;
        uint64_t t0 = cpu_ns();
        for (unsigned s = 1; s <= slots; s++)
            for (unsigned f = 0; f < FUNCS; f++)
                for (unsigned r = 0; r < NREGS; r++)
                    sum += tg_cfg_read(bus, PT_DEVFN(s, f), regs[r], 2);
        uint64_t t1 = cpu_ns();
        for (unsigned s = 1; s <= slots; s++)
            for (unsigned f = 0; f < FUNCS; f++)
                for (unsigned r = 0; r < NREGS; r++) {
                    uint16_t v;
                    memcpy(&v, &raw_space[PT_DEVFN(s, f)][regs[r]], 2);
                    sum += v;
                }
        uint64_t t2 = cpu_ns();
        sink += sum;
        best = MIN(best, t1 - t0);
        best_raw = MIN(best_raw, t2 - t1);
    }
    *ours = (double)best / n;
    *raw = (double)best_raw / n;
}

/* ns per move of slot 1 function 0's BAR4, decode on, back and forth. */
static double time_move(PciBus *bus)
{
    uint8_t devfn = PT_DEVFN(1, 0);
    uint64_t best = UINT64_MAX;

    for (int p = 0; p < PASSES; p++) {
        uint64_t t0 = cpu_ns();
        for (int m = 0; m < MOVES; m++)
            tg_cfg_write(bus, devfn, PCI_BASE_ADDRESS_4, m & 1 ? IO_MOVE_B : IO_MOVE_A, 4);
        best = MIN(best, cpu_ns() - t0);
    }
    tg_cfg_write(bus, devfn, PCI_BASE_ADDRESS_4, IO_GUEST, 4);
    if (!pci_device_bar_mapped(pci_bus_device(bus, devfn), 4))
        g_error("slot 1 function 0: BAR4 not mapped after the moves");
    return (double)best / MOVES;
}

/* ------------------------------------------------------------ report */

static void print_row(const Row *r)
{
    printf("%5d | %10.0f | %8.2f %7.2f %5.1fx | %9.0f | %8.1f\n", r->k, r->attach_ns,
           r->access_ns, r->raw_ns, r->access_ns / r->raw_ns, r->move_ns, r->bytes / 1024);
}

static void print_flat(const char *what, double first, double last)
{
    printf("  %-28s first %10.2f  last %10.2f  last/first %5.2fx  %s\n", what, first, last,
           last / first, last / first <= 2 ? "flat (goal: at most 2x)" : "NOT flat (goal: 2x)");
}

int main(void)
{
    PtPlanDefaults dflt = pt_plan_defaults();
    Row rows[SLOTS];
    double max_bytes = 0;
    int failures = 0;

    dm_log_set_sink(quiet, NULL);
    char *tree = build_host();
    PtError err;
    HostPci *host = host_pci_open(tree, &err);
    if (!host)
        g_error("%s", err.msg);
    Hypervisor *hv = hypervisor_sim_new();
    PciBus *bus = pci_bus_new(hv);
    PtGuest *g = pt_guest_new(host, bus, hv, 0x1, &dflt);

    printf("bench-scale: %d slots x %d functions (ICH7 UHCI copies on a constructed "
           "simulated host), filled slot by slot\n\n", SLOTS, FUNCS);
    printf("%5s | %10s | %8s %7s %6s | %9s | %8s\n", "funcs", "attach ns", "read ns",
           "raw ns", "x raw", "BAR mv ns", "KiB/func");
    for (unsigned s = 1; s <= SLOTS; s++) {
        Row *r = &rows[s - 1];
        r->attach_ns = time_attach(g, s, &r->bytes);
        program_slot(bus, s);
        r->k = pt_guest_count(g);
        time_access(bus, s, &r->access_ns, &r->raw_ns);
        r->move_ns = time_move(bus);
        max_bytes = MAX(max_bytes, r->bytes);
        if (s == 1 || s % 5 == 0 || s == SLOTS)
            print_row(r);
    }
    const Row *a = &rows[0], *z = &rows[SLOTS - 1];
    printf("\nfirst slot (k=%d) against the last (k=%d):\n", a->k, z->k);
    print_flat("attach, ns per function", a->attach_ns, z->attach_ns);
    print_flat("config read, ns", a->access_ns, z->access_ns);
    print_flat("BAR move, ns", a->move_ns, z->move_ns);
    printf("  memory per attached function: at most %.1f KiB (goal: at most 32 KiB) %s\n",
           max_bytes / 1024, max_bytes <= 32 * 1024 ? "holds" : "MISSES");
    if (hypervisor_sim_error_count(hv)) {
        printf("FAIL: hypervisor: %s\n", hypervisor_sim_error_at(hv, 0));
        failures++;
    }
    pt_guest_free(g);
    pci_bus_free(bus);
    hypervisor_free(hv);
    host_pci_close(host);
    simtree_remove(tree);
    return failures ? 1 : 0;
}
