/*
 * qemu-dm: the device model's entry point.  Options in QEMU's single-dash
 * style (a double dash is accepted too), read through one table.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host-pci.h"
#include "hypervisor.h"
#include "monitor.h"
#include "php.h"
#include "pt-guest.h"
#include "pt-plan.h"
#include "qemu-vm.h"
#include "xen-hotplug.h"
#include "xen-ioreq.h"
#include "dm-xen.h"
#include "xs-channel.h"

#define MAX_SPECS 64

typedef struct DmConfig {
    const char *host_sysfs;             /* NULL: the real /sys/bus/pci */
    const char *specs[MAX_SPECS];
    int nspecs;
    uint32_t reserved;
    PtPlanDefaults dflt;
    const char *hypervisor;             /* "sim" or "xen" (NULL: xen) */
    const char *monitor;                /* NULL, "stdio" or "unix:PATH" */
    bool dry_run;
    bool help;
    bool host_reset;                    /* -host-reset: sysfs reset at attach and detach */
    bool guest_qemu;                    /* -guest qemu: a real Linux guest */
    QemuVmConfig vm;
    uint32_t single_function;           /* test only: slots shown single-function */
    int domid;                          /* -domid, -1 unset */
    bool xenstore;                      /* -xenstore: the device-model channel */
    const char *guest_qmp;              /* -guest-qmp: the Xen guest's own QEMU */
    DmXenConfig xen;                    /* xenstore, hot-plug controller, save/restore */
} DmConfig;

/*
 * One option.  With apply NULL the option just stores: its value (a
 * string) or true (a flag) into the DmConfig field at offset `field`.
 */
typedef struct DmOption {
    const char *name;
    const char *arg;                    /* NULL: a flag */
    int (*apply)(DmConfig *cfg, const char *value, char *why, size_t len);
    size_t field;
    const char *help;
} DmOption;

#define STORE(member) NULL, offsetof(DmConfig, member)
#define CHECK(fn)     fn, 0

static void store_option(DmConfig *cfg, const DmOption *opt, const char *value)
{
    char *at = (char *)cfg + opt->field;

    if (opt->arg)
        *(const char **)at = value;
    else
        *(bool *)at = true;
}

static int opt_pci(DmConfig *cfg, const char *value, char *why, size_t len)
{
    if (cfg->nspecs == MAX_SPECS) {
        snprintf(why, len, "at most %d -pci options", MAX_SPECS);
        return -1;
    }
    cfg->specs[cfg->nspecs++] = value;
    return 0;
}

static int opt_pci_map(DmConfig *cfg, const char *value, char *why, size_t len)
{
    static const struct { const char *word; PtMapScheme scheme; } words[] = {
        { "identity", PT_MAP_IDENTITY }, { "least", PT_MAP_LEAST },
    };

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(value, words[i].word)) {
            cfg->dflt.opts.map = words[i].scheme;
            return 0;
        }
    snprintf(why, len, "'%s': expected identity or least", value);
    return -1;
}

static int opt_pci_strict(DmConfig *cfg, const char *value, char *why, size_t len)
{
    PtError err;

    if (pt_plan_defaults_strict(&cfg->dflt, value, &err) < 0) {
        snprintf(why, len, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* "1f" or "0-3" into mask: false if it is neither. */
static bool add_slot_range(const char *range, uint32_t *mask)
{
    g_auto(GStrv) ends = g_strsplit(range, "-", 2);
    unsigned long lo, hi;

    /* "" splits into no field at all. */
    if (!ends[0] || pt_parse_uint(ends[0], 16, 0x1f, &lo) < 0 ||
        pt_parse_uint(ends[1] ? ends[1] : ends[0], 16, 0x1f, &hi) < 0 || lo > hi)
        return false;
    for (unsigned long s = lo; s <= hi; s++)
        *mask |= 1u << s;
    return true;
}

/* "0-3,1f": hex slots and ranges. */
static int opt_reserved(DmConfig *cfg, const char *value, char *why, size_t len)
{
    g_auto(GStrv) ranges = g_strsplit(value, ",", -1);
    uint32_t mask = 0;
    bool ok = *value;   /* not "none": slot 00 is the host bridge */

    for (char **r = ranges; ok && *r; r++)
        ok = add_slot_range(*r, &mask);
    if (!ok) {
        snprintf(why, len, "'%s': expected hex slots and ranges 00-1f, e.g. 0-3,1f", value);
        return -1;
    }
    cfg->reserved = mask;
    return 0;
}

static int opt_hypervisor(DmConfig *cfg, const char *value, char *why, size_t len)
{
    static const char *const names[] = { "sim", "xen" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(value, names[i])) {
            cfg->hypervisor = names[i];
            return 0;
        }
    snprintf(why, len, "'%s': expected sim or xen", value);
    return -1;
}

static int opt_monitor(DmConfig *cfg, const char *value, char *why, size_t len)
{
    if (strcmp(value, "stdio") != 0 && !(g_str_has_prefix(value, "unix:") && value[5])) {
        snprintf(why, len, "'%s': expected stdio or unix:PATH", value);
        return -1;
    }
    cfg->monitor = value;
    return 0;
}

/* ---- the real guest (guest/qemu-vm.c) ---- */

static int opt_guest(DmConfig *cfg, const char *value, char *why, size_t len)
{
    if (strcmp(value, "qemu") != 0) {
        snprintf(why, len, "'%s': the only guest is qemu", value);
        return -1;
    }
    cfg->guest_qemu = true;
    return 0;
}

static int opt_guest_timeout(DmConfig *cfg, const char *value, char *why, size_t len)
{
    unsigned long s;
    if (pt_parse_uint(value, 10, 86400, &s) < 0 || s == 0) {
        snprintf(why, len, "'%s': expected seconds, 1-86400", value);
        return -1;
    }
    cfg->vm.guest_timeout = (unsigned)s;
    return 0;
}

static int opt_single_function(DmConfig *cfg, const char *value, char *why, size_t len)
{
    unsigned long slot;
    if (pt_parse_uint(value, 16, 0x1f, &slot) < 0) {
        snprintf(why, len, "'%s': expected a hex slot 00-1f", value);
        return -1;
    }
    cfg->single_function |= 1u << slot;
    return 0;
}

/* ---- the Xen side (dm-xen.h, xs-channel.h) ---- */

static int opt_domid(DmConfig *cfg, const char *value, char *why, size_t len)
{
    unsigned long d;
    if (pt_parse_uint(value, 10, XS_DOMID_MAX, &d) < 0 || d == 0) {
        snprintf(why, len, "'%s': expected a guest domain id, 1-32751", value);
        return -1;
    }
    cfg->domid = (int)d;
    return 0;
}

static const DmOption dm_options[] = {
    { "host-sysfs", "DIR", STORE(host_sysfs),
      "host PCI tree (the directory holding devices/); default /sys/bus/pci" },
    { "pci", "SPEC", CHECK(opt_pci),
      "pass through host functions in the extended notation, e.g. 0000:00:1d.0-2@7" },
    { "pci-map", "SCHEME", CHECK(opt_pci_map),
      "default mapping of multi-function devices: identity (default) or least" },
    { "pci-strict", "OPTS", CHECK(opt_pci_strict),
      "group rules this guest relaxes, e.g. strict_reset=0,strict_intx=0 (default: all strict)" },
    { "pci-reserved", "SLOTS", CHECK(opt_reserved),
      "guest slots kept for the platform, hex (default 0-3)" },
    { "hypervisor", "NAME", CHECK(opt_hypervisor),
      "xen (default: Xen 4.17, needs -domid) or sim (a recording stand-in)" },
    { "monitor", "DEV", CHECK(opt_monitor), "text monitor on stdio or unix:PATH" },
    { "dry-run", NULL, STORE(dry_run),
      "check and place the -pci devices as a real run would (reading no xenstore: other domains unseen), print host BDF -> guest slot.func, exit" },
    { "guest", "qemu", CHECK(opt_guest),
      "boot a real Linux guest under qemu-system-x86_64 that sees the -pci devices" },
    { "guest-image", "DIR", STORE(vm.image_dir),
      "its vmlinuz and initrd.gz (scripts/guest-image); default cache/guest" },
    { "guest-console", "FILE", STORE(vm.console),
      "its serial console to FILE; default stdout, lines prefixed 'guest: '" },
    { "guest-timeout", "SECONDS", CHECK(opt_guest_timeout),
      "the guest powers off after SECONDS (default 600)" },
    { "x-single-function", "SLOT", CHECK(opt_single_function),
      "test only: show guest slot SLOT (hex) as single-function" },
    { "domid", "N", CHECK(opt_domid), "the guest's domain id (Xen, -xenstore)" },
    { "xenstore", NULL, STORE(xenstore),
      "boot devices from the pci backend list, hot-plug commands on the device-model channel" },
    { "guest-qmp", "PATH", STORE(guest_qmp),
      "Xen: announce slots through the guest's own QEMU (its QMP socket) and its ACPI hot-plug" },
    { "test-guest", NULL, STORE(xen.test_guest),
      "in-process guest that answers ACPI hot-plug events (inserts, ejects)" },
    { "save-state", "FILE", STORE(xen.save_state), "the file the xenstore `save` command writes" },
    { "restore-state", "FILE", STORE(xen.restore_state),
      "put saved functions back at their saved vdevfns and load their state" },
    { "host-reset", NULL, STORE(host_reset),
      "reset each function through sysfs before the guest sees it and after it lets it go" },
    { "help", NULL, STORE(help), "this text" },
};

#define N_DM_OPTIONS (sizeof(dm_options) / sizeof(dm_options[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: qemu-dm [options]\n");
    for (size_t i = 0; i < N_DM_OPTIONS; i++) {
        char left[40];
        snprintf(left, sizeof(left), "-%s%s%s", dm_options[i].name,
                 dm_options[i].arg ? " " : "", dm_options[i].arg ? dm_options[i].arg : "");
        fprintf(out, "  %-24s %s\n", left, dm_options[i].help);
    }
}

static const DmOption *find_option(const char *word)
{
    if (word[0] != '-')
        return NULL;
    word += word[1] == '-' ? 2 : 1;
    for (size_t i = 0; i < N_DM_OPTIONS; i++)
        if (!strcmp(word, dm_options[i].name))
            return &dm_options[i];
    return NULL;
}

static int parse_args(int argc, char **argv, DmConfig *cfg)
{
    char why[200];

    for (int i = 1; i < argc; i++) {
        const DmOption *opt = find_option(argv[i]);
        const char *value = NULL;

        if (!opt) {
            fprintf(stderr, "qemu-dm: unknown option '%s' (try -help)\n", argv[i]);
            return -1;
        }
        if (opt->arg) {
            if (i + 1 == argc) {
                fprintf(stderr, "qemu-dm: -%s needs %s\n", opt->name, opt->arg);
                return -1;
            }
            value = argv[++i];
        }
        if (!opt->apply) {
            store_option(cfg, opt, value);
            continue;
        }
        if (opt->apply(cfg, value, why, sizeof(why)) < 0) {
            fprintf(stderr, "qemu-dm: -%s %s\n", opt->name, why);
            return -1;
        }
    }
    return 0;
}

static void print_plan(const PtPlan *plan)
{
    const PtPlacement *pl = &plan->placement;

    if (pl->note[0])
        fprintf(stderr, "qemu-dm: note: %s\n", pl->note);
    for (int f = 0; f < pl->nfuncs; f++) {
        char bdf[16];
        printf("%s -> 00:%02x.%x\n", pt_bdf_format(pl->host[f], bdf, sizeof(bdf)),
               PT_SLOT(pl->vdevfn[f]), PT_FUNC(pl->vdevfn[f]));
    }
    fflush(stdout);
}

/* Plan every -pci spec (in the order given) under the policy of the real
 * run, then print; all or nothing.  No xenstore is read: other domains'
 * functions are not known here, so the group rules see only dom0's drivers
 * (and the -pci list itself) as other owners. */
static int dry_run(const DmConfig *cfg)
{
    PtPlan plans[MAX_SPECS];
    PtPlanList earlier = { plans, 0 };
    PtHolders holders = { .held = pt_plan_list_holds, .opaque = &earlier };
    PtBusMap map;
    PtError err;
    HostPci *host = host_pci_open(cfg->host_sysfs, &err);

    if (!host) {
        fprintf(stderr, "qemu-dm: %s\n", err.msg);
        return 2;
    }
    pt_busmap_init(&map, cfg->reserved);
    map.pinned = pt_plan_pinned_slots(cfg->specs, cfg->nspecs);
    for (int i = 0; i < cfg->nspecs; i++, earlier.n++) {
        if (pt_plan_spec(host, &map, cfg->specs[i], &cfg->dflt, &holders, &plans[i], &err) < 0) {
            fprintf(stderr, "qemu-dm: %s\n", err.msg);
            host_pci_close(host);
            return 2;
        }
    }
    for (int i = 0; i < cfg->nspecs; i++) {
        /* A real run logs these as it attaches (hw/pt-guest.c). */
        for (int w = 0; w < plans[i].warnings.n; w++)
            fprintf(stderr, "qemu-dm: warning: %s\n", plans[i].warnings.line[w]);
        print_plan(&plans[i]);
    }
    host_pci_close(host);
    return 0;
}

typedef struct DmRun {
    GMainLoop *loop;
    int status;
    bool vm_failed;
} DmRun;

static void request_quit(void *opaque)
{
    g_main_loop_quit(((DmRun *)opaque)->loop);
}

static gboolean on_signal(gpointer opaque)
{
    request_quit(opaque);
    return G_SOURCE_CONTINUE;
}


/* The -pci list in order, all of it or failing at the first refusal. */
static int attach_specs(const DmConfig *cfg, PtGuest *guest, PtPlan *plans)
{
    int rc = 0;

    pt_guest_keep_clear(guest, pt_plan_pinned_slots(cfg->specs, cfg->nspecs));
    for (int i = 0; i < cfg->nspecs && rc == 0; i++) {
        PtError err;
        if ((rc = pt_guest_attach(guest, cfg->specs[i], &plans[i], &err)) < 0)
            fprintf(stderr, "qemu-dm: %s\n", err.msg);
    }
    pt_guest_keep_clear(guest, 0);
    return rc;
}

/* Boot-time devices: all of them or none, printed once all are in.  With
 * -xenstore, functions in other domains' backend lists are theirs. */
static int attach_boot_devices(const DmConfig *cfg, PtGuest *guest)
{
    PtPlan plans[MAX_SPECS];
    XsHolders *others = NULL;
    PtError err;
    int rc;

    if (cfg->xenstore && cfg->nspecs && !(others = xs_holders_open((unsigned)cfg->domid, &err))) {
        fprintf(stderr, "qemu-dm: %s\n", err.msg);
        return -1;
    }
    PtHolders holders = { .held = xs_backend_holds, .opaque = others };
    if (others)
        pt_guest_set_holders(guest, &holders);
    rc = attach_specs(cfg, guest, plans);
    pt_guest_set_holders(guest, NULL);
    xs_holders_close(others);
    for (int i = 0; rc == 0 && i < cfg->nspecs; i++)
        print_plan(&plans[i]);
    return rc;
}

static int start_monitor(const DmConfig *cfg, Monitor *mon)
{
    g_autoptr(GError) gerr = NULL;

    if (!strcmp(cfg->monitor, "stdio")) {
        monitor_attach_stdio(mon);
        return 0;
    }
    if (monitor_attach_unix(mon, cfg->monitor + 5, &gerr) < 0) {
        fprintf(stderr, "qemu-dm: -monitor %s: %s\n", cfg->monitor, gerr->message);
        return -1;
    }
    /* Clients (and tests) wait for this line instead of polling the path. */
    printf("qemu-dm: monitor listening on %s\n", cfg->monitor);
    return 0;
}

/* QEMU is gone: so is the guest, and qemu-dm with it. */
static void on_vm_exit(void *opaque, bool failed)
{
    ((DmRun *)opaque)->vm_failed = failed;
    request_quit(opaque);
}

static QemuVm *start_guest(const DmConfig *cfg, PtGuest *guest, PciBus *bus, DmRun *r)
{
    QemuVmConfig vc = cfg->vm;
    char why[256];

    vc.sysfs_root = cfg->host_sysfs;
    QemuVm *vm = qemu_vm_new(&vc, guest, bus, on_vm_exit, r);
    if (qemu_vm_start(vm, why, sizeof(why)) < 0) {
        fprintf(stderr, "qemu-dm: -guest qemu: %s\n", why);
        qemu_vm_free(vm);
        return NULL;
    }
    return vm;
}

/* On Xen "running" lets the toolstack unpause the guest: not before the
 * ioreq server claims the slots and the guest's QEMU knows them. */
static bool serves_later(const DmConfig *cfg)
{
    return !strcmp(cfg->hypervisor, "xen");
}

static int xc_serve(DmXen *xen)
{
    PtError err;

    if (dm_xen_serve(xen, &err) == 0)
        return 0;
    fprintf(stderr, "qemu-dm: %s\n", err.msg);
    return -1;
}

static DmXen *start_xen(const DmConfig *cfg, HostPci *host, PtGuest *guest, PciBus *bus,
                        DmRun *r)
{
    DmXenConfig xc = cfg->xen;
    PtError err;

    xc.domid = cfg->xenstore ? cfg->domid : -1;
    xc.serve_later = serves_later(cfg);
    DmXen *x = dm_xen_start(&xc, host, guest, bus, request_quit, r, &err);
    if (!x)
        fprintf(stderr, "qemu-dm: %s\n", err.msg);
    return x;
}

/* With a QEMU guest, or on Xen with -guest-qmp, pci-rem goes through a
 * QEMU's own ACPI hot-plug: the guest never sees qemu-dm's controller. */
typedef int (*EjectRequestFn)(void *target, unsigned vslot, QemuHotplugEjectFn done,
                              void *opaque);
typedef struct QemuEjector {
    EjectRequestFn request;
    void *target;               /* QemuVm or XenHotplug */
    DmXen *xen;
} QemuEjector;

static void qemu_ejected(void *opaque, unsigned vslot, const char *failure)
{
    dm_xen_slot_ejected(((QemuEjector *)opaque)->xen, vslot, failure);
}

static int qemu_eject(void *opaque, unsigned vslot)
{
    QemuEjector *e = opaque;

    return e->request(e->target, vslot, qemu_ejected, e);
}

static int vm_request_eject(void *vm, unsigned vslot, QemuHotplugEjectFn done, void *opaque)
{
    return qemu_vm_request_eject(vm, vslot, done, opaque);
}

static int xen_request_eject(void *xh, unsigned vslot, QemuHotplugEjectFn done, void *opaque)
{
    return xen_hotplug_request_eject(xh, vslot, done, opaque);
}

static XenHotplug *start_xen_hotplug(const DmConfig *cfg, PtGuest *guest)
{
    char why[300];
    XenHotplug *xh;

    if (strcmp(cfg->hypervisor, "xen") != 0) {
        fprintf(stderr, "qemu-dm: -guest-qmp needs -hypervisor xen\n");
        return NULL;
    }
    if (!(xh = xen_hotplug_start(cfg->guest_qmp, guest, why, sizeof(why))))
        fprintf(stderr, "qemu-dm: -guest-qmp: %s\n", why);
    return xh;
}

/* No Xen: one line, and the way to a simulated run. */
static Hypervisor *open_hypervisor(const DmConfig *cfg)
{
    PtError err;
    Hypervisor *hv;

    if (!strcmp(cfg->hypervisor, "sim"))
        return hypervisor_sim_new();
    hv = hypervisor_xen_new(cfg->domid < 0 ? 0 : (uint32_t)cfg->domid, &err);
    if (!hv && g_str_has_prefix(err.msg, "no Xen here"))
        fprintf(stderr, "qemu-dm: %s; use -hypervisor sim for a simulated run\n", err.msg);
    else if (!hv)
        fprintf(stderr, "qemu-dm: -hypervisor xen: %s (-domid N)\n", err.msg);
    return hv;
}

/* On Xen the guest's accesses come as ioreqs: serve them from the loop. */
static uint32_t php_port_read(void *opaque, uint16_t port, unsigned len)
{
    return php_ioport_read(opaque, port, len);
}

static void php_port_write(void *opaque, uint16_t port, uint32_t val, unsigned len)
{
    php_ioport_write(opaque, port, val, len);
}

static const XenPortOps php_port_ops = { .read = php_port_read, .write = php_port_write };

/* On Xen the guest's config accesses, trapped MSI-X pages and the hot-plug
 * controller's ports arrive as ioreqs; slot changes re-sync the claims. */
static int start_ioreq(const DmConfig *cfg, PciBus *bus, PtGuest *guest, DmXen *xen,
                       XenIoreq **out)
{
    PtError err;
    Php *php = dm_xen_php(xen);

    *out = NULL;
    if (strcmp(cfg->hypervisor, "xen") != 0)
        return 0;
    *out = xen_ioreq_new((uint32_t)cfg->domid, bus, guest, &err);
    if (*out && php &&
        xen_ioreq_add_ports(*out, PHP_IOPORT_PSTA, PHP_IOPORT_END - PHP_IOPORT_PSTA,
                            &php_port_ops, php, &err) < 0) {
        xen_ioreq_free(*out);
        *out = NULL;
    }
    if (!*out) {
        fprintf(stderr, "qemu-dm: %s\n", err.msg);
        return -1;
    }
    pt_guest_set_slot_observer(guest, xen_ioreq_slot_changed, *out);
    return 0;
}

/* -host-reset: resets through the host tree's sysfs (the sim's kernel on a sim tree). */
static HostAssign *open_reset(const DmConfig *cfg)
{
    PtError err;
    HostAssign *ha = host_assign_open(cfg->host_sysfs, NULL, &err);

    if (!ha)
        fprintf(stderr, "qemu-dm: -host-reset: %s\n", err.msg);
    return ha;
}

/* Everything a run sets up, torn down in reverse. */
typedef struct DmParts {
    HostPci *host;
    HostAssign *reset;
    Hypervisor *hv;
    PciBus *bus;
    PtGuest *guest;
    Monitor *mon;
    QemuVm *vm;
    DmXen *xen;
    XenIoreq *ioreq;
    XenHotplug *xhp;
    QemuEjector ejector;
} DmParts;

static int setup_guest(const DmConfig *cfg, DmParts *p)
{
    PtError err;

    if (!(p->hv = open_hypervisor(cfg)))
        return -1;
    if (!(p->host = host_pci_open(cfg->host_sysfs, &err))) {
        fprintf(stderr, "qemu-dm: %s\n", err.msg);
        return -1;
    }
    p->bus = pci_bus_new(p->hv);
    pci_bus_set_reserved(p->bus, cfg->reserved);
    for (unsigned slot = 0; slot < PT_SLOTS; slot++)
        if (cfg->single_function & (1u << slot))
            pci_bus_force_single_function(p->bus, slot, true);
    p->guest = pt_guest_new(p->host, p->bus, p->hv, cfg->reserved, &cfg->dflt);
    if (cfg->host_reset && !(p->reset = open_reset(cfg)))
        return -1;
    pt_guest_set_host_reset(p->guest, p->reset);
    return attach_boot_devices(cfg, p->guest);
}

/* The Xen side, the monitor and the QEMU guest, in the order they may
 * first be needed. */
static int setup_front_ends(const DmConfig *cfg, DmParts *p, DmRun *r)
{
    if (!(p->xen = start_xen(cfg, p->host, p->guest, p->bus, r)) ||
        start_ioreq(cfg, p->bus, p->guest, p->xen, &p->ioreq) < 0)
        return -1;
    /* After the ioreq server: it claims a slot before the guest hears of it. */
    if (cfg->guest_qmp && !(p->xhp = start_xen_hotplug(cfg, p->guest)))
        return -1;
    if (serves_later(cfg) && xc_serve(p->xen) < 0)
        return -1;
    if (cfg->monitor) {
        MonitorTarget t = { .guest = p->guest, .bus = p->bus, .quit = request_quit, .opaque = r };
        p->mon = monitor_new(&t);
        if (start_monitor(cfg, p->mon) < 0)
            return -1;
    }
    if (cfg->guest_qemu && !(p->vm = start_guest(cfg, p->guest, p->bus, r)))
        return -1;
    if (cfg->xenstore && (p->vm || p->xhp)) {   /* commands run from the loop, after this */
        p->ejector = p->vm ? (QemuEjector){ vm_request_eject, p->vm, p->xen }
                           : (QemuEjector){ xen_request_eject, p->xhp, p->xen };
        dm_xen_set_ejector(p->xen, qemu_eject, &p->ejector);
    }
    return 0;
}

static void teardown(DmParts *p)
{
    qemu_vm_free(p->vm);
    if (p->xen)
        dm_xen_set_ejector(p->xen, NULL, NULL);
    monitor_free(p->mon);
    xen_hotplug_free(p->xhp);
    if (p->ioreq)
        pt_guest_set_slot_observer(p->guest, NULL, p->ioreq);
    xen_ioreq_free(p->ioreq);
    dm_xen_stop(p->xen);
    pt_guest_free(p->guest);
    host_assign_close(p->reset);
    if (p->bus)
        pci_bus_free(p->bus);
    if (p->hv)
        hypervisor_free(p->hv);
    if (p->host)
        host_pci_close(p->host);
}

static int run(const DmConfig *cfg)
{
    DmRun r = { .loop = g_main_loop_new(NULL, FALSE), .status = 2 };
    DmParts p = { 0 };

    if (setup_guest(cfg, &p) == 0 && setup_front_ends(cfg, &p, &r) == 0) {
        g_unix_signal_add(SIGINT, on_signal, &r);
        g_unix_signal_add(SIGTERM, on_signal, &r);
        g_main_loop_run(r.loop);
        r.status = r.vm_failed ? 1 : 0;
    }
    teardown(&p);
    g_main_loop_unref(r.loop);
    return r.status;
}

/* A closed standard descriptor would be reused by the next file opened
 * (the stdio monitor would read a host file as commands): point it at
 * /dev/null instead. */
static void standard_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int nul = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (nul >= 0 && nul != fd) {
                dup2(nul, fd);
                close(nul);
            }
        }
}

int main(int argc, char **argv)
{
    DmConfig cfg = { .reserved = PT_RESERVED_DEFAULT, .dflt = pt_plan_defaults(), .domid = -1 };

    standard_fds_open();
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (parse_args(argc, argv, &cfg) < 0)
        return 2;
    if (cfg.help) {
        usage(stdout);
        return 0;
    }
    if (cfg.dry_run)
        return dry_run(&cfg);
    if (cfg.xenstore && cfg.domid < 0) {
        fprintf(stderr, "qemu-dm: -xenstore needs -domid N\n");
        return 2;
    }
    if (!cfg.hypervisor)
        cfg.hypervisor = "xen";
    return run(&cfg);
}
