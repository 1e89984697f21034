/*
 * Real `lspci -xxx`, `-xxxx` and `-vvv -xxxx` text, parsed, and written out
 * as a sysfs-shaped tree that libpci (and real lspci) read with
 * `-A linux-sysfs -O sysfs.path=DIR`.
 */
#ifndef HOST_DUMP_H
#define HOST_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include "pt-notation.h"
#include "host-pci.h"

typedef struct DumpFunc {
    PtBdf bdf;
    unsigned config_len;            /* bytes the dump gave: 64, 256 or 4096 */
    uint8_t config[4096];
    /* Sizes from "Region N: ... [size=..]" / "Expansion ROM ... [size=..]",
     * or from a sidecar; 0 where unknown. */
    uint64_t bar_size[HOST_BARS];
    int irq;                        /* "routed to IRQ N", 0 if none */
    char driver[32];                /* "Kernel driver in use: X", or "" */
    unsigned line;                  /* where the function starts in the dump */
} DumpFunc;

typedef struct HostDump {
    int nfuncs;
    DumpFunc *funcs;
} HostDump;

/* Parse dump text; on failure *err names the line. */
int host_dump_parse(const char *text, const char *name, HostDump *dump, PtError *err);
int host_dump_load(const char *path, HostDump *dump, PtError *err);
void host_dump_free(HostDump *dump);
const DumpFunc *host_dump_find(const HostDump *dump, PtBdf bdf);

/*
 * Sidecar of BAR sizes for hex-only dumps, one line a BAR:
 *   BB:SS.F BAR SIZE      e.g.  "00:1d.0 4 32"  "06:00.0 rom 0x80000"
 * '#' starts a comment.  Sizes override what the dump said.
 */
int host_dump_apply_sizes(HostDump *dump, const char *path, PtError *err);

/*
 * Write DIR/devices/DDDD:BB:SS.F/{config,resource,vendor,device,class,...}
 * and BAR backing files.  Functions named in assignable (BDFs, may be NULL)
 * get a driver link to pciback; others keep the dump's driver.
 */
int host_sim_write(const HostDump *dump, const char *dir,
                   const PtBdf *assignable, int nassignable, PtError *err);

#endif
