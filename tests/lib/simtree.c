#include "simtree.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "host-dump.h"

char *simtree_dump_path(const char *name)
{
    return g_build_filename(SRCDIR, "tests", "data", "hosts", name, NULL);
}

static void apply_sidecar(HostDump *dump, const char *dump_path)
{
    g_autofree char *base = g_strndup(dump_path, strlen(dump_path) - strlen(".lspci"));
    g_autofree char *sizes = g_strconcat(base, ".sizes", NULL);
    PtError err;

    if (g_file_test(sizes, G_FILE_TEST_EXISTS) && host_dump_apply_sizes(dump, sizes, &err) < 0)
        g_error("%s", err.msg);
}

char *simtree_build(const char *name, bool all_assignable)
{
    g_autofree char *path = simtree_dump_path(name);

    return simtree_build_path(path, all_assignable);
}

char *simtree_build_path(const char *path, bool all_assignable)
{
    g_autoptr(GError) gerr = NULL;
    char *dir = g_dir_make_tmp("simtree-XXXXXX", &gerr);
    g_autofree PtBdf *bdfs = NULL;
    HostDump dump;
    PtError err;

    g_assert_no_error(gerr);
    if (host_dump_load(path, &dump, &err) < 0)
        g_error("%s", err.msg);
    if (g_str_has_suffix(path, ".lspci"))
        apply_sidecar(&dump, path);
    bdfs = g_new0(PtBdf, dump.nfuncs ? dump.nfuncs : 1);
    for (int i = 0; i < dump.nfuncs; i++)
        bdfs[i] = dump.funcs[i].bdf;
    if (host_sim_write(&dump, dir, bdfs, all_assignable ? dump.nfuncs : 0, &err) < 0)
        g_error("%s", err.msg);
    host_dump_free(&dump);
    return dir;
}

static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *entry;

    if (d) {
        while ((entry = g_dir_read_name(d))) {
            g_autofree char *child = g_build_filename(path, entry, NULL);
            if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                remove_tree(child);
            else
                g_unlink(child);
        }
        g_dir_close(d);
    }
    g_rmdir(path);
}

void simtree_remove(char *dir)
{
    if (dir)
        remove_tree(dir);
    g_free(dir);
}

/* Overwrite bytes of a function's config file, as the host would show them. */
void simtree_poke(const char *dir, const char *bdf, unsigned offset, const void *bytes, size_t len)
{
    g_autofree char *path = g_build_filename(dir, "devices", bdf, "config", NULL);
    g_autofree char *text = NULL;
    gsize size;

    if (!g_file_get_contents(path, &text, &size, NULL) || offset + len > size)
        g_error("%s: cannot poke %zu bytes at 0x%x", path, len, offset);
    memcpy(text + offset, bytes, len);
    if (!g_file_set_contents(path, text, (gssize)size, NULL))
        g_error("%s: cannot write it back", path);
}

void simtree_peek(const char *dir, const char *bdf, unsigned offset, void *bytes, size_t len)
{
    g_autofree char *path = g_build_filename(dir, "devices", bdf, "config", NULL);
    g_autofree char *text = NULL;
    gsize size;

    if (!g_file_get_contents(path, &text, &size, NULL) || offset + len > size)
        g_error("%s: cannot read %zu bytes at 0x%x", path, len, offset);
    memcpy(bytes, text + offset, len);
}

void simtree_all_ones(const char *dir, const char *bdf)
{
    g_autofree char *path = g_build_filename(dir, "devices", bdf, "config", NULL);
    GStatBuf st;

    if (g_stat(path, &st) < 0)
        g_error("%s: no such config file", path);
    g_autofree uint8_t *ones = g_malloc((gsize)st.st_size);
    memset(ones, 0xff, (size_t)st.st_size);
    simtree_poke(dir, bdf, 0, ones, (size_t)st.st_size);
}
