/*
 * A real guest: Debian's Linux kernel under qemu-system-x86_64 (TCG), whose
 * PCI bus 0 holds one x-pci-proxy-dev per function qemu-dm placed, each
 * served by guest/mpqemu.c.  Boot-time functions are on QEMU's command
 * line; hot-plug and unplug go through QMP (getfd + device_add of functions
 * 1..n, then function 0; device_del of function 0 and DEVICE_DELETED).
 * A slot the guest ejects by itself is detached from qemu-dm too.
 *
 * Everything is asynchronous on the GLib main loop, every wait has a
 * timeout, and QEMU's exit, crash or refusal is reported in one line on
 * stderr prefixed "qemu-vm: ".  The guest's serial console goes to a file,
 * or to stdout with each line prefixed "guest: ".
 */
#ifndef GUEST_QEMU_VM_H
#define GUEST_QEMU_VM_H

#include <glib.h>
#include <stdbool.h>

#include "pci.h"
#include "pt-guest.h"

typedef struct QemuVm QemuVm;

typedef struct QemuVmConfig {
    const char *image_dir;      /* vmlinuz + initrd.gz (scripts/guest-image) */
    const char *console;        /* NULL: stdout, lines prefixed "guest: " */
    const char *qemu;           /* NULL: $QEMU_SYSTEM_X86_64, else qemu-system-x86_64 */
    const char *sysfs_root;     /* host tree backing BARs; NULL: /sys/bus/pci */
    unsigned guest_timeout;     /* seconds before the guest powers off; 0: 600 */
    unsigned memory_mb;         /* 0: 256 */
} QemuVmConfig;

/* QEMU is gone; failed: it exited non-zero, by a signal, or refused to start. */
typedef void (*QemuVmExitFn)(void *opaque, bool failed);

QemuVm *qemu_vm_new(const QemuVmConfig *cfg, PtGuest *guest, PciBus *bus,
                    QemuVmExitFn on_exit, void *opaque);

/*
 * Boot with every function attached now, and follow later slot changes
 * (installs guest's slot observer).  -errno and *why on failure.
 */
int qemu_vm_start(QemuVm *vm, char *why, size_t len);

/* The guest's answer to qemu_vm_request_eject: failure NULL when it
 * ejected the slot, else why not. */
typedef void (*QemuVmEjectFn)(void *opaque, unsigned vslot, const char *failure);

/*
 * Ask the guest to eject slot vslot through QEMU's ACPI hot-plug
 * (device_del of function 0) without detaching it from qemu-dm.  done
 * follows once: NULL after DEVICE_DELETED (the slot's sockets are closed;
 * the caller detaches it), or the reason QEMU refused or the guest did not
 * eject in time (the slot stays in the guest).  -ENOENT: the guest cannot
 * see the slot; -ENOTCONN: QEMU is not running; -EBUSY: being removed.
 */
int qemu_vm_request_eject(QemuVm *vm, unsigned vslot, QemuVmEjectFn done, void *opaque);

/* Did QEMU end badly (see QemuVmExitFn)? */
bool qemu_vm_failed(const QemuVm *vm);
/* Open function sockets (all slots with slot < 0). */
int qemu_vm_open_sockets(const QemuVm *vm, int slot);

/*
 * Stop QEMU (SIGTERM, SIGKILL after a timeout), close every socket and
 * remove the slot observer.  Call before freeing the PtGuest.
 */
void qemu_vm_free(QemuVm *vm);

#endif
