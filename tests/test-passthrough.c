/*
 * Pass-through seen through the guest's eyes: the test guest enumerates the
 * bus through mechanism #1 the way Linux does, over simulated hosts built
 * from the bundled real dumps; real lspci reads what the guest sees.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "hypervisor-sim.h"
#include "host-dump.h"
#include "rig.h"
#include "test-guest.h"

#define ASUS    "asus-p6t6-x58-ich10-gt218.lspci"
#define ICH7    "gigabyte-ich7m-rootports.lspci"
#define SAMSUNG "samsung-r730-gt216m.lspci"
#define P55     "gigabyte-p55-ibexpeak.lspci"
#define I82576  "intel-82576-sriov.lspci"

/* Every multi-function device of the bundled dumps worth a guest. */
typedef struct MfDevice {
    const char *dump;
    const char *dev;        /* "BB:SS" */
    uint8_t funcs;          /* present functions */
    const char *what;
} MfDevice;

static const MfDevice mf_devices[] = {
    { ASUS, "00:1a", 0x87, "ICH10 USB UHCI x3 + EHCI" },
    { ASUS, "00:1d", 0x87, "ICH10 USB UHCI x3 + EHCI" },
    { ASUS, "06:00", 0x03, "GeForce 210 VGA + HDMI audio" },
    { ASUS, "ff:03", 0x13, "X58 uncore, functions 0,1,4" },
    { ICH7, "00:1d", 0x8f, "ICH7 USB UHCI x4 + EHCI" },
    { ICH7, "00:1c", 0x0f, "ICH7 PCIe root ports (header 0x81 on every function)" },
    { SAMSUNG, "02:00", 0x03, "GeForce GT 216M VGA + HDMI audio" },
    { P55, "00:1a", 0x00, "Ibex Peak USB" },
    { P55, "00:1d", 0x00, "Ibex Peak USB" },
};

typedef enum Scheme { IDENTITY, LEAST, STAR_AUTO } Scheme;

static const char *const scheme_names[] = { "identity", "least", "star" };

typedef struct MfCase {
    const MfDevice *dev;
    Scheme scheme;
} MfCase;

static uint8_t present_funcs(Rig *rig, const char *dev)
{
    unsigned bus, slot;

    g_assert_cmpint(sscanf(dev, "%x:%x", &bus, &slot), ==, 2);
    return host_pci_present_funcs(rig->host, 0, (uint8_t)bus, (uint8_t)slot);
}

/* "DEV.f,f,f" in ascending or descending order. */
static char *spec_for(const char *dev, uint8_t funcs, Scheme scheme)
{
    GString *s = g_string_new(dev);

    if (scheme == STAR_AUTO) {
        g_string_append(s, ".*");
        return g_string_free(s, FALSE);
    }
    g_string_append_c(s, '.');
    for (int i = 0; i < 8; i++) {
        int f = scheme == LEAST ? 7 - i : i;
        if (funcs & (1u << f))
            g_string_append_printf(s, "%s%d", s->str[s->len - 1] == '.' ? "" : ",", f);
    }
    g_string_append(s, scheme == LEAST ? "@7,map=least" : "@7");
    return g_string_free(s, FALSE);
}

static uint8_t expected_vfuncs(uint8_t funcs, Scheme scheme)
{
    return scheme == LEAST ? (uint8_t)((1u << __builtin_popcount(funcs)) - 1) : funcs;
}

static void assert_ids_match_host(Rig *rig, const TgScan *scan)
{
    for (int i = 0; i < pt_guest_count(rig->guest); i++) {
        const PtGuestFunc *gf = pt_guest_func_at(rig->guest, i);
        const TgFunc *tf = tg_find(scan, gf->vdevfn);
        PtError err;
        HostFunc *hf = host_func_open(rig->host, gf->host, &err);
        uint8_t cfg[64];

        g_assert_nonnull(tf);
        g_assert_nonnull(hf);
        g_assert_cmpint(host_func_read(hf, 0, cfg, sizeof(cfg)), ==, 0);
        g_assert_cmphex(tf->vendor, ==, cfg[PCI_VENDOR_ID] | cfg[PCI_VENDOR_ID + 1] << 8);
        g_assert_cmphex(tf->device, ==, cfg[PCI_DEVICE_ID] | cfg[PCI_DEVICE_ID + 1] << 8);
        g_assert_cmphex(tf->class_rev, ==, (uint32_t)cfg[8] | (uint32_t)cfg[9] << 8 |
                                           (uint32_t)cfg[10] << 16 | (uint32_t)cfg[11] << 24);
        g_assert_cmphex(pt_header_layout(tf->header_type), ==,
                        pt_header_layout(cfg[PCI_HEADER_TYPE]));
        host_func_close(hf);
    }
}

static void test_mf_device(gconstpointer data)
{
    const MfCase *c = data;
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);

    rig_up(&rig, c->dev->dump);
    uint8_t funcs = present_funcs(&rig, c->dev->dev);
    if (c->dev->funcs)
        g_assert_cmphex(funcs, ==, c->dev->funcs);
    g_assert_cmpint(__builtin_popcount(funcs), >, 1);
    g_autofree char *spec = spec_for(c->dev->dev, funcs, c->scheme);
    unsigned slot = c->scheme == STAR_AUTO ? 4 : 7;

    rig_attach(&rig, spec);
    tg_scan(rig.bus, true, scan);
    g_assert_cmphex(tg_slot_funcs(scan, slot), ==, expected_vfuncs(funcs, c->scheme));
    g_assert_cmpint(scan->nfuncs, ==, __builtin_popcount(funcs));
    g_assert_true(tg_find(scan, PT_DEVFN(slot, 0))->header_type & PCI_HEADER_TYPE_MFD);
    assert_ids_match_host(&rig, scan);

    /* Without the multi-function bit a guest stops at function 0. */
    pci_bus_force_single_function(rig.bus, slot, true);
    tg_scan(rig.bus, false, scan);
    g_assert_cmphex(tg_slot_funcs(scan, slot), ==, 0x01);
    g_assert_false(tg_find(scan, PT_DEVFN(slot, 0))->header_type & PCI_HEADER_TYPE_MFD);
    g_free(scan);
    rig_down(&rig);
}

/* A single function alone in its slot never shows the bit, whatever the host had. */
static void test_single_function_clears_mf_bit(void)
{
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "00:1d.0");        /* the host's 1d.0 has header type 0x80 */
    rig_attach(&rig, "00:1d.7");
    tg_scan(rig.bus, false, scan);
    g_assert_cmphex(tg_slot_funcs(scan, 4), ==, 0x01);
    g_assert_cmphex(tg_slot_funcs(scan, 5), ==, 0x01);
    g_assert_false(tg_find(scan, PT_DEVFN(4, 0))->header_type & PCI_HEADER_TYPE_MFD);
    g_free(scan);
    rig_down(&rig);
}

/* Two functions whose small BARs share one host page (Samsung R730: EHCI
 * 00:1a.0 at fcb06000 and 00:1d.0 at fcb06400): the page stays granted
 * until the last of them is detached. */
/* iomem_permission calls for the page at mfn in the sim's log from `from`:
 * how many granted and how many revoked. */
static void page_permission_calls(Rig *rig, size_t from, uint64_t mfn, unsigned *grants,
                                  unsigned *revokes)
{
    *grants = *revokes = 0;
    for (size_t i = from; i < hypervisor_sim_log_len(rig->hv); i++) {
        const HvCall *c = hypervisor_sim_log_at(rig->hv, i);
        if (c->op == HV_OP_IOMEM_PERMISSION && c->machine <= mfn && mfn < c->machine + c->count)
            *(c->allow ? grants : revokes) += 1;
    }
}

static void test_shared_page_grant(void)
{
    const uint64_t page = 0xfcb06;
    Rig rig;
    PtError err;
    unsigned grants, revokes;

    rig_up(&rig, SAMSUNG);
    rig_attach(&rig, "00:1a.0");
    size_t one = hypervisor_sim_permissions(rig.hv);
    size_t mark = hypervisor_sim_log_len(rig.hv);
    rig_attach(&rig, "00:1d.0");
    /* Only its own irq is new: the page was granted already. */
    g_assert_cmpuint(hypervisor_sim_permissions(rig.hv), ==, one + 1);
    page_permission_calls(&rig, mark, page, &grants, &revokes);
    g_assert_cmpuint(grants + revokes, ==, 0);
    /* 1a.0 goes: its irq with it, the page stays for 1d.0. */
    g_assert_cmpint(pt_guest_detach(rig.guest, "00:1a.0", &err), ==, 1);
    g_assert_cmpuint(hypervisor_sim_permissions(rig.hv), ==, one);
    page_permission_calls(&rig, mark, page, &grants, &revokes);
    g_assert_cmpuint(revokes, ==, 0);
    g_assert_cmpuint(hypervisor_sim_error_count(rig.hv), ==, 0);
    /* The last one takes it. */
    g_assert_cmpint(pt_guest_detach(rig.guest, "00:1d.0", &err), ==, 1);
    page_permission_calls(&rig, mark, page, &grants, &revokes);
    g_assert_cmpuint(revokes, ==, 1);
    g_assert_cmpuint(hypervisor_sim_permissions(rig.hv), ==, 0);
    rig_down(&rig);
}

/* An attach that fails below the policy returns that layer's cause and
 * words: the host's (a config file gone) and the hypervisor's (a refusal
 * with its errno); nothing of the spec stays. */
static void test_attach_keeps_cause(void)
{
    Rig rig;
    PtError err;

    rig_up(&rig, ASUS);
    g_autofree char *gone = rig_host_config_path(&rig, "0000:00:1d.1");
    g_assert_cmpint(g_unlink(gone), ==, 0);
    g_assert_cmpint(pt_guest_attach(rig.guest, "00:1d.0-1@7", NULL, &err), ==, -ENOENT);
    g_assert_nonnull(strstr(err.msg, "0000:00:1d.1 has a config space that cannot be read"));
    g_assert_nonnull(strstr(err.msg, gone));
    g_assert_nonnull(strstr(err.msg, strerror(ENOENT)));
    g_assert_cmpint(pt_guest_count(rig.guest), ==, 0);

    hypervisor_sim_fail_call(rig.hv, 1, EACCES);
    g_assert_cmpint(pt_guest_attach(rig.guest, "00:1d.0@7", NULL, &err), ==, -EACCES);
    g_assert_true(hypervisor_sim_fault_fired(rig.hv));
    g_assert_nonnull(strstr(err.msg, "0000:00:1d.0"));
    g_assert_nonnull(strstr(err.msg, strerror(EACCES)));
    g_assert_cmpint(pt_guest_count(rig.guest), ==, 0);
    g_assert_cmpuint(pt_guest_busmap(rig.guest)->used[7], ==, 0);
    rig_down(&rig);
}

int main(int argc, char **argv)
{
    static MfCase cases[G_N_ELEMENTS(mf_devices) * 3];
    int n = 0;

    g_test_init(&argc, &argv, NULL);
    for (size_t d = 0; d < G_N_ELEMENTS(mf_devices); d++)
        for (int s = IDENTITY; s <= STAR_AUTO; s++) {
            cases[n] = (MfCase){ &mf_devices[d], (Scheme)s };
            g_autofree char *path = g_strdup_printf("/passthrough/mf/%s/%s/%s", mf_devices[d].dump,
                                                    mf_devices[d].dev, scheme_names[s]);
            g_test_add_data_func(path, &cases[n++], test_mf_device);
        }
    g_test_add_func("/passthrough/single-function-clears-mf-bit", test_single_function_clears_mf_bit);
    g_test_add_func("/passthrough/shared-page-grant", test_shared_page_grant);
    g_test_add_func("/passthrough/attach keeps the cause", test_attach_keeps_cause);
    return g_test_run();
}
