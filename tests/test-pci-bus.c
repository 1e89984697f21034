/*
 * Guest PCI bus: mechanism #1, derived multi-function bit, absent
 * functions, BAR sizing and decode as seen in the sim hypervisor's log,
 * overlap, unplug, INTx, and the guest-view exports read by real lspci.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "hypervisor-sim.h"
#include "pci.h"
#include "test-device.h"
#include "test-guest.h"

#define LSPCI "/usr/bin/lspci"

typedef struct Fixture {
    Hypervisor *hv;
    PciBus *bus;
    TestDevice *td[4];
    int ntd;
} Fixture;

static void fx_setup(Fixture *fx, gconstpointer data)
{
    (void)data;
    fx->hv = hypervisor_sim_new();
    fx->bus = pci_bus_new(fx->hv);
    fx->ntd = 0;
}

static void fx_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    pci_bus_free(fx->bus);
    for (int i = 0; i < fx->ntd; i++)
        test_device_free(fx->td[i]);
    hypervisor_free(fx->hv);
}

/* A test device owned by the fixture, plugged at devfn. */
static TestDevice *add_dev(Fixture *fx, uint16_t device)
{
    g_assert_cmpint(fx->ntd, <, (int)G_N_ELEMENTS(fx->td));
    TestDevice *td = test_device_new(0x8086, device, 0x020000);
    fx->td[fx->ntd++] = td;
    return td;
}

static void plug(Fixture *fx, TestDevice *td, uint8_t devfn)
{
    g_assert_cmpint(test_device_plug(td, fx->bus, devfn), ==, 0);
}

/* Mechanism #1 as a guest does it. */
static void cf8(PciBus *bus, uint8_t devfn, unsigned offset)
{
    pci_bus_ioport_write(bus, PCI_CONFIG_ADDRESS_PORT,
                         PCI_CONFIG_ENABLE | (uint32_t)devfn << 8 | (offset & 0xfc), 4);
}

static uint32_t le(const uint8_t *p, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void assert_hv_log(Fixture *fx, size_t from, const char *expect)
{
    char *text = hypervisor_sim_log_text(fx->hv, from);
    g_assert_cmpstr(text, ==, expect);
    g_free(text);
}

static uint8_t pattern(unsigned i)
{
    return (uint8_t)(i * 37 + 11);
}

/* ------------------------------------------------------------ mechanism #1 */

static const unsigned sizes[] = { 1, 2, 4 };

static void test_mech1_reads(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = add_dev(fx, 0x10c9);
    uint8_t *cfg = test_device_config(td);
    for (unsigned i = 0x40; i < PCI_CONFIG_SIZE; i++)
        cfg[i] = pattern(i);
    plug(fx, td, devfn);

    for (unsigned reg = 0x40; reg < PCI_CONFIG_SIZE; reg += 4)
        for (unsigned s = 0; s < G_N_ELEMENTS(sizes); s++)
            for (unsigned b = 0; b + sizes[s] <= 4; b++) {
                uint32_t want = le(&cfg[reg + b], sizes[s]);
                g_assert_cmphex(tg_cfg_read(fx->bus, devfn, reg + b, sizes[s]), ==, want);
                g_assert_cmphex(pci_bus_cfg_read(fx->bus, devfn, reg + b, sizes[s]), ==, want);
            }
    /* The header through the same path: a 2-byte read at 0xcfe is bytes 2-3. */
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_VENDOR_ID, 2), ==, 0x8086);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_DEVICE_ID, 2), ==, 0x10c9);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_VENDOR_ID + 1, 2), ==, 0xc980);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_VENDOR_ID, 4), ==, 0x10c98086);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_CLASS_DEVICE + 1, 1), ==, 0x02);
}

static void test_mech1_writes(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = add_dev(fx, 0x10c9);
    uint8_t *cfg = test_device_config(td);
    plug(fx, td, devfn);

    for (unsigned s = 0; s < G_N_ELEMENTS(sizes); s++)
        for (unsigned b = 0; b + sizes[s] <= 4; b++) {
            const unsigned reg = 0x80;
            uint8_t before[8];
            memset(&cfg[reg - 2], 0x5a, 8);
            memcpy(before, &cfg[reg - 2], 8);
            tg_cfg_write(fx->bus, devfn, reg + b, 0xa1b2c3d4, sizes[s]);
            /* Exactly bytes reg+b .. reg+b+len-1 changed, little-endian. */
            for (unsigned i = 0; i < 8; i++) {
                unsigned off = reg - 2 + i;
                bool hit = off >= reg + b && off < reg + b + sizes[s];
                uint8_t want = hit ? (uint8_t)(0xa1b2c3d4u >> (8 * (off - reg - b))) : before[i];
                g_assert_cmphex(cfg[off], ==, want);
            }
        }
}

static void test_mech1_invalid(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = add_dev(fx, 0x10c9);
    uint8_t *cfg = test_device_config(td);
    plug(fx, td, devfn);
    cfg[0x40] = 0x11;

    /* Accesses leaving the data dword are not config accesses. */
    cf8(fx->bus, devfn, 0x40);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_DATA_PORT + 1, 4), ==, 0xffffffff);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_DATA_PORT + 3, 2), ==, 0xffff);
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_DATA_PORT + 3, 0, 2);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_DATA_PORT + 3, 1), ==, cfg[0x43]);

    /* Enable bit clear: all ones, writes dropped. */
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_ADDRESS_PORT, (uint32_t)devfn << 8 | 0x40, 4);
    for (unsigned s = 0; s < G_N_ELEMENTS(sizes); s++)
        g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_DATA_PORT, sizes[s]), ==,
                        sizes[s] == 4 ? 0xffffffffu : (1u << (8 * sizes[s])) - 1);
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_DATA_PORT, 0x22, 1);
    g_assert_cmphex(cfg[0x40], ==, 0x11);

    /* Only bus 0 exists. */
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_ADDRESS_PORT,
                         PCI_CONFIG_ENABLE | 1u << 16 | (uint32_t)devfn << 8, 4);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_DATA_PORT, 2), ==, 0xffff);

    /* 0xcf8 is 32-bit only; reserved bits read back 0. */
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_ADDRESS_PORT, 0xffffffff, 4);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_ADDRESS_PORT, 4), ==, 0x80fffffc);
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_ADDRESS_PORT + 1, 0, 1);
    pci_bus_ioport_write(fx->bus, PCI_CONFIG_ADDRESS_PORT, 0, 2);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_ADDRESS_PORT, 2), ==, 0xffff);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_ADDRESS_PORT, 4), ==, 0x80fffffc);

    /* The direct API has the same rules. */
    g_assert_cmphex(pci_bus_cfg_read(fx->bus, devfn, 0x41, 4), ==, 0xffffffff);
    g_assert_cmphex(pci_bus_cfg_read(fx->bus, devfn, 0x40, 3), ==, 0xffffff);
    g_assert_cmphex(pci_bus_cfg_read(fx->bus, devfn, PCI_CONFIG_SIZE, 4), ==, 0xffffffff);
    pci_bus_cfg_write(fx->bus, devfn, 0x3f, 0x2222, 2);
    g_assert_cmphex(cfg[0x40], ==, 0x11);
    g_assert_true(pci_bus_claims_ioport(0xcf8) && pci_bus_claims_ioport(0xcff));
    g_assert_false(pci_bus_claims_ioport(0xcf7) || pci_bus_claims_ioport(0xd00));
}

/* ------------------------------------------------------------ functions */

static void test_mf_derived(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t fn0 = PT_DEVFN(7, 0), fn3 = PT_DEVFN(7, 3);
    TestDevice *a = add_dev(fx, 0x1000), *b = add_dev(fx, 0x1001);
    /* Hardware says multi-function; a lone function must not. */
    test_device_set_header_type(a, PCI_HEADER_TYPE_MFD | PCI_HEADER_TYPE_NORMAL);
    plug(fx, a, fn0);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_NORMAL);

    plug(fx, b, fn3);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_MFD);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn3, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_MFD);
    /* Also inside wider reads: the dword at 0x0c. */
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_CACHE_LINE_SIZE, 4) >> 16 & 0xff, ==,
                    PCI_HEADER_TYPE_MFD);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_LATENCY_TIMER, 2) >> 8, ==, PCI_HEADER_TYPE_MFD);

    /* The low 7 bits are the device's. */
    test_device_config(a)[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_BRIDGE;
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==,
                    PCI_HEADER_TYPE_MFD | PCI_HEADER_TYPE_BRIDGE);
    test_device_config(a)[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;

    pci_bus_force_single_function(fx->bus, 7, true);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_NORMAL);
    pci_bus_force_single_function(fx->bus, 7, false);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_MFD);

    /* Read-only, and never the device's to see. */
    tg_cfg_write(fx->bus, fn0, PCI_HEADER_TYPE, 0, 1);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_MFD);
    g_assert_cmpuint(test_device_writes_at(a, PCI_HEADER_TYPE), ==, 0);

    g_assert_cmpint(pci_bus_unplug(fx->bus, fn3), ==, 0);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn0, PCI_HEADER_TYPE, 1), ==, PCI_HEADER_TYPE_NORMAL);
    g_assert_cmphex(pci_bus_slot_funcs(fx->bus, 7), ==, 0x01);
}

static void test_absent_all_ones(Fixture *fx, gconstpointer data)
{
    (void)data;
    for (unsigned s = 0; s < G_N_ELEMENTS(sizes); s++)
        for (unsigned off = 0; off < 8; off += sizes[s]) {
            uint32_t ones = sizes[s] == 4 ? 0xffffffffu : (1u << (8 * sizes[s])) - 1;
            g_assert_cmphex(tg_cfg_read(fx->bus, PT_DEVFN(9, 0), off, sizes[s]), ==, ones);
            g_assert_cmphex(pci_bus_cfg_read(fx->bus, PT_DEVFN(31, 7), off, sizes[s]), ==, ones);
        }
    tg_cfg_write(fx->bus, PT_DEVFN(9, 0), PCI_COMMAND, PCI_COMMAND_MEMORY, 2);

    /* A function without function 0 answers nothing, as on hardware. */
    uint8_t fn1 = PT_DEVFN(9, 1), fn0 = PT_DEVFN(9, 0);
    TestDevice *b = add_dev(fx, 0x2001), *a = add_dev(fx, 0x2000);
    plug(fx, b, fn1);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn1, PCI_VENDOR_ID, 2), ==, 0xffff);
    tg_cfg_write(fx->bus, fn1, 0x40, 0x33, 1);
    g_assert_cmpuint(test_device_writes_at(b, 0x40), ==, 0);
    plug(fx, a, fn0);
    g_assert_cmphex(tg_cfg_read(fx->bus, fn1, PCI_DEVICE_ID, 2), ==, 0x2001);
    tg_cfg_write(fx->bus, fn1, 0x40, 0x33, 1);
    g_assert_cmpuint(test_device_writes_at(b, 0x40), ==, 1);
}

static void test_plug_rules(Fixture *fx, gconstpointer data)
{
    (void)data;
    TestDevice *td = add_dev(fx, 0x3000);
    pci_bus_set_reserved(fx->bus, 0xf);
    g_assert_cmphex(pci_bus_reserved(fx->bus), ==, 0xf);
    g_assert_cmpint(test_device_plug(td, fx->bus, PT_DEVFN(2, 0)), ==, -EPERM);
    g_assert_cmpint(test_device_plug(td, fx->bus, PT_DEVFN(4, 0)), ==, 0);
    g_assert_cmpint(test_device_plug(td, fx->bus, PT_DEVFN(4, 0)), ==, -EEXIST);
    g_assert_cmpint(pci_bus_unplug(fx->bus, PT_DEVFN(4, 1)), ==, -ENOENT);

    /* BAR facts the bus cannot honour. */
    static const struct { int bar; PciBarKind kind; uint64_t size; } bad[] = {
        { 0, PCI_BAR_MEM32, 0x1800 },           /* not a power of two */
        { 0, PCI_BAR_IO, 2 },                   /* below the minimum */
        { 5, PCI_BAR_MEM64, 0x1000 },           /* no room for the upper half */
        { PCI_BAR_ROM, PCI_BAR_IO, 0x800 },     /* ROM is memory */
        { PCI_BAR_ROM, PCI_BAR_MEM32, 0x400 },  /* ROM below 2 KiB */
        { 1, PCI_BAR_MEM32, 1ull << 32 },       /* 32-bit BAR of 4 GiB */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        TestDevice *t = test_device_new(0x8086, 0x3001, 0x020000);
        test_device_set_bar(t, bad[i].bar, bad[i].kind, bad[i].size, 0, false);
        g_assert_cmpint(test_device_plug(t, fx->bus, PT_DEVFN(5, 0)), ==, -EINVAL);
        test_device_free(t);
    }
    TestDevice *t = test_device_new(0x8086, 0x3002, 0x020000);
    test_device_set_bar(t, 0, PCI_BAR_MEM64, 0x1000, 0, false);
    test_device_set_bar(t, 1, PCI_BAR_MEM32, 0x1000, 0, false);   /* upper half taken */
    g_assert_cmpint(test_device_plug(t, fx->bus, PT_DEVFN(5, 0)), ==, -EINVAL);
    test_device_free(t);
}

/* ------------------------------------------------------------ BARs */

static void test_bar_sizing(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = add_dev(fx, 0x4000);
    test_device_set_bar(td, 0, PCI_BAR_IO, 0x20, 0xe000, false);
    test_device_set_bar(td, 1, PCI_BAR_MEM32, 0x1000, 0xfe000000, false);
    test_device_set_bar(td, 2, PCI_BAR_MEM64, 0x100000, 0x3f80000000, true);
    test_device_set_bar(td, 4, PCI_BAR_MEM64, 8ull << 30, 0x4000000000, false);
    test_device_set_bar(td, PCI_BAR_ROM, PCI_BAR_MEM32, 0x10000, 0xfd000000, false);
    plug(fx, td, devfn);

    /* Before sizing: address 0, the type flags. */
    static const struct { unsigned reg; uint32_t initial, sized; } want[] = {
        { PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_SPACE_IO,
          0xffffffe0 | PCI_BASE_ADDRESS_SPACE_IO },
        { PCI_BASE_ADDRESS_0 + 4, 0, 0xfffff000 },
        { PCI_BASE_ADDRESS_0 + 8, PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH,
          0xfff00000 | PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH },
        { PCI_BASE_ADDRESS_0 + 12, 0, 0xffffffff },
        { PCI_BASE_ADDRESS_0 + 16, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_BASE_ADDRESS_MEM_TYPE_64 },
        { PCI_BASE_ADDRESS_0 + 20, 0, 0xfffffffe },
        { PCI_ROM_ADDRESS, 0, 0xffff0000 | PCI_ROM_ADDRESS_ENABLE },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, want[i].reg, 4), ==, want[i].initial);
        tg_cfg_write(fx->bus, devfn, want[i].reg, 0xffffffff, 4);
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, want[i].reg, 4), ==, want[i].sized);
        /* Sizing by halves and bytes reads the same. */
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, want[i].reg + 2, 2), ==, want[i].sized >> 16);
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, want[i].reg + 1, 1), ==,
                        want[i].sized >> 8 & 0xff);
    }
    /* ROM enable is its own bit; reserved bits 10:1 stay 0. */
    tg_cfg_write(fx->bus, devfn, PCI_ROM_ADDRESS, 0xfffffffe, 4);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_ROM_ADDRESS, 4), ==, 0xffff0000);

    /* Addresses keep only the bits the size allows; flags read back. */
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 4, 0xf0001234, 4);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 4, 4), ==, 0xf0001000);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 4, 0x00, 1);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 6, 0xe123, 2);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 4, 4), ==, 0xe1231000);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 8, 0, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 12, 0x12, 4);
    g_assert_cmphex(pci_device_bar_addr(test_device_pci(td), 2), ==, 0x1200000000ull);

    /* No BAR byte ever reaches the device. */
    for (unsigned off = PCI_BASE_ADDRESS_0; off < PCI_BASE_ADDRESS_5 + 4; off++)
        g_assert_cmpuint(test_device_writes_at(td, off), ==, 0);
    for (unsigned off = PCI_ROM_ADDRESS; off < PCI_ROM_ADDRESS + 4; off++)
        g_assert_cmpuint(test_device_writes_at(td, off), ==, 0);
}

static void test_bar_unimplemented(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = add_dev(fx, 0x4001);
    test_device_set_bar(td, 0, PCI_BAR_MEM32, 0x1000, 0xfe000000, false);
    plug(fx, td, devfn);
    for (unsigned reg = PCI_BASE_ADDRESS_0 + 4; reg <= PCI_BASE_ADDRESS_5; reg += 4) {
        tg_cfg_write(fx->bus, devfn, reg, 0xffffffff, 4);
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, reg, 4), ==, 0);
    }
    tg_cfg_write(fx->bus, devfn, PCI_ROM_ADDRESS, 0xffffffff, 4);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_ROM_ADDRESS, 4), ==, 0);
}

/* 05.0: BAR0 mem32 16K, BAR1 io 32, BAR2 mem64 2M, ROM 64K. */
static TestDevice *decode_dev(Fixture *fx, uint8_t devfn)
{
    TestDevice *td = add_dev(fx, 0x5000);
    test_device_set_bar(td, 0, PCI_BAR_MEM32, 0x4000, 0xfe000000, false);
    test_device_set_bar(td, 1, PCI_BAR_IO, 0x20, 0xe000, false);
    test_device_set_bar(td, 2, PCI_BAR_MEM64, 0x200000, 0x3f80000000, true);
    test_device_set_bar(td, PCI_BAR_ROM, PCI_BAR_MEM32, 0x10000, 0xfd000000, false);
    plug(fx, td, devfn);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000000, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_1, 0xc000, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_2, 0, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_3, 1, 4);
    tg_cfg_write(fx->bus, devfn, PCI_ROM_ADDRESS, 0xf1000000, 4);
    return td;
}

static void test_decode(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    size_t mark = hypervisor_sim_log_len(fx->hv);
    decode_dev(fx, devfn);
    assert_hv_log(fx, mark, "");    /* decode off: nothing mapped */

    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    assert_hv_log(fx, mark,
                  "map_mmio gfn=0xf0000 mfn=0xfe000 n=4\n"
                  "map_ioport gport=0xc000 mport=0xe000 n=32\n"
                  "map_mmio gfn=0x100000 mfn=0x3f80000 n=512\n");

    /* Same COMMAND again: nothing to do. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 1);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000000, 4);
    assert_hv_log(fx, mark, "");

    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_ROM_ADDRESS, 0xf1000000 | PCI_ROM_ADDRESS_ENABLE, 4);
    assert_hv_log(fx, mark, "map_mmio gfn=0xf1000 mfn=0xfd000 n=16\n");

    /* Moves while decoding: old range out, new range in. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0100000, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0 + 2, 0x20, 1);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_3, 2, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_1, 0xc040, 2);
    assert_hv_log(fx, mark,
                  "unmap_mmio gfn=0xf0000 mfn=0xfe000 n=4\n"
                  "map_mmio gfn=0xf0100 mfn=0xfe000 n=4\n"
                  "unmap_mmio gfn=0xf0100 mfn=0xfe000 n=4\n"
                  "map_mmio gfn=0xf0200 mfn=0xfe000 n=4\n"
                  "unmap_mmio gfn=0x100000 mfn=0x3f80000 n=512\n"
                  "map_mmio gfn=0x200000 mfn=0x3f80000 n=512\n"
                  "unmap_ioport gport=0xc000 mport=0xe000 n=32\n"
                  "map_ioport gport=0xc040 mport=0xe000 n=32\n");

    /* Sizing with decode on takes the BAR away until it is restored. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0200000, 4);
    assert_hv_log(fx, mark,
                  "unmap_mmio gfn=0xf0200 mfn=0xfe000 n=4\n"
                  "map_mmio gfn=0xf0200 mfn=0xfe000 n=4\n");

    /* Memory decode off: every memory BAR and the ROM go, I/O stays. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_IO, 2);
    assert_hv_log(fx, mark,
                  "unmap_mmio gfn=0xf0200 mfn=0xfe000 n=4\n"
                  "unmap_mmio gfn=0x200000 mfn=0x3f80000 n=512\n"
                  "unmap_mmio gfn=0xf1000 mfn=0xfd000 n=16\n");
    g_assert_true(pci_device_bar_mapped(pci_bus_device(fx->bus, devfn), 1));

    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, 0, 2);
    assert_hv_log(fx, mark, "unmap_ioport gport=0xc040 mport=0xe000 n=32\n");
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, 0);
}

static void test_overlap(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t da = PT_DEVFN(5, 0), db = PT_DEVFN(6, 0);
    TestDevice *a = add_dev(fx, 0x6000), *b = add_dev(fx, 0x6001);
    test_device_set_bar(a, 0, PCI_BAR_MEM32, 0x2000, 0xfe000000, false);
    test_device_set_bar(a, 1, PCI_BAR_IO, 0x10, 0xe000, false);
    test_device_set_bar(b, 0, PCI_BAR_MEM32, 0x1000, 0xfe100000, false);
    plug(fx, a, da);
    plug(fx, b, db);
    tg_cfg_write(fx->bus, da, PCI_BASE_ADDRESS_0, 0xf0000000, 4);
    tg_cfg_write(fx->bus, da, PCI_BASE_ADDRESS_1, 0xc000, 4);
    tg_cfg_write(fx->bus, da, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);

    size_t mark = hypervisor_sim_log_len(fx->hv);
    size_t logs = pci_bus_log_count(fx->bus);
    tg_cfg_write(fx->bus, db, PCI_BASE_ADDRESS_0, 0xf0001000, 4);
    tg_cfg_write(fx->bus, db, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    assert_hv_log(fx, mark, "");
    g_assert_false(pci_device_bar_mapped(pci_bus_device(fx->bus, db), 0));
    g_assert_cmpuint(pci_bus_log_count(fx->bus), ==, logs + 1);
    g_assert_nonnull(strstr(pci_bus_log_line(fx->bus, logs), "overlaps 05.0 BAR0"));
    g_assert_nonnull(strstr(pci_bus_log_line(fx->bus, logs), "06.0 test: BAR0"));

    /* Moved clear, it maps; moved back onto A, it is taken away again. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, db, PCI_BASE_ADDRESS_0, 0xf0002000, 4);
    tg_cfg_write(fx->bus, db, PCI_BASE_ADDRESS_0, 0xf0000000, 4);
    assert_hv_log(fx, mark,
                  "map_mmio gfn=0xf0002 mfn=0xfe100 n=1\n"
                  "unmap_mmio gfn=0xf0002 mfn=0xfe100 n=1\n");
    g_assert_cmpuint(pci_bus_log_count(fx->bus), ==, logs + 2);

    /* Memory at A's I/O port numbers: another space, no conflict. */
    mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, db, PCI_BASE_ADDRESS_0, 0xc000, 4);
    assert_hv_log(fx, mark, "map_mmio gfn=0xc mfn=0xfe100 n=1\n");
    g_assert_true(pci_device_bar_mapped(pci_bus_device(fx->bus, da), 1));
    g_assert_cmpuint(hypervisor_sim_error_count(fx->hv), ==, 0);
}

static void test_unplug_clean(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t d0 = PT_DEVFN(5, 0), d1 = PT_DEVFN(5, 1);
    decode_dev(fx, d0);
    TestDevice *f1 = add_dev(fx, 0x5001);
    test_device_set_bar(f1, 0, PCI_BAR_IO, 0x100, 0xd000, false);
    plug(fx, f1, d1);
    tg_cfg_write(fx->bus, d1, PCI_BASE_ADDRESS_0, 0xd000, 4);
    tg_cfg_write(fx->bus, d1, PCI_COMMAND, PCI_COMMAND_IO, 2);
    tg_cfg_write(fx->bus, d0, PCI_ROM_ADDRESS, 0xf1000001, 4);
    tg_cfg_write(fx->bus, d0, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(fx->hv), ==, 3);
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(fx->hv), ==, 2);
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, -EBUSY);

    g_assert_cmpint(pci_bus_unplug(fx->bus, d1), ==, 0);
    g_assert_cmpint(pci_bus_unplug(fx->bus, d0), ==, 0);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(fx->hv), ==, 0);
    g_assert_cmpuint(hypervisor_sim_ioport_mappings(fx->hv), ==, 0);
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, 0);
    g_assert_null(pci_bus_device(fx->bus, d0));
}

static void test_unplug_failure(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    decode_dev(fx, devfn);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(fx->hv), ==, 2);
    /* The hypervisor refuses the first unmap: reported, device still gone. */
    hypervisor_sim_fail_call(fx->hv, 1, EIO);
    g_assert_cmpint(pci_bus_unplug(fx->bus, devfn), ==, -EIO);
    g_assert_null(pci_bus_device(fx->bus, devfn));
    g_assert_cmpuint(hypervisor_sim_mmio_mappings(fx->hv), ==, 1);
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, -EBUSY);
    /* Undo by hand so the fixture ends clean. */
    g_assert_cmpint(hv_unmap_mmio(fx->hv, 0xf0000, 0xfe000, 4), ==, 0);
}

static void test_map_failure_retried(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    decode_dev(fx, devfn);
    size_t logs = pci_bus_log_count(fx->bus);
    hypervisor_sim_fail_call(fx->hv, 1, EIO);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    PciDevice *d = pci_bus_device(fx->bus, devfn);
    g_assert_false(pci_device_bar_mapped(d, 0));
    g_assert_true(pci_device_bar_mapped(d, 2));
    g_assert_cmpuint(pci_bus_log_count(fx->bus), ==, logs + 1);
    g_assert_nonnull(strstr(pci_bus_log_line(fx->bus, logs), "BAR0 map at 0xf0000000 failed"));
    /* State is derived again on the next COMMAND write. */
    size_t mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    assert_hv_log(fx, mark, "map_mmio gfn=0xf0000 mfn=0xfe000 n=4\n");
}

static void test_reset(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(5, 0);
    TestDevice *td = decode_dev(fx, devfn);
    tg_cfg_write(fx->bus, devfn, PCI_INTERRUPT_LINE, 11, 1);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, -EBUSY);
    pci_bus_reset(fx->bus);
    g_assert_cmpuint(test_device_resets(td), ==, 1);
    g_assert_cmpint(hypervisor_sim_check_clean(fx->hv), ==, 0);
    cf8(fx->bus, devfn, 0);
    g_assert_cmphex(pci_bus_ioport_read(fx->bus, PCI_CONFIG_ADDRESS_PORT, 4), ==,
                    PCI_CONFIG_ENABLE | (uint32_t)devfn << 8);
    for (unsigned reg = PCI_BASE_ADDRESS_0; reg <= PCI_BASE_ADDRESS_5; reg += 4)
        g_assert_cmphex(tg_cfg_read(fx->bus, devfn, reg, 4) & ~0xfu, ==, 0);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_INTERRUPT_LINE, 1), ==, 0);
}

static void test_map_hook(Fixture *fx, gconstpointer data)
{
    (void)data;
    uint8_t devfn = PT_DEVFN(8, 0);
    TestDevice *td = add_dev(fx, 0x7000);
    test_device_set_bar(td, 0, PCI_BAR_MEM32, 0x100, 0, false);   /* sub-page: fine here */
    test_device_use_map_hook(td, true);
    plug(fx, td, devfn);
    size_t mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000100, 4);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000200, 4);
    g_assert_cmpint(pci_bus_unplug(fx->bus, devfn), ==, 0);
    assert_hv_log(fx, mark, "");
    const GPtrArray *calls = test_device_map_calls(td);
    static const char *const want[] = {
        "map BAR0 0xf0000100", "unmap BAR0 0xf0000100", "map BAR0 0xf0000200",
        "unmap BAR0 0xf0000200",
    };
    g_assert_cmpuint(calls->len, ==, G_N_ELEMENTS(want));
    for (guint i = 0; i < calls->len; i++)
        g_assert_cmpstr(g_ptr_array_index(calls, i), ==, want[i]);
}

static void test_direct_map_rules(Fixture *fx, gconstpointer data)
{
    (void)data;
    /* A sub-page BAR maps its whole frame, only if page offsets agree. */
    uint8_t devfn = PT_DEVFN(8, 0);
    TestDevice *td = add_dev(fx, 0x7001);
    test_device_set_bar(td, 0, PCI_BAR_MEM32, 0x100, 0xfe000300, false);
    plug(fx, td, devfn);
    tg_cfg_write(fx->bus, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    size_t mark = hypervisor_sim_log_len(fx->hv);
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000200, 4);
    assert_hv_log(fx, mark, "");
    tg_cfg_write(fx->bus, devfn, PCI_BASE_ADDRESS_0, 0xf0000300, 4);
    assert_hv_log(fx, mark, "map_mmio gfn=0xf0000 mfn=0xfe000 n=1\n");
    g_assert_cmpint(pci_map_direct(NULL, false, 0, 0, 4096, true), ==, -ENODEV);
    g_assert_cmpint(pci_map_direct(fx->hv, false, 0x1000, 0x2001, 16, true), ==, -EINVAL);
}

/* ------------------------------------------------------------ INTx */

static void test_intx(Fixture *fx, gconstpointer data)
{
    (void)data;
    static const struct { unsigned slot, pin, link; } swz[] = {
        { 4, 1, 0 }, { 4, 2, 1 }, { 5, 1, 1 }, { 7, 4, 2 }, { 31, 3, 1 }, { 0, 4, 3 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(swz); i++)
        g_assert_cmpuint(pci_intx_link(PT_DEVFN(swz[i].slot, 3), swz[i].pin), ==, swz[i].link);

    uint8_t devfn = PT_DEVFN(6, 2), fn0 = PT_DEVFN(6, 0);
    TestDevice *td = add_dev(fx, 0x8000), *f0 = add_dev(fx, 0x8001);
    test_device_set_pin(td, 2);
    plug(fx, f0, fn0);
    plug(fx, td, devfn);
    g_assert_cmpint(pci_device_intx_link(test_device_pci(td)), ==, 3);
    g_assert_cmpint(pci_device_intx_link(test_device_pci(f0)), ==, -ENOENT);

    /* The line register is the bus's; a dword write splits around it. */
    tg_cfg_write(fx->bus, devfn, PCI_INTERRUPT_LINE, 0xffffff0b, 4);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_INTERRUPT_LINE, 4) & 0xffff, ==, 0x020b);
    g_assert_cmpuint(test_device_writes_at(td, PCI_INTERRUPT_LINE), ==, 0);
    g_assert_cmpuint(test_device_writes_at(td, PCI_INTERRUPT_PIN), ==, 1);
    g_assert_cmpuint(test_device_writes_at(td, PCI_INTERRUPT_PIN + 2), ==, 1);
    g_assert_cmphex(tg_cfg_read(fx->bus, devfn, PCI_INTERRUPT_PIN, 1), ==, 2);
}

/* ------------------------------------------------------------ exports */

/* Slot 5: two functions with BARs; slot 6: one. */
static void export_bus(Fixture *fx)
{
    decode_dev(fx, PT_DEVFN(5, 0));
    TestDevice *f1 = add_dev(fx, 0x5001);
    test_device_set_bar(f1, 0, PCI_BAR_IO, 0x100, 0xd000, false);
    test_device_set_pin(f1, 1);
    plug(fx, f1, PT_DEVFN(5, 1));
    TestDevice *s6 = add_dev(fx, 0x6000);
    plug(fx, s6, PT_DEVFN(6, 0));
    tg_cfg_write(fx->bus, PT_DEVFN(5, 0), PCI_ROM_ADDRESS, 0xf1000001, 4);
    tg_cfg_write(fx->bus, PT_DEVFN(5, 0), PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    tg_cfg_write(fx->bus, PT_DEVFN(5, 1), PCI_BASE_ADDRESS_0, 0xd000, 4);
}

static void test_info(Fixture *fx, gconstpointer data)
{
    (void)data;
    export_bus(fx);
    char *info = pci_bus_info(fx->bus);
    static const char *const want[] = {
        "  05.0 8086:5000 class 0200 rev 01 header 80 test\n",
        "    BAR0 mem32 0xf0000000 size 0x4000 mapped\n",
        "    BAR1 io    0x0000c000 size 0x20 mapped\n",
        "    BAR2 mem64 0x100000000 size 0x200000 prefetch mapped\n",
        "    ROM  rom   0xf1000000 size 0x10000 mapped\n",
        "  05.1 8086:5001 class 0200 rev 01 header 80 test\n",
        "    INTA -> link 1, line 0\n",
        "    BAR0 io    0x0000d000 size 0x100\n",
        "  06.0 8086:6000 class 0200 rev 01 header 00 test\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
        if (!strstr(info, want[i]))
            g_error("info pci lacks \"%s\" in:\n%s", want[i], info);
    g_free(info);
}

/* Run real lspci on a dump; returns its stdout. */
static char *lspci(const char *dump, const char *const *args)
{
    char *path = NULL;
    GError *err = NULL;
    int fd = g_file_open_tmp("pci-bus-XXXXXX.dump", &path, &err);
    g_assert_no_error(err);
    g_assert_true(g_file_set_contents(path, dump, -1, &err));
    g_assert_no_error(err);
    close(fd);

    GPtrArray *argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)LSPCI);
    g_ptr_array_add(argv, (char *)"-F");
    g_ptr_array_add(argv, path);
    for (; *args; args++)
        g_ptr_array_add(argv, (char *)*args);
    g_ptr_array_add(argv, NULL);

    char *out = NULL, *errout = NULL;
    int status;
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errout, &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, &err));
    g_assert_no_error(err);
    /* lspci -v looks for kernel modules; on a host without them it says
     * so.  Anything else on stderr is a complaint about our dump. */
    char **lines = g_strsplit(errout, "\n", -1);
    for (char **l = lines; *l; l++)
        if (**l && !strstr(*l, "libkmod"))
            g_error("lspci: %s", *l);
    g_strfreev(lines);
    g_ptr_array_unref(argv);
    g_free(errout);
    g_unlink(path);
    g_free(path);
    return out;
}

/* Only the hex lines ("xx: .." / "xxx: .."), which both sides must agree on. */
static char *hex_lines(const char *text)
{
    GString *g = g_string_new("");
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (g_regex_match_simple("^[0-9a-f]{2,3}: ", *l, 0, 0))
            g_string_append_printf(g, "%s\n", *l);
    g_strfreev(lines);
    return g_string_free(g, FALSE);
}

static void test_lspci(Fixture *fx, gconstpointer data)
{
    (void)data;
    if (!g_file_test(LSPCI, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("no " LSPCI);
        return;
    }
    export_bus(fx);
    char *dump = pci_bus_dump_lspci(fx->bus);

    char *list = lspci(dump, (const char *const[]){ "-n", NULL });
    g_assert_cmpstr(list, ==,
                    "00:05.0 0200: 8086:5000 (rev 01)\n"
                    "00:05.1 0200: 8086:5001 (rev 01)\n"
                    "00:06.0 0200: 8086:6000 (rev 01)\n");
    g_free(list);

    char *vvv = lspci(dump, (const char *const[]){ "-n", "-vvv", "-s", "05.0", NULL });
    static const char *const want[] = {
        "Control: I/O+ Mem+ BusMaster-",
        "Region 0: Memory at f0000000 (32-bit, non-prefetchable)",
        "Region 1: I/O ports at c000",
        "Region 2: Memory at 100000000 (64-bit, prefetchable)",
        "Expansion ROM at f1000000",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
        if (!strstr(vvv, want[i]))
            g_error("lspci -vvv lacks \"%s\" in:\n%s", want[i], vvv);
    g_free(vvv);

    /* Byte for byte: lspci's own hex dump of our file is our hex. */
    char *xxxx = lspci(dump, (const char *const[]){ "-xxxx", NULL });
    char *theirs = hex_lines(xxxx), *ours = hex_lines(dump);
    g_assert_cmpuint(strlen(ours), ==, 3 * 16 * (16 * 3 + 4));
    g_assert_cmpstr(theirs, ==, ours);
    g_free(theirs);
    g_free(ours);
    g_free(xxxx);
    g_free(dump);

    /* Forced single-function: the guest, and lspci, see only 05.0. */
    pci_bus_force_single_function(fx->bus, 5, true);
    dump = pci_bus_dump_lspci(fx->bus);
    list = lspci(dump, (const char *const[]){ "-n", NULL });
    g_assert_cmpstr(list, ==,
                    "00:05.0 0200: 8086:5000 (rev 01)\n"
                    "00:06.0 0200: 8086:6000 (rev 01)\n");
    g_free(list);
    g_free(dump);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/pci-bus/" name, Fixture, NULL, fx_setup, fn, fx_teardown)
    T("mech1/reads", test_mech1_reads);
    T("mech1/writes", test_mech1_writes);
    T("mech1/invalid", test_mech1_invalid);
    T("functions/mf-derived", test_mf_derived);
    T("functions/absent-all-ones", test_absent_all_ones);
    T("functions/plug-rules", test_plug_rules);
    T("bar/sizing", test_bar_sizing);
    T("bar/unimplemented", test_bar_unimplemented);
    T("bar/decode", test_decode);
    T("bar/overlap", test_overlap);
    T("bar/map-failure-retried", test_map_failure_retried);
    T("bar/map-hook", test_map_hook);
    T("bar/direct-map-rules", test_direct_map_rules);
    T("unplug/clean", test_unplug_clean);
    T("unplug/failure", test_unplug_failure);
    T("reset", test_reset);
    T("intx", test_intx);
    T("export/info", test_info);
    T("export/lspci", test_lspci);
#undef T
    return g_test_run();
}
