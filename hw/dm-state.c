/*
 * qemu-dm's state file for save/restore (a GKeyFile): every attached
 * function's host BDF, vdevfn, options, emulated registers (the shadow)
 * and the bus-owned registers (BARs, ROM, interrupt line) with the guest's
 * COMMAND.
 */
#include "dm-state.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm-log.h"

#define STATE_FORMAT 1
#define STATE_GROUP  "qemu-dm"

/* The registers the bus owns and the guest writes, for this function's header. */
static const PciGuestReg *guest_regs(PciBus *bus, uint8_t devfn, size_t *n)
{
    uint8_t hdr = (uint8_t)pci_bus_cfg_read(bus, devfn, PCI_HEADER_TYPE, 1);

    return pci_bus_guest_regs(pt_header_is_bridge(hdr), n);
}

/* The size of the bus register a saved state names at off (of either
 * header layout), or 0 when the bus owns none there. */
static unsigned guest_reg_size(unsigned long off)
{
    for (int bridge = 0; bridge < 2; bridge++) {
        size_t n;
        const PciGuestReg *r = pci_bus_guest_regs(bridge, &n);
        for (size_t i = 0; i < n; i++)
            if (r[i].offset == off)
                return r[i].size;
    }
    return 0;
}

static void save_function(GKeyFile *kf, int i, const PtGuestFunc *f, PciBus *bus)
{
    char group[32], bdf[16], opts[128], v[16];
    size_t n;
    const PciGuestReg *r = guest_regs(bus, f->vdevfn, &n);
    GString *regs = g_string_new(NULL);
    PtOptions o = f->opts;

    snprintf(group, sizeof(group), "function %d", i);
    g_key_file_set_string(kf, group, "host", pt_bdf_format(f->host, bdf, sizeof(bdf)));
    snprintf(v, sizeof(v), "%02x", f->vdevfn);
    g_key_file_set_string(kf, group, "vdevfn", v);
    o.map = PT_MAP_DEFAULT;
    pt_options_format(&o, opts, sizeof(opts));
    g_key_file_set_string(kf, group, "options", opts);
    g_autofree char *shadow = g_base64_encode(pt_func_shadow(f->fn), PCI_EXT_CONFIG_SIZE);
    g_key_file_set_string(kf, group, "shadow", shadow);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(regs, "%s%02x=%0*x", i ? ";" : "", r[i].offset, 2 * r[i].size,
                               pci_bus_cfg_read(bus, f->vdevfn, r[i].offset, r[i].size));
    g_key_file_set_string(kf, group, "bus", regs->str);
    snprintf(v, sizeof(v), "%04x", pci_bus_cfg_read(bus, f->vdevfn, PCI_COMMAND, 2));
    g_key_file_set_string(kf, group, "command", v);
    g_string_free(regs, TRUE);
}

int dm_state_save(PtGuest *g, PciBus *bus, const char *path, PtError *err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;
    int n = pt_guest_count(g);

    g_key_file_set_integer(kf, STATE_GROUP, "format", STATE_FORMAT);
    g_key_file_set_integer(kf, STATE_GROUP, "functions", n);
    for (int i = 0; i < n; i++)
        save_function(kf, i, pt_guest_func_at(g, i), bus);
    if (!g_key_file_save_to_file(kf, path, &gerr)) {
        pt_error_set(err, "cannot write the state file: %.250s", gerr->message);
        return -EIO;
    }
    dm_log("save", "%d functions saved to %s", n, path);
    return 0;
}

typedef struct SavedFunc {
    PtBdf host;
    uint8_t vdevfn;
    PtOptions opts;
    uint8_t shadow[PCI_EXT_CONFIG_SIZE];
    int nregs;
    unsigned reg_off[PCI_GUEST_REGS_MAX];
    unsigned reg_size[PCI_GUEST_REGS_MAX];
    uint32_t reg_val[PCI_GUEST_REGS_MAX];
    uint16_t command;
} SavedFunc;

static char *state_string(GKeyFile *kf, const char *group, const char *key, PtError *err)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);

    if (!v)
        pt_error_set(err, "state file: [%s] has no %s", group, key);
    return v;
}

/* "10=c0000000;14=00000000;...;3c=0b": only bus-owned offsets. */
static int parse_regs(const char *group, const char *text, SavedFunc *sf, PtError *err)
{
    g_auto(GStrv) items = g_strsplit(text, ";", -1);

    sf->nregs = 0;
    for (char **it = items; *it; it++) {
        char *eq = strchr(*it, '=');
        unsigned long off, val;
        if (!eq || sf->nregs == PCI_GUEST_REGS_MAX)
            goto bad;
        *eq = '\0';
        if (pt_parse_uint(*it, 16, 0xff, &off) < 0 || pt_parse_uint(eq + 1, 16, 0xffffffffu, &val) < 0)
            goto bad;
        unsigned size = guest_reg_size(off);
        if (!size || val >> (8 * size - 1) >> 1)
            goto bad;
        sf->reg_off[sf->nregs] = (unsigned)off;
        sf->reg_size[sf->nregs] = size;
        sf->reg_val[sf->nregs++] = (uint32_t)val;
    }
    return 0;
bad:
    pt_error_set(err, "state file: [%s] bus: expected OFFSET=VALUE;... of BARs, ROM and interrupt line",
         group);
    return -EINVAL;
}

static int load_function(GKeyFile *kf, int i, SavedFunc *sf, PtError *err)
{
    char group[32];
    unsigned long v;

    snprintf(group, sizeof(group), "function %d", i);
    g_autofree char *host = state_string(kf, group, "host", err);
    g_autofree char *vdevfn = host ? state_string(kf, group, "vdevfn", err) : NULL;
    g_autofree char *opts = vdevfn ? state_string(kf, group, "options", err) : NULL;
    g_autofree char *shadow = opts ? state_string(kf, group, "shadow", err) : NULL;
    g_autofree char *regs = shadow ? state_string(kf, group, "bus", err) : NULL;
    g_autofree char *cmd = regs ? state_string(kf, group, "command", err) : NULL;
    char what[80];

    if (!cmd)
        return -EINVAL;
    snprintf(what, sizeof(what), "state file: [%s] host", group);
    if (pt_bdf_parse_plain(what, host, &sf->host, err) < 0)
        return -EINVAL;
    if (pt_parse_uint(vdevfn, 16, 0xff, &v) < 0) {
        pt_error_set(err, "state file: [%s] vdevfn '%.20s': expected hex 00-ff", group, vdevfn);
        return -EINVAL;
    }
    sf->vdevfn = (uint8_t)v;
    snprintf(what, sizeof(what), "state file: [%s] options", group);
    if (pt_options_parse(what, opts, &sf->opts, err) < 0)
        return -EINVAL;
    gsize len = 0;
    g_autofree guchar *raw = g_base64_decode(shadow, &len);
    if (len != PCI_EXT_CONFIG_SIZE) {
        pt_error_set(err, "state file: [%s] shadow: %zu bytes, expected %d", group, (size_t)len,
             PCI_EXT_CONFIG_SIZE);
        return -EINVAL;
    }
    memcpy(sf->shadow, raw, PCI_EXT_CONFIG_SIZE);
    if (parse_regs(group, regs, sf, err) < 0)
        return -EINVAL;
    if (pt_parse_uint(cmd, 16, 0xffff, &v) < 0) {
        pt_error_set(err, "state file: [%s] command '%.20s': expected hex 0000-ffff", group, cmd);
        return -EINVAL;
    }
    sf->command = (uint16_t)v;
    return 0;
}

static int load_state(const char *path, SavedFunc **out, int *count, PtError *err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &gerr)) {
        pt_error_set(err, "state file %.200s: %.100s", path, gerr->message);
        return -EINVAL;
    }
    int format = g_key_file_get_integer(kf, STATE_GROUP, "format", NULL);
    int n = g_key_file_get_integer(kf, STATE_GROUP, "functions", NULL);
    if (format != STATE_FORMAT || n < 0 || n > PCI_BUS_DEVFNS) {
        pt_error_set(err, "state file %.200s: not a qemu-dm state (format %d, %d functions)", path,
             format, n);
        return -EINVAL;
    }
    SavedFunc *sf = g_new0(SavedFunc, n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (load_function(kf, i, &sf[i], err) < 0)
            goto bad;
        for (int j = 0; j < i; j++)
            if (pt_bdf_equal(sf[j].host, sf[i].host) || sf[j].vdevfn == sf[i].vdevfn) {
                pt_error_set(err, "state file: functions %d and %d share a host function or a vdevfn",
                     j, i);
                goto bad;
            }
    }
    *out = sf;
    *count = n;
    return 0;
bad:
    g_free(sf);
    return -EINVAL;
}

/*
 * A device without vfunc 0 goes into a slot whose function 0 comes later:
 * the placer takes that only one pinned function at a time (xend's way),
 * so its functions go one by one.  A failure leaves the earlier ones for
 * the caller's rollback.
 */
static int attach_without_function0(PtGuest *g, const PtRequest *req, const char *text,
                                    PtError *err)
{
    for (int i = 0; i < req->nfuncs; i++) {
        PtRequest one = *req;
        one.nfuncs = 1;
        one.multi = false;
        one.pfunc[0] = req->pfunc[i];
        one.vfunc[0] = req->vfunc[i];
        int rc = pt_guest_attach_request(g, &one, text, true, NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Attach the saved functions of one host device in one slot, pinned. */
static int restore_device(PtGuest *g, const SavedFunc *sf, const int *idx, int n, PtError *err)
{
    PtRequest req = { .domain = sf[idx[0]].host.domain, .bus = sf[idx[0]].host.bus,
                      .dev = sf[idx[0]].host.dev, .nfuncs = n, .multi = n > 1,
                      .vslot = PT_SLOT(sf[idx[0]].vdevfn), .opts = sf[idx[0]].opts };
    bool partial = true;
    int attached = 0;
    char text[32];

    for (int i = 0; i < n; i++) {
        const PtGuestFunc *f = pt_guest_func_of(g, sf[idx[i]].host);
        if (f && f->vdevfn != sf[idx[i]].vdevfn) {
            char bdf[16];
            pt_error_set(err, "restore: %s is attached at %02x.%x, saved at %02x.%x",
                 pt_bdf_format(f->host, bdf, sizeof(bdf)), PT_SLOT(f->vdevfn), PT_FUNC(f->vdevfn),
                 PT_SLOT(sf[idx[i]].vdevfn), PT_FUNC(sf[idx[i]].vdevfn));
            return -EEXIST;
        }
        attached += f != NULL;
        req.pfunc[i] = sf[idx[i]].host.func;
        req.vfunc[i] = PT_FUNC(sf[idx[i]].vdevfn);
        partial &= req.vfunc[i] != 0;
    }
    if (attached == n)
        return 0;       /* the backend list already put them there */
    if (attached) {
        pt_error_set(err, "restore: %04x:%02x:%02x is only partly attached", req.domain, req.bus, req.dev);
        return -EEXIST;
    }
    snprintf(text, sizeof(text), "restore %04x:%02x:%02x", req.domain, req.bus, req.dev);
    if (partial)
        return attach_without_function0(g, &req, text, err);
    return pt_guest_attach_request(g, &req, text, false, NULL, err);
}

/* Slot by slot; within a slot, the device holding vfunc 0 goes last. */
static int restore_layout(PtGuest *g, const SavedFunc *sf, int n, PtError *err)
{
    for (unsigned s = 0; s < PT_SLOTS; s++)
        for (int pass = 0; pass < 2; pass++) {
            bool done[PCI_BUS_DEVFNS] = { 0 };
            for (int i = 0; i < n; i++) {
                if (done[i] || PT_SLOT(sf[i].vdevfn) != s)
                    continue;
                int idx[PT_FUNCS_PER_SLOT], m = 0;
                bool has0 = false;
                for (int j = i; j < n && m < PT_FUNCS_PER_SLOT; j++)
                    if (!done[j] && PT_SLOT(sf[j].vdevfn) == s &&
                        pt_bdf_same_device(sf[j].host, sf[i].host)) {
                        idx[m++] = j;
                        done[j] = true;
                        has0 |= PT_FUNC(sf[j].vdevfn) == 0;
                    }
                if (has0 != (pass == 1))
                    continue;
                int rc = restore_device(g, sf, idx, m, err);
                if (rc < 0)
                    return rc;
            }
        }
    return 0;
}

/* Emulated registers first, then the bus registers as the guest wrote
 * them, decode off while the BARs move, then the guest's COMMAND. */
static void restore_registers(PtGuest *g, PciBus *bus, const SavedFunc *sf)
{
    const PtGuestFunc *f = pt_guest_func_of(g, sf->host);

    pt_func_load_shadow(f->fn, sf->shadow, PCI_EXT_CONFIG_SIZE);
    pci_bus_cfg_write(bus, sf->vdevfn, PCI_COMMAND,
                      sf->command & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 2);
    for (int r = 0; r < sf->nregs; r++)
        pci_bus_cfg_write(bus, sf->vdevfn, sf->reg_off[r], sf->reg_val[r], sf->reg_size[r]);
    pci_bus_cfg_write(bus, sf->vdevfn, PCI_COMMAND, sf->command, 2);
}

int dm_state_restore(PtGuest *g, PciBus *bus, const char *path, PtError *err)
{
    PtBusMap before = *pt_guest_busmap(g);
    SavedFunc *sf = NULL;
    int n = 0, rc;

    if ((rc = load_state(path, &sf, &n, err)) < 0)
        return rc;
    if ((rc = restore_layout(g, sf, n, err)) < 0) {
        PtError e;
        const PtBusMap *now = pt_guest_busmap(g);
        for (unsigned s = 0; s < PT_SLOTS; s++)
            if (now->used[s] && !before.used[s])
                pt_guest_detach_slot(g, s, &e);
        g_free(sf);
        return rc;
    }
    for (int i = 0; i < n; i++)
        restore_registers(g, bus, &sf[i]);
    dm_log("restore", "%d functions restored from %s", n, path);
    g_free(sf);
    return 0;
}

