/*
 * Functions that must stay together: what a host's sysfs shows about
 * resets, IOMMU groups, INTx lines, BAR pages and phantom functions, turned
 * into groups, and the rule that no group is split between owners.
 *
 * Reading the facts is I/O (host_facts_read); everything else is pure:
 * facts -> groups (host_groups_compute), groups + request + who owns each
 * function -> allowed or refused (host_groups_check).
 */
#ifndef HOST_GROUPS_H
#define HOST_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pt-notation.h"

/* Linux's reset methods (drivers/pci/pci.c, pci_reset_fn_methods), in its order. */
enum {
    HOST_RESET_DEVICE_SPECIFIC = 1u << 0,
    HOST_RESET_ACPI            = 1u << 1,
    HOST_RESET_FLR             = 1u << 2,
    HOST_RESET_AF              = 1u << 3,
    HOST_RESET_PM              = 1u << 4,
    HOST_RESET_BUS             = 1u << 5,
    HOST_RESET_CXL_BUS         = 1u << 6,
};
/* Methods that reset this function alone. */
#define HOST_RESET_FUNCTION_LEVEL (HOST_RESET_DEVICE_SPECIFIC | HOST_RESET_ACPI | \
                                   HOST_RESET_FLR | HOST_RESET_AF | HOST_RESET_PM)

/* "flr pm" -> bits; unknown words are ignored (newer kernels add methods). */
unsigned host_reset_methods_parse(const char *text);
/* "flr pm" from bits (Linux's order); "" for none. */
void host_reset_methods_format(unsigned methods, char *buf, size_t len);
/* The first method's name ("flr"), or NULL for none. */
const char *host_reset_method_first(unsigned methods);

/*
 * Config-space helpers on a raw copy (len 64, 256 or 4096 bytes): offset
 * of a capability or extended capability, 0 if absent.  Loops and pointers
 * below 0x40 end the walk.
 */
unsigned host_cfg_find_cap(const uint8_t *cfg, unsigned len, uint8_t id);
unsigned host_cfg_find_ext_cap(const uint8_t *cfg, unsigned len, uint16_t id);
/* FLR from PCIe DevCap or the Advanced Features capability (TP and FLR). */
bool host_cfg_has_flr(const uint8_t *cfg, unsigned len);
/*
 * The reset methods Linux 6.1 probes from config space: flr, af, pm (PM
 * capability without No_Soft_Reset), bus (only when the function is alone
 * on a bus below a bridge, as pci_parent_bus_reset requires).  Quirks,
 * ACPI _RST and hot-plug slot resets are not derived.
 */
unsigned host_cfg_reset_methods(const uint8_t *cfg, unsigned len, bool alone_below_bridge);
/* 8 >> DevCap phantom bits when the function number is below it, else 0. */
unsigned host_cfg_phantom_stride(const uint8_t *cfg, unsigned len, uint8_t func);

/* The function does not signal INTx: COMMAND's INTx disable, or MSI or
 * MSI-X enabled, in its config space. */
bool host_cfg_intx_quiet(const uint8_t *cfg, unsigned len);

/* What sysfs shows of one function, as far as grouping goes. */
typedef struct HostFuncFacts {
    PtBdf bdf;
    char driver[32];            /* "" when none is bound */
    int iommu_group;            /* -1: no iommu_group link */
    unsigned reset_methods;     /* from reset_method; 0 when the file is absent */
    bool flr;                   /* from config space */
    bool bridge;                /* header type 1 */
    int secondary_bus;          /* bridges only, else -1 */
    uint8_t pin;                /* INTx pin, 0 none */
    bool intx_quiet;            /* INTx disabled, or MSI/MSI-X enabled: it does not signal its line */
    int irq;                    /* sysfs irq where pin != 0 */
    uint64_t bar_base[PCI_STD_BARS], bar_size[PCI_STD_BARS];   /* memory BARs */
    unsigned phantom_stride;    /* 0: no phantom functions */
} HostFuncFacts;

typedef struct HostFacts {
    int n;
    HostFuncFacts *f;           /* BDF order */
} HostFacts;

/* Every function under root/devices (NULL root: /sys/bus/pci). */
int host_facts_read(const char *root, HostFacts *facts, PtError *err);
void host_facts_free(HostFacts *facts);
const HostFuncFacts *host_facts_find(const HostFacts *facts, PtBdf bdf);

typedef enum HostGroupKind {
    HOST_GROUP_RESET,           /* only a bus reset resets them, and it resets them all */
    HOST_GROUP_IOMMU,           /* one iommu_group */
    HOST_GROUP_INTX,            /* one INTx line (IRQ) */
    HOST_GROUP_PAGE,            /* memory BARs in one 4 KiB page */
    HOST_GROUP_PHANTOM,         /* a function and present functions at its phantom numbers */
    HOST_GROUP_KINDS
} HostGroupKind;

#define HOST_GROUP_MAX 64

typedef struct HostGroup {
    HostGroupKind kind;
    char why[64];               /* "no FLR; bus reset", "IOMMU group 7", "IRQ 11", ... */
    int n;
    PtBdf member[HOST_GROUP_MAX];
} HostGroup;

typedef struct HostGroups {
    int n;
    HostGroup *g;
} HostGroups;

/* Pure: the groups of two or more functions the facts imply. */
void host_groups_compute(const HostFacts *facts, HostGroups *groups);
void host_groups_free(HostGroups *groups);

/*
 * host_facts_read and host_groups_compute of root as it is now, from facts
 * kept per host between calls: each call reads again only what a running
 * host changes (functions added or removed, drivers, reset_method, the INTx
 * state of functions with a driver; host-groups.c says why).  The caller
 * frees both.  0, or -errno when the tree cannot be read.  Safe from any
 * thread.
 */
int host_groups_read(const char *root, HostFacts *facts, HostGroups *groups, PtError *err);
/* Drop what is kept of root (NULL: of every host): the next call reads it all. */
void host_groups_forget(const char *root);
const char *host_group_kind_name(HostGroupKind kind);

/* Who has a function now. */
#define HOST_OWNER_NONE (-1)    /* nobody: no driver, or a stub not given to a guest */
typedef struct HostOwner {
    int domid;                  /* HOST_OWNER_NONE, 0 = dom0's own driver, or a guest */
    char driver[32];            /* with domid 0: the driver */
} HostOwner;
typedef HostOwner (*HostOwnerFn)(PtBdf bdf, void *ctx);

/* Per rule: true (the default) refuses a split; false allows it with a warning. */
typedef struct HostGroupOpts {
    bool strict[HOST_GROUP_KINDS];
} HostGroupOpts;

HostGroupOpts host_group_opts_default(void);
/*
 * "strict_reset=0,strict_intx=0": strict_reset, strict_iommu, strict_intx,
 * strict_page; phantom functions cannot be relaxed.
 */
int host_group_opts_parse(const char *text, HostGroupOpts *opts, PtError *err);

/* The functions that are to go to domain domid together. */
typedef struct HostGroupRequest {
    int domid;
    int n;
    const PtBdf *funcs;
} HostGroupRequest;

typedef void (*HostWarnFn)(const char *msg, void *ctx);

/*
 * Would giving req's functions to req->domid split a group between owners?
 * A member outside the request that is owned by another domain (dom0's own
 * driver included) is a split.  0: allowed (relaxed splits reported to
 * warn, which may be NULL); -1: refused, err names the function, the group
 * and the owner:
 *   0000:06:00.1 shares reset with 0000:06:00.0 (no FLR; bus reset) which
 *   is passed through to domain 2
 */
int host_groups_check(const HostGroups *groups, const HostGroupRequest *req,
                      HostOwnerFn owner_of, void *owner_ctx, const HostGroupOpts *opts,
                      HostWarnFn warn, void *warn_ctx, PtError *err);

#endif
