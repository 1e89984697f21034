/*
 * simhost: build a simulated host (a /sys/bus/pci-shaped tree) from real
 * lspci text, for qemu-dm's tests and for anyone who wants to look at it
 * with `lspci -A linux-sysfs -O sysfs.path=DIR`.
 *
 *   simhost DUMP DIR [--sizes FILE] [--assignable BDF,...] [--all-assignable]
 *
 * The tree is written next to DIR under a temporary name and renamed into
 * place, so a failure never leaves a half-written DIR behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "host-dump.h"

#define EXIT_BAD_INPUT 2

typedef struct Options {
    char *sizes;
    char *assignable;
    gboolean all_assignable;
} Options;

static int parse_list(const char *text, const HostDump *dump, bool all,
                      GArray *out, PtError *err)
{
    char **items;
    int rc = 0;

    if (all) {
        for (int i = 0; i < dump->nfuncs; i++)
            g_array_append_val(out, dump->funcs[i].bdf);
        return 0;
    }
    if (!text)
        return 0;
    items = g_strsplit(text, ",", -1);
    for (int i = 0; items[i] && !rc; i++) {
        const char *end;
        PtBdf bdf;

        if (!host_dump_parse_bdf(items[i], &end, &bdf) || *end != '\0') {
            pt_error_set(err,
                         "--assignable: '%s' is not a function address (BB:SS.F)", items[i]);
            rc = -EINVAL;
        } else {
            g_array_append_val(out, bdf);
        }
    }
    g_strfreev(items);
    return rc;
}

static void print_summary(const char *dump_path, const char *dir, const HostDump *dump,
                          const GArray *assignable)
{
    printf("%s: %d function%s from %s\n", dir, dump->nfuncs,
           dump->nfuncs == 1 ? "" : "s", dump_path);
    if (assignable->len && (int)assignable->len == dump->nfuncs) {
        printf("assignable (pciback): all %d\n", dump->nfuncs);
        return;
    }
    printf("assignable (pciback):");
    if (assignable->len == 0)
        printf(" none");
    for (guint i = 0; i < assignable->len; i++) {
        PtBdf b = g_array_index(assignable, PtBdf, i);
        printf(" %04x:%02x:%02x.%x", b.domain, b.bus, b.dev, b.func);
    }
    printf("\n");
}

/* lspci -x as a normal user gives 64 bytes: too little to pass through. */
static int refuse_short_config(const char *dump_path, const HostDump *dump, PtError *err)
{
    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *fn = &dump->funcs[i];
        char b[16];

        if (fn->config_len == 64) {
            pt_error_set(err, "%s:%u: %s: only 64 bytes of config space "
                         "(lspci -x, or not run as root: only root gets more than 64 bytes); "
                         "dump with `sudo lspci -vvv -xxxx`", dump_path, fn->line,
                         pt_bdf_format(fn->bdf, b, sizeof(b)));
            return -EINVAL;
        }
    }
    return 0;
}

static void report_skipped(const char *dump_path, const HostDump *dump)
{
    for (int i = 0; i < dump->nskipped; i++)
        fprintf(stderr, "simhost: %s:%u: skipped %s: %s\n", dump_path, dump->skipped[i].line,
                dump->skipped[i].why, dump->skipped[i].text);
}

/* Every BAR the dump shows but cannot size, then how to give sizes. */
static void warn_unsized(const HostDump *dump)
{
    int n = 0;

    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *fn = &dump->funcs[i];
        unsigned mask = host_dump_unsized_bars(fn);
        PtBar bars[PCI_NUM_BARS];

        host_dump_bars(fn, bars);
        for (int b = 0; b < PCI_NUM_BARS; b++) {
            char name[8], where[40], bdf[16];

            if (!(mask & (1u << b)))
                continue;
            snprintf(name, sizeof(name), b == PCI_BAR_ROM ? "ROM" : "BAR %d", b);
            if (bars[b].base)
                snprintf(where, sizeof(where), "at 0x%llx", (unsigned long long)bars[b].base);
            else
                snprintf(where, sizeof(where), "unassigned");
            fprintf(stderr, "simhost: warning: %s %s (%s, %s) has no size in the dump: "
                    "qemu-dm cannot pass it through\n", pt_bdf_format(fn->bdf, bdf, sizeof(bdf)),
                    name, bars[b].io ? "I/O" : "memory", where);
            n++;
        }
    }
    if (n)
        fprintf(stderr, "simhost: %d BAR%s without a size: give sizes in a --sizes FILE "
                "('BB:SS.F BAR SIZE' a line, e.g. '06:00.0 1 256M'), or use an "
                "`lspci -vvv -xxxx` dump, which states them\n", n, n == 1 ? "" : "s");
}

/* A function reading all ones: say what its simulated sysfs IDs will be. */
static void note_all_ones(const HostDump *dump)
{
    for (int i = 0; i < dump->nfuncs; i++) {
        const DumpFunc *fn = &dump->funcs[i];
        char cls[24] = "", bdf[16];

        if (!host_dump_reads_all_ones(fn))
            continue;
        fprintf(stderr, "simhost: %s reads all ones in the dump (powered off or absent): ",
                pt_bdf_format(fn->bdf, bdf, sizeof(bdf)));
        if (!fn->has_text_ids) {
            fprintf(stderr, "its device line names no IDs (dump with lspci -nn to keep "
                    "them), so it shows as ffff:ffff\n");
            continue;
        }
        if (fn->text_class >= 0)
            snprintf(cls, sizeof(cls), " class %04x", (unsigned)fn->text_class);
        fprintf(stderr, "keeping the IDs its device line names, %04x:%04x%s\n",
                fn->text_vendor, fn->text_device, cls);
    }
}

/* Write into a fresh sibling of dir, then rename it into place. */
static int write_tree(const HostDump *dump, const char *dir, const GArray *assignable,
                      PtError *err)
{
    char *tmp = g_strdup_printf("%s.tmp.XXXXXX", dir);
    int rc;

    if (!g_mkdtemp(tmp)) {
        pt_error_set(err, "%s: %s", dir, strerror(errno));
        g_free(tmp);
        return -errno;
    }
    rc = host_sim_write(dump, tmp, (const PtBdf *)(void *)assignable->data,
                        (int)assignable->len, err);
    if (!rc && rename(tmp, dir) < 0) {
        rc = -errno;
        pt_error_set(err, "%s: %s%s", dir, strerror(errno),
                     errno == ENOTEMPTY || errno == EEXIST ? " (remove it first)" : "");
    }
    if (rc)
        host_sim_remove(tmp);
    g_free(tmp);
    return rc;
}

static int run(const char *dump_path, const char *dir, const Options *o)
{
    GArray *assignable = g_array_new(FALSE, FALSE, sizeof(PtBdf));
    HostDump dump = { 0 };
    PtError err = { "" };
    int status = EXIT_BAD_INPUT;

    if (host_dump_load(dump_path, &dump, &err) ||
        (o->sizes && host_dump_apply_sizes(&dump, o->sizes, &err)) ||
        parse_list(o->assignable, &dump, o->all_assignable, assignable, &err) ||
        refuse_short_config(dump_path, &dump, &err))
        goto out;
    for (guint i = 0; i < assignable->len; i++) {
        PtBdf b = g_array_index(assignable, PtBdf, i);
        if (!host_dump_find(&dump, b)) {
            pt_error_set(&err, "--assignable: %04x:%02x:%02x.%x is not in %s", b.domain, b.bus,
                         b.dev, b.func, dump_path);
            goto out;
        }
    }
    report_skipped(dump_path, &dump);
    warn_unsized(&dump);
    note_all_ones(&dump);
    if (write_tree(&dump, dir, assignable, &err)) {
        status = EXIT_FAILURE;
        goto out;
    }
    print_summary(dump_path, dir, &dump, assignable);
    status = EXIT_SUCCESS;
out:
    if (status != EXIT_SUCCESS)
        fprintf(stderr, "simhost: %s\n", err.msg);
    host_dump_free(&dump);
    g_array_free(assignable, TRUE);
    return status;
}

int main(int argc, char **argv)
{
    Options o = { 0 };
    GOptionEntry entries[] = {
        { "sizes", 0, 0, G_OPTION_ARG_FILENAME, &o.sizes,
          "BAR sizes for a hex-only dump (BB:SS.F BAR SIZE per line)", "FILE" },
        { "assignable", 0, 0, G_OPTION_ARG_STRING, &o.assignable,
          "bind these functions to pciback", "BDF,..." },
        { "all-assignable", 0, 0, G_OPTION_ARG_NONE, &o.all_assignable,
          "bind every function to pciback", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("DUMP DIR");
    GError *gerr = NULL;
    int status;

    g_option_context_set_summary(ctx, "Build a simulated /sys/bus/pci tree from "
                                 "`lspci -xxx` or `lspci -vvv -xxxx` text.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "simhost: %s\n", gerr->message);
        g_error_free(gerr);
        status = EXIT_BAD_INPUT;
    } else if (argc != 3) {
        fprintf(stderr, "simhost: usage: simhost DUMP DIR [--sizes FILE] "
                "[--assignable BDF,...] [--all-assignable]\n");
        status = EXIT_BAD_INPUT;
    } else if (o.assignable && o.all_assignable) {
        fprintf(stderr, "simhost: --assignable and --all-assignable exclude each other\n");
        status = EXIT_BAD_INPUT;
    } else {
        status = run(argv[1], argv[2], &o);
    }
    g_option_context_free(ctx);
    g_free(o.sizes);
    g_free(o.assignable);
    return status;
}
