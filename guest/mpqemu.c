/*
 * MPQEMU remote side: one socket per guest function, messages served from
 * the GLib main loop.  A message is a 16-byte header {int32 cmd; pad;
 * uint64 size} and `size` bytes of payload; fds travel as SCM_RIGHTS with
 * the header.  The stream is read without blocking into a per-channel
 * buffer; each fd is tagged with the stream offset it arrived at, so a
 * message gets exactly the fds sent with it.
 */
#include "mpqemu.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dm-log.h"
#include "pass-through.h"

#define MPQ_MSG_MAX     (MPQ_HDR_SIZE + MPQ_MAX_PAYLOAD)
#define MPQ_FD_QUEUE    64
#define MPQ_IRQFDS      8
#define MPQ_BAR_MAX     (1ull << 30) /* QEMU 7.2 sizes a BAR in a signed int */

typedef struct QueuedFd {
    uint64_t at;                    /* stream offset of the bytes it came with */
    int fd;
} QueuedFd;

typedef struct MpqChannel {
    MpqServer *s;
    uint8_t devfn;
    int fd;
    guint watch;
    char who[24];                   /* "mpqemu 07.1" */
    uint8_t buf[MPQ_MSG_MAX];
    size_t have;
    uint64_t base;                  /* stream offset of buf[0] */
    QueuedFd fds[MPQ_FD_QUEUE];
    int nfds;
    int irqfd[MPQ_IRQFDS];
    int nirqfd;
    int backing[PCI_NUM_BARS];      /* resourceN: -1 not opened, -2 none */
    bool backing_warned;
    bool reset_seen;                /* QEMU's probe of the BARs is over */
    uint8_t high_logged;            /* BARs said to sit above 4 GiB */
} MpqChannel;

struct MpqServer {
    PtGuest *guest;
    PciBus *bus;
    char *sysfs_root;
    GPtrArray *channels;
    MpqStats stats;
};

/* One message as received: payload and the fds that came with it. */
typedef struct MpqMsg {
    uint32_t cmd;
    uint64_t size;
    const uint8_t *payload;
    int fds[MPQ_MAX_FDS + MPQ_FD_QUEUE];
    int nfds;
} MpqMsg;

/* ------------------------------------------------------------ helpers */

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static PtFunc *channel_func(MpqChannel *c)
{
    for (int i = 0; i < pt_guest_count(c->s->guest); i++) {
        const PtGuestFunc *g = pt_guest_func_at(c->s->guest, i);
        if (g->vdevfn == c->devfn)
            return g->fn;
    }
    return NULL;
}

static bool normal_header(MpqChannel *c)
{
    uint32_t hdr = pci_bus_cfg_read(c->s->bus, c->devfn, PCI_HEADER_TYPE, 1);
    return hdr != 0xff && pt_header_is_normal((uint8_t)hdr);
}

/* ------------------------------------------------------------ config space */

/* Why the guest cannot be shown this BAR under QEMU's proxy, or NULL. */
static const char *bar_hidden_why(const PtBar *b, int index)
{
    if (index == PCI_BAR_ROM)
        return "QEMU 7.2's proxy forwards no expansion ROM";
    if (!b->io && b->size > MPQ_BAR_MAX)
        return "QEMU 7.2's proxy sizes a BAR in a signed 32-bit int, 1G at most";
    return NULL;
}

/*
 * The bits of the config dword at `dword` this front-end lets through (see
 * mpqemu.h): everything, but for BARs the proxy cannot carry and the upper
 * dword of a 64-bit BAR while QEMU probes (it would size it as a BAR of
 * its own).  0 also means writes are dropped.
 */
static uint32_t visible_bits(MpqChannel *c, unsigned dword)
{
    bool rom = dword == PCI_ROM_ADDRESS;

    if ((dword < PCI_BASE_ADDRESS_0 || dword > PCI_CARDBUS_CIS) && !rom)
        return UINT32_MAX;
    if (!normal_header(c))
        return UINT32_MAX;
    if (dword == PCI_CARDBUS_CIS)       /* the proxy's seventh "BAR" */
        return 0;
    int bar = rom ? PCI_BAR_ROM : (int)(dword - PCI_BASE_ADDRESS_0) / 4;
    PtFunc *fn = channel_func(c);
    PtBar b;
    if (!fn)
        return UINT32_MAX;
    if (!rom && bar > 0 && pt_func_bar(fn, bar - 1, &b) == 0 && b.mem64)
        return bar_hidden_why(&b, bar - 1) || !c->reset_seen ? 0 : UINT32_MAX;
    if (pt_func_bar(fn, bar, &b) == 0 && bar_hidden_why(&b, bar))
        return 0;
    return UINT32_MAX;
}

/* "8G", "256M", "128": a power-of-two size as lspci prints it. */
static const char *size_text(uint64_t size, char buf[24])
{
    static const char units[] = " KMGT";
    int u = 0;

    while (u < 4 && size >= 1024 && size % 1024 == 0)
        size /= 1024, u++;
    snprintf(buf, 24, "%" PRIu64 "%.*s", size, u > 0, &units[u]);
    return buf;
}

/* One line for each BAR of the function the guest will not see. */
static void log_hidden_bars(MpqChannel *c)
{
    PtFunc *fn = channel_func(c);

    for (int i = 0; fn && normal_header(c) && i < PCI_NUM_BARS; i++) {
        PtBar b;
        const char *why;
        char sz[24];
        if (pt_func_bar(fn, i, &b) < 0 || !(why = bar_hidden_why(&b, i)))
            continue;
        if (i == PCI_BAR_ROM)
            dm_log(pt_func_name(fn), "ROM (%s) not shown to the QEMU guest: %s",
                   size_text(b.size, sz), why);
        else
            dm_log(pt_func_name(fn), "BAR%d (%s, %s-bit%s memory) not shown to the QEMU "
                   "guest: %s", i, size_text(b.size, sz), b.mem64 ? "64" : "32",
                   b.prefetch ? " prefetchable" : "", why);
    }
}

/*
 * The proxy registered every BAR as 32-bit, so QEMU maps one at the low 32
 * bits of the address the guest gives it: a 64-bit BAR placed above 4 GiB
 * is out of the guest's reach, decode on or not (Linux leaves it off for a
 * device without a driver).  What sizing leaves in the registers (upper
 * dword all ones) is no placement.  Said once per BAR.
 */
static void check_above_4g(MpqChannel *c)
{
    PciDevice *dev = pci_bus_device(c->s->bus, c->devfn);
    PtFunc *fn = channel_func(c);

    for (int i = 0; dev && fn && i < PCI_BAR_ROM; i++) {
        PtBar b;
        uint64_t at = pci_device_bar_addr(dev, i);
        if (pt_func_bar(fn, i, &b) < 0 || !b.mem64 || at >> 32 == 0 ||
            at >> 32 == UINT32_MAX || (c->high_logged & (1u << i)))
            continue;
        c->high_logged |= (uint8_t)(1u << i);
        dm_log(pt_func_name(fn), "BAR%d placed at %#" PRIx64 " by the guest, above 4 GiB: "
               "QEMU's proxy maps BARs at their low 32 bits, so the guest's accesses do not "
               "reach qemu-dm", i, at);
    }
}

static uint64_t do_cfg_read(MpqChannel *c, MpqMsg *m)
{
    unsigned addr = get32(m->payload), len = get32(m->payload + 8);
    uint32_t bits = visible_bits(c, addr & ~3u);
    uint32_t val = pci_bus_cfg_read(c->s->bus, c->devfn, addr, len);

    return bits == UINT32_MAX ? val : val & (bits >> (8 * (addr & 3)));
}

static uint64_t do_cfg_write(MpqChannel *c, MpqMsg *m)
{
    unsigned addr = get32(m->payload), len = get32(m->payload + 8);
    uint32_t val = get32(m->payload + 4);

    if (visible_bits(c, addr & ~3u)) {
        pci_bus_cfg_write(c->s->bus, c->devfn, addr, val, len);
        check_above_4g(c);
    }
    return 0;
}

/* ------------------------------------------------------------ BARs */

typedef struct BarHit {
    int bar;
    uint64_t offset;
    PtBar info;
} BarHit;

/* Which BAR's current guest range holds [addr, addr+size)? */
static int find_bar(MpqChannel *c, uint64_t addr, unsigned size, bool memory, BarHit *hit)
{
    PciDevice *dev = pci_bus_device(c->s->bus, c->devfn);
    PtFunc *fn = channel_func(c);

    for (int i = 0; dev && fn && i < PCI_BAR_ROM; i++) {
        PtBar b;
        if (pt_func_bar(fn, i, &b) < 0 || b.io == memory)
            continue;
        uint64_t base = pci_device_bar_addr(dev, i);
        if (base && addr >= base && addr - base + size <= b.size) {
            *hit = (BarHit){ .bar = i, .offset = addr - base, .info = b };
            return 0;
        }
    }
    return -ENOENT;
}

/* The host's resourceN file behind a memory BAR, opened on first use. */
static int backing_fd(MpqChannel *c, int bar)
{
    if (c->backing[bar] != -1)
        return c->backing[bar];
    PtFunc *fn = channel_func(c);
    char bdf[16];
    pt_bdf_format(pt_func_host_bdf(fn), bdf, sizeof(bdf));
    char *path = g_strdup_printf("%s/devices/%s/resource%d", c->s->sysfs_root, bdf, bar);
    c->backing[bar] = open(path, O_RDWR | O_CLOEXEC);
    if (c->backing[bar] < 0) {
        dm_log(c->who, "BAR%d has no backing (%s: %s): reads 0", bar, path, strerror(errno));
        c->backing[bar] = -2;
    }
    g_free(path);
    return c->backing[bar];
}

/*
 * Memory BARs: the backing file at the offset within the BAR (x86 is
 * little-endian, so bytes go as they are).  I/O BARs and BARs without a
 * backing read 0 and drop writes: a quiet device, which is what Linux's
 * early USB hand-off quirks expect of a controller that is not running.
 * A real host's resource files for memory BARs allow only mmap: there the
 * read fails and also gives 0 (logged once).
 */
static uint64_t bar_access(MpqChannel *c, MpqMsg *m, bool write)
{
    uint64_t addr = get64(m->payload), val = get64(m->payload + 8);
    unsigned size = get32(m->payload + 16);
    bool memory = m->payload[20];
    BarHit hit;

    if (size == 0 || size > 8 || find_bar(c, addr, size, memory, &hit) < 0)
        return write ? 0 : UINT64_MAX;     /* nothing decodes there: all ones */
    if (memory) {
        /* Trapped pages (MSI-X table and PBA) are the device model's own. */
        uint64_t trapped = 0;
        int rc = write ? pci_bus_mmio_write(c->s->bus, addr, size, val)
                       : pci_bus_mmio_read(c->s->bus, addr, size, &trapped);
        if (rc != -ENOENT)
            return write ? 0 : rc == 0 ? trapped : UINT64_MAX;
    }
    int fd = memory ? backing_fd(c, hit.bar) : -2;
    if (fd < 0)
        return 0;
    uint64_t v = write ? val : 0;
    ssize_t n = write ? pwrite(fd, &v, size, (off_t)hit.offset)
                      : pread(fd, &v, size, (off_t)hit.offset);
    if (n != (ssize_t)size && !c->backing_warned) {
        c->backing_warned = true;
        dm_log(c->who, "BAR%d %s at +0x%" PRIx64 " failed: %s", hit.bar,
               write ? "write" : "read", hit.offset, n < 0 ? strerror(errno) : "short");
    }
    return n == (ssize_t)size && !write ? v : 0;
}

static uint64_t do_bar_read(MpqChannel *c, MpqMsg *m)
{
    return bar_access(c, m, false);
}

static uint64_t do_bar_write(MpqChannel *c, MpqMsg *m)
{
    return bar_access(c, m, true);
}

/* ------------------------------------------------------------ the rest */

/* Device reset: the function's emulated state, and the BAR registers the
 * bus owns (writing them makes the bus unmap what no longer decodes). */
static uint64_t do_reset(MpqChannel *c, MpqMsg *m)
{
    (void)m;
    PtFunc *fn = channel_func(c);
    if (!fn)
        return MPQ_ERROR;
    c->reset_seen = true;   /* QEMU resets after its probe: the guest's turn */
    pt_func_reset(fn);
    if (!normal_header(c))
        return 0;
    for (unsigned off = PCI_BASE_ADDRESS_0; off <= PCI_BASE_ADDRESS_5; off += 4)
        pci_bus_cfg_write(c->s->bus, c->devfn, off, 0, 4);
    pci_bus_cfg_write(c->s->bus, c->devfn, PCI_ROM_ADDRESS, 0, 4);
    return 0;
}

/* QEMU's RAM regions: this device model does no DMA, so the fds go. */
static uint64_t do_sync_sysmem(MpqChannel *c, MpqMsg *m)
{
    c->s->stats.sysmem_fds += (unsigned long)m->nfds;
    return 0;
}

/* Interrupt eventfds: kept (nothing can be delivered under TCG), closed
 * with the channel. */
static uint64_t do_set_irqfd(MpqChannel *c, MpqMsg *m)
{
    for (int i = 0; i < m->nfds && c->nirqfd < MPQ_IRQFDS; i++) {
        c->irqfd[c->nirqfd++] = m->fds[i];
        m->fds[i] = -1;
    }
    return 0;
}

typedef struct MpqHandler {
    const char *name;
    size_t payload;                 /* at least this many bytes */
    bool reply;
    uint64_t (*run)(MpqChannel *c, MpqMsg *m);
} MpqHandler;

static const MpqHandler handlers[MPQ_CMD_MAX] = {
    [MPQ_SYNC_SYSMEM]  = { "SYNC_SYSMEM", 0, false, do_sync_sysmem },
    [MPQ_PCI_CFGWRITE] = { "PCI_CFGWRITE", 12, true, do_cfg_write },
    [MPQ_PCI_CFGREAD]  = { "PCI_CFGREAD", 12, true, do_cfg_read },
    [MPQ_BAR_WRITE]    = { "BAR_WRITE", 24, true, do_bar_write },
    [MPQ_BAR_READ]     = { "BAR_READ", 24, true, do_bar_read },
    [MPQ_SET_IRQFD]    = { "SET_IRQFD", 0, false, do_set_irqfd },
    [MPQ_DEVICE_RESET] = { "DEVICE_RESET", 0, true, do_reset },
};

/* ------------------------------------------------------------ channel I/O */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void channel_free(MpqChannel *c)
{
    if (c->watch)
        g_source_remove(c->watch);
    close_fd(&c->fd);
    for (int i = 0; i < c->nfds; i++)
        close_fd(&c->fds[i].fd);
    for (int i = 0; i < c->nirqfd; i++)
        close_fd(&c->irqfd[i]);
    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (c->backing[i] >= 0)
            close(c->backing[i]);
    g_free(c);
}

static void channel_close(MpqChannel *c, const char *why)
{
    if (why)
        dm_log(c->who, "%s", why);
    g_ptr_array_remove(c->s->channels, c);  /* frees it */
}

static int send_reply(MpqChannel *c, uint64_t value)
{
    uint8_t msg[MPQ_HDR_SIZE + 8] = { 0 };
    uint32_t cmd = MPQ_RET;
    uint64_t size = 8;

    memcpy(msg, &cmd, 4);
    memcpy(msg + 8, &size, 8);
    memcpy(msg + 16, &value, 8);
    ssize_t n = send(c->fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == (ssize_t)sizeof(msg) ? 0 : -EIO;
}

/* Move the fds tagged within [base, end) into the message. */
static void take_fds(MpqChannel *c, uint64_t end, MpqMsg *m)
{
    int keep = 0;
    for (int i = 0; i < c->nfds; i++) {
        if (c->fds[i].at < end)
            m->fds[m->nfds++] = c->fds[i].fd;
        else
            c->fds[keep++] = c->fds[i];
    }
    c->nfds = keep;
}

/* A header we can serve, checked before waiting for its payload. */
static const MpqHandler *check_header(MpqChannel *c, uint32_t cmd, uint64_t size)
{
    const MpqHandler *h = cmd < MPQ_CMD_MAX ? &handlers[cmd] : NULL;

    if (h && h->run && size >= h->payload && size <= MPQ_MAX_PAYLOAD)
        return h;
    dm_log(c->who, "bad message: cmd %u, %" PRIu64 " payload bytes", cmd, size);
    return NULL;
}

/* Serve one complete message at the front of the buffer. */
static int serve(MpqChannel *c, const MpqHandler *h, MpqMsg *m)
{
    int rc = 0;

    c->s->stats.messages++;
    uint64_t value = h->run(c, m);
    if (h->reply)
        rc = send_reply(c, value);
    return rc;
}

/* Complete messages in the buffer, in order. */
static int drain(MpqChannel *c)
{
    while (c->have >= MPQ_HDR_SIZE) {
        MpqMsg m = { .cmd = get32(c->buf), .size = get64(c->buf + 8),
                     .payload = c->buf + MPQ_HDR_SIZE };
        const MpqHandler *h = check_header(c, m.cmd, m.size);
        if (!h)
            return -EPROTO;
        size_t len = MPQ_HDR_SIZE + (size_t)m.size;
        if (c->have < len)
            break;
        take_fds(c, c->base + len, &m);
        int rc = serve(c, h, &m);
        for (int i = 0; i < m.nfds; i++)
            close_fd(&m.fds[i]);
        if (rc < 0)
            return rc;
        memmove(c->buf, c->buf + len, c->have - len);
        c->have -= len;
        c->base += len;
    }
    return 0;
}

static void queue_fds(MpqChannel *c, struct msghdr *mh, uint64_t at)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->nfds < MPQ_FD_QUEUE)
                c->fds[c->nfds++] = (QueuedFd){ at, fd };
            else
                close(fd);
        }
    }
}

/* One recvmsg: >0 bytes read, 0 peer closed, -EAGAIN nothing now, -errno. */
static ssize_t receive(MpqChannel *c)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * MPQ_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { c->buf + c->have, sizeof(c->buf) - c->have };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (n < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    queue_fds(c, &mh, c->base + c->have);
    c->have += (size_t)n;
    return n;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    MpqChannel *c = opaque;
    (void)fd, (void)cond;

    for (;;) {
        ssize_t n = receive(c);
        if (n == -EAGAIN)
            return G_SOURCE_CONTINUE;
        if (n <= 0) {
            c->watch = 0;   /* returning REMOVE drops the source */
            channel_close(c, n == 0 ? NULL : "receive failed, channel closed");
            return G_SOURCE_REMOVE;
        }
        if (drain(c) < 0) {
            c->s->stats.protocol_errors++;
            c->watch = 0;
            channel_close(c, "protocol error, channel closed");
            return G_SOURCE_REMOVE;
        }
    }
}

/* ------------------------------------------------------------ server */

MpqServer *mpq_server_new(PtGuest *guest, PciBus *bus, const char *sysfs_root)
{
    MpqServer *s = g_new0(MpqServer, 1);

    s->guest = guest;
    s->bus = bus;
    s->sysfs_root = g_strdup(sysfs_root ? sysfs_root : "/sys/bus/pci");
    s->channels = g_ptr_array_new_with_free_func((GDestroyNotify)channel_free);
    return s;
}

void mpq_server_free(MpqServer *s)
{
    if (!s)
        return;
    g_ptr_array_unref(s->channels);
    g_free(s->sysfs_root);
    g_free(s);
}

static MpqChannel *find_channel(const MpqServer *s, uint8_t devfn)
{
    for (guint i = 0; i < s->channels->len; i++) {
        MpqChannel *c = g_ptr_array_index(s->channels, i);
        if (c->devfn == devfn)
            return c;
    }
    return NULL;
}

int mpq_channel_open(MpqServer *s, uint8_t devfn, int *peer)
{
    int sv[2];

    if (find_channel(s, devfn))
        return -EEXIST;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    MpqChannel *c = g_new0(MpqChannel, 1);
    c->s = s;
    c->devfn = devfn;
    c->fd = sv[0];
    for (int i = 0; i < PCI_NUM_BARS; i++)
        c->backing[i] = -1;
    snprintf(c->who, sizeof(c->who), "mpqemu %02x.%x", PT_SLOT(devfn), PT_FUNC(devfn));
    c->watch = g_unix_fd_add(c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
    g_ptr_array_add(s->channels, c);
    log_hidden_bars(c);
    *peer = sv[1];
    return 0;
}

int mpq_close_slot(MpqServer *s, unsigned slot)
{
    int n = 0;

    for (guint i = s->channels->len; i-- > 0;) {
        MpqChannel *c = g_ptr_array_index(s->channels, i);
        if (PT_SLOT(c->devfn) == slot) {
            g_ptr_array_remove_index(s->channels, i);
            n++;
        }
    }
    return n;
}

int mpq_open_channels(const MpqServer *s, int slot)
{
    int n = 0;

    for (guint i = 0; i < s->channels->len; i++) {
        const MpqChannel *c = g_ptr_array_index(s->channels, i);
        n += slot < 0 || PT_SLOT(c->devfn) == (unsigned)slot;
    }
    return n;
}

MpqStats mpq_stats(const MpqServer *s)
{
    MpqStats st = s->stats;

    st.open_channels = (int)s->channels->len;
    st.irqfds = 0;
    for (guint i = 0; i < s->channels->len; i++)
        st.irqfds += ((const MpqChannel *)g_ptr_array_index(s->channels, i))->nirqfd;
    return st;
}
