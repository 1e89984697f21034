#include "readthrough.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

struct ReadThrough {
    HostPci *host;
    PciBus *bus;
    HostFunc *funcs[PCI_BUS_DEVFNS];    /* by devfn */
};

static uint32_t rt_cfg_read(PciDevice *dev, unsigned offset, unsigned len)
{
    uint8_t b[4];
    uint32_t val = 0;

    /* A failed host read reads all ones, as a master abort would. */
    if (host_func_read(pci_device_opaque(dev), offset, b, len) < 0)
        return UINT32_MAX;
    for (unsigned i = 0; i < len; i++)
        val |= (uint32_t)b[i] << (8 * i);
    return val;
}

static void rt_cfg_write(PciDevice *dev, unsigned offset, uint32_t val, unsigned len)
{
    uint8_t b[4];

    for (unsigned i = 0; i < len; i++)
        b[i] = (uint8_t)(val >> (8 * i));
    host_func_write(pci_device_opaque(dev), offset, b, len);
}

/* No reset hook: there is no guest state to restore, the host is the state. */
static const PciDeviceOps rt_ops = {
    .cfg_read = rt_cfg_read,
    .cfg_write = rt_cfg_write,
};

ReadThrough *readthrough_new(HostPci *host, Hypervisor *hv)
{
    ReadThrough *rt = g_new0(ReadThrough, 1);

    rt->host = host;
    rt->bus = pci_bus_new(hv);
    return rt;
}

void readthrough_free(ReadThrough *rt)
{
    if (!rt)
        return;
    pci_bus_free(rt->bus);
    for (unsigned i = 0; i < PCI_BUS_DEVFNS; i++)
        host_func_close(rt->funcs[i]);
    g_free(rt);
}

PciBus *readthrough_bus(ReadThrough *rt)
{
    return rt->bus;
}

/* The facts pt_func_plug gives the bus, from the public accessors. */
static void fill_bars(PtFunc *fn, PciPlug *plug)
{
    PtBar b;

    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (pt_func_bar(fn, i, &b) == 0)
            plug->bar[i] = pci_bar_info(&b);
}

int readthrough_plug_like(ReadThrough *rt, PtFunc *fn)
{
    uint8_t devfn = pt_func_vdevfn(fn);
    PciPlug plug = { .ops = &rt_ops, .name = pt_func_name(fn),
                     .config_size = pt_func_config_size(fn) };
    PtError err;
    int rc;

    if (rt->funcs[devfn])
        return -EEXIST;
    HostFunc *hf = host_func_open(rt->host, pt_func_host_bdf(fn), &err);
    if (!hf)
        return -ENODEV;
    plug.opaque = hf;
    fill_bars(fn, &plug);
    rc = pci_bus_plug(rt->bus, devfn, &plug, NULL);
    if (rc < 0) {
        host_func_close(hf);
        return rc;
    }
    rt->funcs[devfn] = hf;
    return 0;
}

HostCounters readthrough_counters(const ReadThrough *rt)
{
    HostCounters sum = { 0 };

    for (unsigned i = 0; i < PCI_BUS_DEVFNS; i++) {
        if (!rt->funcs[i])
            continue;
        HostCounters c = host_func_counters(rt->funcs[i]);
        sum.reads += c.reads;
        sum.writes += c.writes;
    }
    return sum;
}
