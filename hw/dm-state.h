/*
 * qemu-dm's state for save/restore, in a file of its own (no xenstore):
 * written by the `save` command, read by -restore-state.
 */
#ifndef HW_DM_STATE_H
#define HW_DM_STATE_H

#include "pci.h"
#include "pt-guest.h"

/*
 * The device model's state: every attached function's host BDF, vdevfn,
 * options, emulated registers (the shadow) and the bus-owned registers
 * (BARs, ROM, interrupt line) with the guest's COMMAND.
 */
int dm_state_save(PtGuest *g, PciBus *bus, const char *path, PtError *err);
/*
 * Put every saved function back at its saved vdevfn (never re-placed: a
 * function already attached there is kept, one attached elsewhere is an
 * error), then load its emulated state and replay the bus registers.
 * On failure the functions attached here are detached again.
 */
int dm_state_restore(PtGuest *g, PciBus *bus, const char *path, PtError *err);

#endif
