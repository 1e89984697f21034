#include "xenstored.h"

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define XENSTORED_DEFAULT "/usr/lib/xen-4.17/bin/xenstored"
#define READY_TIMEOUT_MS  10000

struct Xenstored {
    char *dir;
    char *socket;
    GSubprocess *proc;
    GPid pid;
    char *saved_path;       /* XENSTORED_PATH before we set it, or NULL */
};

const char *xenstored_binary(void)
{
    const char *bin = g_getenv("XENSTORED_BIN");

    return bin && *bin ? bin : XENSTORED_DEFAULT;
}

const char *xenstored_fakexen(void)
{
    return BUILDDIR "/fakexen.so";
}

/* Symbols from `nm -D` of a file, one per line, version suffixes cut. */
static GHashTable *nm_symbols(const char *file, const char *which, GError **gerr)
{
    const char *argv[] = { "nm", "-D", which, file, NULL };
    g_autofree char *out = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, &out, NULL, &status, gerr) ||
        !g_spawn_check_wait_status(status, gerr))
        return NULL;
    GHashTable *syms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(*l), " \t", -1);
        guint n = g_strv_length(f);
        if (n < 2)
            continue;
        char *at = strchr(f[n - 1], '@');
        if (at)
            *at = '\0';
        g_hash_table_add(syms, g_strdup(f[n - 1]));
    }
    return syms;
}

int xenstored_check_imports(char **missing)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GHashTable) imports = nm_symbols(xenstored_binary(), "--undefined-only", &gerr);
    g_autoptr(GHashTable) defined = imports ? nm_symbols(xenstored_fakexen(), "--defined-only",
                                                         &gerr) : NULL;
    GString *miss = g_string_new(NULL);
    GHashTableIter it;
    gpointer sym;

    if (!defined) {
        g_string_printf(miss, "nm failed: %s", gerr->message);
        *missing = g_string_free(miss, FALSE);
        return -1;
    }
    g_hash_table_iter_init(&it, imports);
    while (g_hash_table_iter_next(&it, &sym, NULL))
        if ((g_str_has_prefix(sym, "xc_") || g_str_has_prefix(sym, "xen")) &&
            !g_hash_table_contains(defined, sym))
            g_string_append_printf(miss, "%s%s", miss->len ? " " : "", (char *)sym);
    if (!miss->len) {
        g_string_free(miss, TRUE);
        return 0;
    }
    *missing = g_string_free(miss, FALSE);
    return -1;
}

/* Checked once per process: a package update that adds an import must
 * stop the tests with the symbol's name, not crash the daemon later. */
static void check_imports_once(void)
{
    static gsize done;

    if (!g_once_init_enter(&done))
        return;
    if (!g_file_test(xenstored_binary(), G_FILE_TEST_IS_EXECUTABLE))
        g_error("xenstored fixture: %s not found (install xen-utils-4.17)", xenstored_binary());
    if (!g_file_test(xenstored_fakexen(), G_FILE_TEST_EXISTS))
        g_error("xenstored fixture: %s not built (tests/fakexen.mk)", xenstored_fakexen());
    char *missing = NULL;
    if (xenstored_check_imports(&missing) < 0)
        g_error("xenstored fixture: fakexen.so does not cover %s's hypervisor imports: %s "
                "(add them to tests/lib/fakexen.c)", xenstored_binary(), missing);
    g_once_init_leave(&done, 1);
}

/* Block on the daemon's stdout until its pid line: -P prints it once the
 * sockets and dom0 are set up. */
static int await_pid_line(GSubprocess *proc, GPid *pid, char *why, size_t len)
{
    GInputStream *in = g_subprocess_get_stdout_pipe(proc);
    int fd = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(in));
    char line[64];
    size_t used = 0;

    while (used < sizeof(line) - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, READY_TIMEOUT_MS);
        if (rc == 0) {
            snprintf(why, len, "no pid line within %d ms", READY_TIMEOUT_MS);
            return -1;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        ssize_t n = read(fd, line + used, 1);
        if (n <= 0) {
            snprintf(why, len, "exited before it was ready");
            return -1;
        }
        if (line[used] == '\n') {
            line[used] = '\0';
            char *end;
            long v = strtol(line, &end, 10);
            if (end == line || *end || v <= 0) {
                snprintf(why, len, "unexpected first line '%s'", line);
                return -1;
            }
            *pid = (GPid)v;
            return 0;
        }
        used++;
    }
    snprintf(why, len, "first line too long");
    return -1;
}

static void restore_env(Xenstored *xd)
{
    if (xd->saved_path)
        setenv("XENSTORED_PATH", xd->saved_path, 1);
    else
        unsetenv("XENSTORED_PATH");
}

/* A test that aborts must not leave its daemon behind. */
static void die_with_parent(gpointer unused)
{
    (void)unused;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

Xenstored *xenstored_start(void)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GSubprocessLauncher) l = NULL;
    Xenstored *xd = g_new0(Xenstored, 1);
    char why[160];

    check_imports_once();
    /* /tmp keeps the socket path well under the 108 bytes of sun_path. */
    xd->dir = g_dir_make_tmp("xsd-XXXXXX", &gerr);
    if (!xd->dir)
        g_error("xenstored fixture: %s", gerr->message);
    xd->socket = g_build_filename(xd->dir, "socket", NULL);
    g_autofree char *log = g_build_filename(xd->dir, "log", NULL);
    l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_subprocess_launcher_set_stderr_file_path(l, log);
    g_subprocess_launcher_setenv(l, "XENSTORED_RUNDIR", xd->dir, TRUE);
    g_subprocess_launcher_setenv(l, "LD_PRELOAD", xenstored_fakexen(), TRUE);
    /* An empty or stale XENSTORED_PATH would still count as set. */
    g_subprocess_launcher_unsetenv(l, "XENSTORED_PATH");
    g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
    xd->proc = g_subprocess_launcher_spawn(l, &gerr, xenstored_binary(), "-N", "-P", NULL);
    if (!xd->proc)
        g_error("xenstored fixture: cannot run %s: %s", xenstored_binary(), gerr->message);
    if (await_pid_line(xd->proc, &xd->pid, why, sizeof(why)) < 0) {
        g_autofree char *text = NULL;
        g_file_get_contents(log, &text, NULL, NULL);
        g_error("xenstored fixture: %s %s (log: %s)", xenstored_binary(), why,
                text ? text : "empty");
    }
    const char *old = g_getenv("XENSTORED_PATH");
    xd->saved_path = old ? g_strdup(old) : NULL;
    setenv("XENSTORED_PATH", xd->socket, 1);
    return xd;
}

void xenstored_stop(Xenstored *xd)
{
    if (!xd)
        return;
    restore_env(xd);
    g_subprocess_send_signal(xd->proc, SIGTERM);
    g_subprocess_wait(xd->proc, NULL, NULL);
    g_object_unref(xd->proc);
    /* It leaves its socket (and log, and our pid pipe's nothing) behind. */
    g_autoptr(GDir) d = g_dir_open(xd->dir, 0, NULL);
    for (const char *name; d && (name = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(xd->dir, name, NULL);
        unlink(p);
    }
    rmdir(xd->dir);
    g_free(xd->dir);
    g_free(xd->socket);
    g_free(xd->saved_path);
    g_free(xd);
}

const char *xenstored_socket(const Xenstored *xd)
{
    return xd->socket;
}

const char *xenstored_dir(const Xenstored *xd)
{
    return xd->dir;
}

GPid xenstored_pid(const Xenstored *xd)
{
    return xd->pid;
}
