/*
 * libFuzzer target for guest config accesses to passed-through functions.
 *
 * Set up once: several rigs (simulated hosts from bundled dumps, each with
 * its sim hypervisor and guest bus) with devices of different kinds
 * attached: multi-function USB, a GPU pair least-mapped, non-contiguous
 * uncore functions (permissive), an SR-IOV NIC, PCIe root ports (bridges,
 * power_mgmt=1), a ConnectX-3 with its root port, a Fiji GPU.  Targets are
 * their functions plus a few devfns where nothing answers.
 *
 * An input is rig:u8 (which rig, modulo their number; inputs stay on one
 * rig, so only it needs a reset between inputs) and a sequence of operations:
 *   ctrl:u8 target:u8 [offset:u16le value:len bytes (writes only)]
 *   ctrl bits 1:0  size 1, 2, 4; 3: a special operation (no offset)
 *        bit 2     write (special: 0 platform reset, 1 the test guest
 *                  sizes every BAR of the target as Linux does, or with
 *                  bits 7:4 all set runs its full enumeration with BAR
 *                  assignment; one of these per input: each costs tens to
 *                  hundreds of accesses)
 *        bit 3     through mechanism #1 (ports 0xcf8/0xcfc), else
 *                  pci_bus_cfg_read/write (which reach offsets 0x100-0xfff)
 *        bits 7:4  all set, with bit 3: a config address the bus must
 *                  ignore (offset bit 15: bus 1, else enable bit clear)
 *   target: the rig's functions in attach order, then its empty devfns
 *   (FUZZ_CONFIG_TARGETS=1 lists them); offset: bits 11:0 (mechanism #1
 *   uses bits 7:0).
 *
 * Invariants, each a crash (abort) when broken:
 *  - after a write, the host's config file (read through a shared mapping
 *    of the file, not through the code under test) changed only inside the bytes written and only
 *    in bits pt_func_host_writable allows there, and in COMMAND and STATUS
 *    only in the bits rig_header_host_changeable states apart from the
 *    emulation's tables; after the test guest's
 *    sequences only in allowed bits; after a reset or an ignored access
 *    not at all;
 *  - the sim hypervisor records no violation (overlap, bad unmap...);
 *  - reads the bus must refuse (absent function, ignored address, an
 *    access across a dword, beyond the config space) read all ones;
 *  - at the end of an input no function's host bytes differ from what the
 *    checks above accepted (a write never lands on another function).
 * Each input starts from a platform reset and the host bytes of attach
 * time, so inputs replay alone.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <glib.h>

#include "dm-log.h"
#include "hypervisor-sim.h"
#include "pass-through.h"
#include "pci.h"
#include "pt-guest.h"
#include "pt-msi.h"
#include "rig.h"
#include "simtree.h"
#include "test-guest.h"

#define MAX_SPECS    4
#define MAX_ABSENT   2
#define MAX_TARGETS  16
/* Inputs on one rig between a detach and attach of all its devices (which
 * checks that detach leaves the hypervisor clean). */
#define REATTACH_EVERY 5000

typedef struct RigSpec {
    const char *dump;
    const char *specs[MAX_SPECS];
    uint8_t absent[MAX_ABSENT];     /* devfns where nothing answers (0: none) */
} RigSpec;

static const RigSpec rig_specs[] = {
    { "asus-p6t6-x58-ich10-gt218.lspci",
      { "00:1d.*@7", "06:00.0-1@8,map=least", "ff:03.*@9,permissive=1" },
      { PT_DEVFN(7, 3), PT_DEVFN(20, 0) } },
    { "intel-82576-sriov.lspci", { "01:00.0@4" }, { PT_DEVFN(4, 1) } },
    { "gigabyte-ich7m-rootports.lspci", { "00:1c.*@5,power_mgmt=1" }, { 0 } },
    { "mellanox-cx3pro-aer-root.lspci", { "00:02.0@4", "03:00.0@6" }, { 0 } },
    { "amd-fiji-rebar.lspci", { "09:00.0@4" }, { 0 } },
};

#define NRIGS (sizeof(rig_specs) / sizeof(rig_specs[0]))

typedef struct Target {
    uint8_t devfn;
    PtFunc *fn;                     /* NULL: nothing there, the bus answers */
    uint8_t *host;                  /* the host's config file, mapped shared */
    unsigned size;
    bool dirty;
    bool touched;                   /* accessed by this input: reset before the next */
    uint8_t base[PCI_EXT_CONFIG_SIZE];      /* host bytes after attach, restored per input */
    uint8_t mirror[PCI_EXT_CONFIG_SIZE];    /* host bytes the checks accepted so far */
} Target;

typedef struct FuzzRig {
    Rig rig;
    unsigned long inputs;
    bool touched_all;               /* a platform reset or the guest's scan ran */
    int ntargets;
    Target t[MAX_TARGETS];
} FuzzRig;

static FuzzRig rigs[NRIGS];

static TgScan scan;
/* The rig the last input used: only it needs a reset. */
static FuzzRig *used;
/* The test guest's sequences cost tens to hundreds of accesses: one per input. */
static bool guest_ran;

/* ------------------------------------------------------------ failing */

static void G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("fuzz-config: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static const char *target_name(const Target *t)
{
    return t->fn ? pt_func_name(t->fn) : "(nothing there)";
}

/* ------------------------------------------------------------ set-up */

static void quiet_log(const char *line, void *opaque)
{
    (void)line, (void)opaque;
}

/* Bus logs (a BAR the input put where it cannot be mapped) would flood stderr. */
static void quiet_printerr(const gchar *msg)
{
    (void)msg;
}

/*
 * A shared mapping of the file sees every write libpci makes, without a
 * system call per check (system calls are most of the cost per input).
 */
static uint8_t *map_host(const char *path, unsigned size)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    void *p;

    if (fd < 0)
        die("%s: cannot open", path);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        die("%s: cannot map", path);
    return p;
}

static Target *new_target(FuzzRig *fr)
{
    if (fr->ntargets == MAX_TARGETS)
        die("more than %d targets in one rig", MAX_TARGETS);
    return &fr->t[fr->ntargets++];
}

static void add_function(FuzzRig *fr, PtFunc *fn)
{
    Target *t = new_target(fr);
    PtBdf b = pt_func_host_bdf(fn);
    char bdf[16];

    snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", b.domain, b.bus, b.dev, b.func);
    g_autofree char *path = rig_host_config_path(&fr->rig, bdf);
    *t = (Target){ .devfn = pt_func_vdevfn(fn), .fn = fn, .size = pt_func_config_size(fn) };
    t->host = map_host(path, t->size);
    memcpy(t->base, t->host, t->size);
    memcpy(t->mirror, t->base, t->size);
}

static void attach_all(FuzzRig *fr, const RigSpec *rs)
{
    fr->ntargets = 0;
    for (int i = 0; i < MAX_SPECS && rs->specs[i]; i++)
        rig_attach(&fr->rig, rs->specs[i]);
    for (int i = 0; i < pt_guest_count(fr->rig.guest); i++)
        add_function(fr, pt_guest_func_at(fr->rig.guest, i)->fn);
    for (int i = 0; i < MAX_ABSENT && rs->absent[i]; i++)
        *new_target(fr) = (Target){ .devfn = rs->absent[i] };
}

static void rig_build(FuzzRig *fr, const RigSpec *rs)
{
    rig_up(&fr->rig, rs->dump);
    attach_all(fr, rs);
    dm_log_set_sink(quiet_log, NULL);
}

static void unmap_targets(FuzzRig *fr)
{
    for (int i = 0; i < fr->ntargets; i++)
        if (fr->t[i].host)
            munmap(fr->t[i].host, fr->t[i].size);
}

/*
 * Detach everything and attach it again on the same simulated host (its
 * bytes back to attach time): detach must leave the hypervisor clean, and
 * attach must work again after it.
 */
static void rig_reattach(FuzzRig *fr, const RigSpec *rs)
{
    Rig *r = &fr->rig;

    unmap_targets(fr);
    pt_guest_free(r->guest);
    if (hypervisor_sim_check_clean(r->hv))
        die("%s: detach left hypervisor state behind", rs->dump);
    r->guest = pt_guest_new(r->host, r->bus, r->hv, PT_RESERVED_DEFAULT, &r->dflt);
    attach_all(fr, rs);
}

/* FUZZ_CONFIG_TARGETS=1: which target byte picks what, for writing seeds. */
static void list_targets(void)
{
    for (size_t r = 0; r < NRIGS; r++)
        for (int i = 0; i < rigs[r].ntargets; i++) {
            const Target *t = &rigs[r].t[i];
            fprintf(stderr, "rig %zu (%s) target %d: devfn %02x.%x %s\n", r,
                    rig_specs[r].dump, i, PT_SLOT(t->devfn), PT_FUNC(t->devfn),
                    target_name(t));
        }
}

/* libFuzzer ends a timed run with exit(): the simulated hosts go with it. */
static void remove_trees(void)
{
    for (size_t r = 0; r < NRIGS; r++) {
        simtree_remove(rigs[r].rig.tree);
        rigs[r].rig.tree = NULL;
    }
}

static void setup(void)
{
    g_set_printerr_handler(quiet_printerr);
    rig_tmp_in_memory();
    atexit(remove_trees);
    for (size_t r = 0; r < NRIGS; r++)
        rig_build(&rigs[r], &rig_specs[r]);
    if (g_getenv("FUZZ_CONFIG_TARGETS"))
        list_targets();
}

/* ------------------------------------------------------------ checks */

static void check_hv(const FuzzRig *fr, const char *after)
{
    Hypervisor *hv = fr->rig.hv;

    if (hypervisor_sim_error_count(hv))
        die("after %s: sim hypervisor: %s", after, hypervisor_sim_error_at(hv, 0));
}

#define CHUNK 64   /* bytes compared at once before looking at each (sizes are multiples) */

/*
 * The host bytes of t against what it held: bytes in [lo, hi) may change
 * in host-writable bits, and in COMMAND and STATUS only in the bits stated
 * apart from the tables (written: the guest's bytes from lo, or NULL when
 * unknown); the others not at all.
 */
static void check_host(Target *t, unsigned lo, unsigned hi, const uint8_t *written,
                       const char *after)
{
    const uint8_t *now = t->host;

    if (!t->fn || !memcmp(now, t->mirror, t->size))
        return;
    for (unsigned o = 0; o < t->size; o++) {
        if (o % CHUNK == 0 && !memcmp(now + o, t->mirror + o, CHUNK)) {
            o += CHUNK - 1;     /* nothing changed in this chunk */
            continue;
        }
        uint8_t allowed = pt_msi_host_enable_bits(t->fn, o);
        if (o >= lo && o < hi)
            allowed |= pt_func_host_writable(t->fn, o) &
                       rig_header_host_changeable(o, t->mirror[o], written ? written[o - lo] : 0xff);
        if ((now[o] ^ t->mirror[o]) & ~allowed)
            die("%s: after %s: host byte %#x changed 0x%02x -> 0x%02x, allowed 0x%02x",
                target_name(t), after, o, t->mirror[o], now[o], allowed);
    }
    memcpy(t->mirror, now, t->size);
    t->dirty = true;
}

static void check_rig(FuzzRig *fr, bool may_write, const char *after)
{
    for (int i = 0; i < fr->ntargets; i++)
        check_host(&fr->t[i], 0, may_write ? PCI_EXT_CONFIG_SIZE : 0, NULL, after);
    check_hv(fr, after);
}

static uint32_t ones(unsigned len)
{
    return len == 4 ? UINT32_MAX : (1u << (8 * len)) - 1;
}

/* Reads the bus must refuse: nothing there, across a dword, beyond the space. */
static bool refused(const Target *t, unsigned offset, unsigned len)
{
    return !t->fn || (offset & 3) + len > 4 || offset >= t->size;
}

static void check_read(const Target *t, unsigned offset, unsigned len, bool ignored,
                       uint32_t val)
{
    if ((ignored || refused(t, offset, len)) && val != ones(len))
        die("%s: read of %u bytes at %#x gave %#x, not all ones%s", target_name(t), len,
            offset, val, ignored ? " (ignored config address)" : "");
}

/* ------------------------------------------------------------ operations */

typedef struct Op {
    FuzzRig *fr;
    Target *t;
    unsigned offset, len;
    bool write, ports, ignored, bus1;
    uint32_t val;
} Op;

static uint32_t cf8(const Op *op)
{
    uint32_t a = (uint32_t)op->t->devfn << 8 | (op->offset & 0xfc);

    if (!op->ignored)
        return PCI_CONFIG_ENABLE | a;
    return op->bus1 ? PCI_CONFIG_ENABLE | 1u << 16 | a : a;
}

static uint32_t do_access(const Op *op)
{
    PciBus *bus = op->fr->rig.bus;
    uint16_t port = (uint16_t)(PCI_CONFIG_DATA_PORT + (op->offset & 3));

    if (!op->ports) {
        if (op->write)
            pci_bus_cfg_write(bus, op->t->devfn, op->offset, op->val, op->len);
        return op->write ? 0 : pci_bus_cfg_read(bus, op->t->devfn, op->offset, op->len);
    }
    pci_bus_ioport_write(bus, PCI_CONFIG_ADDRESS_PORT, cf8(op), 4);
    if (op->write)
        pci_bus_ioport_write(bus, port, op->val, op->len);
    return op->write ? 0 : pci_bus_ioport_read(bus, port, op->len);
}

static void run_access(const Op *op)
{
    uint32_t val = do_access(op);

    if (!op->write) {
        check_read(op->t, op->offset, op->len, op->ignored, val);
        return;
    }
    /* An ignored address writes nothing: no byte may change. */
    unsigned hi = op->ignored ? op->offset : op->offset + op->len;
    uint8_t written[4];
    for (unsigned i = 0; i < op->len; i++)
        written[i] = (uint8_t)(op->val >> (8 * i));
    check_host(op->t, op->offset, hi, written, "a guest write");
    check_hv(op->fr, "a guest write");
}

static void size_bars(FuzzRig *fr, Target *t)
{
    for (int bar = 0; bar < PCI_NUM_BARS; bar++)
        tg_size_bar(fr->rig.bus, t->devfn, bar);
    check_rig(fr, true, "the guest's BAR sizing");
}

static void run_special(FuzzRig *fr, Target *t, uint8_t ctrl)
{
    if (!(ctrl & 4)) {
        fr->touched_all = true;
        pci_bus_reset(fr->rig.bus);
        check_rig(fr, false, "a platform reset");
        return;
    }
    if (guest_ran)
        return;
    guest_ran = true;
    if ((ctrl & 0xf0) != 0xf0) {
        size_bars(fr, t);
        return;
    }
    fr->touched_all = true;
    tg_scan(fr->rig.bus, true, &scan);
    check_rig(fr, true, "the guest's enumeration");
}

static uint32_t get_le(const uint8_t *p, unsigned len)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* Decode and run one operation; the bytes used, or 0 when the input ends. */
static size_t run_op(FuzzRig *fr, const uint8_t *d, size_t n)
{
    static const unsigned sizes[] = { 1, 2, 4 };

    if (n < 2)
        return 0;
    uint8_t ctrl = d[0];
    Op op = { .fr = fr, .t = &fr->t[d[1] % fr->ntargets] };
    op.t->touched = true;
    if ((ctrl & 3) == 3) {
        run_special(fr, op.t, ctrl);
        return 2;
    }
    op.len = sizes[ctrl & 3];
    op.write = ctrl & 4;
    if (n < 4 + (op.write ? op.len : 0))
        return 0;
    uint16_t raw = (uint16_t)get_le(d + 2, 2);
    op.ports = ctrl & 8;
    op.ignored = op.ports && (ctrl & 0xf0) == 0xf0;
    op.bus1 = raw & 0x8000;
    op.offset = op.ports ? raw & 0xffu : raw & 0xfffu;
    op.val = op.write ? get_le(d + 4, op.len) : 0;
    run_access(&op);
    return 4 + (op.write ? op.len : 0);
}

/* ------------------------------------------------------------ per input */

static void restore_host(Target *t)
{
    if (!t->dirty)
        return;
    memcpy(t->host, t->base, t->size);
    memcpy(t->mirror, t->base, t->size);
    t->dirty = false;
}

/*
 * A platform reset, as far as it changes anything: every function this rig
 * has was reset when an input last touched it, so only those the last
 * input touched need it again (all of them after a reset or a scan).
 */
static void reset_touched(FuzzRig *fr)
{
    PciBus *bus = fr->rig.bus;

    if (fr->touched_all) {
        pci_bus_reset(bus);
    } else {
        pci_bus_ioport_write(bus, PCI_CONFIG_ADDRESS_PORT, 0, 4);
        for (int i = 0; i < fr->ntargets; i++)
            if (fr->t[i].touched && fr->t[i].fn)
                pci_device_reset(pt_func_device(fr->t[i].fn));
    }
    for (int i = 0; i < fr->ntargets; i++)
        fr->t[i].touched = false;
    fr->touched_all = false;
}

/* Back to a platform reset and the host bytes of attach time. */
static void begin_input(FuzzRig *fr)
{
    for (int i = 0; i < fr->ntargets; i++)
        restore_host(&fr->t[i]);
    if (++fr->inputs % REATTACH_EVERY == 0) {
        rig_reattach(fr, &rig_specs[fr - rigs]);
        fr->touched_all = true;
    }
    /* The checks look at the live state only: the call log would just grow. */
    hypervisor_sim_log_clear(fr->rig.hv);
    reset_touched(fr);
    guest_ran = false;
}

/* Nothing changed that a check did not see: no write strayed to another function. */
static void end_input(FuzzRig *fr)
{
    check_rig(fr, false, "the input (a write that reached another function?)");
}

/*
 * The sim hypervisor logs every call by design, so nearly every input ends
 * with more mallocs than frees and libFuzzer's per-input leak check (a full
 * LSan scan, then a second run) would dominate the run time.  Turned off
 * unless the command line asks for it.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char no_leaks[] = "-detect_leaks=0";
    char **args = g_new0(char *, (size_t)*argc + 2);

    for (int i = 0; i < *argc; i++) {
        if (g_str_has_prefix((*argv)[i], "-detect_leaks="))
            return 0;
        args[i] = (*argv)[i];
    }
    args[*argc] = no_leaks;
    *argv = args;
    (*argc)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    size_t n;

    if (!ready) {
        setup();
        ready = true;
    }
    if (size == 0)
        return 0;
    if (used)
        begin_input(used);
    used = &rigs[data[0] % NRIGS];
    data++, size--;
    while ((n = run_op(used, data, size)) > 0) {
        data += n;
        size -= n;
    }
    end_input(used);
    return 0;
}
