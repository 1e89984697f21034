/*
 * Simulated hosts against real lspci: every bundled dump is written out as
 * a sysfs tree, and the real `lspci -A linux-sysfs` must read back the
 * dump's exact config bytes and every BAR size the dump (or its sidecar)
 * states.  The lspci text is read here with a scanner of its own, so the
 * comparison does not rest on the parser under test.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pci/pci.h>

#include "dm-log.h"
#include "host-dump.h"
#include "simtree.h"

#define HOSTS     SRCDIR "/tests/data/hosts"
#define BAD       HOSTS "/bad"
#define PASTED    HOSTS "/pasted"
#define SIMHOST   BUILDDIR "/simhost"
/* lspci -k's complaint on machines without kernel modules: not about us. */
#define KMOD_NOISE "lspci: Unable to load libkmod resources"

/* What lspci text says about one function. */
typedef struct Seen {
    GByteArray *config;
    uint64_t size[PCI_NUM_BARS];
} Seen;

static void seen_free(gpointer p)
{
    Seen *s = p;

    g_byte_array_unref(s->config);
    g_free(s);
}

static char *bdf_key(PtBdf b)
{
    return g_strdup_printf("%04x:%02x:%02x.%x", b.domain, b.bus, b.dev, b.func);
}

static uint64_t size_value(const char *num, const char *suffix)
{
    static const char units[] = "KMGT";
    uint64_t v = g_ascii_strtoull(num, NULL, 10);
    const char *u = *suffix ? strchr(units, *suffix) : NULL;

    return u ? v << (10 * (u - units + 1)) : v;
}

static void scan_hex(Seen *s, GMatchInfo *m)
{
    char *off = g_match_info_fetch(m, 1), *bytes = g_match_info_fetch(m, 2);
    char **b = g_strsplit(bytes, " ", -1);

    g_assert_cmpuint(g_ascii_strtoull(off, NULL, 16), ==, s->config->len);
    for (int i = 0; b[i]; i++) {
        guint8 v = (guint8)g_ascii_strtoull(b[i], NULL, 16);
        g_byte_array_append(s->config, &v, 1);
    }
    g_strfreev(b);
    g_free(off);
    g_free(bytes);
}

/* Groups first and first+1 of m are a "[size=..]" number and suffix. */
static void scan_size(Seen *s, GMatchInfo *m, int first, int index)
{
    char *num = g_match_info_fetch(m, first), *sfx = g_match_info_fetch(m, first + 1);

    s->size[index] = size_value(num, sfx);
    g_free(num);
    g_free(sfx);
}

/* g_regex_match always makes a match info: drop the last one first. */
static bool match(GRegex *re, const char *line, GMatchInfo **m)
{
    g_clear_pointer(m, g_match_info_free);
    return g_regex_match(re, line, 0, m);
}

/* lspci text -> "DDDD:BB:SS.F" -> Seen. */
static GHashTable *scan_lspci(const char *text)
{
    GRegex *hdr = g_regex_new("^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\\.([0-7]) ",
                              0, 0, NULL);
    GRegex *hex = g_regex_new("^([0-9a-f]{2,3}): ((?:[0-9a-f]{2} ){15}[0-9a-f]{2})$",
                              0, 0, NULL);
    GRegex *reg = g_regex_new("^\tRegion ([0-5]): .*\\[size=([0-9]+)([KMGT]?)\\]$", 0, 0, NULL);
    GRegex *rom = g_regex_new("^\tExpansion ROM at .*\\[size=([0-9]+)([KMGT]?)\\]$", 0, 0, NULL);
    GHashTable *all = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, seen_free);
    char **lines = g_strsplit(text, "\n", -1);
    Seen *cur = NULL;

    for (int i = 0; lines[i]; i++) {
        GMatchInfo *m = NULL;

        if (match(hdr, lines[i], &m)) {
            char *d = g_match_info_fetch(m, 1), *b = g_match_info_fetch(m, 2);
            char *s = g_match_info_fetch(m, 3), *f = g_match_info_fetch(m, 4);
            char *key = g_strdup_printf("%s:%s:%s.%s", *d ? d : "0000", b, s, f);

            g_assert_false(g_hash_table_contains(all, key));
            cur = g_new0(Seen, 1);
            cur->config = g_byte_array_new();
            g_hash_table_insert(all, key, cur);
            g_free(d); g_free(b); g_free(s); g_free(f);
        } else if (cur && match(hex, lines[i], &m)) {
            scan_hex(cur, m);
        } else if (cur && match(reg, lines[i], &m)) {
            char *idx = g_match_info_fetch(m, 1);
            scan_size(cur, m, 2, idx[0] - '0');
            g_free(idx);
        } else if (cur && match(rom, lines[i], &m)) {
            scan_size(cur, m, 1, PCI_BAR_ROM);
        }
        g_clear_pointer(&m, g_match_info_free);
    }
    g_strfreev(lines);
    g_regex_unref(hdr);
    g_regex_unref(hex);
    g_regex_unref(reg);
    g_regex_unref(rom);
    return all;
}

/* A dump with its sidecar applied, written to a fresh temporary tree. */
typedef struct Sim {
    char *name;
    char *path;
    char *tmp;
    char *tree;
    HostDump dump;
} Sim;

static void sim_setup(Sim *sim, const char *name)
{
    char *sizes = g_strdup_printf(HOSTS "/%s.sizes", name);
    PtError err = { "" };

    sim->name = g_strdup(name);
    sim->path = g_strdup_printf(HOSTS "/%s.lspci", name);
    sim->tmp = g_dir_make_tmp("simhost-XXXXXX", NULL);
    g_assert_nonnull(sim->tmp);
    sim->tree = g_build_filename(sim->tmp, "host", NULL);
    if (host_dump_load(sim->path, &sim->dump, &err) != 0)
        g_error("%s", err.msg);
    if (g_file_test(sizes, G_FILE_TEST_EXISTS) &&
        host_dump_apply_sizes(&sim->dump, sizes, &err) != 0)
        g_error("%s", err.msg);
    if (host_sim_write(&sim->dump, sim->tree, NULL, 0, &err) != 0)
        g_error("%s", err.msg);
    g_free(sizes);
}

static void sim_teardown(Sim *sim)
{
    g_assert_cmpint(host_sim_remove(sim->tmp), ==, 0);
    host_dump_free(&sim->dump);
    g_free(sim->name);
    g_free(sim->path);
    g_free(sim->tmp);
    g_free(sim->tree);
}

static int run(const char *const *argv, char **out, char **errout)
{
    GError *gerr = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      out, errout, &status, &gerr))
        g_error("%s: %s", argv[0], gerr->message);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Real lspci on the tree; it must exit 0 and complain about nothing of ours. */
static GHashTable *lspci(const Sim *sim, const char *opt)
{
    char *param = g_strdup_printf("sysfs.path=%s", sim->tree);
    const char *argv[] = { "lspci", "-A", "linux-sysfs", "-O", param, opt, NULL };
    char *out, *errout, **lines;
    GHashTable *seen;

    g_assert_cmpint(run(argv, &out, &errout), ==, 0);
    lines = g_strsplit(errout, "\n", -1);
    for (int i = 0; lines[i]; i++)
        if (lines[i][0] && !g_str_has_prefix(lines[i], KMOD_NOISE))
            g_error("lspci %s on %s: %s", opt, sim->name, lines[i]);
    g_strfreev(lines);
    seen = scan_lspci(out);
    g_free(out);
    g_free(errout);
    g_free(param);
    return seen;
}

static GHashTable *scan_file(const char *path)
{
    GHashTable *seen;
    char *text;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    seen = scan_lspci(text);
    g_free(text);
    return seen;
}

static void assert_config(const Seen *s, const DumpFunc *fn, unsigned len, const char *what)
{
    g_assert_nonnull(s);
    if (s->config->len != len || memcmp(s->config->data, fn->config, len) != 0)
        g_error("%s: config bytes differ (%u bytes seen, %u expected)", what,
                s->config->len, len);
}

/* -xxxx gives the whole dump, -xxx its first 256 bytes, per function. */
static void test_hex(gconstpointer data)
{
    Sim sim;
    GHashTable *orig, *full, *std;

    sim_setup(&sim, data);
    orig = scan_file(sim.path);
    full = lspci(&sim, "-xxxx");
    std = lspci(&sim, "-xxx");
    g_assert_cmpuint(g_hash_table_size(full), ==, (guint)sim.dump.nfuncs);
    g_assert_cmpuint(g_hash_table_size(orig), ==, (guint)sim.dump.nfuncs);
    for (int i = 0; i < sim.dump.nfuncs; i++) {
        const DumpFunc *fn = &sim.dump.funcs[i];
        char *key = bdf_key(fn->bdf);

        assert_config(g_hash_table_lookup(orig, key), fn, fn->config_len, key);
        assert_config(g_hash_table_lookup(full, key), fn, fn->config_len, key);
        assert_config(g_hash_table_lookup(std, key), fn, MIN(fn->config_len, 256u), key);
        g_free(key);
    }
    g_hash_table_unref(orig);
    g_hash_table_unref(full);
    g_hash_table_unref(std);
    sim_teardown(&sim);
}

/*
 * Every size the dump's text or sidecar states shows in lspci -vvv for that
 * function and region.  One exception: libpci 3.9 derives a size only when
 * a resource's end is above its start, so a 1-byte region (the legacy IDE
 * control ports of the ICH7 dump) cannot show "[size=1]".
 */
static void test_sizes(gconstpointer data)
{
    Sim sim;
    GHashTable *orig, *seen;
    int checked = 0;

    sim_setup(&sim, data);
    orig = scan_file(sim.path);
    seen = lspci(&sim, "-vvv");
    for (int i = 0; i < sim.dump.nfuncs; i++) {
        const DumpFunc *fn = &sim.dump.funcs[i];
        char *key = bdf_key(fn->bdf);
        const Seen *text = g_hash_table_lookup(orig, key), *got = g_hash_table_lookup(seen, key);

        g_assert_nonnull(got);
        for (int r = 0; r < PCI_NUM_BARS; r++) {
            uint64_t want = text->size[r] ? text->size[r] : fn->bar_size[r];

            if (text->size[r])      /* the parser read the text's size */
                g_assert_cmpuint(fn->bar_size[r], ==, text->size[r]);
            if (want < 2)
                continue;
            if (got->size[r] != want)
                g_error("%s %s region %d: lspci shows size %" G_GUINT64_FORMAT
                        ", the dump says %" G_GUINT64_FORMAT, sim.name, key, r,
                        got->size[r], want);
            checked++;
        }
        g_free(key);
    }
    g_assert_cmpint(checked, >, 0);
    g_hash_table_unref(orig);
    g_hash_table_unref(seen);
    sim_teardown(&sim);
}

/* The resource file line by line, for the BARs libpci turns into flags. */
static void test_resource_lines(void)
{
    Sim sim;
    char *path, *text, **lines;

    sim_setup(&sim, "asus-p6t6-x58-ich10-gt218");
    path = g_build_filename(sim.tree, "devices", "0000:06:00.0", "resource", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 13 + 1);     /* 6 BARs, ROM, 6 IOV */
    g_assert_cmpstr(lines[0], ==, "0x00000000fa000000 0x00000000faffffff 0x0000000000000200");
    g_assert_cmpstr(lines[1], ==, "0x00000000d0000000 0x00000000dfffffff 0x000000000010220c");
    g_assert_cmpstr(lines[2], ==, "0x0000000000000000 0x0000000000000000 0x0000000000000000");
    g_assert_cmpstr(lines[3], ==, "0x00000000ce000000 0x00000000cfffffff 0x000000000010220c");
    g_assert_cmpstr(lines[5], ==, "0x000000000000cc00 0x000000000000cc7f 0x0000000000000101");
    g_assert_cmpstr(lines[6], ==, "0x00000000fbc00000 0x00000000fbc7ffff 0x0000000000002200");
    g_strfreev(lines);
    g_free(text);
    g_free(path);
    /* A bridge adds its four windows: 00:07.0 forwards fa000000-fbcfffff. */
    path = g_build_filename(sim.tree, "devices", "0000:00:07.0", "resource", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 17 + 1);
    g_assert_cmpstr(lines[14], ==, "0x00000000fa000000 0x00000000fbcfffff 0x0000000000000200");
    g_strfreev(lines);
    g_free(text);
    g_free(path);
    sim_teardown(&sim);
}

/* A bridge's subsystem IDs live in its Subsystem ID capability (the ICH7-M
 * root ports: [90], 1458:1999), an endpoint's in the header (1458:1466 on
 * the HDA): sysfs shows each as Linux reads it. */
static void test_subsystem_ids(void)
{
    static const struct { const char *bdf, *file, *want; } cases[] = {
        { "0000:00:1c.0", "subsystem_vendor", "0x1458\n" },
        { "0000:00:1c.0", "subsystem_device", "0x1999\n" },
        { "0000:00:1b.0", "subsystem_device", "0x1466\n" },
    };
    g_autofree char *tree = simtree_build("gigabyte-ich7m-rootports.lspci", false);

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_build_filename(tree, "devices", cases[i].bdf, cases[i].file, NULL);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, cases[i].want);
    }
    simtree_remove(g_steal_pointer(&tree));
}

static void test_files(void)
{
    PtBdf ehci = { 0, 0x00, 0x1d, 7 };
    Sim sim;
    PtError err = { "" };
    char *tree, *path, *text, *link;
    struct stat st;

    sim_setup(&sim, "constructed-ich7-usb-0123457");
    tree = g_build_filename(sim.tmp, "assign", NULL);
    g_assert_cmpint(host_sim_write(&sim.dump, tree, &ehci, 1, &err), ==, 0);
    path = g_build_filename(tree, "devices", "0000:00:1d.7", "driver", NULL);
    link = g_file_read_link(path, NULL);
    g_assert_cmpstr(link, ==, "../../drivers/pciback");
    g_free(link);
    g_free(path);
    path = g_build_filename(tree, "devices", "0000:00:1d.5", "driver", NULL);
    link = g_file_read_link(path, NULL);
    g_assert_cmpstr(link, ==, "../../drivers/uhci_hcd");
    g_free(link);
    g_free(path);
    path = g_build_filename(tree, "devices", "0000:00:1d.5", "class", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, "0x0c0300\n");
    g_free(text);
    g_free(path);
    path = g_build_filename(tree, "devices", "0000:00:1d.7", "resource0", NULL);
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1024);
    g_free(path);
    /* A function that is not in the dump cannot be made assignable. */
    ehci.func = 6;
    g_assert_cmpint(host_sim_write(&sim.dump, tree, &ehci, 1, &err), ==, -ENOENT);
    g_assert_cmpstr(err.msg, ==, "0000:00:1d.6: assignable function is not in the dump");
    g_free(tree);
    sim_teardown(&sim);
}

/* Domain prefix, CRLF line ends and a virtual ROM, parsed from text. */
static void test_parse_forms(void)
{
    static const char text[] =
        "0001:02:03.4 VGA compatible controller: test\r\n"
        "\tInterrupt: pin A routed to IRQ 17\r\n"
        "\tRegion 0: Memory at f0000000 (32-bit, non-prefetchable) [size=16M]\r\n"
        "\tExpansion ROM at 000c0000 [virtual] [disabled] [size=128K]\r\n"
        "\tKernel driver in use: HDA Intel\r\n"
        "00: 86 80 00 01 07 00 10 00 01 00 00 03 00 00 00 00\r\n"
        "10: 00 00 00 f0 00 00 00 00 00 00 00 00 00 00 00 00\r\n"
        "20: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\r\n"
        "30: 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00\r\n";
    HostDump dump;
    PtBar bars[PCI_NUM_BARS];
    PtError err = { "" };
    const DumpFunc *fn;

    g_assert_cmpint(host_dump_parse(text, "forms", &dump, &err), ==, 0);
    g_assert_cmpint(dump.nfuncs, ==, 1);
    fn = &dump.funcs[0];
    g_assert_cmpuint(fn->bdf.domain, ==, 1);
    g_assert_cmpuint(fn->bdf.bus, ==, 2);
    g_assert_cmpuint(fn->bdf.dev, ==, 3);
    g_assert_cmpuint(fn->bdf.func, ==, 4);
    g_assert_cmpuint(fn->config_len, ==, 64);
    g_assert_cmpint(fn->irq, ==, 17);
    g_assert_cmpstr(fn->driver, ==, "HDA Intel");
    host_dump_bars(fn, bars);
    g_assert_cmphex(bars[0].base, ==, 0xf0000000);
    g_assert_cmphex(bars[0].size, ==, 16 << 20);
    g_assert_cmphex(bars[PCI_BAR_ROM].base, ==, 0xc0000);
    g_assert_cmphex(bars[PCI_BAR_ROM].size, ==, 128 << 10);
    host_dump_free(&dump);
}

typedef struct BadCase {
    const char *file;       /* in tests/data/hosts/bad */
    const char *dump;       /* for a sidecar: the dump it is applied to */
    const char *msg;        /* what follows "PATH:" */
} BadCase;

static const BadCase bad_cases[] = {
    { "bad-hex-byte.lspci", NULL, "4: bad hex byte 'zz' at offset 27" },
    { "short-row.lspci", NULL, "3: row 10 cut short: 15 of 16 bytes" },
    { "cut-row.lspci", NULL, "3: row 10 cut short: 1 of 16 bytes" },
    /* A message inside a row is cut out, but what follows is no rest of it. */
    { "pcilib-cut-row.lspci", NULL, "5: bad hex byte '6030:' at offset 21" },
    { "long-row.lspci", NULL, "3: junk after 16 bytes: ' 00'" },
    { "offset-order.lspci", NULL, "4: offset 30 out of order, expected 20 (row 20 missing)" },
    { "bad-offset.lspci", NULL, "3: bad offset '1000'" },
    { "hex-outside.lspci", NULL, "1: hex line outside a device" },
    { "hex-after-blank.lspci", NULL, "7: hex line outside a device" },
    { "duplicate.lspci", NULL, "7: duplicate function 0000:00:1d.0 (first at line 1)" },
    { "truncated.lspci", NULL,
      "1: 0000:00:1d.0: 48 bytes of config space, expected 64, 256 or 4096" },
    { "no-hex.lspci", NULL, "1: 0000:00:1d.0: no hex dump of config space" },
    { "bad-size.lspci", NULL, "3: bad size '[size=32Q]'" },
    { "bad-irq.lspci", NULL, "2: bad IRQ number '2x'" },
    { "bad-device.lspci", NULL,
      "1: unrecognised line (not a device address, a hex row or an indented detail)" },
    { "detail-after-hex.lspci", NULL, "6: detail line after the hex dump" },
    { "junk-line.lspci", NULL,
      "6: unrecognised line (not a device address, a hex row or an indented detail)" },
    { "empty.lspci", NULL, "1: no PCI functions in the dump" },
    { "misaligned.sizes", "constructed-ich7-usb-0123457",
      "2: size 0x10000 does not fit base 0x58344400 (misaligned)" },
    { "not-power-of-two.sizes", "constructed-ich7-usb-0123457",
      "1: size 0x30 is not a power of two" },
    { "unknown-function.sizes", "constructed-ich7-usb-0123457",
      "2: function 0000:00:1e.0 is not in the dump" },
    { "missing-field.sizes", "constructed-ich7-usb-0123457",
      "1: expected 'BB:SS.F BAR SIZE'" },
    { "bad-bar.sizes", "constructed-ich7-usb-0123457", "1: bad BAR '6', expected 0-5 or rom" },
    { "no-address.sizes", "constructed-ich7-usb-0123457",
      "1: BAR 0 is not implemented (the dump's -v text lists no such region)" },
    { "no-such-bar.sizes", "gigabyte-ich7m-rootports", "1: header type 01 has no BAR 3" },
    { "all-ones.sizes", "pasted/gt216m-audio-off",
      "1: the function reads all ones in the dump (powered off): it has no BARs to size" },

    { "upper-half.sizes", "asus-p6t6-x58-ich10-gt218",
      "2: BAR 2 is the upper half of 64-bit BAR 1" },
};

static void test_bad(gconstpointer data)
{
    const BadCase *c = data;
    char *path = g_build_filename(BAD, c->file, NULL);
    char *want = g_strdup_printf("%s:%s", path, c->msg);
    PtError err = { "" };
    HostDump dump;

    if (c->dump) {
        char *dpath = g_strdup_printf(HOSTS "/%s.lspci", c->dump);
        g_assert_cmpint(host_dump_load(dpath, &dump, &err), ==, 0);
        g_assert_cmpint(host_dump_apply_sizes(&dump, path, &err), ==, -EINVAL);
        host_dump_free(&dump);
        g_free(dpath);
    } else {
        g_assert_cmpint(host_dump_load(path, &dump, &err), ==, -EINVAL);
        g_assert_cmpint(dump.nfuncs, ==, 0);
        g_assert_null(dump.funcs);
    }
    g_assert_cmpstr(err.msg, ==, want);
    g_free(want);
    g_free(path);
}

typedef struct CliBad {
    const char *dump;
    const char *opt1, *opt2;
    const char *msg;        /* the whole stderr, after "simhost: " */
} CliBad;

static const CliBad cli_bad[];
static const size_t n_cli_bad;

/* bad/NAME is the dump of a simhost case. */
static bool cli_case_of(const char *name)
{
    char *path = g_build_filename(BAD, name, NULL);
    bool found = false;

    for (size_t i = 0; i < n_cli_bad; i++)
        found |= strcmp(cli_bad[i].dump, path) == 0;
    g_free(path);
    return found;
}

/* Every file in bad/ has a case, so none is silently untested. */
static void test_bad_all_listed(void)
{
    GDir *dir = g_dir_open(BAD, 0, NULL);
    const char *name;
    guint n = 0;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir))) {
        bool listed = false;
        for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++)
            listed |= strcmp(bad_cases[i].file, name) == 0;
        if (!listed && !cli_case_of(name))
            g_error("bad/%s has no test case", name);
        n += listed;
    }
    g_dir_close(dir);
    g_assert_cmpuint(n, ==, G_N_ELEMENTS(bad_cases));
}

static guint count_entries(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);
    guint n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir))
        n++;
    g_dir_close(dir);
    return n;
}

static int run_simhost(const char *dump, const char *tree, const char *opt1,
                       const char *opt2, char **out, char **errout)
{
    const char *argv[] = { SIMHOST, dump, tree, opt1, opt2, NULL };

    return run(argv, out, errout);
}

static void test_cli_ok(void)
{
    char *tmp = g_dir_make_tmp("simhost-cli-XXXXXX", NULL);
    char *tree = g_build_filename(tmp, "host", NULL), *out, *errout, *link, *path;

    g_assert_cmpint(run_simhost(HOSTS "/constructed-ich7-usb-0123457.lspci", tree,
                                "--assignable", "00:1d.0,0000:00:1d.7", &out, &errout), ==, 0);
    g_assert_cmpstr(errout, ==, "");
    g_assert_nonnull(strstr(out, ": 6 functions from "));
    g_assert_nonnull(strstr(out, "assignable (pciback): 0000:00:1d.0 0000:00:1d.7\n"));
    g_assert_cmpuint(count_entries(tmp), ==, 1);
    path = g_build_filename(tree, "devices", NULL);
    g_assert_cmpuint(count_entries(path), ==, 6);
    g_free(path);
    path = g_build_filename(tree, "devices", "0000:00:1d.0", "driver", NULL);
    link = g_file_read_link(path, NULL);
    g_assert_cmpstr(link, ==, "../../drivers/pciback");
    g_free(link);
    g_free(path);
    g_free(out);
    g_free(errout);
    /* Never over an existing tree: an error, and no temporary left over. */
    g_assert_cmpint(run_simhost(HOSTS "/constructed-ich7-usb-0123457.lspci", tree,
                                NULL, NULL, &out, &errout), ==, 1);
    g_assert_true(g_str_has_prefix(errout, "simhost: "));
    g_assert_nonnull(strstr(errout, "(remove it first)\n"));
    g_assert_cmpuint(count_entries(tmp), ==, 1);
    g_free(out);
    g_free(errout);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tree);
    g_free(tmp);
}

static const CliBad cli_bad[] = {
    /* The parser takes 64 bytes (the guest's own dumps); simhost does not. */
    { BAD "/lspci-x-user.lspci", NULL, NULL,
      BAD "/lspci-x-user.lspci:1: 0000:00:1d.0: only 64 bytes of config space (lspci -x, "
      "or not run as root: only root gets more than 64 bytes); dump with "
      "`sudo lspci -vvv -xxxx`" },
    { BAD "/duplicate.lspci", NULL, NULL,
      BAD "/duplicate.lspci:7: duplicate function 0000:00:1d.0 (first at line 1)" },
    { HOSTS "/constructed-ich7-usb-0123457.lspci", "--assignable", "00:1f.0",
      "--assignable: 0000:00:1f.0 is not in " HOSTS "/constructed-ich7-usb-0123457.lspci" },
    { HOSTS "/constructed-ich7-usb-0123457.lspci", "--assignable", "00:1d",
      "--assignable: '00:1d' is not a function address (BB:SS.F)" },
    { HOSTS "/constructed-ich7-usb-0123457.lspci", "--sizes", BAD "/misaligned.sizes",
      BAD "/misaligned.sizes:2: size 0x10000 does not fit base 0x58344400 (misaligned)" },
    { HOSTS "/no-such-dump.lspci", NULL, NULL,
      "Failed to open file “" HOSTS "/no-such-dump.lspci”: No such file or directory" },
};
static const size_t n_cli_bad = G_N_ELEMENTS(cli_bad);

/* Bad input: exit 2, one line on stderr, and nothing written. */
static void test_cli_bad(gconstpointer data)
{
    const CliBad *c = data;
    char *tmp = g_dir_make_tmp("simhost-cli-XXXXXX", NULL);
    char *tree = g_build_filename(tmp, "host", NULL), *out, *errout;
    char *want = g_strdup_printf("simhost: %s\n", c->msg);

    g_assert_cmpint(run_simhost(c->dump, tree, c->opt1, c->opt2, &out, &errout), ==, 2);
    g_assert_cmpstr(errout, ==, want);
    g_assert_cmpstr(out, ==, "");
    g_assert_cmpuint(count_entries(tmp), ==, 0);
    g_assert_cmpint(g_rmdir(tmp), ==, 0);
    g_free(want);
    g_free(out);
    g_free(errout);
    g_free(tree);
    g_free(tmp);
}

/* ---- dumps as people paste them ---- */

static void assert_same_funcs(const HostDump *a, const HostDump *b)
{
    g_assert_cmpint(a->nfuncs, ==, b->nfuncs);
    for (int i = 0; i < a->nfuncs; i++) {
        const DumpFunc *x = &a->funcs[i], *y = host_dump_find(b, a->funcs[i].bdf);

        g_assert_nonnull(y);
        g_assert_cmpuint(x->config_len, ==, y->config_len);
        g_assert_true(memcmp(x->config, y->config, x->config_len) == 0);
        g_assert_true(memcmp(x->bar_size, y->bar_size, sizeof(x->bar_size)) == 0);
        g_assert_true(memcmp(x->os_base, y->os_base, sizeof(x->os_base)) == 0);
        g_assert_cmpint(x->irq, ==, y->irq);
        g_assert_cmpstr(x->driver, ==, y->driver);
    }
}

/* The GT216M pair of the Samsung R730 with a comment, the command line,
 * lspci's libkmod complaint and pcilib's VPD message inside a hex row. */
static void test_pasted(void)
{
    static const struct { unsigned line; const char *why, *text; } skipped[] = {
        { 1, "a comment", "# GT216M of the Samsung R730, lspci as root (see PROVENANCE.md)" },
        { 2, "the lspci command line", "$ sudo lspci -vvvnnxxxx -s 02:00" },
        { 3, "a pcilib or lspci message", "lspci: Unable to load libkmod resources: error -2" },
        { 64, "a pcilib or lspci message", "pcilib: sysfs_read_vpd: read failed: No such device" },
    };
    HostDump pasted, orig, pair = { 0 };
    PtError err = { "" };

    g_assert_cmpint(host_dump_load(PASTED "/gt216m-pasted.lspci", &pasted, &err), ==, 0);
    g_assert_cmpint(host_dump_load(HOSTS "/samsung-r730-gt216m.lspci", &orig, &err), ==, 0);
    pair.funcs = g_new0(DumpFunc, 2);
    for (int i = 0; i < orig.nfuncs; i++)
        if (orig.funcs[i].bdf.bus == 2 && orig.funcs[i].bdf.dev == 0)
            pair.funcs[pair.nfuncs++] = orig.funcs[i];
    assert_same_funcs(&pair, &pasted);
    g_assert_cmpint(pasted.nskipped, ==, G_N_ELEMENTS(skipped));
    for (size_t i = 0; i < G_N_ELEMENTS(skipped); i++) {
        g_assert_cmpuint(pasted.skipped[i].line, ==, skipped[i].line);
        g_assert_cmpstr(pasted.skipped[i].why, ==, skipped[i].why);
        g_assert_cmpstr(pasted.skipped[i].text, ==, skipped[i].text);
    }
    g_assert_cmpint(orig.nskipped, ==, 0);
    g_free(pair.funcs);
    host_dump_free(&pasted);
    host_dump_free(&orig);
}

/* The forms a paste takes, each skipped and named; the rows rejoined;
 * blanks at a line's end (mail adds them) ignored. */
static void test_pasted_forms(void)
{
    static const char text[] =
        "lspci --vvxxx\n"
        "#\n"
        "root@box:~# lspci -xxx -s 00:1d.0\n"
        "00:1d.0 USB controller: Intel Corporation 82801G (ICH7 Family) USB UHCI #1\n"
        "00: 86 80 c8 27 05 00 80 02 02 00 03 0c 00 00 80 00pcilib: Cannot open x\n"
        "\n"
        "10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
        "20: 81 60 00 00 00 0pcilib: sysfs_read_vpd: read failed: No such device\n"
        "0 00 00 00 00 00 00 58 14 99 19\n"
        "pcilib: sysfs_read_vpd: read failed: No such device\n"
        "30: 00 00 00 00 00 00 00 00 00 00 00 00 0b 01 00 00 \t\n"
        "$ lspci -xxxx\n";
    static const unsigned lines[] = { 1, 2, 3, 5, 8, 10, 12 };
    static const uint8_t row20[16] = { 0x81, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0x58, 0x14, 0x99, 0x19 };
    HostDump dump;
    PtError err = { "" };

    g_assert_cmpint(host_dump_parse(text, "forms", &dump, &err), ==, 0);
    g_assert_cmpint(dump.nfuncs, ==, 1);
    g_assert_cmpuint(dump.funcs[0].config_len, ==, 64);
    g_assert_true(memcmp(dump.funcs[0].config + 0x20, row20, 16) == 0);
    g_assert_cmphex(dump.funcs[0].config[0x3c], ==, 0x0b);
    g_assert_cmpint(dump.nskipped, ==, G_N_ELEMENTS(lines));
    for (size_t i = 0; i < G_N_ELEMENTS(lines); i++)
        g_assert_cmpuint(dump.skipped[i].line, ==, lines[i]);
    g_assert_cmpstr(dump.skipped[0].why, ==, "the lspci command line");
    g_assert_cmpstr(dump.skipped[1].why, ==, "a comment");
    g_assert_cmpstr(dump.skipped[2].why, ==, "the lspci command line");
    g_assert_cmpstr(dump.skipped[4].text, ==, "pcilib: sysfs_read_vpd: read failed: No such device");
    host_dump_free(&dump);
}

/* Run simhost on DUMP into a fresh tree; returns the tree's parent. */
static char *simhost_ok(const char *dump, const char *sizes, char **out, char **errout)
{
    char *tmp = g_dir_make_tmp("simhost-cli-XXXXXX", NULL);
    char *tree = g_build_filename(tmp, "host", NULL);

    g_assert_cmpint(run_simhost(dump, tree, sizes ? "--sizes" : NULL, sizes, out, errout),
                    ==, 0);
    g_free(tree);
    return tmp;
}

static char *tree_file(const char *tmp, const char *bdf, const char *file)
{
    char *path = g_build_filename(tmp, "host", "devices", bdf, file, NULL), *text;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_free(path);
    return text;
}

/* simhost says which lines it skipped, one line each. */
static void test_pasted_cli(void)
{
    char *out, *errout, *tmp = simhost_ok(PASTED "/gt216m-pasted.lspci", NULL, &out, &errout);

    g_assert_cmpstr(errout, ==,
        "simhost: " PASTED "/gt216m-pasted.lspci:1: skipped a comment: "
        "# GT216M of the Samsung R730, lspci as root (see PROVENANCE.md)\n"
        "simhost: " PASTED "/gt216m-pasted.lspci:2: skipped the lspci command line: "
        "$ sudo lspci -vvvnnxxxx -s 02:00\n"
        "simhost: " PASTED "/gt216m-pasted.lspci:3: skipped a pcilib or lspci message: "
        "lspci: Unable to load libkmod resources: error -2\n"
        "simhost: " PASTED "/gt216m-pasted.lspci:64: skipped a pcilib or lspci message: "
        "pcilib: sysfs_read_vpd: read failed: No such device\n");
    g_assert_nonnull(strstr(out, ": 2 functions from "));
    g_free(out);
    g_free(errout);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tmp);
}

/* A dump without sizes: one warning a BAR, then how to give sizes. */
static void test_unsized_warnings(void)
{
    static const char hint[] = "BARs without a size: give sizes in a --sizes FILE "
        "('BB:SS.F BAR SIZE' a line, e.g. '06:00.0 1 256M'), or use an `lspci -vvv -xxxx` "
        "dump, which states them\n";
    char *out, *errout, *tmp, *want;

    tmp = simhost_ok(HOSTS "/asus-p6t6-x58-ich10-gt218.lspci", NULL, &out, &errout);
    g_assert_nonnull(strstr(errout, "simhost: warning: 0000:06:00.0 BAR 1 (memory, at "
                                    "0xd0000000) has no size in the dump: qemu-dm cannot "
                                    "pass it through\n"));
    g_assert_nonnull(strstr(errout, "simhost: warning: 0000:06:00.0 ROM (memory, at "
                                    "0xfbc00000) has no size"));
    g_assert_nonnull(strstr(errout, "simhost: warning: 0000:00:1d.0 BAR 4 (I/O, at 0xa080)"));
    want = g_strdup_printf("simhost: 33 %s", hint);
    g_assert_true(g_str_has_suffix(errout, want));
    g_free(want);
    g_free(out);
    g_free(errout);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tmp);
    /* The sidecar sizes 14 of them: the GT218 and USB BARs. */
    tmp = simhost_ok(HOSTS "/asus-p6t6-x58-ich10-gt218.lspci",
                     HOSTS "/asus-p6t6-x58-ich10-gt218.sizes", &out, &errout);
    g_assert_null(strstr(errout, "0000:06:00.0 BAR"));
    want = g_strdup_printf("simhost: 19 %s", hint);
    g_assert_true(g_str_has_suffix(errout, want));
    g_free(want);
    g_free(out);
    g_free(errout);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tmp);
}

/* Hex-only, BARs unassigned: 0 and 2 (64-bit) memory, 4 I/O, and the ROM. */
static const char unassigned_dump[] =
    "03:00.0 Non-Volatile memory controller: constructed\n"
    "00: 86 80 00 01 07 00 10 00 01 02 08 01 00 00 00 00\n"
    "10: 00 00 00 00 00 00 00 00 0c 00 00 00 00 00 00 00\n"
    "20: 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
    "30: 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00\n";

static char *write_tmp(const char *tmp, const char *name, const char *text)
{
    char *path = g_build_filename(tmp, name, NULL);
    GString *all = g_string_new(text);

    /* Rows 40-f0 as zeros: a 256-byte dump, as root gets. */
    if (g_str_has_suffix(name, ".lspci"))
        for (unsigned off = 0x40; off < 0x100; off += 16)
            g_string_append_printf(all, "%02x: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n",
                                   off);
    g_assert_true(g_file_set_contents(path, all->str, -1, NULL));
    g_string_free(all, TRUE);
    return path;
}

/* Unassigned BARs take sizes, and keep them in sysfs as Linux does. */
static void test_unassigned_sized(void)
{
    char *tmp = g_dir_make_tmp("simhost-unassigned-XXXXXX", NULL);
    char *dump = write_tmp(tmp, "u.lspci", unassigned_dump);
    char *sizes = write_tmp(tmp, "u.sizes", "03:00.0 0 16K\n03:00.0 2 256M\n03:00.0 4 32\n"
                                            "03:00.0 rom 64K\n");
    char *tree = g_build_filename(tmp, "host", NULL), *out, *errout, *text, **lines, *param;

    g_assert_cmpint(run_simhost(dump, tree, "--sizes", sizes, &out, &errout), ==, 0);
    g_assert_cmpstr(errout, ==, "");
    g_free(out);
    g_free(errout);
    text = tree_file(tmp, "0000:03:00.0", "resource");
    lines = g_strsplit(text, "\n", -1);
    g_assert_cmpstr(lines[0], ==, "0x0000000000000000 0x0000000000003fff 0x0000000020000200");
    g_assert_cmpstr(lines[2], ==, "0x0000000000000000 0x000000000fffffff 0x000000002010220c");
    g_assert_cmpstr(lines[4], ==, "0x0000000000000000 0x000000000000001f 0x0000000020000101");
    g_assert_cmpstr(lines[6], ==, "0x0000000000000000 0x000000000000ffff 0x0000000020002200");
    g_strfreev(lines);
    g_free(text);
    /* Real lspci reads them as unassigned, with their sizes. */
    param = g_strdup_printf("sysfs.path=%s", tree);
    const char *argv[] = { "lspci", "-A", "linux-sysfs", "-O", param, "-vvv", NULL };
    g_assert_cmpint(run(argv, &out, &errout), ==, 0);
    g_assert_nonnull(strstr(out, "\tRegion 0: Memory at <unassigned> (32-bit, "
                                 "non-prefetchable) [size=16K]\n"));
    g_assert_nonnull(strstr(out, "(64-bit, prefetchable) [size=256M]\n"));
    g_assert_nonnull(strstr(out, "\tExpansion ROM at <unassigned> [disabled] [size=64K]\n"));
    g_free(out);
    g_free(errout);
    g_free(param);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tree);
    g_free(dump);
    g_free(sizes);
    g_free(tmp);
}

static void collect_log(const char *line, void *opaque)
{
    g_string_append_printf(opaque, "%s\n", line);
}

/* qemu-dm opens a function: it logs each BAR it cannot pass through. */
static void test_open_logs_unusable_bars(void)
{
    char *tmp = g_dir_make_tmp("simhost-log-XXXXXX", NULL);
    char *tree = g_build_filename(tmp, "host", NULL), *out, *errout;
    char *dump = write_tmp(tmp, "u.lspci", unassigned_dump);
    char *sizes = write_tmp(tmp, "u.sizes", "03:00.0 0 16K\n");
    GString *log = g_string_new("");
    PtError err = { "" };
    PtBdf gpu = { 0, 6, 0, 1 }, nvme = { 0, 3, 0, 0 };
    PtBar bar;

    g_assert_cmpint(run_simhost(HOSTS "/asus-p6t6-x58-ich10-gt218.lspci", tree, NULL, NULL,
                                &out, &errout), ==, 0);
    g_free(out);
    g_free(errout);
    dm_log_set_sink(collect_log, log);
    HostPci *host = host_pci_open(tree, &err);
    g_assert_nonnull(host);
    HostFunc *fn = host_func_open(host, gpu, &err);
    g_assert_nonnull(fn);
    g_assert_cmpstr(log->str, ==, "0000:06:00.1: BAR0 at 0xfbcfc000 has no size on the host "
                    "(a 1-byte region, or a simulated host built without BAR sizes: simhost "
                    "--sizes): not passed through\n");
    host_func_close(fn);
    host_pci_close(host);
    g_assert_cmpint(host_sim_remove(tree), ==, 0);
    /* An unassigned BAR keeps its size in sysfs, but has no host address. */
    g_string_truncate(log, 0);
    g_assert_cmpint(run_simhost(dump, tree, "--sizes", sizes, &out, &errout), ==, 0);
    g_free(out);
    g_free(errout);
    host = host_pci_open(tree, &err);
    g_assert_nonnull(host);
    fn = host_func_open(host, nvme, &err);
    g_assert_nonnull(fn);
    host_func_bar(fn, 0, &bar);
    g_assert_cmpuint(bar.size, ==, 0);
    g_assert_cmpstr(log->str, ==, "0000:03:00.0: BAR0 (size 0x4000) is unassigned on the host "
                    "(address 0): not passed through\n");
    host_func_close(fn);
    host_pci_close(host);
    dm_log_set_sink(NULL, NULL);
    g_string_free(log, TRUE);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tree);
    g_free(dump);
    g_free(sizes);
    g_free(tmp);
}

/* A function that reads all ones keeps the IDs its -nn device line names. */
static void test_all_ones_ids(void)
{
    char *out, *errout, *tmp, *text, *param;

    tmp = simhost_ok(PASTED "/gt216m-audio-off.lspci", NULL, &out, &errout);
    g_assert_cmpstr(errout, ==, "simhost: 0000:02:00.1 reads all ones in the dump (powered "
                    "off or absent): keeping the IDs its device line names, 10de:0be2 class "
                    "0403\n");
    g_free(out);
    g_free(errout);
    text = tree_file(tmp, "0000:02:00.1", "vendor");
    g_assert_cmpstr(text, ==, "0x10de\n");
    g_free(text);
    text = tree_file(tmp, "0000:02:00.1", "device");
    g_assert_cmpstr(text, ==, "0x0be2\n");
    g_free(text);
    text = tree_file(tmp, "0000:02:00.1", "class");
    g_assert_cmpstr(text, ==, "0x040300\n");
    g_free(text);
    param = g_strdup_printf("sysfs.path=%s/host", tmp);
    const char *argv[] = { "lspci", "-A", "linux-sysfs", "-O", param, "-nn", "-s", "02:00.1",
                           NULL };
    g_assert_cmpint(run(argv, &out, &errout), ==, 0);
    g_assert_cmpstr(out, ==, "02:00.1 Audio device [0403]: NVIDIA Corporation GT216 HDMI "
                    "Audio Controller [10de:0be2] (rev ff)\n");
    g_free(out);
    g_free(errout);
    g_free(param);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tmp);
    /* Without -nn there are no IDs to keep, and simhost says so. */
    tmp = simhost_ok(PASTED "/gt216m-audio-off-no-nn.lspci", NULL, &out, &errout);
    g_assert_cmpstr(errout, ==, "simhost: 0000:02:00.1 reads all ones in the dump (powered "
                    "off or absent): its device line names no IDs (dump with lspci -nn to "
                    "keep them), so it shows as ffff:ffff\n");
    text = tree_file(tmp, "0000:02:00.1", "vendor");
    g_assert_cmpstr(text, ==, "0xffff\n");
    g_free(text);
    g_free(out);
    g_free(errout);
    g_assert_cmpint(host_sim_remove(tmp), ==, 0);
    g_free(tmp);
}

/* lspci's stderr at the end of a dump: skipped, the dump intact. */
static void test_kmod_message(void)
{
    HostDump dump;
    PtError err = { "" };

    g_assert_cmpint(host_dump_load(PASTED "/uhci-kmod-message.lspci", &dump, &err), ==, 0);
    g_assert_cmpint(dump.nfuncs, ==, 1);
    g_assert_cmpuint(dump.funcs[0].config_len, ==, 64);
    g_assert_cmpint(dump.nskipped, ==, 1);
    g_assert_cmpuint(dump.skipped[0].line, ==, 6);
    host_dump_free(&dump);
}

/* Every *.lspci in tests/data/hosts, so a new dump is tested on arrival. */
static GPtrArray *bundled_dumps(void)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GDir *dir = g_dir_open(HOSTS, 0, NULL);
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)))
        if (g_str_has_suffix(name, ".lspci"))
            g_ptr_array_add(names, g_strndup(name, strlen(name) - strlen(".lspci")));
    g_dir_close(dir);
    return names;
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    GPtrArray *names;
    int rc;

    g_test_init(&argc, &argv, NULL);
    names = bundled_dumps();
    g_ptr_array_sort(names, cmp_names);
    g_assert_cmpuint(names->len, >=, 8);
    for (guint i = 0; i < names->len; i++) {
        char *p = g_strdup_printf("/simhost/lspci-hex/%s", (char *)names->pdata[i]);
        g_test_add_data_func(p, names->pdata[i], test_hex);
        g_free(p);
        p = g_strdup_printf("/simhost/lspci-sizes/%s", (char *)names->pdata[i]);
        g_test_add_data_func(p, names->pdata[i], test_sizes);
        g_free(p);
    }
    g_test_add_func("/simhost/resource-lines", test_resource_lines);
    g_test_add_func("/simhost/files", test_files);
    g_test_add_func("/simhost/subsystem-ids", test_subsystem_ids);
    g_test_add_func("/simhost/parse-forms", test_parse_forms);
    g_test_add_func("/simhost/pasted/parse", test_pasted);
    g_test_add_func("/simhost/pasted/cli", test_pasted_cli);
    g_test_add_func("/simhost/pasted/forms", test_pasted_forms);
    g_test_add_func("/simhost/pasted/kmod-message", test_kmod_message);
    g_test_add_func("/simhost/sizes/unsized-warnings", test_unsized_warnings);
    g_test_add_func("/simhost/sizes/unassigned", test_unassigned_sized);
    g_test_add_func("/simhost/sizes/open-logs-unusable-bars", test_open_logs_unusable_bars);
    g_test_add_func("/simhost/all-ones-ids", test_all_ones_ids);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        char *p = g_strdup_printf("/simhost/bad/%s", bad_cases[i].file);
        g_test_add_data_func(p, &bad_cases[i], test_bad);
        g_free(p);
    }
    g_test_add_func("/simhost/bad/all-listed", test_bad_all_listed);
    g_test_add_func("/simhost/cli/ok", test_cli_ok);
    for (size_t i = 0; i < G_N_ELEMENTS(cli_bad); i++) {
        char *p = g_strdup_printf("/simhost/cli/bad-%zu", i);
        g_test_add_data_func(p, &cli_bad[i], test_cli_bad);
        g_free(p);
    }
    rc = g_test_run();
    g_ptr_array_unref(names);
    return rc;
}
