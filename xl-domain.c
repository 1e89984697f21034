/*
 * Domains through xl.  See xl-domain.h.
 */
#include "xl-domain.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt-notation.h"
#include "xs-channel.h"

#define XEN_CAPABILITIES "/proc/xen/capabilities"

bool xl_xen_present(void)
{
    g_autofree char *caps = NULL;

    return g_file_get_contents(XEN_CAPABILITIES, &caps, NULL, NULL) &&
           strstr(caps, "control_d") != NULL;
}

char *xl_config_text(const char *text, const size_t *cut, size_t ncut, const char *qmp_path)
{
    GString *out = g_string_new("# written by xm: the guest config without xm's own keys\n");
    size_t from = 0;

    for (size_t i = 0; i + 1 < ncut * 2; i += 2) {
        g_string_append_len(out, text + from, (gssize)(cut[i] - from));
        g_string_append(out, "# (kept for qemu-dm)");
        from = cut[i + 1];
    }
    g_string_append(out, text + from);
    /* A socket of qemu-dm's own: libxl keeps its QMP socket to itself. */
    g_string_append_printf(out, "\ndevice_model_args_hvm = [ \"-qmp\", "
                                "\"unix:%s,server=on,wait=off\" ]\n", qmp_path);
    return g_string_free(out, FALSE);
}

/* Run xl with args; its output to log; why: its last non-empty line. */
static int run_xl(const char *const *args, const char *log, char **out, char *why, size_t len)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *sout = NULL, *serr = NULL;
    g_autoptr(GError) gerr = NULL;
    int status = 0;

    g_ptr_array_add(argv, "xl");
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, (char *)*a);
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &sout,
                      &serr, &status, &gerr)) {
        snprintf(why, len, "cannot run xl: %s", gerr->message);
        return -ENOEXEC;
    }
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv->pdata);
        fprintf(f, "xm: %s\n%s%s", cmd, sout, serr);
        fclose(f);
    }
    if (g_spawn_check_wait_status(status, NULL)) {
        if (out)
            *out = g_steal_pointer(&sout);
        return 0;
    }
    /* libxl's first error is the cause; the ones after it are its clean-up. */
    g_auto(GStrv) lines = g_strsplit(serr && *serr ? serr : sout, "\n", -1);
    const char *said = NULL, *last = "(no output)";
    for (char **l = lines; *l; l++) {
        if (**l)
            last = *l;
        if (!said && strstr(*l, "error"))
            said = *l;
    }
    snprintf(why, len, "xl %s failed: %s", args[0], said ? said : last);
    return -EIO;
}

int xl_create_paused(const char *cfg_file, const char *name, const char *log, unsigned *domid,
                     char *why, size_t len)
{
    const char *create[] = { "create", "-p", cfg_file, NULL };
    const char *ask[] = { "domid", name, NULL };
    g_autofree char *out = NULL;
    int rc;

    if ((rc = run_xl(create, log, NULL, why, len)) < 0 ||
        (rc = run_xl(ask, log, &out, why, len)) < 0)
        return rc;
    unsigned long id;
    if (pt_parse_uint(g_strstrip(out), 10, XS_DOMID_MAX, &id) < 0 || id == 0) {
        snprintf(why, len, "xl domid %s: unexpected answer '%s'", name, out);
        return -EIO;
    }
    *domid = (unsigned)id;
    return 0;
}

static int xl_on_domain(const char *what, unsigned domid, const char *log, char *why,
                        size_t len)
{
    char id[16];
    const char *args[] = { what, id, NULL };

    snprintf(id, sizeof(id), "%u", domid);
    return run_xl(args, log, NULL, why, len);
}

int xl_unpause(unsigned domid, const char *log, char *why, size_t len)
{
    return xl_on_domain("unpause", domid, log, why, len);
}

int xl_destroy(unsigned domid, const char *log, char *why, size_t len)
{
    return xl_on_domain("destroy", domid, log, why, len);
}
