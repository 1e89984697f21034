/*
 * Extended BDF notation for PCI pass-through: parsing, expansion against the
 * host's functions, and the wire forms toolstacks write on the device-model
 * channel.  Pure functions: no I/O, no printing, no exit; every failure is an
 * error message naming the offending text and its column.
 *
 *   spec  := [DDDD:]BB:SS.FUNCS[@VSLOT[.VFUNC]][,OPT...]
 *   FUNCS := F | F-F | F,F[,F...] | * | F=V[,F=V...]   (items may mix F and F-F)
 *   OPT   := msitranslate=0|1 | power_mgmt=0|1 | permissive=0|1 | map=identity|least
 *          | strict_reset=0|1 | strict_iommu=0|1 | strict_intx=0|1 | strict_page=0|1
 */
#ifndef PT_NOTATION_H
#define PT_NOTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt-types.h"


typedef enum PtMapScheme {
    PT_MAP_DEFAULT = 0,     /* not given: the guest's default applies */
    PT_MAP_IDENTITY,        /* vfunc = pfunc */
    PT_MAP_LEAST,           /* lowest free vfunc, in the order written */
} PtMapScheme;

/* The group rules a spec may relax (hw/host-groups.h, HostGroupKind order). */
enum { PT_STRICT_RESET, PT_STRICT_IOMMU, PT_STRICT_INTX, PT_STRICT_PAGE, PT_STRICT_RULES };

/* strict_X: zero is "not said" (strict unless the guest's default relaxes
 * it), so a request built without the parser is never relaxed by accident. */
typedef enum PtStrict {
    PT_STRICT_DEFAULT = 0,
    PT_STRICT_ON,           /* strict_X=1 */
    PT_STRICT_OFF,          /* strict_X=0: the group may be split, with a warning */
} PtStrict;

/* Per-device options; PT_UNSET where the spec does not say. */
typedef struct PtOptions {
    int msitranslate;
    int power_mgmt;
    int permissive;
    PtMapScheme map;
    PtStrict strict[PT_STRICT_RULES];
} PtOptions;

/* A spec as written, before the host is consulted. */
typedef struct PtSpec {
    uint16_t domain;
    uint8_t bus, dev;
    bool all_funcs;                     /* '*' */
    bool explicit_map;                  /* F=V pairs */
    bool multi_form;                    /* range, list, '*' or F=V was written */
    int nfuncs;                         /* 0 with all_funcs */
    uint8_t funcs[PT_FUNCS_PER_SLOT];   /* in the order written */
    uint8_t vfuncs[PT_FUNCS_PER_SLOT];  /* with explicit_map */
    int vslot;                          /* PT_UNSET: automatic */
    int vfunc;                          /* @VSLOT.VFUNC, single function only */
    PtOptions opts;
} PtSpec;

/* What the placer takes: the concrete functions of one host device. */
typedef struct PtRequest {
    uint16_t domain;
    uint8_t bus, dev;
    int nfuncs;
    uint8_t pfunc[PT_FUNCS_PER_SLOT];   /* in the order to place */
    int vfunc[PT_FUNCS_PER_SLOT];       /* explicit vfunc, or PT_UNSET */
    bool multi;                         /* more than one function */
    int vslot;                          /* PT_UNSET: automatic */
    PtOptions opts;
} PtRequest;

/* Parse a spec as a user writes it (guest config, xm, monitor). */
int pt_spec_parse(const char *text, PtSpec *spec, PtError *err);

/*
 * Parse the unplug form: no @VSLOT, no options.  A plain BDF or any function
 * list is accepted; the whole guest slot is what gets removed.
 */
int pt_spec_parse_unplug(const char *text, PtSpec *spec, PtError *err);

/*
 * Turn a parsed spec into a request against the host device whose present
 * functions are the bits of host_funcs (bit F = function F present).
 * '*' takes every present function, ascending.  Functions named but absent
 * are an error.  text is the original spec, for messages.
 */
int pt_spec_expand(const PtSpec *spec, const char *text, uint8_t host_funcs,
                   PtRequest *req, PtError *err);

/* Merge per-spec options over defaults: unset fields take the default. */
PtOptions pt_options_merge(PtOptions spec, PtOptions dflt);
PtOptions pt_options_unset(void);

/* "7", "07" or "0x07": a guest slot (hex, below PT_SLOTS), as pci_del and
 * xm pci-detach take it; false for anything else (a device spec). */
bool pt_vslot_parse(const char *text, unsigned *slot);

/* Digits only (base 16 or 10: no sign, space or 0x prefix), at most 10 of
 * them, at most max: 0 with *out, or -EINVAL. */
int pt_parse_uint(const char *text, int base, unsigned long max, unsigned long *out);

/* A plain "DDDD:BB:SS.F" (no @VDEVFN, no options).  what, if not NULL,
 * starts the message (where the text came from). */
int pt_bdf_parse_plain(const char *what, const char *text, PtBdf *out, PtError *err);

/* "msitranslate=1,permissive=0,..." as the wire form writes them; "" is
 * all unset.  what as for pt_bdf_parse_plain. */
int pt_options_parse(const char *what, const char *text, PtOptions *opts, PtError *err);

/* "msitranslate=1,power_mgmt=0,..." for the options that are set. */
void pt_options_format(const PtOptions *opts, char *buf, size_t len);
/* "msitranslate=0 power_mgmt=0 permissive=0 map=identity": the options a
 * function runs with, each shown (one not given as what it means). */
void pt_options_format_applied(const PtOptions *opts, char *buf, size_t len);

/*
 * The per-function wire form on the device-model channel and in the backend
 * directory: "DDDD:BB:SS.F[@VDEVFN][,k=v...]" with VDEVFN hex.  xend writes
 * 0x100|vfunc for "any free slot, at this vfunc" ("@101"); libxl writes the
 * devfn ("@38") or omits it.
 */
typedef struct PtWire {
    PtBdf bdf;
    bool has_vdevfn;
    bool auto_slot;         /* xend's 0x100 flag */
    uint8_t vdevfn;         /* with auto_slot: only the function bits count */
    PtOptions opts;
} PtWire;

int pt_wire_parse(const char *text, PtWire *wire, PtError *err);
/* xend form when auto_slot, libxl form otherwise. */
void pt_wire_format(const PtWire *wire, char *buf, size_t len);

#endif
