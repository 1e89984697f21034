/*
 * The QMP client.  See qmp.h.
 */
#include "qmp.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dm-log.h"
#include "pt-notation.h"

#define QMP_TIMEOUT_S 10        /* a command's reply */

typedef struct QmpCmd {
    char *json;                 /* without the id */
    char *what;                 /* "device_add pt08_1", for messages */
    int fd;                     /* sent with the command (getfd), or -1 */
    QmpDoneFn done;
    void *opaque;
    unsigned tag;
} QmpCmd;

struct Qmp {
    int fd;
    guint watch;
    GString *in;
    GQueue queue;               /* QmpCmd: waiting to be sent */
    QmpCmd *inflight;
    unsigned next_id;
    guint timer;
    QmpEventFn on_event;
    QmpClosedFn on_closed;
    void *opaque;
};

static void send_next(Qmp *q);

static void cmd_free(QmpCmd *c)
{
    if (c->fd >= 0)
        close(c->fd);
    g_free(c->json);
    g_free(c->what);
    g_free(c);
}

static void finish(Qmp *q, const char *error)
{
    QmpCmd *c = q->inflight;
    q->inflight = NULL;
    if (q->timer)
        g_source_remove(q->timer);
    q->timer = 0;
    if (c && c->done)
        c->done(c->opaque, c->tag, c->what, error);
    else if (c && error)
        dm_log("qmp", "QEMU refused %s: %s", c->what, error);
    if (c)
        cmd_free(c);
    send_next(q);
}

static gboolean reply_timeout(gpointer opaque)
{
    Qmp *q = opaque;
    q->timer = 0;
    finish(q, "no reply within " G_STRINGIFY(QMP_TIMEOUT_S) " s");
    return G_SOURCE_REMOVE;
}

/* One command on the wire, with its fd as SCM_RIGHTS if it has one. */
static int cmd_write(Qmp *q, QmpCmd *c)
{
    char *line = g_strdup_printf("%.*s, \"id\": %u}\n", (int)strlen(c->json) - 1, c->json,
                                 ++q->next_id);
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
    ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
    int rc = n == (ssize_t)iov.iov_len ? 0 : -EIO;
    g_free(line);
    if (c->fd >= 0) {       /* QEMU has its own copy now */
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

static void send_next(Qmp *q)
{
    while (!q->inflight && q->fd >= 0 && !g_queue_is_empty(&q->queue)) {
        q->inflight = g_queue_pop_head(&q->queue);
        if (cmd_write(q, q->inflight) < 0) {
            finish(q, "the QMP socket is closed");
            return;
        }
        q->timer = g_timeout_add_seconds(QMP_TIMEOUT_S, reply_timeout, q);
    }
}

void qmp_call(Qmp *q, char *json, char *what, int fd, QmpDoneFn done, void *opaque,
              unsigned tag)
{
    QmpCmd *c = g_new0(QmpCmd, 1);
    *c = (QmpCmd){ .json = json, .what = what, .fd = fd, .done = done, .opaque = opaque,
                   .tag = tag };
    g_queue_push_tail(&q->queue, c);
    send_next(q);
}

void qmp_drop(Qmp *q, QmpDoneFn done, unsigned tag)
{
    for (GList *l = q->queue.head, *next; l; l = next) {
        QmpCmd *c = l->data;
        next = l->next;
        if (c->done != done || c->tag != tag)
            continue;
        g_queue_delete_link(&q->queue, l);
        cmd_free(c);
    }
}

char *qmp_json_pick(const char *line, const char *key)
{
    char *pat = g_strdup_printf("\"%s\":", key);
    const char *p = NULL;
    for (const char *s = strstr(line, pat); s; s = strstr(s + 1, pat))
        p = s;
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

char *qmp_device_add_json(const char *opts)
{
    g_auto(GStrv) kv = g_strsplit(opts, ",", -1);
    GString *json = g_string_new(NULL);

    g_string_printf(json, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"%s\"",
                    kv[0]);
    for (int k = 1; kv[k]; k++) {
        char *eq = strchr(kv[k], '=');
        if (!eq)
            continue;
        *eq = '\0';
        g_string_append_printf(json, ", \"%s\": \"%s\"", kv[k], eq + 1);
    }
    g_string_append(json, "}}");
    return g_string_free(json, FALSE);
}

static void on_line(Qmp *q, const char *line)
{
    if (strstr(line, "\"QMP\":"))
        return;                             /* the greeting */
    if (strstr(line, "\"event\":")) {
        g_autofree char *event = qmp_json_pick(line, "event");
        if (event && q->on_event)
            q->on_event(q->opaque, event, line);
        return;
    }
    g_autofree char *id = qmp_json_pick(line, "id");
    unsigned long n;
    if (!q->inflight || !id || pt_parse_uint(id, 10, UINT_MAX, &n) < 0 || n != q->next_id)
        return;
    if (strstr(line, "\"return\":")) {
        finish(q, NULL);
        return;
    }
    g_autofree char *desc = qmp_json_pick(line, "desc");
    finish(q, desc ? desc : "error");
}

void qmp_close(Qmp *q)
{
    if (!q)
        return;
    if (q->watch)
        g_source_remove(q->watch);
    q->watch = 0;
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    if (q->inflight)
        finish(q, "QEMU is gone");
    QmpCmd *c;
    while ((c = g_queue_pop_head(&q->queue)))
        cmd_free(c);
}

static gboolean readable(gint fd, GIOCondition cond, gpointer opaque)
{
    Qmp *q = opaque;
    char buf[4096];
    (void)cond;

    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        q->watch = 0;
        qmp_close(q);
        if (q->on_closed)
            q->on_closed(q->opaque);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(q->in, buf, n);
    char *nl;
    while ((nl = memchr(q->in->str, '\n', q->in->len))) {
        *nl = '\0';
        on_line(q, q->in->str);
        g_string_erase(q->in, 0, nl - q->in->str + 1);
    }
    return G_SOURCE_CONTINUE;
}

/* A QEMU that fails this early is reported by whoever watches it exit. */
static void greeted(void *opaque, unsigned tag, const char *what, const char *error)
{
    (void)opaque, (void)tag, (void)what, (void)error;
}

Qmp *qmp_new(int fd, QmpEventFn on_event, QmpClosedFn on_closed, void *opaque)
{
    Qmp *q = g_new0(Qmp, 1);

    *q = (Qmp){ .fd = fd, .in = g_string_new(NULL), .on_event = on_event,
                .on_closed = on_closed, .opaque = opaque };
    g_queue_init(&q->queue);
    q->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, readable, q);
    qmp_call(q, g_strdup("{\"execute\": \"qmp_capabilities\"}"), g_strdup("qmp_capabilities"),
             -1, greeted, NULL, 0);
    return q;
}

Qmp *qmp_connect(const char *path, QmpEventFn on_event, QmpClosedFn on_closed, void *opaque,
                 char *why, size_t len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(why, len, "QMP socket path too long: %s", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(why, len, "cannot connect to QMP socket %s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return qmp_new(fd, on_event, on_closed, opaque);
}

bool qmp_is_open(const Qmp *q)
{
    return q && q->fd >= 0;
}

void qmp_free(Qmp *q)
{
    if (!q)
        return;
    qmp_close(q);
    g_string_free(q->in, TRUE);
    g_free(q);
}
