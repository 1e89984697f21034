/*
 * The xenstored fixture itself: Debian's real daemon under fakexen.so,
 * on a private socket, reached by libxenstore and the xenstore-* tools.
 */
#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xs-channel.h"
#include "xenstored.h"

static void test_imports_covered(void)
{
    char *missing = NULL;

    g_assert_cmpint(xenstored_check_imports(&missing), ==, 0);
    g_assert_null(missing);
}

static void test_read_write_watch(void)
{
    Xenstored *xd = xenstored_start();
    struct xs_handle *h = xs_open(0);
    unsigned len;

    g_assert_nonnull(h);
    g_assert_true(xs_write(h, XBT_NULL, "/test/a", "hello", 5));
    char *v = xs_read(h, XBT_NULL, "/test/a", &len);
    g_assert_cmpstr(v, ==, "hello");
    free(v);

    /* A watch fires through xs_fileno: what qemu-dm's main loop relies on. */
    g_assert_true(xs_watch(h, "/test/b", "tok"));
    g_autofree char *got = NULL;
    const char *const want[] = { "42", NULL };
    struct xs_handle *other = xs_open(0);
    g_assert_true(xs_write(other, XBT_NULL, "/test/b", "42", 2));
    g_assert_cmpint(xs_tool_wait(h, "/test/b", want, 5000, &got), ==, 0);
    g_assert_cmpstr(got, ==, "42");
    xs_close(other);
    xs_close(h);
    xenstored_stop(xd);
}

static void test_cli_tools(void)
{
    Xenstored *xd = xenstored_start();
    g_autofree char *out = NULL;
    int status;
    const char *w[] = { "xenstore-write", "/cli/x", "7", NULL };
    const char *r[] = { "xenstore-read", "/cli/x", NULL };

    g_assert_true(g_spawn_sync(NULL, (char **)w, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_true(g_spawn_sync(NULL, (char **)r, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               NULL, &status, NULL));
    g_assert_cmpstr(out, ==, "7\n");
    xenstored_stop(xd);
}

/* Real semantics: a transaction that raced another writer gets EAGAIN. */
static void test_transaction_conflict(void)
{
    Xenstored *xd = xenstored_start();
    struct xs_handle *a = xs_open(0), *b = xs_open(0);

    g_assert_true(xs_write(a, XBT_NULL, "/t/n", "0", 1));
    xs_transaction_t t = xs_transaction_start(a);
    unsigned len;
    free(xs_read(a, t, "/t/n", &len));
    g_assert_true(xs_write(b, XBT_NULL, "/t/n", "1", 1));
    g_assert_true(xs_write(a, t, "/t/n", "2", 1));
    g_assert_false(xs_transaction_end(a, t, false));
    g_assert_cmpint(errno, ==, EAGAIN);
    xs_close(a);
    xs_close(b);
    xenstored_stop(xd);
}

/* Two daemons side by side; stop removes the directory and the socket. */
static void test_two_daemons_and_cleanup(void)
{
    Xenstored *x1 = xenstored_start();
    Xenstored *x2 = xenstored_start();
    g_autofree char *dir1 = g_strdup(xenstored_dir(x1));
    struct stat st;

    g_assert_cmpstr(xenstored_socket(x1), !=, xenstored_socket(x2));
    g_assert_cmpstr(g_getenv("XENSTORED_PATH"), ==, xenstored_socket(x2));
    g_assert_cmpint(kill(xenstored_pid(x1), 0), ==, 0);
    xenstored_stop(x2);
    g_assert_cmpstr(g_getenv("XENSTORED_PATH"), ==, xenstored_socket(x1));
    GPid pid = xenstored_pid(x1);
    xenstored_stop(x1);
    g_assert_null(g_getenv("XENSTORED_PATH"));
    g_assert_cmpint(stat(dir1, &st), ==, -1);
    g_assert_cmpint(kill(pid, 0), ==, -1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_unsetenv("XENSTORED_PATH");
    g_test_add_func("/xenstored/imports-covered", test_imports_covered);
    g_test_add_func("/xenstored/read-write-watch", test_read_write_watch);
    g_test_add_func("/xenstored/cli-tools", test_cli_tools);
    g_test_add_func("/xenstored/transaction-conflict", test_transaction_conflict);
    g_test_add_func("/xenstored/two-daemons-and-cleanup", test_two_daemons_and_cleanup);
    return g_test_run();
}
