/*
 * qemu-system-x86_64 as a real guest for qemu-dm.  See qemu-vm.h.
 *
 * QMP (guest/qmp.c) runs over a socketpair whose other end QEMU gets as an
 * inherited fd (-chardev socket,fd=N): connected from the start, no path,
 * nothing to poll.  Hot-plug is guest/qemu-hotplug.c's, with one
 * x-pci-proxy-dev per function.
 */
#include "qemu-vm.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dm-log.h"
#include "mpqemu.h"
#include "qemu-hotplug.h"
#include "qmp.h"

#define STOP_TIMEOUT_S    5     /* QEMU's exit after SIGTERM, then SIGKILL */
#define FIRST_CHILD_FD    10    /* where inherited fds start in QEMU */
#define QBOOT_ROM         "/usr/share/qemu/qboot.rom"

struct QemuVm {
    QemuVmConfig cfg;
    char *image_dir, *console_path, *qemu, *sysfs_root;
    PtGuest *guest;
    PciBus *bus;
    MpqServer *mpq;
    QemuVmExitFn on_exit;
    void *opaque;

    GSubprocess *proc;
    GCancellable *cancel;
    bool exited, failed, stopping;
    int readers;                /* console and stderr readers still going */
    FILE *console;

    Qmp *qmp;
    QemuHotplug *hp;
    int open_at_del[PT_SLOTS];     /* sockets open when device_del went out */
};

#define say(...) dm_log("qemu-vm", __VA_ARGS__)

/* "-device" value for one function; fd is a number (boot) or a name (QMP getfd). */
static char *device_opts(uint8_t devfn, const char *fd, bool multi)
{
    char id[16];
    qemu_hotplug_dev_id(id, sizeof(id), devfn);
    return g_strdup_printf("x-pci-proxy-dev,id=%s,fd=%s,addr=%02x.%x%s", id, fd,
                           PT_SLOT(devfn), PT_FUNC(devfn),
                           multi && PT_FUNC(devfn) == 0 ? ",multifunction=on" : "");
}

/* ------------------------------------------------------------ hot-plug */

/* One x-pci-proxy-dev per function, each with its socket (getfd first). */
static int plug_slot(void *opaque, QemuHotplug *hp, unsigned slot, char *why, size_t len)
{
    QemuVm *vm = opaque;
    uint8_t devfns[PT_FUNCS_PER_SLOT];
    int peers[PT_FUNCS_PER_SLOT];
    int n = qemu_hotplug_slot_devfns(vm->guest, slot, devfns);

    for (int i = 0; i < n; i++) {
        int rc = mpq_channel_open(vm->mpq, devfns[i], &peers[i]);
        if (rc < 0) {
            snprintf(why, len, "no socket for %02x.%x: %s", slot, PT_FUNC(devfns[i]),
                     g_strerror(-rc));
            while (i-- > 0)
                close(peers[i]);
            mpq_close_slot(vm->mpq, slot);
            return rc;
        }
    }
    for (int i = 0; i < n; i++) {
        char id[16];
        qemu_hotplug_dev_id(id, sizeof(id), devfns[i]);
        g_autofree char *opts = device_opts(devfns[i], id, n > 1);
        qemu_hotplug_add(hp, slot, devfns[i], opts, peers[i], i == n - 1);
    }
    return n;
}

static void unplugging(void *opaque, unsigned slot)
{
    QemuVm *vm = opaque;
    vm->open_at_del[slot] = mpq_open_channels(vm->mpq, slot);
}

static void released(void *opaque, unsigned slot, const char *how)
{
    QemuVm *vm = opaque;
    int hung_up = vm->open_at_del[slot] - mpq_open_channels(vm->mpq, slot);
    int closed = mpq_close_slot(vm->mpq, slot);

    vm->open_at_del[slot] = 0;
    if (how)
        say("slot %02x: %s; sockets released: %d closed by QEMU, %d by qemu-dm, %d open",
            slot, how, hung_up, closed, mpq_open_channels(vm->mpq, slot));
}

static const QemuHotplugOps vm_hotplug_ops = {
    .plug = plug_slot, .unplugging = unplugging, .released = released,
};

int qemu_vm_request_eject(QemuVm *vm, unsigned vslot, QemuVmEjectFn done, void *opaque)
{
    if (vm->exited)
        return -ENOTCONN;
    return qemu_hotplug_request_eject(vm->hp, vslot, done, opaque);
}

static void on_qmp_event(void *opaque, const char *event, const char *line)
{
    qemu_hotplug_event(((QemuVm *)opaque)->hp, event, line);
}

/* ------------------------------------------------------------ QEMU's output */

typedef struct Reader {
    QemuVm *vm;
    GDataInputStream *in;
    bool console;               /* the serial console, else QEMU's stderr */
} Reader;

static void reader_next(Reader *r);

static void reader_line(QemuVm *vm, bool console, char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        line[--len] = '\0';
    if (!console) {
        fprintf(stderr, "qemu-system: %s\n", line);
        fflush(stderr);
    } else if (vm->console) {
        fprintf(vm->console, "%s\n", line);
        fflush(vm->console);
    } else {
        printf("guest: %s\n", line);
        fflush(stdout);
    }
}

static void reader_done(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Reader *r = opaque;
    g_autoptr(GError) err = NULL;
    char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, NULL,
                                                      &err);
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_object_unref(r->in);
        g_free(r);              /* the QemuVm may be gone */
        return;
    }
    if (!line) {                /* EOF or error: QEMU closed it */
        r->vm->readers--;
        g_object_unref(r->in);
        g_free(r);
        return;
    }
    reader_line(r->vm, r->console, line);
    g_free(line);
    reader_next(r);
}

static void reader_next(Reader *r)
{
    g_data_input_stream_read_line_async(r->in, G_PRIORITY_DEFAULT, r->vm->cancel, reader_done,
                                        r);
}

static void reader_start(QemuVm *vm, GInputStream *pipe, bool console)
{
    Reader *r = g_new0(Reader, 1);
    r->vm = vm;
    r->in = g_data_input_stream_new(pipe);
    r->console = console;
    vm->readers++;
    reader_next(r);
}

/* ------------------------------------------------------------ QEMU's life */

static void describe_exit(QemuVm *vm)
{
    GSubprocess *p = vm->proc;
    if (g_subprocess_get_if_signaled(p)) {
        int sig = g_subprocess_get_term_sig(p);
        vm->failed = !vm->stopping;
        say("QEMU %s by signal %d (%s)", vm->stopping ? "stopped" : "killed", sig,
            strsignal(sig));
    } else {
        int st = g_subprocess_get_exit_status(p);
        vm->failed = st != 0;
        if (vm->stopping)
            say("QEMU stopped (status %d)", st);
        else if (st == 0)
            say("QEMU exited: the guest powered off");
        else
            say("QEMU exited with status %d (its messages are above, prefixed "
                "\"qemu-system:\")", st);
    }
}

static void on_exited(GObject *src, GAsyncResult *res, gpointer opaque)
{
    g_autoptr(GError) err = NULL;
    if (!g_subprocess_wait_finish(G_SUBPROCESS(src), res, &err) &&
        g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;                 /* the QemuVm may be gone */
    QemuVm *vm = opaque;
    vm->exited = true;
    describe_exit(vm);
    qmp_close(vm->qmp);
    qemu_hotplug_gone(vm->hp);
    if (!vm->stopping && vm->on_exit)
        vm->on_exit(vm->opaque, vm->failed);
}

QemuVm *qemu_vm_new(const QemuVmConfig *cfg, PtGuest *guest, PciBus *bus,
                    QemuVmExitFn on_exit, void *opaque)
{
    QemuVm *vm = g_new0(QemuVm, 1);
    const char *env = getenv("QEMU_SYSTEM_X86_64");

    vm->cfg = *cfg;
    vm->image_dir = g_strdup(cfg->image_dir ? cfg->image_dir : "cache/guest");
    vm->console_path = g_strdup(cfg->console);
    vm->qemu = g_strdup(cfg->qemu ? cfg->qemu : env && *env ? env : "qemu-system-x86_64");
    vm->sysfs_root = g_strdup(cfg->sysfs_root);
    vm->guest = guest;
    vm->bus = bus;
    vm->on_exit = on_exit;
    vm->opaque = opaque;
    vm->cancel = g_cancellable_new();
    vm->mpq = mpq_server_new(guest, bus, cfg->sysfs_root);
    vm->hp = qemu_hotplug_new("qemu-vm", guest, &vm_hotplug_ops, vm);
    return vm;
}

static int image_files(QemuVm *vm, char **kernel, char **initrd, char *why, size_t len)
{
    /* The unpacked ELF, booted through its PVH entry, spares the guest
     * decompressing itself under TCG (5 s); the bzImage otherwise. */
    *kernel = g_build_filename(vm->image_dir, "vmlinux", NULL);
    if (access(*kernel, R_OK) != 0) {
        g_free(*kernel);
        *kernel = g_build_filename(vm->image_dir, "vmlinuz", NULL);
    }
    *initrd = g_build_filename(vm->image_dir, "initrd.gz", NULL);
    if (access(*kernel, R_OK) == 0 && access(*initrd, R_OK) == 0)
        return 0;
    snprintf(why, len, "no guest image in %s (vmlinuz, initrd.gz): run scripts/guest-image",
             vm->image_dir);
    return -ENOENT;
}

/* QEMU's command line but for the devices. */
static GPtrArray *base_argv(QemuVm *vm, const char *kernel, const char *initrd, int qmp_fd)
{
    unsigned mb = vm->cfg.memory_mb ? vm->cfg.memory_mb : 256;
    unsigned tmo = vm->cfg.guest_timeout ? vm->cfg.guest_timeout : 600;
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    /* No 64-bit PCI window: QEMU's proxy registers every BAR as 32-bit and
     * maps it at the low 32 bits of its address, so the guest must place
     * 64-bit BARs below 4 GiB (Linux takes a window above first). */
    const char *fixed[] = {
        "-machine", "pc,accel=tcg,memory-backend=mem0", "-smp", "1", "-nodefaults",
        "-display", "none", "-serial", "stdio", "-no-reboot",
        "-global", "i440FX-pcihost.pci-hole64-size=0",
    };

    g_ptr_array_add(a, g_strdup(vm->qemu));
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(a, g_strdup(fixed[i]));
    g_ptr_array_add(a, g_strdup("-object"));
    g_ptr_array_add(a, g_strdup_printf("memory-backend-memfd,id=mem0,size=%uM,share=on", mb));
    g_ptr_array_add(a, g_strdup("-m"));
    g_ptr_array_add(a, g_strdup_printf("%u", mb));
    if (access(QBOOT_ROM, R_OK) == 0) {     /* 3x faster than SeaBIOS */
        g_ptr_array_add(a, g_strdup("-bios"));
        g_ptr_array_add(a, g_strdup(QBOOT_ROM));
    }
    g_ptr_array_add(a, g_strdup("-kernel"));
    g_ptr_array_add(a, g_strdup(kernel));
    g_ptr_array_add(a, g_strdup("-initrd"));
    g_ptr_array_add(a, g_strdup(initrd));
    g_ptr_array_add(a, g_strdup("-append"));
    /* A test guest: no mitigations, no read-only kernel data and its W+X
     * walk, no crypto self-tests, no TSC checks (TCG's TSC is the host's
     * clock): 1 s of a 3.5 s boot. */
    g_ptr_array_add(a, g_strdup_printf("console=ttyS0 panic=-1 quiet mitigations=off rodata=off "
                                       "cryptomgr.notests tsc=reliable no_timer_check "
                                       "pciview_timeout=%u", tmo));
    g_ptr_array_add(a, g_strdup("-chardev"));
    g_ptr_array_add(a, g_strdup_printf("socket,id=qmp,fd=%d", qmp_fd));
    g_ptr_array_add(a, g_strdup("-mon"));
    g_ptr_array_add(a, g_strdup("chardev=qmp,mode=control"));
    return a;
}

/* A -device per attached function, its socket passed as child fd *next. */
static int boot_devices(QemuVm *vm, GSubprocessLauncher *l, GPtrArray *argv, int *next,
                        char *why, size_t len)
{
    for (unsigned slot = 0; slot < PT_SLOTS; slot++) {
        uint8_t devfns[PT_FUNCS_PER_SLOT];
        int n = qemu_hotplug_slot_devfns(vm->guest, slot, devfns);
        if (n == 0 || !(pci_bus_slot_funcs(vm->bus, slot) & 1))
            continue;       /* no function 0: invisible, as on the bus */
        for (int i = 0; i < n; i++) {
            int peer, rc = mpq_channel_open(vm->mpq, devfns[i], &peer);
            if (rc < 0) {
                snprintf(why, len, "no socket for %02x.%x: %s", slot, PT_FUNC(devfns[i]),
                         g_strerror(-rc));
                return rc;
            }
            g_subprocess_launcher_take_fd(l, peer, *next);
            char fd[16];
            snprintf(fd, sizeof(fd), "%d", (*next)++);
            g_ptr_array_add(argv, g_strdup("-device"));
            g_ptr_array_add(argv, device_opts(devfns[i], fd, n > 1));
        }
        qemu_hotplug_slot_in(vm->hp, slot, n);
    }
    return 0;
}

static int open_console(QemuVm *vm, char *why, size_t len)
{
    if (!vm->console_path)
        return 0;
    vm->console = fopen(vm->console_path, "w");
    if (vm->console)
        return 0;
    snprintf(why, len, "-guest-console %s: %s", vm->console_path, g_strerror(errno));
    return -errno;
}

int qemu_vm_start(QemuVm *vm, char *why, size_t len)
{
    g_autofree char *kernel = NULL, *initrd = NULL;
    g_autoptr(GError) gerr = NULL;
    int sv[2] = { -1, -1 }, next = FIRST_CHILD_FD, rc;

    if ((rc = image_files(vm, &kernel, &initrd, why, len)) < 0 ||
        (rc = open_console(vm, why, len)) < 0)
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, len, "socketpair: %s", g_strerror(errno));
        return -errno;
    }
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                       G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_subprocess_launcher_set_stdin_file_path(l, "/dev/null");
    g_subprocess_launcher_take_fd(l, sv[1], next);
    GPtrArray *argv = base_argv(vm, kernel, initrd, next++);
    rc = boot_devices(vm, l, argv, &next, why, len);
    g_ptr_array_add(argv, NULL);
    if (rc == 0) {
        vm->proc = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &gerr);
        if (!vm->proc) {
            snprintf(why, len, "cannot start %s: %s", vm->qemu, gerr->message);
            rc = -ENOEXEC;
        }
    }
    g_ptr_array_unref(argv);
    g_object_unref(l);      /* closes our copies of QEMU's fds */
    if (rc < 0) {
        close(sv[0]);
        for (unsigned s = 0; s < PT_SLOTS; s++)
            mpq_close_slot(vm->mpq, s);
        return rc;
    }
    const char *pid = g_subprocess_get_identifier(vm->proc);
    int n = mpq_open_channels(vm->mpq, -1);
    say("booting %s/vmlinuz under QEMU (pid %s), %d function socket%s", vm->image_dir,
        pid ? pid : "gone", n, n == 1 ? "" : "s");
    vm->qmp = qmp_new(sv[0], on_qmp_event, NULL, vm);
    qemu_hotplug_set_qmp(vm->hp, vm->qmp);
    reader_start(vm, g_subprocess_get_stdout_pipe(vm->proc), true);
    reader_start(vm, g_subprocess_get_stderr_pipe(vm->proc), false);
    g_subprocess_wait_async(vm->proc, vm->cancel, on_exited, vm);
    pt_guest_set_slot_observer(vm->guest, qemu_hotplug_slot_changed, vm->hp);
    return 0;
}

bool qemu_vm_failed(const QemuVm *vm)
{
    return vm->failed;
}

int qemu_vm_open_sockets(const QemuVm *vm, int slot)
{
    return mpq_open_channels(vm->mpq, slot);
}

static gboolean flag_timeout(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

/* Run the loop until QEMU exited and its output is read, or seconds pass. */
static bool wait_exit(QemuVm *vm, unsigned seconds)
{
    bool late = false;
    guint t = g_timeout_add_seconds(seconds, flag_timeout, &late);
    while (!(vm->exited && vm->readers == 0) && !late)
        g_main_context_iteration(NULL, TRUE);
    if (!late)
        g_source_remove(t);
    return vm->exited;
}

void qemu_vm_free(QemuVm *vm)
{
    if (!vm)
        return;
    pt_guest_set_slot_observer(vm->guest, NULL, vm->hp);
    if (vm->proc && !vm->exited) {
        vm->stopping = true;
        g_subprocess_send_signal(vm->proc, SIGTERM);
        if (!wait_exit(vm, STOP_TIMEOUT_S)) {
            say("QEMU did not stop within " G_STRINGIFY(STOP_TIMEOUT_S) " s: killing it");
            g_subprocess_force_exit(vm->proc);
            wait_exit(vm, STOP_TIMEOUT_S);
        }
    } else if (vm->proc) {
        wait_exit(vm, STOP_TIMEOUT_S);      /* the rest of its output */
    }
    g_cancellable_cancel(vm->cancel);
    qmp_free(vm->qmp);
    qemu_hotplug_free(vm->hp);
    mpq_server_free(vm->mpq);
    if (vm->console)
        fclose(vm->console);
    if (vm->proc)
        g_object_unref(vm->proc);
    g_object_unref(vm->cancel);
    g_free(vm->image_dir);
    g_free(vm->console_path);
    g_free(vm->qemu);
    g_free(vm->sysfs_root);
    g_free(vm);
}
