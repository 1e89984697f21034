/*
 * The Xen ioreq server (see xen-ioreq.h).  Set-up follows QEMU's order for
 * Xen >= 4.12: create, map the ioreq frame as a resource (no guest gfns),
 * get the server info, enable, then bind the vCPUs' event channels (Xen
 * fills vp_eport in the page) and claim ranges.
 */
#include "xen-ioreq.h"

#include <errno.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/hvm/ioreq.h>

#include "dm-log.h"
#include "pass-through.h"
#include "pt-place.h"

#define IOREQ_PAGE        4096u
#define IOREQ_MAX_VCPUS   (IOREQ_PAGE / sizeof(ioreq_t))   /* one ioreq frame */
#define IOREQ_PORT_RANGES 16
#define IOREQ_LOG_BURST   8

typedef struct PortRange {
    uint16_t first, count;
    const XenPortOps *ops;
    void *opaque;
} PortRange;

typedef struct MmioRange {
    uint64_t start, end;        /* inclusive, as Xen takes it */
} MmioRange;

struct XenIoreq {
    uint32_t domid;
    char who[24];
    PciBus *bus;
    PtGuest *guest;
    xendevicemodel_handle *dmod;
    xenforeignmemory_handle *fmem;
    xenevtchn_handle *xce;
    xenforeignmemory_resource_handle *res;
    shared_iopage_t *page;
    ioservid_t id;
    bool created, enabled;
    unsigned nvcpus;
    int *local;                 /* per vCPU: our port, -1 unbound */
    guint watch;
    PortRange ports[IOREQ_PORT_RANGES];
    int nports;
    uint8_t pcidev[PCI_BUS_DEVFNS / 8];     /* bit devfn: claimed */
    GArray *mmio;               /* MmioRange claimed */
    unsigned long served, refused;
    unsigned long syncs;            /* claim re-syncs: slot changes and BAR moves only */
};

/* ------------------------------------------------------------ errors */

static int __attribute__((format(printf, 4, 5)))
call_failed(XenIoreq *s, PtError *err, const char *call, const char *fmt, ...)
{
    int e = errno > 0 ? errno : EIO;
    char args[120];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    if (err)
        pt_error_set(err, "ioreq server of domain %u: %s(%s): %s",
                     s->domid, call, args, strerror(e));
    else
        dm_log(s->who, "%s(%s): %s", call, args, strerror(e));
    return -e;
}

/* A guest access we do not serve: counted, the first few logged (a guest
 * must not be able to flood the log). */
static void refuse(XenIoreq *s, const ioreq_t *r, const char *why)
{
    if (++s->refused <= IOREQ_LOG_BURST)
        dm_log(s->who, "ioreq type %u addr 0x%" PRIx64 " size %u count %u%s: %s%s",
               r->type, r->addr, r->size, r->count, r->data_is_ptr ? " (data in guest memory)" : "",
               why, s->refused == IOREQ_LOG_BURST ? " (further ones only counted)" : "");
}

static uint64_t all_ones(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* ------------------------------------------------------------ dispatch */

/* Xen's PCI config address: segment 63:48, bus 47:40, devfn 39:32, then
 * the register (with the byte within the dword) in 31:0. */
static void serve_config(XenIoreq *s, ioreq_t *r)
{
    uint32_t sbdf = (uint32_t)(r->addr >> 32);
    unsigned reg = (unsigned)(r->addr & 0xffffffffu);
    uint8_t devfn = (uint8_t)sbdf;

    if (r->data_is_ptr || r->count != 1 || (r->size != 1 && r->size != 2 && r->size != 4)) {
        refuse(s, r, "not a plain config access");
        goto ones;
    }
    if (sbdf >> 8) {            /* only segment 0 bus 0 is ours */
        refuse(s, r, "not on guest bus 0");
        goto ones;
    }
    if (r->dir == IOREQ_READ) {
        r->data = pci_bus_cfg_read(s->bus, devfn, reg, r->size);
        return;
    }
    pci_bus_cfg_write(s->bus, devfn, reg, (uint32_t)r->data, r->size);
    return;
ones:
    if (r->dir == IOREQ_READ)
        r->data = all_ones(r->size);
}

static PortRange *port_range(XenIoreq *s, uint64_t port, unsigned size)
{
    for (int i = 0; i < s->nports; i++) {
        PortRange *p = &s->ports[i];
        if (port >= p->first && port + size <= (uint64_t)p->first + p->count)
            return p;
    }
    return NULL;
}

static void serve_pio(XenIoreq *s, ioreq_t *r)
{
    PortRange *p = port_range(s, r->addr, r->size);

    if (!p || r->data_is_ptr || r->size > 4) {
        refuse(s, r, p ? "string or wide port I/O is not supported" : "no handler");
        if (r->dir == IOREQ_READ)
            r->data = all_ones(r->size);
        return;
    }
    if (r->dir == IOREQ_READ)
        r->data = p->ops->read(p->opaque, (uint16_t)r->addr, r->size);
    else
        p->ops->write(p->opaque, (uint16_t)r->addr, (uint32_t)r->data, r->size);
}

/* Guest memory: only trapped BAR ranges are claimed (MSI-X pages, sub-page BARs). */
static void serve_copy(XenIoreq *s, ioreq_t *r)
{
    uint64_t val = 0;
    int rc;

    if (r->data_is_ptr || r->count != 1) {
        refuse(s, r, "string MMIO is not supported");
        rc = -EOPNOTSUPP;
    } else if (r->dir == IOREQ_READ) {
        rc = pci_bus_mmio_read(s->bus, r->addr, r->size, &val);
    } else {
        rc = pci_bus_mmio_write(s->bus, r->addr, r->size, r->data);
    }
    if (r->dir == IOREQ_READ)
        r->data = rc == 0 ? val : all_ones(r->size);
}

/* Xen tells every server about these; nothing of ours depends on them. */
static void serve_nothing(XenIoreq *s, ioreq_t *r)
{
    (void)s, (void)r;
}

static const struct {
    uint8_t type;
    void (*serve)(XenIoreq *s, ioreq_t *r);
} ioreq_types[] = {
    { IOREQ_TYPE_PIO,        serve_pio },
    { IOREQ_TYPE_COPY,       serve_copy },
    { IOREQ_TYPE_PCI_CONFIG, serve_config },
    { IOREQ_TYPE_TIMEOFFSET, serve_nothing },
    { IOREQ_TYPE_INVALIDATE, serve_nothing },
};

static void dispatch(XenIoreq *s, ioreq_t *r)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ioreq_types); i++)
        if (ioreq_types[i].type == r->type) {
            ioreq_types[i].serve(s, r);
            return;
        }
    refuse(s, r, "unknown ioreq type");
}

/* One vCPU's slot: READY -> INPROCESS -> (served) -> IORESP_READY. */
static void serve_vcpu(XenIoreq *s, unsigned v)
{
    volatile ioreq_t *slot = &s->page->vcpu_ioreq[v];
    ioreq_t r;

    if (slot->state != STATE_IOREQ_READY)
        return;                 /* a spurious or repeated event */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);    /* the request, after its state */
    memcpy(&r, (const void *)slot, sizeof(r));
    slot->state = STATE_IOREQ_INPROCESS;
    dispatch(s, &r);
    if (r.dir == IOREQ_READ)
        slot->data = r.data;
    __atomic_thread_fence(__ATOMIC_RELEASE);    /* the data, before the state */
    slot->state = STATE_IORESP_READY;
    s->served++;
    xenevtchn_notify(s->xce, (evtchn_port_t)s->local[v]);
}

static gboolean on_event(gint fd, GIOCondition cond, gpointer opaque)
{
    XenIoreq *s = opaque;
    xenevtchn_port_or_error_t port = xenevtchn_pending(s->xce);

    (void)fd, (void)cond;
    if (port < 0)
        return G_SOURCE_CONTINUE;
    xenevtchn_unmask(s->xce, (evtchn_port_t)port);
    for (unsigned v = 0; v < s->nvcpus; v++)
        if (s->local[v] == port)
            serve_vcpu(s, v);
    return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ claims */

static bool pcidev_claimed(const XenIoreq *s, unsigned devfn)
{
    return s->pcidev[devfn / 8] & (1u << (devfn % 8));
}

static int claim_pcidev(XenIoreq *s, unsigned devfn, bool claim)
{
    int (*fn)(xendevicemodel_handle *, domid_t, ioservid_t, uint16_t, uint8_t, uint8_t,
              uint8_t) = claim ? xendevicemodel_map_pcidev_to_ioreq_server
                               : xendevicemodel_unmap_pcidev_from_ioreq_server;

    if (fn(s->dmod, (domid_t)s->domid, s->id, 0, 0, PT_SLOT(devfn), PT_FUNC(devfn)) < 0)
        return call_failed(s, NULL, claim ? "xendevicemodel_map_pcidev_to_ioreq_server"
                                          : "xendevicemodel_unmap_pcidev_from_ioreq_server",
                           "00:%02x.%x", PT_SLOT(devfn), PT_FUNC(devfn));
    s->pcidev[devfn / 8] ^= (uint8_t)(1u << (devfn % 8));
    return 0;
}

static int claim_range(XenIoreq *s, int is_mmio, uint64_t start, uint64_t end, bool claim)
{
    int rc = claim ? xendevicemodel_map_io_range_to_ioreq_server(s->dmod, (domid_t)s->domid,
                                                                 s->id, is_mmio, start, end)
                   : xendevicemodel_unmap_io_range_from_ioreq_server(s->dmod, (domid_t)s->domid,
                                                                     s->id, is_mmio, start, end);
    if (rc < 0)
        return call_failed(s, NULL, claim ? "xendevicemodel_map_io_range_to_ioreq_server"
                                          : "xendevicemodel_unmap_io_range_from_ioreq_server",
                           "%s 0x%" PRIx64 "-0x%" PRIx64, is_mmio ? "mmio" : "port", start, end);
    return 0;
}

static int sync_pcidevs(XenIoreq *s)
{
    int first = 0;

    for (unsigned d = 0; d < PCI_BUS_DEVFNS; d++) {
        bool want = pci_bus_device(s->bus, (uint8_t)d) != NULL;
        if (want != pcidev_claimed(s, d)) {
            int rc = claim_pcidev(s, d, want);
            first = first ? first : rc;
        }
    }
    return first;
}

static void add_page_range(GArray *want, uint64_t start, uint64_t end)
{
    if (want->len) {
        MmioRange *last = &g_array_index(want, MmioRange, want->len - 1);
        if (last->end + 1 == start) {
            last->end = end;
            return;
        }
    }
    g_array_append_val(want, ((MmioRange){ start, end }));
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Page offsets within BAR `bar` that hold part of the MSI-X table or PBA. */
static void candidate_pages(const PtMsixInfo *mi, int bar, GArray *offs)
{
    const struct { int bar; uint64_t off, len; } parts[] = {
        { mi->table_bar, mi->table_off, (uint64_t)mi->nvec * PT_MSIX_ENTRY_SIZE },
        { mi->pba_bar, mi->pba_off, pt_msix_pba_size(mi->nvec) },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        for (uint64_t o = parts[i].off & ~(uint64_t)(IOREQ_PAGE - 1);
             parts[i].bar == bar && o < parts[i].off + parts[i].len; o += IOREQ_PAGE)
            g_array_append_val(offs, o);
    g_array_sort(offs, cmp_u64);
}

/* Trapped pages of one mapped BAR, as merged guest ranges in order. */
static void trapped_of_bar(PtFunc *fn, PciDevice *dev, const PtMsixInfo *mi, int bar,
                           GArray *want)
{
    PtBar b;

    if (!pci_device_bar_mapped(dev, bar) || pt_func_bar(fn, bar, &b) < 0)
        return;
    uint64_t base = pci_device_bar_addr(dev, bar), prev = UINT64_MAX;
    GArray *offs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    candidate_pages(mi, bar, offs);
    for (guint i = 0; i < offs->len; i++) {
        uint64_t off = g_array_index(offs, uint64_t, i);
        if (off == prev || off >= b.size)
            continue;
        prev = off;
        unsigned len = (unsigned)MIN((uint64_t)IOREQ_PAGE, b.size - off);
        if (pt_func_bar_trapped(fn, bar, off, len))
            add_page_range(want, base + off, base + off + len - 1);
    }
    g_array_free(offs, TRUE);
}

static bool has_range(GArray *a, const MmioRange *r)
{
    for (guint i = 0; i < a->len; i++) {
        const MmioRange *x = &g_array_index(a, MmioRange, i);
        if (x->start == r->start && x->end == r->end)
            return true;
    }
    return false;
}

/* Mapped memory BARs trapped whole (the sub-page ones, pass-through.h),
 * unless their MSI-X pages claimed the same range already. */
static void trapped_whole_bars(PtFunc *fn, PciDevice *dev, GArray *want)
{
    for (int bar = 0; bar < PCI_BAR_ROM; bar++) {
        PtBar b;
        if (!pci_device_bar_mapped(dev, bar) || pt_func_bar(fn, bar, &b) < 0 || b.io ||
            b.size >= IOREQ_PAGE || !pt_func_bar_trapped(fn, bar, 0, (unsigned)b.size))
            continue;
        uint64_t base = pci_device_bar_addr(dev, bar);
        MmioRange r = { base, base + b.size - 1 };
        if (!has_range(want, &r))
            g_array_append_val(want, r);
    }
}

static GArray *wanted_mmio(XenIoreq *s)
{
    GArray *want = g_array_new(FALSE, FALSE, sizeof(MmioRange));

    for (int i = 0; s->guest && i < pt_guest_count(s->guest); i++) {
        PtFunc *fn = pt_guest_func_at(s->guest, i)->fn;
        PciDevice *dev = pt_func_device(fn);
        PtMsixInfo mi;
        if (!dev)
            continue;
        if (pt_func_msix_info(fn, &mi) == 0) {
            trapped_of_bar(fn, dev, &mi, mi.table_bar, want);
            if (mi.pba_bar != mi.table_bar)
                trapped_of_bar(fn, dev, &mi, mi.pba_bar, want);
        }
        trapped_whole_bars(fn, dev, want);
    }
    return want;
}

static int sync_mmio(XenIoreq *s)
{
    GArray *want = wanted_mmio(s);
    int first = 0;

    for (guint i = s->mmio->len; i-- > 0;) {
        MmioRange r = g_array_index(s->mmio, MmioRange, i);
        if (has_range(want, &r))
            continue;
        int rc = claim_range(s, 1, r.start, r.end, false);
        first = first ? first : rc;
        g_array_remove_index(s->mmio, i);   /* gone from the guest either way */
    }
    for (guint i = 0; i < want->len; i++) {
        MmioRange *r = &g_array_index(want, MmioRange, i);
        if (has_range(s->mmio, r))
            continue;
        int rc = claim_range(s, 1, r->start, r->end, true);
        if (rc == 0)
            g_array_append_val(s->mmio, *r);
        first = first ? first : rc;
    }
    g_array_free(want, TRUE);
    return first;
}

int xen_ioreq_sync(XenIoreq *s)
{
    int a = sync_pcidevs(s), b = sync_mmio(s);

    s->syncs++;
    return a ? a : b;
}

/* The claims after a slot change, in the log: what Xen still sends here. */
void xen_ioreq_slot_changed(void *opaque, unsigned vslot, bool inserted)
{
    XenIoreq *s = opaque;

    xen_ioreq_sync(s);
    dm_log(s->who, "slot %02x %s: claiming %u functions' config space, %u MMIO ranges",
           vslot, inserted ? "in" : "out", xen_ioreq_claimed_pcidevs(s),
           xen_ioreq_claimed_mmio(s));
}

/* A BAR moved: its trapped pages (MSI-X, sub-page BARs) move with it. */
static void bar_changed(void *opaque, PciDevice *dev, int bar, uint64_t addr, bool map)
{
    XenIoreq *s = opaque;
    (void)dev, (void)bar, (void)addr, (void)map;

    sync_mmio(s);
    s->syncs++;
}

unsigned long xen_ioreq_syncs(const XenIoreq *s)
{
    return s->syncs;
}

int xen_ioreq_add_ports(XenIoreq *s, uint16_t first, uint16_t count, const XenPortOps *ops,
                        void *opaque, PtError *err)
{
    uint32_t end = (uint32_t)first + count;

    if (!count || end > 0x10000u) {
        pt_error_set(err, "ports 0x%x+%u: not an I/O port range", first, count);
        return -EINVAL;
    }
    for (int i = 0; i < s->nports; i++)
        if (first < s->ports[i].first + s->ports[i].count && s->ports[i].first < end) {
            pt_error_set(err, "ports 0x%x+%u overlap ports 0x%x+%u",
                         first, count, s->ports[i].first, s->ports[i].count);
            return -EEXIST;
        }
    if (s->nports == IOREQ_PORT_RANGES) {
        pt_error_set(err, "at most %d port ranges", IOREQ_PORT_RANGES);
        return -ENOSPC;
    }
    if (xendevicemodel_map_io_range_to_ioreq_server(s->dmod, (domid_t)s->domid, s->id, 0,
                                                    first, end - 1) < 0)
        return call_failed(s, err, "xendevicemodel_map_io_range_to_ioreq_server",
                           "port 0x%x-0x%x", first, end - 1);
    s->ports[s->nports++] = (PortRange){ first, count, ops, opaque };
    return 0;
}

int xen_ioreq_del_ports(XenIoreq *s, uint16_t first)
{
    for (int i = 0; i < s->nports; i++) {
        PortRange p = s->ports[i];
        if (p.first != first)
            continue;
        s->ports[i] = s->ports[--s->nports];
        return claim_range(s, 0, p.first, (uint64_t)p.first + p.count - 1, false);
    }
    return -ENOENT;
}

/* ------------------------------------------------------------ life */

static void quiet_vmessage(struct xentoollog_logger *l, xentoollog_level level, int errnoval,
                           const char *context, const char *format, va_list al)
{
    (void)l, (void)level, (void)errnoval, (void)context, (void)format, (void)al;
}

static void quiet_destroy(struct xentoollog_logger *l)
{
    (void)l;
}

/* Our failure lines name the call; the libraries' own would repeat them. */
static xentoollog_logger quiet_logger = { quiet_vmessage, NULL, quiet_destroy };

static int open_handles(XenIoreq *s, PtError *err)
{
    if (!(s->dmod = xendevicemodel_open(&quiet_logger, 0)))
        return call_failed(s, err, "xendevicemodel_open", "%s", "");
    if (!(s->fmem = xenforeignmemory_open(&quiet_logger, 0)))
        return call_failed(s, err, "xenforeignmemory_open", "%s", "");
    if (!(s->xce = xenevtchn_open(&quiet_logger, 0)))
        return call_failed(s, err, "xenevtchn_open", "%s", "");
    return 0;
}

/* The guest's vCPUs: one ioreq slot and event channel each. */
static int count_vcpus(XenIoreq *s, PtError *err)
{
    xc_interface *xch = xc_interface_open(&quiet_logger, &quiet_logger, 0);
    xc_dominfo_t info;
    int rc = 0;

    if (!xch)
        return call_failed(s, err, "xc_interface_open", "%s", "");
    int n = xc_domain_getinfo(xch, s->domid, 1, &info);
    if (n != 1 || info.domid != s->domid) {
        if (n >= 0)
            errno = ESRCH;      /* it answered with another domain, or none */
        rc = call_failed(s, err, "xc_domain_getinfo", "%u", s->domid);
    } else if (!info.hvm || info.max_vcpu_id + 1 > IOREQ_MAX_VCPUS) {
        pt_error_set(err, "domain %u: %s", s->domid,
                     info.hvm ? "more vCPUs than one ioreq page serves" : "not an HVM guest");
        rc = -EINVAL;
    } else {
        s->nvcpus = info.max_vcpu_id + 1;
    }
    xc_interface_close(xch);
    return rc;
}

static int create_server(XenIoreq *s, PtError *err)
{
    void *addr = NULL;

    if (xendevicemodel_create_ioreq_server(s->dmod, (domid_t)s->domid,
                                           HVM_IOREQSRV_BUFIOREQ_OFF, &s->id) < 0)
        return call_failed(s, err, "xendevicemodel_create_ioreq_server", "%u", s->domid);
    s->created = true;
    s->res = xenforeignmemory_map_resource(s->fmem, (domid_t)s->domid,
                                           XENMEM_resource_ioreq_server, s->id,
                                           XENMEM_resource_ioreq_server_frame_ioreq(0), 1,
                                           &addr, PROT_READ | PROT_WRITE, 0);
    if (!s->res)
        return call_failed(s, err, "xenforeignmemory_map_resource", "ioreq server %u", s->id);
    s->page = addr;
    if (xendevicemodel_get_ioreq_server_info(s->dmod, (domid_t)s->domid, s->id,
                                             NULL, NULL, NULL) < 0)
        return call_failed(s, err, "xendevicemodel_get_ioreq_server_info", "%u", s->id);
    if (xendevicemodel_set_ioreq_server_state(s->dmod, (domid_t)s->domid, s->id, 1) < 0)
        return call_failed(s, err, "xendevicemodel_set_ioreq_server_state", "%u, 1", s->id);
    s->enabled = true;
    return 0;
}

static int bind_vcpus(XenIoreq *s, PtError *err)
{
    s->local = g_new(int, s->nvcpus);
    for (unsigned v = 0; v < s->nvcpus; v++)
        s->local[v] = -1;
    for (unsigned v = 0; v < s->nvcpus; v++) {
        evtchn_port_t remote = s->page->vcpu_ioreq[v].vp_eport;
        s->local[v] = xenevtchn_bind_interdomain(s->xce, s->domid, remote);
        if (s->local[v] < 0)
            return call_failed(s, err, "xenevtchn_bind_interdomain", "vcpu %u port %u",
                               v, remote);
    }
    s->watch = g_unix_fd_add(xenevtchn_fd(s->xce), G_IO_IN, on_event, s);
    return 0;
}

XenIoreq *xen_ioreq_new(uint32_t domid, PciBus *bus, PtGuest *guest, PtError *err)
{
    XenIoreq *s = g_new0(XenIoreq, 1);

    s->domid = domid;
    s->bus = bus;
    s->guest = guest;
    s->mmio = g_array_new(FALSE, FALSE, sizeof(MmioRange));
    snprintf(s->who, sizeof(s->who), "ioreq dom%u", domid);
    if (open_handles(s, err) < 0 || count_vcpus(s, err) < 0 || create_server(s, err) < 0 ||
        bind_vcpus(s, err) < 0)
        goto fail;
    if (xen_ioreq_sync(s) < 0) {
        pt_error_set(err,
                     "ioreq server of domain %u: cannot claim the guest's devices (see the log)",
                     domid);
        goto fail;
    }
    pci_bus_listen_bars(bus, bar_changed, s);
    /* A toolstack unpauses the guest once it sees this line. */
    dm_log(s->who, "ioreq server %u serving %u vCPUs", s->id, s->nvcpus);
    return s;
fail:
    xen_ioreq_free(s);
    return NULL;
}

static void release_claims(XenIoreq *s)
{
    for (unsigned d = 0; d < PCI_BUS_DEVFNS; d++)
        if (pcidev_claimed(s, d))
            claim_pcidev(s, d, false);
    for (guint i = 0; i < s->mmio->len; i++) {
        MmioRange *r = &g_array_index(s->mmio, MmioRange, i);
        claim_range(s, 1, r->start, r->end, false);
    }
    g_array_set_size(s->mmio, 0);
    while (s->nports > 0)
        xen_ioreq_del_ports(s, s->ports[s->nports - 1].first);
}

void xen_ioreq_free(XenIoreq *s)
{
    if (!s)
        return;
    if (s->bus)
        pci_bus_listen_bars(s->bus, NULL, s);
    if (s->watch)
        g_source_remove(s->watch);
    if (s->created)
        release_claims(s);
    if (s->enabled)
        xendevicemodel_set_ioreq_server_state(s->dmod, (domid_t)s->domid, s->id, 0);
    for (unsigned v = 0; s->local && v < s->nvcpus; v++)
        if (s->local[v] >= 0)
            xenevtchn_unbind(s->xce, (evtchn_port_t)s->local[v]);
    if (s->res)
        xenforeignmemory_unmap_resource(s->fmem, s->res);
    if (s->created)
        xendevicemodel_destroy_ioreq_server(s->dmod, (domid_t)s->domid, s->id);
    if (s->xce)
        xenevtchn_close(s->xce);
    if (s->fmem)
        xenforeignmemory_close(s->fmem);
    if (s->dmod)
        xendevicemodel_close(s->dmod);
    if (s->refused)
        dm_log(s->who, "%lu guest accesses were refused", s->refused);
    g_array_free(s->mmio, TRUE);
    g_free(s->local);
    g_free(s);
}

unsigned xen_ioreq_vcpus(const XenIoreq *s)
{
    return s->nvcpus;
}

unsigned xen_ioreq_claimed_pcidevs(const XenIoreq *s)
{
    unsigned n = 0;

    for (unsigned d = 0; d < PCI_BUS_DEVFNS; d++)
        n += pcidev_claimed(s, d);
    return n;
}

unsigned xen_ioreq_claimed_mmio(const XenIoreq *s)
{
    return s->mmio->len;
}

unsigned long xen_ioreq_served(const XenIoreq *s)
{
    return s->served;
}
