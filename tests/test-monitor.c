/* The monitor: every command, its replies, and errors that change nothing. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "hypervisor-sim.h"
#include "monitor.h"
#include "rig.h"
#include "simtree.h"
#include "test-guest.h"

#define ASUS "asus-p6t6-x58-ich10-gt218.lspci"

typedef struct MonRig {
    Rig rig;
    Monitor *mon;
    int quits;
} MonRig;

static void on_quit(void *opaque)
{
    ((MonRig *)opaque)->quits++;
}

static void mon_up(MonRig *m)
{
    rig_up(&m->rig, ASUS);
    MonitorTarget t = { .guest = m->rig.guest, .bus = m->rig.bus, .quit = on_quit, .opaque = m };
    m->mon = monitor_new(&t);
    m->quits = 0;
}

static void mon_down(MonRig *m)
{
    monitor_free(m->mon);
    rig_down(&m->rig);
}

/* Run a line; returns the reply, asserts the status. */
static char *run(MonRig *m, const char *line, int want_rc)
{
    GString *out = g_string_new("");

    g_assert_cmpint(monitor_execute(m->mon, line, out), ==, want_rc);
    return g_string_free(out, FALSE);
}

static void test_add_info_del(void)
{
    MonRig m;

    mon_up(&m);
    g_autofree char *add = run(&m, "pci_add 0000:00:1d.0-2@7", 0);
    g_assert_cmpstr(add, ==, "0000:00:1d.0 -> 00:07.0\n0000:00:1d.1 -> 00:07.1\n"
                             "0000:00:1d.2 -> 00:07.2\n");
    g_autofree char *classic = run(&m, "pci_add pci_addr=auto host host=06:00.1,0,map=least", 0);
    g_assert_cmpstr(classic, ==, "0000:06:00.1 -> 00:04.0\n0000:06:00.0 -> 00:04.1\n");
    g_autofree char *info = run(&m, "info pci", 0);
    g_assert_nonnull(strstr(info, "  07.0 8086:3a34 class 0c03 rev 00 header 80 host 0000:00:1d.0\n"));
    g_assert_nonnull(strstr(info, "  07.2 8086:3a36 class 0c03 rev 00 header 80 host 0000:00:1d.2\n"));
    g_assert_nonnull(strstr(info, "  04.1 10de:0a65 class 0300 rev a2 header 80 host 0000:06:00.0\n"));
    g_assert_nonnull(strstr(info, "    BAR1 mem64 0x00000000 size 0x10000000 prefetch\n"));
    g_assert_nonnull(strstr(info, "Pass-through options:\n"
        "  04.0 host 0000:06:00.1 msitranslate=0 power_mgmt=0 permissive=0 map=least\n"
        "  04.1 host 0000:06:00.0 msitranslate=0 power_mgmt=0 permissive=0 map=least\n"
        "  07.0 host 0000:00:1d.0 msitranslate=0 power_mgmt=0 permissive=0 map=identity\n"));
    g_autofree char *opt = run(&m, "pci_add 00:1a.*,permissive=1,msitranslate=1", 0);
    g_autofree char *info2 = run(&m, "info pci", 0);
    g_assert_nonnull(strstr(info2, "  05.7 host 0000:00:1a.7 msitranslate=1 power_mgmt=0 "
                                   "permissive=1 map=identity\n"));
    g_free(run(&m, "pci_del 5", 0));

    g_autofree char *del = run(&m, "pci_del 0000:00:1d.1", 0);
    g_assert_cmpstr(del, ==, "removed guest slot 07 (3 functions)\n");
    g_autofree char *del2 = run(&m, "pci_del 4", 0);
    g_assert_cmpstr(del2, ==, "removed guest slot 04 (2 functions)\n");
    g_autofree char *empty = run(&m, "info pci", 0);
    g_assert_cmpstr(empty, ==, "PCI bus 0:\n");
    mon_down(&m);
}

/* A function's config file cut after attach: the guest's reads fail on the
 * host, counted and logged once; info pci shows the count and the first. */
static void test_info_host_failures(void)
{
    MonRig m;

    mon_up(&m);
    g_free(run(&m, "pci_add 00:1d.0-2@7", 0));
    g_autofree char *clean = run(&m, "info pci", 0);
    g_assert_null(strstr(clean, "Host access failures"));
    g_autofree char *cfg = rig_host_config_path(&m.rig, "0000:00:1d.1");
    g_assert_cmpint(truncate(cfg, 0x10), ==, 0);
    for (int i = 0; i < 3; i++)
        g_assert_cmphex(tg_cfg_read(m.rig.bus, PT_DEVFN(7, 1), 0x40, 4), ==, 0xffffffff);
    g_autofree char *info = run(&m, "info pci", 0);
    g_assert_nonnull(strstr(info, "Host access failures:\n  07.1 host 0000:00:1d.1: 3 (first: "
                                  "config read of 4 bytes at 0x040: short read)\n"));
    g_assert_cmpuint(rig_log_count("0000:00:1d.1: host access failed"), ==, 1);
    mon_down(&m);
}

/* A refusal from below the policy reaches the monitor in its own words:
 * the hypervisor's errno, the host's missing file. */
static void test_refusal_keeps_cause(void)
{
    MonRig m;

    mon_up(&m);
    hypervisor_sim_fail_call(m.rig.hv, 1, EACCES);
    g_autofree char *hv = run(&m, "pci_add 00:1d.0@7", -1);
    g_autofree char *hv_want = g_strdup_printf("error: 0000:00:1d.0: the hypervisor refuses the "
                                               "device (%s)\n", strerror(EACCES));
    g_assert_cmpstr(hv, ==, hv_want);
    g_autofree char *cfg = rig_host_config_path(&m.rig, "0000:00:1d.1");
    g_assert_cmpint(g_unlink(cfg), ==, 0);
    g_autofree char *host = run(&m, "pci_add 00:1d.1", -1);
    g_autofree char *host_want = g_strdup_printf("error: 0000:00:1d.1 has a config space that "
                                                 "cannot be read: config read of 15 bytes at "
                                                 "0x000: Cannot open %s: %s\n", cfg,
                                                 strerror(ENOENT));
    g_assert_cmpstr(host, ==, host_want);
    g_autofree char *empty = run(&m, "info pci", 0);
    g_assert_cmpstr(empty, ==, "PCI bus 0:\n");
    mon_down(&m);
}

/* A refused command is one line and leaves the bus exactly as it was. */
static void test_errors_change_nothing(void)
{
    static const struct { const char *line; const char *reply; } bad[] = {
        { "pci_add 0000:00:1d.0-9", "error: 0000:00:1d.0-9: function 9 out of range 0-7 (at column 14)\n" },
        { "pci_add 0000:00:1a.0-2@7", "error: 0000:00:1a.0-2@7: guest slot 07 function 0 is already "
                                      "taken (by 0000:00:1d.0)\n" },
        { "pci_add 00:1a.5", "error: 00:1a.5: function 5 is not present on the host (0000:00:1a has "
                             "functions 0,1,2,7)\n" },
        { "pci_add", "error: pci_add needs a device spec, e.g. pci_add 0000:00:1d.0-2@7\n" },
        /* xm's words for the same request (tests/test-xm.c), not the hypervisor's EBUSY. */
        { "pci_add 0000:00:1d.2", "error: 0000:00:1d.2 is already attached to this guest "
                                  "(at 07.2)\n" },
        { "pci_add 00:1d.7,1@9", "error: 00:1d.7,1@9: 0000:00:1d.7 is already attached to this "
                                 "guest (at 07.7)\n" },
        { "pci_del 0000:00:1a.0", "error: 0000:00:1a.0: not attached to this guest\n" },
        { "pci_del 1f", "error: guest slot 1f has no pass-through device\n" },
        { "pci_del 0000:00:1d.0@7", "error: 0000:00:1d.0@7: detach takes no @VSLOT: the whole guest slot "
                                    "is removed (at column 13)\n" },
        { "pci_del", "error: pci_del needs a device spec or a guest slot, e.g. pci_del 07\n" },
        { "info", "error: info what? (info pci)\n" },
        { "frobnicate now", "error: unknown command 'frobnicate' (try help)\n" },
        { "pci_dump /nonexistent/dir/file",
          "error: pci_dump /nonexistent/dir/file: No such file or directory\n" },
        { "pci_add pci_addr=8 host host=00:1a.0",
          "error: pci_add pci_addr=8 host host=00:1a.0: only pci_addr=auto is supported (pci_add "
          "pci_addr=auto host host=SPEC; the guest slot goes in SPEC as @VSLOT)\n" },
    };
    MonRig m;

    mon_up(&m);
    g_free(run(&m, "pci_add 0000:00:1d.*@7", 0));
    g_autofree char *before = run(&m, "info pci", 0);
    size_t calls = hypervisor_sim_log_len(m.rig.hv);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *reply = run(&m, bad[i].line, -1);
        if (bad[i].reply)
            g_assert_cmpstr(reply, ==, bad[i].reply);
        else
            g_assert_true(g_str_has_prefix(reply, "error: ") && strchr(reply, '\n') == reply + strlen(reply) - 1);
        g_autofree char *after = run(&m, "info pci", 0);
        g_assert_cmpstr(after, ==, before);
    }
    /* Refusals that are decided before the hypervisor is asked cost no call. */
    g_assert_cmpuint(hypervisor_sim_log_len(m.rig.hv), ==, calls);
    g_assert_cmpint(m.quits, ==, 0);
    mon_down(&m);
}

/* The policy's words as -dry-run gives them (tests/test-proposal.c): a
 * function reading all ones, a CardBus bridge; '*' skips with a note. */
static void test_policy_as_dry_run(void)
{
    const uint8_t cardbus = 0x82;
    MonRig m;

    mon_up(&m);
    simtree_all_ones(m.rig.tree, "0000:06:00.1");
    simtree_poke(m.rig.tree, "0000:00:1a.0", 0x0e, &cardbus, 1);
    g_autofree char *dark = run(&m, "pci_add 06:00.1", -1);
    g_assert_cmpstr(dark, ==, "error: 0000:06:00.1 reads all ones (powered off or absent): not "
                              "passed through\n");
    g_autofree char *cb = run(&m, "pci_add 00:1a.*", -1);
    g_assert_cmpstr(cb, ==, "error: 00:1a.*: 0000:00:1a.0 has header type 0x02 (CardBus "
                            "bridge), which cannot be passed through\n");
    g_autofree char *star = run(&m, "pci_add 06:00.*@8", 0);
    g_assert_cmpstr(star, ==, "0000:06:00.0 -> 00:08.0\nnote: 0000:06:00.1 reads all ones "
                              "(powered off or absent): skipped\n");
    mon_down(&m);
}

static void test_dump_help_quit(void)
{
    MonRig m;
    g_autofree char *path = g_build_filename(g_get_tmp_dir(), "monitor-dump-XXXXXX", NULL);
    int fd = g_mkstemp(path);

    close(fd);
    mon_up(&m);
    g_free(run(&m, "pci_add 06:00.*", 0));
    g_autofree char *cmd = g_strdup_printf("pci_dump %s", path);
    g_autofree char *dumped = run(&m, cmd, 0);
    g_autofree char *want = g_strdup_printf("guest view written to %s (read it with lspci -F %s -vvv)\n",
                                            path, path);
    g_assert_cmpstr(dumped, ==, want);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_true(g_str_has_prefix(text, "00:04.0 "));
    g_assert_nonnull(strstr(text, "\n00:04.1 "));

    g_autofree char *help = run(&m, "help", 0);
    g_assert_nonnull(strstr(help, "pci_add SPEC"));
    g_assert_nonnull(strstr(help, "pci_del SPEC|VSLOT"));
    g_free(run(&m, "", 0));
    g_free(run(&m, "quit", 0));
    g_assert_cmpint(m.quits, ==, 1);
    g_unlink(path);
    mon_down(&m);
}

/* ---- qemu-dm with the monitor on a unix socket ---- */

static char *read_line(GDataInputStream *in)
{
    g_autoptr(GError) gerr = NULL;
    char *line = g_data_input_stream_read_line(in, NULL, NULL, &gerr);

    g_assert_no_error(gerr);
    g_assert_nonnull(line);
    return line;
}

static void test_qemu_dm_unix_monitor(void)
{
    g_autofree char *tree = simtree_build(ASUS, true);
    g_autofree char *sock = g_build_filename(tree, "monitor.sock", NULL);
    g_autofree char *mon = g_strdup_printf("unix:%s", sock);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GSubprocess) dm = g_subprocess_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &gerr,
        BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-hypervisor", "sim", "-monitor", mon,
        "-pci", "00:1a.*", NULL);
    g_assert_no_error(gerr);
    g_autoptr(GDataInputStream) out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(dm));

    /* Boot-time placement first, then the monitor says it listens. */
    const char *boot[] = { "0000:00:1a.0 -> 00:04.0", "0000:00:1a.1 -> 00:04.1",
                           "0000:00:1a.2 -> 00:04.2", "0000:00:1a.7 -> 00:04.7" };
    for (size_t i = 0; i < G_N_ELEMENTS(boot); i++) {
        g_autofree char *line = read_line(out);
        g_assert_cmpstr(line, ==, boot[i]);
    }
    g_autofree char *ready = read_line(out);
    g_autofree char *want_ready = g_strdup_printf("qemu-dm: monitor listening on %s", mon);
    g_assert_cmpstr(ready, ==, want_ready);

    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(sock);
    g_autoptr(GSocketConnection) conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr),
                                                                NULL, &gerr);
    g_assert_no_error(gerr);
    const char cmds[] = "pci_add 00:1d.0-2@7\npci_del 04\ninfo pci\nquit\n";
    g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), cmds,
                              sizeof(cmds) - 1, NULL, NULL, &gerr);
    g_assert_no_error(gerr);
    g_autoptr(GDataInputStream) replies =
        g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    g_autoptr(GString) all = g_string_new("");
    char *line;
    while ((line = g_data_input_stream_read_line(replies, NULL, NULL, NULL))) {
        g_string_append_printf(all, "%s\n", line);
        g_free(line);
    }
    g_assert_cmpstr(all->str, ==,
        "qemu-dm monitor - type 'help' for more information\n"
        "(qemu) 0000:00:1d.0 -> 00:07.0\n"
        "0000:00:1d.1 -> 00:07.1\n"
        "0000:00:1d.2 -> 00:07.2\n"
        "(qemu) removed guest slot 04 (4 functions)\n"
        "(qemu) PCI bus 0:\n"
        "  07.0 8086:3a34 class 0c03 rev 00 header 80 host 0000:00:1d.0\n"
        "    INTA -> link 3, line 0\n"
        "    BAR4 io    0x00000000 size 0x20\n"
        "  07.1 8086:3a35 class 0c03 rev 00 header 80 host 0000:00:1d.1\n"
        "    INTB -> link 0, line 0\n"
        "    BAR4 io    0x00000000 size 0x20\n"
        "  07.2 8086:3a36 class 0c03 rev 00 header 80 host 0000:00:1d.2\n"
        "    INTC -> link 1, line 0\n"
        "    BAR4 io    0x00000000 size 0x20\n"
        "Pass-through options:\n"
        "  07.0 host 0000:00:1d.0 msitranslate=0 power_mgmt=0 permissive=0 map=identity\n"
        "  07.1 host 0000:00:1d.1 msitranslate=0 power_mgmt=0 permissive=0 map=identity\n"
        "  07.2 host 0000:00:1d.2 msitranslate=0 power_mgmt=0 permissive=0 map=identity\n"
        "(qemu) \n");
    g_assert_true(g_subprocess_wait_check(dm, NULL, &gerr));
    g_assert_no_error(gerr);
    /* Its socket goes with it. */
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
    simtree_remove(g_steal_pointer(&tree));
}

static GSocketConnection *connect_monitor(const char *sock)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(sock);
    GSocketConnection *conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr),
                                                      NULL, &gerr);

    g_assert_no_error(gerr);
    return conn;
}

/* A client that hangs up mid-line frees the monitor for the next one. */
static void test_qemu_dm_unix_client_hangs_up(void)
{
    g_autofree char *tree = simtree_build(ASUS, true);
    g_autofree char *sock = g_build_filename(tree, "monitor.sock", NULL);
    g_autofree char *mon = g_strdup_printf("unix:%s", sock);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GSubprocess) dm = g_subprocess_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &gerr,
        BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-hypervisor", "sim", "-monitor", mon, NULL);
    g_assert_no_error(gerr);
    g_autoptr(GDataInputStream) out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(dm));
    g_autofree char *ready = read_line(out);
    g_assert_true(g_str_has_suffix(ready, mon));

    GSocketConnection *first = connect_monitor(sock);
    g_autoptr(GDataInputStream) r1 =
        g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(first)));
    g_autofree char *hello1 = read_line(r1);
    g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(first)), "info p", 6,
                              NULL, NULL, &gerr);
    g_assert_no_error(gerr);
    /* Hang up, and await the monitor's side of it: its reply to the cut
     * line, then the end of the stream when it lets the client go. */
    g_assert_true(g_socket_shutdown(g_socket_connection_get_socket(first), FALSE, TRUE, &gerr));
    g_autofree char *cut = read_line(r1);
    g_assert_cmpstr(cut, ==, "(qemu) error: info what? (info pci)");
    g_autofree char *prompt = read_line(r1);
    g_assert_cmpstr(prompt, ==, "(qemu) ");
    g_assert_null(g_data_input_stream_read_line(r1, NULL, NULL, &gerr));
    g_assert_no_error(gerr);
    g_object_unref(first);

    /* The second client is served, not told the monitor is busy. */
    g_autoptr(GSocketConnection) second = connect_monitor(sock);
    g_autoptr(GDataInputStream) r2 =
        g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(second)));
    g_autofree char *hello2 = read_line(r2);
    g_assert_cmpstr(hello2, ==, "qemu-dm monitor - type 'help' for more information");
    g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(second)), "quit\n", 5,
                              NULL, NULL, &gerr);
    g_assert_no_error(gerr);
    g_assert_true(g_subprocess_wait_check(dm, NULL, &gerr));
    g_assert_no_error(gerr);
    simtree_remove(g_steal_pointer(&tree));
}

/* ---- end of input: qemu-dm ends, however its stdin ends ---- */

/* Long enough for a loaded machine, far shorter than the alarm below. */
#define EXIT_WAIT_SECONDS 20

typedef struct Communicated {
    GMainLoop *loop;
    GBytes *out;
    GError *err;
    bool done;
} Communicated;

static void on_communicated(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Communicated *c = opaque;

    g_subprocess_communicate_finish(G_SUBPROCESS(src), res, &c->out, NULL, &c->err);
    c->done = true;
    g_main_loop_quit(c->loop);
}

static gboolean on_exit_timeout(gpointer opaque)
{
    g_main_loop_quit(((Communicated *)opaque)->loop);
    return G_SOURCE_REMOVE;
}

/*
 * qemu-dm -monitor stdio with stdin from a file (stdin_path) or a pipe that
 * gets input and is then closed.  Awaits qemu-dm's exit, which must come
 * within EXIT_WAIT_SECONDS (a monitor spinning on a closed pipe never exits);
 * returns its stdout.
 */
static void close_stdin(gpointer unused)
{
    (void)unused;
    close(0);
}

/* stdin_path NULL: a pipe fed with input; "" : no stdin at all (closed). */
static char *stdio_monitor_session(const char *stdin_path, const char *input)
{
    bool closed = stdin_path && !*stdin_path;
    g_autofree char *tree = simtree_build(ASUS, true);
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE |
        (stdin_path ? 0 : G_SUBPROCESS_FLAGS_STDIN_PIPE) |
        (closed ? G_SUBPROCESS_FLAGS_STDIN_INHERIT : 0));
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) in = input ? g_bytes_new_static(input, strlen(input)) : NULL;
    Communicated c = { .loop = g_main_loop_new(NULL, FALSE) };

    if (closed)
        g_subprocess_launcher_set_child_setup(l, close_stdin, NULL, NULL);
    else if (stdin_path)
        g_subprocess_launcher_set_stdin_file_path(l, stdin_path);
    g_autoptr(GSubprocess) dm = g_subprocess_launcher_spawn(
        l, &gerr, BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-hypervisor", "sim",
        "-monitor", "stdio", "-pci", "00:1a.0", NULL);
    g_assert_no_error(gerr);
    g_subprocess_communicate_async(dm, in, NULL, on_communicated, &c);
    guint timer = g_timeout_add_seconds(EXIT_WAIT_SECONDS, on_exit_timeout, &c);
    g_main_loop_run(c.loop);
    if (!c.done) {
        g_subprocess_force_exit(dm);
        g_subprocess_wait(dm, NULL, NULL);
        g_error("qemu-dm did not exit within %d s of the end of its input", EXIT_WAIT_SECONDS);
    }
    g_source_remove(timer);
    g_main_loop_unref(c.loop);
    g_assert_no_error(c.err);
    g_assert_true(g_subprocess_get_if_exited(dm));
    g_assert_cmpint(g_subprocess_get_exit_status(dm), ==, 0);
    simtree_remove(g_steal_pointer(&tree));
    char *out = g_strndup(g_bytes_get_data(c.out, NULL), g_bytes_get_size(c.out));
    g_bytes_unref(c.out);
    return out;
}

#define GREETING "qemu-dm monitor - type 'help' for more information\n(qemu) "

static void test_stdio_pipe_closed(void)
{
    g_autofree char *out = stdio_monitor_session(NULL, "info pci\n");

    g_assert_cmpstr(out, ==, "0000:00:1a.0 -> 00:04.0\n" GREETING
                             "PCI bus 0:\n"
                             "  04.0 8086:3a37 class 0c03 rev 00 header 00 host 0000:00:1a.0\n"
                             "    INTA -> link 0, line 0\n"
                             "    BAR4 io    0x00000000 size 0x20\n"
                             "Pass-through options:\n"
                             "  04.0 host 0000:00:1a.0 msitranslate=0 power_mgmt=0 permissive=0 map=identity\n"
                             "(qemu) ");
}

static void test_stdio_pipe_empty(void)
{
    g_autofree char *out = stdio_monitor_session(NULL, "");

    g_assert_cmpstr(out, ==, "0000:00:1a.0 -> 00:04.0\n" GREETING);
}

/* qemu-dm started with no stdin: the files it opens must not become its
 * monitor's input (the host tree's config files read as commands). */
static void test_stdio_closed(void)
{
    g_autofree char *out = stdio_monitor_session("", NULL);

    g_assert_cmpstr(out, ==, "0000:00:1a.0 -> 00:04.0\n" GREETING);
}

static void test_stdio_devnull(void)
{
    g_autofree char *out = stdio_monitor_session("/dev/null", NULL);

    g_assert_cmpstr(out, ==, "0000:00:1a.0 -> 00:04.0\n" GREETING);
}

/* A file whose last line has no newline: that line still runs. */
static void test_stdio_file(void)
{
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("monitor-input-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_assert_true(g_file_set_contents(path, "help\npci_del 04", -1, NULL));
    g_autofree char *out = stdio_monitor_session(path, NULL);
    g_assert_true(g_str_has_prefix(out, "0000:00:1a.0 -> 00:04.0\n" GREETING "info pci "));
    g_assert_true(g_str_has_suffix(out, "(qemu) removed guest slot 04 (1 function)\n(qemu) "));
    g_unlink(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/monitor/add-info-del", test_add_info_del);
    g_test_add_func("/monitor/errors-change-nothing", test_errors_change_nothing);
    g_test_add_func("/monitor/info-host-failures", test_info_host_failures);
    g_test_add_func("/monitor/refusal-keeps-cause", test_refusal_keeps_cause);
    g_test_add_func("/monitor/dump-help-quit", test_dump_help_quit);
    g_test_add_func("/monitor/policy-as-dry-run", test_policy_as_dry_run);
    g_test_add_func("/monitor/qemu-dm-unix-socket", test_qemu_dm_unix_monitor);
    g_test_add_func("/monitor/qemu-dm-unix-client-hangs-up", test_qemu_dm_unix_client_hangs_up);
    g_test_add_func("/monitor/stdio-eof/pipe-closed", test_stdio_pipe_closed);
    g_test_add_func("/monitor/stdio-eof/pipe-empty", test_stdio_pipe_empty);
    g_test_add_func("/monitor/stdio-eof/dev-null", test_stdio_devnull);
    g_test_add_func("/monitor/stdio-eof/file", test_stdio_file);
    g_test_add_func("/monitor/stdio-eof/stdin-closed", test_stdio_closed);
    alarm(120);     /* a hung qemu-dm fails the run instead of stalling it */
    return g_test_run();
}
