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
    uint64_t bar_size[PCI_NUM_BARS];
    int irq;                        /* "routed to IRQ N", 0 if none */
    char driver[32];                /* "Kernel driver in use: X", or "" */
    unsigned line;                  /* where the function starts in the dump */
    /* The address "Region N: ... at X" / "Expansion ROM at X" gave: the
     * kernel's view, which sysfs reports.  It differs from the register for
     * legacy IDE ports, shadowed ROMs ("[virtual]") and ROMs the kernel
     * moved; 0 where the text gives none. */
    uint64_t os_base[PCI_NUM_BARS];
    bool has_text;                  /* -v detail lines came with it */
    bool bar_listed[PCI_NUM_BARS];     /* a "Region N" / "Expansion ROM" line named it */
    /* The IDs its device line names with lspci -nn ("Audio device [0403]:
     * NVIDIA ... [10de:0e0f]"), for a function whose config reads all ones. */
    bool has_text_ids;
    uint16_t text_vendor, text_device;
    int text_class;                 /* class and subclass, -1 if not named */
} DumpFunc;

/* A line the parser skipped as not part of lspci's output. */
typedef struct DumpSkipped {
    unsigned line;
    const char *why;                /* "a pcilib message", "a comment", ... */
    char text[100];                 /* the line, cut to fit */
} DumpSkipped;

typedef struct HostDump {
    int nfuncs;
    DumpFunc *funcs;
    int nskipped;
    DumpSkipped *skipped;
} HostDump;

/*
 * Parse dump text; on failure *err names the line.  What pasting adds to
 * lspci's output is skipped and listed in dump->skipped: pcilib's and
 * lspci's messages (one inside a hex row is cut out and the row rejoined),
 * the lspci command line echoed with the output, and '#' comment lines.
 */
int host_dump_parse(const char *text, const char *name, HostDump *dump, PtError *err);
int host_dump_load(const char *path, HostDump *dump, PtError *err);
void host_dump_free(HostDump *dump);
const DumpFunc *host_dump_find(const HostDump *dump, PtBdf bdf);

/*
 * "[DDDD:]BB:SS.F" at text; *end is set past it.  Returns false (and leaves
 * *bdf alone) when the text is not a function address.
 */
bool host_dump_parse_bdf(const char *text, const char **end, PtBdf *bdf);

/*
 * The BARs of a function as its config space, text and sizes describe them:
 * index 0-5 and PCI_BAR_ROM; the base is the text's address where it gave
 * one, else the register's.  The upper half of a 64-bit BAR and registers a
 * header type lacks read as all zero.
 */
void host_dump_bars(const DumpFunc *fn, PtBar bars[PCI_NUM_BARS]);

/* Its config space reads all ones (vendor ID ffff): powered off or absent. */
bool host_dump_reads_all_ones(const DumpFunc *fn);

/*
 * Bit i set: BAR i (PCI_BAR_ROM for the ROM) is implemented as far as the
 * dump shows (an address, type bits, or a Region line) but has no size.
 */
unsigned host_dump_unsized_bars(const DumpFunc *fn);

/*
 * Sidecar of BAR sizes for hex-only dumps, one line a BAR:
 *   BB:SS.F BAR SIZE      e.g.  "00:1d.0 4 32"  "06:00.0 rom 0x80000"
 * '#' starts a comment.  Sizes override what the dump said.  A BAR whose
 * register reads 0 (unassigned) can be sized, unless the dump's -v text
 * lists the function's regions and not this one (then it is not there).
 */
int host_dump_apply_sizes(HostDump *dump, const char *path, PtError *err);

/*
 * Write DIR/devices/DDDD:BB:SS.F/{config,resource,vendor,device,class,...}
 * and BAR backing files.  Functions named in assignable (BDFs, may be NULL)
 * get a driver link to pciback; others keep the dump's driver.
 */
int host_sim_write(const HostDump *dump, const char *dir,
                   const PtBdf *assignable, int nassignable, PtError *err);

/* Remove a tree host_sim_write made (or left half-made); never follows links. */
int host_sim_remove(const char *dir);

#endif
