/*
 * Groups of host functions that must not be split between owners, and the
 * check that refuses a split.  See host-groups.h and README.multifunction
 * ("Functions that must stay together").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <pci/pci.h>

#include "host-groups.h"
#include "host-assign.h"
#include "host-pci.h"


/* ================================================================ reset methods */

static const char *const reset_names[] = {
    "device_specific", "acpi", "flr", "af", "pm", "bus", "cxl_bus",
};

unsigned host_reset_methods_parse(const char *text)
{
    g_auto(GStrv) words = g_strsplit_set(text ? text : "", " \t\n", -1);
    unsigned bits = 0;

    for (int w = 0; words[w]; w++)
        for (size_t i = 0; i < G_N_ELEMENTS(reset_names); i++)
            if (!strcmp(words[w], reset_names[i]))
                bits |= 1u << i;
    return bits;
}

void host_reset_methods_format(unsigned methods, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(reset_names) && used < len; i++)
        if (methods & (1u << i))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "",
                                     reset_names[i]);
}

const char *host_reset_method_first(unsigned methods)
{
    for (size_t i = 0; i < G_N_ELEMENTS(reset_names); i++)
        if (methods & (1u << i))
            return reset_names[i];
    return NULL;
}

/* ================================================================ config space */

static unsigned cfg16(const uint8_t *cfg, unsigned off)
{
    return cfg[off] | (unsigned)cfg[off + 1] << 8;
}

static uint32_t cfg32(const uint8_t *cfg, unsigned off)
{
    return cfg16(cfg, off) | (uint32_t)cfg16(cfg, off + 2) << 16;
}

unsigned host_cfg_find_cap(const uint8_t *cfg, unsigned len, uint8_t id)
{
    unsigned pos;

    if (len < 64 || !(cfg16(cfg, PCI_STATUS) & PCI_STATUS_CAP_LIST))
        return 0;
    pos = cfg[PCI_CAPABILITY_LIST] & ~3u;
    /* 48 hops at most: a list cannot be longer, so a loop ends here. */
    for (int hops = 0; hops < 48 && pos >= 0x40 && pos + 2 <= len && pos < 256; hops++) {
        if (cfg[pos + PCI_CAP_LIST_ID] == id)
            return pos;
        pos = cfg[pos + PCI_CAP_LIST_NEXT] & ~3u;
    }
    return 0;
}

unsigned host_cfg_find_ext_cap(const uint8_t *cfg, unsigned len, uint16_t id)
{
    unsigned pos = 0x100;

    /* (4096 - 256) / 8 hops at most. */
    for (int hops = 0; hops < 480 && pos >= 0x100 && pos + 4 <= len; hops++) {
        uint32_t hdr = cfg32(cfg, pos);
        if (!hdr || hdr == 0xffffffffu)
            return 0;
        if ((hdr & 0xffff) == id)
            return pos;
        pos = (hdr >> 20) & ~3u;
    }
    return 0;
}

static uint32_t exp_devcap(const uint8_t *cfg, unsigned len)
{
    unsigned pos = host_cfg_find_cap(cfg, len, PCI_CAP_ID_EXP);

    return pos && pos + PCI_EXP_DEVCAP + 4 <= len ? cfg32(cfg, pos + PCI_EXP_DEVCAP) : 0;
}

static bool af_flr(const uint8_t *cfg, unsigned len)
{
    unsigned pos = host_cfg_find_cap(cfg, len, PCI_CAP_ID_AF);
    unsigned need = PCI_AF_CAP_TP | PCI_AF_CAP_FLR;

    return pos && pos + PCI_AF_CAP < len && (cfg[pos + PCI_AF_CAP] & need) == need;
}

bool host_cfg_has_flr(const uint8_t *cfg, unsigned len)
{
    return (exp_devcap(cfg, len) & PCI_EXP_DEVCAP_FLRESET) || af_flr(cfg, len);
}

static bool cap_flag_set(const uint8_t *cfg, unsigned len, uint8_t id, uint16_t bit)
{
    unsigned pos = host_cfg_find_cap(cfg, len, id);

    return pos && pos + 4 <= len && (cfg16(cfg, pos + 2) & bit);
}

bool host_cfg_intx_quiet(const uint8_t *cfg, unsigned len)
{
    return (cfg16(cfg, PCI_COMMAND) & PCI_COMMAND_DISABLE_INTx) ||
           cap_flag_set(cfg, len, PCI_CAP_ID_MSI, PCI_MSI_FLAGS_ENABLE) ||
           cap_flag_set(cfg, len, PCI_CAP_ID_MSIX, PCI_MSIX_ENABLE);
}

static bool pm_soft_reset(const uint8_t *cfg, unsigned len)
{
    unsigned pos = host_cfg_find_cap(cfg, len, PCI_CAP_ID_PM);

    return pos && pos + PCI_PM_CTRL + 2 <= len &&
           !(cfg16(cfg, pos + PCI_PM_CTRL) & PCI_PM_CTRL_NO_SOFT_RST);
}

unsigned host_cfg_reset_methods(const uint8_t *cfg, unsigned len, bool alone_below_bridge)
{
    unsigned m = 0;

    if (exp_devcap(cfg, len) & PCI_EXP_DEVCAP_FLRESET)
        m |= HOST_RESET_FLR;
    if (af_flr(cfg, len))
        m |= HOST_RESET_AF;
    if (pm_soft_reset(cfg, len))
        m |= HOST_RESET_PM;
    /* pci_parent_bus_reset: never a bridge's own function, never with siblings. */
    if (alone_below_bridge && !pt_header_is_bridge(cfg[PCI_HEADER_TYPE]))
        m |= HOST_RESET_BUS;
    return m;
}

unsigned host_cfg_phantom_stride(const uint8_t *cfg, unsigned len, uint8_t func)
{
    unsigned bits = (exp_devcap(cfg, len) & PCI_EXP_DEVCAP_PHANTOM) >> 3;
    unsigned stride = bits ? 8u >> bits : 0;

    /* Only the low functions can have phantoms (Xen's pci_add_device too). */
    return stride && func < stride ? stride : 0;
}

/* ================================================================ facts from sysfs */

static bool parse_bdf_name(const char *name, PtBdf *bdf)
{
    unsigned d, b, s, f;
    int end = 0;

    if (strlen(name) != 12 || sscanf(name, "%4x:%2x:%2x.%1x%n", &d, &b, &s, &f, &end) != 4 ||
        end != 12 || s > 0x1f || f > 7)
        return false;
    *bdf = (PtBdf){ (uint16_t)d, (uint8_t)b, (uint8_t)s, (uint8_t)f };
    return true;
}

static int bdf_order(const void *a, const void *b)
{
    const PtBdf *x = &((const HostFuncFacts *)a)->bdf, *y = &((const HostFuncFacts *)b)->bdf;
    uint32_t kx = (uint32_t)x->domain << 16 | x->bus << 8 | x->dev << 3 | x->func;
    uint32_t ky = (uint32_t)y->domain << 16 | y->bus << 8 | y->dev << 3 | y->func;

    return kx < ky ? -1 : kx > ky;
}

/* Basename of a symlink's target (dfd-relative) into out; "" when there is no link. */
static void link_name(int dfd, const char *rel, char *out, size_t len)
{
    char target[512];
    ssize_t n = readlinkat(dfd, rel, target, sizeof(target) - 1);
    const char *base;

    out[0] = 0;
    if (n <= 0)
        return;
    target[n] = 0;
    base = strrchr(target, '/');
    g_strlcpy(out, base ? base + 1 : target, len);
}

/* Up to len bytes of a file (dfd-relative) from its start; -1 when it cannot be read. */
static ssize_t read_at(int dfd, const char *rel, void *buf, size_t len)
{
    int fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
    ssize_t got = 0, n = 0;

    if (fd < 0)
        return -1;
    while ((size_t)got < len && (n = pread(fd, (char *)buf + got, len - (size_t)got, got)) > 0)
        got += n;
    close(fd);
    return n < 0 ? -1 : got;
}

/* A small attribute's text, NUL-terminated in buf; false when it cannot be read. */
static bool attr_text(int dfd, const char *name, const char *attr, char *buf, size_t len)
{
    char rel[64];
    ssize_t n;

    snprintf(rel, sizeof(rel), "%s/%s", name, attr);
    n = read_at(dfd, rel, buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
    return n >= 0;
}

static void read_memory_bars(int dfd, const char *name, HostFuncFacts *f)
{
    char text[4096];
    g_auto(GStrv) lines = NULL;

    attr_text(dfd, name, "resource", text, sizeof(text));
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; i < PCI_STD_BARS && lines[i]; i++) {
        unsigned long long start, end, flags;
        if (sscanf(lines[i], "%llx %llx %llx", &start, &end, &flags) != 3 ||
            !(flags & PCI_IORESOURCE_MEM) || !start || end < start)
            continue;
        f->bar_base[i] = start;
        f->bar_size[i] = end - start + 1;
    }
}

/* Up to len bytes of a function's config space; 0 when it cannot be read. */
static unsigned read_config(int dfd, const char *name, uint8_t *cfg, unsigned len)
{
    char rel[64];
    ssize_t n;

    snprintf(rel, sizeof(rel), "%s/config", name);
    n = read_at(dfd, rel, cfg, len);
    return n > 0 ? (unsigned)n : 0;
}

static void read_config_facts(int dfd, const char *name, HostFuncFacts *f)
{
    uint8_t cfg[4096];
    unsigned len = read_config(dfd, name, cfg, sizeof(cfg));

    if (len < 64)
        return;
    f->flr = host_cfg_has_flr(cfg, len);
    f->bridge = pt_header_is_bridge(cfg[PCI_HEADER_TYPE]);
    f->secondary_bus = f->bridge ? cfg[PCI_SECONDARY_BUS] : -1;
    f->pin = cfg[PCI_INTERRUPT_PIN];
    f->intx_quiet = host_cfg_intx_quiet(cfg, len);
    f->phantom_stride = host_cfg_phantom_stride(cfg, len, f->bdf.func);
}

static void read_driver(int dfd, const char *name, char *driver, size_t len)
{
    char rel[64];

    snprintf(rel, sizeof(rel), "%s/driver", name);
    link_name(dfd, rel, driver, len);
}

static unsigned read_reset_methods(int dfd, const char *name)
{
    char text[128];

    return attr_text(dfd, name, "reset_method", text, sizeof(text)) ?
           host_reset_methods_parse(text) : 0;
}

/* name is the function's entry under devices (dfd), "0000:00:1d.0". */
static void read_function(int dfd, const char *name, HostFuncFacts *f)
{
    char rel[64], group[32], irq[32];

    f->iommu_group = -1;
    read_driver(dfd, name, f->driver, sizeof(f->driver));
    snprintf(rel, sizeof(rel), "%s/iommu_group", name);
    link_name(dfd, rel, group, sizeof(group));
    if (group[0])
        f->iommu_group = atoi(group);
    f->reset_methods = read_reset_methods(dfd, name);
    read_config_facts(dfd, name, f);
    if (f->pin && attr_text(dfd, name, "irq", irq, sizeof(irq)))
        f->irq = atoi(irq);
    read_memory_bars(dfd, name, f);
}

static DIR *open_devices(const char *root, PtError *err)
{
    g_autofree char *devices = g_build_filename(root ? root : HOST_SYSFS_DEFAULT, "devices",
                                                NULL);
    DIR *d = opendir(devices);
    int saved = errno;

    /* errno stays opendir's: the caller's cause. */
    if (!d)
        pt_error_set(err, "%s: %s", devices, strerror(saved));
    errno = saved;
    return d;
}

int host_facts_read(const char *root, HostFacts *facts, PtError *err)
{
    GArray *all;
    DIR *d = open_devices(root, err);
    struct dirent *e;

    if (!d)
        return -1;
    all = g_array_new(FALSE, TRUE, sizeof(HostFuncFacts));
    while ((e = readdir(d))) {
        HostFuncFacts f = { 0 };
        if (!parse_bdf_name(e->d_name, &f.bdf))
            continue;
        read_function(dirfd(d), e->d_name, &f);
        g_array_append_val(all, f);
    }
    closedir(d);
    g_array_sort(all, bdf_order);
    facts->n = (int)all->len;
    facts->f = (HostFuncFacts *)(void *)g_array_free(all, FALSE);
    return 0;
}

void host_facts_free(HostFacts *facts)
{
    g_free(facts->f);
    *facts = (HostFacts){ 0 };
}

static bool same_bdf(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev && a.func == b.func;
}

const HostFuncFacts *host_facts_find(const HostFacts *facts, PtBdf bdf)
{
    for (int i = 0; i < facts->n; i++)
        if (same_bdf(facts->f[i].bdf, bdf))
            return &facts->f[i];
    return NULL;
}

/* ================================================================ groups */

typedef bool (*RelatedFn)(const HostFacts *facts, int i, int j, char *why, size_t len);

static bool has_parent_bridge(const HostFacts *facts, PtBdf bdf)
{
    for (int i = 0; i < facts->n; i++)
        if (facts->f[i].bridge && facts->f[i].bdf.domain == bdf.domain &&
            facts->f[i].secondary_bus == bdf.bus)
            return true;
    return false;
}

static bool bus_reset_only(const HostFuncFacts *f)
{
    return !f->flr && !(f->reset_methods & HOST_RESET_FUNCTION_LEVEL);
}

/* A bus reset is the only reset of one of them, and it hits the whole bus. */
static bool shares_reset(const HostFacts *facts, int i, int j, char *why, size_t len)
{
    const HostFuncFacts *a = &facts->f[i], *b = &facts->f[j];

    if (a->bdf.domain != b->bdf.domain || a->bdf.bus != b->bdf.bus ||
        !(bus_reset_only(a) || bus_reset_only(b)) || !has_parent_bridge(facts, a->bdf))
        return false;
    snprintf(why, len, "no FLR; bus reset");
    return true;
}

static bool shares_iommu(const HostFacts *facts, int i, int j, char *why, size_t len)
{
    const HostFuncFacts *a = &facts->f[i], *b = &facts->f[j];

    if (a->iommu_group < 0 || a->iommu_group != b->iommu_group)
        return false;
    snprintf(why, len, "IOMMU group %d", a->iommu_group);
    return true;
}

/* A driver of dom0's own that has its function on MSI/MSI-X (or INTx off)
 * has no handler on the line: nothing of dom0 shares it.  A function bound
 * to a stub is some guest's, whose INTx use is not known here: it counts. */
static bool dom0_leaves_line(const HostFuncFacts *f)
{
    return f->intx_quiet && f->driver[0] && !host_assign_is_stub(f->driver);
}

static bool shares_intx(const HostFacts *facts, int i, int j, char *why, size_t len)
{
    const HostFuncFacts *a = &facts->f[i], *b = &facts->f[j];

    if (!a->pin || !b->pin || a->irq <= 0 || a->irq != b->irq ||
        dom0_leaves_line(a) || dom0_leaves_line(b))
        return false;
    snprintf(why, len, "IRQ %d", a->irq);
    return true;
}

static bool shares_page(const HostFacts *facts, int i, int j, char *why, size_t len)
{
    const HostFuncFacts *a = &facts->f[i], *b = &facts->f[j];

    for (int x = 0; x < PCI_STD_BARS; x++)
        for (int y = 0; a->bar_size[x] && y < PCI_STD_BARS; y++) {
            uint64_t lo, hi;
            if (!b->bar_size[y])
                continue;
            lo = MAX(a->bar_base[x], b->bar_base[y]) >> PT_PAGE_SHIFT;
            hi = MIN(a->bar_base[x] + a->bar_size[x] - 1,
                     b->bar_base[y] + b->bar_size[y] - 1) >> PT_PAGE_SHIFT;
            if (lo <= hi) {
                snprintf(why, len, "page 0x%llx", (unsigned long long)lo << PT_PAGE_SHIFT);
                return true;
            }
        }
    return false;
}

/* j sits at one of i's phantom function numbers (or i at one of j's). */
static bool phantom_of(const HostFuncFacts *a, const HostFuncFacts *b)
{
    return a->phantom_stride && a->bdf.domain == b->bdf.domain && a->bdf.bus == b->bdf.bus &&
           a->bdf.dev == b->bdf.dev && b->bdf.func > a->bdf.func &&
           (b->bdf.func - a->bdf.func) % a->phantom_stride == 0;
}

static bool shares_phantom(const HostFacts *facts, int i, int j, char *why, size_t len)
{
    const HostFuncFacts *a = &facts->f[i], *b = &facts->f[j];
    const HostFuncFacts *owner = phantom_of(a, b) ? a : phantom_of(b, a) ? b : NULL;
    char name[16];

    if (!owner)
        return false;
    snprintf(why, len, "phantom functions of %s", pt_bdf_format(owner->bdf, name, sizeof(name)));
    return true;
}

static const struct {
    const char *name;           /* what they share, for messages */
    const char *option;         /* relaxing option, NULL: none */
    RelatedFn related;
} group_kinds[HOST_GROUP_KINDS] = {
    [HOST_GROUP_RESET]   = { "reset", "strict_reset", shares_reset },
    [HOST_GROUP_IOMMU]   = { "an IOMMU group", "strict_iommu", shares_iommu },
    [HOST_GROUP_INTX]    = { "an INTx line", "strict_intx", shares_intx },
    [HOST_GROUP_PAGE]    = { "a 4 KiB BAR page", "strict_page", shares_page },
    [HOST_GROUP_PHANTOM] = { "a requester ID", NULL, shares_phantom },
};

const char *host_group_kind_name(HostGroupKind kind)
{
    return group_kinds[kind].name;
}

static int find_root(int *parent, int i)
{
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

/* Connected components of one relation; components of two or more are groups. */
static void group_kind(const HostFacts *facts, HostGroupKind kind, GArray *out)
{
    int *parent = g_new(int, facts->n ? facts->n : 1);
    typedef char Why[64];
    Why *why = g_new0(Why, facts->n ? facts->n : 1);

    for (int i = 0; i < facts->n; i++)
        parent[i] = i;
    for (int i = 0; i < facts->n; i++)
        for (int j = i + 1; j < facts->n; j++) {
            int ri = find_root(parent, i), rj = find_root(parent, j), r = MIN(ri, rj);
            char w[64];
            if (ri == rj || !group_kinds[kind].related(facts, i, j, w, sizeof(w)))
                continue;
            if (!why[r][0])
                g_strlcpy(why[r], w, sizeof(why[r]));
            parent[ri] = parent[rj] = r;
        }
    for (int r = 0; r < facts->n; r++) {
        HostGroup g = { .kind = kind };
        if (find_root(parent, r) != r || !why[r][0])
            continue;
        g_strlcpy(g.why, why[r], sizeof(g.why));
        for (int i = r; i < facts->n && g.n < HOST_GROUP_MAX; i++)
            if (find_root(parent, i) == r)
                g.member[g.n++] = facts->f[i].bdf;
        g_array_append_val(out, g);
    }
    g_free(why);
    g_free(parent);
}

void host_groups_compute(const HostFacts *facts, HostGroups *groups)
{
    GArray *all = g_array_new(FALSE, TRUE, sizeof(HostGroup));

    for (int k = 0; k < HOST_GROUP_KINDS; k++)
        group_kind(facts, (HostGroupKind)k, all);
    groups->n = (int)all->len;
    groups->g = (HostGroup *)(void *)g_array_free(all, FALSE);
}

void host_groups_free(HostGroups *groups)
{
    g_free(groups->g);
    *groups = (HostGroups){ 0 };
}

/* ================================================================ facts kept per host */

/*
 * Reading every function's files costs about a millisecond per request on a
 * 50-function host (on real hardware each config byte is a device read),
 * yet most of what they say changes only with the function itself.  So each
 * host's facts are kept, and every call looks again at what a running
 * system changes:
 *   - the functions present: a devices/ entry that is new, or that came
 *     back with another inode (removed and rescanned, SR-IOV VFs made
 *     again), is read in full;
 *   - each function's driver: a rebind (xl pci-assignable-add/-remove,
 *     driver_override) reads the function in full;
 *   - with an INTx pin and a driver, the IRQ, and for dom0's own drivers
 *     whether INTx is quiet: a driver turns MSI on and off without a
 *     rebind (a NIC when its link goes up);
 *   - reset_method where it can make a bus reset the only reset (no FLR,
 *     below a bridge): the administrator may write it.
 * IOMMU group, capabilities, bridge numbers and BARs change only with a
 * rebind or a new entry.
 */

#define KEPT_HOSTS_MAX 8        /* trees in use at once: qemu-dm has one, tests a few */

typedef struct KeptEntry {
    char name[16];              /* the devices/ entry */
    ino_t ino;
} KeptEntry;

typedef struct KeptHost {
    char *root;                 /* NULL: /sys/bus/pci */
    HostFacts facts;            /* BDF order */
    KeptEntry *entry;           /* facts.f[i]'s entry */
    HostGroups groups;
} KeptHost;

static GMutex kept_lock;
static GPtrArray *kept_hosts;   /* KeptHost, the most recently used first */

/* The INTx facts again (a driver may have turned MSI on or off). */
static void reread_intx(int dfd, const char *name, HostFuncFacts *f)
{
    uint8_t cfg[256];
    char irq[32];
    unsigned len;

    if (attr_text(dfd, name, "irq", irq, sizeof(irq)))
        f->irq = atoi(irq);
    /* Only dom0's own drivers leave a line by going quiet (dom0_leaves_line). */
    if (!host_assign_is_stub(f->driver) && (len = read_config(dfd, name, cfg, sizeof(cfg))) >= 64)
        f->intx_quiet = host_cfg_intx_quiet(cfg, len);
}

/* Bring one kept function up to date; true when a fact changed. */
static bool reread_function(int dfd, const char *name, const HostFacts *was_all,
                            HostFuncFacts *f)
{
    HostFuncFacts was = *f;
    char driver[sizeof(f->driver)];

    read_driver(dfd, name, driver, sizeof(driver));
    if (strcmp(driver, f->driver)) {
        *f = (HostFuncFacts){ .bdf = f->bdf };
        read_function(dfd, name, f);
        return true;
    }
    if (!f->flr && has_parent_bridge(was_all, f->bdf))
        f->reset_methods = read_reset_methods(dfd, name);
    if (f->pin && f->driver[0])
        reread_intx(dfd, name, f);
    return f->reset_methods != was.reset_methods || f->irq != was.irq ||
           f->intx_quiet != was.intx_quiet;
}

typedef struct KeptFunc {
    HostFuncFacts f;            /* first: bdf_order sorts these */
    KeptEntry entry;
} KeptFunc;

static const KeptFunc *kept_find(const GArray *was, PtBdf bdf)
{
    KeptFunc key = { .f.bdf = bdf };

    if (!was->len)
        return NULL;
    return bsearch(&key, was->data, was->len, sizeof(KeptFunc), bdf_order);
}

/* k's functions as they were, sorted for kept_find. */
static GArray *kept_funcs(const KeptHost *k)
{
    GArray *a = g_array_sized_new(FALSE, TRUE, sizeof(KeptFunc), (guint)k->facts.n);

    for (int i = 0; i < k->facts.n; i++) {
        KeptFunc kf = { k->facts.f[i], k->entry[i] };
        g_array_append_val(a, kf);
    }
    return a;
}

/* The entries under devices now, each read in full or brought up to date. */
static bool kept_refresh(KeptHost *k, DIR *d)
{
    g_autoptr(GArray) was = kept_funcs(k);
    g_autoptr(GArray) now = g_array_new(FALSE, TRUE, sizeof(KeptFunc));
    bool changed = false;
    struct dirent *e;

    while ((e = readdir(d))) {
        KeptFunc kf = { .entry.ino = e->d_ino };
        const KeptFunc *old;
        if (!parse_bdf_name(e->d_name, &kf.f.bdf))
            continue;
        g_strlcpy(kf.entry.name, e->d_name, sizeof(kf.entry.name));
        old = kept_find(was, kf.f.bdf);
        if (old && old->entry.ino == kf.entry.ino) {
            kf.f = old->f;
            changed |= reread_function(dirfd(d), kf.entry.name, &k->facts, &kf.f);
        } else {
            read_function(dirfd(d), kf.entry.name, &kf.f);
            changed = true;
        }
        g_array_append_val(now, kf);
    }
    g_array_sort(now, bdf_order);
    changed |= now->len != was->len;
    host_facts_free(&k->facts);
    g_free(k->entry);
    k->facts = (HostFacts){ (int)now->len, g_new0(HostFuncFacts, now->len + 1) };
    k->entry = g_new0(KeptEntry, now->len + 1);
    for (guint i = 0; i < now->len; i++) {
        k->facts.f[i] = g_array_index(now, KeptFunc, i).f;
        k->entry[i] = g_array_index(now, KeptFunc, i).entry;
    }
    return changed;
}

static void kept_free(KeptHost *k)
{
    host_facts_free(&k->facts);
    host_groups_free(&k->groups);
    g_free(k->entry);
    g_free(k->root);
    g_free(k);
}

/* root's kept host, moved to the front; a new one (the oldest evicted) if none. */
static KeptHost *kept_host(const char *root)
{
    KeptHost *k = NULL;

    if (!kept_hosts)
        kept_hosts = g_ptr_array_new();
    for (guint i = 0; i < kept_hosts->len && !k; i++)
        if (!g_strcmp0(((KeptHost *)g_ptr_array_index(kept_hosts, i))->root, root))
            k = g_ptr_array_steal_index(kept_hosts, i);
    if (!k) {
        k = g_new0(KeptHost, 1);
        k->root = g_strdup(root);
        if (kept_hosts->len >= KEPT_HOSTS_MAX)
            kept_free(g_ptr_array_steal_index(kept_hosts, kept_hosts->len - 1));
    }
    g_ptr_array_insert(kept_hosts, 0, k);
    return k;
}

int host_groups_read(const char *root, HostFacts *facts, HostGroups *groups, PtError *err)
{
    DIR *d = open_devices(root, err);
    KeptHost *k;

    if (!d) {
        int rc = -errno;
        host_groups_forget(root);
        return rc;
    }
    g_mutex_lock(&kept_lock);
    k = kept_host(root);
    if (kept_refresh(k, d)) {
        host_groups_free(&k->groups);
        host_groups_compute(&k->facts, &k->groups);
    }
    closedir(d);
    facts->n = k->facts.n;
    facts->f = g_memdup2(k->facts.f, sizeof(HostFuncFacts) * ((gsize)k->facts.n + 1));
    groups->n = k->groups.n;
    groups->g = g_memdup2(k->groups.g, sizeof(HostGroup) * (gsize)k->groups.n);
    g_mutex_unlock(&kept_lock);
    return 0;
}

void host_groups_forget(const char *root)
{
    g_mutex_lock(&kept_lock);
    for (guint i = kept_hosts ? kept_hosts->len : 0; i-- > 0;) {
        KeptHost *k = g_ptr_array_index(kept_hosts, i);
        if (!root || !g_strcmp0(k->root, root))
            kept_free(g_ptr_array_steal_index(kept_hosts, i));
    }
    g_mutex_unlock(&kept_lock);
}

/* ================================================================ the rule */

HostGroupOpts host_group_opts_default(void)
{
    HostGroupOpts o;

    for (int k = 0; k < HOST_GROUP_KINDS; k++)
        o.strict[k] = true;
    return o;
}

static int opt_kind(const char *key)
{
    for (int k = 0; k < HOST_GROUP_KINDS; k++)
        if (group_kinds[k].option && !strcmp(key, group_kinds[k].option))
            return k;
    return -1;
}

int host_group_opts_parse(const char *text, HostGroupOpts *opts, PtError *err)
{
    g_auto(GStrv) items = g_strsplit(text, ",", -1);
    HostGroupOpts o = *opts;

    for (int i = 0; items[i]; i++) {
        char *eq = strchr(items[i], '=');
        int k;
        if (eq)
            *eq = 0;
        k = opt_kind(items[i]);
        if (k < 0) {
            pt_error_set(err, "%.80s: unknown option '%.40s' (known: "
                         "strict_reset, strict_iommu, strict_intx, strict_page)", text, items[i]);
            return -1;
        }
        if (!eq || (strcmp(eq + 1, "0") && strcmp(eq + 1, "1"))) {
            pt_error_set(err, "%.80s: option %.40s: the value must be 0 "
                         "or 1", text, items[i]);
            return -1;
        }
        o.strict[k] = eq[1] == '1';
    }
    *opts = o;
    return 0;
}

static bool in_request(const HostGroupRequest *req, PtBdf bdf)
{
    for (int i = 0; i < req->n; i++)
        if (same_bdf(req->funcs[i], bdf))
            return true;
    return false;
}

static void owner_text(HostOwner o, char *buf, size_t len)
{
    if (o.domid == 0)
        snprintf(buf, len, "in use by dom0 (%s)", o.driver[0] ? o.driver : "no driver");
    else
        snprintf(buf, len, "passed through to domain %d", o.domid);
}

/* A member outside the request that someone else has: the split, or NULL. */
static int split_member(const HostGroup *g, const HostGroupRequest *req, HostOwnerFn owner_of,
                        void *ctx, HostOwner *owner)
{
    for (int m = 0; m < g->n; m++) {
        if (in_request(req, g->member[m]))
            continue;
        *owner = owner_of(g->member[m], ctx);
        if (owner->domid != HOST_OWNER_NONE && owner->domid != req->domid)
            return m;
    }
    return -1;
}

static int requested_member(const HostGroup *g, const HostGroupRequest *req)
{
    for (int m = 0; m < g->n; m++)
        if (in_request(req, g->member[m]))
            return m;
    return -1;
}

/* Phantom functions travel with their device, whoever has the rest: no option. */
static int check_phantom(const HostGroup *g, const HostGroupRequest *req, int asked,
                         PtError *err)
{
    char a[16], b[16];

    for (int m = 0; m < g->n; m++)
        if (!in_request(req, g->member[m])) {
            pt_error_set(err, "%s shares %s with %s (%s): assign them "
                         "together or not at all", pt_bdf_format(g->member[asked], a, sizeof(a)),
                         group_kinds[g->kind].name, pt_bdf_format(g->member[m], b, sizeof(b)),
                         g->why);
            return -1;
        }
    return 0;
}

static int check_group(const HostGroup *g, const HostGroupRequest *req, HostOwnerFn owner_of,
                       void *owner_ctx, const HostGroupOpts *opts, HostWarnFn warn,
                       void *warn_ctx, PtError *err)
{
    int asked = requested_member(g, req), other;
    char a[16], b[16], who[64], msg[sizeof(err->msg)];
    HostOwner owner;

    if (asked < 0)
        return 0;
    if (g->kind == HOST_GROUP_PHANTOM)
        return check_phantom(g, req, asked, err);
    other = split_member(g, req, owner_of, owner_ctx, &owner);
    if (other < 0)
        return 0;
    owner_text(owner, who, sizeof(who));
    snprintf(msg, sizeof(msg), "%s shares %s with %s (%s) which is %s",
             pt_bdf_format(g->member[asked], a, sizeof(a)), group_kinds[g->kind].name,
             pt_bdf_format(g->member[other], b, sizeof(b)), g->why, who);
    if (opts->strict[g->kind]) {
        pt_error_set(err, "%s", msg);
        return -1;
    }
    if (warn) {
        g_autofree char *w = g_strdup_printf("%s: allowed by %s=0", msg,
                                             group_kinds[g->kind].option);
        warn(w, warn_ctx);
    }
    return 0;
}

int host_groups_check(const HostGroups *groups, const HostGroupRequest *req,
                      HostOwnerFn owner_of, void *owner_ctx, const HostGroupOpts *opts,
                      HostWarnFn warn, void *warn_ctx, PtError *err)
{
    HostGroupOpts dflt = host_group_opts_default();

    for (int i = 0; i < groups->n; i++)
        if (check_group(&groups->g[i], req, owner_of, owner_ctx, opts ? opts : &dflt, warn,
                        warn_ctx, err) < 0)
            return -1;
    return 0;
}
