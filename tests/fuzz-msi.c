/*
 * libFuzzer target for MSI and MSI-X: a guest program of config writes to
 * the MSI and MSI-X capabilities, MSI-X table and PBA accesses of every
 * size and alignment, BAR moves, decode changes, resets, and one injected
 * hypervisor failure, on real functions of bundled hosts.
 *
 * Input: byte 0 picks the function, byte 1 arms the hypervisor failure
 * (0: none, else the k-th call of the guest program fails), the rest is
 * the program (see run_op).  After the program:
 *  - the host's config file changed only in bits a guest may send there;
 *  - the sim hypervisor saw no invariant broken, and its live bindings
 *    are exactly the function's INTx plus the MSI vectors it counts;
 *  - the log grew by a bounded number of lines (XSA-130);
 * and after detach nothing is left: no pirq, binding or mapping.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "hypervisor-sim.h"
#include "dm-log.h"
#include "pt-guest.h"
#include "pt-msi.h"
#include "rig.h"
#include "simtree.h"
#include "test-guest.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

typedef struct Target {
    const char *dump;
    const char *spec;
    const char *bdf;            /* the host config file to watch */
} Target;

/* MSI 64-bit maskable + 10 MSI-X; 256 MSI-X; MSI 32-bit 2 messages
 * (a bridge); MSI 64-bit; MSI 32-bit. */
static const Target targets[] = {
    { "intel-82576-sriov.lspci", "01:00.0", "0000:01:00.0" },
    { "mellanox-cx3pro-aer-root.lspci", "03:00.0", "0000:03:00.0" },
    { "mellanox-cx3pro-aer-root.lspci", "00:02.0", "0000:00:02.0" },
    { "asus-p6t6-x58-ich10-gt218.lspci", "06:00.1", "0000:06:00.1" },
    { "samsung-r730-gt216m.lspci", "03:00.0", "0000:03:00.0" },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static char *trees[NTARGETS];
static HostPci *hosts[NTARGETS];
static unsigned long log_lines;
static TgScan scan;

static void count_line(const char *line, void *opaque)
{
    (void)line, (void)opaque;
    log_lines++;
}

/* libFuzzer ends a timed run with exit(): the simulated hosts go with it. */
static void remove_trees(void)
{
    for (size_t i = 0; i < NTARGETS; i++) {
        simtree_remove(trees[i]);
        trees[i] = NULL;
    }
}

static void setup(void)
{
    PtError err;

    dm_log_set_sink(count_line, NULL);
    rig_tmp_in_memory();
    atexit(remove_trees);
    for (size_t i = 0; i < NTARGETS; i++) {
        for (size_t k = 0; k < i && !hosts[i]; k++)
            if (strcmp(targets[k].dump, targets[i].dump) == 0)
                hosts[i] = hosts[k];
        if (hosts[i])
            continue;
        trees[i] = simtree_build(targets[i].dump, true);
        hosts[i] = host_pci_open(trees[i], &err);
        CHECK(hosts[i]);
    }
}

/* The host's config file of target t, mapped shared once: a snapshot is a copy
 * of what libpci last wrote, without a system call. */
static GBytes *host_config(size_t t)
{
    static uint8_t *maps[NTARGETS];
    static size_t sizes[NTARGETS];
    size_t k = t;

    while (!trees[k])
        k--;        /* the tree of the first target on the same host */
    if (!maps[t]) {
        g_autofree char *path = g_build_filename(trees[k], "devices", targets[t].bdf, "config",
                                                 NULL);
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0);
        sizes[t] = (size_t)st.st_size;
        maps[t] = mmap(NULL, sizes[t], PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        CHECK(maps[t] != MAP_FAILED);
    }
    return g_bytes_new(maps[t], sizes[t]);
}

/* ---- the guest program ---- */

typedef struct Guest {
    PciBus *bus;
    uint8_t devfn;
    PtFunc *fn;
    unsigned msi_cap;
    TgMsix x;
    bool has_msix;
} Guest;

typedef struct Reader {
    const uint8_t *p;
    size_t n;
} Reader;

static uint8_t take8(Reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t takeN(Reader *r, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)take8(r) << (8 * i);
    return v;
}

static const unsigned cfg_lens[] = { 1, 2, 4 };
static const unsigned mmio_lens[] = { 1, 2, 4, 8 };

static void refind(Guest *g)
{
    g->has_msix = tg_msix_find(g->bus, g->devfn, &g->x) == 0;
}

static void op_msi_cfg(Guest *g, Reader *r)
{
    unsigned off = g->msi_cap + take8(r) % 24, len = cfg_lens[take8(r) % 3];

    if (g->msi_cap)
        tg_cfg_write(g->bus, g->devfn, off, (uint32_t)takeN(r, 4), len);
}

static void op_msix_cfg(Guest *g, Reader *r)
{
    unsigned off = g->x.cap + take8(r) % 12, len = cfg_lens[take8(r) % 3];

    if (g->has_msix)
        tg_cfg_write(g->bus, g->devfn, off, (uint32_t)takeN(r, 4), len);
}

/* Anywhere in the table and a little past it, any size and alignment. */
static void op_table(Guest *g, Reader *r)
{
    uint64_t off = takeN(r, 2) % (g->x.nvec * PT_MSIX_ENTRY_SIZE + 32);
    unsigned len = mmio_lens[take8(r) % 4];
    bool write = take8(r) & 1;
    uint64_t v = takeN(r, 8);

    if (!g->has_msix)
        return;
    if (write)
        tg_mmio_write(g->bus, g->x.table + off, len, v);
    else
        tg_mmio_read(g->bus, g->x.table + off, len, &v);
}

static void op_pba(Guest *g, Reader *r)
{
    uint64_t off = take8(r) % 24, v = 0;
    unsigned len = mmio_lens[take8(r) % 4];

    if (!g->has_msix)
        return;
    if (take8(r) & 1)
        tg_mmio_write(g->bus, g->x.pba + off, len, takeN(r, 8));
    else
        tg_mmio_read(g->bus, g->x.pba + off, len, &v);
}

/* A well-behaved driver's steps, so that bindings happen often. */
static void op_program(Guest *g, Reader *r)
{
    unsigned entry = take8(r), dest = take8(r), vec = take8(r), flags = take8(r);

    if (g->has_msix)
        tg_msix_program(g->bus, &g->x, entry % g->x.nvec,
                        tg_msi_address((uint8_t)dest, flags & 1, flags & 2),
                        tg_msi_data((uint8_t)vec, flags >> 2, flags & 0x80), flags & 0x40);
}

static void op_msix_ctrl(Guest *g, Reader *r)
{
    unsigned b = take8(r);

    if (g->has_msix)
        tg_msix_control(g->bus, g->devfn, &g->x, b & 1, b & 2);
}

static void op_msi_enable(Guest *g, Reader *r)
{
    unsigned n = take8(r), dest = take8(r), vec = take8(r);

    if (n & 0x80)
        tg_msi_disable(g->bus, g->devfn);
    else
        tg_msi_enable(g->bus, g->devfn, tg_msi_address((uint8_t)dest, n & 8, n & 16),
                      tg_msi_data((uint8_t)vec, 0, false), 1u << (n % 6));
}

static void op_command(Guest *g, Reader *r)
{
    tg_cfg_write(g->bus, g->devfn, PCI_COMMAND, (uint32_t)takeN(r, 2), 2);
    refind(g);
}

static void op_bar_move(Guest *g, Reader *r)
{
    unsigned bar = take8(r) % 6;
    uint32_t addr = 0xc0000000u + ((uint32_t)takeN(r, 2) << 12);

    tg_cfg_write(g->bus, g->devfn, PCI_BASE_ADDRESS_0 + 4 * bar, addr, 4);
    refind(g);
}

static void op_reset(Guest *g, Reader *r)
{
    (void)r;
    pci_bus_reset(g->bus);
    tg_scan(g->bus, true, &scan);
    refind(g);
}

static void op_cfg_any(Guest *g, Reader *r)
{
    unsigned off = take8(r), len = cfg_lens[take8(r) % 3];

    tg_cfg_write(g->bus, g->devfn, off & ~(len - 1), (uint32_t)takeN(r, 4), len);
    refind(g);
}

static void (*const ops[])(Guest *g, Reader *r) = {
    op_msi_cfg, op_msix_cfg, op_table, op_table, op_pba, op_program, op_program,
    op_msix_ctrl, op_msi_enable, op_command, op_bar_move, op_reset, op_cfg_any,
};

/* ---- invariants ---- */

static void check_host_bytes(PtFunc *fn, GBytes *before, GBytes *after)
{
    gsize n;
    const uint8_t *b = g_bytes_get_data(before, &n);
    const uint8_t *a = g_bytes_get_data(after, NULL);

    CHECK(g_bytes_get_size(after) == n);
    if (!memcmp(a, b, n))
        return;
    /* Only changed bytes: the allowed bits cost a capability walk each. */
    for (gsize o = 0; o < n; o++)
        CHECK(a[o] == b[o] ||
              !((a[o] ^ b[o]) & ~(pt_func_host_writable(fn, (unsigned)o) |
                                  pt_msi_host_enable_bits(fn, (unsigned)o))));
}

static size_t intx_bindings(Hypervisor *hv)
{
    size_t live = 0;

    /* Bindings minus unbindings of INTx in the log. */
    for (size_t i = 0; i < hypervisor_sim_log_len(hv); i++) {
        const HvCall *c = hypervisor_sim_log_at(hv, i);
        if (c->rc == 0 && c->op == HV_OP_BIND_INTX)
            live++;
        if (c->rc == 0 && c->op == HV_OP_UNBIND_INTX)
            live--;
    }
    return live;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    PtPlanDefaults dflt = pt_plan_defaults();
    PtError err;

    if (!ready) {
        setup();
        ready = true;
    }
    if (size < 2)
        return 0;
    size_t t = data[0] % NTARGETS;
    Hypervisor *hv = hypervisor_sim_new();
    PciBus *bus = pci_bus_new(hv);
    PtGuest *pg = pt_guest_new(hosts[t], bus, hv, PT_RESERVED_DEFAULT, &dflt);
    GBytes *before = host_config(t);

    CHECK(pt_guest_attach(pg, targets[t].spec, NULL, &err) == 0);
    const PtGuestFunc *gf = pt_guest_func_at(pg, 0);
    Guest g = { .bus = bus, .devfn = gf->vdevfn, .fn = gf->fn,
                .msi_cap = pt_func_find_cap(gf->fn, PCI_CAP_ID_MSI) };
    tg_scan(bus, true, &scan);
    refind(&g);

    unsigned long lines = log_lines;
    if (data[1])
        hypervisor_sim_fail_call(hv, data[1], EIO);
    Reader r = { data + 2, size - 2 };
    while (r.n)
        ops[take8(&r) % (sizeof(ops) / sizeof(ops[0]))](&g, &r);
    hypervisor_sim_fail_call(hv, 0, 0);

    GBytes *after = host_config(t);
    check_host_bytes(gf->fn, before, after);
    CHECK(hypervisor_sim_error_count(hv) == 0);
    CHECK(hypervisor_sim_bindings(hv) == intx_bindings(hv) + pt_msi_bound(gf->msi));
    /* The burst, its closing line, the one-time warnings of the function. */
    CHECK(log_lines - lines <= PT_MSI_LOG_BURST + 4);

    pt_guest_free(pg);
    CHECK(hypervisor_sim_check_clean(hv) == 0);
    pci_bus_free(bus);
    hypervisor_free(hv);
    g_bytes_unref(before);
    g_bytes_unref(after);
    return 0;
}
