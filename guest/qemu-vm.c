/*
 * qemu-system-x86_64 as a real guest for qemu-dm.  See qemu-vm.h.
 *
 * QMP runs over a socketpair whose other end QEMU gets as an inherited fd
 * (-chardev socket,fd=N): connected from the start, no path, nothing to
 * poll.  Commands go out one at a time from a queue; each has a timeout.
 * QMP replies are one JSON object per line; the few keys needed ("id",
 * "desc", "event", "device") are picked out of the line.
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

#include "mpqemu.h"

#define QMP_TIMEOUT_S     10    /* a command's reply */
#define EJECT_TIMEOUT_S   30    /* the guest's ACPI eject after device_del */
#define STOP_TIMEOUT_S    5     /* QEMU's exit after SIGTERM, then SIGKILL */
#define FIRST_CHILD_FD    10    /* where inherited fds start in QEMU */
#define QBOOT_ROM         "/usr/share/qemu/qboot.rom"

typedef struct QmpCmd QmpCmd;
typedef void (*QmpDoneFn)(QemuVm *vm, QmpCmd *cmd, const char *error);

struct QmpCmd {
    char *json;                 /* without the id */
    char *what;                 /* "device_add pt08_1", for messages */
    int fd;                     /* sent with the command (getfd), or -1 */
    QmpDoneFn done;
    unsigned slot;
    bool last;                  /* the last command of a slot's plug */
};

typedef enum SlotState { SLOT_EMPTY, SLOT_PLUGGING, SLOT_IN, SLOT_REMOVING } SlotState;

typedef struct VmSlot {
    SlotState state;
    int nfuncs;
    int open_at_del;            /* sockets open when device_del went out */
    guint eject_timer;
    QemuVmEjectFn eject_done;   /* who asked for the eject, if anyone */
    void *eject_opaque;
} VmSlot;

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

    int qmp_fd;
    guint qmp_watch;
    GString *qmp_in;
    GQueue qmp_queue;           /* QmpCmd: waiting to be sent */
    QmpCmd *qmp_inflight;
    unsigned qmp_next_id;
    guint qmp_timer;

    VmSlot slots[PCI_BUS_SLOTS];
};

static void G_GNUC_PRINTF(1, 2) say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "qemu-vm: %s\n", msg);
    fflush(stderr);
    g_free(msg);
}

static void dev_id(char *buf, size_t len, uint8_t devfn)
{
    snprintf(buf, len, "pt%02x_%x", PT_SLOT(devfn), PT_FUNC(devfn));
}

/* Functions of slot in plug order: 1..7 first, function 0 last. */
static int slot_devfns(QemuVm *vm, unsigned slot, uint8_t out[PCI_BUS_FUNCS])
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < pt_guest_count(vm->guest); i++) {
            uint8_t d = pt_guest_func_at(vm->guest, i)->vdevfn;
            if (PT_SLOT(d) == slot && (PT_FUNC(d) == 0) == (pass == 1))
                out[n++] = d;
        }
    return n;
}

/* "-device" value for one function; fd is a number (boot) or a name (QMP getfd). */
static char *device_opts(uint8_t devfn, const char *fd, bool multi)
{
    char id[16];
    dev_id(id, sizeof(id), devfn);
    return g_strdup_printf("x-pci-proxy-dev,id=%s,fd=%s,addr=%02x.%x%s", id, fd,
                           PT_SLOT(devfn), PT_FUNC(devfn),
                           multi && PT_FUNC(devfn) == 0 ? ",multifunction=on" : "");
}

/* ------------------------------------------------------------ QMP */

static void qmp_send_next(QemuVm *vm);
static void plug_done(QemuVm *vm, QmpCmd *c, const char *error);

static void qmp_cmd_free(QmpCmd *c)
{
    if (c->fd >= 0)
        close(c->fd);
    g_free(c->json);
    g_free(c->what);
    g_free(c);
}

static void qmp_finish(QemuVm *vm, const char *error)
{
    QmpCmd *c = vm->qmp_inflight;
    vm->qmp_inflight = NULL;
    if (vm->qmp_timer)
        g_source_remove(vm->qmp_timer);
    vm->qmp_timer = 0;
    if (c && c->done)
        c->done(vm, c, error);
    else if (c && error)
        say("QEMU refused %s: %s", c->what, error);
    if (c)
        qmp_cmd_free(c);
    qmp_send_next(vm);
}

static gboolean qmp_timeout(gpointer opaque)
{
    QemuVm *vm = opaque;
    vm->qmp_timer = 0;
    qmp_finish(vm, "no reply within " G_STRINGIFY(QMP_TIMEOUT_S) " s");
    return G_SOURCE_REMOVE;
}

/* One command on the wire, with its fd as SCM_RIGHTS if it has one. */
static int qmp_write(QemuVm *vm, QmpCmd *c)
{
    char *line = g_strdup_printf("%.*s, \"id\": %u}\n", (int)strlen(c->json) - 1, c->json,
                                 ++vm->qmp_next_id);
    struct iovec iov = { line, strlen(line) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (c->fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &c->fd, sizeof(int));
    }
    ssize_t n = sendmsg(vm->qmp_fd, &mh, MSG_NOSIGNAL);
    int rc = n == (ssize_t)iov.iov_len ? 0 : -EIO;
    g_free(line);
    if (c->fd >= 0) {       /* QEMU has its own copy now */
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

static void qmp_send_next(QemuVm *vm)
{
    while (!vm->qmp_inflight && vm->qmp_fd >= 0 && !g_queue_is_empty(&vm->qmp_queue)) {
        vm->qmp_inflight = g_queue_pop_head(&vm->qmp_queue);
        if (qmp_write(vm, vm->qmp_inflight) < 0) {
            qmp_finish(vm, "the QMP socket is closed");
            return;
        }
        vm->qmp_timer = g_timeout_add_seconds(QMP_TIMEOUT_S, qmp_timeout, vm);
    }
}

static void qmp_queue(QemuVm *vm, char *json, char *what, int fd, QmpDoneFn done,
                      unsigned slot, bool last)
{
    QmpCmd *c = g_new0(QmpCmd, 1);
    *c = (QmpCmd){ .json = json, .what = what, .fd = fd, .done = done, .slot = slot,
                   .last = last };
    g_queue_push_tail(&vm->qmp_queue, c);
    qmp_send_next(vm);
}

/* The JSON string or number after the last "key": in line, or NULL. */
static char *json_pick(const char *line, const char *key)
{
    char *pat = g_strdup_printf("\"%s\":", key);
    const char *p = NULL;
    for (const char *q = strstr(line, pat); q; q = strstr(q + 1, pat))
        p = q;
    p = p ? p + strlen(pat) : NULL;
    g_free(pat);
    while (p && *p == ' ')
        p++;
    if (!p)
        return NULL;
    if (*p != '"')
        return g_strndup(p, strspn(p, "-0123456789"));
    GString *s = g_string_new(NULL);
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

static void slot_removed(QemuVm *vm, unsigned slot, const char *how);
static void eject_answer(QemuVm *vm, unsigned slot, const char *failure);

static void qmp_event(QemuVm *vm, const char *line)
{
    g_autofree char *event = json_pick(line, "event");
    g_autofree char *device = json_pick(line, "device");
    unsigned slot, fn;

    if (!event || strcmp(event, "DEVICE_DELETED") || !device)
        return;
    if (sscanf(device, "pt%2x_%1x", &slot, &fn) != 2 || fn != 0 || slot >= PCI_BUS_SLOTS)
        return;
    if (vm->slots[slot].state == SLOT_REMOVING) {
        slot_removed(vm, slot, "removed from the guest");
        eject_answer(vm, slot, NULL);
    } else if (vm->slots[slot].state == SLOT_IN) {
        /* The guest ejected it unasked, or after the wait for it ended:
         * the device is gone from QEMU, so qemu-dm lets go of it too. */
        PtError err;
        slot_removed(vm, slot, "ejected by the guest");
        pt_guest_detach_slot(vm->guest, slot, &err);
    }
}

static void qmp_line(QemuVm *vm, const char *line)
{
    if (strstr(line, "\"QMP\":"))
        return;                             /* the greeting */
    if (strstr(line, "\"event\":")) {
        qmp_event(vm, line);
        return;
    }
    g_autofree char *id = json_pick(line, "id");
    if (!vm->qmp_inflight || !id || strtoul(id, NULL, 10) != vm->qmp_next_id)
        return;
    if (strstr(line, "\"return\":")) {
        qmp_finish(vm, NULL);
        return;
    }
    g_autofree char *desc = json_pick(line, "desc");
    qmp_finish(vm, desc ? desc : "error");
}

static void qmp_close(QemuVm *vm)
{
    if (vm->qmp_watch)
        g_source_remove(vm->qmp_watch);
    vm->qmp_watch = 0;
    if (vm->qmp_fd >= 0)
        close(vm->qmp_fd);
    vm->qmp_fd = -1;
    if (vm->qmp_inflight)
        qmp_finish(vm, "QEMU is gone");
    QmpCmd *c;
    while ((c = g_queue_pop_head(&vm->qmp_queue)))
        qmp_cmd_free(c);
}

static gboolean qmp_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    QemuVm *vm = opaque;
    char buf[4096];
    (void)cond;

    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        vm->qmp_watch = 0;
        qmp_close(vm);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(vm->qmp_in, buf, n);
    char *nl;
    while ((nl = memchr(vm->qmp_in->str, '\n', vm->qmp_in->len))) {
        *nl = '\0';
        qmp_line(vm, vm->qmp_in->str);
        g_string_erase(vm->qmp_in, 0, nl - vm->qmp_in->str + 1);
    }
    return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ hot-plug */

/* Drop the slot's commands still queued (a refused plug goes no further). */
static void drop_queued(QemuVm *vm, unsigned slot)
{
    for (GList *l = vm->qmp_queue.head, *next; l; l = next) {
        QmpCmd *c = l->data;
        next = l->next;
        if (c->done != plug_done || c->slot != slot)
            continue;
        g_queue_delete_link(&vm->qmp_queue, l);
        qmp_cmd_free(c);
    }
}

/*
 * A refused plug: the rest of the slot's commands are dropped and its
 * sockets closed.  Functions QEMU already took stay hidden there (no
 * function 0) until the slot is removed; qemu-dm keeps the slot attached.
 */
static void plug_done(QemuVm *vm, QmpCmd *c, const char *error)
{
    VmSlot *s = &vm->slots[c->slot];
    if (error) {
        /* Nothing stays half-attached: the guest never got the slot, so
         * qemu-dm lets go of it too (sockets, mappings, assignment). */
        PtError err;
        unsigned slot = c->slot;
        drop_queued(vm, slot);
        mpq_close_slot(vm->mpq, slot);
        s->state = SLOT_EMPTY;
        pt_guest_detach_slot(vm->guest, slot, &err);
        say("QEMU refused %s: %s; slot %02x detached again", c->what, error, slot);
        return;
    }
    if (c->last && s->state == SLOT_PLUGGING) {
        s->state = SLOT_IN;
        say("slot %02x: %d function%s plugged into the guest", c->slot, s->nfuncs,
            s->nfuncs == 1 ? "" : "s");
    }
}

static void slot_insert(QemuVm *vm, unsigned slot)
{
    uint8_t devfns[PCI_BUS_FUNCS];
    int n = slot_devfns(vm, slot, devfns);
    VmSlot *s = &vm->slots[slot];

    s->state = SLOT_PLUGGING;
    s->nfuncs = n;
    for (int i = 0; i < n; i++) {
        char id[16];
        int peer, rc = mpq_channel_open(vm->mpq, devfns[i], &peer);
        dev_id(id, sizeof(id), devfns[i]);
        if (rc < 0) {
            say("slot %02x: no socket for %s: %s", slot, id, g_strerror(-rc));
            s->state = SLOT_EMPTY;
            return;
        }
        qmp_queue(vm, g_strdup_printf("{\"execute\": \"getfd\", \"arguments\": "
                                      "{\"fdname\": \"%s\"}}", id),
                  g_strdup_printf("getfd %s", id), peer, plug_done, slot, false);
        g_autofree char *opts = device_opts(devfns[i], id, n > 1);
        GString *json = g_string_new("{\"execute\": \"device_add\", \"arguments\": {"
                                     "\"driver\": \"x-pci-proxy-dev\"");
        /* "k=v,k=v" after the driver -> JSON members */
        g_auto(GStrv) kv = g_strsplit(strchr(opts, ',') + 1, ",", -1);
        for (int k = 0; kv[k]; k++) {
            char *eq = strchr(kv[k], '=');
            *eq = '\0';
            g_string_append_printf(json, ", \"%s\": \"%s\"", kv[k], eq + 1);
        }
        g_string_append(json, "}}");
        qmp_queue(vm, g_string_free(json, FALSE), g_strdup_printf("device_add %s", id), -1,
                  plug_done, slot, i == n - 1);
    }
}

static gboolean eject_timeout(gpointer opaque);

static void slot_removed(QemuVm *vm, unsigned slot, const char *how)
{
    VmSlot *s = &vm->slots[slot];
    if (s->eject_timer)
        g_source_remove(s->eject_timer);
    s->eject_timer = 0;
    int hung_up = s->open_at_del - mpq_open_channels(vm->mpq, slot);
    int closed = mpq_close_slot(vm->mpq, slot);
    s->state = SLOT_EMPTY;
    say("slot %02x: %s; sockets released: %d closed by QEMU, %d by qemu-dm, %d open",
        slot, how, hung_up, closed, mpq_open_channels(vm->mpq, slot));
}

/* Tell whoever asked for the eject of slot, once. */
static void eject_answer(QemuVm *vm, unsigned slot, const char *failure)
{
    VmSlot *s = &vm->slots[slot];
    QemuVmEjectFn done = s->eject_done;

    s->eject_done = NULL;
    if (done)
        done(s->eject_opaque, slot, failure);
}

/* An asked-for eject that did not happen: the device is still in QEMU and
 * the guest, so the slot stays in with its sockets. */
static void eject_refused(QemuVm *vm, unsigned slot, const char *why)
{
    VmSlot *s = &vm->slots[slot];

    if (s->eject_timer)
        g_source_remove(s->eject_timer);
    s->eject_timer = 0;
    s->state = SLOT_IN;
    say("slot %02x: not ejected (%s); it stays in the guest", slot, why);
    eject_answer(vm, slot, why);
}

typedef struct EjectWait {
    QemuVm *vm;
    unsigned slot;
} EjectWait;

static gboolean eject_timeout(gpointer opaque)
{
    EjectWait *w = opaque;
    w->vm->slots[w->slot].eject_timer = 0;
    if (w->vm->slots[w->slot].eject_done) {
        eject_refused(w->vm, w->slot,
                      "the guest did not eject it within " G_STRINGIFY(EJECT_TIMEOUT_S) " s");
        return G_SOURCE_REMOVE;
    }
    slot_removed(w->vm, w->slot,
                 "the guest did not eject it within " G_STRINGIFY(EJECT_TIMEOUT_S) " s");
    return G_SOURCE_REMOVE;
}

static void unplug_done(QemuVm *vm, QmpCmd *c, const char *error)
{
    if (!error)
        return;         /* DEVICE_DELETED follows once the guest ejected */
    say("QEMU refused %s: %s", c->what, error);
    if (vm->slots[c->slot].state != SLOT_REMOVING)
        return;
    if (vm->slots[c->slot].eject_done) {
        g_autofree char *why = g_strdup_printf("QEMU refused %s: %s", c->what, error);
        eject_refused(vm, c->slot, why);
    } else {
        slot_removed(vm, c->slot, "not removed by QEMU");
    }
}

/* device_del of function 0; DEVICE_DELETED or the timer ends the wait. */
static void start_unplug(QemuVm *vm, unsigned slot)
{
    VmSlot *s = &vm->slots[slot];
    char id[16];

    dev_id(id, sizeof(id), PT_DEVFN(slot, 0));
    s->state = SLOT_REMOVING;
    s->open_at_del = mpq_open_channels(vm->mpq, slot);
    EjectWait *w = g_new(EjectWait, 1);
    *w = (EjectWait){ vm, slot };
    s->eject_timer = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, EJECT_TIMEOUT_S,
                                                eject_timeout, w, g_free);
    qmp_queue(vm, g_strdup_printf("{\"execute\": \"device_del\", \"arguments\": "
                                  "{\"id\": \"%s\"}}", id),
              g_strdup_printf("device_del %s", id), -1, unplug_done, slot, false);
}

static void slot_remove(QemuVm *vm, unsigned slot)
{
    VmSlot *s = &vm->slots[slot];

    if (mpq_open_channels(vm->mpq, slot) == 0 && s->state == SLOT_EMPTY)
        return;
    if (s->state == SLOT_REMOVING) {
        /* Detached while an asked-for eject is under way: that device_del
         * completes the removal; nobody waits for the answer any more. */
        s->eject_done = NULL;
        return;
    }
    start_unplug(vm, slot);
}

int qemu_vm_request_eject(QemuVm *vm, unsigned vslot, QemuVmEjectFn done, void *opaque)
{
    if (vslot >= PCI_BUS_SLOTS)
        return -EINVAL;
    VmSlot *s = &vm->slots[vslot];
    if (vm->exited || vm->qmp_fd < 0)
        return -ENOTCONN;
    if (s->state == SLOT_REMOVING)
        return -EBUSY;
    if (s->state == SLOT_EMPTY)
        return -ENOENT;
    s->eject_done = done;
    s->eject_opaque = opaque;
    start_unplug(vm, vslot);
    return 0;
}

static void on_slot(void *opaque, unsigned vslot, bool inserted)
{
    QemuVm *vm = opaque;

    if (vslot >= PCI_BUS_SLOTS)
        return;
    if (vm->exited || vm->qmp_fd < 0) {
        say("slot %02x %s while QEMU is not running: no guest sees it", vslot,
            inserted ? "inserted" : "removed");
        if (!inserted)
            mpq_close_slot(vm->mpq, vslot);
        return;
    }
    if (inserted)
        slot_insert(vm, vslot);
    else
        slot_remove(vm, vslot);
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
    qmp_close(vm);
    for (unsigned s = 0; s < PCI_BUS_SLOTS; s++) {
        if (vm->slots[s].eject_timer)
            g_source_remove(vm->slots[s].eject_timer);
        vm->slots[s].eject_timer = 0;
        vm->slots[s].state = SLOT_EMPTY;
        mpq_close_slot(vm->mpq, s);
        eject_answer(vm, s, "QEMU is gone");
    }
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
    vm->qmp_fd = -1;
    vm->qmp_in = g_string_new(NULL);
    vm->cancel = g_cancellable_new();
    g_queue_init(&vm->qmp_queue);
    vm->mpq = mpq_server_new(guest, bus, cfg->sysfs_root);
    return vm;
}

/* A QEMU that fails this early is reported once, by its exit. */
static void qmp_greeted(QemuVm *vm, QmpCmd *c, const char *error)
{
    (void)vm, (void)c, (void)error;
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
    for (unsigned slot = 0; slot < PCI_BUS_SLOTS; slot++) {
        uint8_t devfns[PCI_BUS_FUNCS];
        int n = slot_devfns(vm, slot, devfns);
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
        vm->slots[slot] = (VmSlot){ .state = SLOT_IN, .nfuncs = n };
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
        for (unsigned s = 0; s < PCI_BUS_SLOTS; s++)
            mpq_close_slot(vm->mpq, s);
        return rc;
    }
    const char *pid = g_subprocess_get_identifier(vm->proc);
    int n = mpq_open_channels(vm->mpq, -1);
    say("booting %s/vmlinuz under QEMU (pid %s), %d function socket%s", vm->image_dir,
        pid ? pid : "gone", n, n == 1 ? "" : "s");
    vm->qmp_fd = sv[0];
    vm->qmp_watch = g_unix_fd_add(vm->qmp_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, qmp_readable, vm);
    qmp_queue(vm, g_strdup("{\"execute\": \"qmp_capabilities\"}"),
              g_strdup("qmp_capabilities"), -1, qmp_greeted, 0, false);
    reader_start(vm, g_subprocess_get_stdout_pipe(vm->proc), true);
    reader_start(vm, g_subprocess_get_stderr_pipe(vm->proc), false);
    g_subprocess_wait_async(vm->proc, vm->cancel, on_exited, vm);
    pt_guest_set_slot_observer(vm->guest, on_slot, vm);
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
    pt_guest_set_slot_observer(vm->guest, NULL, vm);
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
    qmp_close(vm);
    for (unsigned s = 0; s < PCI_BUS_SLOTS; s++)
        if (vm->slots[s].eject_timer)
            g_source_remove(vm->slots[s].eject_timer);
    mpq_server_free(vm->mpq);
    if (vm->console)
        fclose(vm->console);
    if (vm->proc)
        g_object_unref(vm->proc);
    g_object_unref(vm->cancel);
    g_string_free(vm->qmp_in, TRUE);
    g_free(vm->image_dir);
    g_free(vm->console_path);
    g_free(vm->qemu);
    g_free(vm->sysfs_root);
    g_free(vm);
}
