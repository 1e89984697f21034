/*
 * The real-guest proof.  First the MPQEMU front-end alone, speaking QEMU's
 * wire format over a socketpair (no QEMU): config reads through the bus,
 * how BARs are presented (64-bit ones, those the proxy cannot carry), BAR
 * data, reset, fd handling, bad peers.
 * Then Debian's Linux under QEMU, booted by qemu-dm -guest qemu, and what
 * that kernel enumerates: a multi-function USB controller in one slot with
 * the host's IDs, a least-mapped GPU + HD audio pair, the negative case
 * (MF bit cleared: function 0 only), hot-plug and unplug of a 3-function
 * device, qemu-dm's sockets released afterwards; a GPU's 64-bit BAR as a
 * 64-bit BAR below 4 GiB, its 8G BAR and ROM absent and said why.
 *
 * The boot tests skip only when scripts/guest-image cannot download the
 * kernel.
 */
#include <errno.h>
#include <dirent.h>
#include <stdlib.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpqemu.h"
#include "pass-through.h"
#include "rig.h"
#include "guest-image.h"
#include "simtree.h"

#define ASUS        "asus-p6t6-x58-ich10-gt218.lspci"
#define BOOT_S      90      /* boot to the first PCI view, generous for a loaded CI */
#define PLUG_S      60      /* a hot-plug or unplug to show in the guest (loaded CI) */

/* ================================================== the protocol, no QEMU */

typedef struct Proto {
    Rig rig;
    MpqServer *srv;
    int peer[PCI_BUS_DEVFNS];
} Proto;

static void proto_up_on(Proto *p, const char *dump, const char *const *specs)
{
    rig_up(&p->rig, dump);
    for (int i = 0; specs[i]; i++)
        rig_attach(&p->rig, specs[i]);
    p->srv = mpq_server_new(p->rig.guest, p->rig.bus, p->rig.tree);
    for (int i = 0; i < PCI_BUS_DEVFNS; i++)
        p->peer[i] = -1;
}

static void proto_up(Proto *p, const char *const *specs)
{
    proto_up_on(p, ASUS, specs);
}

static int proto_open(Proto *p, uint8_t devfn)
{
    g_assert_cmpint(mpq_channel_open(p->srv, devfn, &p->peer[devfn]), ==, 0);
    return p->peer[devfn];
}

static void proto_down(Proto *p)
{
    mpq_server_free(p->srv);
    for (int i = 0; i < PCI_BUS_DEVFNS; i++)
        if (p->peer[i] >= 0)
            close(p->peer[i]);
    rig_down(&p->rig);
}

static void send_msg(int fd, uint32_t cmd, const void *payload, size_t len, const int *fds,
                     int nfds)
{
    uint8_t buf[MPQ_HDR_SIZE + MPQ_MAX_PAYLOAD] = { 0 };
    uint64_t size = len;
    union {
        char b[CMSG_SPACE(sizeof(int) * MPQ_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    memcpy(buf, &cmd, 4);
    memcpy(buf + 8, &size, 8);
    if (len)
        memcpy(buf + MPQ_HDR_SIZE, payload, len);
    /* As QEMU does: the fds go with the header, the payload follows. */
    struct iovec iov = { buf, MPQ_HDR_SIZE };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    g_assert_cmpint(sendmsg(fd, &mh, 0), ==, MPQ_HDR_SIZE);
    if (len)
        g_assert_cmpint(write(fd, buf + MPQ_HDR_SIZE, len), ==, (ssize_t)len);
}

/* Serve from the main loop until the reply is there (bounded). */
static uint64_t await_reply(int fd)
{
    uint8_t r[MPQ_HDR_SIZE + 8];
    size_t have = 0;
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (have < sizeof(r)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        ssize_t n = recv(fd, r + have, sizeof(r) - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else
            g_main_context_iteration(NULL, FALSE);
    }
    uint32_t cmd;
    uint64_t size, val;
    memcpy(&cmd, r, 4);
    memcpy(&size, r + 8, 8);
    memcpy(&val, r + 16, 8);
    g_assert_cmpuint(cmd, ==, MPQ_RET);
    g_assert_cmpuint(size, ==, 8);
    return val;
}

/* Let the server read what is queued (messages without a reply). */
static void settle(void)
{
    for (int i = 0; i < 50; i++)
        g_main_context_iteration(NULL, FALSE);
}

static uint32_t cfg_read(int fd, uint32_t addr, int32_t len)
{
    struct { uint32_t addr, val; int32_t len; } m = { addr, 0, len };
    send_msg(fd, MPQ_PCI_CFGREAD, &m, sizeof(m), NULL, 0);
    return (uint32_t)await_reply(fd);
}

static void cfg_write(int fd, uint32_t addr, uint32_t val, int32_t len)
{
    struct { uint32_t addr, val; int32_t len; } m = { addr, val, len };
    send_msg(fd, MPQ_PCI_CFGWRITE, &m, sizeof(m), NULL, 0);
    g_assert_cmpuint(await_reply(fd), ==, 0);
}

typedef struct {
    uint64_t addr, val;
    uint32_t size;
    uint8_t memory, pad[3];
} BarMsg;

static uint64_t bar_rw(int fd, bool write, uint64_t addr, uint64_t val, unsigned size,
                       bool memory)
{
    BarMsg m = { addr, val, size, memory, { 0 } };
    send_msg(fd, write ? MPQ_BAR_WRITE : MPQ_BAR_READ, &m, sizeof(m), NULL, 0);
    return await_reply(fd);
}

/* The proxy's sizing of one "BAR" register: what it computes. */
static uint32_t proxy_size(int fd, unsigned reg)
{
    uint32_t orig = cfg_read(fd, reg, 4);
    cfg_write(fd, reg, 0xffffffff, 4);
    uint32_t mask = cfg_read(fd, reg, 4);
    cfg_write(fd, reg, orig, 4);
    return ~(mask & 0xfffffff0u) + 1;
}

static const char *const usb_and_gpu[] = { "00:1d.*@7", "06:00.*@5", NULL };

static void test_cfg_through_bus(void)
{
    Proto p;
    proto_up(&p, usb_and_gpu);
    int f0 = proto_open(&p, PT_DEVFN(7, 0)), f7 = proto_open(&p, PT_DEVFN(7, 7));

    g_assert_cmphex(cfg_read(f0, PCI_VENDOR_ID, 2), ==, 0x8086);
    g_assert_cmphex(cfg_read(f0, PCI_DEVICE_ID, 2), ==, 0x3a34);
    g_assert_cmphex(cfg_read(f7, PCI_CLASS_PROG, 1), ==, 0x20);
    /* The MF bit is the bus's, derived from the slot. */
    g_assert_cmphex(cfg_read(f0, PCI_HEADER_TYPE, 1), ==, 0x80);
    g_assert_cmphex(cfg_read(f7, PCI_HEADER_TYPE, 1), ==, 0x80);
    pci_bus_force_single_function(p.rig.bus, 7, true);
    g_assert_cmphex(cfg_read(f0, PCI_HEADER_TYPE, 1), ==, 0x00);
    pci_bus_force_single_function(p.rig.bus, 7, false);
    /* Bad sizes read all ones, as the bus rules. */
    g_assert_cmphex(cfg_read(f0, 1, 4), ==, 0xffffffff);
    g_assert_cmpuint(mpq_stats(p.srv).messages, ==, 7);
    proto_down(&p);
}

static void test_bar_presentation(void)
{
    Proto p;
    proto_up(&p, usb_and_gpu);
    int usb = proto_open(&p, PT_DEVFN(7, 0)), gpu = proto_open(&p, PT_DEVFN(5, 0));

    /* I/O BAR4 of a UHCI: the sign-extended mask QEMU needs. */
    cfg_write(usb, PCI_BASE_ADDRESS_4, 0xffffffff, 4);
    g_assert_cmphex(cfg_read(usb, PCI_BASE_ADDRESS_4, 4), ==, 0xffffffe1);
    cfg_write(usb, PCI_BASE_ADDRESS_4, 0, 4);
    /* 0x28, the proxy's seventh "BAR": 0 whatever is written. */
    g_assert_cmpuint(proxy_size(usb, 0x28), ==, 0);
    cfg_write(usb, 0x28, 0xffffffff, 4);
    g_assert_cmphex(cfg_read(usb, 0x28, 4), ==, 0);
    /* GT218 as QEMU's probe sizes it (before its first DEVICE_RESET): BAR0
     * 32-bit 16M, BAR1 64-bit 256M, BAR2 (BAR1's upper half) 0 so that QEMU
     * makes no BAR of it, BAR3 64-bit 32M, BAR4 upper, BAR5 I/O 128. */
    static const struct { unsigned reg; uint32_t size; } sizes[] = {
        { PCI_BASE_ADDRESS_0, 16u << 20 }, { PCI_BASE_ADDRESS_1, 256u << 20 },
        { PCI_BASE_ADDRESS_2, 0 }, { PCI_BASE_ADDRESS_3, 32u << 20 },
        { PCI_BASE_ADDRESS_4, 0 }, { PCI_BASE_ADDRESS_5, 128 }, { 0x28, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++)
        g_assert_cmphex(proxy_size(gpu, sizes[i].reg), ==, sizes[i].size);
    cfg_write(gpu, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
    uint32_t bar1 = cfg_read(gpu, PCI_BASE_ADDRESS_1, 4);
    g_assert_cmphex(bar1 & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==, PCI_BASE_ADDRESS_MEM_TYPE_64);
    g_assert_cmphex(bar1 & PCI_BASE_ADDRESS_MEM_PREFETCH, ==, PCI_BASE_ADDRESS_MEM_PREFETCH);
    g_assert_cmphex(cfg_read(gpu, PCI_BASE_ADDRESS_2 + 1, 1), ==, 0);
    /* The ROM: the proxy carries none, so the guest is shown none (said once). */
    cfg_write(gpu, PCI_ROM_ADDRESS, 0xfffff800, 4);
    g_assert_cmphex(cfg_read(gpu, PCI_ROM_ADDRESS, 4), ==, 0);
    g_assert_cmpuint(rig_log_count("0000:06:00.0 -> 05.0: ROM (512K) not shown to the QEMU "
                                   "guest: QEMU 7.2's proxy forwards no expansion ROM"), ==, 1);
    g_assert_cmpuint(rig_log_count("not shown"), ==, 1);

    /* After the reset the guest sizes and places a 64-bit BAR whole. */
    send_msg(gpu, MPQ_DEVICE_RESET, NULL, 0, NULL, 0);
    g_assert_cmpuint(await_reply(gpu), ==, 0);
    cfg_write(gpu, PCI_BASE_ADDRESS_2, 0xffffffff, 4);
    g_assert_cmphex(cfg_read(gpu, PCI_BASE_ADDRESS_2, 4), ==, 0xffffffff);
    cfg_write(gpu, PCI_BASE_ADDRESS_1, 0xd0000000, 4);
    cfg_write(gpu, PCI_BASE_ADDRESS_2, 0, 4);
    PciDevice *dev = pci_bus_device(p.rig.bus, PT_DEVFN(5, 0));
    g_assert_cmphex(pci_device_bar_addr(dev, 1), ==, 0xd0000000);
    g_assert_cmpuint(rig_log_count("above 4 GiB"), ==, 0);
    /* Above 4 GiB QEMU cannot follow (it maps the low 32 bits): said once,
     * decode on or not. */
    cfg_write(gpu, PCI_BASE_ADDRESS_2, 0x1, 4);
    g_assert_cmphex(pci_device_bar_addr(dev, 1), ==, 0x1d0000000);
    cfg_write(gpu, PCI_BASE_ADDRESS_2, 0x2, 4);
    g_assert_cmpuint(rig_log_count("BAR1 placed at 0x1d0000000 by the guest, above 4 GiB: "
                                   "QEMU's proxy maps BARs at their low 32 bits"), ==, 1);
    g_assert_cmpuint(rig_log_count("above 4 GiB"), ==, 1);
    proto_down(&p);
}

/* A BAR bigger than the proxy can size (an 8G BAR0, constructed from the
 * Fiji's dump): hidden from QEMU and the guest, and said, once. */
static void test_bar_too_big(void)
{
    static const char *const gpu[] = { "09:00.0@4", NULL };
    Proto p;
    proto_up_on(&p, "constructed-fiji-8g-bar0.lspci", gpu);
    int fd = proto_open(&p, PT_DEVFN(4, 0));

    g_assert_cmpuint(rig_log_count("0000:09:00.0 -> 04.0: BAR0 (8G, 64-bit prefetchable "
                                   "memory) not shown to the QEMU guest: QEMU 7.2's proxy "
                                   "sizes a BAR in a signed 32-bit int, 1G at most"), ==, 1);
    g_assert_cmpuint(rig_log_count("ROM (128K) not shown"), ==, 1);
    g_assert_cmpuint(rig_log_count("not shown"), ==, 2);
    /* QEMU's probe: no BAR0 nor its upper half; BAR2 64-bit 2M, I/O 256, 256K. */
    static const struct { unsigned reg; uint32_t size; } sizes[] = {
        { PCI_BASE_ADDRESS_0, 0 }, { PCI_BASE_ADDRESS_1, 0 }, { PCI_BASE_ADDRESS_2, 2u << 20 },
        { PCI_BASE_ADDRESS_3, 0 }, { PCI_BASE_ADDRESS_4, 256 }, { PCI_BASE_ADDRESS_5, 256u << 10 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++)
        g_assert_cmphex(proxy_size(fd, sizes[i].reg), ==, sizes[i].size);
    /* Nor the guest: BAR0's registers stay 0, BAR2's upper half is real. */
    send_msg(fd, MPQ_DEVICE_RESET, NULL, 0, NULL, 0);
    g_assert_cmpuint(await_reply(fd), ==, 0);
    cfg_write(fd, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
    cfg_write(fd, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
    cfg_write(fd, PCI_BASE_ADDRESS_3, 0xffffffff, 4);
    g_assert_cmphex(cfg_read(fd, PCI_BASE_ADDRESS_0, 4), ==, 0);
    g_assert_cmphex(cfg_read(fd, PCI_BASE_ADDRESS_1, 4), ==, 0);
    g_assert_cmphex(cfg_read(fd, PCI_BASE_ADDRESS_3, 4), ==, 0xffffffff);
    proto_down(&p);
}

static void test_bar_data_and_reset(void)
{
    Proto p;
    proto_up(&p, usb_and_gpu);
    int ehci = proto_open(&p, PT_DEVFN(7, 7)), uhci = proto_open(&p, PT_DEVFN(7, 0));

    cfg_write(ehci, PCI_BASE_ADDRESS_0, 0xe0000000, 4);
    cfg_write(ehci, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    g_assert_cmpuint(bar_rw(ehci, true, 0xe0000010, 0x12345678, 4, true), ==, 0);
    g_assert_cmphex(bar_rw(ehci, false, 0xe0000010, 0, 4, true), ==, 0x12345678);
    g_assert_cmphex(bar_rw(ehci, false, 0xe0000012, 0, 2, true), ==, 0x1234);
    /* It went to the host's resource0 at the offset within the BAR. */
    g_autofree char *res = g_build_filename(p.rig.tree, "devices", "0000:00:1d.7", "resource0",
                                            NULL);
    int fd = open(res, O_RDONLY);
    uint32_t word = 0;
    g_assert_cmpint(pread(fd, &word, 4, 0x10), ==, 4);
    close(fd);
    g_assert_cmphex(word, ==, 0x12345678);
    /* The BAR's last bytes (it is 1K) are its own; one byte past them,
     * or an access running over the end, is outside every BAR: all ones.
     * I/O BARs have no backing: 0. */
    g_assert_cmpuint(bar_rw(ehci, true, 0xe00003fc, 0xa1b2c3d4, 4, true), ==, 0);
    g_assert_cmphex(bar_rw(ehci, false, 0xe00003fc, 0, 4, true), ==, 0xa1b2c3d4);
    g_assert_cmphex(bar_rw(ehci, false, 0xe00003ff, 0, 1, true), ==, 0xa1);
    g_assert_cmphex(bar_rw(ehci, false, 0xe00003f8, 0, 8, true) >> 32, ==, 0xa1b2c3d4);
    g_assert_cmphex(bar_rw(ehci, false, 0xe00003fe, 0, 4, true), ==, UINT64_MAX);
    g_assert_cmphex(bar_rw(ehci, false, 0xe0000400, 0, 4, true), ==, UINT64_MAX);
    cfg_write(uhci, PCI_BASE_ADDRESS_4, 0xc000, 4);
    g_assert_cmphex(bar_rw(uhci, false, 0xc000, 0, 2, false), ==, 0);
    /* Reset: BARs and COMMAND back to power-on. */
    send_msg(ehci, MPQ_DEVICE_RESET, NULL, 0, NULL, 0);
    g_assert_cmpuint(await_reply(ehci), ==, 0);
    g_assert_cmphex(cfg_read(ehci, PCI_BASE_ADDRESS_0, 4), ==, 0);
    g_assert_cmphex(cfg_read(ehci, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY, ==, 0);
    g_assert_false(pci_device_bar_mapped(pci_bus_device(p.rig.bus, PT_DEVFN(7, 7)), 0));
    proto_down(&p);
}

/* The 82576's MSI-X table page is the device model's; the rest of BAR3
 * is the host's memory. */
static void test_msix_table_trapped(void)
{
    static const char *const nic[] = { "01:00.0", NULL };
    Proto p;
    proto_up_on(&p, "intel-82576-sriov.lspci", nic);
    int fd = proto_open(&p, PT_DEVFN(4, 0));

    cfg_write(fd, PCI_BASE_ADDRESS_3, 0xe0000000, 4);
    cfg_write(fd, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    /* Table entry 1's message data: latched by the device model. */
    g_assert_cmpuint(bar_rw(fd, true, 0xe0000018, 0x4041, 4, true), ==, 0);
    g_assert_cmphex(bar_rw(fd, false, 0xe0000018, 0, 4, true), ==, 0x4041);
    /* A 2-byte table access is refused: all ones. */
    g_assert_cmphex(bar_rw(fd, false, 0xe0000019, 0, 2, true), ==, UINT64_MAX);
    /* Page 1 of BAR3 is neither table nor PBA: the host's resource3. */
    g_assert_cmpuint(bar_rw(fd, true, 0xe0001008, 0xabcd, 4, true), ==, 0);
    g_autofree char *res = g_build_filename(p.rig.tree, "devices", "0000:01:00.0", "resource3",
                                            NULL);
    int rfd = open(res, O_RDONLY);
    uint32_t word = 0, table = 0;
    g_assert_cmpint(pread(rfd, &word, 4, 0x1008), ==, 4);
    g_assert_cmpint(pread(rfd, &table, 4, 0x18), ==, 4);
    close(rfd);
    g_assert_cmphex(word, ==, 0xabcd);
    g_assert_cmphex(table, ==, 0);      /* the table write never reached the host */
    proto_down(&p);
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_fds_and_peers(void)
{
    Proto p;
    proto_up(&p, usb_and_gpu);
    int f0 = proto_open(&p, PT_DEVFN(7, 0)), f1 = proto_open(&p, PT_DEVFN(7, 1));
    int mem[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
    int irq[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
    uint8_t sysmem[192] = { 0 };

    g_assert_cmpint(mpq_channel_open(p.srv, PT_DEVFN(7, 0), &(int){ 0 }), ==, -EEXIST);
    send_msg(f0, MPQ_SYNC_SYSMEM, sysmem, sizeof(sysmem), mem, 2);
    send_msg(f0, MPQ_SET_IRQFD, NULL, 0, irq, 2);
    /* A reply proves both were read first. */
    g_assert_cmphex(cfg_read(f0, PCI_VENDOR_ID, 2), ==, 0x8086);
    MpqStats st = mpq_stats(p.srv);
    g_assert_cmpuint(st.sysmem_fds, ==, 2);
    g_assert_cmpint(st.irqfds, ==, 2);
    g_assert_cmpint(st.open_channels, ==, 2);
    for (int i = 0; i < 2; i++)
        close(mem[i]), close(irq[i]);

    /* A peer that hangs up is cleaned up, irqfds with it. */
    close(f0);
    p.peer[PT_DEVFN(7, 0)] = -1;
    settle();
    st = mpq_stats(p.srv);
    g_assert_cmpint(st.open_channels, ==, 1);
    g_assert_cmpint(st.irqfds, ==, 0);
    /* A malformed message drops the channel. */
    uint32_t junk[4] = { 99, 0, 8, 0 };
    g_assert_cmpint(write(f1, junk, sizeof(junk)), ==, sizeof(junk));
    settle();
    g_assert_cmpint(mpq_stats(p.srv).open_channels, ==, 0);
    g_assert_cmpuint(mpq_stats(p.srv).protocol_errors, ==, 1);
    /* Closing a slot closes our ends. */
    int f2 = proto_open(&p, PT_DEVFN(7, 2));
    g_assert_cmpint(mpq_open_channels(p.srv, 7), ==, 1);
    g_assert_cmpint(mpq_close_slot(p.srv, 7), ==, 1);
    char c;
    g_assert_cmpint(recv(f2, &c, 1, MSG_DONTWAIT), ==, 0);   /* EOF */
    g_assert_true(fd_is_open(f2));
    proto_down(&p);
}

/* ================================================== the real guest */

typedef struct PciView {
    int seq;
    GHashTable *dev;            /* "07.0" -> the PCIDEV line's fields */
} PciView;

typedef struct Dm {
    GSubprocess *proc;
    GOutputStream *in;
    GDataInputStream *out;
    GQueue lines;
    bool eof, reading;
    char *tree;
    const char *image;          /* NULL: the cache scripts/guest-image fills */
    unsigned above_4g;          /* qemu-dm's lines saying a BAR is out of QEMU's reach */
} Dm;

static void dm_read_next(Dm *dm);

static void dm_line_done(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Dm *dm = opaque;
    char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, NULL,
                                                      NULL);
    dm->reading = false;
    if (!line) {
        dm->eof = true;
        return;
    }
    if (g_test_verbose())
        g_printerr("| %s\n", line);
    dm->above_4g += strstr(line, "above 4 GiB") != NULL;
    g_queue_push_tail(&dm->lines, line);
    dm_read_next(dm);
}

static void dm_read_next(Dm *dm)
{
    dm->reading = true;
    g_data_input_stream_read_line_async(dm->out, G_PRIORITY_DEFAULT, NULL, dm_line_done, dm);
}

/* The next line of qemu-dm's output (stdout and stderr), or NULL at EOF or
 * after `seconds`. */
static gboolean wake(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

static char *dm_next_line(Dm *dm, gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();
    bool late = left <= 0;
    guint timer = late ? 0 : g_timeout_add((guint)(left / 1000) + 1, wake, &late);

    while (g_queue_is_empty(&dm->lines) && !dm->eof && !late)
        g_main_context_iteration(NULL, TRUE);
    if (timer && !late)
        g_source_remove(timer);
    return g_queue_pop_head(&dm->lines);
}

/* Lines until one holds needle; it is returned (g_free), others dropped. */
static char *dm_wait(Dm *dm, const char *needle, unsigned seconds)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
    char *line;
    while ((line = dm_next_line(dm, deadline))) {
        if (strstr(line, needle))
            return line;
        g_free(line);
    }
    g_test_message("no '%s' from qemu-dm within %u s%s", needle, seconds,
                   dm->eof ? " (it exited)" : "");
    return NULL;
}

/* The PCI view the guest prints next. */
static bool dm_view(Dm *dm, int seq, unsigned seconds, PciView *v)
{
    g_autofree char *begin = g_strdup_printf("PCIVIEW-BEGIN seq=%d", seq);
    g_autofree char *b = dm_wait(dm, begin, seconds);
    gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
    char *line;

    if (!b)
        return false;
    v->seq = seq;
    v->dev = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    while ((line = dm_next_line(dm, deadline))) {
        const char *pcidev = strstr(line, "PCIDEV 0000:00:");
        if (strstr(line, "PCIVIEW-END")) {
            g_free(line);
            return true;
        }
        if (pcidev)
            g_hash_table_insert(v->dev, g_strndup(pcidev + 15, 4), g_strdup(pcidev + 20));
        g_free(line);
    }
    return false;
}

static void view_clear(PciView *v)
{
    if (v->dev)
        g_hash_table_unref(v->dev);
    v->dev = NULL;
}

static void dm_send(Dm *dm, const char *cmd)
{
    g_autofree char *line = g_strdup_printf("%s\n", cmd);
    g_assert_true(g_output_stream_write_all(dm->in, line, strlen(line), NULL, NULL, NULL));
    g_assert_true(g_output_stream_flush(dm->in, NULL, NULL));
}

/* Sockets qemu-dm holds now, from /proc. */
static int dm_sockets(Dm *dm)
{
    g_autofree char *dir = g_strdup_printf("/proc/%s/fd", g_subprocess_get_identifier(dm->proc));
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    g_assert_nonnull(d);
    while ((e = readdir(d))) {
        char link[64] = "";
        g_autofree char *path = g_build_filename(dir, e->d_name, NULL);
        if (readlink(path, link, sizeof(link) - 1) > 0 && g_str_has_prefix(link, "socket:"))
            n++;
    }
    closedir(d);
    return n;
}

static void dm_start(Dm *dm, const char *const *extra)
{
    g_autoptr(GError) err = NULL;
    GPtrArray *argv = g_ptr_array_new();
    const char *base[] = {
        BUILDDIR "/qemu-dm", "-host-sysfs", dm->tree, "-hypervisor", "sim",
        "-guest", "qemu", "-guest-image", dm->image ? dm->image : SRCDIR "/cache/guest",
        "-guest-timeout", "300",
        "-monitor", "stdio",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(base); i++)
        g_ptr_array_add(argv, (char *)base[i]);
    for (int i = 0; extra[i]; i++)
        g_ptr_array_add(argv, (char *)extra[i]);
    g_ptr_array_add(argv, NULL);
    dm->proc = g_subprocess_newv((const char *const *)argv->pdata,
                                 G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                 G_SUBPROCESS_FLAGS_STDERR_MERGE, &err);
    g_ptr_array_unref(argv);
    g_assert_no_error(err);
    dm->in = g_subprocess_get_stdin_pipe(dm->proc);
    dm->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(dm->proc));
    g_queue_init(&dm->lines);
    dm_read_next(dm);
}

/* quit, and qemu-dm must end by itself, cleanly, having stopped QEMU. */
static void dm_stop(Dm *dm)
{
    g_autoptr(GError) err = NULL;

    dm_send(dm, "quit");
    g_autofree char *stopped = dm_wait(dm, "qemu-vm: QEMU stopped", 20);
    g_assert_nonnull(stopped);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while ((!dm->eof || dm->reading) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    g_assert_true(g_subprocess_wait(dm->proc, NULL, &err));
    g_assert_cmpint(g_subprocess_get_exit_status(dm->proc), ==, 0);
    g_object_unref(dm->out);
    g_object_unref(dm->proc);
    g_queue_clear_full(&dm->lines, g_free);
}

/* The host's sysfs value (vendor, device, class) without "0x". */
static char *host_attr(const Dm *dm, const char *bdf, const char *attr)
{
    g_autofree char *path = g_build_filename(dm->tree, "devices", bdf, attr, NULL);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    return g_strdup(g_strstrip(text) + 2);
}

/* The guest's function at vfn (e.g. "07.1") shows host function bdf. */
static void assert_guest_fn(const Dm *dm, const PciView *v, const char *vfn, const char *bdf,
                            bool multi)
{
    const char *f = g_hash_table_lookup(v->dev, vfn);
    g_autofree char *ven = host_attr(dm, bdf, "vendor");
    g_autofree char *dev = host_attr(dm, bdf, "device");
    g_autofree char *cls = host_attr(dm, bdf, "class");
    g_autofree char *want = g_strdup_printf("vendor=%s device=%s class=%s hdr=%s", ven, dev,
                                            cls, multi ? "80" : "00");
    if (!f)
        g_error("the guest has no 00:%s (host %s)", vfn, bdf);
    g_assert_true(g_str_has_prefix(f, want) || (g_test_message("%s: %s", vfn, f), false));
    /* Every BAR assigned: the kernel lists at least one resource. */
    g_assert_null(strstr(f, "bars=-"));
}

/* BAR `bar` of the guest's function vfn as its kernel lists it ("bars=");
 * the kind (io, mem, mem64, rom; g_free) or NULL when there is none. */
static char *guest_bar(const PciView *v, const char *vfn, int bar, uint64_t *start,
                       uint64_t *size)
{
    const char *f = g_hash_table_lookup(v->dev, vfn);
    const char *b = f ? strstr(f, "bars=") : NULL;
    g_auto(GStrv) items = b ? g_strsplit(b + 5, ",", -1) : NULL;

    for (int i = 0; items && items[i]; i++) {
        g_auto(GStrv) part = g_strsplit(items[i], ":", 3);
        char *plus = NULL;
        if (g_strv_length(part) != 3 || atoi(part[0]) != bar)
            continue;
        *start = g_ascii_strtoull(part[2], &plus, 16);
        *size = *plus == '+' ? g_ascii_strtoull(plus + 1, NULL, 16) : 0;
        return g_strdup(part[1]);
    }
    return NULL;
}

/* The guest has that BAR, of that kind and size, wholly below 4 GiB
 * (where QEMU's proxy maps BARs); kind NULL: the guest has no such BAR. */
static void assert_guest_bar(const PciView *v, const char *vfn, int bar, const char *kind,
                             uint64_t size)
{
    uint64_t start = 0, got = 0;
    g_autofree char *k = guest_bar(v, vfn, bar, &start, &got);

    if (g_strcmp0(k, kind))
        g_test_message("%s: %s", vfn, (const char *)g_hash_table_lookup(v->dev, vfn));
    g_assert_cmpstr(k, ==, kind);
    if (!kind)
        return;
    g_assert_cmphex(got, ==, size);
    g_assert_cmphex(start + size, <=, 1ull << 32);
}

static unsigned slot_funcs(const PciView *v, const char *slot)
{
    GHashTableIter it;
    gpointer key;
    unsigned mask = 0;

    g_hash_table_iter_init(&it, v->dev);
    while (g_hash_table_iter_next(&it, &key, NULL))
        if (!strncmp(key, slot, 2))
            mask |= 1u << (((const char *)key)[3] - '0');
    return mask;
}

static void test_boot_and_hotplug(void)
{
    Dm dm = { 0 };
    PciView v = { 0 };
    if (!guest_image_ready())
        return;
    dm.tree = simtree_build(ASUS, true);
    /* Slot 1 free in qemu-dm but not in QEMU (PIIX3): a refusal to provoke. */
    const char *const extra[] = { "-pci", "00:1d.*@7", "-pci", "06:00.*@4,map=least",
                                  "-pci-reserved", "0", NULL };
    gint64 t0 = g_get_monotonic_time();
    dm_start(&dm, extra);

    g_assert_true(dm_view(&dm, 0, BOOT_S, &v));
    g_test_message("boot to the guest's PCI view: %.1f s",
                   (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    /* The USB controller: one slot, identity, every function. */
    g_assert_cmphex(slot_funcs(&v, "07"), ==, 0x87);
    for (int f = 0; f < 8; f++) {
        if (!(0x87 & (1u << f)))
            continue;
        char vfn[8], bdf[16];
        snprintf(vfn, sizeof(vfn), "07.%d", f);
        snprintf(bdf, sizeof(bdf), "0000:00:1d.%d", f);
        assert_guest_fn(&dm, &v, vfn, bdf, true);
    }
    /* GeForce + HD audio, least mapped into the first free slot. */
    g_assert_cmphex(slot_funcs(&v, "04"), ==, 0x3);
    assert_guest_fn(&dm, &v, "04.0", "0000:06:00.0", true);
    assert_guest_fn(&dm, &v, "04.1", "0000:06:00.1", true);
    /* Its 64-bit VRAM aperture: a 64-bit BAR of 256M, below 4 GiB. */
    assert_guest_bar(&v, "04.0", 1, "mem64", 256u << 20);
    g_assert_cmpuint(dm.above_4g, ==, 0);
    view_clear(&v);

    /* QEMU refuses a hot-plug: reported, the sockets closed, the slot
     * detached again in qemu-dm, no view change. */
    int sockets = dm_sockets(&dm);
    dm_send(&dm, "pci_add 00:1a.7@1");
    g_autofree char *refused = dm_wait(&dm, "QEMU refused device_add pt01_0", PLUG_S);
    g_assert_nonnull(refused);
    g_assert_nonnull(strstr(refused, "slot 01 detached again"));
    g_assert_cmpint(dm_sockets(&dm), ==, sockets);
    dm_send(&dm, "pci_del 01");
    g_autofree char *gone = dm_wait(&dm, "guest slot 01 has no pass-through device", PLUG_S);
    g_assert_nonnull(gone);

    /* Hot-plug a 3-function device; every function shows in one slot. */
    t0 = g_get_monotonic_time();
    dm_send(&dm, "pci_add 00:1a.0-2@8");
    g_autofree char *plugged = dm_wait(&dm, "slot 08: 3 functions plugged", PLUG_S);
    g_assert_nonnull(plugged);
    g_assert_true(dm_view(&dm, 1, PLUG_S, &v));
    g_test_message("hot-plug to the guest's view: %.1f s",
                   (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    g_assert_cmphex(slot_funcs(&v, "08"), ==, 0x7);
    assert_guest_fn(&dm, &v, "08.0", "0000:00:1a.0", true);
    assert_guest_fn(&dm, &v, "08.1", "0000:00:1a.1", true);
    assert_guest_fn(&dm, &v, "08.2", "0000:00:1a.2", true);
    g_assert_cmpint(dm_sockets(&dm), ==, sockets + 3);
    view_clear(&v);

    /* Unplug: gone from the guest, and qemu-dm let go of the sockets. */
    dm_send(&dm, "pci_del 00:1a.0");
    g_autofree char *released = dm_wait(&dm, "slot 08: removed from the guest", PLUG_S);
    g_assert_nonnull(released);
    g_assert_nonnull(strstr(released, " 0 open"));
    g_assert_true(dm_view(&dm, 2, PLUG_S, &v));
    g_assert_cmphex(slot_funcs(&v, "08"), ==, 0);
    g_assert_cmphex(slot_funcs(&v, "07"), ==, 0x87);
    g_assert_cmpint(dm_sockets(&dm), ==, sockets);
    view_clear(&v);

    dm_stop(&dm);
    simtree_remove(dm.tree);
}

/*
 * What of a GPU's BARs QEMU's proxy can carry reaches the guest: its 64-bit
 * BAR2 (2M) as a 64-bit BAR below 4 GiB; the 8G BAR0 (constructed from the
 * Fiji's dump, as a Navi 23 has) and the ROM are absent, and qemu-dm says
 * why, one line each, before the guest boots.
 */
static void test_bar_limits(void)
{
    Dm dm = { 0 };
    PciView v = { 0 };
    if (!guest_image_ready())
        return;
    dm.tree = simtree_build("constructed-fiji-8g-bar0.lspci", true);
    const char *const extra[] = { "-pci", "09:00.0@5", NULL };
    dm_start(&dm, extra);

    g_autofree char *big = dm_wait(&dm, "0000:09:00.0 -> 05.0: BAR0 (8G, 64-bit prefetchable "
                                   "memory) not shown to the QEMU guest", BOOT_S);
    g_assert_nonnull(big);
    g_autofree char *rom = dm_wait(&dm, "ROM (128K) not shown to the QEMU guest", BOOT_S);
    g_assert_nonnull(rom);
    g_assert_true(dm_view(&dm, 0, BOOT_S, &v));
    assert_guest_fn(&dm, &v, "05.0", "0000:09:00.0", false);
    assert_guest_bar(&v, "05.0", 0, NULL, 0);
    assert_guest_bar(&v, "05.0", 1, NULL, 0);
    assert_guest_bar(&v, "05.0", 2, "mem64", 2u << 20);
    assert_guest_bar(&v, "05.0", 4, "io", 256);
    assert_guest_bar(&v, "05.0", 5, "mem", 256u << 10);
    assert_guest_bar(&v, "05.0", 6, NULL, 0);
    g_assert_cmpuint(dm.above_4g, ==, 0);
    view_clear(&v);
    dm_stop(&dm);
    simtree_remove(dm.tree);
}

/* QEMU refuses to boot (a kernel file it cannot load): one clear line,
 * qemu-dm exits 1 by itself.  Needs no download. */
static void test_qemu_refusal(void)
{
    Dm dm = { 0 };
    g_autoptr(GError) err = NULL;
    g_autofree char *image = g_dir_make_tmp("real-guest-XXXXXX", &err);
    g_autofree char *kernel = g_build_filename(image, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(image, "initrd.gz", NULL);

    g_assert_no_error(err);
    g_assert_true(g_file_set_contents(kernel, "not a kernel", -1, NULL));
    g_assert_true(g_file_set_contents(initrd, "", -1, NULL));
    dm.tree = simtree_build(ASUS, true);
    dm.image = image;
    const char *const extra[] = { "-pci", "00:1d.*@7", NULL };
    dm_start(&dm, extra);
    g_autofree char *line = dm_wait(&dm, "qemu-vm: QEMU exited with status 1", 30);
    g_assert_nonnull(line);
    g_assert_true(g_subprocess_wait(dm.proc, NULL, &err));
    g_assert_cmpint(g_subprocess_get_exit_status(dm.proc), ==, 1);
    while (dm.reading)
        g_main_context_iteration(NULL, TRUE);
    g_object_unref(dm.out);
    g_object_unref(dm.proc);
    g_queue_clear_full(&dm.lines, g_free);
    simtree_remove(dm.tree);
    g_unlink(kernel);
    g_unlink(initrd);
    g_rmdir(image);
}

static void test_single_function_negative(void)
{
    Dm dm = { 0 };
    PciView v = { 0 };
    if (!guest_image_ready())
        return;
    dm.tree = simtree_build(ASUS, true);
    const char *const extra[] = { "-pci", "00:1d.*@7", "-x-single-function", "7", NULL };
    dm_start(&dm, extra);

    g_assert_true(dm_view(&dm, 0, BOOT_S, &v));
    /* QEMU has all four proxies, but function 0 says single-function. */
    g_assert_cmphex(slot_funcs(&v, "07"), ==, 0x1);
    assert_guest_fn(&dm, &v, "07.0", "0000:00:1d.0", false);
    view_clear(&v);
    dm_stop(&dm);
    simtree_remove(dm.tree);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mpqemu/cfg-through-bus", test_cfg_through_bus);
    g_test_add_func("/mpqemu/bar-presentation", test_bar_presentation);
    g_test_add_func("/mpqemu/bar-too-big", test_bar_too_big);
    g_test_add_func("/mpqemu/bar-data-and-reset", test_bar_data_and_reset);
    g_test_add_func("/mpqemu/msix-table-trapped", test_msix_table_trapped);
    g_test_add_func("/mpqemu/fds-and-peers", test_fds_and_peers);
    g_test_add_func("/real-guest/qemu-refusal", test_qemu_refusal);
    g_test_add_func("/real-guest/boot-and-hotplug", test_boot_and_hotplug);
    g_test_add_func("/real-guest/bar-limits", test_bar_limits);
    g_test_add_func("/real-guest/single-function-negative", test_single_function_negative);
    return g_test_run();
}
