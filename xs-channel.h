/*
 * qemu-dm and xenstore: the pci backend list and the device-model channel.
 *
 *   backend list   /local/domain/0/backend/pci/<domid>/0/
 *                  num_devs; per entry N: dev-N, vdevfn-N, opts-N, key-N, state-N
 *   command        /local/domain/0/device-model/<domid>/{command,parameter,state}
 *
 * Both sides live here: the device model's (XsDm: boot-time devices, the
 * command channel served from the GLib main loop) and the toolstack's
 * (xs_tool_request, used by xm, tests and benchmarks), so they cannot
 * drift apart.  qemu-dm's state file is hw/dm-state.c; the wiring of
 * qemu-dm's Xen side is dm-xen.c.
 *
 * Commands (parameter -> state, parameter):
 *   pci-ins  DDDD:BB:SS.F[@VDEVFN][,opts]  xend/libxl per function (0x100|vfunc:
 *                                          any free slot; a pinned function
 *                                          other than 0 may wait for its 0)
 *            any multi-function spec       extended notation, the whole device
 *                                          at once, function 0 plugged last
 *            -> pci-inserted "0x38,0x39,..."  (the vdevfns, in the spec's order)
 *            -> pci-insert-failed "<reason>"  (nothing changed)
 *   pci-rem  a function of the slot (unplug form) -> the guest is asked to
 *            eject; once it has: pci-removed "<vdevfns>"; pci-remove-failed
 *   save     -> paused (the state file written) | save-failed "<reason>"
 *   continue -> running
 */
#ifndef XS_CHANNEL_H
#define XS_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xenstore.h>

#include "pci.h"
#include "pt-guest.h"

#define XS_BACKEND_MAX   256    /* entries in a backend list */
#define XS_DOMID_MAX     0x7fef /* the highest domain id (below Xen's DOMID_FIRST_RESERVED) */
#define XS_PARAM_MAX     255    /* longest parameter accepted */

/* XenbusState values of state-N. */
enum { XS_STATE_INITIALISING = 1, XS_STATE_CONNECTED = 4, XS_STATE_CLOSING = 5,
       XS_STATE_CLOSED = 6 };

/* ------------------------------------------------------------ paths */

void xs_path_backend(unsigned domid, const char *node, char *buf, size_t len);
void xs_path_dm(unsigned domid, const char *node, char *buf, size_t len);

/* ------------------------------------------------------------ the backend list */

typedef struct XsBackendDev {
    PtBdf bdf;
    bool has_vdevfn;        /* vdevfn-N present */
    bool auto_slot;         /* xend's 0x100: any free slot */
    uint8_t vdevfn;         /* with auto_slot only the function bits count */
    PtOptions opts;         /* opts-N */
    char key[160];          /* key-N, "" when absent */
    int state;              /* state-N, -1 when absent */
} XsBackendDev;

typedef struct XsBackendList {
    int n;
    XsBackendDev dev[XS_BACKEND_MAX];
} XsBackendList;

/* Read and validate the list (an absent directory is an empty list).  A
 * malformed entry is an error naming the node; nothing is half-read. */
/* Run fn inside a transaction, again while xenstored reports a conflict
 * (EAGAIN, up to 16 times).  fn's negative return aborts it.  0 or -errno. */
typedef int (*XsTxnFn)(struct xs_handle *h, xs_transaction_t t, void *ctx);
int xs_in_transaction(struct xs_handle *h, XsTxnFn fn, void *ctx);

int xs_backend_read(struct xs_handle *h, xs_transaction_t t, unsigned domid,
                    XsBackendList *out, PtError *err);
/* Write the list within t; entries from old_n down to the list's end are
 * removed (so a shrinking list leaves no stale dev-N). */
int xs_backend_write(struct xs_handle *h, xs_transaction_t t, unsigned domid,
                     const XsBackendList *list, int old_n);

/* Other domains' backend lists as a PtHolders source (hw/pt-plan.h): a
 * function listed (and not closed) for a domain other than self is held by
 * it, named by its /local/domain/N/name.  Each question reads every list,
 * except within a request (xs_holders_begin .. _end): there the lists are
 * read once, at the first question, and answer all the others. */
typedef struct XsHolders {
    struct xs_handle *h;
    unsigned self;              /* this guest's domain, 0: none yet */
} XsHolders;
bool xs_backend_holds(void *xs_holders, PtBdf bdf, PtHolder *who);
void xs_holders_begin(XsHolders *xh);
void xs_holders_end(XsHolders *xh);
/* One on a connection of its own, for one request (qemu-dm's -pci list,
 * before the channel): the lists are read once until it is closed. */
XsHolders *xs_holders_open(unsigned self, PtError *err);
void xs_holders_close(XsHolders *xh);

/* ------------------------------------------------------------ device-model side */

typedef struct XsDm XsDm;

typedef struct XsDmHooks {
    /* Ask the guest to eject guest slot vslot.  0: asked (the removal is
     * reported through xs_dm_slot_changed once it happened); negative: the
     * guest cannot be asked (no controller, slot invisible): detach now. */
    int (*request_eject)(void *opaque, unsigned vslot);
    /* Write the state file for `save`; 0 or negative errno with err set. */
    int (*save)(void *opaque, PtError *err);
    /* The connection to xenstored is gone. */
    void (*lost)(void *opaque);
    void *opaque;
} XsDmHooks;

/* host: where key-N specs are expanded (the guest's host). */
XsDm *xs_dm_open(unsigned domid, PtGuest *guest, HostPci *host, const XsDmHooks *hooks,
                 PtError *err);
void xs_dm_close(XsDm *dm);

/* The backend list's devices: all of them or none.  vdevfn-N written back. */
int xs_dm_attach_boot_devices(XsDm *dm, PtError *err);
/* Re-mirror the backend list from what is attached (after a restore). */
int xs_dm_sync_backend(XsDm *dm, PtError *err);
/* Watch the command node from the default main context; state = running. */
int xs_dm_start(XsDm *dm, PtError *err);
/* A guest slot became visible or went away (the PtGuest slot observer). */
void xs_dm_slot_changed(XsDm *dm, unsigned vslot, bool inserted);
/* The guest refused or did not answer the eject of vslot: pci-remove-failed
 * with why (the slot stays attached). */
void xs_dm_eject_failed(XsDm *dm, unsigned vslot, const char *why);
/* Commands handled since start (tests). */
unsigned long xs_dm_commands(const XsDm *dm);

/* ------------------------------------------------------------ toolstack side */

/* A node's value as a string (g_free), or NULL when it is absent. */
char *xs_read_string(struct xs_handle *h, const char *path);

/* The vdevfns a pci-inserted or pci-removed reply names ("0x38,0x39"), at
 * most max: how many, or -EINVAL. */
int xs_parse_vdevfns(const char *text, uint8_t *vdevfn, int max);

/* Reply states of each command, NULL-terminated. */
extern const char *const xs_replies_pci_ins[];
extern const char *const xs_replies_pci_rem[];
extern const char *const xs_replies_save[];

/*
 * One command on the channel, as xend/libxl do it: remember state, write
 * parameter and command, wait until state is one of replies, read parameter,
 * put the old state back.  0 with *state and *param (g_free both);
 * -ETIMEDOUT after timeout_ms; -EBUSY when a command is already pending;
 * other negative errno on xenstore errors.  err says what in every case.
 */
int xs_tool_request(struct xs_handle *h, unsigned domid, const char *cmd, const char *param,
                    const char *const *replies, int timeout_ms, char **state, char **reply,
                    PtError *err);

/* Wait until path holds one of values (NULL-terminated); *got (g_free) is
 * what it held.  -ETIMEDOUT after timeout_ms.  Uses a watch, no polling. */
int xs_tool_wait(struct xs_handle *h, const char *path, const char *const *values,
                 int timeout_ms, char **got);

#endif
