/*
 * Read-through pass-through, the qemu-xen-traditional way, as a baseline
 * for benchmarks: every guest config read the bus forwards is served by a
 * host read, every write goes straight to the host.  No shadow, no masks,
 * no security semantics: never use it outside tests.
 *
 * It plugs the same host functions as an emulated guest, with the same BAR
 * facts, on a bus of its own (the bus still owns the BAR registers).
 */
#ifndef READTHROUGH_H
#define READTHROUGH_H

#include "host-pci.h"
#include "hypervisor.h"
#include "pass-through.h"
#include "pci.h"

typedef struct ReadThrough ReadThrough;

/* A new bus mapping BARs through hv (give it a hypervisor of its own). */
ReadThrough *readthrough_new(HostPci *host, Hypervisor *hv);
/* Unplugs everything and frees the bus; the hypervisor stays the caller's. */
void readthrough_free(ReadThrough *rt);
PciBus *readthrough_bus(ReadThrough *rt);

/* Plug the host function behind fn at fn's devfn, with fn's BARs and
 * config size.  0 or a negative errno (host_func_open, pci_bus_plug). */
int readthrough_plug_like(ReadThrough *rt, PtFunc *fn);

/* Host accesses of every plugged function, summed. */
HostCounters readthrough_counters(const ReadThrough *rt);

#endif
