#include "monitor.h"

#include <ctype.h>
#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct Monitor {
    MonitorTarget t;
    GIOChannel *in;             /* stdio or the current socket client */
    GIOChannel *out;
    guint in_watch;
    bool quitting;              /* no prompt after quit */
    GSocketService *service;
    GSocketConnection *client;
    char *socket_path;          /* removed at the end */
};

typedef int (*MonitorCmdFn)(Monitor *mon, const char *args, GString *out);

typedef struct MonitorCmd {
    const char *name;
    const char *args;
    MonitorCmdFn run;
    const char *help;
} MonitorCmd;

static int fail(GString *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int fail(GString *out, const char *fmt, ...)
{
    va_list ap;

    g_string_append(out, "error: ");
    va_start(ap, fmt);
    g_string_append_vprintf(out, fmt, ap);
    va_end(ap);
    g_string_append_c(out, '\n');
    return -1;
}

/* ---- commands ---- */

static void print_placement(const PtPlacement *pl, GString *out)
{
    for (int i = 0; i < pl->nfuncs; i++) {
        char bdf[16];
        g_string_append_printf(out, "%s -> 00:%02x.%x\n", pt_bdf_format(pl->host[i], bdf, sizeof(bdf)),
                               PT_SLOT(pl->vdevfn[i]), PT_FUNC(pl->vdevfn[i]));
    }
    if (pl->note[0])
        g_string_append_printf(out, "note: %s\n", pl->note);
}

static int cmd_pci_add(Monitor *mon, const char *args, GString *out)
{
    /* QEMU's classic form: pci_add pci_addr=auto host host=SPEC */
    static const char classic[] = "pci_addr=auto host host=";
    const char *spec = g_str_has_prefix(args, classic) ? args + strlen(classic) : args;
    PtPlan plan;
    PtError err;

    if (g_str_has_prefix(spec, "pci_addr="))
        return fail(out, "pci_add %s: only pci_addr=auto is supported (pci_add pci_addr=auto "
                    "host host=SPEC; the guest slot goes in SPEC as @VSLOT)", spec);
    if (!*spec)
        return fail(out, "pci_add needs a device spec, e.g. pci_add 0000:00:1d.0-2@7");
    if (pt_guest_attach(mon->t.guest, spec, &plan, &err) < 0)
        return fail(out, "%s", err.msg);
    print_placement(&plan.placement, out);
    return 0;
}

static int cmd_pci_del(Monitor *mon, const char *args, GString *out)
{
    unsigned slot;
    PtError err;
    int vslot, removed;

    if (!*args)
        return fail(out, "pci_del needs a device spec or a guest slot, e.g. pci_del 07");
    vslot = pt_vslot_parse(args, &slot) ? (int)slot
                                     : pt_guest_slot_of_spec(mon->t.guest, args, &err);
    if (vslot < 0)
        return fail(out, "%s", err.msg);
    removed = pt_guest_detach_slot(mon->t.guest, (unsigned)vslot, &err);
    if (removed < 0)
        return fail(out, "%s", err.msg);
    g_string_append_printf(out, "removed guest slot %02x (%d function%s)\n", vslot, removed,
                           removed == 1 ? "" : "s");
    return 0;
}

/* A function's options as they apply (an option not given is 0). */
static void append_function_options(const PtGuestFunc *f, GString *out)
{
    char bdf[16], opts[128];

    pt_options_format_applied(&f->opts, opts, sizeof(opts));
    g_string_append_printf(out, "  %02x.%x host %s %s\n", PT_SLOT(f->vdevfn), PT_FUNC(f->vdevfn),
                           pt_bdf_format(f->host, bdf, sizeof(bdf)), opts);
}

/* Every attached function's options, by guest slot.function. */
static void append_options(const PtGuest *g, GString *out)
{
    if (pt_guest_count(g))
        g_string_append(out, "Pass-through options:\n");
    for (int devfn = 0; devfn < PT_SLOTS * PT_FUNCS_PER_SLOT; devfn++)
        for (int i = 0; i < pt_guest_count(g); i++)
            if (pt_guest_func_at(g, i)->vdevfn == devfn)
                append_function_options(pt_guest_func_at(g, i), out);
}

/* Functions whose host accesses failed (their sysfs files gone or cut):
 * how many, and the first, which the log said once. */
static void append_host_failures(const PtGuest *g, GString *out)
{
    bool said = false;

    for (int i = 0; i < pt_guest_count(g); i++) {
        const PtGuestFunc *f = pt_guest_func_at(g, i);
        const HostFunc *h = pt_func_host(f->fn);
        unsigned long n = host_func_counters(h).failures;
        char bdf[16];
        if (!n)
            continue;
        if (!said)
            g_string_append(out, "Host access failures:\n");
        said = true;
        g_string_append_printf(out, "  %02x.%x host %s: %lu (first: %s)\n", PT_SLOT(f->vdevfn),
                               PT_FUNC(f->vdevfn), pt_bdf_format(f->host, bdf, sizeof(bdf)), n,
                               host_func_error(h));
    }
}

static int cmd_info(Monitor *mon, const char *args, GString *out)
{
    if (strcmp(args, "pci") != 0)
        return fail(out, "info what? (info pci)");
    g_autofree char *text = pci_bus_info(mon->t.bus);
    g_string_append(out, text);
    append_options(mon->t.guest, out);
    append_host_failures(mon->t.guest, out);
    return 0;
}

static int cmd_pci_dump(Monitor *mon, const char *args, GString *out)
{
    if (!*args)
        return fail(out, "pci_dump needs a file name");
    g_autofree char *text = pci_bus_dump_lspci(mon->t.bus);
    /* Written in place: an error names the file asked for, not a temporary one. */
    FILE *f = fopen(args, "w");
    int ok = f && fputs(text, f) >= 0;
    int saved = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok)
        return fail(out, "pci_dump %s: %s", args, strerror(saved));
    g_string_append_printf(out, "guest view written to %s (read it with lspci -F %s -vvv)\n",
                           args, args);
    return 0;
}

static int cmd_quit(Monitor *mon, const char *args, GString *out)
{
    (void)args, (void)out;
    mon->quitting = true;
    if (mon->t.quit)
        mon->t.quit(mon->t.opaque);
    return 0;
}

static int cmd_help(Monitor *mon, const char *args, GString *out);

static const MonitorCmd commands[] = {
    { "info", "pci", cmd_info, "guest PCI bus: slot.func, IDs, class, host BDF, BARs" },
    { "pci_add", "SPEC", cmd_pci_add,
      "pass through host functions (also: pci_add pci_addr=auto host host=SPEC)" },
    { "pci_del", "SPEC|VSLOT", cmd_pci_del, "remove the whole guest slot of a device" },
    { "pci_dump", "FILE", cmd_pci_dump, "write the guest's view in lspci -xxxx format" },
    { "help", "", cmd_help, "this list" },
    { "quit", "", cmd_quit, "stop qemu-dm" },
};

static int cmd_help(Monitor *mon, const char *args, GString *out)
{
    (void)mon, (void)args;
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_autofree char *left = g_strdup_printf("%s %s", commands[i].name, commands[i].args);
        g_string_append_printf(out, "%-22s %s\n", left, commands[i].help);
    }
    return 0;
}

int monitor_execute(Monitor *mon, const char *line, GString *out)
{
    g_autofree char *copy = g_strstrip(g_strdup(line));
    char *args = copy + strcspn(copy, " \t");

    if (!*copy)
        return 0;
    if (*args)
        *args++ = '\0';
    args = g_strstrip(args);
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        if (!strcmp(copy, commands[i].name))
            return commands[i].run(mon, args, out);
    return fail(out, "unknown command '%s' (try help)", copy);
}

/* ---- transports ---- */

Monitor *monitor_new(const MonitorTarget *target)
{
    Monitor *mon = g_new0(Monitor, 1);

    mon->t = *target;
    return mon;
}

static void send_text(Monitor *mon, const char *text)
{
    gsize written;

    if (!mon->out)
        return;
    g_io_channel_write_chars(mon->out, text, -1, &written, NULL);
    g_io_channel_flush(mon->out, NULL);
}

static gboolean on_input(GIOChannel *ch, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    g_autofree char *line = NULL;
    g_autoptr(GString) reply = g_string_new("");
    GIOStatus st = G_IO_STATUS_EOF;

    /* A pipe whose writer closed polls as HUP alone, never IN: that is the
     * end of input too, or the watch fires again at once, forever. */
    if (cond & G_IO_IN)
        st = g_io_channel_read_line(ch, &line, NULL, NULL, NULL);
    if (st == G_IO_STATUS_NORMAL && line) {
        monitor_execute(mon, line, reply);
        if (!mon->quitting)
            g_string_append(reply, "(qemu) ");
        send_text(mon, reply->str);
        return G_SOURCE_CONTINUE;
    }
    if (st == G_IO_STATUS_AGAIN)
        return G_SOURCE_CONTINUE;
    /* End of input: stdio quits; a socket client just goes away. */
    mon->in_watch = 0;
    if (mon->client) {
        g_clear_pointer(&mon->in, g_io_channel_unref);
        g_clear_pointer(&mon->out, g_io_channel_unref);
        g_clear_object(&mon->client);
    } else if (mon->t.quit) {
        mon->t.quit(mon->t.opaque);
    }
    return G_SOURCE_REMOVE;
}

static void serve_channel(Monitor *mon, GIOChannel *in, GIOChannel *out)
{
    mon->in = in;
    mon->out = out;
    g_io_channel_set_encoding(in, NULL, NULL);
    if (out != in)
        g_io_channel_set_encoding(out, NULL, NULL);
    mon->in_watch = g_io_add_watch(in, G_IO_IN | G_IO_HUP | G_IO_ERR | G_IO_NVAL,
                                   on_input, mon);
    send_text(mon, "qemu-dm monitor - type 'help' for more information\n(qemu) ");
}

void monitor_attach_stdio(Monitor *mon)
{
    serve_channel(mon, g_io_channel_unix_new(STDIN_FILENO), g_io_channel_unix_new(STDOUT_FILENO));
}

static gboolean on_client(GSocketService *service, GSocketConnection *conn, GObject *src,
                          gpointer opaque)
{
    Monitor *mon = opaque;
    int fd = g_socket_get_fd(g_socket_connection_get_socket(conn));

    (void)service, (void)src;
    if (mon->client) {
        const char busy[] = "error: the monitor already has a client\n";
        if (write(fd, busy, sizeof(busy) - 1) < 0) {
            /* The refused client is gone already; nothing to tell it. */
        }
        return TRUE;
    }
    mon->client = g_object_ref(conn);
    GIOChannel *ch = g_io_channel_unix_new(fd);
    serve_channel(mon, ch, g_io_channel_ref(ch));
    return TRUE;
}

int monitor_attach_unix(Monitor *mon, const char *path, GError **err)
{
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

    unlink(path);
    mon->service = g_socket_service_new();
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(mon->service), addr,
                                       G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                       NULL, err))
        return -1;
    g_signal_connect(mon->service, "incoming", G_CALLBACK(on_client), mon);
    g_socket_service_start(mon->service);
    mon->socket_path = g_strdup(path);
    return 0;
}

void monitor_free(Monitor *mon)
{
    if (!mon)
        return;
    if (mon->in_watch)
        g_source_remove(mon->in_watch);
    g_clear_pointer(&mon->in, g_io_channel_unref);
    g_clear_pointer(&mon->out, g_io_channel_unref);
    g_clear_object(&mon->client);
    if (mon->service) {
        g_socket_service_stop(mon->service);
        g_socket_listener_close(G_SOCKET_LISTENER(mon->service));
        g_object_unref(mon->service);
    }
    if (mon->socket_path)
        unlink(mon->socket_path);
    g_free(mon->socket_path);
    g_free(mon);
}
