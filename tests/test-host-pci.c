/*
 * host-pci through libpci on simulated hosts: what qemu-dm learns about a
 * host function (present functions, config bytes, BARs, driver) must be
 * what the real dump says, and libpci's failures must come back as errors.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pci/pci.h>

#include "dm-log.h"
#include "host-dump.h"
#include "host-pci.h"

#define HOSTS SRCDIR "/tests/data/hosts"

#define BDF(b, d, f) ((PtBdf){ .domain = 0, .bus = (b), .dev = (d), .func = (f) })

typedef struct Fixture {
    char *tmp;
    char *tree;
    HostDump dump;
    HostPci *host;
} Fixture;

/* Functions the fixtures bind to pciback, as simhost --assignable would. */
static const PtBdf assign[] = { BDF(0x00, 0x1a, 0), BDF(0x00, 0x1d, 7) };

static void setup(Fixture *f, gconstpointer data)
{
    char *path = g_strdup_printf(HOSTS "/%s.lspci", (const char *)data);
    char *sizes = g_strdup_printf(HOSTS "/%s.sizes", (const char *)data);
    PtError err = { "" };

    f->tmp = g_dir_make_tmp("host-pci-XXXXXX", NULL);
    g_assert_nonnull(f->tmp);
    f->tree = g_build_filename(f->tmp, "host", NULL);
    if (host_dump_load(path, &f->dump, &err) ||
        (g_file_test(sizes, G_FILE_TEST_EXISTS) &&
         host_dump_apply_sizes(&f->dump, sizes, &err)) ||
        host_sim_write(&f->dump, f->tree, NULL, 0, &err))
        g_error("%s", err.msg);
    f->host = host_pci_open(f->tree, &err);
    if (!f->host)
        g_error("%s", err.msg);
    g_free(path);
    g_free(sizes);
}

/* The ASUS tree with 00:1a.0 and 00:1d.7 bound to pciback. */
static void setup_assigned(Fixture *f, gconstpointer data)
{
    char *path = g_strdup_printf(HOSTS "/%s.lspci", (const char *)data);
    PtError err = { "" };

    f->tmp = g_dir_make_tmp("host-pci-XXXXXX", NULL);
    f->tree = g_build_filename(f->tmp, "host", NULL);
    if (host_dump_load(path, &f->dump, &err) ||
        host_sim_write(&f->dump, f->tree, assign, G_N_ELEMENTS(assign), &err))
        g_error("%s", err.msg);
    f->host = host_pci_open(f->tree, &err);
    if (!f->host)
        g_error("%s", err.msg);
    g_free(path);
}

static void teardown(Fixture *f, gconstpointer data)
{
    (void)data;
    host_pci_close(f->host);
    g_assert_cmpint(host_sim_remove(f->tmp), ==, 0);
    host_dump_free(&f->dump);
    g_free(f->tree);
    g_free(f->tmp);
}

static HostFunc *open_func(Fixture *f, PtBdf bdf)
{
    PtError err = { "" };
    HostFunc *fn = host_func_open(f->host, bdf, &err);

    if (!fn)
        g_error("%s", err.msg);
    return fn;
}

typedef struct MaskCase {
    const char *dump;
    uint8_t bus, dev, mask;
} MaskCase;

static const MaskCase mask_cases[] = {
    { "asus-p6t6-x58-ich10-gt218", 0x00, 0x1a, 0x87 },
    { "asus-p6t6-x58-ich10-gt218", 0x00, 0x1d, 0x87 },
    { "asus-p6t6-x58-ich10-gt218", 0xff, 0x03, 0x13 },
    { "asus-p6t6-x58-ich10-gt218", 0x06, 0x00, 0x03 },
    { "asus-p6t6-x58-ich10-gt218", 0x00, 0x1e, 0x01 },
    { "asus-p6t6-x58-ich10-gt218", 0x00, 0x02, 0x00 },
    { "gigabyte-ich7m-rootports", 0x00, 0x1d, 0x8f },
    { "gigabyte-ich7m-rootports", 0x00, 0x1c, 0x0f },
    { "constructed-ich7-usb-0123457", 0x00, 0x1d, 0xaf },
};

static void test_masks(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mask_cases); i++) {
        const MaskCase *c = &mask_cases[i];
        Fixture f;

        setup(&f, c->dump);
        g_assert_cmphex(host_pci_present_funcs(f.host, 0, c->bus, c->dev), ==, c->mask);
        g_assert_cmphex(host_pci_present_funcs(f.host, 1, c->bus, c->dev), ==, 0);
        teardown(&f, NULL);
    }
}

/* Every function, in strictly increasing BDF order. */
static void test_listing(Fixture *f, gconstpointer data)
{
    uint32_t prev = 0;

    (void)data;
    g_assert_cmpint(host_pci_count(f->host), ==, f->dump.nfuncs);
    for (int i = 0; i < host_pci_count(f->host); i++) {
        PtBdf b = host_pci_bdf_at(f->host, i);
        uint32_t key = (uint32_t)b.domain << 16 | b.bus << 8 | b.dev << 3 | b.func;

        g_assert_nonnull(host_dump_find(&f->dump, b));
        if (i)
            g_assert_cmphex(key, >, prev);
        prev = key;
    }
}

/* Config reads equal the dump, at the size the host exposes. */
static void test_config(Fixture *f, gconstpointer data)
{
    (void)data;
    for (int i = 0; i < f->dump.nfuncs; i++) {
        const DumpFunc *d = &f->dump.funcs[i];
        HostFunc *fn = open_func(f, d->bdf);
        unsigned size = d->config_len == 4096 ? 4096 : 256;
        uint8_t buf[4096];

        g_assert_cmpuint(host_func_config_size(fn), ==, size);
        g_assert_cmpint(host_func_read(fn, 0, buf, d->config_len), ==, 0);
        g_assert_cmpmem(buf, d->config_len, d->config, d->config_len);
        g_assert_cmpint(host_func_read(fn, PCI_VENDOR_ID, buf, 2), ==, 0);
        g_assert_cmpmem(buf, 2, d->config + PCI_VENDOR_ID, 2);
        host_func_close(fn);
    }
}

typedef struct BarCase {
    const char *dump;
    PtBdf bdf;
    int index;
    PtBar want;
    const char *what;
} BarCase;

static const BarCase bar_cases[] = {
    { "gigabyte-ich7m-rootports", BDF(0x00, 0x1d, 0), 4,
      { .base = 0x6080, .size = 32, .io = true }, "ICH7 UHCI I/O BAR4" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x00, 0x1d, 0), 4,
      { .base = 0xa080, .size = 32, .io = true }, "ICH10 UHCI I/O BAR4 (sidecar)" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x00, 0x1d, 7), 0,
      { .base = 0xf9efe000, .size = 1024 }, "ICH10 EHCI mem32 BAR0" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x06, 0x00, 0), 1,
      { .base = 0xd0000000, .size = 256u << 20, .mem64 = true, .prefetch = true },
      "GT218 64-bit prefetchable BAR1" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x06, 0x00, 0), 2, { 0 }, "GT218 BAR1 upper half" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x06, 0x00, 0), 3,
      { .base = 0xce000000, .size = 32u << 20, .mem64 = true, .prefetch = true },
      "GT218 64-bit prefetchable BAR3" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x06, 0x00, 0), 5,
      { .base = 0xcc00, .size = 128, .io = true }, "GT218 I/O BAR5" },
    { "asus-p6t6-x58-ich10-gt218", BDF(0x06, 0x00, 0), PCI_BAR_ROM,
      { .base = 0xfbc00000, .size = 512u << 10 }, "GT218 ROM" },
    { "intel-82576-sriov", BDF(0x01, 0x00, 0), 3,
      { .base = 0xe0840000, .size = 16u << 10 }, "82576 BAR3 (MSI-X table)" },
    { "intel-82576-sriov", BDF(0x01, 0x00, 0), PCI_BAR_ROM,
      { .base = 0xc7800000, .size = 4u << 20 }, "82576 ROM" },
    { "amd-fiji-rebar", BDF(0x09, 0x00, 0), 0,
      { .base = 0xe0000000, .size = 256u << 20, .mem64 = true, .prefetch = true },
      "Fiji BAR0 (Resizable BAR size)" },
};

static void assert_bar(const PtBar *got, const PtBar *want, const char *what)
{
    if (got->base != want->base || got->size != want->size || got->io != want->io ||
        got->mem64 != want->mem64 || got->prefetch != want->prefetch)
        g_error("%s: got base %#" G_GINT64_MODIFIER "x size %#" G_GINT64_MODIFIER "x "
                "io %d mem64 %d pref %d; want base %#" G_GINT64_MODIFIER "x size %#"
                G_GINT64_MODIFIER "x io %d mem64 %d pref %d", what,
                got->base, got->size, got->io, got->mem64, got->prefetch,
                want->base, want->size, want->io, want->mem64, want->prefetch);
}

static void test_bars(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bar_cases); i++) {
        const BarCase *c = &bar_cases[i];
        PtBar got, facts[PCI_NUM_BARS];
        Fixture f;
        HostFunc *fn;

        setup(&f, c->dump);
        fn = open_func(&f, c->bdf);
        host_func_bar(fn, c->index, &got);
        assert_bar(&got, &c->want, c->what);
        /* The same facts as the parsed dump gives them. */
        host_dump_bars(host_dump_find(&f.dump, c->bdf), facts);
        assert_bar(&got, &facts[c->index], c->what);
        host_func_close(fn);
        teardown(&f, NULL);
    }
}

/* The IRQ simhost writes: the text's, else the BIOS line of a pinned function. */
static int dump_irq(const DumpFunc *d)
{
    if (d->irq)
        return d->irq;
    return d->config[PCI_INTERRUPT_PIN] ? d->config[PCI_INTERRUPT_LINE] : 0;
}

/* Every BAR and IRQ of every function of a -vvv machine equals the dump's. */
static void test_bars_all(Fixture *f, gconstpointer data)
{
    (void)data;
    for (int i = 0; i < f->dump.nfuncs; i++) {
        const DumpFunc *d = &f->dump.funcs[i];
        HostFunc *fn = open_func(f, d->bdf);
        PtBar facts[PCI_NUM_BARS];

        host_dump_bars(d, facts);
        for (int b = 0; b < PCI_NUM_BARS; b++) {
            PtBar got;
            char what[64];

            host_func_bar(fn, b, &got);
            snprintf(what, sizeof(what), "%02x:%02x.%x BAR %d", d->bdf.bus, d->bdf.dev,
                     d->bdf.func, b);
            /* Neither address nor size: unimplemented, whatever the type bits. */
            if (!facts[b].base && !facts[b].size)
                facts[b] = (PtBar){ 0 };
            /* libpci 3.9 sizes a resource only when its end is above its
             * start: the 1-byte legacy IDE ports read as size 0. */
            if (facts[b].size == 1)
                facts[b].size = 0;
            assert_bar(&got, &facts[b], what);
        }
        g_assert_cmpint(host_func_irq(fn), ==, dump_irq(d));
        host_func_close(fn);
    }
}

static void test_driver(Fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_cmpstr(host_pci_driver(f->host, BDF(0x00, 0x1a, 0)), ==, "pciback");
    g_assert_true(host_pci_assignable(f->host, BDF(0x00, 0x1a, 0)));
    g_assert_cmpstr(host_pci_driver(f->host, BDF(0x00, 0x1d, 7)), ==, "pciback");
    g_assert_true(host_pci_assignable(f->host, BDF(0x00, 0x1d, 7)));
    /* A hex-only dump names no drivers. */
    g_assert_null(host_pci_driver(f->host, BDF(0x00, 0x1a, 1)));
    g_assert_false(host_pci_assignable(f->host, BDF(0x00, 0x1a, 1)));
    g_assert_null(host_pci_driver(f->host, BDF(0x00, 0x1f, 7)));
    g_assert_false(host_pci_assignable(f->host, BDF(0x00, 0x1f, 7)));
}

/* The dump's own driver; pci-stub counts as assignable too. */
static void test_driver_text(Fixture *f, gconstpointer data)
{
    char *link = g_build_filename(f->tree, "devices", "0000:00:1d.1", "driver", NULL);
    char *stub = g_build_filename(f->tree, "drivers", "pci-stub", NULL);
    PtError err = { "" };

    (void)data;
    g_assert_cmpstr(host_pci_driver(f->host, BDF(0x00, 0x1d, 0)), ==, "uhci_hcd");
    g_assert_false(host_pci_assignable(f->host, BDF(0x00, 0x1d, 0)));
    g_assert_cmpstr(host_pci_driver(f->host, BDF(0x00, 0x1d, 7)), ==, "ehci_hcd");
    /* The simulated host has pci-stub loaded already (hw/host-sim.h). */
    g_assert_true(g_file_test(stub, G_FILE_TEST_IS_DIR));
    g_assert_cmpint(g_unlink(link), ==, 0);
    g_assert_cmpint(symlink("../../drivers/pci-stub", link), ==, 0);
    host_pci_close(f->host);
    f->host = host_pci_open(f->tree, &err);
    g_assert_nonnull(f->host);
    g_assert_cmpstr(host_pci_driver(f->host, BDF(0x00, 0x1d, 1)), ==, "pci-stub");
    g_assert_true(host_pci_assignable(f->host, BDF(0x00, 0x1d, 1)));
    g_free(link);
    g_free(stub);
}

/* Writes reach the tree's config file; reads and writes are counted. */
static void test_write_and_count(Fixture *f, gconstpointer data)
{
    HostFunc *fn = open_func(f, BDF(0x00, 0x1d, 7));
    char *path = g_build_filename(f->tree, "devices", "0000:00:1d.7", "config", NULL);
    const uint8_t cmd[2] = { 0x07, 0x01 };
    uint8_t buf[4];
    char *file;
    gsize len;
    HostCounters c;

    (void)data;
    c = host_func_counters(fn);
    g_assert_cmpuint(c.reads, ==, 0);
    g_assert_cmpuint(c.writes, ==, 0);
    g_assert_cmpint(host_func_write(fn, PCI_COMMAND, cmd, sizeof(cmd)), ==, 0);
    g_assert_true(g_file_get_contents(path, &file, &len, NULL));
    g_assert_cmpuint(len, ==, 256);
    g_assert_cmpmem(file + PCI_COMMAND, 2, cmd, 2);
    /* Only those two bytes changed. */
    memcpy(buf, host_dump_find(&f->dump, BDF(0x00, 0x1d, 7))->config, 4);
    g_assert_cmpmem(file, 4, buf, 4);
    g_assert_cmpmem(file + 4 + 2, 256 - 6,
                    host_dump_find(&f->dump, BDF(0x00, 0x1d, 7))->config + 6, 256 - 6);
    g_free(file);
    g_assert_cmpint(host_func_read(fn, PCI_COMMAND, buf, 2), ==, 0);
    g_assert_cmpmem(buf, 2, cmd, 2);
    g_assert_cmpint(host_func_read(fn, PCI_VENDOR_ID, buf, 4), ==, 0);
    /* Outside the config space: refused, and not counted. */
    g_assert_cmpint(host_func_read(fn, 254, buf, 4), ==, -EINVAL);
    g_assert_cmpint(host_func_write(fn, 256, cmd, 1), ==, -EINVAL);
    c = host_func_counters(fn);
    g_assert_cmpuint(c.reads, ==, 2);
    g_assert_cmpuint(c.writes, ==, 1);
    host_func_close(fn);
    g_free(path);
}

static void test_open_absent(Fixture *f, gconstpointer data)
{
    PtError err = { "" };

    (void)data;
    g_assert_null(host_func_open(f->host, BDF(0x00, 0x1d, 4), &err));
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.4: no such function on the host");
}

static void test_missing_dir(void)
{
    PtError err = { "" };

    g_assert_null(host_pci_open("/nonexistent/simhost", &err));
    g_assert_cmpstr(err.msg, ==, "/nonexistent/simhost/devices: No such file or directory");
}

/* libpci's fatal error (a function without its files) returns, not exits. */
static void test_broken_tree(void)
{
    char *tmp = g_dir_make_tmp("host-pci-XXXXXX", NULL);
    char *dev = g_build_filename(tmp, "devices", "0000:00:00.0", NULL);
    char *good = g_build_filename(tmp, "good", NULL);
    PtError err = { "" };
    HostDump dump;
    HostPci *host;

    g_assert_cmpint(g_mkdir_with_parents(dev, 0755), ==, 0);
    g_assert_null(host_pci_open(tmp, &err));
    g_assert_true(g_str_has_prefix(err.msg, tmp));
    g_assert_nonnull(strstr(err.msg, "Cannot open"));
    /* After the failure, libpci still serves a good tree. */
    g_assert_cmpint(host_dump_load(HOSTS "/constructed-ich7-usb-0123457.lspci", &dump, &err),
                    ==, 0);
    g_assert_cmpint(host_sim_write(&dump, good, NULL, 0, &err), ==, 0);
    host = host_pci_open(good, &err);
    g_assert_nonnull(host);
    g_assert_cmphex(host_pci_present_funcs(host, 0, 0x00, 0x1d), ==, 0xaf);
    host_pci_close(host);
    host_dump_free(&dump);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(good);
    g_free(dev);
    g_free(tmp);
}

static void collect_line(const char *line, void *opaque)
{
    g_ptr_array_add(opaque, g_strdup(line));
}

/* A function's files cut or gone after open: each failed access is
 * refused with the host's cause and counted; the log says it once per
 * function, not per access; a caller's bad access is not a host failure. */
static void test_failures_counted(Fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(g_free);
    HostFunc *ehci = open_func(f, BDF(0x00, 0x1d, 7)), *uhci = open_func(f, BDF(0x00, 0x1d, 0));
    g_autofree char *cfg = g_build_filename(f->tree, "devices", "0000:00:1d.7", "config", NULL);
    g_autofree char *res = g_build_filename(f->tree, "devices", "0000:00:1d.7", "resource0", NULL);
    g_autofree char *ucfg = g_build_filename(f->tree, "devices", "0000:00:1d.0", "config", NULL);
    uint8_t buf[4] = { 0 };

    (void)data;
    g_assert_cmpint(host_func_read(ehci, PCI_VENDOR_ID, buf, 4), ==, 0);
    g_assert_cmpint(host_func_bar_read(ehci, 0, 0, buf, 4), ==, 0);
    g_assert_cmpstr(host_func_error(ehci), ==, "");
    dm_log_set_sink(collect_line, log);
    g_assert_cmpint(truncate(cfg, 0x10), ==, 0);
    for (int i = 0; i < 3; i++)
        g_assert_cmpint(host_func_read(ehci, 0x40, buf, 4), ==, -EIO);
    g_assert_cmpint(g_unlink(res), ==, 0);
    g_assert_cmpint(host_func_bar_read(ehci, 0, 0, buf, 4), ==, -ENOENT);
    g_assert_cmpint(host_func_bar_write(ehci, 0, 4, buf, 4), ==, -ENOENT);
    /* Outside the config space or the BAR: the caller's mistake, not counted. */
    g_assert_cmpint(host_func_read(ehci, 254, buf, 4), ==, -EINVAL);
    g_assert_cmpint(host_func_bar_read(ehci, 0, 0x400, buf, 4), ==, -EINVAL);
    HostCounters c = host_func_counters(ehci);
    g_assert_cmpuint(c.failures, ==, 5);
    g_assert_cmpuint(c.reads, ==, 1);
    g_assert_cmpstr(host_func_error(ehci), ==, "config read of 4 bytes at 0x040: short read");
    g_assert_cmpuint(log->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(log, 0), ==, "0000:00:1d.7: host access failed: config "
                    "read of 4 bytes at 0x040: short read (later failures of this function are "
                    "counted, not logged)");
    /* Another function's first failure is its own line. */
    g_assert_cmpint(truncate(ucfg, 0), ==, 0);
    g_assert_cmpint(host_func_read(uhci, 0, buf, 2), ==, -EIO);
    g_assert_cmpuint(host_func_counters(uhci).failures, ==, 1);
    g_assert_cmpuint(log->len, ==, 2);
    g_assert_nonnull(strstr(g_ptr_array_index(log, 1), "0000:00:1d.0: host access failed"));
    dm_log_set_sink(NULL, NULL);
    host_func_close(ehci);
    host_func_close(uhci);
}

#define ADD(path, data, fn, set) \
    g_test_add(path, Fixture, data, set, fn, teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/host-pci/present-masks", test_masks);
    ADD("/host-pci/listing", "asus-p6t6-x58-ich10-gt218", test_listing, setup);
    ADD("/host-pci/config/asus", "asus-p6t6-x58-ich10-gt218", test_config, setup);
    ADD("/host-pci/config/fiji", "amd-fiji-rebar", test_config, setup);
    ADD("/host-pci/config/constructed", "constructed-ich7-usb-0123457", test_config, setup);
    g_test_add_func("/host-pci/bars", test_bars);
    ADD("/host-pci/bars-all/samsung", "samsung-r730-gt216m", test_bars_all, setup);
    ADD("/host-pci/bars-all/ich7", "gigabyte-ich7m-rootports", test_bars_all, setup);
    ADD("/host-pci/driver/assignable", "asus-p6t6-x58-ich10-gt218", test_driver,
        setup_assigned);
    ADD("/host-pci/driver/text", "gigabyte-ich7m-rootports", test_driver_text, setup);
    ADD("/host-pci/write-and-count", "constructed-ich7-usb-0123457", test_write_and_count,
        setup);
    ADD("/host-pci/failures-counted-logged-once", "asus-p6t6-x58-ich10-gt218",
        test_failures_counted, setup);
    ADD("/host-pci/open-absent", "constructed-ich7-usb-0123457", test_open_absent, setup);
    g_test_add_func("/host-pci/missing-dir", test_missing_dir);
    g_test_add_func("/host-pci/broken-tree", test_broken_tree);
    return g_test_run();
}
