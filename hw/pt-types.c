/*
 * The shared helpers of pt-types.h that are not inline.
 */
#include "pt-types.h"

void pt_listeners_set(PtListeners *ls, PtAnyFn fn, void *opaque)
{
    int free_at = -1;

    for (int i = 0; i < PT_LISTENERS; i++) {
        if (ls->at[i].fn && ls->at[i].opaque == opaque) {
            ls->at[i].fn = fn;
            return;
        }
        if (!ls->at[i].fn && free_at < 0)
            free_at = i;
    }
    if (fn && free_at >= 0) {
        ls->at[free_at].fn = fn;
        ls->at[free_at].opaque = opaque;
    }
}
