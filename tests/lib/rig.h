/* A whole guest-side set-up for tests: a simulated host from a bundled
 * dump, the sim hypervisor, a guest bus and the guest's pass-through set. */
#ifndef RIG_H
#define RIG_H

#include <glib.h>

#include "hypervisor.h"
#include "pci.h"
#include "pt-guest.h"

typedef struct Rig {
    char *tree;
    HostPci *host;
    Hypervisor *hv;
    PciBus *bus;
    PtGuest *guest;
    PtPlanDefaults dflt;
} Rig;

/* Every function of the dump assignable; identity by default. */
void rig_up(Rig *rig, const char *dump);
void rig_up_with(Rig *rig, const char *dump, const PtPlanDefaults *dflt);
/* The same with another hypervisor (the rig takes it); rig_down checks
 * cleanliness only for the sim, the caller checks other kinds. */
void rig_up_hv(Rig *rig, const char *dump, const PtPlanDefaults *dflt, Hypervisor *hv);
/* Detaches everything and checks the (sim) hypervisor has nothing left. */
void rig_down(Rig *rig);

/* Attach or fail the test with the error. */
void rig_attach(Rig *rig, const char *spec);

/* The host's config file of a function (for byte comparisons); g_free. */
char *rig_host_config_path(const Rig *rig, const char *bdf);
GBytes *rig_host_config(const Rig *rig, const char *bdf);

/*
 * The bits of a host COMMAND or STATUS byte (offset 4-7) a guest write may
 * change, stated apart from the emulation's tables: bus mastering and INTx
 * disable (Xen leaves both to the device model: an INTx the guest disabled
 * must stop on the host, or a shared line storms), and the STATUS error bits (0xf900), which the guest clears with a 1 and a
 * file-backed host keeps as written: set only where the guest wrote 1
 * (written; 0xff when unknown), or cleared.  0xff at other offsets.
 */
uint8_t rig_header_host_changeable(unsigned offset, uint8_t before, uint8_t written);

/* Log lines captured from dm_log while the rig is up. */
GPtrArray *rig_log(void);
unsigned rig_log_count(const char *needle);

/* Simulated hosts in memory, as sysfs is, for long runs (fuzzers): TMPDIR
 * becomes /dev/shm when it is not set and /dev/shm exists.  Before the first
 * tree is built. */
void rig_tmp_in_memory(void);

#endif
