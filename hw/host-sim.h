/*
 * The simulated host's kernel side: a tree from tools/simhost cannot react
 * to writes by itself, so host-assign's sim backend calls this to do what
 * Linux does on the same write.  Modelled (Linux 6.1, drivers/base/bus.c and
 * drivers/pci/pci-sysfs.c):
 *
 *   devices/BDF/driver_override   the name, or "(null)" after an empty write
 *   drivers/NAME/bind BDF         -ENODEV unless the device exists and NAME
 *                                 matches it (its override, or NAME's own ID
 *                                 table: drivers/NAME/.sim-ids); -EBUSY if bound
 *   drivers/NAME/unbind BDF       -ENODEV unless bound to NAME
 *   drivers_probe BDF             the matching driver binds, if any
 *   devices/BDF/reset "1"         the first reset_method is used: BAR memory
 *                                 (the resourceN backing files) reads zero
 *                                 again, config space is what the kernel
 *                                 restores; logged in devices/BDF/.sim-resets
 *
 * The file written is left holding what was written (a write-only sysfs
 * file cannot be read back on Linux; here tests may).  A file that does not
 * exist is -ENOENT, as in sysfs.
 */
#ifndef HOST_SIM_H
#define HOST_SIM_H

#include <stdbool.h>
#include "pt-notation.h"

/* The marker host_sim_write leaves at the tree's root. */
#define HOST_SIM_MARKER ".simhost"

bool host_sim_is_sim(const char *root);
/* rel: relative to root, e.g. "drivers/pci-stub/bind".  0 or -errno, err set. */
int host_sim_kernel_write(const char *root, const char *rel, const char *value, PtError *err);

#endif
