/*
 * Assignable functions: driver_override + unbind + bind, the original
 * driver recorded in a state file, reset through sysfs.  See host-assign.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "host-assign.h"
#include "host-pci.h"
#include "host-groups.h"
#include "host-sim.h"


typedef struct SysfsOps {
    const char *name;
    int (*write)(const char *root, const char *rel, const char *value, PtError *err);
} SysfsOps;

struct HostAssign {
    char *root;
    char *state_file;
    const SysfsOps *ops;
};

/* A real kernel: the write is all there is; its errno is the kernel's answer. */
static int linux_write(const char *root, const char *rel, const char *value, PtError *err)
{
    g_autofree char *path = g_build_filename(root, rel, NULL);
    size_t len = strlen(value);
    int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        rc = -errno;
    else if (write(fd, value, len) != (ssize_t)len)
        rc = errno ? -errno : -EIO;
    if (fd >= 0 && close(fd) < 0 && !rc)
        rc = -errno;
    if (rc) {
        g_autofree char *shown = g_strchomp(g_strdup(value));
        pt_error_set(err, "write '%s' to %s: %s", shown, path,
                     strerror(-rc));
    }
    return rc;
}

static const SysfsOps linux_ops = { "linux", linux_write };
static const SysfsOps sim_ops = { "sim", host_sim_kernel_write };

HostAssign *host_assign_open(const char *root, const char *state_file, PtError *err)
{
    const char *r = root ? root : HOST_SYSFS_DEFAULT;
    g_autofree char *devices = g_build_filename(r, "devices", NULL);
    HostAssign *ha;

    if (!g_file_test(devices, G_FILE_TEST_IS_DIR)) {
        pt_error_set(err, "%s: not a PCI sysfs tree (no devices/)", r);
        return NULL;
    }
    ha = g_new0(HostAssign, 1);
    ha->root = g_strdup(r);
    ha->state_file = g_strdup(state_file);
    ha->ops = host_sim_is_sim(r) ? &sim_ops : &linux_ops;
    return ha;
}

void host_assign_close(HostAssign *ha)
{
    if (!ha)
        return;
    g_free(ha->root);
    g_free(ha->state_file);
    g_free(ha);
}

const char *host_assign_backend(const HostAssign *ha)
{
    return ha->ops->name;
}

bool host_xen_present(const char *proc_xen, const char *hypervisor_type)
{
    g_autofree char *type = NULL;

    if (proc_xen && g_file_test(proc_xen, G_FILE_TEST_EXISTS))
        return true;
    return hypervisor_type && g_file_get_contents(hypervisor_type, &type, NULL, NULL) &&
           !strcmp(g_strstrip(type), "xen");
}

const char *host_assign_default_stub(bool xen)
{
    return xen ? "pciback" : "pci-stub";
}

static const struct {
    const char *driver;
    const char *module;         /* what to load when the driver is missing */
} stubs[] = {
    { "pciback", "xen-pciback" },
    { "pci-stub", "pci-stub" },
    { "vfio-pci", "vfio-pci" },
};

bool host_assign_is_stub(const char *driver)
{
    for (size_t i = 0; driver && i < G_N_ELEMENTS(stubs); i++)
        if (!strcmp(driver, stubs[i].driver))
            return true;
    return false;
}

static const char *stub_module(const char *driver)
{
    for (size_t i = 0; i < G_N_ELEMENTS(stubs); i++)
        if (!strcmp(driver, stubs[i].driver))
            return stubs[i].module;
    return driver;
}

static char *dev_path(const HostAssign *ha, PtBdf bdf, const char *attr)
{
    char name[16];

    return g_build_filename(ha->root, "devices", pt_bdf_format(bdf, name, sizeof(name)), attr,
                            NULL);
}

int host_assign_driver(HostAssign *ha, PtBdf bdf, char *buf, size_t len)
{
    g_autofree char *dir = dev_path(ha, bdf, NULL);
    g_autofree char *link = dev_path(ha, bdf, "driver");
    char target[512];
    ssize_t n;

    buf[0] = 0;
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
        return -1;
    n = readlink(link, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = 0;
        g_strlcpy(buf, strrchr(target, '/') ? strrchr(target, '/') + 1 : target, len);
    }
    return 0;
}

/* ================================================================ the state file */

/* One group per host tree, one key per function: its driver before. */
static GKeyFile *state_load(const HostAssign *ha)
{
    GKeyFile *kf = g_key_file_new();

    g_key_file_load_from_file(kf, ha->state_file, G_KEY_FILE_NONE, NULL);
    return kf;
}

static int state_save(const HostAssign *ha, GKeyFile *kf, PtError *err)
{
    g_autofree char *dir = g_path_get_dirname(ha->state_file);
    g_autoptr(GError) gerr = NULL;
    gsize len;
    g_autofree char *text = g_key_file_to_data(kf, &len, NULL);

    if (g_mkdir_with_parents(dir, 0755) < 0 ||
        !g_file_set_contents(ha->state_file, text, (gssize)len, &gerr)) {
        pt_error_set(err, "%s: %s", ha->state_file,
                     gerr ? gerr->message : strerror(errno));
        return -1;
    }
    return 0;
}

bool host_assign_original(HostAssign *ha, PtBdf bdf, char *buf, size_t len)
{
    g_autoptr(GKeyFile) kf = state_load(ha);
    char name[16];
    g_autofree char *v = g_key_file_get_string(kf, ha->root,
                                               pt_bdf_format(bdf, name, sizeof(name)), NULL);

    buf[0] = 0;
    if (v)
        g_strlcpy(buf, v, len);
    return v != NULL;
}

/* The first record wins: adding twice must not forget the real original. */
static int record_original(HostAssign *ha, PtBdf bdf, const char *driver, PtError *err)
{
    g_autoptr(GKeyFile) kf = state_load(ha);
    char name[16];

    pt_bdf_format(bdf, name, sizeof(name));
    if (g_key_file_has_key(kf, ha->root, name, NULL))
        return 0;
    g_key_file_set_string(kf, ha->root, name, driver);
    return state_save(ha, kf, err);
}

static int forget_original(HostAssign *ha, PtBdf bdf, PtError *err)
{
    g_autoptr(GKeyFile) kf = state_load(ha);
    char name[16];

    if (!g_key_file_remove_key(kf, ha->root, pt_bdf_format(bdf, name, sizeof(name)), NULL))
        return 0;
    return state_save(ha, kf, err);
}

/* ================================================================ sysfs steps */

static int write_dev(HostAssign *ha, PtBdf bdf, const char *attr, const char *value,
                     PtError *err)
{
    char name[16];
    g_autofree char *rel = g_build_filename("devices", pt_bdf_format(bdf, name, sizeof(name)),
                                            attr, NULL);

    return ha->ops->write(ha->root, rel, value, err);
}

/* drivers/DRIVER/bind or unbind, or drivers_probe when driver is NULL. */
static int write_driver(HostAssign *ha, const char *driver, const char *what, PtBdf bdf,
                        PtError *err)
{
    char name[16];
    g_autofree char *rel = driver ? g_build_filename("drivers", driver, what, NULL)
                                  : g_strdup("drivers_probe");

    return ha->ops->write(ha->root, rel, pt_bdf_format(bdf, name, sizeof(name)), err);
}

static bool driver_loaded(const HostAssign *ha, const char *driver)
{
    g_autofree char *dir = g_build_filename(ha->root, "drivers", driver, NULL);

    return g_file_test(dir, G_FILE_TEST_IS_DIR);
}

static int no_function(PtBdf bdf, PtError *err)
{
    char name[16];

    pt_error_set(err, "%s: no such host function",
                 pt_bdf_format(bdf, name, sizeof(name)));
    return -ENODEV;
}

/* The driver link must now say want ("" for none). */
static int expect_driver(HostAssign *ha, PtBdf bdf, const char *want, HostAssignReport *rep,
                         PtError *err)
{
    char name[16];

    host_assign_driver(ha, bdf, rep->now, sizeof(rep->now));
    if (!strcmp(rep->now, want))
        return 0;
    pt_error_set(err, "%s: bound to %s after binding %s", pt_bdf_format(bdf, name, sizeof(name)),
                 rep->now[0] ? rep->now : "no driver", want);
    return -EIO;
}

/* ================================================================ reset */

/* Why the kernel has no reset for it, from what its config space says. */
static void no_reset_reason(HostAssign *ha, PtBdf bdf, HostAssignReport *rep)
{
    g_autofree char *path = dev_path(ha, bdf, "config");
    g_autofree uint8_t *cfg = NULL;
    gsize len = 0;
    bool flr = g_file_get_contents(path, (char **)&cfg, &len, NULL) && len >= 64 &&
               host_cfg_has_flr(cfg, (unsigned)len);

    snprintf(rep->reset, sizeof(rep->reset), "not reset: the kernel offers no reset for it "
             "(no reset_method%s)", flr ? "" : ": no FLR or PM reset, and no bus reset of "
             "its own");
}

int host_reset(HostAssign *ha, PtBdf bdf, HostAssignReport *rep, PtError *err)
{
    g_autofree char *path = dev_path(ha, bdf, "reset_method");
    g_autofree char *text = NULL;
    const char *method;
    int rc;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(method = host_reset_method_first(host_reset_methods_parse(text)))) {
        no_reset_reason(ha, bdf, rep);
        return -ENOTTY;
    }
    rc = write_dev(ha, bdf, "reset", "1", err);
    if (rc) {
        snprintf(rep->reset, sizeof(rep->reset), "reset failed: %.140s", err->msg);
        return rc;
    }
    /* The kernel tries the methods in this order; the first one that applies wins. */
    snprintf(rep->reset, sizeof(rep->reset), "reset (%s)", method);
    return 0;
}

/* ================================================================ add and remove */

static int check_stub(HostAssign *ha, PtBdf bdf, const char *stub, PtError *err)
{
    char name[16];

    pt_bdf_format(bdf, name, sizeof(name));
    if (!host_assign_is_stub(stub)) {
        pt_error_set(err, "%s: '%s' is not a driver that holds a function "
                     "for a guest (pciback, pci-stub or vfio-pci)", name, stub);
        return -EINVAL;
    }
    if (!driver_loaded(ha, stub)) {
        pt_error_set(err, "%s: driver %s is not loaded (modprobe %s)",
                     name, stub, stub_module(stub));
        return -ENOENT;
    }
    return 0;
}

/* Back to where it was after a failed step: override cleared, old driver bound. */
static void undo_add(HostAssign *ha, PtBdf bdf, const char *was)
{
    PtError ignored;

    write_dev(ha, bdf, "driver_override", "\n", &ignored);
    if (was[0])
        write_driver(ha, was, "bind", bdf, &ignored);
}

int host_assign_add(HostAssign *ha, PtBdf bdf, const char *stub, HostAssignReport *rep,
                    PtError *err)
{
    int rc;

    *rep = (HostAssignReport){ 0 };
    if (host_assign_driver(ha, bdf, rep->was, sizeof(rep->was)) < 0)
        return no_function(bdf, err);
    if (!strcmp(rep->was, stub)) {
        g_strlcpy(rep->now, stub, sizeof(rep->now));
        g_strlcpy(rep->reset, "already assignable: not reset", sizeof(rep->reset));
        return 0;
    }
    if ((rc = check_stub(ha, bdf, stub, err)) || (rc = record_original(ha, bdf, rep->was, err)))
        return rc;
    rc = write_dev(ha, bdf, "driver_override", stub, err);
    if (!rc && rep->was[0])
        rc = write_driver(ha, rep->was, "unbind", bdf, err);
    if (!rc)
        rc = write_driver(ha, stub, "bind", bdf, err);
    if (!rc)
        rc = expect_driver(ha, bdf, stub, rep, err);
    if (rc) {
        PtError ignored;
        undo_add(ha, bdf, rep->was);
        forget_original(ha, bdf, &ignored);
        return rc;
    }
    /* Clean before any guest sees it; a function without a reset is still assignable. */
    rc = host_reset(ha, bdf, rep, err);
    return rc == -ENOTTY ? 0 : rc;
}

int host_assign_remove(HostAssign *ha, PtBdf bdf, bool rebind, HostAssignReport *rep,
                       PtError *err)
{
    char orig[32], name[16];
    int rc;

    *rep = (HostAssignReport){ 0 };
    if (host_assign_driver(ha, bdf, rep->was, sizeof(rep->was)) < 0)
        return no_function(bdf, err);
    if (!host_assign_is_stub(rep->was)) {
        pt_error_set(err, "%s is not assignable: bound to %s",
                     pt_bdf_format(bdf, name, sizeof(name)), rep->was[0] ? rep->was : "no driver");
        return -EINVAL;
    }
    /* What the last guest left behind must not reach dom0's driver. */
    rc = host_reset(ha, bdf, rep, err);
    if (rc && rc != -ENOTTY)
        return rc;
    host_assign_original(ha, bdf, orig, sizeof(orig));
    /* Refused before the unbind: a function must not be left with no driver by accident. */
    if (rebind && orig[0] && !driver_loaded(ha, orig)) {
        pt_error_set(err, "%s: its driver %s is not loaded (modprobe %s)",
                     pt_bdf_format(bdf, name, sizeof(name)), orig, orig);
        return -ENOENT;
    }
    if ((rc = write_driver(ha, rep->was, "unbind", bdf, err)) ||
        (rc = write_dev(ha, bdf, "driver_override", "\n", err)))
        return rc;
    if (rebind && (rc = write_driver(ha, orig[0] ? orig : NULL, orig[0] ? "bind" : NULL, bdf,
                                     err)))
        return rc;
    if (rebind && orig[0] && (rc = expect_driver(ha, bdf, orig, rep, err)))
        return rc;
    host_assign_driver(ha, bdf, rep->now, sizeof(rep->now));
    return forget_original(ha, bdf, err);
}
