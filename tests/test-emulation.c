/*
 * Config-space emulation through the guest's eyes and the host's bytes:
 *  - real lspci reads the guest view and agrees with the host on IDs,
 *    class, subsystem, the visible capabilities and BAR sizes;
 *  - BARs of every kind map, move and unmap in the sim hypervisor's log;
 *  - the Xen advisories' probes: the host config file is compared byte
 *    for byte before and after.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "hypervisor-sim.h"
#include "host-dump.h"
#include "simtree.h"
#include "rig.h"
#include "test-guest.h"

#define ASUS   "asus-p6t6-x58-ich10-gt218.lspci"
#define I82576 "intel-82576-sriov.lspci"
#define ICH7   "gigabyte-ich7m-rootports.lspci"

/* ---- running real lspci ---- */

static char *run_lspci(const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) gerr = NULL;
    char *out = NULL;
    g_autofree char *errout = NULL;
    int status;

    g_ptr_array_add(argv, (char *)"lspci");
    for (int i = 0; args[i]; i++)
        g_ptr_array_add(argv, (char *)args[i]);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, &errout, &status, &gerr));
    g_assert_no_error(gerr);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return out;
}

/* The section of lspci -v output that starts with "BB:SS.F ". */
static char *section(const char *text, const char *bdf)
{
    g_autofree char *head = g_strdup_printf("%s ", bdf);
    g_auto(GStrv) parts = g_strsplit(text, "\n\n", -1);

    for (int i = 0; parts[i]; i++) {
        const char *p = parts[i] + strspn(parts[i], "\n");
        if (g_str_has_prefix(p, head))
            return g_strdup(p + strlen(head));
    }
    g_error("no %s in lspci output:\n%s", bdf, text);
}

/* Lines of a section that start with prefix (after the tab), joined. */
static char *lines_with(const char *sec, const char *prefix, gboolean (*keep)(const char *))
{
    g_auto(GStrv) lines = g_strsplit(sec, "\n", -1);
    GString *out = g_string_new("");

    for (int i = 0; lines[i]; i++) {
        const char *l = lines[i] + strspn(lines[i], "\t");
        if (lines[i][0] == '\t' && lines[i][1] != '\t' && g_str_has_prefix(l, prefix) &&
            (!keep || keep(l)))
            g_string_append_printf(out, "%s\n", l);
    }
    return g_string_free(out, FALSE);
}

/* The capabilities a guest is shown (see README.multifunction). */
static gboolean visible_cap(const char *line)
{
    static const char *const legacy[] = { "Power Management", "MSI:", "MSI-X:", "Express",
                                          "Vendor Specific" };
    static const char *const extended[] = { "Advanced Error Reporting", "Device Serial Number" };
    const char *open = strchr(line, '['), *name = strchr(line, ']');
    bool ext = open && name && memchr(open, ' ', (size_t)(name - open));
    const char *const *kept = ext ? extended : legacy;
    size_t n = ext ? G_N_ELEMENTS(extended) : G_N_ELEMENTS(legacy);

    for (size_t i = 0; name && i < n; i++)
        if (g_str_has_prefix(name + 2, kept[i]))
            return TRUE;
    return FALSE;
}

/* "Capabilities: [68] MSI: Enable- ..." -> "Capabilities: [68] MSI:" */
static char *cap_heads(const char *sec)
{
    g_autofree char *caps = lines_with(sec, "Capabilities:", visible_cap);
    g_auto(GStrv) lines = g_strsplit(caps, "\n", -1);
    GString *out = g_string_new("");

    for (int i = 0; lines[i] && lines[i][0]; i++) {
        g_auto(GStrv) words = g_strsplit(lines[i], " ", 4);
        g_string_append_printf(out, "%s %s %s\n", words[0], words[1], words[2] ? words[2] : "");
    }
    return g_string_free(out, FALSE);
}

/* "Region 1: Memory at ... [size=256M]" -> "Region 1: [size=256M]" */
static char *bar_sizes(const char *sec)
{
    g_auto(GStrv) lines = g_strsplit(sec, "\n", -1);
    GString *out = g_string_new("");

    for (int i = 0; lines[i]; i++) {
        const char *l = lines[i] + strspn(lines[i], "\t");
        const char *size = strstr(l, "[size=");
        bool rom = g_str_has_prefix(l, "Expansion ROM");
        if ((g_str_has_prefix(l, "Region ") || rom) && size)
            g_string_append_printf(out, "%.*s %.*s\n", rom ? 13 : (int)strcspn(l, ":"), l,
                                   (int)strcspn(size, "]") + 1, size);
    }
    return g_string_free(out, FALSE);
}

static unsigned count_lines(const char *text)
{
    unsigned n = 0;

    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* ---- the guest view as files real lspci reads ---- */

static char *write_guest_dump(PciBus *bus)
{
    g_autofree char *text = pci_bus_dump_lspci(bus);
    g_autoptr(GError) gerr = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("guest-XXXXXX.lspci", &path, &gerr);

    g_assert_no_error(gerr);
    close(fd);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

/* lspci's dump format has no BAR sizes, so the guest view also goes into a
 * sysfs-shaped tree whose resource files carry what the guest sized. */
static char *write_guest_tree(PciBus *bus, const TgScan *scan)
{
    HostDump dump = { .nfuncs = scan->nfuncs, .funcs = g_new0(DumpFunc, scan->nfuncs) };
    char *dir = g_dir_make_tmp("guest-tree-XXXXXX", NULL);
    PtError err;

    for (int i = 0; i < scan->nfuncs; i++) {
        const TgFunc *f = &scan->funcs[i];
        DumpFunc *d = &dump.funcs[i];
        d->bdf = (PtBdf){ 0, 0, PT_SLOT(f->devfn), PT_FUNC(f->devfn) };
        d->config_len = 256;
        for (unsigned o = 0; o < 256; o += 4) {
            uint32_t v = pci_bus_cfg_read(bus, f->devfn, o, 4);
            memcpy(d->config + o, &v, 4);
        }
        for (int b = 0; b < PCI_NUM_BARS; b++)
            d->bar_size[b] = f->bar[b].size;
    }
    if (host_sim_write(&dump, dir, NULL, 0, &err) < 0)
        g_error("%s", err.msg);
    g_free(dump.funcs);
    return dir;
}

typedef struct Placed {
    const char *host;       /* BB:SS.F on the host */
    const char *guest;      /* BB:SS.F in the guest */
} Placed;

static void test_lspci_guest_view(void)
{
    static const Placed placed[] = {
        { "00:1d.0", "00:07.0" }, { "00:1d.1", "00:07.1" }, { "00:1d.2", "00:07.2" },
        { "00:1d.7", "00:07.7" }, { "06:00.0", "00:08.1" }, { "06:00.1", "00:08.0" },
        { "ff:03.4", "00:04.0" },
    };
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "00:1d.*@7");
    rig_attach(&rig, "06:00.1,0@8,map=least");
    rig_attach(&rig, "ff:03.4");
    tg_scan(rig.bus, true, scan);

    g_autofree char *dump = write_guest_dump(rig.bus);
    g_autofree char *gtree = write_guest_tree(rig.bus, scan);
    g_autofree char *hopt = g_strdup_printf("sysfs.path=%s", rig.tree);
    g_autofree char *gopt = g_strdup_printf("sysfs.path=%s", gtree);
    const char *host_args[] = { "-A", "linux-sysfs", "-O", hopt, "-vvv", "-nn", NULL };
    const char *dump_args[] = { "-F", dump, "-vvv", "-nn", NULL };
    const char *tree_args[] = { "-A", "linux-sysfs", "-O", gopt, "-vvv", "-nn", NULL };
    g_autofree char *host = run_lspci(host_args);
    g_autofree char *guest = run_lspci(dump_args);
    g_autofree char *gsized = run_lspci(tree_args);

    for (size_t i = 0; i < G_N_ELEMENTS(placed); i++) {
        g_autofree char *hs = section(host, placed[i].host);
        g_autofree char *gs = section(guest, placed[i].guest);
        g_autofree char *gz = section(gsized, placed[i].guest);
        g_autofree char *h_title = g_strndup(hs, strcspn(hs, "\n"));
        g_autofree char *g_title = g_strndup(gs, strcspn(gs, "\n"));
        g_autofree char *h_sub = lines_with(hs, "Subsystem:", NULL);
        g_autofree char *g_sub = lines_with(gs, "Subsystem:", NULL);
        g_autofree char *h_caps = cap_heads(hs);
        g_autofree char *g_caps_all = lines_with(gs, "Capabilities:", NULL);
        g_autofree char *g_caps = cap_heads(gs);
        g_autofree char *h_bars = bar_sizes(hs);
        g_autofree char *g_bars = bar_sizes(gz);

        /* vendor, device, class, revision, prog-if: the whole title line */
        g_assert_cmpstr(g_title, ==, h_title);
        g_assert_cmpstr(g_sub, ==, h_sub);
        /* the host's chain minus the hidden capabilities, nothing else */
        g_assert_cmpstr(g_caps, ==, h_caps);
        g_assert_cmpuint(count_lines(g_caps_all), ==, count_lines(g_caps));
        g_assert_cmpstr(g_bars, ==, h_bars);
    }
    /* Hidden ones really are gone: EHCI's debug port, the GPU's VC/VSEC. */
    g_autofree char *ehci = section(guest, "00:07.7");
    g_assert_null(strstr(ehci, "Debug port"));
    g_autofree char *gpu = section(guest, "00:08.1");
    g_assert_null(strstr(gpu, "Virtual Channel"));
    g_assert_nonnull(strstr(gpu, "Express (v2)"));

    g_unlink(dump);
    simtree_remove(g_steal_pointer(&gtree));
    g_free(scan);
    rig_down(&rig);
}


/* ---- BARs of every kind, in the sim hypervisor's log ---- */

static PciDevice *device_at(Rig *rig, uint8_t devfn)
{
    PciDevice *d = pci_bus_device(rig->bus, devfn);

    g_assert_nonnull(d);
    return d;
}

static void assert_bar_sizes_equal_host(Rig *rig, const TgScan *scan)
{
    for (int i = 0; i < pt_guest_count(rig->guest); i++) {
        const PtGuestFunc *gf = pt_guest_func_at(rig->guest, i);
        const TgFunc *tf = tg_find(scan, gf->vdevfn);
        for (int b = 0; b < PCI_NUM_BARS; b++) {
            PtBar host;
            uint64_t want = pt_func_bar(gf->fn, b, &host) == 0 ? host.size : 0;
            g_assert_cmphex(tf->bar[b].size, ==, want);
            if (want && b < PCI_BAR_ROM) {
                g_assert_cmpint(tf->bar[b].io, ==, host.io);
                g_assert_cmpint(tf->bar[b].mem64, ==, host.mem64);
                g_assert_cmpint(tf->bar[b].prefetch, ==, host.prefetch);
            }
        }
    }
}

static char *log_since(Rig *rig, size_t from)
{
    return hypervisor_sim_log_text(rig->hv, from);
}

static void test_bar_kinds(void)
{
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "00:1d.*@7");          /* UHCI I/O BAR4, EHCI mem32 BAR0 */
    rig_attach(&rig, "06:00.*@8");          /* GT218: mem32, 2 x mem64 prefetchable, I/O, ROM */
    tg_scan(rig.bus, true, scan);
    assert_bar_sizes_equal_host(&rig, scan);

    /* GT218 VGA at 08.0: BAR0 16M mem32, BAR1 256M and BAR3 32M mem64 pref, BAR5 I/O 128. */
    const TgFunc *vga = tg_find(scan, PT_DEVFN(8, 0));
    g_assert_cmphex(vga->bar[0].size, ==, 16u << 20);
    g_assert_true(vga->bar[1].mem64 && vga->bar[1].prefetch);
    g_assert_cmphex(vga->bar[1].size, ==, 256u << 20);
    g_assert_cmphex(vga->bar[3].size, ==, 32u << 20);
    g_assert_true(vga->bar[5].io);
    g_assert_cmphex(vga->bar[5].size, ==, 128);
    g_assert_cmphex(vga->bar[PCI_BAR_ROM].size, ==, 512u << 10);

    /* Every assigned BAR (not the disabled ROM) is mapped onto its host range. */
    PciDevice *d = device_at(&rig, PT_DEVFN(8, 0));
    for (int b = 0; b < PCI_BAR_ROM; b++)
        g_assert_cmpint(pci_device_bar_mapped(d, b), ==, vga->bar[b].size != 0);
    g_assert_false(pci_device_bar_mapped(d, PCI_BAR_ROM));
    uint64_t mfn;
    g_assert_true(hypervisor_sim_mmio_lookup(rig.hv, vga->bar[1].base >> 12, &mfn));
    g_assert_cmphex(mfn, ==, 0xd0000000u >> 12);

    /* Moving BAR0 while decode is on: the old range goes, the new one comes. */
    size_t mark = hypervisor_sim_log_len(rig.hv);
    uint64_t old = vga->bar[0].base, moved = 0xe0000000ull;     /* free: the window is packed from 0xc0000000 */
    tg_cfg_write(rig.bus, vga->devfn, PCI_BASE_ADDRESS_0, (uint32_t)moved, 4);
    g_autofree char *move = log_since(&rig, mark);
    g_autofree char *want_move = g_strdup_printf(
        "unmap_mmio gfn=0x%" G_GINT64_MODIFIER "x mfn=0xfa000 n=4096\n"
        "map_mmio gfn=0x%" G_GINT64_MODIFIER "x mfn=0xfa000 n=4096\n", old >> 12, moved >> 12);
    g_assert_cmpstr(move, ==, want_move);

    /* The upper half of a 64-bit BAR moves it above 4 GiB. */
    mark = hypervisor_sim_log_len(rig.hv);
    tg_cfg_write(rig.bus, vga->devfn, PCI_BASE_ADDRESS_1 + 4, 0x1, 4);
    g_assert_true(hypervisor_sim_mmio_lookup(rig.hv, (0x100000000ull | vga->bar[1].base) >> 12, &mfn));
    g_assert_false(hypervisor_sim_mmio_lookup(rig.hv, vga->bar[1].base >> 12, &mfn));

    /* ROM: mapped only while its enable bit is set. */
    uint32_t rom = (uint32_t)vga->bar[PCI_BAR_ROM].base;
    tg_cfg_write(rig.bus, vga->devfn, PCI_ROM_ADDRESS, rom | PCI_ROM_ADDRESS_ENABLE, 4);
    g_assert_true(pci_device_bar_mapped(d, PCI_BAR_ROM));
    g_assert_true(hypervisor_sim_mmio_lookup(rig.hv, rom >> 12, &mfn));
    g_assert_cmphex(mfn, ==, 0xfbc00000u >> 12);
    tg_cfg_write(rig.bus, vga->devfn, PCI_ROM_ADDRESS, rom, 4);
    g_assert_false(pci_device_bar_mapped(d, PCI_BAR_ROM));

    /* Decode off unmaps every memory BAR of the function; I/O stays with IO. */
    size_t io_before = hypervisor_sim_ioport_mappings(rig.hv);
    uint16_t cmd = (uint16_t)tg_cfg_read(rig.bus, vga->devfn, PCI_COMMAND, 2);
    tg_cfg_write(rig.bus, vga->devfn, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY, 2);
    for (int b = 0; b < PCI_BAR_ROM; b++)
        if (vga->bar[b].size && !vga->bar[b].io)
            g_assert_false(pci_device_bar_mapped(d, b));
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(rig.hv), ==, io_before);
    tg_cfg_write(rig.bus, vga->devfn, PCI_COMMAND, cmd & ~PCI_COMMAND_IO, 2);
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(rig.hv), ==, io_before - 1);

    /* Unplug leaves nothing: no mapping, pirq, permission or assignment. */
    PtError err;
    g_assert_cmpint(pt_guest_detach(rig.guest, "06:00.0", &err), ==, 2);
    g_assert_cmpint(pt_guest_detach(rig.guest, "00:1d.0", &err), ==, 4);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(rig.hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(rig.hv), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(rig.hv), ==, 0);
    g_free(scan);
    rig_down(&rig);
}

/* The 82576's ROM is 4M and its BAR3 (MSI-X) 16K; a 32-bit-only device. */
static void test_bar_rom_82576(void)
{
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);

    rig_up(&rig, I82576);
    rig_attach(&rig, "01:00.0");
    tg_scan(rig.bus, true, scan);
    assert_bar_sizes_equal_host(&rig, scan);
    const TgFunc *nic = tg_find(scan, PT_DEVFN(4, 0));
    g_assert_cmphex(nic->bar[PCI_BAR_ROM].size, ==, 4u << 20);
    g_assert_cmphex(nic->bar[3].size, ==, 16u << 10);
    g_assert_cmphex(nic->bar[2].size, ==, 32);
    g_assert_true(nic->bar[2].io);
    g_free(scan);
    rig_down(&rig);
}

/* ---- the advisories' probes ---- */

/* Only bits the host may take from a guest changed in the host's bytes. */
static void assert_host_changes_allowed(Rig *rig, PtFunc *fn, GBytes *before, GBytes *after)
{
    gsize n;
    const uint8_t *b = g_bytes_get_data(before, &n);
    const uint8_t *a = g_bytes_get_data(after, NULL);

    for (gsize o = 0; o < n; o++) {
        uint8_t allowed = pt_func_host_writable(fn, (unsigned)o) &
                          rig_header_host_changeable((unsigned)o, b[o], 0xff);
        if ((a[o] ^ b[o]) & ~allowed)
            g_error("host byte %#zx changed %02x -> %02x outside the allowed bits %02x",
                    o, b[o], a[o], allowed);
    }
    (void)rig;
}

static uint16_t host_word(GBytes *config, unsigned offset)
{
    const uint8_t *p = g_bytes_get_data(config, NULL);

    return (uint16_t)(p[offset] | p[offset + 1] << 8);
}

static void set_host_word(const Rig *rig, const char *bdf, unsigned offset, uint16_t val)
{
    g_autofree char *path = rig_host_config_path(rig, bdf);
    FILE *f = fopen(path, "r+b");
    uint8_t le[2] = { (uint8_t)val, (uint8_t)(val >> 8) };

    g_assert_nonnull(f);
    g_assert_cmpint(fseek(f, offset, SEEK_SET), ==, 0);
    g_assert_cmpuint(fwrite(le, 2, 1, f), ==, 1);
    fclose(f);
}

/*
 * What RW1C hardware makes of a write it received: a 1 in a write-1-to-
 * clear bit clears it, a 0 leaves it.  The file-backed host keeps what it
 * was sent, so the file holds the bytes received; this turns them into the
 * register's new value and stores that, as the device would show it.
 */
static uint16_t host_rw1c_applies(const Rig *rig, const char *bdf, unsigned offset,
                                  uint16_t rw1c, uint16_t held)
{
    g_autoptr(GBytes) now = rig_host_config(rig, bdf);
    uint16_t received = host_word(now, offset);
    uint16_t val = (uint16_t)((received & ~rw1c) | (held & rw1c & ~received));

    set_host_word(rig, bdf, offset, val);
    return val;
}

static PtFunc *func_at(Rig *rig, uint8_t devfn)
{
    for (int i = 0; i < pt_guest_count(rig->guest); i++)
        if (pt_guest_func_at(rig->guest, i)->vdevfn == devfn)
            return pt_guest_func_at(rig->guest, i)->fn;
    g_error("nothing at devfn %#x", devfn);
}

/* XSA-126: the guest cannot turn off the host's decode. */
/* The host's resource file of a memory BAR, one 32-bit word at offset. */
static uint32_t host_bar_word(const Rig *rig, const char *bdf, int bar, unsigned offset,
                              const uint32_t *store)
{
    g_autofree char *file = g_strdup_printf("resource%d", bar);
    g_autofree char *path = g_build_filename(rig->tree, "devices", bdf, file, NULL);
    FILE *f = fopen(path, store ? "r+b" : "rb");
    uint32_t word = 0;

    g_assert_nonnull(f);
    g_assert_cmpint(fseek(f, offset, SEEK_SET), ==, 0);
    if (store)
        g_assert_cmpuint(fwrite(store, 4, 1, f), ==, 1);
    else
        g_assert_cmpuint(fread(&word, 4, 1, f), ==, 1);
    fclose(f);
    return store ? *store : word;
}

/*
 * A BAR smaller than a page, off the host's page grid (the ICH7-M's EHCI:
 * 1K at host 0x58344400): never mapped, every guest access trapped and
 * forwarded to the host's BAR, wherever the guest puts it.
 */
static void test_subpage_bar_served(void)
{
    Rig rig;
    TgScan *scan = g_new0(TgScan, 1);
    const uint8_t ehci = PT_DEVFN(7, 7);
    uint64_t v = 0, mfn;

    rig_up(&rig, ICH7);
    rig_attach(&rig, "00:1d.*@7");
    tg_scan(rig.bus, true, scan);
    const TgFunc *f = tg_find(scan, ehci);
    g_assert_cmphex(f->bar[0].size, ==, 0x400);
    uint64_t at = f->bar[0].base;
    g_assert_true(pci_device_bar_mapped(device_at(&rig, ehci), 0));
    g_assert_false(hypervisor_sim_mmio_lookup(rig.hv, at >> PT_PAGE_SHIFT, &mfn));

    /* A guest write of USBCMD (+0x20) lands in the host's BAR; host
     * registers read back through the guest (HCSPARAMS at +0x04). */
    g_assert_cmpint(tg_mmio_write(rig.bus, at + 0x20, 4, 0x00080001), ==, 0);
    g_assert_cmphex(host_bar_word(&rig, "0000:00:1d.7", 0, 0x20, NULL), ==, 0x00080001);
    host_bar_word(&rig, "0000:00:1d.7", 0, 0x04, &(uint32_t){ 0x00103208 });
    g_assert_cmpint(tg_mmio_read(rig.bus, at + 0x04, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x00103208);
    g_assert_cmpint(tg_mmio_read(rig.bus, at + 0x05, 1, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x32);

    /* Moved to another offset within a page: still served, the old range gone. */
    uint64_t moved = at + 0xc00;
    tg_cfg_write(rig.bus, ehci, PCI_BASE_ADDRESS_0, (uint32_t)moved, 4);
    g_assert_cmpint(tg_mmio_read(rig.bus, moved + 0x20, 4, &v), ==, 0);
    g_assert_cmphex(v, ==, 0x00080001);
    g_assert_cmpint(tg_mmio_read(rig.bus, at + 0x20, 4, &v), ==, -ENOENT);
    g_assert_false(hypervisor_sim_mmio_lookup(rig.hv, moved >> PT_PAGE_SHIFT, &mfn));
    /* Past its 1K: nothing of it (the rest of the host's page stays out). */
    g_assert_cmpint(tg_mmio_read(rig.bus, moved + 0x400, 4, &v), ==, -ENOENT);

    /* Said once, at plug; the bus's "not mapped" refusal never comes. */
    g_assert_cmpuint(rig_log_count("BAR0 (0x400 bytes at host 0x58344400) is smaller than a "
                                   "page: served by qemu-dm"), ==, 1);
    g_assert_cmpuint(rig_log_count("shares no page offset"), ==, 0);
    g_free(scan);
    rig_down(&rig);
}

static void test_xsa126_decode_stays_on(void)
{
    Rig rig;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:06:00.0");
    uint16_t host_cmd = *(const uint16_t *)((const uint8_t *)g_bytes_get_data(before, NULL) + PCI_COMMAND);
    g_assert_cmphex(host_cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), ==, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);

    tg_cfg_write(rig.bus, devfn, PCI_COMMAND, 0, 2);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, PCI_COMMAND, 2) & 3, ==, 0);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:06:00.0");
    uint16_t now = *(const uint16_t *)((const uint8_t *)g_bytes_get_data(after, NULL) + PCI_COMMAND);
    g_assert_cmphex(now & 3, ==, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    assert_host_changes_allowed(&rig, func_at(&rig, devfn), before, after);
    rig_down(&rig);
}

/* XSA-128, header part: a 4-byte write across COMMAND and STATUS reaches
 * the host only in the bits the host may take. */
static void test_xsa128_wide_header_write(void)
{
    Rig rig;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:06:00.0");
    for (unsigned off = 0; off < 0x40; off += 4)
        tg_cfg_write(rig.bus, devfn, off, 0xffffffff, 4);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:06:00.0");
    assert_host_changes_allowed(&rig, func_at(&rig, devfn), before, after);
    /* IDs, class, header, subsystem and the capability pointer are untouched. */
    g_assert_cmpmem(g_bytes_get_data(before, NULL), 4, g_bytes_get_data(after, NULL), 4);
    g_assert_cmpmem((const uint8_t *)g_bytes_get_data(before, NULL) + 8, 0x34 - 8,
                    (const uint8_t *)g_bytes_get_data(after, NULL) + 8, 0x34 - 8);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, PCI_VENDOR_ID, 4), ==, 0x0a6510de);
    /* Stated apart from the tables: of COMMAND only bus mastering reached
     * the host, of STATUS only the error bits (the file keeps the 1s sent). */
    g_assert_cmphex(host_word(after, PCI_COMMAND), ==,
                    host_word(before, PCI_COMMAND) | PCI_COMMAND_MASTER);
    g_assert_cmphex(host_word(after, PCI_STATUS), ==, host_word(before, PCI_STATUS) | 0xf900);
    rig_down(&rig);
}

/*
 * The STATUS and PCIe DEVSTA error bits are live and write-1-to-clear: the
 * guest's write reaches the host with 1s exactly where the guest wrote
 * them, so clearing one error never clears another the guest has not seen.
 */
static void test_rw1c_clears_only_what_the_guest_wrote(void)
{
    static const char bdf[] = "0000:06:00.0";
    const uint16_t errors = PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |
                            PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY;
    Rig rig;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    PtFunc *fn = func_at(&rig, devfn);
    unsigned exp = pt_func_find_cap(fn, PCI_CAP_ID_EXP);
    g_assert_cmphex(exp, !=, 0);
    g_autoptr(GBytes) orig = rig_host_config(&rig, bdf);
    uint16_t status = (uint16_t)(host_word(orig, PCI_STATUS) | errors);
    uint16_t devsta = (uint16_t)(host_word(orig, exp + PCI_EXP_DEVSTA) | 0x000f);
    set_host_word(&rig, bdf, PCI_STATUS, status);
    set_host_word(&rig, bdf, exp + PCI_EXP_DEVSTA, devsta);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, PCI_STATUS, 2) & errors, ==, errors);

    /* The guest clears the signalled target abort, 2 bytes and then 4. */
    unsigned long writes = host_func_counters(pt_func_host(fn)).writes;
    tg_cfg_write(rig.bus, devfn, PCI_STATUS, PCI_STATUS_SIG_TARGET_ABORT, 2);
    g_assert_cmpuint(host_func_counters(pt_func_host(fn)).writes, ==, writes + 1);
    g_autoptr(GBytes) sent = rig_host_config(&rig, bdf);
    g_assert_cmphex(host_word(sent, PCI_STATUS), ==,
                    (status & ~0xf900) | PCI_STATUS_SIG_TARGET_ABORT);
    status = host_rw1c_applies(&rig, bdf, PCI_STATUS, 0xf900, status);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, PCI_STATUS, 2) & errors, ==,
                    errors & ~PCI_STATUS_SIG_TARGET_ABORT);
    uint16_t cmd = (uint16_t)tg_cfg_read(rig.bus, devfn, PCI_COMMAND, 2);
    tg_cfg_write(rig.bus, devfn, PCI_COMMAND, (uint32_t)PCI_STATUS_PARITY << 16 | cmd, 4);
    status = host_rw1c_applies(&rig, bdf, PCI_STATUS, 0xf900, status);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, PCI_STATUS, 2) & errors, ==,
                    PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY);

    /* DEVSTA: correctable error detected (bit 0) only. */
    tg_cfg_write(rig.bus, devfn, exp + PCI_EXP_DEVSTA, 0x0001, 2);
    g_autoptr(GBytes) sent_devsta = rig_host_config(&rig, bdf);
    g_assert_cmphex(host_word(sent_devsta, exp + PCI_EXP_DEVSTA), ==, (devsta & ~0x000f) | 0x0001);
    host_rw1c_applies(&rig, bdf, exp + PCI_EXP_DEVSTA, 0x000f, devsta);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, exp + PCI_EXP_DEVSTA, 2) & 0xf, ==, 0xe);
    rig_down(&rig);
}

/* XSA-131: unclaimed offsets never reach the host, one warning per device;
 * permissive=1 lets them through. */
static void test_xsa131_unclaimed_writes(void)
{
    Rig rig;

    rig_up(&rig, ASUS);
    rig_attach(&rig, "00:1d.0");
    rig_attach(&rig, "00:1d.1,permissive=1");
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:00:1d.0");
    uint8_t strict = PT_DEVFN(4, 0), lax = PT_DEVFN(5, 0);

    for (int i = 0; i < 3; i++)
        tg_cfg_write(rig.bus, strict, 0x60, 0xa5u + (unsigned)i, 1);
    tg_cfg_write(rig.bus, strict, 0xc0, 0x8f00, 2);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:00:1d.0");
    g_assert_cmpmem(g_bytes_get_data(before, NULL), g_bytes_get_size(before),
                    g_bytes_get_data(after, NULL), g_bytes_get_size(after));
    g_assert_cmpuint(rig_log_count("0000:00:1d.0 -> 04.0: guest write"), ==, 1);
    g_assert_cmpuint(pt_func_dropped_writes(func_at(&rig, strict)), ==, 4);

    g_autoptr(GBytes) lax_before = rig_host_config(&rig, "0000:00:1d.1");
    tg_cfg_write(rig.bus, lax, 0x60, 0x5a, 1);
    tg_cfg_write(rig.bus, lax, 0x61, 0x42, 1);
    g_autoptr(GBytes) lax_after = rig_host_config(&rig, "0000:00:1d.1");
    g_assert_cmphex(((const uint8_t *)g_bytes_get_data(lax_after, NULL))[0x60], ==, 0x5a);
    g_assert_cmphex(((const uint8_t *)g_bytes_get_data(lax_after, NULL))[0x61], ==, 0x42);
    g_assert_cmpuint(rig_log_count("0000:00:1d.1 -> 05.0: permissive"), ==, 1);
    g_assert_cmpuint(rig_log_count("0000:00:1d.1 -> 05.0: guest write"), ==, 0);
    (void)lax_before;
    rig_down(&rig);
}

/* PM status is live and write-1-to-clear on the host; the power state stays
 * ours.  (A file-backed host keeps what is written, so the clear shows as
 * the 1 reaching the host, not as the bit dropping.) */
static void test_pm_status_rw1c(void)
{
    Rig rig;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    PtFunc *fn = func_at(&rig, devfn);
    unsigned pm = pt_func_find_cap(fn, PCI_CAP_ID_PM);
    g_assert_cmphex(pm, ==, 0x60);
    g_autofree char *path = rig_host_config_path(&rig, "0000:06:00.0");
    FILE *f = fopen(path, "r+b");
    uint16_t pmcsr = PCI_PM_CTRL_PME_STATUS;
    fseek(f, pm + PCI_PM_CTRL, SEEK_SET);
    fwrite(&pmcsr, 2, 1, f);
    fclose(f);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, pm + PCI_PM_CTRL, 2) & PCI_PM_CTRL_PME_STATUS, ==,
                    PCI_PM_CTRL_PME_STATUS);

    /* D3hot with PME status 0: the guest's state changes, the host sees nothing. */
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:06:00.0");
    unsigned long writes = host_func_counters(pt_func_host(fn)).writes;
    tg_cfg_write(rig.bus, devfn, pm + PCI_PM_CTRL, 3, 2);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, pm + PCI_PM_CTRL, 2), ==, PCI_PM_CTRL_PME_STATUS | 0x8 | 3);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:06:00.0");
    g_assert_cmpmem(g_bytes_get_data(before, NULL), g_bytes_get_size(before),
                    g_bytes_get_data(after, NULL), g_bytes_get_size(after));
    g_assert_cmpuint(host_func_counters(pt_func_host(fn)).writes, ==, writes);

    /* A 1 in PME status goes to the host (where hardware clears it); nothing else does. */
    tg_cfg_write(rig.bus, devfn, pm + PCI_PM_CTRL, PCI_PM_CTRL_PME_STATUS | 3, 2);
    g_assert_cmpuint(host_func_counters(pt_func_host(fn)).writes, ==, writes + 1);
    g_autoptr(GBytes) cleared = rig_host_config(&rig, "0000:06:00.0");
    assert_host_changes_allowed(&rig, fn, before, cleared);
    /* Without power_mgmt=1 the host's power state never moved. */
    g_assert_cmphex(((const uint8_t *)g_bytes_get_data(cleared, NULL))[pm + PCI_PM_CTRL] & 3, ==, 0);
    rig_down(&rig);
}

/* PCIe DEVCAP is read-only whatever the guest writes. */
static void test_pcie_devcap_read_only(void)
{
    Rig rig;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    rig_attach(&rig, "06:00.0");
    unsigned exp = pt_func_find_cap(func_at(&rig, devfn), PCI_CAP_ID_EXP);
    uint32_t devcap = tg_cfg_read(rig.bus, devfn, exp + PCI_EXP_DEVCAP, 4);
    g_autoptr(GBytes) before = rig_host_config(&rig, "0000:06:00.0");
    tg_cfg_write(rig.bus, devfn, exp + PCI_EXP_DEVCAP, ~devcap, 4);
    g_assert_cmphex(tg_cfg_read(rig.bus, devfn, exp + PCI_EXP_DEVCAP, 4), ==, devcap);
    g_autoptr(GBytes) after = rig_host_config(&rig, "0000:06:00.0");
    g_assert_cmpmem(g_bytes_get_data(before, NULL), g_bytes_get_size(before),
                    g_bytes_get_data(after, NULL), g_bytes_get_size(after));
    rig_down(&rig);
}

/* Real devices have bad chains: a loop or a wild pointer is cut, never followed. */
static void test_malformed_capability_chain(void)
{
    Rig rig;
    PtError err;

    rig_up(&rig, ASUS);
    g_autofree char *path = rig_host_config_path(&rig, "0000:06:00.1");
    /* HDA: PM at 60 -> MSI at 68 -> Express at 78; point Express back at PM. */
    FILE *f = fopen(path, "r+b");
    uint8_t loop = 0x60, low = 0x20;
    fseek(f, 0x78 + 1, SEEK_SET);
    fwrite(&loop, 1, 1, f);
    fclose(f);
    rig_attach(&rig, "06:00.1");
    TgScan *scan = g_new0(TgScan, 1);
    tg_scan(rig.bus, false, scan);
    const TgFunc *hda = tg_find(scan, PT_DEVFN(4, 0));
    g_assert_false(hda->cap_loop);
    g_assert_cmpint(hda->ncaps, ==, 3);
    g_assert_cmpuint(rig_log_count("capability list loops back to 0x60"), ==, 1);
    g_assert_cmpint(pt_guest_detach(rig.guest, "06:00.1", &err), ==, 1);

    /* A pointer into the header is cut as well. */
    f = fopen(path, "r+b");
    fseek(f, 0x68 + 1, SEEK_SET);
    fwrite(&low, 1, 1, f);
    fclose(f);
    rig_attach(&rig, "06:00.1");
    tg_scan(rig.bus, false, scan);
    hda = tg_find(scan, PT_DEVFN(4, 0));
    g_assert_cmpint(hda->ncaps, ==, 2);
    g_assert_cmpuint(rig_log_count("capability pointer 0x20 out of range"), ==, 1);
    g_free(scan);
    rig_down(&rig);
}

/* A function the guest lets go stops its DMA: the bus mastering and INTx
 * disable the guest wrote through are back to what the host had when it
 * was attached. */
static void test_release_quiesces_host(void)
{
    static const char bdf[] = "0000:06:00.0";
    const uint16_t through = PCI_COMMAND_MASTER | PCI_COMMAND_DISABLE_INTx;
    Rig rig;
    PtError err;
    uint8_t devfn = PT_DEVFN(4, 0);

    rig_up(&rig, ASUS);
    set_host_word(&rig, bdf, PCI_COMMAND, PCI_COMMAND_MEMORY);
    rig_attach(&rig, "06:00.0");
    g_autoptr(GBytes) attached = rig_host_config(&rig, bdf);
    g_assert_cmphex(host_word(attached, PCI_COMMAND) & through, ==, 0);
    uint16_t cmd = (uint16_t)tg_cfg_read(rig.bus, devfn, PCI_COMMAND, 2);
    tg_cfg_write(rig.bus, devfn, PCI_COMMAND, cmd | through, 2);
    g_autoptr(GBytes) used = rig_host_config(&rig, bdf);
    g_assert_cmphex(host_word(used, PCI_COMMAND) & through, ==, through);
    g_assert_cmpint(pt_guest_detach(rig.guest, "06:00.0", &err), ==, 1);
    g_autoptr(GBytes) released = rig_host_config(&rig, bdf);
    g_assert_cmphex(host_word(released, PCI_COMMAND), ==, host_word(attached, PCI_COMMAND));
    rig_down(&rig);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/emulation/lspci-guest-view", test_lspci_guest_view);
    g_test_add_func("/emulation/bar-kinds", test_bar_kinds);
    g_test_add_func("/emulation/bar-rom-82576", test_bar_rom_82576);
    g_test_add_func("/emulation/subpage-bar-served", test_subpage_bar_served);
    g_test_add_func("/emulation/xsa126-decode-stays-on", test_xsa126_decode_stays_on);
    g_test_add_func("/emulation/xsa128-wide-header-write", test_xsa128_wide_header_write);
    g_test_add_func("/emulation/release-quiesces-host", test_release_quiesces_host);
    g_test_add_func("/emulation/xsa131-unclaimed-writes", test_xsa131_unclaimed_writes);
    g_test_add_func("/emulation/rw1c-clears-only-what-the-guest-wrote",
                    test_rw1c_clears_only_what_the_guest_wrote);
    g_test_add_func("/emulation/pm-status-rw1c", test_pm_status_rw1c);
    g_test_add_func("/emulation/pcie-devcap-read-only", test_pcie_devcap_read_only);
    g_test_add_func("/emulation/malformed-capability-chain", test_malformed_capability_chain);
    return g_test_run();
}
