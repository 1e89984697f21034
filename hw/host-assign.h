/*
 * The host side of a device's life: making functions assignable (bound to
 * a stub driver through sysfs driver_override, unbind and bind), giving
 * them back to the driver they had, and resetting them between owners.
 *
 * Every sysfs write goes through a backend: on a real kernel the write is
 * the whole story; a simulated tree (tools/simhost) has no kernel behind it,
 * so its backend (hw/host-sim.c) writes the file and then does in the tree
 * what Linux would do (move the driver link, reset the function).
 */
#ifndef HOST_ASSIGN_H
#define HOST_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include "pt-notation.h"

typedef struct HostAssign HostAssign;

/*
 * root: the directory holding devices/ and drivers/ (NULL: /sys/bus/pci).
 * state_file: where original drivers are recorded (created on first use).
 */
HostAssign *host_assign_open(const char *root, const char *state_file, PtError *err);
void host_assign_close(HostAssign *ha);
/* "linux" or "sim": who answers the writes. */
const char *host_assign_backend(const HostAssign *ha);

/* Xen is present: /proc/xen exists or the hypervisor type file says xen. */
bool host_xen_present(const char *proc_xen, const char *hypervisor_type);
/* pciback where Xen is present, pci-stub otherwise. */
const char *host_assign_default_stub(bool xen);
/* pciback, pci-stub or vfio-pci: a driver that holds a function for a guest. */
bool host_assign_is_stub(const char *driver);

/* The function's driver now into buf ("" for none); -1 if no such function. */
int host_assign_driver(HostAssign *ha, PtBdf bdf, char *buf, size_t len);
/* The driver recorded when it was made assignable; false if none recorded. */
bool host_assign_original(HostAssign *ha, PtBdf bdf, char *buf, size_t len);

/* What one step did, for the user. */
typedef struct HostAssignReport {
    char was[32];       /* driver before ("" none) */
    char now[32];       /* driver after ("" none) */
    char reset[160];    /* "reset (flr)" or why it was not reset */
} HostAssignReport;

/*
 * Bind bdf to stub (recording its driver) and reset it.  Already bound to
 * stub: nothing changes.  On failure the function keeps its driver.
 */
int host_assign_add(HostAssign *ha, PtBdf bdf, const char *stub, HostAssignReport *rep,
                    PtError *err);
/*
 * Reset bdf, unbind it from its stub and clear driver_override; with
 * rebind, bind it to the recorded driver (or let the kernel probe one).
 */
int host_assign_remove(HostAssign *ha, PtBdf bdf, bool rebind, HostAssignReport *rep,
                       PtError *err);

/*
 * sysfs reset of one function: 0 and the method used ("flr") in rep->reset,
 * or -ENOTTY with the reason there when the kernel offers no reset; other
 * failures -errno with err set.
 */
int host_reset(HostAssign *ha, PtBdf bdf, HostAssignReport *rep, PtError *err);

#endif
