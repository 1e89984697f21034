/*
 * Placement of pass-through functions on guest bus 0: requests + occupancy
 * -> guest devfns, or an error that leaves the occupancy unchanged.  Pure:
 * no I/O.
 */
#ifndef PT_PLACE_H
#define PT_PLACE_H

#include "pt-notation.h"

/* Which guest devfns are taken, and which slots the platform keeps. */
typedef struct PtBusMap {
    uint8_t used[PT_SLOTS];     /* bit F: vfunc F of the slot is taken */
    uint32_t reserved;          /* bit S: slot S is not for pass-through */
    uint32_t pinned;            /* bit S: a spec still to come pins slot S, so
                                 * automatic placement keeps clear of it */
    PtBdf holder[PT_SLOTS][PT_FUNCS_PER_SLOT];  /* the host function at each taken vfunc */
} PtBusMap;

/* Slots 0-3: host bridge, PIIX3, VGA, Xen platform device. */
#define PT_RESERVED_DEFAULT 0x0000000fu

typedef struct PtPlacement {
    int nfuncs;
    PtBdf host[PT_FUNCS_PER_SLOT];      /* in placement order */
    uint8_t vdevfn[PT_FUNCS_PER_SLOT];
    int vslot;
    /* A person-readable remark (e.g. a function moved to vfunc 0), or "". */
    char note[240];
} PtPlacement;

void pt_busmap_init(PtBusMap *map, uint32_t reserved);

/*
 * Place one request.  scheme is the default for requests that do not name
 * one (PT_MAP_IDENTITY or PT_MAP_LEAST).  text names the request in
 * messages.  On failure *map is untouched.
 *
 * partial: allow a pinned function other than 0 into a slot that has no
 * function 0 yet (xend's per-function hot-plug inserts vfunc 0 last).
 *
 * A single function (multi false, nfuncs 1) goes to vfunc 0, or to
 * vfunc[0] when set; with vslot PT_UNSET it takes the lowest empty slot
 * (xend's "@101": any free slot, at vfunc 1).  Several functions always
 * share one slot, even with multi false.  With text NULL the device's
 * "DDDD:BB:SS" names it.  err may be NULL.
 *
 * Returns 0 with *out filled, or a negative errno with err->msg filled
 * and *map, *out untouched: -EINVAL a malformed request or one that would
 * leave its slot without function 0, -EBUSY the slot is reserved or a
 * function is taken, -ENOSPC no room.
 */
int pt_place(PtBusMap *map, const PtRequest *req, PtMapScheme scheme,
             bool partial, const char *text, PtPlacement *out, PtError *err);

/* Release the functions of a placement (only its own, in a shared slot). */
void pt_unplace(PtBusMap *map, const PtPlacement *pl);

#endif
