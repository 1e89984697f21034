#include <string.h>
#include <glib.h>

#include "rig.h"

#include "dm-log.h"
#include "hypervisor-sim.h"
#include "simtree.h"

static GPtrArray *captured;

static void capture(const char *line, void *opaque)
{
    (void)opaque;
    g_ptr_array_add(captured, g_strdup(line));
    if (g_test_verbose())
        g_test_message("%s", line);
}

GPtrArray *rig_log(void)
{
    return captured;
}

unsigned rig_log_count(const char *needle)
{
    unsigned n = 0;

    for (guint i = 0; captured && i < captured->len; i++)
        n += strstr(g_ptr_array_index(captured, i), needle) != NULL;
    return n;
}

void rig_up_with(Rig *rig, const char *dump, const PtPlanDefaults *dflt)
{
    rig_up_hv(rig, dump, dflt, hypervisor_sim_new());
}

void rig_up_hv(Rig *rig, const char *dump, const PtPlanDefaults *dflt, Hypervisor *hv)
{
    PtError err;

    if (captured)
        g_ptr_array_unref(captured);
    captured = g_ptr_array_new_with_free_func(g_free);
    dm_log_set_sink(capture, NULL);
    rig->tree = simtree_build(dump, true);
    rig->host = host_pci_open(rig->tree, &err);
    if (!rig->host)
        g_error("%s", err.msg);
    rig->hv = hv;
    rig->bus = pci_bus_new(rig->hv);
    rig->dflt = *dflt;
    rig->guest = pt_guest_new(rig->host, rig->bus, rig->hv, PT_RESERVED_DEFAULT, dflt);
}

void rig_up(Rig *rig, const char *dump)
{
    PtPlanDefaults dflt = pt_plan_defaults();

    rig_up_with(rig, dump, &dflt);
}

void rig_attach(Rig *rig, const char *spec)
{
    PtError err;

    if (pt_guest_attach(rig->guest, spec, NULL, &err) < 0)
        g_error("attach %s: %s", spec, err.msg);
}

void rig_down(Rig *rig)
{
    pt_guest_free(rig->guest);
    if (hypervisor_is_sim(rig->hv))
        g_assert_cmpint(hypervisor_sim_check_clean(rig->hv), ==, 0);
    pci_bus_free(rig->bus);
    hypervisor_free(rig->hv);
    host_pci_close(rig->host);
    simtree_remove(rig->tree);
    dm_log_set_sink(NULL, NULL);
    *rig = (Rig){ 0 };
}

char *rig_host_config_path(const Rig *rig, const char *bdf)
{
    return g_build_filename(rig->tree, "devices", bdf, "config", NULL);
}

GBytes *rig_host_config(const Rig *rig, const char *bdf)
{
    g_autofree char *path = rig_host_config_path(rig, bdf);
    g_autoptr(GError) gerr = NULL;
    char *data;
    gsize len;

    g_file_get_contents(path, &data, &len, &gerr);
    g_assert_no_error(gerr);
    return g_bytes_new_take(data, len);
}

uint8_t rig_header_host_changeable(unsigned offset, uint8_t before, uint8_t written)
{
    static const uint8_t header[] = { PCI_COMMAND_MASTER, PCI_COMMAND_DISABLE_INTx >> 8, 0, 0xf9 };

    if (offset < PCI_COMMAND || offset >= PCI_COMMAND + 4)
        return 0xff;
    uint8_t bits = header[offset - PCI_COMMAND];
    return offset == PCI_STATUS + 1 ? (uint8_t)(bits & (before | written)) : bits;
}

void rig_tmp_in_memory(void)
{
    if (!g_getenv("TMPDIR") && g_file_test("/dev/shm", G_FILE_TEST_IS_DIR))
        g_setenv("TMPDIR", "/dev/shm", TRUE);
}
