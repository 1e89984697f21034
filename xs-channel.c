#include "xs-channel.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <glib-unix.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm-log.h"
#include "php.h"
#include "pt-place.h"
#include "test-guest.h"

#define WHO          "xenstore"
#define CMD_TOKEN    "qemu-dm-command"
#define WAIT_TOKEN   "xs-tool-wait"
#define TXN_TRIES    16
#define NODE_MAX     128

/* ================================================================ helpers */

void xs_path_backend(unsigned domid, const char *node, char *buf, size_t len)
{
    snprintf(buf, len, "/local/domain/0/backend/pci/%u/0%s%s", domid, node ? "/" : "",
             node ? node : "");
}

void xs_path_dm(unsigned domid, const char *node, char *buf, size_t len)
{
    snprintf(buf, len, "/local/domain/0/device-model/%u%s%s", domid, node ? "/" : "",
             node ? node : "");
}

/* Text from xenstore is untrusted: bounded, printable ASCII, no NUL. */
static int check_text(const char *what, const char *v, unsigned len, size_t max, PtError *err)
{
    if (len > max) {
        pt_error_set(err, "%s: %u bytes, at most %zu accepted", what, len, max);
        return -EINVAL;
    }
    for (unsigned i = 0; i < len; i++)
        if (!isprint((unsigned char)v[i]) || (unsigned char)v[i] > 0x7e) {
            pt_error_set(err, "%s: byte 0x%02x at column %u is not printable ASCII", what,
                 (unsigned char)v[i], i + 1);
            return -EINVAL;
        }
    return 0;
}

/* Read a node into buf: 1 present, 0 absent, negative errno. */
static int read_node(struct xs_handle *h, xs_transaction_t t, const char *path, const char *what,
                     char *buf, size_t size, PtError *err)
{
    unsigned len;
    char *v = xs_read(h, t, path, &len);

    if (!v) {
        if (errno == ENOENT)
            return 0;
        pt_error_set(err, "%s: cannot read %s (%s)", what, path, strerror(errno));
        return -errno;
    }
    int rc = check_text(what, v, len, size - 1, err);
    if (rc == 0) {
        memcpy(buf, v, len);
        buf[len] = '\0';
    }
    free(v);
    return rc < 0 ? rc : 1;
}

static bool write_str(struct xs_handle *h, xs_transaction_t t, const char *path, const char *v)
{
    return xs_write(h, t, path, v, (unsigned)strlen(v));
}

/* Strict unsigned number in base 10 or 16, within max. */

/* Run fn in a transaction, again on a conflict (EAGAIN). */
int xs_in_transaction(struct xs_handle *h, XsTxnFn fn, void *ctx)
{
    for (int tries = 0; tries < TXN_TRIES; tries++) {
        xs_transaction_t t = xs_transaction_start(h);
        if (t == XBT_NULL)
            return -errno;
        int rc = fn(h, t, ctx);
        if (rc < 0) {
            xs_transaction_end(h, t, true);
            return rc;
        }
        if (xs_transaction_end(h, t, false))
            return 0;
        if (errno != EAGAIN)
            return -errno;
    }
    return -EAGAIN;
}

/* The vdevfns of a pci-inserted or pci-removed reply: "0x38,0x39". */
static void format_vdevfns(const uint8_t *vdevfn, int n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s0x%02x", i ? "," : "", vdevfn[i]);
}

int xs_parse_vdevfns(const char *text, uint8_t *vdevfn, int max)
{
    g_auto(GStrv) v = g_strsplit(text, ",", -1);
    int n = 0;

    for (char **p = v; *p && n < max; p++) {
        unsigned long d;
        if (!g_str_has_prefix(*p, "0x") || pt_parse_uint(*p + 2, 16, 0xff, &d) < 0)
            return -EINVAL;
        vdevfn[n++] = (uint8_t)d;
    }
    return n;
}

/* ================================================================ backend list */

static void entry_path(unsigned domid, const char *field, int n, char *buf, size_t len)
{
    char node[32];

    snprintf(node, sizeof(node), "%s-%d", field, n);
    xs_path_backend(domid, node, buf, len);
}

/* vdevfn-N: hex, xend "%02x" (0x100|vfunc = any slot) or libxl "%x". */
static int parse_vdevfn(const char *what, const char *text, XsBackendDev *d, PtError *err)
{
    unsigned long v;

    if (pt_parse_uint(text, 16, 0x1ff, &v) < 0 || ((v & 0x100) && (v & 0xf8))) {
        pt_error_set(err, "%s: '%.20s': expected a hex devfn 00-ff, or 100-107 for any slot", what, text);
        return -EINVAL;
    }
    d->has_vdevfn = true;
    d->auto_slot = v & 0x100;
    d->vdevfn = (uint8_t)(v & 0xff);
    return 0;
}

static int read_entry(struct xs_handle *h, xs_transaction_t t, unsigned domid, int n,
                      XsBackendDev *d, PtError *err)
{
    char path[NODE_MAX], what[48], v[NODE_MAX];
    unsigned long st;
    int rc;

    *d = (XsBackendDev){ .opts = pt_options_unset(), .state = -1 };
    entry_path(domid, "dev", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend dev-%d", n);
    if ((rc = read_node(h, t, path, what, v, 32, err)) <= 0) {
        if (rc == 0)
            pt_error_set(err, "%s: missing (num_devs counts it)", what);
        return rc < 0 ? rc : -EINVAL;
    }
    if (pt_bdf_parse_plain(what, v, &d->bdf, err) < 0)
        return -EINVAL;
    entry_path(domid, "vdevfn", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend vdevfn-%d", n);
    if ((rc = read_node(h, t, path, what, v, 16, err)) < 0 ||
        (rc == 1 && parse_vdevfn(what, v, d, err) < 0))
        return -EINVAL;
    entry_path(domid, "opts", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend opts-%d", n);
    if ((rc = read_node(h, t, path, what, v, NODE_MAX, err)) < 0 ||
        (rc == 1 && pt_options_parse(what, v, &d->opts, err) < 0))
        return -EINVAL;
    entry_path(domid, "key", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend key-%d", n);
    if (read_node(h, t, path, what, d->key, sizeof(d->key), err) < 0)
        return -EINVAL;
    entry_path(domid, "state", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend state-%d", n);
    if ((rc = read_node(h, t, path, what, v, 8, err)) < 0)
        return -EINVAL;
    if (rc == 1) {
        if (pt_parse_uint(v, 10, 8, &st) < 0) {
            pt_error_set(err, "%s: '%s': expected a XenbusState 0-8", what, v);
            return -EINVAL;
        }
        d->state = (int)st;
    }
    return 0;
}

int xs_backend_read(struct xs_handle *h, xs_transaction_t t, unsigned domid,
                    XsBackendList *out, PtError *err)
{
    char path[NODE_MAX], v[16];
    unsigned long n;
    int rc;

    out->n = 0;
    xs_path_backend(domid, "num_devs", path, sizeof(path));
    if ((rc = read_node(h, t, path, "backend num_devs", v, sizeof(v), err)) <= 0)
        return rc;
    if (pt_parse_uint(v, 10, XS_BACKEND_MAX, &n) < 0) {
        pt_error_set(err, "backend num_devs: '%s': expected a decimal count 0-%d", v, XS_BACKEND_MAX);
        return -EINVAL;
    }
    for (int i = 0; i < (int)n; i++)
        if ((rc = read_entry(h, t, domid, i, &out->dev[i], err)) < 0)
            return rc;
    out->n = (int)n;
    return 0;
}

static bool write_or_rm(struct xs_handle *h, xs_transaction_t t, const char *path,
                        const char *v)
{
    if (v && *v)
        return write_str(h, t, path, v);
    return xs_rm(h, t, path) || errno == ENOENT;
}

static const char *const entry_fields[] = { "dev", "vdevfn", "opts", "key", "state",
                                            "uuid", "name" };

int xs_backend_write(struct xs_handle *h, xs_transaction_t t, unsigned domid,
                     const XsBackendList *list, int old_n)
{
    char path[NODE_MAX], v[NODE_MAX];

    for (int i = 0; i < list->n; i++) {
        const XsBackendDev *d = &list->dev[i];
        PtOptions o = d->opts;
        char opts[NODE_MAX];

        o.map = PT_MAP_DEFAULT;     /* a spec option, not a wire one */
        pt_options_format(&o, opts, sizeof(opts));
        entry_path(domid, "dev", i, path, sizeof(path));
        if (!write_str(h, t, path, pt_bdf_format(d->bdf, v, sizeof(v))))
            return -errno;
        entry_path(domid, "vdevfn", i, path, sizeof(path));
        snprintf(v, sizeof(v), "%02x", d->auto_slot ? 0x100u | (d->vdevfn & 7u) : d->vdevfn);
        if (!write_or_rm(h, t, path, d->has_vdevfn ? v : NULL))
            return -errno;
        entry_path(domid, "opts", i, path, sizeof(path));
        if (!write_or_rm(h, t, path, opts))
            return -errno;
        entry_path(domid, "key", i, path, sizeof(path));
        if (!write_or_rm(h, t, path, d->key))
            return -errno;
        entry_path(domid, "state", i, path, sizeof(path));
        snprintf(v, sizeof(v), "%d", d->state);
        if (!write_or_rm(h, t, path, d->state >= 0 ? v : NULL))
            return -errno;
    }
    for (int i = list->n; i < old_n; i++)
        for (size_t f = 0; f < G_N_ELEMENTS(entry_fields); f++) {
            entry_path(domid, entry_fields[f], i, path, sizeof(path));
            if (!write_or_rm(h, t, path, NULL))
                return -errno;
        }
    xs_path_backend(domid, "num_devs", path, sizeof(path));
    snprintf(v, sizeof(v), "%d", list->n);
    return write_str(h, t, path, v) ? 0 : -errno;
}

static bool backend_equal(const XsBackendList *a, const XsBackendList *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const XsBackendDev *x = &a->dev[i], *y = &b->dev[i];
        if (!pt_bdf_equal(x->bdf, y->bdf) || x->has_vdevfn != y->has_vdevfn ||
            x->auto_slot != y->auto_slot || x->vdevfn != y->vdevfn || x->state != y->state ||
            strcmp(x->key, y->key) || memcmp(&x->opts, &y->opts, sizeof(x->opts)))
            return false;
    }
    return true;
}

/* A function in another domain's backend list is that domain's: its
 * qemu-dm has it, or will at boot.  Closed entries are released. */
typedef struct XsHeldEntry {
    PtBdf bdf;
    unsigned domid;
} XsHeldEntry;

struct XsHeld {
    int n;
    XsHeldEntry *e;
};

/* Entry n of a domain's list as far as holding goes: dev-N, and state-N
 * (absent: held).  Fewer reads than xs_backend_read, as this is asked
 * about every other domain's every entry. */
static int read_holding(const XsHolders *xh, unsigned domid, int n, XsHeldEntry *e, bool *closed,
                        PtError *err)
{
    char path[NODE_MAX], what[48], v[32];
    unsigned long st;
    int rc;

    entry_path(domid, "dev", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend dev-%d", n);
    if ((rc = read_node(xh->h, XBT_NULL, path, what, v, sizeof(v), err)) <= 0 ||
        pt_bdf_parse_plain(what, v, &e->bdf, err) < 0)
        return -EINVAL;
    entry_path(domid, "state", n, path, sizeof(path));
    snprintf(what, sizeof(what), "backend state-%d", n);
    if ((rc = read_node(xh->h, XBT_NULL, path, what, v, 8, err)) < 0 ||
        (rc == 1 && pt_parse_uint(v, 10, 8, &st) < 0))
        return -EINVAL;
    e->domid = domid;
    *closed = rc == 1 && st == XS_STATE_CLOSED;
    return 0;
}

/* What a domain's list holds, appended to held; a malformed list holds nothing. */
static void read_domain_held(const XsHolders *xh, unsigned domid, GArray *held)
{
    char path[NODE_MAX], v[16];
    unsigned long n;
    guint was = held->len;
    PtError err;

    xs_path_backend(domid, "num_devs", path, sizeof(path));
    if (read_node(xh->h, XBT_NULL, path, "backend num_devs", v, sizeof(v), &err) <= 0 ||
        pt_parse_uint(v, 10, XS_BACKEND_MAX, &n) < 0)
        return;
    for (int i = 0; i < (int)n; i++) {
        XsHeldEntry e;
        bool closed;
        if (read_holding(xh, domid, i, &e, &closed, &err) < 0) {
            g_array_set_size(held, was);
            return;
        }
        if (!closed)
            g_array_append_val(held, e);
    }
}

static struct XsHeld *read_held(const XsHolders *xh)
{
    unsigned n = 0;
    char **ids = xs_directory(xh->h, XBT_NULL, "/local/domain/0/backend/pci", &n);
    GArray *held = g_array_new(FALSE, TRUE, sizeof(XsHeldEntry));

    for (unsigned i = 0; ids && i < n; i++) {
        unsigned long id;
        if (pt_parse_uint(ids[i], 10, XS_DOMID_MAX, &id) == 0 && id != xh->self)
            read_domain_held(xh, (unsigned)id, held);
    }
    free(ids);
    struct XsHeld *out = g_new0(struct XsHeld, 1);
    out->n = (int)held->len;
    out->e = (XsHeldEntry *)(void *)g_array_free(held, FALSE);
    return out;
}

static void free_held(struct XsHeld *held)
{
    if (held)
        g_free(held->e);
    g_free(held);
}

static const XsHeldEntry *find_held(const struct XsHeld *held, PtBdf bdf)
{
    for (int i = 0; i < held->n; i++)
        if (pt_bdf_equal(held->e[i].bdf, bdf))
            return &held->e[i];
    return NULL;
}

/* Requests in progress (xs_holders_begin .. _end), by their XsHolders: what
 * the lists hold once read, NULL before.  A table, not a field: XsHolders
 * stays two words that callers initialise in place. */
static GMutex requests_lock;
static GHashTable *requests;

/* The request's lists, read at its first question; NULL outside a request. */
static struct XsHeld *request_held(const XsHolders *xh)
{
    gpointer held = NULL;
    bool in_request;

    g_mutex_lock(&requests_lock);
    in_request = requests && g_hash_table_lookup_extended(requests, xh, NULL, &held);
    g_mutex_unlock(&requests_lock);
    if (in_request && !held) {
        held = read_held(xh);
        g_mutex_lock(&requests_lock);
        g_hash_table_insert(requests, (gpointer)xh, held);
        g_mutex_unlock(&requests_lock);
    }
    return held;
}

bool xs_backend_holds(void *xs_holders, PtBdf bdf, PtHolder *who)
{
    const XsHolders *xh = xs_holders;
    struct XsHeld *in_request = request_held(xh);
    struct XsHeld *held = in_request ? in_request : read_held(xh);
    const XsHeldEntry *e = find_held(held, bdf);
    char path[NODE_MAX];
    PtError err;

    if (e) {
        *who = (PtHolder){ .domid = e->domid, .vdevfn = -1 };
        snprintf(path, sizeof(path), "/local/domain/%u/name", e->domid);
        if (read_node(xh->h, XBT_NULL, path, "name", who->name, sizeof(who->name), &err) <= 0)
            who->name[0] = '\0';
    }
    bool found = e != NULL;
    if (!in_request)
        free_held(held);
    return found;
}

void xs_holders_begin(XsHolders *xh)
{
    g_mutex_lock(&requests_lock);
    if (!requests)
        requests = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)free_held);
    g_hash_table_insert(requests, xh, NULL);
    g_mutex_unlock(&requests_lock);
}

void xs_holders_end(XsHolders *xh)
{
    g_mutex_lock(&requests_lock);
    if (requests)
        g_hash_table_remove(requests, xh);
    g_mutex_unlock(&requests_lock);
}

XsHolders *xs_holders_open(unsigned self, PtError *err)
{
    struct xs_handle *h = xs_open(0);

    if (!h) {
        pt_error_set(err, "cannot connect to xenstored (%s)", strerror(errno));
        return NULL;
    }
    XsHolders *xh = g_new0(XsHolders, 1);
    *xh = (XsHolders){ h, self };
    xs_holders_begin(xh);
    return xh;
}

void xs_holders_close(XsHolders *xh)
{
    if (!xh)
        return;
    xs_holders_end(xh);
    xs_close(xh->h);
    g_free(xh);
}

/* ================================================================ device-model side */

struct XsDm {
    struct xs_handle *h;
    unsigned domid;
    PtGuest *guest;
    HostPci *host;
    XsDmHooks hooks;
    XsHolders others;           /* other domains' functions, for the policy */
    PtHolders holders;
    XsBackendList *list;        /* the backend as last read or written */
    int written_n;              /* entries present in the store */
    guint source;
    uint32_t pending_rem;       /* slots waiting for the guest's eject */
    uint8_t pending_funcs[PT_SLOTS];
    unsigned long commands;
    bool in_command;            /* the command publishes its own reply */
    char cmd_path[NODE_MAX], param_path[NODE_MAX], state_path[NODE_MAX];
};

XsDm *xs_dm_open(unsigned domid, PtGuest *guest, HostPci *host, const XsDmHooks *hooks,
                 PtError *err)
{
    XsDm *dm = g_new0(XsDm, 1);

    dm->h = xs_open(0);
    if (!dm->h) {
        pt_error_set(err, "cannot connect to xenstored (%s)", strerror(errno));
        g_free(dm);
        return NULL;
    }
    dm->domid = domid;
    dm->guest = guest;
    dm->host = host;
    if (hooks)
        dm->hooks = *hooks;
    dm->list = g_new0(XsBackendList, 1);
    dm->others = (XsHolders){ dm->h, domid };
    dm->holders = (PtHolders){ .held = xs_backend_holds, .opaque = &dm->others };
    pt_guest_set_holders(guest, &dm->holders);
    xs_path_dm(domid, "command", dm->cmd_path, sizeof(dm->cmd_path));
    xs_path_dm(domid, "parameter", dm->param_path, sizeof(dm->param_path));
    xs_path_dm(domid, "state", dm->state_path, sizeof(dm->state_path));
    return dm;
}

void xs_dm_close(XsDm *dm)
{
    if (!dm)
        return;
    if (dm->source)
        g_source_remove(dm->source);
    pt_guest_set_holders(dm->guest, NULL);
    xs_close(dm->h);
    g_free(dm->list);
    g_free(dm);
}

unsigned long xs_dm_commands(const XsDm *dm)
{
    return dm->commands;
}

/* ---- the mirror: the backend list follows what is attached ---- */

static bool in_list(const XsBackendList *l, PtBdf bdf)
{
    for (int i = 0; i < l->n; i++)
        if (pt_bdf_equal(l->dev[i].bdf, bdf))
            return true;
    return false;
}

static int by_vdevfn(const void *a, const void *b)
{
    return (int)(*(const PtGuestFunc *const *)a)->vdevfn -
           (int)(*(const PtGuestFunc *const *)b)->vdevfn;
}

/* Entries keep their order; new functions are appended with key, by
 * vdevfn (the order a spec was written in, whatever the scheme). */
static void mirror_build(const XsDm *dm, const char *key, XsBackendList *out)
{
    const PtGuestFunc *fresh[PCI_BUS_DEVFNS];
    int nfresh = 0;

    out->n = 0;
    for (int i = 0; i < dm->list->n; i++) {
        const PtGuestFunc *f = pt_guest_func_of(dm->guest, dm->list->dev[i].bdf);
        if (!f)
            continue;
        XsBackendDev *d = &out->dev[out->n++];
        *d = dm->list->dev[i];
        d->has_vdevfn = true;
        d->auto_slot = false;
        d->vdevfn = f->vdevfn;
        d->state = XS_STATE_CONNECTED;
    }
    for (int i = 0; i < pt_guest_count(dm->guest); i++)
        if (!in_list(out, pt_guest_func_at(dm->guest, i)->host))
            fresh[nfresh++] = pt_guest_func_at(dm->guest, i);
    qsort(fresh, (size_t)nfresh, sizeof(fresh[0]), by_vdevfn);
    for (int i = 0; i < nfresh && out->n < XS_BACKEND_MAX; i++) {
        const PtGuestFunc *f = fresh[i];
        XsBackendDev *d = &out->dev[out->n++];
        *d = (XsBackendDev){ .bdf = f->host, .has_vdevfn = true, .vdevfn = f->vdevfn,
                             .opts = f->opts, .state = XS_STATE_CONNECTED };
        d->opts.map = PT_MAP_DEFAULT;
        if (key)
            snprintf(d->key, sizeof(d->key), "%s", key);
        else
            pt_bdf_format(f->host, d->key, sizeof(d->key));
    }
}

/* One transaction: the backend list (when it changed), then the reply. */
typedef struct Reply {
    XsDm *dm;
    const XsBackendList *list;      /* NULL: backend unchanged */
    const char *state, *param;      /* state NULL: no reply */
} Reply;

static int reply_txn(struct xs_handle *h, xs_transaction_t t, void *ctx)
{
    Reply *r = ctx;
    int rc;

    if (r->list && (rc = xs_backend_write(h, t, r->dm->domid, r->list, r->dm->written_n)) < 0)
        return rc;
    if (r->state && (!write_str(h, t, r->dm->param_path, r->param ? r->param : "") ||
                     !write_str(h, t, r->dm->state_path, r->state)))
        return -errno;
    return 0;
}

static int publish(XsDm *dm, const char *key, const char *state, const char *param)
{
    XsBackendList *next = g_new0(XsBackendList, 1);
    Reply r = { .dm = dm, .state = state, .param = param };
    int rc;

    mirror_build(dm, key, next);
    if (!backend_equal(next, dm->list) || next->n != dm->written_n)
        r.list = next;
    rc = xs_in_transaction(dm->h, reply_txn, &r);
    if (rc < 0) {
        dm_log(WHO, "cannot write %s (%s)", state ? state : "the backend list", strerror(-rc));
        g_free(next);
        return rc;
    }
    if (r.list) {
        dm->written_n = next->n;
        g_free(dm->list);
        dm->list = next;
    } else {
        g_free(next);
    }
    if (state)
        dm_log(WHO, "%s%s%s", state, param && *param ? " " : "", param ? param : "");
    return 0;
}

int xs_dm_sync_backend(XsDm *dm, PtError *err)
{
    int rc = publish(dm, NULL, NULL, NULL);

    if (rc < 0)
        pt_error_set(err, "cannot write the backend list (%s)", strerror(-rc));
    return rc;
}

/* ---- boot-time devices ---- */

typedef struct Group {
    int n;
    int idx[PT_FUNCS_PER_SLOT];
} Group;

static bool all_pinned(const XsBackendList *l, const Group *g)
{
    for (int i = 0; i < g->n; i++)
        if (!l->dev[g->idx[i]].has_vdevfn || l->dev[g->idx[i]].auto_slot)
            return false;
    return true;
}

/* A pinned entry group (restore, a second boot, libxl's @VDEVFN): exactly
 * the saved devfns, never placed again. */
static int pinned_request(const XsBackendList *l, const Group *g, PtRequest *req, bool *partial,
                          PtError *err)
{
    const XsBackendDev *first = &l->dev[g->idx[0]];

    *req = (PtRequest){ .domain = first->bdf.domain, .bus = first->bdf.bus,
                        .dev = first->bdf.dev, .nfuncs = g->n, .multi = g->n > 1,
                        .vslot = PT_SLOT(first->vdevfn), .opts = first->opts };
    *partial = true;
    for (int i = 0; i < g->n; i++) {
        const XsBackendDev *d = &l->dev[g->idx[i]];
        if ((int)PT_SLOT(d->vdevfn) != req->vslot) {
            pt_error_set(err, "backend dev-%d (%s): vdevfn %02x is not in guest slot %02x like dev-%d",
                 g->idx[i], d->key, d->vdevfn, req->vslot, g->idx[0]);
            return -EINVAL;
        }
        req->pfunc[i] = d->bdf.func;
        req->vfunc[i] = PT_FUNC(d->vdevfn);
        *partial &= PT_FUNC(d->vdevfn) != 0;
    }
    return 0;
}

static void wire_request(const PtWire *w, PtRequest *req)
{
    *req = (PtRequest){ .domain = w->bdf.domain, .bus = w->bdf.bus, .dev = w->bdf.dev,
                        .nfuncs = 1, .pfunc = { w->bdf.func }, .vfunc = { PT_UNSET },
                        .vslot = PT_UNSET, .opts = w->opts };
    if (w->has_vdevfn) {
        req->vfunc[0] = PT_FUNC(w->vdevfn);
        if (!w->auto_slot)
            req->vslot = PT_SLOT(w->vdevfn);
    }
}

static uint8_t group_funcs(const XsBackendList *l, const Group *g)
{
    uint8_t m = 0;

    for (int i = 0; i < g->n; i++)
        m |= (uint8_t)(1u << l->dev[g->idx[i]].bdf.func);
    return m;
}

static int attach_group(XsDm *dm, const XsBackendList *l, const Group *g, PtError *err)
{
    const XsBackendDev *first = &l->dev[g->idx[0]];
    PtRequest req;
    PtSpec spec;
    PtError e;
    char name[16];
    bool partial = false;
    const char *text = first->key[0] ? first->key : pt_bdf_format(first->bdf, name, sizeof(name));

    for (int i = 0; i < g->n; i++)
        if (pt_plan_check_present(dm->host, l->dev[g->idx[i]].bdf, text, &e) < 0) {
            pt_error_set(err, "backend dev-%d: %.250s", g->idx[i], e.msg);
            return -ENODEV;
        }
    if (all_pinned(l, g)) {
        if (pinned_request(l, g, &req, &partial, err) < 0)
            return -EINVAL;
    } else if (g->n > 1 || (first->key[0] && pt_spec_parse(first->key, &spec, &e) == 0 &&
                            spec.multi_form)) {
        if (pt_spec_parse(first->key, &spec, &e) < 0) {
            pt_error_set(err, "backend key-%d: %.250s", g->idx[0], e.msg);
            return -EINVAL;
        }
        char note[sizeof(((PtPlacement *)0)->note)];
        if (pt_plan_expand(dm->host, first->key, &req, note, sizeof(note), &e) < 0) {
            pt_error_set(err, "backend key-%d: %.250s", g->idx[0], e.msg);
            return -EINVAL;
        }
        if (note[0])
            dm_log(WHO, "backend key-%d: %s", g->idx[0], note);
        uint8_t named = 0;
        for (int i = 0; i < req.nfuncs; i++)
            named |= (uint8_t)(1u << req.pfunc[i]);
        if (!pt_bdf_same_device(first->bdf, (PtBdf){ req.domain, req.bus, req.dev, 0 }) ||
            named != group_funcs(l, g)) {
            pt_error_set(err, "backend key-%d '%.60s' names functions 0x%02x of %04x:%02x:%02x, but its "
                      "dev-N entries name 0x%02x of %.12s",
                 g->idx[0], first->key, named, req.domain, req.bus, req.dev, group_funcs(l, g),
                 pt_bdf_format(first->bdf, name, sizeof(name)));
            return -EINVAL;
        }
        /* Per-entry options (opts-N) count for the whole device. */
        req.opts = pt_options_merge(req.opts, first->opts);
    } else {
        PtWire w = { .bdf = first->bdf, .has_vdevfn = first->has_vdevfn,
                     .auto_slot = first->auto_slot, .vdevfn = first->vdevfn, .opts = first->opts };
        wire_request(&w, &req);
        partial = w.has_vdevfn && PT_FUNC(w.vdevfn) != 0;
    }
    if (pt_guest_attach_request(dm->guest, &req, text, partial, NULL, &e) < 0) {
        pt_error_set(err, "backend dev-%d (%.12s): %.250s", g->idx[0],
             pt_bdf_format(first->bdf, name, sizeof(name)), e.msg);
        return -EINVAL;
    }
    return 0;
}

/* Entries sharing a key-N that is a multi-function spec form one device. */
static void next_group(const XsBackendList *l, bool *taken, int i, Group *g)
{
    const XsBackendDev *first = &l->dev[i];
    PtSpec spec;
    PtError e;
    bool shared = first->key[0] && pt_spec_parse(first->key, &spec, &e) == 0 && spec.multi_form;

    g->n = 0;
    g->idx[g->n++] = i;
    taken[i] = true;
    for (int j = i + 1; shared && j < l->n && g->n < PT_FUNCS_PER_SLOT; j++) {
        const XsBackendDev *d = &l->dev[j];
        if (!taken[j] && !strcmp(d->key, first->key) && pt_bdf_same_device(d->bdf, first->bdf) &&
            d->state != XS_STATE_CLOSING && d->state != XS_STATE_CLOSED) {
            g->idx[g->n++] = j;
            taken[j] = true;
        }
    }
}

/* No populated guest slot may lack its function 0 once boot is done. */
static int check_slots(XsDm *dm, PtError *err)
{
    const PtBusMap *map = pt_guest_busmap(dm->guest);

    for (unsigned s = 0; s < PT_SLOTS; s++)
        if (map->used[s] && !(map->used[s] & 1)) {
            pt_error_set(err, "backend list leaves guest slot %02x without function 0 (functions 0x%02x "
                      "would be invisible to the guest)", s, map->used[s]);
            return -EINVAL;
        }
    return 0;
}

static void detach_new_slots(XsDm *dm, const PtBusMap *before)
{
    const PtBusMap *now = pt_guest_busmap(dm->guest);
    PtError e;

    for (unsigned s = 0; s < PT_SLOTS; s++)
        if (now->used[s] && !before->used[s])
            pt_guest_detach_slot(dm->guest, s, &e);
}

/* The slots the list pins (exact vdevfn-N, or a key with @VSLOT): entries
 * placed automatically keep clear of them. */
static uint32_t list_pinned_slots(const XsBackendList *l)
{
    uint32_t mask = 0;

    for (int i = 0; i < l->n; i++) {
        const XsBackendDev *d = &l->dev[i];
        const char *key = d->key;
        if (d->has_vdevfn && !d->auto_slot)
            mask |= 1u << PT_SLOT(d->vdevfn);
        else if (key[0])
            mask |= pt_plan_pinned_slots(&key, 1);
    }
    return mask;
}

int xs_dm_attach_boot_devices(XsDm *dm, PtError *err)
{
    PtBusMap before = *pt_guest_busmap(dm->guest);
    XsBackendList *l = dm->list;
    bool taken[XS_BACKEND_MAX] = { 0 };
    int rc;

    if ((rc = xs_backend_read(dm->h, XBT_NULL, dm->domid, l, err)) < 0)
        return rc;
    dm->written_n = l->n;
    pt_guest_keep_clear(dm->guest, list_pinned_slots(l));
    xs_holders_begin(&dm->others);
    for (int i = 0; i < l->n; i++) {
        if (taken[i] || l->dev[i].state == XS_STATE_CLOSING || l->dev[i].state == XS_STATE_CLOSED)
            continue;
        Group g;
        next_group(l, taken, i, &g);
        if ((rc = attach_group(dm, l, &g, err)) < 0)
            break;
    }
    xs_holders_end(&dm->others);
    if (rc < 0)
        goto undo;
    pt_guest_keep_clear(dm->guest, 0);
    if ((rc = check_slots(dm, err)) < 0)
        goto undo;
    dm_log(WHO, "%d backend entries of domain %u attached", l->n, dm->domid);
    return xs_dm_sync_backend(dm, err);
undo:
    pt_guest_keep_clear(dm->guest, 0);
    detach_new_slots(dm, &before);
    l->n = 0;
    return rc;
}

/* ---- the command channel ---- */

/* The vdevfns of a slot's functions, "0x38,0x39". */
static void format_slot(unsigned vslot, uint8_t funcs, char *buf, size_t len)
{
    uint8_t v[PT_FUNCS_PER_SLOT];
    int n = 0;

    for (unsigned f = 0; f < PT_FUNCS_PER_SLOT; f++)
        if (funcs & (1u << f))
            v[n++] = PT_DEVFN(vslot, f);
    format_vdevfns(v, n, buf, len);
}

/*
 * A single function in the wire form is xend's or libxl's per-function
 * request (@VDEVFN, 0x100 = any slot; a pinned function other than 0 may
 * wait for its function 0).  Anything else is the extended notation: the
 * whole device at once.  Either way the policy (hw/pt-plan.c) decides.
 */
static int cmd_pci_ins(XsDm *dm, const char *param, PtError *err)
{
    PtRequest req;
    PtWire w;
    PtError e;
    PtPlan plan;
    int rc;

    if (pt_wire_parse(param, &w, &e) == 0) {
        wire_request(&w, &req);
        if ((rc = pt_guest_attach_request(dm->guest, &req, param, true, &plan, err)) < 0)
            return rc;
    } else if ((rc = pt_guest_attach(dm->guest, param, &plan, err)) < 0) {
        return rc;
    }
    char vdevfns[PT_FUNCS_PER_SLOT * 6];
    format_vdevfns(plan.placement.vdevfn, plan.placement.nfuncs, vdevfns, sizeof(vdevfns));
    return publish(dm, param, "pci-inserted", vdevfns);
}

/* The guest is asked to eject; the reply comes with the removal. */
static int cmd_pci_rem(XsDm *dm, const char *param, PtError *err)
{
    int vslot = pt_guest_slot_of_spec(dm->guest, param, err);

    if (vslot < 0)
        return vslot;
    dm->pending_rem |= 1u << vslot;
    dm->pending_funcs[vslot] = pt_guest_busmap(dm->guest)->used[vslot];
    if (dm->hooks.request_eject && dm->hooks.request_eject(dm->hooks.opaque, (unsigned)vslot) == 0)
        return 0;
    /* Nobody to ask (or the guest cannot see the slot): remove it now. */
    int rc = pt_guest_detach_slot(dm->guest, (unsigned)vslot, err);
    if (rc < 0) {
        dm->pending_rem &= ~(1u << vslot);
        return rc;
    }
    if (dm->pending_rem & (1u << vslot))       /* no slot observer wired */
        xs_dm_slot_changed(dm, (unsigned)vslot, false);
    return 0;
}

static int cmd_save(XsDm *dm, const char *param, PtError *err)
{
    (void)param;
    if (!dm->hooks.save) {
        pt_error_set(err, "this qemu-dm was started without a state file (-save-state)");
        return -ENOTSUP;
    }
    int rc = dm->hooks.save(dm->hooks.opaque, err);
    return rc < 0 ? rc : publish(dm, NULL, "paused", "");
}

static int cmd_continue(XsDm *dm, const char *param, PtError *err)
{
    (void)param, (void)err;
    return publish(dm, NULL, "running", "");
}

typedef struct XsCommand {
    const char *name;
    int (*run)(XsDm *dm, const char *param, PtError *err);
    const char *failed;         /* the state written when run fails */
} XsCommand;

static const XsCommand xs_commands[] = {
    { "pci-ins", cmd_pci_ins, "pci-insert-failed" },
    { "pci-rem", cmd_pci_rem, "pci-remove-failed" },
    { "save", cmd_save, "save-failed" },
    { "continue", cmd_continue, "error" },
};

static const XsCommand *find_command(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(xs_commands); i++)
        if (!strcmp(name, xs_commands[i].name))
            return &xs_commands[i];
    return NULL;
}

/* The toolstack wrote command: take it (remove the node), run it, reply. */
static void handle_command(XsDm *dm)
{
    char cmd[40], param[XS_PARAM_MAX + 1] = "";
    PtError err;
    int rc = read_node(dm->h, XBT_NULL, dm->cmd_path, "command", cmd, sizeof(cmd), &err);

    if (rc == 0)
        return;     /* our own removal, or a merged event */
    xs_rm(dm->h, XBT_NULL, dm->cmd_path);
    dm->commands++;
    const XsCommand *c = rc > 0 ? find_command(cmd) : NULL;
    if (rc > 0 && !c)
        pt_error_set(&err, "unknown command '%s' (known: pci-ins, pci-rem, save, continue)", cmd);
    if (c && (rc = read_node(dm->h, XBT_NULL, dm->param_path, "parameter", param,
                             sizeof(param), &err)) >= 0) {
        dm_log(WHO, "%s %s", cmd, param);
        dm->in_command = true;
        xs_holders_begin(&dm->others);
        rc = c->run(dm, param, &err);
        xs_holders_end(&dm->others);
        dm->in_command = false;
        if (rc >= 0)
            return;
    }
    dm_log(WHO, "%s refused: %s", rc > 0 || c ? cmd : "command", err.msg);
    publish(dm, NULL, c ? c->failed : "error", err.msg);
}

void xs_dm_slot_changed(XsDm *dm, unsigned vslot, bool inserted)
{
    if (!dm || vslot >= PT_SLOTS)
        return;
    if (inserted || !(dm->pending_rem & (1u << vslot))) {
        if (!dm->in_command)        /* the monitor, a guest-initiated eject... */
            publish(dm, NULL, NULL, NULL);
        return;
    }
    char vdevfns[PT_FUNCS_PER_SLOT * 6];
    dm->pending_rem &= ~(1u << vslot);
    format_slot(vslot, dm->pending_funcs[vslot], vdevfns, sizeof(vdevfns));
    publish(dm, NULL, "pci-removed", vdevfns);
}

void xs_dm_eject_failed(XsDm *dm, unsigned vslot, const char *why)
{
    if (!dm || vslot >= PT_SLOTS || !(dm->pending_rem & (1u << vslot)))
        return;
    dm->pending_rem &= ~(1u << vslot);
    publish(dm, NULL, "pci-remove-failed", why);
}

static gboolean on_xs_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    XsDm *dm = opaque;

    (void)fd, (void)cond;
    for (;;) {
        char **ev = xs_check_watch(dm->h);
        if (!ev) {
            if (errno == EAGAIN)
                return G_SOURCE_CONTINUE;
            dm_log(WHO, "connection to xenstored lost (%s)", strerror(errno));
            dm->source = 0;
            if (dm->hooks.lost)
                dm->hooks.lost(dm->hooks.opaque);
            return G_SOURCE_REMOVE;
        }
        if (!strcmp(ev[XS_WATCH_TOKEN], CMD_TOKEN))
            handle_command(dm);
        free(ev);
    }
}

int xs_dm_start(XsDm *dm, PtError *err)
{
    if (!xs_watch(dm->h, dm->cmd_path, CMD_TOKEN)) {
        pt_error_set(err, "cannot watch %s (%s)", dm->cmd_path, strerror(errno));
        return -errno;
    }
    dm->source = g_unix_fd_add(xs_fileno(dm->h), G_IO_IN | G_IO_HUP | G_IO_ERR, on_xs_readable,
                               dm);
    if (publish(dm, NULL, "running", "") < 0) {
        pt_error_set(err, "cannot write %s", dm->state_path);
        return -EIO;
    }
    return 0;
}

/* ================================================================ toolstack side */

const char *const xs_replies_pci_ins[] = { "pci-inserted", "pci-insert-failed", NULL };
const char *const xs_replies_pci_rem[] = { "pci-removed", "pci-remove-failed", NULL };
const char *const xs_replies_save[] = { "paused", "save-failed", NULL };

static bool one_of(const char *v, const char *const *values)
{
    for (int i = 0; v && values[i]; i++)
        if (!strcmp(v, values[i]))
            return true;
    return false;
}

char *xs_read_string(struct xs_handle *h, const char *path)
{
    unsigned len;
    char *v = xs_read(h, XBT_NULL, path, &len);
    char *copy = v ? g_strndup(v, len) : NULL;

    free(v);
    return copy;
}

static void drain_watches(struct xs_handle *h)
{
    char **ev;

    while ((ev = xs_check_watch(h)))
        free(ev);
}

int xs_tool_wait(struct xs_handle *h, const char *path, const char *const *values,
                 int timeout_ms, char **got)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    int rc = -ETIMEDOUT;

    *got = NULL;
    if (!xs_watch(h, path, WAIT_TOKEN))
        return -errno;
    for (;;) {
        g_free(*got);
        *got = xs_read_string(h, path);
        if (one_of(*got, values)) {
            rc = 0;
            break;
        }
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0)
            break;
        struct pollfd p = { .fd = xs_fileno(h), .events = POLLIN };
        if (poll(&p, 1, (int)MIN(left, INT_MAX)) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        drain_watches(h);
    }
    xs_unwatch(h, path, WAIT_TOKEN);
    return rc;
}

typedef struct Request {
    unsigned domid;
    const char *cmd, *param;
    const char *const *replies;
    char *old_state;
    bool busy;
} Request;

/* Take the channel: fail if a command is pending; a stale reply in state
 * would look like ours, so it goes back to "running" first. */
static int request_txn(struct xs_handle *h, xs_transaction_t t, void *ctx)
{
    Request *r = ctx;
    char path[NODE_MAX];
    unsigned len;

    xs_path_dm(r->domid, "command", path, sizeof(path));
    char *pending = xs_read(h, t, path, &len);
    if (pending) {
        free(pending);
        r->busy = true;
        return -EBUSY;
    }
    xs_path_dm(r->domid, "state", path, sizeof(path));
    g_free(r->old_state);
    char *st = xs_read(h, t, path, &len);
    r->old_state = st ? g_strndup(st, len) : NULL;
    free(st);
    if (one_of(r->old_state, r->replies) && !write_str(h, t, path, "running"))
        return -errno;
    xs_path_dm(r->domid, "parameter", path, sizeof(path));
    if (!write_str(h, t, path, r->param ? r->param : ""))
        return -errno;
    xs_path_dm(r->domid, "command", path, sizeof(path));
    return write_str(h, t, path, r->cmd) ? 0 : -errno;
}

static void explain_timeout(struct xs_handle *h, const Request *r, int timeout_ms, PtError *err)
{
    char path[NODE_MAX];

    xs_path_dm(r->domid, "command", path, sizeof(path));
    g_autofree char *pending = xs_read_string(h, path);
    if (pending) {
        xs_rm(h, XBT_NULL, path);       /* nobody took it: do not leave it armed */
        pt_error_set(err, "timed out after %d.%03d s: qemu-dm of domain %u did not take the %s command "
                  "(is it running?)", timeout_ms / 1000, timeout_ms % 1000, r->domid, r->cmd);
        return;
    }
    pt_error_set(err, "timed out after %d.%03d s: qemu-dm of domain %u took the %s command but did not "
              "answer%s", timeout_ms / 1000, timeout_ms % 1000, r->domid, r->cmd,
         !strcmp(r->cmd, "pci-rem") ? " (the guest did not eject the slot)" : "");
}

int xs_tool_request(struct xs_handle *h, unsigned domid, const char *cmd, const char *param,
                    const char *const *replies, int timeout_ms, char **state, char **reply,
                    PtError *err)
{
    Request r = { .domid = domid, .cmd = cmd, .param = param, .replies = replies };
    char path[NODE_MAX];
    int rc = xs_in_transaction(h, request_txn, &r);

    *state = *reply = NULL;
    if (rc < 0) {
        if (r.busy)
            pt_error_set(err, "qemu-dm of domain %u is busy: a command is already pending", domid);
        else
            pt_error_set(err, "cannot write the %s command (%s)", cmd, strerror(-rc));
        g_free(r.old_state);
        return rc;
    }
    xs_path_dm(domid, "state", path, sizeof(path));
    rc = xs_tool_wait(h, path, replies, timeout_ms, state);
    if (rc == 0) {
        xs_path_dm(domid, "parameter", path, sizeof(path));
        *reply = xs_read_string(h, path);
        if (!*reply)
            *reply = g_strdup("");
        /* As xend did: the state goes back to what it was. */
        xs_path_dm(domid, "state", path, sizeof(path));
        const char *back = r.old_state && !one_of(r.old_state, replies) ? r.old_state : "running";
        write_str(h, XBT_NULL, path, back);
    } else if (rc == -ETIMEDOUT) {
        explain_timeout(h, &r, timeout_ms, err);
    } else {
        pt_error_set(err, "waiting for qemu-dm of domain %u: %s", domid, strerror(-rc));
    }
    g_free(r.old_state);
    return rc;
}
