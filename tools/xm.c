/*
 * xm: the toolstack side, in the manner of xend's xm, over xenstore.
 *
 *   xm [-t SECONDS] COMMAND ...
 *     create CFG                    write the domain and its pci backend list, start qemu-dm
 *     pci-attach DOM SPEC [VSLOT]   hot-plug a device (extended notation) through qemu-dm
 *     pci-detach DOM SPEC|VSLOT     hot-unplug the guest slot holding SPEC, or slot VSLOT
 *     pci-list DOM                  host BDF -> guest slot.function, options
 *     list                          every domain, its id and its functions
 *     pci-list-assignable-devices   host functions bound to pciback/pci-stub, not in use
 *     destroy DOM                   stop qemu-dm, remove the domain's entries
 *     save DOM FILE                 qemu-dm's state and the layout into FILE, then destroy
 *     restore FILE                  a new domain with every function at its saved vdevfn
 *
 * Exit status: 0 done, 1 refused or failed (one line says why), 2 bad
 * usage or input, 3 timed out.  Environment: XM_TIMEOUT (seconds, default
 * 10), XM_RUNDIR (qemu-dm logs and state files, default /var/run/xen/xm),
 * XM_HOST_SYSFS (host tree for pci-list-assignable-devices).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host-assign.h"
#include "host-pci.h"
#include "pt-plan.h"
#include "xs-channel.h"
#include "xl-domain.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE   2
#define EXIT_TIMEOUT 3
#define PATH_LEN     160

extern char **environ;

static int timeout_ms = 10000;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("xm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static struct xs_handle *connect_store(void)
{
    struct xs_handle *h = xs_open(0);

    if (!h)
        say("cannot connect to xenstored (%s)", strerror(errno));
    return h;
}

static const char *rundir(void)
{
    const char *d = getenv("XM_RUNDIR");

    return d && *d ? d : "/var/run/xen/xm";
}

/* ================================================================ the guest config */

/* name = "x"; pci = [ '...', ... ]; n = 1; '#' comments.  Python-like. */
typedef struct XmConfig {
    char *file;
    char *text;
    char *name;
    GPtrArray *pci;
    char *pci_map;
    char *pci_strict;       /* group rules relaxed for every spec: 'strict_reset=0' */
    char *host_sysfs;
    char *hypervisor;
    char *device_model;
    char *guest;            /* 'qemu': a real guest under QEMU */
    char *guest_image;
    char *guest_console;
    bool test_guest;
    GArray *own_spans;      /* size_t pairs: xm's own statements, kept from xl */
    bool sets_dm_args_hvm;  /* device_model_args_hvm: xm's on a real Xen */
} XmConfig;

typedef struct Lexer {
    const char *file, *p;
    int line;
    char why[256];
} Lexer;

static void skip_space(Lexer *lx, bool newlines)
{
    for (;;) {
        if (*lx->p == '#')
            while (*lx->p && *lx->p != '\n')
                lx->p++;
        if (*lx->p == '\n' && newlines) {
            lx->line++;
            lx->p++;
        } else if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') {
            lx->p++;
        } else {
            return;
        }
    }
}

static int lex_fail(Lexer *lx, const char *what)
{
    snprintf(lx->why, sizeof(lx->why), "%s:%d: %s", lx->file, lx->line, what);
    return -1;
}

/* A quoted string or a decimal number, as text. */
static int lex_scalar(Lexer *lx, char **out)
{
    char q = *lx->p;

    if (q == '\'' || q == '"') {
        const char *start = ++lx->p;
        while (*lx->p && *lx->p != q && *lx->p != '\n')
            lx->p++;
        if (*lx->p != q)
            return lex_fail(lx, "unterminated string");
        *out = g_strndup(start, (gsize)(lx->p++ - start));
        return 0;
    }
    if (isdigit((unsigned char)q)) {
        const char *start = lx->p;
        while (isdigit((unsigned char)*lx->p))
            lx->p++;
        *out = g_strndup(start, (gsize)(lx->p - start));
        return 0;
    }
    return lex_fail(lx, "expected a quoted string, a number or a [list]");
}

/* [ 'a', "b", ] spanning lines. */
static int lex_list(Lexer *lx, GPtrArray *items)
{
    lx->p++;
    for (;;) {
        skip_space(lx, true);
        if (*lx->p == ']') {
            lx->p++;
            return 0;
        }
        char *item;
        if (lex_scalar(lx, &item) < 0)
            return -1;
        g_ptr_array_add(items, item);
        skip_space(lx, true);
        if (*lx->p == ',')
            lx->p++;
        else if (*lx->p != ']')
            return lex_fail(lx, "expected ',' or ']' in the list");
    }
}

typedef struct ConfigKey {
    const char *key;
    size_t field;           /* offsetof in XmConfig */
    bool list, flag;
} ConfigKey;

static const ConfigKey config_keys[] = {
    { "name", offsetof(XmConfig, name), false, false },
    { "pci", offsetof(XmConfig, pci), true, false },
    { "pci_map", offsetof(XmConfig, pci_map), false, false },
    { "pci_strict", offsetof(XmConfig, pci_strict), false, false },
    { "host_sysfs", offsetof(XmConfig, host_sysfs), false, false },
    { "hypervisor", offsetof(XmConfig, hypervisor), false, false },
    { "device_model", offsetof(XmConfig, device_model), false, false },
    { "test_guest", offsetof(XmConfig, test_guest), false, true },
    { "guest", offsetof(XmConfig, guest), false, false },
    { "guest_image", offsetof(XmConfig, guest_image), false, false },
    { "guest_console", offsetof(XmConfig, guest_console), false, false },
};

static const ConfigKey *config_key(const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(config_keys); i++)
        if (!strcmp(config_keys[i].key, key))
            return &config_keys[i];
    return NULL;
}

/* Keys this toolstack does not use (memory, vif, disk...) are skipped. */
static int store_value(Lexer *lx, XmConfig *cfg, const char *key, char *scalar, GPtrArray *list)
{
    const ConfigKey *k = config_key(key);
    char why[160];

    if (!k)
        return 0;
    if (k->list != (list != NULL)) {
        snprintf(why, sizeof(why), "%s must be %s", key, k->list ? "a [list] of strings" :
                                                                   "a single value");
        return lex_fail(lx, why);
    }
    if (k->list) {
        g_ptr_array_unref(cfg->pci);
        cfg->pci = g_ptr_array_ref(list);
    } else if (k->flag) {
        if (strcmp(scalar, "0") && strcmp(scalar, "1")) {
            snprintf(why, sizeof(why), "%s must be 0 or 1", key);
            return lex_fail(lx, why);
        }
        *(bool *)((char *)cfg + k->field) = scalar[0] == '1';
    } else {
        char **slot = (char **)((char *)cfg + k->field);
        g_free(*slot);
        *slot = g_strdup(scalar);
    }
    return 0;
}

/* On a real Xen, xl gets the config without the statements xm acts on. */
static void note_own_statement(Lexer *lx, XmConfig *cfg, const char *key, const char *start)
{
    size_t span[2] = { (size_t)(start - cfg->text), (size_t)(lx->p - cfg->text) };

    if (config_key(key) && strcmp(key, "name") != 0)
        g_array_append_vals(cfg->own_spans, span, 2);
    cfg->sets_dm_args_hvm |= !strcmp(key, "device_model_args_hvm");
}

static int parse_statement(Lexer *lx, XmConfig *cfg)
{
    const char *start = lx->p;

    while (isalnum((unsigned char)*lx->p) || *lx->p == '_')
        lx->p++;
    if (lx->p == start)
        return lex_fail(lx, "expected NAME = VALUE");
    g_autofree char *key = g_strndup(start, (gsize)(lx->p - start));
    skip_space(lx, false);
    if (*lx->p++ != '=')
        return lex_fail(lx, "expected '=' after the name");
    skip_space(lx, false);
    g_autofree char *scalar = NULL;
    g_autoptr(GPtrArray) list = NULL;
    if (*lx->p == '[') {
        list = g_ptr_array_new_with_free_func(g_free);
        if (lex_list(lx, list) < 0)
            return -1;
    } else if (lex_scalar(lx, &scalar) < 0) {
        return -1;
    }
    skip_space(lx, false);
    if (*lx->p && *lx->p != '\n' && *lx->p != ';')
        return lex_fail(lx, "unexpected text after the value");
    if (*lx->p == ';')
        lx->p++;
    note_own_statement(lx, cfg, key, start);
    return store_value(lx, cfg, key, scalar, list);
}

static void config_clear(XmConfig *cfg)
{
    g_free(cfg->file);
    g_free(cfg->text);
    g_free(cfg->name);
    if (cfg->pci)
        g_ptr_array_unref(cfg->pci);
    g_free(cfg->pci_map);
    g_free(cfg->pci_strict);
    g_free(cfg->host_sysfs);
    g_free(cfg->hypervisor);
    g_free(cfg->device_model);
    g_free(cfg->guest);
    g_free(cfg->guest_image);
    g_free(cfg->guest_console);
    if (cfg->own_spans)
        g_array_unref(cfg->own_spans);
}

static bool valid_name(const char *n)
{
    if (!n || !*n || strlen(n) > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
            return false;
    return true;
}

/* Keys whose value is one of a few words. */
static const struct {
    const char *key;
    size_t field;
    const char *words[3];
} config_choices[] = {
    { "pci_map", offsetof(XmConfig, pci_map), { "identity", "least" } },
    { "guest", offsetof(XmConfig, guest), { "qemu" } },
    { "hypervisor", offsetof(XmConfig, hypervisor), { "sim", "xen" } },
};

static int check_choices(const char *file, const XmConfig *cfg, char *why, size_t len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(config_choices); i++) {
        const char *v = *(char *const *)((const char *)cfg + config_choices[i].field);
        const char *const *w = config_choices[i].words;
        if (!v || g_strv_contains(w, v))
            continue;
        snprintf(why, len, "%s: %s = '%s': expected '%s'%s%s%s", file, config_choices[i].key, v,
                 w[0], w[1] ? " or '" : "", w[1] ? w[1] : "", w[1] ? "'" : "");
        return -1;
    }
    return 0;
}

/* Syntax and meaning; *why says what and where. */
static int config_parse(const char *file, const char *text, XmConfig *cfg, char *why, size_t len)
{
    PtSpec spec;
    PtError err;

    *cfg = (XmConfig){ .file = g_strdup(file), .text = g_strdup(text),
                       .pci = g_ptr_array_new_with_free_func(g_free),
                       .own_spans = g_array_new(FALSE, FALSE, sizeof(size_t)) };
    Lexer lx = { .file = file, .p = cfg->text, .line = 1 };
    for (;;) {
        skip_space(&lx, true);
        if (!*lx.p)
            break;
        if (parse_statement(&lx, cfg) < 0) {
            snprintf(why, len, "%s", lx.why);
            return -1;
        }
    }
    if (!valid_name(cfg->name)) {
        snprintf(why, len, "%s: name = '...' is required: 1-64 letters, digits, '_', '.', '-'",
                 file);
        return -1;
    }
    if (check_choices(file, cfg, why, len) < 0)
        return -1;
    PtPlanDefaults dflt = pt_plan_defaults();
    if (cfg->pci_strict && pt_plan_defaults_strict(&dflt, cfg->pci_strict, &err) < 0) {
        snprintf(why, len, "%s: pci_strict = '%s': %s", file, cfg->pci_strict, err.msg);
        return -1;
    }
    for (guint i = 0; i < cfg->pci->len; i++)
        if (pt_spec_parse(g_ptr_array_index(cfg->pci, i), &spec, &err) < 0) {
            snprintf(why, len, "%s: pci[%u]: %s", file, i, err.msg);
            return -1;
        }
    return 0;
}

static int config_load(const char *file, XmConfig *cfg)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    char why[400];

    if (!g_file_get_contents(file, &text, NULL, &gerr)) {
        say("%s", gerr->message);
        *cfg = (XmConfig){ 0 };
        return -1;
    }
    if (config_parse(file, text, cfg, why, sizeof(why)) < 0) {
        say("%s", why);
        return -1;
    }
    return 0;
}

/* ================================================================ domains */

static char *domain_path(unsigned domid, const char *node)
{
    return g_strdup_printf("/local/domain/%u%s%s", domid, node ? "/" : "", node ? node : "");
}

/* DOM: a domain id or a name; -ENOENT quietly. */
static int find_domain(struct xs_handle *h, const char *dom, unsigned *domid)
{
    unsigned n = 0;
    char **ids = xs_directory(h, XBT_NULL, "/local/domain", &n);
    int rc = -ENOENT;

    for (unsigned i = 0; ids && i < n && rc < 0; i++) {
        unsigned long id;
        if (pt_parse_uint(ids[i], 10, XS_DOMID_MAX, &id) < 0 || id == 0)
            continue;
        g_autofree char *p = domain_path((unsigned)id, "name");
        g_autofree char *name = xs_read_string(h, p);
        if (!strcmp(ids[i], dom) || (name && !strcmp(name, dom))) {
            *domid = (unsigned)id;
            rc = 0;
        }
    }
    free(ids);
    return rc;
}

static int resolve_domain(struct xs_handle *h, const char *dom, unsigned *domid)
{
    int rc = find_domain(h, dom, domid);

    if (rc < 0)
        say("no domain '%s'", dom);
    return rc;
}

static unsigned free_domid(struct xs_handle *h)
{
    for (unsigned id = 1;; id++) {
        g_autofree char *p = domain_path(id, NULL);
        g_autofree char *v = xs_read_string(h, p);
        if (!v)
            return id;
    }
}

static void remove_domain_entries(struct xs_handle *h, unsigned domid)
{
    char path[PATH_LEN];
    g_autofree char *dom = domain_path(domid, NULL);

    xs_rm(h, XBT_NULL, dom);
    snprintf(path, sizeof(path), "/local/domain/0/backend/pci/%u", domid);
    xs_rm(h, XBT_NULL, path);
    xs_path_dm(domid, NULL, path, sizeof(path));
    xs_rm(h, XBT_NULL, path);
}

/* ================================================================ the backend list */

/* The config's host tree; a bad host_sysfs is bad input, named. */
static HostPci *open_host(const XmConfig *cfg, const char *where)
{
    PtError err;
    HostPci *host = host_pci_open(cfg->host_sysfs, &err);

    if (!host && cfg->host_sysfs)
        say("%s: host_sysfs = '%s': %s", where, cfg->host_sysfs, err.msg);
    else if (!host)
        say("%s: %s", where, err.msg);
    return host;
}

/* The guest's defaults for its specs: pci_map, pci_strict (checked by config_parse). */
static PtPlanDefaults guest_defaults(const XmConfig *cfg)
{
    PtPlanDefaults dflt = pt_plan_defaults();
    PtError err;

    if (cfg->pci_map && !strcmp(cfg->pci_map, "least"))
        dflt.opts.map = PT_MAP_LEAST;
    if (cfg->pci_strict)
        pt_plan_defaults_strict(&dflt, cfg->pci_strict, &err);
    return dflt;
}

static void say_warnings(const char *where, const PtWarnings *w)
{
    for (int i = 0; i < w->n; i++)
        say("%s: warning: %s", where, w->line[i]);
}

/* One entry per function of every spec: the devices qemu-dm places.  The
 * policy sees the config's earlier specs and every other domain's list.
 * Returns an exit status. */
static int plan_backend(struct xs_handle *h, const XmConfig *cfg, XsBackendList *list)
{
    PtPlanDefaults dflt = guest_defaults(cfg);
    PtPlan *plans = g_new0(PtPlan, cfg->pci->len + 1);
    PtPlanList earlier = { plans, 0 };
    XsHolders others = { h, 0 };
    PtHolders elsewhere = { .held = xs_backend_holds, .opaque = &others };
    PtHolders holders = { .held = pt_plan_list_holds, .opaque = &earlier, .next = &elsewhere };
    PtError err;
    PtBusMap map;
    HostPci *host = open_host(cfg, cfg->file);
    int rc = EXIT_USAGE;

    if (!host)
        goto out;
    rc = EXIT_REFUSED;
    pt_busmap_init(&map, PT_RESERVED_DEFAULT);
    map.pinned = pt_plan_pinned_slots((const char *const *)cfg->pci->pdata, (int)cfg->pci->len);
    list->n = 0;
    for (guint i = 0; i < cfg->pci->len; i++, earlier.n++) {
        const char *text = g_ptr_array_index(cfg->pci, i);
        PtPlan *plan = &plans[i];
        PtSpec spec;
        if (pt_plan_spec(host, &map, text, &dflt, &holders, plan, &err) < 0) {
            say("%s: pci[%u]: %s", cfg->file, i, err.msg);
            goto out;
        }
        if (plan->placement.note[0])
            say("%s: pci[%u]: note: %s", cfg->file, i, plan->placement.note);
        g_autofree char *where = g_strdup_printf("%s: pci[%u]", cfg->file, i);
        say_warnings(where, &plan->warnings);
        pt_spec_parse(text, &spec, &err);
        for (int f = 0; f < plan->placement.nfuncs && list->n < XS_BACKEND_MAX; f++) {
            XsBackendDev *d = &list->dev[list->n++];
            bool pinned = !spec.multi_form && spec.vslot != PT_UNSET;
            *d = (XsBackendDev){ .bdf = plan->placement.host[f], .has_vdevfn = true,
                                 .auto_slot = !pinned,
                                 .vdevfn = pinned ? plan->placement.vdevfn[f] : 0,
                                 .opts = spec.opts, .state = XS_STATE_INITIALISING };
            snprintf(d->key, sizeof(d->key), "%s", text);
        }
    }
    rc = 0;
out:
    if (host)
        host_pci_close(host);
    g_free(plans);
    return rc;
}

typedef struct NewDomain {
    unsigned domid;
    const XmConfig *cfg;
    const XsBackendList *list;
} NewDomain;

static bool put(struct xs_handle *h, xs_transaction_t t, const char *path, const char *v)
{
    return xs_write(h, t, path, v, (unsigned)strlen(v));
}

/* The pci backend list and its nodes. */
static int write_backend(struct xs_handle *h, xs_transaction_t t, void *ctx)
{
    NewDomain *nd = ctx;
    char path[PATH_LEN], v[32];
    static const char *const be_nodes[][2] = { { "online", "1" }, { "state", "1" } };

    snprintf(v, sizeof(v), "%u", nd->domid);
    for (size_t i = 0; i < G_N_ELEMENTS(be_nodes); i++) {
        xs_path_backend(nd->domid, be_nodes[i][0], path, sizeof(path));
        if (!put(h, t, path, be_nodes[i][1]))
            return -errno;
    }
    xs_path_backend(nd->domid, "frontend-id", path, sizeof(path));
    if (!put(h, t, path, v))
        return -errno;
    xs_path_backend(nd->domid, "domain", path, sizeof(path));
    if (!put(h, t, path, nd->cfg->name))
        return -errno;
    return xs_backend_write(h, t, nd->domid, nd->list, 0);
}

/* The domain as xm simulates it without Xen, and its backend list. */
static int write_domain(struct xs_handle *h, xs_transaction_t t, void *ctx)
{
    NewDomain *nd = ctx;
    char v[32];

    snprintf(v, sizeof(v), "%u", nd->domid);
    g_autofree char *name = domain_path(nd->domid, "name");
    g_autofree char *id = domain_path(nd->domid, "domid");
    g_autofree char *config = domain_path(nd->domid, "xm/config");
    if (!put(h, t, name, nd->cfg->name) || !put(h, t, id, v) ||
        !put(h, t, config, nd->cfg->text))
        return -errno;
    return write_backend(h, t, ctx);
}



/* ================================================================ qemu-dm */

static char *default_device_model(void)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = self ? g_path_get_dirname(self) : g_strdup(".");

    return g_build_filename(dir, "qemu-dm", NULL);
}

static char *dm_log_path(unsigned domid)
{
    return g_strdup_printf("%s/qemu-dm-%u.log", rundir(), domid);
}

static char *dm_state_path(unsigned domid, const char *what)
{
    return g_strdup_printf("%s/qemu-%s.%u", rundir(), what, domid);
}

/* qemu-dm's command line for the domain (strings owned by cfg and the caller). */
static GPtrArray *dm_argv(const XmConfig *cfg, char *dm, char *id, char *save,
                          const char *restore, const char *guest_qmp)
{
    GPtrArray *argv = g_ptr_array_new();
    const char *pairs[][2] = {
        { "-hypervisor", cfg->hypervisor }, { "-host-sysfs", cfg->host_sysfs },
        { "-pci-map", cfg->pci_map }, { "-pci-strict", cfg->pci_strict },
        { "-test-guest", cfg->test_guest ? "" : NULL }, { "-guest", cfg->guest },
        { "-guest-image", cfg->guest_image }, { "-guest-console", cfg->guest_console },
        { "-restore-state", restore }, { "-guest-qmp", guest_qmp },
    };

    g_ptr_array_add(argv, dm);
    const char *fixed[] = { "-domid", id, "-xenstore", "-save-state", save };
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(argv, (char *)fixed[i]);
    for (size_t i = 0; i < G_N_ELEMENTS(pairs); i++) {
        if (!pairs[i][1])
            continue;
        g_ptr_array_add(argv, (char *)pairs[i][0]);
        if (*pairs[i][1])               /* "": a flag */
            g_ptr_array_add(argv, (char *)pairs[i][1]);
    }
    g_ptr_array_add(argv, NULL);
    return argv;
}

/* Detached from xm (own session), output to the domain's log. */
static pid_t spawn_dm(const XmConfig *cfg, unsigned domid, const char *restore,
                      const char *guest_qmp)
{
    g_autofree char *dm = cfg->device_model ? g_strdup(cfg->device_model)
                                            : default_device_model();
    g_autofree char *id = g_strdup_printf("%u", domid);
    g_autofree char *save = dm_state_path(domid, "save");
    g_autofree char *log = dm_log_path(domid);
    GPtrArray *argv = dm_argv(cfg, dm, id, save, restore, guest_qmp);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    /* Appended: a reused domid keeps the earlier runs' lines. */
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    int rc = posix_spawn(&pid, dm, &fa, &attr, (char **)argv->pdata, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    g_ptr_array_free(argv, TRUE);
    if (rc != 0) {
        say("cannot run %s (%s)", dm, strerror(rc));
        return -1;
    }
    return pid;
}

/*
 * On a real Xen the guest's QEMU (libxl's) owns image/device-model-pid,
 * and a guest may write its own /local/domain/N: qemu-dm's pid is kept in
 * dom0's device-model/N/xm-pid, which also marks a domain xl created.
 */
static char *xl_pid_path(unsigned domid)
{
    char path[PATH_LEN];

    xs_path_dm(domid, "xm-pid", path, sizeof(path));
    return g_strdup(path);
}

static bool is_xl_domain(struct xs_handle *h, unsigned domid)
{
    g_autofree char *p = xl_pid_path(domid);
    g_autofree char *v = xs_read_string(h, p);

    return v != NULL;
}

static char *dm_pid_path(struct xs_handle *h, unsigned domid)
{
    return is_xl_domain(h, domid) ? xl_pid_path(domid)
                                  : domain_path(domid, "image/device-model-pid");
}

/* How much of the domain's log earlier runs wrote. */
static gsize dm_log_size(unsigned domid)
{
    g_autofree char *log = dm_log_path(domid);
    GStatBuf st;

    return g_stat(log, &st) == 0 ? (gsize)st.st_size : 0;
}

/* The lines of this run of qemu-dm's log (from byte `from`) that holds. */
static void report_dm_lines(unsigned domid, gsize from, bool (*wanted)(const char *line))
{
    g_autofree char *log = dm_log_path(domid);
    g_autofree char *text = NULL;
    gsize len;

    if (!g_file_get_contents(log, &text, &len, NULL) || from > len)
        return;
    g_auto(GStrv) lines = g_strsplit(text + from, "\n", -1);
    for (char **l = lines; *l; l++)
        if (wanted(*l))
            say("%s", *l);
}

/* Why qemu-dm stopped. */
static bool is_dm_error(const char *line)
{
    return g_str_has_prefix(line, "qemu-dm:");
}

/* What qemu-dm warned about (a relaxed group rule). */
static bool is_dm_warning(const char *line)
{
    return strstr(line, ": warning: ") != NULL;
}

static int pidfd_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* qemu-dm says running, or exits first, or time runs out. */
static int await_running(struct xs_handle *h, unsigned domid, pid_t pid)
{
    char path[PATH_LEN];
    int pfd = pidfd_of(pid), rc = -ETIMEDOUT;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    xs_path_dm(domid, "state", path, sizeof(path));
    if (pfd < 0 || !xs_watch(h, path, "xm-create")) {
        say("cannot wait for qemu-dm (%s)", strerror(errno));
        return -errno;
    }
    for (;;) {
        g_autofree char *st = xs_read_string(h, path);
        if (st && !strcmp(st, "running")) {
            rc = 0;
            break;
        }
        struct pollfd p[2] = { { .fd = xs_fileno(h), .events = POLLIN },
                               { .fd = pfd, .events = POLLIN } };
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0 || poll(p, 2, (int)left) == 0)
            break;
        if (p[1].revents) {
            rc = -ECHILD;
            break;
        }
        char **ev;
        while ((ev = xs_check_watch(h)))
            free(ev);
    }
    xs_unwatch(h, path, "xm-create");
    close(pfd);
    return rc;
}

static int by_vdevfn(const void *a, const void *b)
{
    const XsBackendDev *x = a, *y = b;

    return (int)(x->auto_slot ? 0x100 : x->vdevfn) - (int)(y->auto_slot ? 0x100 : y->vdevfn);
}

/* Sorted by guest slot.function. */
static void print_layout(XsBackendList *l)
{
    qsort(l->dev, (size_t)l->n, sizeof(l->dev[0]), by_vdevfn);
    for (int i = 0; i < l->n; i++) {
        char bdf[16];
        const XsBackendDev *d = &l->dev[i];
        if (d->has_vdevfn && !d->auto_slot)
            printf("%s -> 00:%02x.%x\n", pt_bdf_format(d->bdf, bdf, sizeof(bdf)),
                   PT_SLOT(d->vdevfn), PT_FUNC(d->vdevfn));
    }
}

/* qemu-dm says running; else why not is said and it is stopped.  0 or an
 * exit status. */
static int dm_started(struct xs_handle *h, const XmConfig *cfg, unsigned domid, pid_t pid,
                      gsize log_from)
{
    int rc = await_running(h, domid, pid);

    if (rc == 0)
        return 0;
    if (rc == -ECHILD) {
        say("qemu-dm of %s stopped before it ran:", cfg->name);
        report_dm_lines(domid, log_from, is_dm_error);
    } else {
        say("timed out after %d.%03d s waiting for qemu-dm of %s", timeout_ms / 1000,
            timeout_ms % 1000, cfg->name);
        kill(pid, SIGKILL);
    }
    waitpid(pid, NULL, 0);
    return rc == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_REFUSED;
}

static void print_started(struct xs_handle *h, const XmConfig *cfg, unsigned domid,
                          const char *verb)
{
    XsBackendList *now = g_new0(XsBackendList, 1);
    PtError err;

    printf("%s domain %s (id=%u)\n", verb, cfg->name, domid);
    if (xs_backend_read(h, XBT_NULL, domid, now, &err) == 0)
        print_layout(now);
    g_free(now);
}

static int prepare_start(struct xs_handle *h, const XmConfig *cfg)
{
    unsigned other;

    if (find_domain(h, cfg->name, &other) == 0) {
        say("%s: a domain named '%s' exists already", cfg->file, cfg->name);
        return EXIT_REFUSED;
    }
    if (g_mkdir_with_parents(rundir(), 0755) < 0) {
        say("cannot create %s (%s): set XM_RUNDIR", rundir(), strerror(errno));
        return EXIT_REFUSED;
    }
    return 0;
}

/* Write the entries, start qemu-dm, wait until it runs; undone on failure. */
static int start_domain(struct xs_handle *h, const XmConfig *cfg, const XsBackendList *list,
                        const char *restore, const char *verb)
{
    NewDomain nd = { .cfg = cfg, .list = list };
    int rc;

    if ((rc = prepare_start(h, cfg)) != 0)
        return rc;
    nd.domid = free_domid(h);
    if ((rc = xs_in_transaction(h, write_domain, &nd)) < 0) {
        say("cannot write the domain's entries (%s)", strerror(-rc));
        return EXIT_REFUSED;
    }
    gsize log_from = dm_log_size(nd.domid);
    pid_t pid = spawn_dm(cfg, nd.domid, restore, NULL);
    g_autofree char *pidpath = domain_path(nd.domid, "image/device-model-pid");
    g_autofree char *pidtext = g_strdup_printf("%d", (int)pid);
    rc = EXIT_REFUSED;
    if (pid >= 0 && put(h, XBT_NULL, pidpath, pidtext) &&
        (rc = dm_started(h, cfg, nd.domid, pid, log_from)) == 0) {
        print_started(h, cfg, nd.domid, verb);
        return 0;
    }
    remove_domain_entries(h, nd.domid);
    return rc;
}

/* ---- on a real Xen: the domain through xl ---- */

static int stop_dm(struct xs_handle *h, unsigned domid);

static char *xl_log_path(const char *name)
{
    return g_strdup_printf("%s/xl-%s.log", rundir(), name);
}

/* The config xl gets and the guest QEMU's QMP socket qemu-dm announces
 * slots through. */
static int write_xl_config(const XmConfig *cfg, char **file, char **qmp)
{
    g_autoptr(GError) gerr = NULL;

    if (cfg->sets_dm_args_hvm) {
        say("%s: device_model_args_hvm is xm's on a real Xen (the QMP socket qemu-dm "
            "announces slots through): put other arguments in device_model_args", cfg->file);
        return EXIT_USAGE;
    }
    *file = g_strdup_printf("%s/%s.xl.cfg", rundir(), cfg->name);
    *qmp = g_strdup_printf("%s/%s.qmp", rundir(), cfg->name);
    g_autofree char *text = xl_config_text(cfg->text, (const size_t *)cfg->own_spans->data,
                                           cfg->own_spans->len / 2, *qmp);
    if (!g_file_set_contents(*file, text, -1, &gerr)) {
        say("%s", gerr->message);
        return EXIT_REFUSED;
    }
    return 0;
}

/* qemu-dm first (it lets go of the functions), the backend list (so
 * libxl's destroy finds no devices of its own to remove), then xl. */
static int xl_teardown(struct xs_handle *h, unsigned domid, const char *name)
{
    char path[PATH_LEN], why[300];
    g_autofree char *log = xl_log_path(name);

    stop_dm(h, domid);
    snprintf(path, sizeof(path), "/local/domain/0/backend/pci/%u", domid);
    xs_rm(h, XBT_NULL, path);
    if (xl_destroy(domid, log, why, sizeof(why)) < 0) {
        say("domain %u: %s (see %s)", domid, why, log);
        return EXIT_REFUSED;
    }
    xs_path_dm(domid, NULL, path, sizeof(path));
    xs_rm(h, XBT_NULL, path);
    return 0;
}

/* xl create -p; the backend list; qemu-dm with the guest QEMU's QMP; unpause. */
static int start_xl_domain(struct xs_handle *h, const XmConfig *cfg, const XsBackendList *list)
{
    g_autofree char *xlcfg = NULL, *qmp = NULL, *log = xl_log_path(cfg->name);
    NewDomain nd = { .cfg = cfg, .list = list };
    char path[PATH_LEN], why[300];
    int rc;

    if ((rc = prepare_start(h, cfg)) != 0 || (rc = write_xl_config(cfg, &xlcfg, &qmp)) != 0)
        return rc;
    printf("xl create -p %s\n", xlcfg);
    if (xl_create_paused(xlcfg, cfg->name, log, &nd.domid, why, sizeof(why)) < 0) {
        say("%s: %s (see %s)", cfg->file, why, log);
        return EXIT_REFUSED;
    }
    printf("domain %s is d%u, paused; starting qemu-dm\n", cfg->name, nd.domid);
    /* The guest's QEMU said running here too: wait for qemu-dm's word. */
    xs_path_dm(nd.domid, "state", path, sizeof(path));
    xs_rm(h, XBT_NULL, path);
    gsize log_from = dm_log_size(nd.domid);
    pid_t pid = -1;
    rc = EXIT_REFUSED;
    if (xs_in_transaction(h, write_backend, &nd) == 0 &&
        (pid = spawn_dm(cfg, nd.domid, NULL, qmp)) >= 0) {
        g_autofree char *pidpath = xl_pid_path(nd.domid);
        g_autofree char *pidtext = g_strdup_printf("%d", (int)pid);
        if (put(h, XBT_NULL, pidpath, pidtext) &&
            (rc = dm_started(h, cfg, nd.domid, pid, log_from)) == 0 &&
            xl_unpause(nd.domid, log, why, sizeof(why)) < 0) {
            say("%s (see %s)", why, log);
            rc = EXIT_REFUSED;
        }
    }
    if (rc == 0) {
        print_started(h, cfg, nd.domid, "Started");
        return 0;
    }
    xl_teardown(h, nd.domid, cfg->name);
    return rc;
}

/* xm's own hypervisor: none named, or xen, where Xen runs. */
static bool on_real_xen(const XmConfig *cfg)
{
    return (!cfg->hypervisor || !strcmp(cfg->hypervisor, "xen")) && xl_xen_present();
}

/* ================================================================ commands */

typedef struct XmCommand {
    const char *name;
    int min, max;               /* arguments */
    const char *args;
    int (*run)(struct xs_handle *h, char **argv);
    bool needs_store;
} XmCommand;

static int cmd_create(struct xs_handle *h, char **argv)
{
    XmConfig cfg;
    XsBackendList *list = g_new0(XsBackendList, 1);
    int rc = EXIT_USAGE;

    if (config_load(argv[0], &cfg) == 0) {
        rc = plan_backend(h, &cfg, list);
        if (rc == 0 && on_real_xen(&cfg))
            rc = start_xl_domain(h, &cfg, list);
        else if (rc == 0)
            rc = start_domain(h, &cfg, list, NULL, "Started");
    }
    config_clear(&cfg);
    g_free(list);
    return rc;
}

static int domain_arg(struct xs_handle *h, const char *dom, unsigned *domid)
{
    return resolve_domain(h, dom, domid) < 0 ? EXIT_REFUSED : 0;
}

/* The request's outcome as an exit status, with one line on failure. */
static int request(struct xs_handle *h, unsigned domid, const char *what, const char *cmd,
                   const char *param, const char *const *replies, const char *ok_state,
                   char **reply)
{
    char *state;
    PtError err;
    int rc = xs_tool_request(h, domid, cmd, param, replies, timeout_ms, &state, reply, &err);

    if (rc < 0) {
        say("%s: %s", what, err.msg);
        return rc == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_REFUSED;
    }
    rc = strcmp(state, ok_state) ? EXIT_REFUSED : 0;
    if (rc)
        say("%s: %s", what, *reply);
    g_free(state);
    return rc;
}

/* A single function goes in libxl's per-function form (@VDEVFN); anything
 * else in the extended notation, the whole device in one command. */
static int attach_param(const char *text, char **param, char *why, size_t len)
{
    PtSpec spec;
    PtError err;

    if (pt_spec_parse(text, &spec, &err) < 0) {
        snprintf(why, len, "%s", err.msg);
        return -1;
    }
    if (spec.multi_form || spec.nfuncs != 1 || spec.opts.map != PT_MAP_DEFAULT) {
        *param = g_strdup(text);
        return 0;
    }
    PtWire w = { .bdf = { spec.domain, spec.bus, spec.dev, spec.funcs[0] },
                 .has_vdevfn = spec.vslot != PT_UNSET, .opts = spec.opts };
    if (w.has_vdevfn)
        w.vdevfn = PT_DEVFN(spec.vslot, spec.vfunc == PT_UNSET ? 0 : spec.vfunc);
    char buf[128];
    pt_wire_format(&w, buf, sizeof(buf));
    *param = g_strdup(buf);
    return 0;
}

static int with_vslot(const char *spec, const char *vslot, char **out)
{
    unsigned long s;

    if (pt_parse_uint(vslot, 16, 0x1f, &s) < 0) {
        say("pci-attach: VSLOT '%s': expected a hex guest slot 00-1f", vslot);
        return -1;
    }
    if (strchr(spec, '@')) {
        say("pci-attach: give the guest slot either in SPEC (@VSLOT) or as VSLOT, not both");
        return -1;
    }
    /* Before the options, which start at the first ",letter" (functions
     * are digits): "00:1d.0-2,map=least" + 7 -> "00:1d.0-2@7,map=least". */
    size_t head = strlen(spec);
    for (const char *c = strchr(spec, ','); c; c = strchr(c + 1, ','))
        if (isalpha((unsigned char)c[1])) {
            head = (size_t)(c - spec);
            break;
        }
    *out = g_strdup_printf("%.*s@%02lx%s", (int)head, spec, s, spec + head);
    return 0;
}

static void print_vdevfns(struct xs_handle *h, unsigned domid, const char *reply)
{
    XsBackendList *l = g_new0(XsBackendList, 1);
    PtError err;
    uint8_t v[PT_FUNCS_PER_SLOT];
    int n = xs_parse_vdevfns(reply, v, PT_FUNCS_PER_SLOT);

    if (xs_backend_read(h, XBT_NULL, domid, l, &err) == 0)
        for (int k = 0; k < n; k++) {
            for (int i = 0; i < l->n; i++)
                if (l->dev[i].has_vdevfn && !l->dev[i].auto_slot && l->dev[i].vdevfn == v[k]) {
                    char bdf[16];
                    printf("%s -> 00:%02x.%x\n", pt_bdf_format(l->dev[i].bdf, bdf, sizeof(bdf)),
                           PT_SLOT(v[k]), PT_FUNC(v[k]));
                }
        }
    g_free(l);
}

static int cmd_pci_attach(struct xs_handle *h, char **argv)
{
    unsigned domid;
    g_autofree char *spec = NULL, *param = NULL, *reply = NULL;
    char why[320];

    if (argv[2] ? with_vslot(argv[1], argv[2], &spec) < 0 : !(spec = g_strdup(argv[1])))
        return EXIT_USAGE;
    if (attach_param(spec, &param, why, sizeof(why)) < 0) {
        say("pci-attach: %s", why);
        return EXIT_USAGE;
    }
    if (domain_arg(h, argv[0], &domid))
        return EXIT_REFUSED;
    g_autofree char *what = g_strdup_printf("pci-attach %s", spec);
    gsize log_from = dm_log_size(domid);
    int rc = request(h, domid, what, "pci-ins", param, xs_replies_pci_ins, "pci-inserted", &reply);
    if (rc == 0) {
        report_dm_lines(domid, log_from, is_dm_warning);
        print_vdevfns(h, domid, reply);
    }
    return rc;
}

/* A function the backend list has in guest slot vslot, as the unplug spec. */
static char *function_in_slot(struct xs_handle *h, unsigned domid, unsigned vslot)
{
    g_autofree XsBackendList *l = g_new0(XsBackendList, 1);
    PtError err;

    if (xs_backend_read(h, XBT_NULL, domid, l, &err) == 0)
        for (int i = 0; i < l->n; i++)
            if (l->dev[i].has_vdevfn && !l->dev[i].auto_slot &&
                PT_SLOT(l->dev[i].vdevfn) == vslot) {
                char bdf[16];
                return g_strdup(pt_bdf_format(l->dev[i].bdf, bdf, sizeof(bdf)));
            }
    return NULL;
}

static int cmd_pci_detach(struct xs_handle *h, char **argv)
{
    unsigned domid, vslot = 0;
    PtSpec spec;
    PtError err;
    g_autofree char *reply = NULL, *param = NULL;
    bool by_slot = pt_vslot_parse(argv[1], &vslot);

    if (!by_slot && pt_spec_parse_unplug(argv[1], &spec, &err) < 0) {
        say("pci-detach: %s", err.msg);
        return EXIT_USAGE;
    }
    if (domain_arg(h, argv[0], &domid))
        return EXIT_REFUSED;
    g_autofree char *what = g_strdup_printf("pci-detach %s", argv[1]);
    param = by_slot ? function_in_slot(h, domid, vslot) : g_strdup(argv[1]);
    if (!param) {
        say("%s: guest slot %02x has no pass-through device", what, vslot);
        return EXIT_REFUSED;
    }
    int rc = request(h, domid, what, "pci-rem", param, xs_replies_pci_rem, "pci-removed",
                     &reply);
    uint8_t v[PT_FUNCS_PER_SLOT];
    if (rc == 0)
        printf("removed guest slot %02x (%s)\n",
               xs_parse_vdevfns(reply, v, PT_FUNCS_PER_SLOT) > 0 ? PT_SLOT(v[0]) : 0, reply);
    return rc;
}

/* An entry's options (opts-N), with the mapping scheme its key names. */
static void entry_options(const XsBackendDev *d, char *buf, size_t len)
{
    PtOptions o = d->opts;
    PtSpec spec;
    PtError err;

    if (d->key[0] && pt_spec_parse(d->key, &spec, &err) == 0)
        o.map = spec.opts.map;
    pt_options_format(&o, buf, len);
}

static int cmd_pci_list(struct xs_handle *h, char **argv)
{
    unsigned domid;
    PtError err;
    XsBackendList *l = g_new0(XsBackendList, 1);
    int rc = EXIT_REFUSED;

    if (domain_arg(h, argv[0], &domid))
        goto out;
    if (xs_backend_read(h, XBT_NULL, domid, l, &err) < 0) {
        say("pci-list: %s", err.msg);
        goto out;
    }
    qsort(l->dev, (size_t)l->n, sizeof(l->dev[0]), by_vdevfn);
    printf("%-14s %-6s %s\n", "Host", "Guest", "Options");
    for (int i = 0; i < l->n; i++) {
        char bdf[16], guest[8] = "auto", opts[128];
        if (l->dev[i].has_vdevfn && !l->dev[i].auto_slot)
            snprintf(guest, sizeof(guest), "%02x.%x", PT_SLOT(l->dev[i].vdevfn),
                     PT_FUNC(l->dev[i].vdevfn));
        entry_options(&l->dev[i], opts, sizeof(opts));
        printf("%-14s %-6s %s\n", pt_bdf_format(l->dev[i].bdf, bdf, sizeof(bdf)), guest,
               opts[0] ? opts : "-");
    }
    rc = 0;
out:
    g_free(l);
    return rc;
}

/* Every domain, its id and its functions (host -> guest slot.function). */
static int cmd_list(struct xs_handle *h, char **argv)
{
    unsigned n = 0;
    char **ids = xs_directory(h, XBT_NULL, "/local/domain", &n);
    XsBackendList *l = g_new0(XsBackendList, 1);
    PtError err;

    (void)argv;
    printf("%-20s %5s  %s\n", "Name", "ID", "PCI (host->guest)");
    for (unsigned i = 0; ids && i < n; i++) {
        unsigned long id;
        if (pt_parse_uint(ids[i], 10, XS_DOMID_MAX, &id) < 0 || id == 0)
            continue;
        g_autofree char *np = domain_path((unsigned)id, "name");
        g_autofree char *name = xs_read_string(h, np);
        GString *fns = g_string_new("");
        if (xs_backend_read(h, XBT_NULL, (unsigned)id, l, &err) == 0) {
            qsort(l->dev, (size_t)l->n, sizeof(l->dev[0]), by_vdevfn);
            for (int k = 0; k < l->n; k++) {
                char bdf[16];
                g_string_append_printf(fns, "%s%s->", fns->len ? " " : "",
                                       pt_bdf_format(l->dev[k].bdf, bdf, sizeof(bdf)));
                if (l->dev[k].has_vdevfn && !l->dev[k].auto_slot)
                    g_string_append_printf(fns, "%02x.%x", PT_SLOT(l->dev[k].vdevfn),
                                           PT_FUNC(l->dev[k].vdevfn));
                else
                    g_string_append(fns, "auto");
            }
        }
        printf("%-20s %5lu  %s\n", name ? name : "?", id, fns->len ? fns->str : "-");
        g_string_free(fns, TRUE);
    }
    free(ids);
    g_free(l);
    return 0;
}

static int cmd_list_assignable(struct xs_handle *h, char **argv)
{
    const char *sysfs = getenv("XM_HOST_SYSFS");
    PtError err;
    HostPci *host = host_pci_open(sysfs && *sysfs ? sysfs : NULL, &err);

    (void)argv;
    if (!host) {
        say("%s", err.msg);
        return EXIT_REFUSED;
    }
    XsHolders others = { h, 0 };
    for (int i = 0; i < host_pci_count(host); i++) {
        PtBdf b = host_pci_bdf_at(host, i);
        PtHolder who;
        char bdf[16];
        if (host_pci_assignable(host, b) && !(h && xs_backend_holds(&others, b, &who)))
            printf("%s\n", pt_bdf_format(b, bdf, sizeof(bdf)));
    }
    host_pci_close(host);
    return 0;
}

/* Only the qemu-dm xm started for this domain: its command line says so. */
static bool is_our_dm(pid_t pid, unsigned domid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
    g_autofree char *cmd = NULL;
    gsize len;

    if (!g_file_get_contents(path, &cmd, &len, NULL))
        return false;
    g_autofree char *id = g_strdup_printf("%u", domid);
    for (gsize off = 0; off < len; off += strlen(cmd + off) + 1)
        if (!strcmp(cmd + off, "-domid") && off + 7 < len && !strcmp(cmd + off + 7, id))
            return true;
    return false;
}

static int stop_dm(struct xs_handle *h, unsigned domid)
{
    g_autofree char *pidpath = dm_pid_path(h, domid);
    g_autofree char *pidtext = xs_read_string(h, pidpath);
    unsigned long pid;

    if (!pidtext || pt_parse_uint(pidtext, 10, INT_MAX, &pid) < 0 || pid <= 1 ||
        !is_our_dm((pid_t)pid, domid))
        return 0;       /* gone already (or no pid written) */
    int pfd = pidfd_of((pid_t)pid);
    kill((pid_t)pid, SIGTERM);
    struct pollfd p = { .fd = pfd, .events = POLLIN };
    if (pfd >= 0 && poll(&p, 1, timeout_ms) == 0) {
        say("qemu-dm %lu of domain %u ignored SIGTERM for %d ms: killed", pid, domid, timeout_ms);
        kill((pid_t)pid, SIGKILL);
        poll(&p, 1, timeout_ms);
    }
    if (pfd >= 0)
        close(pfd);
    waitpid((pid_t)pid, NULL, WNOHANG);
    return 0;
}

static void destroy(struct xs_handle *h, unsigned domid)
{
    stop_dm(h, domid);
    remove_domain_entries(h, domid);
}

static int cmd_destroy(struct xs_handle *h, char **argv)
{
    unsigned domid;

    if (domain_arg(h, argv[0], &domid))
        return EXIT_REFUSED;
    g_autofree char *np = domain_path(domid, "name");
    g_autofree char *name = xs_read_string(h, np);
    if (is_xl_domain(h, domid)) {
        if (xl_teardown(h, domid, name ? name : "unnamed") != 0)
            return EXIT_REFUSED;
    } else {
        destroy(h, domid);
    }
    printf("Destroyed domain %s (id=%u)\n", name ? name : "?", domid);
    return 0;
}

/* ---- save/restore: the guest config, the keys and qemu-dm's state ---- */

#define SAVE_GROUP "xm-save"
#define SAVE_FORMAT 1

/* The save file: the guest config, each function's key, qemu-dm's state. */
static int write_save_file(struct xs_handle *h, unsigned domid, const char *file)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree XsBackendList *l = g_new0(XsBackendList, 1);
    g_autofree char *spath = dm_state_path(domid, "save");
    g_autofree char *cp = domain_path(domid, "xm/config");
    g_autofree char *config = xs_read_string(h, cp);
    g_autofree char *state = NULL;
    PtError err;
    gsize len;

    if (!g_file_get_contents(spath, &state, &len, &gerr)) {
        say("save: %s", gerr->message);
        return -1;
    }
    if (!config || xs_backend_read(h, XBT_NULL, domid, l, &err) < 0) {
        say("save: the domain's config or backend list is missing");
        return -1;
    }
    g_key_file_set_integer(kf, SAVE_GROUP, "format", SAVE_FORMAT);
    g_key_file_set_string(kf, SAVE_GROUP, "config", config);
    for (int i = 0; i < l->n; i++) {
        char bdf[16];
        g_key_file_set_string(kf, "keys", pt_bdf_format(l->dev[i].bdf, bdf, sizeof(bdf)),
                              l->dev[i].key);
    }
    g_autofree char *blob = g_base64_encode((const guchar *)state, len);
    g_key_file_set_string(kf, SAVE_GROUP, "qemu-dm", blob);
    if (!g_key_file_save_to_file(kf, file, &gerr)) {
        say("save: %s", gerr->message);
        return -1;
    }
    g_unlink(spath);
    return 0;
}

static int cmd_save(struct xs_handle *h, char **argv)
{
    unsigned domid;
    g_autofree char *reply = NULL;

    if (domain_arg(h, argv[0], &domid))
        return EXIT_REFUSED;
    if (is_xl_domain(h, domid)) {
        say("save %s: not on a real Xen yet (xl would save the guest's memory, qemu-dm its "
            "functions: that pairing is not built)", argv[0]);
        return EXIT_REFUSED;
    }
    g_autofree char *what = g_strdup_printf("save %s", argv[0]);
    int rc = request(h, domid, what, "save", "", xs_replies_save, "paused", &reply);
    if (rc)
        return rc;
    if (write_save_file(h, domid, argv[1]) < 0)
        return EXIT_REFUSED;
    destroy(h, domid);
    printf("Saved domain %u to %s\n", domid, argv[1]);
    return 0;
}

/* The saved layout: every function pinned at its saved vdevfn. */
static int saved_layout(GKeyFile *save, const char *state, XsBackendList *l)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();

    if (!g_key_file_load_from_data(kf, state, (gsize)-1, 0, NULL))
        return -1;
    int n = g_key_file_get_integer(kf, "qemu-dm", "functions", NULL);
    if (n < 0 || n > XS_BACKEND_MAX)
        return -1;
    l->n = 0;
    for (int i = 0; i < n; i++) {
        g_autofree char *group = g_strdup_printf("function %d", i);
        g_autofree char *host = g_key_file_get_string(kf, group, "host", NULL);
        g_autofree char *vdevfn = g_key_file_get_string(kf, group, "vdevfn", NULL);
        g_autofree char *opts = g_key_file_get_string(kf, group, "options", NULL);
        XsBackendDev *d = &l->dev[l->n];
        unsigned long v;
        PtError err;
        *d = (XsBackendDev){ .has_vdevfn = true, .state = XS_STATE_INITIALISING };
        /* The fields as qemu-dm wrote them (hw/dm-state.c), by the same parsers. */
        if (!host || !vdevfn || pt_bdf_parse_plain(NULL, host, &d->bdf, &err) < 0 ||
            pt_parse_uint(vdevfn, 16, 0xff, &v) < 0 ||
            pt_options_parse(NULL, opts ? opts : "", &d->opts, &err) < 0)
            return -1;
        d->vdevfn = (uint8_t)v;
        l->n++;
        g_autofree char *key = g_key_file_get_string(save, "keys", host, NULL);
        snprintf(d->key, sizeof(d->key), "%s", key ? key : host);
    }
    return 0;
}

/* The saved config and layout, and qemu-dm's state into a file of its own. */
static int read_save_file(const char *file, XmConfig *cfg, XsBackendList *l, char **dm_state)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;
    char why[400] = "";
    gsize len = 0;

    if (!g_key_file_load_from_file(kf, file, 0, &gerr)) {
        say("restore %s: %s", file, gerr->message);
        return -1;
    }
    int format = g_key_file_get_integer(kf, SAVE_GROUP, "format", NULL);
    if (g_key_file_has_key(kf, SAVE_GROUP, "format", NULL) && format != SAVE_FORMAT) {
        say("restore %s: save file format %d; this xm reads format %d", file, format,
            SAVE_FORMAT);
        return -1;
    }
    g_autofree char *config = g_key_file_get_string(kf, SAVE_GROUP, "config", NULL);
    g_autofree char *blob = g_key_file_get_string(kf, SAVE_GROUP, "qemu-dm", NULL);
    g_autofree guchar *state = blob ? g_base64_decode(blob, &len) : NULL;
    g_autofree char *text = state ? g_strndup((const char *)state, len) : NULL;
    if (!config || !text || config_parse(file, config, cfg, why, sizeof(why)) < 0 ||
        saved_layout(kf, text, l) < 0) {
        say("restore %s: not a saved domain%s%s", file, why[0] ? ": " : "", why);
        return -1;
    }
    g_autofree char *path = g_strdup_printf("%s/qemu-restore.%s", rundir(), cfg->name);
    if (g_mkdir_with_parents(rundir(), 0755) < 0 || !g_file_set_contents(path, text, -1, NULL)) {
        say("restore %s: cannot write %s", file, path);
        return -1;
    }
    *dm_state = g_steal_pointer(&path);
    return 0;
}

/* The saved functions of one host device, from entry `first` on, as one request. */
static PtRequest saved_device(const XsBackendList *l, int first, const PtPlanDefaults *dflt,
                              bool *seen)
{
    PtBdf b = l->dev[first].bdf;
    PtRequest req = { .domain = b.domain, .bus = b.bus, .dev = b.dev,
                      .opts = pt_options_merge(l->dev[first].opts, dflt->opts) };

    for (int i = first; i < l->n && req.nfuncs < PT_FUNCS_PER_SLOT; i++) {
        PtBdf o = l->dev[i].bdf;
        if (!seen[i] && o.domain == b.domain && o.bus == b.bus && o.dev == b.dev) {
            req.pfunc[req.nfuncs++] = o.func;
            seen[i] = true;
        }
    }
    return req;
}

/* The saved functions under the policy before anything is written: another
 * domain may have taken some of them since the save.  The functions of one
 * device go back together, so they are asked for together.  An exit status. */
static int check_layout(struct xs_handle *h, const char *file, const XmConfig *cfg,
                        const XsBackendList *l)
{
    XsHolders others = { h, 0 };
    PtHolders holders = { .held = xs_backend_holds, .opaque = &others };
    PtPlanDefaults dflt = guest_defaults(cfg);
    PtWarnings warnings;
    PtError err;
    bool seen[XS_BACKEND_MAX] = { false };
    g_autofree char *where = g_strdup_printf("restore %s", file);
    HostPci *host = open_host(cfg, where);
    int rc = host ? 0 : EXIT_USAGE;

    for (int i = 0; host && i < l->n && rc == 0; i++) {
        if (seen[i])
            continue;
        PtRequest req = saved_device(l, i, &dflt, seen);
        if (pt_plan_accept(host, &req, l->dev[i].key, &holders, &warnings, &err) < 0) {
            say("%s: %s", where, err.msg);
            rc = EXIT_REFUSED;
        } else {
            say_warnings(where, &warnings);
        }
    }
    if (host)
        host_pci_close(host);
    return rc;
}

static int cmd_restore(struct xs_handle *h, char **argv)
{
    g_autofree XsBackendList *l = g_new0(XsBackendList, 1);
    g_autofree char *dm_state = NULL;
    XmConfig cfg = { 0 };
    int rc = EXIT_USAGE;

    if (read_save_file(argv[0], &cfg, l, &dm_state) == 0) {
        rc = check_layout(h, argv[0], &cfg, l);
        if (rc == 0 && on_real_xen(&cfg)) {
            say("restore %s: not on a real Xen yet (xm save is refused there)", argv[0]);
            rc = EXIT_REFUSED;
        } else if (rc == 0) {
            rc = start_domain(h, &cfg, l, dm_state, "Restored");
        }
        g_unlink(dm_state);
    }
    config_clear(&cfg);
    return rc;
}

/* ================================================================ assignable host functions */

static const char *host_sysfs_env(void)
{
    const char *s = getenv("XM_HOST_SYSFS");

    return s && *s ? s : NULL;
}

/* XM_ASSIGN_DRIVER, else pciback where Xen runs and pci-stub elsewhere. */
static const char *assign_stub(void)
{
    const char *d = getenv("XM_ASSIGN_DRIVER");

    if (d && *d)
        return d;
    return host_assign_default_stub(host_xen_present("/proc/xen", "/sys/hypervisor/type"));
}

static HostAssign *open_assign(void)
{
    g_autofree char *state = g_build_filename(rundir(), "pci-assignable.state", NULL);
    PtError err;
    HostAssign *ha = host_assign_open(host_sysfs_env(), state, &err);

    if (!ha)
        say("%s", err.msg);
    return ha;
}

/* The host functions a plain BDF, a list or '*' names. */
static int assignable_funcs(const char *what, const char *text, PtBdf *funcs, int *n)
{
    PtSpec spec;
    PtRequest req;
    PtError err;
    HostPci *host;
    uint8_t present;

    if (pt_spec_parse(text, &spec, &err) < 0) {
        say("%s: %s", what, err.msg);
        return EXIT_USAGE;
    }
    if (spec.vslot != PT_UNSET || spec.opts.msitranslate != PT_UNSET ||
        spec.opts.power_mgmt != PT_UNSET || spec.opts.permissive != PT_UNSET ||
        spec.opts.map != PT_MAP_DEFAULT) {
        say("%s: %s: host functions only: no @VSLOT, no options", what, text);
        return EXIT_USAGE;
    }
    if (!(host = host_pci_open(host_sysfs_env(), &err))) {
        say("%s: %s", what, err.msg);
        return EXIT_REFUSED;
    }
    present = host_pci_present_funcs(host, spec.domain, spec.bus, spec.dev);
    host_pci_close(host);
    if (pt_spec_expand(&spec, text, present, &req, &err) < 0) {
        say("%s: %s", what, err.msg);
        return EXIT_REFUSED;
    }
    /* Zeroed first: PtBdfs are compared whole, padding included. */
    memset(funcs, 0, sizeof(*funcs) * PT_FUNCS_PER_SLOT);
    for (int i = 0; i < req.nfuncs; i++) {
        funcs[i].domain = req.domain;
        funcs[i].bus = req.bus;
        funcs[i].dev = req.dev;
        funcs[i].func = req.pfunc[i];
    }
    *n = req.nfuncs;
    return 0;
}

/* A guest's function is not ours to rebind: refuse before touching any. */

/* The domain whose backend list holds BDF, or -1. */
static int owner_of(struct xs_handle *h, PtBdf bdf)
{
    XsHolders others = { h, 0 };
    PtHolder who;

    return h && xs_backend_holds(&others, bdf, &who) ? (int)who.domid : -1;
}
static int refuse_in_use(struct xs_handle *h, const char *what, const PtBdf *funcs, int n)
{
    for (int i = 0; i < n; i++) {
        int owner = owner_of(h, funcs[i]);
        char bdf[16];
        if (owner >= 0) {
            say("%s: %s is in use by domain %d (xm pci-detach %d %s first)", what,
                pt_bdf_format(funcs[i], bdf, sizeof(bdf)), owner, owner, bdf);
            return -1;
        }
    }
    return 0;
}

static void print_step(PtBdf bdf, const HostAssignReport *rep)
{
    char name[16];

    printf("%s: %s -> %s; %s\n", pt_bdf_format(bdf, name, sizeof(name)),
           rep->was[0] ? rep->was : "no driver", rep->now[0] ? rep->now : "no driver",
           rep->reset);
}

/* What a guest given these functions would be refused for, said now. */
static void note_groups(struct xs_handle *h, const char *text, const PtBdf *funcs, int n)
{
    XsHolders others = { h, 0 };
    PtHolders holders = { .held = xs_backend_holds, .opaque = &others };
    PtRequest req = { .domain = funcs[0].domain, .bus = funcs[0].bus, .dev = funcs[0].dev,
                      .nfuncs = n, .opts = pt_options_unset() };
    PtWarnings warnings;
    PtError err;
    HostPci *host = host_pci_open(host_sysfs_env(), &err);

    for (int i = 0; i < n; i++)
        req.pfunc[i] = funcs[i].func;
    if (host && pt_plan_check_groups(host, &req, text, h ? &holders : NULL, &warnings, &err) < 0)
        say("note: %s: a guest given these functions would be refused", err.msg);
    host_pci_close(host);
}

static int cmd_assignable_add(struct xs_handle *h, char **argv)
{
    PtBdf funcs[PT_FUNCS_PER_SLOT];
    HostAssignReport rep;
    PtError err;
    HostAssign *ha;
    int n, rc = assignable_funcs("pci-assignable-add", argv[0], funcs, &n);

    if (rc)
        return rc;
    if (refuse_in_use(h, "pci-assignable-add", funcs, n) < 0 || !(ha = open_assign()))
        return EXIT_REFUSED;
    for (int i = 0; i < n && !rc; i++) {
        if (host_assign_add(ha, funcs[i], assign_stub(), &rep, &err) < 0) {
            say("pci-assignable-add %s: %s", argv[0], err.msg);
            /* All or none: the ones already done go back to their drivers. */
            for (int k = i - 1; k >= 0; k--)
                host_assign_remove(ha, funcs[k], true, &rep, &err);
            rc = EXIT_REFUSED;
        } else {
            print_step(funcs[i], &rep);
        }
    }
    host_assign_close(ha);
    if (!rc)
        note_groups(h, argv[0], funcs, n);
    return rc;
}

static int cmd_assignable_remove(struct xs_handle *h, char **argv)
{
    bool rebind = argv[1] && !strcmp(argv[0], "-r");
    const char *spec = rebind ? argv[1] : argv[0];
    PtBdf funcs[PT_FUNCS_PER_SLOT];
    HostAssignReport rep;
    PtError err;
    HostAssign *ha;
    int n, rc;

    if (argv[1] && !rebind) {
        say("usage: xm pci-assignable-remove [-r] SPEC");
        return EXIT_USAGE;
    }
    if ((rc = assignable_funcs("pci-assignable-remove", spec, funcs, &n)))
        return rc;
    if (refuse_in_use(h, "pci-assignable-remove", funcs, n) < 0 || !(ha = open_assign()))
        return EXIT_REFUSED;
    for (int i = 0; i < n && !rc; i++) {
        if (host_assign_remove(ha, funcs[i], rebind, &rep, &err) < 0) {
            say("pci-assignable-remove %s: %s", spec, err.msg);
            rc = EXIT_REFUSED;
        } else {
            print_step(funcs[i], &rep);
        }
    }
    host_assign_close(ha);
    return rc;
}

static int cmd_assignable_list(struct xs_handle *h, char **argv)
{
    PtError err;
    HostPci *host = host_pci_open(host_sysfs_env(), &err);

    (void)argv;
    if (!host) {
        say("%s", err.msg);
        return EXIT_REFUSED;
    }
    for (int i = 0; i < host_pci_count(host); i++) {
        PtBdf b = host_pci_bdf_at(host, i);
        const char *drv = host_pci_driver(host, b);
        int owner = owner_of(h, b);
        char bdf[16];
        if (!host_assign_is_stub(drv))
            continue;
        printf("%s %s", pt_bdf_format(b, bdf, sizeof(bdf)), drv);
        if (owner >= 0)
            printf(" domain %d", owner);
        putchar('\n');
    }
    host_pci_close(host);
    return 0;
}

static const XmCommand xm_commands[] = {
    { "create", 1, 1, "CFG", cmd_create, true },
    { "pci-attach", 2, 3, "DOM SPEC [VSLOT]", cmd_pci_attach, true },
    { "pci-detach", 2, 2, "DOM SPEC|VSLOT", cmd_pci_detach, true },
    { "pci-list", 1, 1, "DOM", cmd_pci_list, true },
    { "list", 0, 0, "", cmd_list, true },
    { "pci-list-assignable-devices", 0, 0, "", cmd_list_assignable, false },
    { "destroy", 1, 1, "DOM", cmd_destroy, true },
    { "save", 2, 2, "DOM FILE", cmd_save, true },
    { "restore", 1, 1, "FILE", cmd_restore, true },
    { "pci-assignable-add", 1, 1, "SPEC", cmd_assignable_add, false },
    { "pci-assignable-remove", 1, 2, "[-r] SPEC", cmd_assignable_remove, false },
    { "pci-assignable-list", 0, 0, "", cmd_assignable_list, false },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: xm [-t SECONDS] COMMAND ...\n");
    for (size_t i = 0; i < G_N_ELEMENTS(xm_commands); i++)
        fprintf(out, "  xm %s %s\n", xm_commands[i].name, xm_commands[i].args);
    fprintf(out, "exit status: 0 done, 1 refused or failed, 2 bad usage or input, 3 timed out\n");
}

static int set_timeout(const char *text)
{
    char *end;
    double s = strtod(text, &end);

    if (end == text || *end || !(s > 0 && s <= 3600)) {
        say("timeout '%s': expected seconds, more than 0 and at most 3600", text);
        return -1;
    }
    timeout_ms = (int)(s * 1000);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("XM_TIMEOUT") && set_timeout(getenv("XM_TIMEOUT")) < 0)
        return EXIT_USAGE;
    if (i + 1 < argc && !strcmp(argv[i], "-t")) {
        if (set_timeout(argv[i + 1]) < 0)
            return EXIT_USAGE;
        i += 2;
    }
    if (i >= argc || !strcmp(argv[i], "help") || !strcmp(argv[i], "-h")) {
        usage(i >= argc ? stderr : stdout);
        return i >= argc ? EXIT_USAGE : 0;
    }
    for (size_t c = 0; c < G_N_ELEMENTS(xm_commands); c++) {
        const XmCommand *cmd = &xm_commands[c];
        int nargs = argc - i - 1;
        if (strcmp(argv[i], cmd->name))
            continue;
        if (nargs < cmd->min || nargs > cmd->max) {
            say("usage: xm %s %s", cmd->name, cmd->args);
            return EXIT_USAGE;
        }
        struct xs_handle *h = connect_store();
        if (!h && cmd->needs_store)
            return EXIT_REFUSED;
        char *args[4] = { 0 };
        for (int a = 0; a < nargs; a++)
            args[a] = argv[i + 1 + a];
        int rc = cmd->run(h, args);
        if (h)
            xs_close(h);
        return rc;
    }
    say("unknown command '%s' (try xm help)", argv[i]);
    return EXIT_USAGE;
}
