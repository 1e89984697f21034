/*
 * MSI and MSI-X through the guest's eyes, on bundled real hosts:
 *  - the test guest enables MSI (GT218 + HDA, 82576, a 2-message root port)
 *    and MSI-X (82576: 10 vectors in BAR3; ConnectX-3 Pro: 256 vectors at
 *    BAR0+0x7c000), and the sim hypervisor's log shows exactly the
 *    bindings, their updates, and nothing left after disable or unplug;
 *  - the MSI-X table and PBA pages are trapped, the rest of the BAR is
 *    mapped; bad table accesses are refused and logged once;
 *  - the advisories' probes (XSA-128, 129, 130) compare the host's config
 *    file before and after.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "hypervisor-sim.h"
#include "pt-msi.h"
#include "rig.h"
#include "test-guest.h"

#define ASUS    "asus-p6t6-x58-ich10-gt218.lspci"
#define I82576  "intel-82576-sriov.lspci"
#define CX3     "mellanox-cx3pro-aer-root.lspci"
#define SAMSUNG "samsung-r730-gt216m.lspci"

#define X64 "%" G_GINT64_MODIFIER "x"

/* ---- helpers ---- */

static TgScan *scan_assign(Rig *rig)
{
    TgScan *scan = g_new0(TgScan, 1);

    tg_scan(rig->bus, true, scan);
    return scan;
}

static const PtGuestFunc *gfunc_at(Rig *rig, uint8_t devfn)
{
    for (int i = 0; i < pt_guest_count(rig->guest); i++)
        if (pt_guest_func_at(rig->guest, i)->vdevfn == devfn)
            return pt_guest_func_at(rig->guest, i);
    g_error("nothing at devfn %#x", devfn);
}

static char *log_since(Rig *rig, size_t from)
{
    return hypervisor_sim_log_text(rig->hv, from);
}

/* Only lines of the sim log about MSI (pirqs and bindings). */
static char *msi_log_since(Rig *rig, size_t from)
{
    GString *g = g_string_new("");

    for (size_t i = from; i < hypervisor_sim_log_len(rig->hv); i++) {
        const char *l = hypervisor_sim_log_line(rig->hv, i);
        if (strstr(l, "_msi ") || strstr(l, "_msi_intx ") || g_str_has_prefix(l, "unmap_pirq"))
            g_string_append_printf(g, "%s\n", l);
    }
    return g_string_free(g, FALSE);
}

static void assert_bytes_equal(GBytes *a, GBytes *b)
{
    g_assert_cmpmem(g_bytes_get_data(a, NULL), g_bytes_get_size(a), g_bytes_get_data(b, NULL),
                    g_bytes_get_size(b));
}

static size_t count_substr(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- decoding ---- */

typedef struct DecodeCase {
    uint64_t addr;
    uint32_t data;
    bool ok;
    HvMsi want;
} DecodeCase;

static void test_decode(void)
{
    static const DecodeCase cases[] = {
        { 0xfee00000, 0x0041, true, { .vector = 0x41 } },
        { 0xfee03000, 0x0141, true, { .vector = 0x41, .dest = 3, .delivery_mode = 1 } },
        { 0xfeeff00c, 0x80ef, true, { .vector = 0xef, .dest = 0xff,
                                      .flags = HV_MSI_DEST_LOGICAL | HV_MSI_REDIR_HINT |
                                               HV_MSI_TRIG_LEVEL } },
        { 0xfee12004, 0x0422, true, { .vector = 0x22, .dest = 0x12, .delivery_mode = 4,
                                      .flags = HV_MSI_DEST_LOGICAL } },
        { 0x00000000, 0x0041, false, { 0 } },
        { 0xfed00000, 0x0041, false, { 0 } },
        { 0x1fee00000ull, 0x0041, false, { 0 } },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        HvMsi got = { 0 };
        g_assert_cmpint(pt_msi_decode(cases[i].addr, cases[i].data, &got), ==, cases[i].ok);
        if (!cases[i].ok)
            continue;
        g_assert_cmphex(got.vector, ==, cases[i].want.vector);
        g_assert_cmphex(got.dest, ==, cases[i].want.dest);
        g_assert_cmpuint(got.delivery_mode, ==, cases[i].want.delivery_mode);
        g_assert_cmphex(got.flags, ==, cases[i].want.flags);
    }
    /* The test guest's encoders agree with the decoder. */
    HvMsi got;
    g_assert_true(pt_msi_decode(tg_msi_address(0x21, true, false), tg_msi_data(0x55, 1, true), &got));
    g_assert_cmphex(got.dest, ==, 0x21);
    g_assert_cmphex(got.vector, ==, 0x55);
    g_assert_cmphex(got.flags, ==, HV_MSI_DEST_LOGICAL | HV_MSI_TRIG_LEVEL);
}

/* ---- MSI ---- */

/* GT218 VGA and its HDMI audio in one slot: each binds its own vector;
 * re-programming updates; disable leaves nothing; so does unplug. */
static void test_msi_gt218_pair(void)
{
    Rig rig;
    uint8_t vga = PT_DEVFN(8, 0), hda = PT_DEVFN(8, 1);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.*@8");
    g_autofree TgScan *scan = scan_assign(&rig);

    size_t mark = hypervisor_sim_log_len(rig.hv);
    g_assert_cmphex(tg_msi_enable(rig.bus, vga, tg_msi_address(0, false, false),
                                  tg_msi_data(0x41, 0, false), 1), ==, 0x68);
    g_assert_cmphex(tg_msi_enable(rig.bus, hda, tg_msi_address(2, true, true),
                                  tg_msi_data(0x52, 1, false), 1), ==, 0x68);
    g_autofree char *on = log_since(&rig, mark);
    g_assert_cmpstr(on, ==,
        "map_pirq_msi 0000:06:00.0 entry=0 table=0x0 pirq=256\n"
        "bind_msi pirq=256 vector=0x41 dest=0x0 mode=0 flags=0x8 table=0x0\n"
        "map_pirq_msi 0000:06:00.1 entry=0 table=0x0 pirq=257\n"
        "bind_msi pirq=257 vector=0x52 dest=0x2 mode=1 flags=0xb table=0x0\n");
    g_assert_cmpuint(hypervisor_sim_bindings(rig.hv), ==, 2 + 2);    /* + 2 INTx */

    /* New destination and vector while enabled: one update per write. */
    mark = hypervisor_sim_log_len(rig.hv);
    tg_cfg_write(rig.bus, vga, 0x68 + PCI_MSI_ADDRESS_LO, (uint32_t)tg_msi_address(5, false, false), 4);
    tg_cfg_write(rig.bus, vga, 0x68 + PCI_MSI_DATA_64, tg_msi_data(0x61, 0, false), 2);
    g_autofree char *upd = log_since(&rig, mark);
    g_assert_cmpstr(upd, ==,
        "update_msi pirq=256 vector=0x41 dest=0x5 mode=0 flags=0x8 table=0x0\n"
        "update_msi pirq=256 vector=0x61 dest=0x5 mode=0 flags=0x8 table=0x0\n");
    /* Rewriting the same values changes nothing. */
    mark = hypervisor_sim_log_len(rig.hv);
    tg_cfg_write(rig.bus, vga, 0x68 + PCI_MSI_DATA_64, tg_msi_data(0x61, 0, false), 2);
    g_assert_cmpuint(hypervisor_sim_log_len(rig.hv), ==, mark);

    /* Disable: unbound and unmapped. */
    mark = hypervisor_sim_log_len(rig.hv);
    tg_msi_disable(rig.bus, vga);
    g_autofree char *off = log_since(&rig, mark);
    g_assert_cmpstr(off, ==,
        "unbind_msi pirq=256 vector=0x61 dest=0x5 mode=0 flags=0x8 table=0x0\n"
        "unmap_pirq pirq=256\n");
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, vga)->msi), ==, 0);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, hda)->msi), ==, 1);

    /* Unplug with the audio function's MSI live: nothing left. */
    PtError err;
    g_assert_cmpint(pt_guest_detach(rig.guest, "06:00.0", &err), ==, 2);
    g_assert_cmpint(hypervisor_sim_check_clean(rig.hv), ==, 0);
    rig_down(&rig);
}

/* The 82576's MSI: 64-bit, per-vector masking on the host (hidden). */
static void test_msi_82576(void)
{
    Rig rig;
    uint8_t nic = PT_DEVFN(4, 0);

    rig_up(&rig, I82576);
    rig_attach(&rig, "01:00.0");
    g_autofree TgScan *scan = scan_assign(&rig);
    size_t mark = hypervisor_sim_log_len(rig.hv);
    g_assert_cmphex(tg_msi_enable(rig.bus, nic, tg_msi_address(0x3, false, false),
                                  tg_msi_data(0x90, 1, true), 1), ==, 0x50);
    g_autofree char *on = msi_log_since(&rig, mark);
    g_assert_cmpstr(on, ==,
        "map_pirq_msi 0000:01:00.0 entry=0 table=0x0 pirq=256\n"
        "bind_msi pirq=256 vector=0x90 dest=0x3 mode=1 flags=0xc table=0x0\n");
    /* Reset (e.g. a guest reboot) takes it down too. */
    mark = hypervisor_sim_log_len(rig.hv);
    pci_bus_reset(rig.bus);
    g_autofree char *reset = msi_log_since(&rig, mark);
    g_assert_cmpstr(reset, ==,
        "unbind_msi pirq=256 vector=0x90 dest=0x3 mode=1 flags=0xc table=0x0\n"
        "unmap_pirq pirq=256\n");
    g_assert_cmphex(tg_cfg_read(rig.bus, nic, 0x50 + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE, ==, 0);
    rig_down(&rig);
}

/* Multiple-message enable on the ConnectX-3 host's root port (MSI
 * Count=1/2, 32-bit): 2 messages, consecutive vectors; asking for more
 * than the function can do gets what it can. */
static void test_msi_multiple_message(void)
{
    Rig rig;
    uint8_t port = PT_DEVFN(4, 0);

    rig_up(&rig, CX3);
    rig_attach(&rig, "00:02.0");
    size_t mark = hypervisor_sim_log_len(rig.hv);
    g_assert_cmphex(tg_msi_enable(rig.bus, port, tg_msi_address(1, false, false),
                                  tg_msi_data(0x70, 0, false), 2), ==, 0x60);
    g_autofree char *two = msi_log_since(&rig, mark);
    g_assert_cmpstr(two, ==,
        "map_pirq_msi 0000:00:02.0 entry=0 table=0x0 pirq=256\n"
        "bind_msi pirq=256 vector=0x70 dest=0x1 mode=0 flags=0x8 table=0x0\n"
        "map_pirq_msi 0000:00:02.0 entry=1 table=0x0 pirq=257\n"
        "bind_msi pirq=257 vector=0x71 dest=0x1 mode=0 flags=0x8 table=0x0\n");
    /* Back to one message: both go, one comes back. */
    mark = hypervisor_sim_log_len(rig.hv);
    tg_msi_enable(rig.bus, port, tg_msi_address(1, false, false), tg_msi_data(0x70, 0, false), 1);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, port)->msi), ==, 1);
    /* 8 asked, 2 possible. */
    tg_msi_enable(rig.bus, port, tg_msi_address(1, false, false), tg_msi_data(0x70, 0, false), 8);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, port)->msi), ==, 2);
    tg_msi_disable(rig.bus, port);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, port)->msi), ==, 0);
    g_assert_cmpuint(hypervisor_sim_pirqs(rig.hv), ==, 1);           /* the INTx one */
    rig_down(&rig);
}

/* A bad address is not bound; a hypervisor refusal leaves nothing behind. */
static void test_msi_bad_address_and_refusal(void)
{
    Rig rig;
    uint8_t vga = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    size_t pirqs = hypervisor_sim_pirqs(rig.hv);
    tg_msi_enable(rig.bus, vga, 0xfed00000, tg_msi_data(0x41, 0, false), 1);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, vga)->msi), ==, 0);
    g_assert_cmpuint(rig_log_count("not an interrupt message"), ==, 1);
    tg_msi_disable(rig.bus, vga);

    /* map succeeds, bind fails: the pirq is given back. */
    hypervisor_sim_fail_call(rig.hv, 2, EIO);
    tg_msi_enable(rig.bus, vga, tg_msi_address(0, false, false), tg_msi_data(0x41, 0, false), 1);
    g_assert_true(hypervisor_sim_fault_fired(rig.hv));
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, vga)->msi), ==, 0);
    g_assert_cmpuint(hypervisor_sim_pirqs(rig.hv), ==, pirqs);
    g_assert_cmpuint(rig_log_count("the hypervisor refused it"), ==, 1);
    /* The guest tries again and gets it. */
    tg_msi_disable(rig.bus, vga);
    tg_msi_enable(rig.bus, vga, tg_msi_address(0, false, false), tg_msi_data(0x41, 0, false), 1);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&rig, vga)->msi), ==, 1);
    rig_down(&rig);
}

/* A saved shadow with MSI enabled binds again when loaded (restore). */
static void test_msi_restore(void)
{
    Rig rig;
    uint8_t vga = PT_DEVFN(4, 0);
    PtError err;

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0@4");
    tg_msi_enable(rig.bus, vga, tg_msi_address(6, false, false), tg_msi_data(0x48, 0, false), 1);
    g_autofree uint8_t *saved = g_memdup2(pt_func_shadow(gfunc_at(&rig, vga)->fn), 4096);
    g_assert_cmpint(pt_guest_detach(rig.guest, "06:00.0", &err), ==, 1);
    rig_attach(&rig, "06:00.0@4");
    const PtGuestFunc *gf = gfunc_at(&rig, vga);
    g_assert_cmpuint(pt_msi_bound(gf->msi), ==, 0);
    size_t mark = hypervisor_sim_log_len(rig.hv);
    g_assert_cmpint(pt_func_load_shadow(gf->fn, saved, 4096), ==, 0);
    g_autofree char *log = msi_log_since(&rig, mark);
    g_assert_cmpstr(log, ==,
        "map_pirq_msi 0000:06:00.0 entry=0 table=0x0 pirq=256\n"
        "bind_msi pirq=256 vector=0x48 dest=0x6 mode=0 flags=0x8 table=0x0\n");
    rig_down(&rig);
}

/*
 * msitranslate=1: the HD audio function's MSI is bound to its guest INTx
 * (no GSI); the guest's own MSI takes over and gives it back; a function
 * without MSI (the UHCI) keeps its INTx through the GSI, said once.
 */
static void test_msitranslate(void)
{
    uint8_t hda = PT_DEVFN(8, 0);      /* alone in its slot: function 0 */
    Rig rig;

    rig_up(&rig, ASUS);
    size_t mark = hypervisor_sim_log_len(rig.hv);
    rig_attach(&rig, "06:00.1@8,msitranslate=1");
    g_autofree char *on = msi_log_since(&rig, mark);
    g_assert_cmpstr(on, ==,
        "map_pirq_msi 0000:06:00.1 entry=0 table=0x0 pirq=256\n"
        "bind_msi_intx pirq=256 devfn=08.0 intx=B\n");
    const PtGuestFunc *gf = gfunc_at(&rig, hda);
    g_assert_true(pt_msi_translating(gf->msi));
    g_assert_cmpuint(hypervisor_sim_bindings(rig.hv), ==, 1);
    g_autofree TgScan *scan = scan_assign(&rig);

    mark = hypervisor_sim_log_len(rig.hv);
    g_assert_cmphex(tg_msi_enable(rig.bus, hda, tg_msi_address(2, false, false),
                                  tg_msi_data(0x52, 0, false), 1), ==, 0x68);
    g_autofree char *own = msi_log_since(&rig, mark);
    g_assert_cmpstr(own, ==,
        "unbind_msi_intx pirq=256 devfn=08.0 intx=B\n"
        "unmap_pirq pirq=256\n"
        "map_pirq_msi 0000:06:00.1 entry=0 table=0x0 pirq=256\n"
        "bind_msi pirq=256 vector=0x52 dest=0x2 mode=0 flags=0x8 table=0x0\n");
    g_assert_false(pt_msi_translating(gf->msi));
    mark = hypervisor_sim_log_len(rig.hv);
    tg_msi_disable(rig.bus, hda);
    g_autofree char *back = msi_log_since(&rig, mark);
    g_assert_cmpstr(back, ==,
        "unbind_msi pirq=256 vector=0x52 dest=0x2 mode=0 flags=0x8 table=0x0\n"
        "unmap_pirq pirq=256\n"
        "map_pirq_msi 0000:06:00.1 entry=0 table=0x0 pirq=256\n"
        "bind_msi_intx pirq=256 devfn=08.0 intx=B\n");
    g_assert_true(pt_msi_translating(gf->msi));

    mark = hypervisor_sim_log_len(rig.hv);
    rig_attach(&rig, "00:1d.0@9,msitranslate=1");
    g_autofree char *gsi = log_since(&rig, mark);
    g_assert_nonnull(strstr(gsi, "bind_intx pirq="));
    g_assert_null(strstr(gsi, "map_pirq_msi"));
    g_assert_cmpuint(rig_log_count("msitranslate=1: no MSI capability; INTx goes through "
                                   "the GSI"), ==, 1);
    rig_down(&rig);
}

/* ---- MSI-X ---- */

/* A NIC with MSI-X attached at 04.0, the guest's BARs assigned, its table
 * found: what every MSI-X test starts from. */
typedef struct MsixFx {
    Rig rig;
    uint8_t nic;
    TgScan *scan;
    const TgFunc *f;
    TgMsix x;
} MsixFx;

static void msix_up(MsixFx *fx, const char *dump, const char *spec)
{
    fx->nic = PT_DEVFN(4, 0);
    rig_up(&fx->rig, dump);
    rig_attach(&fx->rig, spec);
    fx->scan = scan_assign(&fx->rig);
    fx->f = tg_find(fx->scan, fx->nic);
    g_assert_nonnull(fx->f);
    g_assert_cmpint(tg_msix_find(fx->rig.bus, fx->nic, &fx->x), ==, 0);
}

static void msix_down(MsixFx *fx)
{
    g_free(fx->scan);
    rig_down(&fx->rig);
}

static bool page_mapped(Rig *rig, uint64_t gaddr)
{
    uint64_t mfn;

    return hypervisor_sim_mmio_lookup(rig->hv, gaddr >> PT_PAGE_SHIFT, &mfn);
}

/* 82576: table at BAR3+0, PBA at BAR3+0x2000 in a 16K BAR. */
static void test_msix_82576(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    const TgFunc *f = fx.f;
    g_assert_cmpuint(fx.x.nvec, ==, 10);
    g_assert_cmpint(fx.x.table_bar, ==, 3);
    g_assert_cmphex(fx.x.table, ==, f->bar[3].base);
    g_assert_cmphex(fx.x.pba, ==, f->bar[3].base + 0x2000);

    /* Pages 0 (table) and 2 (PBA) trapped, 1 and 3 mapped onto the host. */
    uint64_t bar3 = f->bar[3].base, mfn;
    g_assert_false(page_mapped(&fx.rig, bar3));
    g_assert_true(hypervisor_sim_mmio_lookup(fx.rig.hv, (bar3 + 0x1000) >> 12, &mfn));
    g_assert_cmphex(mfn, ==, (0xe0840000u + 0x1000) >> 12);
    g_assert_false(page_mapped(&fx.rig, bar3 + 0x2000));
    g_assert_true(page_mapped(&fx.rig, bar3 + 0x3000));
    /* The other BARs are mapped whole. */
    g_assert_true(page_mapped(&fx.rig, f->bar[0].base));
    g_assert_true(page_mapped(&fx.rig, f->bar[1].base + 0x3ff000));
    uint64_t v;
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, bar3 + 0x1000, 4, &v), ==, -ENOENT);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, f->bar[0].base, 4, &v), ==, -ENOENT);
    /* Every entry starts masked, address and data 0. */
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.table + 9 * 16 + 12, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, PT_MSIX_ENTRY_MASKED);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.table, 8, &v), ==, 0);
    g_assert_cmphex(v, ==, 0);

    /* Linux's order: enable with the function masked, program, unmask. */
    size_t mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, true);
    for (unsigned i = 0; i < 4; i++)
        g_assert_cmpint(tg_msix_program(fx.rig.bus, &fx.x, i, tg_msi_address((uint8_t)i, false, false),
                                        tg_msi_data((uint8_t)(0xa0 + i), 0, false), true), ==, 0);
    g_assert_cmpuint(hypervisor_sim_log_len(fx.rig.hv), ==, mark);    /* function-masked */
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    g_autofree char *on = log_since(&fx.rig, mark);
    GString *want = g_string_new("");
    for (unsigned i = 0; i < 4; i++)
        g_string_append_printf(want,
            "map_pirq_msi 0000:01:00.0 entry=%u table=0xe0840000 pirq=%u\n"
            "bind_msi pirq=%u vector=0x%02x dest=0x%x mode=0 flags=0x8 table=0x" X64 "\n",
            i, 256 + i, 256 + i, 0xa0 + i, i, fx.x.table);
    g_assert_cmpstr(on, ==, want->str);
    g_string_free(want, TRUE);
    /* The guest reads back what it wrote. */
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.table + 2 * 16 + 8, 8, &v), ==, 0);
    g_assert_cmphex(v, ==, 0xa2);

    /* Re-programming entry 1 the proper way (mask, write, unmask). */
    mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_msix_program(fx.rig.bus, &fx.x, 1, tg_msi_address(7, true, false),
                    tg_msi_data(0xb1, 1, false), true);
    g_autofree char *reprog = log_since(&fx.rig, mark);
    g_autofree char *want_reprog = g_strdup_printf(
        "update_msi pirq=257 vector=0xa1 dest=0x1 mode=0 flags=0x0 table=0x" X64 "\n"
        "update_msi pirq=257 vector=0xb1 dest=0x7 mode=1 flags=0x9 table=0x" X64 "\n",
        fx.x.table, fx.x.table);
    g_assert_cmpstr(reprog, ==, want_reprog);

    /* Disable: every vector unbound and unmapped. */
    mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, false, false);
    g_autofree char *off = log_since(&fx.rig, mark);
    g_assert_cmpuint(count_substr(off, "unbind_msi"), ==, 4);
    g_assert_cmpuint(count_substr(off, "unmap_pirq"), ==, 4);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&fx.rig, fx.nic)->msi), ==, 0);
    g_assert_cmpuint(hypervisor_sim_pirqs(fx.rig.hv), ==, 1);       /* INTx */
    msix_down(&fx);
}

/* ConnectX-3 Pro: 256 vectors, table at BAR0+0x7c000, PBA at +0x7d000. */
static void test_msix_cx3pro(void)
{
    static const unsigned entries[] = { 0, 1, 2, 127, 128, 255 };
    MsixFx fx;

    msix_up(&fx, CX3, "03:00.0");
    const TgFunc *f = fx.f;
    g_assert_cmpuint(fx.x.nvec, ==, 256);
    g_assert_cmphex(fx.x.table, ==, f->bar[0].base + 0x7c000);
    g_assert_cmphex(fx.x.pba, ==, f->bar[0].base + 0x7d000);
    /* 1M BAR0: two trapped pages, the 254 others mapped in two pieces. */
    for (uint64_t off = 0; off < f->bar[0].size; off += PT_PAGE_SIZE)
        g_assert_cmpint(page_mapped(&fx.rig, f->bar[0].base + off), ==,
                        off != 0x7c000 && off != 0x7d000);
    g_assert_true(page_mapped(&fx.rig, f->bar[2].base));

    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, true);
    for (size_t i = 0; i < G_N_ELEMENTS(entries); i++)
        tg_msix_program(fx.rig.bus, &fx.x, entries[i], tg_msi_address((uint8_t)i, false, false),
                        tg_msi_data((uint8_t)(0x30 + entries[i] % 0xc0), 1, false), true);
    size_t mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    g_autofree char *on = log_since(&fx.rig, mark);
    GString *want = g_string_new("");
    for (size_t i = 0; i < G_N_ELEMENTS(entries); i++)
        g_string_append_printf(want,
            "map_pirq_msi 0000:03:00.0 entry=%u table=0xc0100000 pirq=%zu\n"
            "bind_msi pirq=%zu vector=0x%02x dest=0x%zx mode=1 flags=0x8 table=0x" X64 "\n",
            entries[i], 256 + i, 256 + i, 0x30 + entries[i] % 0xc0, i, fx.x.table);
    g_assert_cmpstr(on, ==, want->str);
    g_string_free(want, TRUE);

    /* Function mask: every bound entry is told, none is unbound. */
    mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, true);
    g_autofree char *masked = log_since(&fx.rig, mark);
    g_assert_cmpuint(count_substr(masked, "update_msi"), ==, G_N_ELEMENTS(entries));
    g_assert_cmpuint(count_substr(masked, "flags=0x0 "), ==, G_N_ELEMENTS(entries));
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&fx.rig, fx.nic)->msi), ==, G_N_ELEMENTS(entries));
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);

    /* Unplug with everything live: nothing left (rig_down checks). */
    PtError err;
    g_assert_cmpint(pt_guest_detach(fx.rig.guest, "03:00.0", &err), ==, 1);
    g_assert_cmpuint(hypervisor_sim_pirqs(fx.rig.hv), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(fx.rig.hv), ==, 0);
    msix_down(&fx);
}

/* Address/data written to an unmasked entry take effect at its next unmask. */
static void test_msix_write_while_unmasked(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    tg_msix_program(fx.rig.bus, &fx.x, 0, tg_msi_address(1, false, false),
                    tg_msi_data(0x40, 0, false), true);
    size_t mark = hypervisor_sim_log_len(fx.rig.hv);
    g_assert_cmpint(tg_mmio_write(fx.rig.bus, fx.x.table + PT_MSIX_ENTRY_DATA, 4, 0x45), ==, 0);
    g_assert_cmpuint(hypervisor_sim_log_len(fx.rig.hv), ==, mark);
    uint64_t v;
    tg_mmio_read(fx.rig.bus, fx.x.table + PT_MSIX_ENTRY_DATA, 4, &v);
    g_assert_cmphex(v, ==, 0x45);
    g_assert_cmpuint(rig_log_count("written while unmasked"), ==, 1);
    tg_msix_mask(fx.rig.bus, &fx.x, 0, true);
    tg_msix_mask(fx.rig.bus, &fx.x, 0, false);
    g_autofree char *log = log_since(&fx.rig, mark);
    g_autofree char *want = g_strdup_printf(
        "update_msi pirq=256 vector=0x40 dest=0x1 mode=0 flags=0x0 table=0x" X64 "\n"
        "update_msi pirq=256 vector=0x45 dest=0x1 mode=0 flags=0x8 table=0x" X64 "\n",
        fx.x.table, fx.x.table);
    g_assert_cmpstr(log, ==, want);
    msix_down(&fx);
}

/* A hypervisor that keeps mask writes (Xen without XENFEAT_dm_msix_all_writes)
 * sends on only the unmask after new data: that unmask binds the data, and
 * the data write before it is no bad access (the mask was likely there). */
static void test_msix_mask_kept_by_hypervisor(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    hypervisor_sim_set_msix_all_writes(fx.rig.hv, false);
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    tg_msix_program(fx.rig.bus, &fx.x, 0, tg_msi_address(1, false, false),
                    tg_msi_data(0x40, 0, false), true);
    size_t mark = hypervisor_sim_log_len(fx.rig.hv);
    g_assert_cmpint(tg_mmio_write(fx.rig.bus, fx.x.table + PT_MSIX_ENTRY_DATA, 4, 0x45), ==, 0);
    g_assert_cmpuint(hypervisor_sim_log_len(fx.rig.hv), ==, mark);
    g_assert_cmpuint(rig_log_count("written while unmasked"), ==, 0);
    tg_msix_mask(fx.rig.bus, &fx.x, 0, false);
    g_autofree char *log = log_since(&fx.rig, mark);
    g_autofree char *want = g_strdup_printf(
        "update_msi pirq=256 vector=0x45 dest=0x1 mode=0 flags=0x8 table=0x" X64 "\n", fx.x.table);
    g_assert_cmpstr(log, ==, want);
    msix_down(&fx);
}

/* Wrong sizes and misaligned table accesses: refused, logged once. */
static void test_msix_bad_access_refused_once(void)
{
    static const struct { unsigned off, len; } bad[] = {
        { 0, 1 }, { 0, 2 }, { 2, 4 }, { 4, 8 }, { 12, 2 }, { 13, 1 }, { 0x2000 + 2, 4 },
    };
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    const PtGuestFunc *gf = gfunc_at(&fx.rig, fx.nic);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        uint64_t v = 0;
        g_assert_cmpint(tg_mmio_write(fx.rig.bus, fx.x.table + bad[i].off, bad[i].len, 0), ==, -EINVAL);
        g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.table + bad[i].off, bad[i].len, &v), ==, -EINVAL);
        g_assert_cmphex(v, ==, bad[i].len == 8 ? UINT64_MAX : (1ull << (8 * bad[i].len)) - 1);
    }
    /* The mask bit the byte writes aimed at is untouched. */
    uint64_t v;
    tg_mmio_read(fx.rig.bus, fx.x.table + 12, 4, &v);
    g_assert_cmphex(v, ==, PT_MSIX_ENTRY_MASKED);
    g_assert_cmpuint(rig_log_count("refused: aligned 4 or 8 bytes only"), ==, 1);
    g_assert_cmpuint(pt_msi_bad_accesses(gf->msi), ==, 2 * G_N_ELEMENTS(bad));
    msix_down(&fx);
}

/* The PBA is the host's: reads come from the BAR, writes are refused. */
static void test_msix_pba_from_host(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    g_autofree char *res = g_build_filename(fx.rig.tree, "devices", "0000:01:00.0", "resource3", NULL);
    FILE *fp = fopen(res, "r+b");
    uint64_t pending = 0x205, v;
    fseek(fp, 0x2000, SEEK_SET);
    fwrite(&pending, 8, 1, fp);
    fclose(fp);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.pba, 8, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x205);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.pba, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x205);
    g_assert_cmpint(tg_mmio_write(fx.rig.bus, fx.x.pba, 8, 0), ==, -EPERM);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.pba, 8, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x205);
    /* Past the PBA's 8 bytes, the page is the host's BAR as if mapped. */
    g_assert_cmpint(tg_mmio_write(fx.rig.bus, fx.x.pba + 0x100, 4, 0x12345678), ==, 0);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, fx.x.pba + 0x100, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x12345678);
    msix_down(&fx);
}

/* Platform reset and BAR moves while MSI-X vectors are live. */
static void test_msix_reset_and_bar_move(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    tg_msix_program(fx.rig.bus, &fx.x, 3, tg_msi_address(2, false, false),
                    tg_msi_data(0x66, 0, false), true);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&fx.rig, fx.nic)->msi), ==, 1);

    /* Move BAR3: pieces move, the binding learns the new table address. */
    uint64_t moved = 0xe0000000;
    size_t mark = hypervisor_sim_log_len(fx.rig.hv);
    tg_cfg_write(fx.rig.bus, fx.nic, PCI_BASE_ADDRESS_3, (uint32_t)moved, 4);
    g_autofree char *mv = log_since(&fx.rig, mark);
    g_autofree char *want_upd = g_strdup_printf(
        "update_msi pirq=256 vector=0x66 dest=0x2 mode=0 flags=0x8 table=0x" X64 "\n", moved);
    g_assert_nonnull(strstr(mv, want_upd));
    g_assert_false(page_mapped(&fx.rig, moved));
    g_assert_true(page_mapped(&fx.rig, moved + 0x1000));
    g_assert_false(page_mapped(&fx.rig, fx.x.table + 0x1000));
    TgMsix y;
    tg_msix_find(fx.rig.bus, fx.nic, &y);
    uint64_t v;
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, y.table + 3 * 16 + 8, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x66);

    /* Reset: vectors gone, every entry masked again. */
    pci_bus_reset(fx.rig.bus);
    g_assert_cmpuint(pt_msi_bound(gfunc_at(&fx.rig, fx.nic)->msi), ==, 0);
    g_assert_cmpuint(hypervisor_sim_pirqs(fx.rig.hv), ==, 1);
    g_autofree TgScan *again = scan_assign(&fx.rig);
    tg_msix_find(fx.rig.bus, fx.nic, &y);
    g_assert_cmpint(tg_mmio_read(fx.rig.bus, y.table + 3 * 16 + 8, 8, &v), ==, 0);
    g_assert_cmphex(v, ==, (uint64_t)PT_MSIX_ENTRY_MASKED << 32);
    msix_down(&fx);
}

/* ---- the advisories ---- */

/* XSA-128: a 4-byte write at cap+8 of a 32-bit MSI capability (data plus
 * the two bytes after it) never reaches the host. */
static void test_xsa128_msi32_data(void)
{
    Rig rig;
    uint8_t wifi = PT_DEVFN(4, 0);

    rig_up(&rig, SAMSUNG);
    rig_attach(&rig, "03:00.0");
    const PtGuestFunc *gf = gfunc_at(&rig, wifi);
    unsigned cap = pt_func_find_cap(gf->fn, PCI_CAP_ID_MSI);
    g_assert_cmphex(cap, ==, 0x50);
    g_assert_cmphex(tg_cfg_read(rig.bus, wifi, cap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_64BIT, ==, 0);
    /* Enabling sets the host's enable bit (Xen leaves it to dom0): the
     * snapshot comes after it. */
    tg_msi_enable(rig.bus, wifi, tg_msi_address(1, false, false), tg_msi_data(0x51, 0, false), 1);
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:03:00.0");
    unsigned long writes = host_func_counters(pt_func_host(gf->fn)).writes;
    tg_cfg_write(rig.bus, wifi, cap + PCI_MSI_DATA_32, 0xffffffff, 4);
    tg_cfg_write(rig.bus, wifi, cap + PCI_MSI_DATA_32, 0x12345678, 4);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:03:00.0");
    assert_bytes_equal(before, after);
    g_assert_cmpuint(host_func_counters(pt_func_host(gf->fn)).writes, ==, writes);
    /* The guest's own view took the data half only. */
    g_assert_cmphex(tg_cfg_read(rig.bus, wifi, cap + PCI_MSI_DATA_32, 2), ==, 0x5678);
    rig_down(&rig);
}

/* XSA-129: per-vector masking hidden; mask and pending writes stay ours. */
static void test_xsa129_mask_bits(void)
{
    Rig rig;
    uint8_t nic = PT_DEVFN(4, 0);

    rig_up(&rig, I82576);
    rig_attach(&rig, "01:00.0");
    g_autoptr(GBytes) host = rig_host_config(&rig, "0000:01:00.0");
    const uint8_t *h = g_bytes_get_data(host, NULL);
    g_assert_cmphex(h[0x50 + PCI_MSI_FLAGS + 1] & (PCI_MSI_FLAGS_MASK_BIT >> 8), !=, 0);
    g_assert_cmphex(tg_cfg_read(rig.bus, nic, 0x50 + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_MASK_BIT, ==, 0);

    tg_msi_enable(rig.bus, nic, tg_msi_address(0, false, false), tg_msi_data(0x41, 0, false), 1);
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:01:00.0");
    for (unsigned off = PCI_MSI_MASK_BIT_64; off < PCI_MSI_PENDING_64 + 4; off += 4)
        tg_cfg_write(rig.bus, nic, 0x50 + off, 0xffffffff, 4);
    tg_cfg_write(rig.bus, nic, 0x50 + PCI_MSI_FLAGS, 0xffff, 2);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:01:00.0");
    assert_bytes_equal(before, after);
    g_assert_cmphex(tg_cfg_read(rig.bus, nic, 0x50 + PCI_MSI_MASK_BIT_64, 4), ==, 0);
    g_assert_cmphex(tg_cfg_read(rig.bus, nic, 0x50 + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_MASK_BIT, ==, 0);
    rig_down(&rig);
}

/* XSA-130: 10^5 bad MSI-X writes make a bounded number of log lines. */
static void test_xsa130_bounded_log(void)
{
    MsixFx fx;

    msix_up(&fx, I82576, "01:00.0");
    tg_msix_control(fx.rig.bus, fx.nic, &fx.x, true, false);
    tg_msix_program(fx.rig.bus, &fx.x, 0, tg_msi_address(1, false, false),
                    tg_msi_data(0x40, 0, false), true);
    g_autoptr(GBytes) before = rig_host_config(&fx.rig, "0000:01:00.0");
    guint lines = rig_log()->len;
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t at = i % 3 == 0 ? fx.x.table + PT_MSIX_ENTRY_DATA   /* unmasked entry */
                    : i % 3 == 1 ? fx.x.pba                            /* read-only */
                    : fx.x.table + 1;                                  /* misaligned */
        tg_mmio_write(fx.rig.bus, at, i % 3 == 2 ? 2 : 4, 0x40 + (i & 0x3f));
    }
    const PtGuestFunc *gf = gfunc_at(&fx.rig, fx.nic);
    g_assert_cmpuint(pt_msi_bad_accesses(gf->msi), >=, 100000 - 100000 / 3 / 64);
    g_assert_cmpuint(rig_log()->len - lines, <=, PT_MSI_LOG_BURST + 1);
    g_assert_cmpuint(rig_log_count("further bad MSI/MSI-X accesses are counted, not logged"), ==, 1);
    g_autoptr(GBytes) after = rig_host_config(&fx.rig, "0000:01:00.0");
    assert_bytes_equal(before, after);
    PtError err;
    pt_guest_detach(fx.rig.guest, "01:00.0", &err);
    g_assert_cmpuint(rig_log_count("bad MSI/MSI-X accesses in all"), ==, 1);
    msix_down(&fx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/msi/decode", test_decode);
    g_test_add_func("/msi/gt218-pair", test_msi_gt218_pair);
    g_test_add_func("/msi/82576", test_msi_82576);
    g_test_add_func("/msi/multiple-message", test_msi_multiple_message);
    g_test_add_func("/msi/bad-address-and-refusal", test_msi_bad_address_and_refusal);
    g_test_add_func("/msi/restore", test_msi_restore);
    g_test_add_func("/msi/msitranslate", test_msitranslate);
    g_test_add_func("/msix/82576", test_msix_82576);
    g_test_add_func("/msix/cx3pro-256", test_msix_cx3pro);
    g_test_add_func("/msix/write-while-unmasked", test_msix_write_while_unmasked);
    g_test_add_func("/msix/mask-kept-by-hypervisor", test_msix_mask_kept_by_hypervisor);
    g_test_add_func("/msix/bad-access-refused-once", test_msix_bad_access_refused_once);
    g_test_add_func("/msix/pba-from-host", test_msix_pba_from_host);
    g_test_add_func("/msix/reset-and-bar-move", test_msix_reset_and_bar_move);
    g_test_add_func("/xsa/128-msi32-data", test_xsa128_msi32_data);
    g_test_add_func("/xsa/129-mask-bits", test_xsa129_mask_bits);
    g_test_add_func("/xsa/130-bounded-log", test_xsa130_bounded_log);
    return g_test_run();
}
