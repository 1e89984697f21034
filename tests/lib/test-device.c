/* Emulated test function; see test-device.h. */
#include <string.h>
#include "test-device.h"

struct TestDevice {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];
    unsigned writes[PCI_CONFIG_SIZE];
    unsigned resets;
    PciPlug plug;
    PciDevice *pci;
    GPtrArray *map_calls;
};

static void put_le(uint8_t *p, uint32_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le(const uint8_t *p, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint32_t td_cfg_read(PciDevice *dev, unsigned offset, unsigned len)
{
    TestDevice *td = pci_device_opaque(dev);
    return get_le(&td->config[offset], len);
}

static void td_cfg_write(PciDevice *dev, unsigned offset, uint32_t val, unsigned len)
{
    TestDevice *td = pci_device_opaque(dev);
    for (unsigned i = 0; i < len; i++) {
        uint8_t m = td->wmask[offset + i];
        uint8_t b = (uint8_t)(val >> (8 * i));
        td->config[offset + i] = (td->config[offset + i] & ~m) | (b & m);
        td->writes[offset + i]++;
    }
}

static void td_reset(PciDevice *dev)
{
    TestDevice *td = pci_device_opaque(dev);
    put_le(&td->config[PCI_COMMAND], 0, 2);
    td->resets++;
}

static int td_bar_map(PciDevice *dev, int bar, uint64_t gaddr, bool map)
{
    TestDevice *td = pci_device_opaque(dev);
    g_ptr_array_add(td->map_calls, g_strdup_printf("%s BAR%d 0x%" G_GINT64_MODIFIER "x",
                                                   map ? "map" : "unmap", bar, gaddr));
    return 0;
}

static const PciDeviceOps td_ops = {
    .cfg_read = td_cfg_read,
    .cfg_write = td_cfg_write,
    .reset = td_reset,
};

static const PciDeviceOps td_hook_ops = {
    .cfg_read = td_cfg_read,
    .cfg_write = td_cfg_write,
    .reset = td_reset,
    .bar_map = td_bar_map,
};

TestDevice *test_device_new(uint16_t vendor, uint16_t device, uint32_t class_code)
{
    TestDevice *td = g_new0(TestDevice, 1);
    put_le(&td->config[PCI_VENDOR_ID], vendor, 2);
    put_le(&td->config[PCI_DEVICE_ID], device, 2);
    put_le(&td->config[PCI_REVISION_ID], 0x01, 1);
    put_le(&td->config[PCI_CLASS_PROG], class_code, 3);
    put_le(&td->config[PCI_SUBSYSTEM_VENDOR_ID], vendor, 2);
    put_le(&td->config[PCI_SUBSYSTEM_ID], 0x1234, 2);
    put_le(&td->wmask[PCI_COMMAND], PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
                                    | PCI_COMMAND_DISABLE_INTx, 2);
    td->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    td->wmask[PCI_LATENCY_TIMER] = 0xff;
    /* Device-specific space is plain scratch memory. */
    memset(&td->wmask[0x40], 0xff, PCI_CONFIG_SIZE - 0x40);
    td->plug.ops = &td_ops;
    td->plug.opaque = td;
    td->plug.name = "test";
    td->map_calls = g_ptr_array_new_with_free_func(g_free);
    return td;
}

void test_device_free(TestDevice *td)
{
    g_ptr_array_unref(td->map_calls);
    g_free(td);
}

void test_device_set_bar(TestDevice *td, int bar, PciBarKind kind, uint64_t size,
                         uint64_t host_addr, bool prefetch)
{
    td->plug.bar[bar] = (PciBarInfo){ .kind = kind, .size = size,
                                      .host_addr = host_addr, .prefetch = prefetch };
}

void test_device_set_pin(TestDevice *td, uint8_t pin)
{
    td->config[PCI_INTERRUPT_PIN] = pin;
}

void test_device_set_header_type(TestDevice *td, uint8_t type)
{
    td->config[PCI_HEADER_TYPE] = type;
}

void test_device_use_map_hook(TestDevice *td, bool on)
{
    td->plug.ops = on ? &td_hook_ops : &td_ops;
}

const GPtrArray *test_device_map_calls(TestDevice *td)
{
    return td->map_calls;
}

int test_device_plug(TestDevice *td, PciBus *bus, uint8_t devfn)
{
    return pci_bus_plug(bus, devfn, &td->plug, &td->pci);
}

PciDevice *test_device_pci(TestDevice *td)      { return td->pci; }
uint8_t *test_device_config(TestDevice *td)     { return td->config; }
unsigned test_device_resets(TestDevice *td)     { return td->resets; }

unsigned test_device_writes_at(TestDevice *td, unsigned offset)
{
    return offset < PCI_CONFIG_SIZE ? td->writes[offset] : 0;
}
