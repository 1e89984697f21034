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
 * What this front-end presents differs from the bus in three places, all
 * forced by the proxy (it sizes seven 32-bit "BARs" at 0x10..0x28):
 *   - 0x28 (CardBus CIS) reads 0 and ignores writes;
 *   - a 64-bit memory BAR is shown as a 32-bit one: its type bits (2:1)
 *     read 0 and its upper dword reads 0, ignores writes (an unimplemented
 *     BAR), so QEMU and the guest agree on one 32-bit region.  The guest
 *     then places it below 4 GiB; BARs of 4 GiB or more cannot be shown;
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
