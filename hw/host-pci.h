/*
 * Host PCI functions through libpci's linux_sysfs method.  The sysfs root
 * (the directory holding devices/) is /sys/bus/pci unless a simulated tree
 * built by tools/simhost is named.
 */
#ifndef HOST_PCI_H
#define HOST_PCI_H

#include <stdbool.h>
#include <stdint.h>
#include "pt-notation.h"
#include "pt-types.h"

/* Where the host's functions are when no simulated tree is named. */
#define HOST_SYSFS_DEFAULT "/sys/bus/pci"

typedef struct HostPci HostPci;
typedef struct HostFunc HostFunc;

/* NULL sysfs_root: the real /sys/bus/pci.  On failure returns NULL, *err set. */
HostPci *host_pci_open(const char *sysfs_root, PtError *err);
void host_pci_close(HostPci *host);
/* The directory holding devices/ (sysfs_root, or /sys/bus/pci). */
const char *host_pci_root(const HostPci *host);

/* Bit F set: function F of DDDD:BB:SS exists on the host. */
uint8_t host_pci_present_funcs(HostPci *host, uint16_t domain, uint8_t bus, uint8_t dev);

/* Every function the host has, in BDF order (for listings). */
int host_pci_count(HostPci *host);
PtBdf host_pci_bdf_at(HostPci *host, int index);

/* Driver bound to the function now ("pciback", "pci-stub", "ehci_hcd"...),
 * or NULL; the string lasts until the next call. */
const char *host_pci_driver(HostPci *host, PtBdf bdf);
/* Bound to pciback or pci-stub: a guest may have it. */
bool host_pci_assignable(HostPci *host, PtBdf bdf);

/* Open one function for pass-through (config I/O, BAR facts). */
HostFunc *host_func_open(HostPci *host, PtBdf bdf, PtError *err);
void host_func_close(HostFunc *fn);

PtBdf host_func_bdf(const HostFunc *fn);
/* 256 or 4096: how much config space the host exposes. */
unsigned host_func_config_size(const HostFunc *fn);
/* Config space I/O; 0 on success, -errno on failure.  Counted. */
int host_func_read(HostFunc *fn, unsigned offset, void *buf, unsigned len);
int host_func_write(HostFunc *fn, unsigned offset, const void *buf, unsigned len);
void host_func_bar(const HostFunc *fn, int index, PtBar *bar);
int host_func_irq(const HostFunc *fn);

/*
 * Memory BAR contents through the host's resourceN file (the page concerned
 * is mapped for the access): what the device model itself must reach in a
 * trapped BAR page, e.g. the MSI-X PBA or a sub-page BAR.  len 1, 2, 4 or 8, naturally
 * aligned, inside the BAR.  0 or -errno (-EINVAL: bad access, -ENOENT: no
 * such memory BAR).
 */
int host_func_bar_read(HostFunc *fn, int bar, uint64_t offset, void *buf, unsigned len);
int host_func_bar_write(HostFunc *fn, int bar, uint64_t offset, const void *buf, unsigned len);

/* How many config reads and writes reached the host since open, and how
 * many host accesses (config or BAR) failed: the first failure is logged,
 * the rest only counted. */
typedef struct HostCounters {
    unsigned long reads, writes;
    unsigned long failures;
} HostCounters;
HostCounters host_func_counters(const HostFunc *fn);
/* The first failure's words ("config read of 4 bytes at 0x000: ..."), or "". */
const char *host_func_error(const HostFunc *fn);

#endif
