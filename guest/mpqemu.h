/*
 * The remote side of QEMU's multi-process proxy protocol (MPQEMU): each
 * placed guest function is served to one QEMU `x-pci-proxy-dev` over its
 * own socket, from the GLib main loop.  Wire format and QEMU's limits:
 * shared/reference/mpqemu.md.
 *
 *   PCI_CFGREAD/WRITE  -> pci_bus_cfg_read/write at the function's devfn, so
 *                         the bus's BAR semantics and derived MF bit apply
 *   BAR_READ/WRITE     -> the host BAR's backing (a simulated host's
 *                         resourceN file); I/O BARs have none: reads 0
 *   DEVICE_RESET       -> the function's emulated state and its BARs reset
 *   SYNC_SYSMEM        -> every fd received is closed (and counted)
 *   SET_IRQFD          -> the eventfds are kept until the channel closes
 *
 * What this front-end presents differs from the bus where QEMU 7.2's proxy
 * (hw/remote/proxy.c, probe_pci_info) forces it.  At realize the proxy
 * sizes seven 32-bit "BARs" at 0x10..0x28 in a signed int and registers
 * each one it finds as a 32-bit memory or I/O BAR, which QEMU then maps at
 * the low 32 bits of whatever address the guest writes; the ROM is never
 * probed.  So:
 *   - 0x28 (CardBus CIS) reads 0 and ignores writes;
 *   - a 64-bit memory BAR is shown as 64-bit.  Only while QEMU probes
 *     (before the channel's first DEVICE_RESET) its upper dword reads 0
 *     and ignores writes, so that QEMU makes no BAR of it; then the guest
 *     sizes and places it whole.  qemu-vm gives the machine no 64-bit PCI
 *     window, so the guest places it below 4 GiB; a guest that puts one
 *     above 4 GiB is logged (QEMU maps it elsewhere: out of reach);
 *   - memory BARs larger than 1 GiB (the proxy's signed int: 2 GiB would
 *     make QEMU abort, larger ones it skips) and the expansion ROM are not
 *     shown: their registers read 0 and ignore writes, and each is logged
 *     once when its channel opens, with the reason;
 *   - I/O BAR size masks already read sign-extended (ffffffe1) from the
 *     bus, which is the form QEMU needs; nothing is changed for them.
 */
#ifndef GUEST_MPQEMU_H
#define GUEST_MPQEMU_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "pt-guest.h"

/* Commands (QEMU's hw/remote/mpqemu-link.h, 7.2). */
typedef enum MpqCmd {
    MPQ_SYNC_SYSMEM = 0,
    MPQ_RET = 1,
    MPQ_PCI_CFGWRITE = 2,
    MPQ_PCI_CFGREAD = 3,
    MPQ_BAR_WRITE = 4,
    MPQ_BAR_READ = 5,
    MPQ_SET_IRQFD = 6,
    MPQ_DEVICE_RESET = 7,
    MPQ_CMD_MAX
} MpqCmd;

#define MPQ_HDR_SIZE     16
#define MPQ_MAX_PAYLOAD  192        /* SYNC_SYSMEM, the largest */
#define MPQ_MAX_FDS      8
#define MPQ_ERROR        UINT64_MAX /* a RET value QEMU takes as failure */

typedef struct MpqServer MpqServer;

typedef struct MpqStats {
    unsigned long messages;         /* served, every channel ever opened */
    unsigned long sysmem_fds;       /* SYNC_SYSMEM fds received and closed */
    unsigned long protocol_errors;  /* malformed messages: channel dropped */
    int open_channels;
    int irqfds;                     /* eventfds held now */
} MpqStats;

/*
 * Serve functions of guest's bus.  sysfs_root: the host tree whose
 * devices/BDF/resourceN back memory BARs (NULL: /sys/bus/pci).
 */
MpqServer *mpq_server_new(PtGuest *guest, PciBus *bus, const char *sysfs_root);
/* Closes every channel. */
void mpq_server_free(MpqServer *s);

/*
 * A new channel for the function at devfn: 0 and *peer holds QEMU's end
 * (the caller hands it to QEMU and closes its copy); -errno otherwise.
 * -EEXIST: that devfn already has an open channel.
 */
int mpq_channel_open(MpqServer *s, uint8_t devfn, int *peer);
/* Close the channels of one guest slot; returns how many were open. */
int mpq_close_slot(MpqServer *s, unsigned slot);
/* Open channels of slot, or of every slot with slot < 0. */
int mpq_open_channels(const MpqServer *s, int slot);
MpqStats mpq_stats(const MpqServer *s);

#endif
