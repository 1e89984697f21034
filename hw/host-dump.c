/*
 * Parser for real `lspci -xxx`, `-xxxx` and `-vvv -xxxx` text, and for the
 * sidecar of BAR sizes that hex-only dumps need.
 *
 * Strict on purpose: a dump is test evidence, so anything that does not look
 * exactly like lspci output (a short hex line, offsets out of order, bytes
 * before any device, a repeated function) is an error naming the line,
 * rather than a guess.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <pci/pci.h>

#include "host-dump.h"

#define DUMP_BYTES_PER_LINE 16

/* Region names as messages and the sidecar spell them. */
static const char *const bar_names[PCI_NUM_BARS] = { "0", "1", "2", "3", "4", "5", "rom" };

typedef struct Parser {
    const char *name;
    unsigned line;
    HostDump *dump;
    int cur;            /* index of the function being read, -1 between */
    bool in_hex;        /* its hex lines have started */
    PtError *err;
} Parser;

static int fail(PtError *err, const char *name, unsigned line, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static int fail(PtError *err, const char *name, unsigned line, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (err)
        pt_error_set(err, "%s:%u: %s", name, line, what);
    return -EINVAL;
}

/* Length of the run of hex digits at s. */
static int hex_run(const char *s)
{
    int n = 0;

    while (isxdigit((unsigned char)s[n]))
        n++;
    return n;
}

/* Unsigned hex field of exactly the digits hex_run found; strtoul checked. */
static bool hex_field(const char *s, int ndigits, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (ndigits < 1 || ndigits > 8 || !isxdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    v = strtoul(s, &end, 16);
    if (errno || end != s + ndigits || v > max)
        return false;
    *out = v;
    return true;
}

bool host_dump_parse_bdf(const char *text, const char **end, PtBdf *bdf)
{
    unsigned long f[4], dom = 0, bus, dev, fn;
    const char *s = text;
    int n[3], nf = 0;

    /* Two or three ':'-separated hex fields, then '.' and one digit. */
    for (;;) {
        n[nf] = hex_run(s);
        if (!hex_field(s, n[nf], 0xffff, &f[nf]))
            return false;
        s += n[nf];
        nf++;
        if (*s != ':' || nf == 3)
            break;
        s++;
    }
    if (*s != '.' || nf < 2)
        return false;
    if (nf == 3) {
        dom = f[0];
        f[0] = f[1];
        f[1] = f[2];
        n[0] = n[1];
        n[1] = n[2];
    }
    bus = f[0];
    dev = f[1];
    if (n[0] > 2 || n[1] > 2 || bus > 0xff || dev >= PT_SLOTS)
        return false;
    s++;
    if (*s < '0' || *s > '7')
        return false;
    fn = (unsigned long)(*s - '0');
    s++;
    bdf->domain = (uint16_t)dom;
    bdf->bus = (uint8_t)bus;
    bdf->dev = (uint8_t)dev;
    bdf->func = (uint8_t)fn;
    *end = s;
    return true;
}

static bool bdf_equal(PtBdf a, PtBdf b)
{
    return a.domain == b.domain && a.bus == b.bus && a.dev == b.dev && a.func == b.func;
}

static const char *bdf_str(PtBdf b, char *buf, size_t len)
{
    snprintf(buf, len, "%04x:%02x:%02x.%x", b.domain, b.bus, b.dev, b.func);
    return buf;
}

const DumpFunc *host_dump_find(const HostDump *dump, PtBdf bdf)
{
    for (int i = 0; i < dump->nfuncs; i++)
        if (bdf_equal(dump->funcs[i].bdf, bdf))
            return &dump->funcs[i];
    return NULL;
}

static DumpFunc *cur_func(Parser *p)
{
    return p->cur < 0 ? NULL : &p->dump->funcs[p->cur];
}

/* A function is complete when its hex dump has one of lspci's lengths. */
static int finish_func(Parser *p)
{
    DumpFunc *fn = cur_func(p);
    char b[16];

    if (!fn)
        return 0;
    p->cur = -1;
    p->in_hex = false;
    if (fn->config_len == 64 || fn->config_len == 256 || fn->config_len == PCI_EXT_CONFIG_SIZE)
        return 0;
    if (fn->config_len == 0)
        return fail(p->err, p->name, fn->line, "%s: no hex dump of config space",
                    bdf_str(fn->bdf, b, sizeof(b)));
    return fail(p->err, p->name, fn->line,
                "%s: %u bytes of config space, expected 64, 256 or 4096",
                bdf_str(fn->bdf, b, sizeof(b)), fn->config_len);
}

/* "[hhhh]" or "[hhhh:hhhh]" at s, as lspci -nn prints IDs. */
static bool bracketed_ids(const char *s, bool pair, unsigned *a, unsigned *b)
{
    unsigned long v;

    if (s[0] != '[' || hex_run(s + 1) != 4 || !hex_field(s + 1, 4, 0xffff, &v))
        return false;
    *a = (unsigned)v;
    if (!pair)
        return s[5] == ']';
    if (s[5] != ':' || hex_run(s + 6) != 4 || s[10] != ']' || !hex_field(s + 6, 4, 0xffff, &v))
        return false;
    *b = (unsigned)v;
    return true;
}

/* "BDF Class name [cccc]: Vendor Device [vvvv:dddd] (rev rr)": the -nn IDs. */
static void parse_text_ids(DumpFunc *fn, const char *rest)
{
    const char *colon = strstr(rest, ": ");
    unsigned v, d, cls, unused;

    fn->text_class = -1;
    if (colon && colon - rest >= 6 && bracketed_ids(colon - 6, false, &cls, &unused))
        fn->text_class = (int)cls;
    for (const char *q = strchr(colon ? colon : rest, '['); q; q = strchr(q + 1, '['))
        if (bracketed_ids(q, true, &v, &d)) {
            fn->has_text_ids = true;
            fn->text_vendor = (uint16_t)v;
            fn->text_device = (uint16_t)d;
        }
}

static int parse_header(Parser *p, const char *s)
{
    const DumpFunc *dup;
    DumpFunc *fn;
    const char *end;
    PtBdf bdf;
    char b[16];
    int rc;

    if (!host_dump_parse_bdf(s, &end, &bdf) || (*end != ' ' && *end != '\0'))
        return fail(p->err, p->name, p->line, "unrecognised line (not a device "
                    "address, a hex row or an indented detail)");
    rc = finish_func(p);
    if (rc)
        return rc;
    dup = host_dump_find(p->dump, bdf);
    if (dup)
        return fail(p->err, p->name, p->line, "duplicate function %s (first at line %u)",
                    bdf_str(bdf, b, sizeof(b)), dup->line);
    p->dump->funcs = g_renew(DumpFunc, p->dump->funcs, p->dump->nfuncs + 1);
    fn = &p->dump->funcs[p->dump->nfuncs];
    memset(fn, 0, sizeof(*fn));
    fn->bdf = bdf;
    fn->line = p->line;
    parse_text_ids(fn, end);
    p->cur = p->dump->nfuncs++;
    return 0;
}

/* "OFF: b0 b1 ... b15", OFF the next 16-byte row of the current function. */
static int parse_hex(Parser *p, const char *s, int ndigits)
{
    DumpFunc *fn = cur_func(p);
    unsigned long off;
    const char *q;
    int i;

    if (!fn)
        return fail(p->err, p->name, p->line, "hex line outside a device");
    if (!hex_field(s, ndigits, PCI_EXT_CONFIG_SIZE - 1, &off) || ndigits < 2 || ndigits > 3)
        return fail(p->err, p->name, p->line, "bad offset '%.*s'", ndigits, s);
    if (off > fn->config_len)
        return fail(p->err, p->name, p->line, "offset %lx out of order, expected %x "
                    "(row %x missing)", off, fn->config_len, fn->config_len);
    if (off != fn->config_len)
        return fail(p->err, p->name, p->line, "offset %lx out of order, expected %x",
                    off, fn->config_len);
    q = s + ndigits + 1;
    for (i = 0; i < DUMP_BYTES_PER_LINE; i++) {
        unsigned long v = 0;
        char *end = NULL;

        if (*q == '\0' || (q[0] == ' ' && isxdigit((unsigned char)q[1]) && q[2] == '\0'))
            break;      /* the line ends, perhaps inside a byte */
        if (q[0] == ' ' && isxdigit((unsigned char)q[1]) && isxdigit((unsigned char)q[2]))
            v = strtoul(q + 1, &end, 16);
        if (end != q + 3 || (*end != ' ' && *end != '\0')) {
            const char *tok = q[0] == ' ' ? q + 1 : q;
            return fail(p->err, p->name, p->line, "bad hex byte '%.*s' at offset %lx",
                        (int)strcspn(tok, " "), tok, off + i);
        }
        fn->config[off + i] = (uint8_t)v;
        q = end;
    }
    if (i < DUMP_BYTES_PER_LINE)
        return fail(p->err, p->name, p->line, "row %lx cut short: %d of 16 bytes", off, i);
    if (*q != '\0')
        return fail(p->err, p->name, p->line, "junk after 16 bytes: '%.20s'", q);
    fn->config_len += DUMP_BYTES_PER_LINE;
    p->in_hex = true;
    return 0;
}

/* lspci's "[size=16K]": decimal and an optional binary suffix. */
static bool parse_size(const char *s, const char **end, uint64_t *size)
{
    static const char suffix[] = "KMGT";
    unsigned long long v;
    const char *sfx;
    char *e;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno || v == 0)
        return false;
    sfx = *e ? strchr(suffix, *e) : NULL;
    if (sfx) {
        unsigned shift = 10u * (unsigned)(sfx - suffix + 1);
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
        e++;
    }
    *end = e;
    *size = v;
    return true;
}

/* The address right after "at ", unless it reads "<unassigned>" or the like. */
static bool parse_region_addr(const char *at, uint64_t *base)
{
    unsigned long long v;
    char *end;

    if (!isxdigit((unsigned char)*at))
        return false;
    errno = 0;
    v = strtoull(at, &end, 16);
    if (errno || v == 0 || (*end != ' ' && *end != '\0'))
        return false;
    *base = v;
    return true;
}

/* "Region N: Memory at ADDR ..." or "Expansion ROM at ADDR ...". */
static int parse_region(Parser *p, DumpFunc *fn, int index, const char *at, const char *rest)
{
    const char *sz = strstr(rest, "[size="), *end;
    uint64_t size = 0;

    bool have_addr;

    if (fn->bar_listed[index])
        return fail(p->err, p->name, p->line, "region %s given twice", bar_names[index]);
    if (sz && (!parse_size(sz + 6, &end, &size) || strcmp(end, "]") != 0))
        return fail(p->err, p->name, p->line, "bad size '%s'", sz);
    fn->bar_size[index] = size;
    fn->bar_listed[index] = true;
    have_addr = at && parse_region_addr(at, &fn->os_base[index]);
    if (!have_addr && strstr(rest, "[virtual]"))
        return fail(p->err, p->name, p->line, "virtual region without an address");
    return 0;
}

static int parse_bar_line(Parser *p, DumpFunc *fn, const char *s)
{
    const char *at;
    unsigned long idx;
    char *end;

    if (!isdigit((unsigned char)*s))
        return fail(p->err, p->name, p->line, "bad region number");
    idx = strtoul(s, &end, 10);
    if (idx > 5 || end[0] != ':' || end[1] != ' ')
        return fail(p->err, p->name, p->line, "bad region number");
    at = strstr(end, " at ");
    return parse_region(p, fn, (int)idx, at ? at + 4 : NULL, end + 2);
}

static int parse_rom_line(Parser *p, DumpFunc *fn, const char *s)
{
    return parse_region(p, fn, PCI_BAR_ROM, s, s);
}

static int parse_irq_line(Parser *p, DumpFunc *fn, const char *s)
{
    const char *r = strstr(s, "routed to IRQ ");
    unsigned long irq;
    char *end;

    if (!r)
        return 0;           /* "Interrupt: pin A" without routing */
    r += strlen("routed to IRQ ");
    errno = 0;
    irq = isdigit((unsigned char)*r) ? strtoul(r, &end, 10) : 0;
    if (!isdigit((unsigned char)*r) || errno || *end != '\0' || irq > 0xffff)
        return fail(p->err, p->name, p->line, "bad IRQ number '%s'", r);
    fn->irq = (int)irq;
    return 0;
}

static int parse_driver_line(Parser *p, DumpFunc *fn, const char *s)
{
    size_t len = strlen(s);

    /* The name becomes a directory in the simulated tree. */
    if (len == 0 || len >= sizeof(fn->driver) || strchr(s, '/') ||
        strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return fail(p->err, p->name, p->line, "bad driver name '%s'", s);
    memcpy(fn->driver, s, len + 1);
    return 0;
}

typedef struct DetailLine {
    const char *prefix;
    int (*parse)(Parser *p, DumpFunc *fn, const char *rest);
} DetailLine;

/* The -vvv lines that carry facts; every other detail line is commentary. */
static const DetailLine detail_lines[] = {
    { "Region ",               parse_bar_line },
    { "Expansion ROM at ",     parse_rom_line },
    { "Interrupt: ",           parse_irq_line },
    { "Kernel driver in use: ", parse_driver_line },
};

static int parse_detail(Parser *p, const char *s)
{
    DumpFunc *fn = cur_func(p);

    if (!fn)
        return fail(p->err, p->name, p->line, "detail line outside a device");
    if (p->in_hex)
        return fail(p->err, p->name, p->line, "detail line after the hex dump");
    fn->has_text = true;
    if (s[0] == '\t')
        return 0;           /* second-level lines carry nothing we need */
    for (size_t i = 0; i < G_N_ELEMENTS(detail_lines); i++) {
        size_t n = strlen(detail_lines[i].prefix);
        if (strncmp(s, detail_lines[i].prefix, n) == 0)
            return detail_lines[i].parse(p, fn, s + n);
    }
    return 0;
}

static int parse_line(Parser *p, char *s)
{
    int n;

    if (*s == '\0')
        return finish_func(p);
    if (s[0] == '\t')
        return parse_detail(p, s + 1);
    n = hex_run(s);
    if (n > 0 && s[n] == ':' && (s[n + 1] == ' ' || s[n + 1] == '\0'))
        return parse_hex(p, s, n);
    return parse_header(p, s);
}

static void skip_line(Parser *p, const char *text, const char *why)
{
    DumpSkipped *k;

    p->dump->skipped = g_renew(DumpSkipped, p->dump->skipped, p->dump->nskipped + 1);
    k = &p->dump->skipped[p->dump->nskipped++];
    k->line = p->line;
    k->why = why;
    g_strlcpy(k->text, text, sizeof(k->text));
}

/* Where stderr of pcilib or lspci starts in a line, if it does. */
static char *stderr_message(char *s)
{
    static const char *const marks[] = { "pcilib: ", "lspci: " };
    char *first = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(marks); i++) {
        char *m = strstr(s, marks[i]);
        if (m && (!first || m < first))
            first = m;
    }
    return first;
}

/* "lspci -xxx", "$ lspci -vvxxx", "root@box:~# sudo lspci -xxxx". */
static bool is_command_line(const char *s)
{
    const char *word = s, *sp = strchr(s, ' ');

    if (sp && sp > s && (sp[-1] == '$' || sp[-1] == '#'))
        word = sp + 1;                  /* past a shell prompt */
    if (g_str_has_prefix(word, "sudo "))
        word += strlen("sudo ");
    return g_str_has_prefix(word, "lspci") && (word[5] == ' ' || word[5] == '\0');
}

/*
 * One line of text, with what pasting added taken out first.  stderr is
 * unbuffered and stdout is not, so a message can land inside a row: the
 * text before it (kept in *carry) continues on the next line.
 */
static int take_line(Parser *p, char *line, char **carry)
{
    g_autofree char *joined = NULL;
    char *s = line, *msg;

    g_strchomp(line);       /* CRLF files, and the blanks mail adds at line ends */
    if (*carry) {
        s = joined = g_strconcat(*carry, line, NULL);
        g_clear_pointer(carry, g_free);
    }
    msg = stderr_message(s);
    if (msg) {
        skip_line(p, msg, "a pcilib or lspci message");
        if (msg > s)
            *carry = g_strndup(s, (gsize)(msg - s));
        return 0;
    }
    if (is_command_line(s)) {
        skip_line(p, s, "the lspci command line");
        return 0;
    }
    if (s[0] == '#' && (s[1] == ' ' || s[1] == '\0')) {
        skip_line(p, s, "a comment");
        return 0;
    }
    return parse_line(p, s);
}

int host_dump_parse(const char *text, const char *name, HostDump *dump, PtError *err)
{
    Parser p = { .name = name, .dump = dump, .cur = -1, .err = err };
    char **lines = g_strsplit(text, "\n", -1);
    char *carry = NULL;
    int rc = 0;

    memset(dump, 0, sizeof(*dump));
    for (int i = 0; lines[i] && !rc; i++) {
        p.line = (unsigned)i + 1;
        rc = take_line(&p, lines[i], &carry);
    }
    if (!rc && carry)
        rc = parse_line(&p, carry);
    g_free(carry);
    if (!rc)
        rc = finish_func(&p);
    if (!rc && dump->nfuncs == 0)
        rc = fail(err, name, 1, "no PCI functions in the dump");
    g_strfreev(lines);
    if (rc)
        host_dump_free(dump);
    return rc;
}

static int load_text(const char *path, char **text, PtError *err)
{
    GError *gerr = NULL;
    gsize len;

    if (!g_file_get_contents(path, text, &len, &gerr)) {
        int rc = gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_NOENT
                 ? -ENOENT : -EIO;
        pt_error_set(err, "%s", gerr->message);
        g_error_free(gerr);
        return rc;
    }
    if (strlen(*text) != len) {
        g_free(*text);
        return fail(err, path, 1, "file contains a NUL byte");
    }
    return 0;
}

int host_dump_load(const char *path, HostDump *dump, PtError *err)
{
    char *text;
    int rc;

    memset(dump, 0, sizeof(*dump));
    rc = load_text(path, &text, err);
    if (rc)
        return rc;
    rc = host_dump_parse(text, path, dump, err);
    g_free(text);
    return rc;
}

void host_dump_free(HostDump *dump)
{
    g_free(dump->funcs);
    g_free(dump->skipped);
    memset(dump, 0, sizeof(*dump));
}

static uint32_t cfg_le32(const DumpFunc *fn, unsigned off)
{
    return (uint32_t)fn->config[off] | (uint32_t)fn->config[off + 1] << 8 |
           (uint32_t)fn->config[off + 2] << 16 | (uint32_t)fn->config[off + 3] << 24;
}

typedef struct HeaderLayout {
    int nbars;
    int rom_reg;        /* 0: no ROM register */
} HeaderLayout;

/* BAR registers and the ROM register each header type has. */
static const HeaderLayout header_layouts[] = {
    [PCI_HEADER_TYPE_NORMAL]  = { .nbars = 6, .rom_reg = PCI_ROM_ADDRESS },
    [PCI_HEADER_TYPE_BRIDGE]  = { .nbars = 2, .rom_reg = PCI_ROM_ADDRESS1 },
    [PCI_HEADER_TYPE_CARDBUS] = { .nbars = 1 },
};

static HeaderLayout header_layout(const DumpFunc *fn)
{
    unsigned type = pt_header_layout(fn->config[PCI_HEADER_TYPE]);

    if (type < G_N_ELEMENTS(header_layouts))
        return header_layouts[type];
    return (HeaderLayout){ 0, 0 };
}

/* Decode BAR i; returns how many registers it used (2 for 64-bit). */
static int decode_bar(const DumpFunc *fn, int i, int nbars, PtBar *bar)
{
    uint32_t reg = cfg_le32(fn, PCI_BASE_ADDRESS_0 + 4 * (unsigned)i);

    if (reg & PCI_BASE_ADDRESS_SPACE_IO) {
        bar->io = true;
        bar->base = reg & (uint32_t)PCI_BASE_ADDRESS_IO_MASK;
    } else {
        bar->base = reg & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK;
        bar->prefetch = (reg & PCI_BASE_ADDRESS_MEM_PREFETCH) != 0;
        bar->mem64 = (reg & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64 &&
                     i + 1 < nbars;
    }
    if (bar->mem64)
        bar->base |= (uint64_t)cfg_le32(fn, PCI_BASE_ADDRESS_0 + 4 * (unsigned)(i + 1)) << 32;
    if (fn->os_base[i])
        bar->base = fn->os_base[i];
    bar->size = fn->bar_size[i];
    return bar->mem64 ? 2 : 1;
}

bool host_dump_reads_all_ones(const DumpFunc *fn)
{
    return fn->config_len >= 2 && fn->config[PCI_VENDOR_ID] == 0xff &&
           fn->config[PCI_VENDOR_ID + 1] == 0xff;
}

void host_dump_bars(const DumpFunc *fn, PtBar bars[PCI_NUM_BARS])
{
    HeaderLayout hl = header_layout(fn);

    memset(bars, 0, sizeof(PtBar) * PCI_NUM_BARS);
    /* All ones is no register contents: there is nothing to decode. */
    if (fn->config_len < 64 || host_dump_reads_all_ones(fn))
        return;
    for (int i = 0; i < hl.nbars;)
        i += decode_bar(fn, i, hl.nbars, &bars[i]);
    if (hl.rom_reg) {
        bars[PCI_BAR_ROM].base = cfg_le32(fn, (unsigned)hl.rom_reg) &
                                  (uint32_t)PCI_ROM_ADDRESS_MASK;
        if (fn->os_base[PCI_BAR_ROM])
            bars[PCI_BAR_ROM].base = fn->os_base[PCI_BAR_ROM];
        bars[PCI_BAR_ROM].size = fn->bar_size[PCI_BAR_ROM];
    }
}

/* The register has more than an address: an I/O bit or memory type bits. */
static bool bar_type_bits(const DumpFunc *fn, int i)
{
    if (i == PCI_BAR_ROM)
        return false;
    return (cfg_le32(fn, PCI_BASE_ADDRESS_0 + 4 * (unsigned)i) & ~PCI_BASE_ADDRESS_MEM_MASK) != 0;
}

unsigned host_dump_unsized_bars(const DumpFunc *fn)
{
    HeaderLayout hl = header_layout(fn);
    PtBar bars[PCI_NUM_BARS];
    unsigned mask = 0;

    host_dump_bars(fn, bars);
    if (host_dump_reads_all_ones(fn))
        return 0;
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        bool upper = i > 0 && i < PCI_BAR_ROM && bars[i - 1].mem64;
        bool exists = i == PCI_BAR_ROM ? hl.rom_reg != 0 : i < hl.nbars;

        if (!exists || upper || bars[i].size)
            continue;
        if (bars[i].base || fn->bar_listed[i] || bar_type_bits(fn, i))
            mask |= 1u << i;
    }
    return mask;
}

/* Sidecar: "BDF BAR SIZE", SIZE decimal or 0x hex with an optional K/M/G. */
static bool parse_sidecar_size(const char *s, uint64_t *size)
{
    static const char suffix[] = "KMG";
    unsigned long long v;
    const char *sfx;
    char *end;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || v == 0)
        return false;
    sfx = *end ? strchr(suffix, *end) : NULL;
    if (sfx) {
        unsigned shift = 10u * (unsigned)(sfx - suffix + 1);
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
        end++;
    }
    if (*end != '\0')
        return false;
    *size = v;
    return true;
}

static bool parse_sidecar_bar(const char *s, int *index)
{
    if (strcmp(s, "rom") == 0) {
        *index = PCI_BAR_ROM;
        return true;
    }
    if (s[0] >= '0' && s[0] <= '5' && s[1] == '\0') {
        *index = s[0] - '0';
        return true;
    }
    return false;
}

/* A size must be a power of two the base is aligned to, and the BAR real. */
static int check_size(const DumpFunc *fn, int index, uint64_t size,
                      const char *name, unsigned line, PtError *err)
{
    PtBar bars[PCI_NUM_BARS];
    const PtBar *bar = &bars[index];
    uint64_t min = index == PCI_BAR_ROM ? 2048 : 16;
    HeaderLayout hl = header_layout(fn);

    host_dump_bars(fn, bars);
    if (host_dump_reads_all_ones(fn))
        return fail(err, name, line, "the function reads all ones in the dump (powered "
                    "off): it has no BARs to size");
    if (index == PCI_BAR_ROM ? !hl.rom_reg : index >= hl.nbars)
        return fail(err, name, line, "header type %02x has no BAR %s",
                    pt_header_layout(fn->config[PCI_HEADER_TYPE]), bar_names[index]);
    if (size & (size - 1))
        return fail(err, name, line, "size 0x%llx is not a power of two",
                    (unsigned long long)size);
    if (index > 0 && index < PCI_BAR_ROM && bars[index - 1].mem64)
        return fail(err, name, line, "BAR %d is the upper half of 64-bit BAR %d",
                    index, index - 1);
    /* An unassigned BAR reads 0 and keeps its size (the kernel keeps it
     * too); but where the -v text lists regions, one it omits is absent. */
    if (!bar->base && fn->has_text && !fn->bar_listed[index] && !bar_type_bits(fn, index))
        return fail(err, name, line, "BAR %s is not implemented (the dump's -v text lists no "
                    "such region)", bar_names[index]);
    if (bar->io)
        min = 4;
    if (size < min)
        return fail(err, name, line, "size 0x%llx is below the minimum 0x%llx",
                    (unsigned long long)size, (unsigned long long)min);
    if (bar->base & (size - 1))
        return fail(err, name, line, "size 0x%llx does not fit base 0x%llx (misaligned)",
                    (unsigned long long)size, (unsigned long long)bar->base);
    return 0;
}

/* Split a sidecar line into exactly three whitespace-separated tokens. */
static int sidecar_tokens(char *s, char *tok[3])
{
    int n = 0;
    char *save = NULL;

    for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 3)
            return 4;
        tok[n++] = t;
    }
    return n;
}

static int apply_sizes_line(HostDump *dump, char *s, const char *name, unsigned line,
                            PtError *err)
{
    char *hash = strchr(s, '#'), *tok[3];
    const char *end;
    DumpFunc *fn;
    uint64_t size;
    PtBdf bdf;
    int n, index, rc;
    char b[16];

    if (hash)
        *hash = '\0';
    n = sidecar_tokens(s, tok);
    if (n == 0)
        return 0;
    if (n != 3)
        return fail(err, name, line, "expected 'BB:SS.F BAR SIZE'");
    if (!host_dump_parse_bdf(tok[0], &end, &bdf) || *end != '\0')
        return fail(err, name, line, "bad function address '%s'", tok[0]);
    fn = (DumpFunc *)host_dump_find(dump, bdf);
    if (!fn)
        return fail(err, name, line, "function %s is not in the dump",
                    bdf_str(bdf, b, sizeof(b)));
    if (!parse_sidecar_bar(tok[1], &index))
        return fail(err, name, line, "bad BAR '%s', expected 0-5 or rom", tok[1]);
    if (!parse_sidecar_size(tok[2], &size))
        return fail(err, name, line, "bad size '%s'", tok[2]);
    rc = check_size(fn, index, size, name, line, err);
    if (rc)
        return rc;
    fn->bar_size[index] = size;
    return 0;
}

int host_dump_apply_sizes(HostDump *dump, const char *path, PtError *err)
{
    char *text, **lines;
    int rc;

    rc = load_text(path, &text, err);
    if (rc)
        return rc;
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i] && !rc; i++)
        rc = apply_sizes_line(dump, lines[i], path, (unsigned)i + 1, err);
    g_strfreev(lines);
    g_free(text);
    return rc;
}
