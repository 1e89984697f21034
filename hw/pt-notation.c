/*
 * Extended BDF notation: a small hand-written scanner with explicit bounds.
 * Every error names the spec, the reason and the 1-based column of the
 * offending character, and leaves the output untouched.
 */
#include "pt-notation.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Scan {
    const char *text;
    size_t pos;
    PtError *err;
} Scan;

/* Where the optional parts stood, for the unplug form's messages. */
typedef struct SpecMarks {
    size_t at;          /* column of '@', 0 if none */
    size_t first_opt;   /* column of the first option, 0 if none */
} SpecMarks;

static int fail_at(Scan *s, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(Scan *s, size_t pos, const char *fmt, ...)
{
    char reason[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    pt_error_set(s->err, "%.100s: %s (at column %zu)", s->text, reason, pos + 1);
    return -1;
}

static int fail_plain(PtError *err, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_plain(PtError *err, const char *text, const char *fmt, ...)
{
    char reason[220];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    pt_error_set(err, "%.80s: %s", text, reason);
    return -1;
}

static char peek(const Scan *s)
{
    return s->text[s->pos];
}

static bool at_end(const Scan *s)
{
    return peek(s) == '\0';
}

/* A printable rendering of the character at pos, for messages. */
static const char *shown(const Scan *s, size_t pos, char buf[8])
{
    unsigned char c = (unsigned char)s->text[pos];

    if (c == '\0')
        return "end of text";
    if (isprint(c))
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
    return buf;
}

/* ---- numbers ---- */

typedef struct HexField {
    const char *what;       /* "domain", "bus", "slot", ... */
    int max_digits;
    unsigned max;
    const char *range;      /* "00-1f" */
} HexField;

static const HexField F_DOMAIN = { "domain", 4, 0xffff, "0000-ffff" };
static const HexField F_BUS    = { "bus", 2, 0xff, "00-ff" };
static const HexField F_SLOT   = { "slot", 2, 0x1f, "00-1f" };
static const HexField F_FUNC   = { "function", 1, 7, "0-7" };
static const HexField F_VSLOT  = { "guest slot", 2, 0x1f, "00-1f" };
static const HexField F_VFUNC  = { "virtual function", 1, 7, "0-7" };
static const HexField F_VDEVFN = { "vdevfn", 3, 0x1ff, "00-1ff" };

/* Length of the run of hex digits at pos. */
static size_t hex_run(const Scan *s, size_t pos)
{
    size_t n = 0;

    while (isxdigit((unsigned char)s->text[pos + n]))
        n++;
    return n;
}

static unsigned hex_value(const char *p, size_t n)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        int c = tolower((unsigned char)p[i]);
        v = v * 16 + (unsigned)(isdigit(c) ? c - '0' : c - 'a' + 10);
    }
    return v;
}

/* Check a run already found at pos against a field's bounds. */
static int hex_check(Scan *s, size_t pos, size_t n, const HexField *f, unsigned *out)
{
    char buf[8];

    if (n == 0)
        return fail_at(s, pos, "expected a hex %s number, found %s", f->what,
                       shown(s, pos, buf));
    if (n > 8)
        return fail_at(s, pos, "%s number has too many digits", f->what);
    unsigned v = hex_value(s->text + pos, n);
    if (v > f->max)
        return fail_at(s, pos, "%s %.*s out of range %s", f->what, (int)n,
                       s->text + pos, f->range);
    if (n > (size_t)f->max_digits)
        return fail_at(s, pos, "%s %.*s has more than %d digit%s", f->what, (int)n,
                       s->text + pos, f->max_digits, f->max_digits > 1 ? "s" : "");
    *out = v;
    return 0;
}

static int hex_field(Scan *s, const HexField *f, unsigned *out)
{
    size_t n = hex_run(s, s->pos);

    if (hex_check(s, s->pos, n, f, out) < 0)
        return -1;
    s->pos += n;
    return 0;
}

static int expect(Scan *s, char c, const char *after)
{
    char buf[8];

    if (peek(s) != c)
        return fail_at(s, s->pos, "expected '%c' after %s, found %s", c, after,
                       shown(s, s->pos, buf));
    s->pos++;
    return 0;
}

/* [DDDD:]BB:SS  (the '.' is left for the caller). */
static int parse_device(Scan *s, uint16_t *domain, uint8_t *bus, uint8_t *dev)
{
    size_t a_pos = s->pos, a_len = hex_run(s, a_pos);
    unsigned d = 0, b, sl;

    if (a_len == 0 || s->text[a_pos + a_len] != ':')
        return a_len == 0 ? hex_check(s, a_pos, 0, &F_BUS, &b)
                          : fail_at(s, a_pos + a_len, "expected ':' after the bus number");
    size_t b_pos = a_pos + a_len + 1, b_len = hex_run(s, b_pos);
    bool has_domain = s->text[b_pos + b_len] == ':';

    if (has_domain) {
        if (hex_check(s, a_pos, a_len, &F_DOMAIN, &d) < 0 ||
            hex_check(s, b_pos, b_len, &F_BUS, &b) < 0)
            return -1;
        s->pos = b_pos + b_len + 1;
    } else {
        if (hex_check(s, a_pos, a_len, &F_BUS, &b) < 0)
            return -1;
        s->pos = b_pos;
    }
    if (hex_field(s, &F_SLOT, &sl) < 0)
        return -1;
    *domain = (uint16_t)d;
    *bus = (uint8_t)b;
    *dev = (uint8_t)sl;
    return 0;
}

static bool is_function_item(const Scan *s, size_t pos);

/* ---- options ---- */

enum { OPT_SPEC = 1, OPT_WIRE = 2, OPT_SHOWN = 4 };   /* SHOWN: in a function's applied view */

typedef struct OptionKey {
    const char *key;
    unsigned forms;                 /* where the key is accepted */
    size_t field;                   /* offsetof in PtOptions, or SIZE_MAX */
    const char *const *values;      /* accepted words; index = stored value */
    const char *help;
} OptionKey;

static const char *const bool_values[] = { "0", "1", NULL };
static const char *const map_values[] = { "", "identity", "least", NULL };
static const char *const strict_values[] = { "", "1", "0", NULL };   /* PtStrict */
static const char *const rdm_values[] = { "strict", "relaxed", NULL };

static const OptionKey option_keys[] = {
    { "msitranslate", OPT_SPEC | OPT_WIRE | OPT_SHOWN, offsetof(PtOptions, msitranslate), bool_values, "0 or 1" },
    { "power_mgmt",   OPT_SPEC | OPT_WIRE | OPT_SHOWN, offsetof(PtOptions, power_mgmt),   bool_values, "0 or 1" },
    { "permissive",   OPT_SPEC | OPT_WIRE | OPT_SHOWN, offsetof(PtOptions, permissive),   bool_values, "0 or 1" },
    { "map",          OPT_SPEC | OPT_SHOWN,            offsetof(PtOptions, map),          map_values,  "identity or least" },
    /* Qubes' name; in the wire form too, so a backend list keeps them. */
    { "strict_reset", OPT_SPEC | OPT_WIRE, offsetof(PtOptions, strict[PT_STRICT_RESET]), strict_values, "0 or 1" },
    { "strict_iommu", OPT_SPEC | OPT_WIRE, offsetof(PtOptions, strict[PT_STRICT_IOMMU]), strict_values, "0 or 1" },
    { "strict_intx",  OPT_SPEC | OPT_WIRE, offsetof(PtOptions, strict[PT_STRICT_INTX]),  strict_values, "0 or 1" },
    { "strict_page",  OPT_SPEC | OPT_WIRE, offsetof(PtOptions, strict[PT_STRICT_PAGE]),  strict_values, "0 or 1" },
    /* libxl writes it into the backend; the placement does not depend on it. */
    { "rdm_policy",   OPT_WIRE,            SIZE_MAX,                          rdm_values,  "strict or relaxed" },
};

#define N_OPTION_KEYS (sizeof(option_keys) / sizeof(option_keys[0]))

static const OptionKey *option_find(const char *key, size_t len, unsigned form)
{
    for (size_t i = 0; i < N_OPTION_KEYS; i++) {
        const OptionKey *k = &option_keys[i];
        if ((k->forms & form) && strlen(k->key) == len && !strncmp(k->key, key, len))
            return k;
    }
    return NULL;
}

/* Guards formatting against options built outside the parsers. */
static bool option_word_valid(const OptionKey *k, int v)
{
    for (int i = 0; k->values[i]; i++)
        if (i == v)
            return k->values[i][0] != '\0';
    return false;
}

static void option_names(unsigned form, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTION_KEYS && used < len; i++) {
        if (option_keys[i].forms & form)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                                     option_keys[i].key);
    }
}

static int option_value(const OptionKey *k, const char *val, size_t len)
{
    for (int i = 0; k->values[i]; i++)
        if (k->values[i][0] && strlen(k->values[i]) == len && !strncmp(k->values[i], val, len))
            return i;
    return -1;
}

/* One "key=value" item at s->pos, up to the next ',' or the end. */
static int parse_option(Scan *s, unsigned form, PtOptions *opts, unsigned *seen)
{
    size_t start = s->pos, end = start;
    char names[200];

    while (s->text[end] && s->text[end] != ',')
        end++;
    const char *eq = memchr(s->text + start, '=', end - start);
    if (end == start)
        return fail_at(s, start, "empty item between commas");
    if (is_function_item(s, start))
        return fail_at(s, start, "function '%.*s' after an option: list functions before "
                                 "options", (int)(end - start), s->text + start);
    if (!eq)
        return fail_at(s, start, "expected key=value, found '%.*s'", (int)(end - start),
                       s->text + start);
    size_t klen = (size_t)(eq - (s->text + start));
    const OptionKey *k = option_find(s->text + start, klen, form);
    if (!k) {
        option_names(form, names, sizeof(names));
        return fail_at(s, start, "unknown option '%.*s' (known: %s)", (int)klen,
                       s->text + start, names);
    }
    unsigned bit = 1u << (k - option_keys);
    if (*seen & bit)
        return fail_at(s, start, "option %s given twice", k->key);
    const char *val = eq + 1;
    size_t vlen = (size_t)(s->text + end - val);
    const char *at = memchr(val, '@', vlen);
    if (at)
        return fail_at(s, (size_t)(at - s->text), "'@' after an option: @VSLOT goes before the "
                       "options, e.g. 00:1d.0-2@7,map=least");
    int v = option_value(k, val, vlen);
    if (v < 0)
        return fail_at(s, (size_t)(val - s->text), "option %s=%.*s: the value must be %s",
                       k->key, (int)vlen, val, k->help);
    *seen |= bit;
    if (k->field != SIZE_MAX)
        *(int *)((char *)opts + k->field) = v;
    s->pos = end;
    return 0;
}

/* ",key=value,..." to the end of the text; s->pos is at a ',' or the end. */
static int parse_options(Scan *s, unsigned form, PtOptions *opts)
{
    unsigned seen = 0;

    while (!at_end(s)) {
        if (expect(s, ',', "an item") < 0 || parse_option(s, form, opts, &seen) < 0)
            return -1;
    }
    return 0;
}

PtOptions pt_options_unset(void)
{
    PtOptions o = { .msitranslate = PT_UNSET, .power_mgmt = PT_UNSET,
                    .permissive = PT_UNSET, .map = PT_MAP_DEFAULT, .strict = { 0 } };

    return o;
}

PtOptions pt_options_merge(PtOptions spec, PtOptions dflt)
{
    PtOptions o = spec;

    if (o.msitranslate == PT_UNSET)
        o.msitranslate = dflt.msitranslate;
    if (o.power_mgmt == PT_UNSET)
        o.power_mgmt = dflt.power_mgmt;
    if (o.permissive == PT_UNSET)
        o.permissive = dflt.permissive;
    if (o.map == PT_MAP_DEFAULT)
        o.map = dflt.map;
    for (int k = 0; k < PT_STRICT_RULES; k++)
        if (o.strict[k] == PT_STRICT_DEFAULT)
            o.strict[k] = dflt.strict[k];
    return o;
}

/* The first word a key takes: what an option not given means. */
static const char *option_default_word(const OptionKey *k)
{
    for (int i = 0; k->values[i]; i++)
        if (k->values[i][0] != '\0')
            return k->values[i];
    return "?";
}

/* key=word for each option that is set, ","-separated; applied: for each
 * shown option, one not given as what it means, " "-separated. */
static void format_options(const PtOptions *opts, bool applied, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTION_KEYS && used < len; i++) {
        const OptionKey *k = &option_keys[i];
        if (applied ? !(k->forms & OPT_SHOWN) : k->field == SIZE_MAX)
            continue;
        int v = *(const int *)((const char *)opts + k->field);
        const char *word = option_word_valid(k, v) ? k->values[v]
                           : applied ? option_default_word(k) : NULL;
        if (word)
            used += (size_t)snprintf(buf + used, len - used, "%s%s=%s",
                                     used ? (applied ? " " : ",") : "", k->key, word);
    }
}

void pt_options_format(const PtOptions *opts, char *buf, size_t len)
{
    format_options(opts, false, buf, len);
}

void pt_options_format_applied(const PtOptions *opts, char *buf, size_t len)
{
    format_options(opts, true, buf, len);
}

/* ---- the function list ---- */

/* Does the item at pos belong to the function list (F, F-F, F=V)? */
static bool is_function_item(const Scan *s, size_t pos)
{
    const char *p = s->text + pos;
    size_t n = hex_run(s, pos);

    if (n == 0)
        return false;
    /* "F=V" has a one-digit key; "map=least" starts with a letter run. */
    if (p[n] == '=')
        return n == 1;
    return p[n] == '\0' || p[n] == ',' || p[n] == '@' || p[n] == '-';
}

static int add_function(Scan *s, size_t pos, PtSpec *spec, unsigned f)
{
    for (int i = 0; i < spec->nfuncs; i++)
        if (spec->funcs[i] == f)
            return fail_at(s, pos, "function %u listed twice", f);
    spec->funcs[spec->nfuncs++] = (uint8_t)f;
    return 0;
}

static int parse_range(Scan *s, size_t pos, unsigned lo, PtSpec *spec)
{
    unsigned hi;

    s->pos++;   /* '-' */
    size_t hi_pos = s->pos;
    if (hex_field(s, &F_FUNC, &hi) < 0)
        return -1;
    if (hi < lo)
        return fail_at(s, pos, "range %u-%u is descending", lo, hi);
    for (unsigned f = lo + 1; f <= hi; f++)
        if (add_function(s, hi_pos, spec, f) < 0)
            return -1;
    return 0;
}

static int parse_pair(Scan *s, PtSpec *spec, bool *has_pairs)
{
    unsigned v;
    size_t pos;

    s->pos++;   /* '=' */
    pos = s->pos;
    if (hex_field(s, &F_VFUNC, &v) < 0)
        return -1;
    for (int i = 0; i < spec->nfuncs - 1; i++)
        if (spec->vfuncs[i] == v)
            return fail_at(s, pos, "virtual function %u given twice", v);
    spec->vfuncs[spec->nfuncs - 1] = (uint8_t)v;
    *has_pairs = true;
    return 0;
}

/* One item: F, F-F or F=V.  Pairs and plain functions do not mix. */
static int parse_item(Scan *s, PtSpec *spec, int index, bool *has_pairs)
{
    size_t pos = s->pos;
    unsigned f;

    if (hex_field(s, &F_FUNC, &f) < 0 || add_function(s, pos, spec, f) < 0)
        return -1;
    bool pair = peek(s) == '=';
    if (index > 0 && pair != *has_pairs)
        return fail_at(s, pos, "mixed F=V pairs and plain functions: map every function "
                               "or none");
    if (pair)
        return parse_pair(s, spec, has_pairs);
    if (peek(s) == '-') {
        if (*has_pairs)
            return fail_at(s, s->pos, "a range cannot be mapped with F=V");
        spec->multi_form = true;
        return parse_range(s, pos, f, spec);
    }
    return 0;
}

/* FUNCS, stopping before '@', before the first option, or at the end. */
static int parse_functions(Scan *s, PtSpec *spec)
{
    bool has_pairs = false;

    if (peek(s) == '*') {
        s->pos++;
        spec->all_funcs = spec->multi_form = true;
        if (peek(s) == ',' && is_function_item(s, s->pos + 1))
            return fail_at(s, s->pos + 1, "'*' already names every function");
        return 0;
    }
    for (int index = 0;; index++) {
        if (parse_item(s, spec, index, &has_pairs) < 0)
            return -1;
        if (peek(s) != ',' || !is_function_item(s, s->pos + 1))
            break;
        s->pos++;
        spec->multi_form = true;
    }
    spec->explicit_map = has_pairs;
    spec->multi_form |= has_pairs;
    return 0;
}

/* '@VSLOT[.VFUNC]' */
static int parse_vslot(Scan *s, PtSpec *spec, SpecMarks *marks)
{
    unsigned v;

    marks->at = s->pos + 1;
    s->pos++;
    if (hex_field(s, &F_VSLOT, &v) < 0)
        return -1;
    spec->vslot = (int)v;
    if (peek(s) != '.')
        return 0;
    if (spec->multi_form)
        return fail_at(s, s->pos, "a virtual function (@SS.F) can only be given for a "
                                  "single function");
    s->pos++;
    if (hex_field(s, &F_VFUNC, &v) < 0)
        return -1;
    spec->vfunc = (int)v;
    return 0;
}

static int check_explicit(Scan *s, const PtSpec *spec)
{
    if (!spec->explicit_map)
        return 0;
    if (spec->opts.map != PT_MAP_DEFAULT)
        return fail_plain(s->err, s->text, "map= does not apply to explicit F=V pairs");
    for (int i = 0; i < spec->nfuncs; i++)
        if (spec->vfuncs[i] == 0)
            return 0;
    return fail_plain(s->err, s->text, "virtual device does not include virtual function 0");
}

static int parse_spec(const char *text, PtSpec *out, PtError *err, SpecMarks *marks)
{
    Scan s = { .text = text ? text : "", .pos = 0, .err = err };
    PtSpec spec = { .vslot = PT_UNSET, .vfunc = PT_UNSET, .opts = pt_options_unset() };
    char buf[8];

    *marks = (SpecMarks){ 0 };
    if (at_end(&s))
        return fail_plain(err, "\"\"", "empty PCI device spec");
    if (strlen(s.text) > 200)
        return fail_plain(err, s.text, "spec longer than 200 characters");
    if (parse_device(&s, &spec.domain, &spec.bus, &spec.dev) < 0 ||
        expect(&s, '.', "the slot number") < 0 || parse_functions(&s, &spec) < 0)
        return -1;
    if (peek(&s) == '@' && parse_vslot(&s, &spec, marks) < 0)
        return -1;
    if (peek(&s) == ',')
        marks->first_opt = s.pos + 2;
    else if (!at_end(&s))
        return fail_at(&s, s.pos, "unexpected %s", shown(&s, s.pos, buf));
    if (parse_options(&s, OPT_SPEC, &spec.opts) < 0 || check_explicit(&s, &spec) < 0)
        return -1;
    *out = spec;
    return 0;
}

int pt_spec_parse(const char *text, PtSpec *spec, PtError *err)
{
    SpecMarks marks;

    return parse_spec(text, spec, err, &marks);
}

int pt_spec_parse_unplug(const char *text, PtSpec *spec, PtError *err)
{
    SpecMarks marks;
    PtSpec parsed;

    if (parse_spec(text, &parsed, err, &marks) < 0)
        return -1;
    if (marks.at)
        return fail_plain(err, text, "detach takes no @VSLOT: the whole guest slot is "
                                     "removed (at column %zu)", marks.at);
    if (marks.first_opt)
        return fail_plain(err, text, "detach takes no options (at column %zu)",
                          marks.first_opt);
    *spec = parsed;
    return 0;
}

/* ---- expansion against the host ---- */

static void list_funcs(uint8_t mask, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int f = 0; f < PT_FUNCS_PER_SLOT && used < len; f++)
        if (mask & (1u << f))
            used += (size_t)snprintf(buf + used, len - used, "%s%d", used ? "," : "", f);
}

int pt_spec_expand(const PtSpec *spec, const char *text, uint8_t host_funcs,
                   PtRequest *out, PtError *err)
{
    PtRequest req = { .domain = spec->domain, .bus = spec->bus, .dev = spec->dev,
                      .vslot = spec->vslot, .opts = spec->opts };
    char have[24];

    if (!host_funcs)
        return fail_plain(err, text, "no host device %04x:%02x:%02x", spec->domain,
                          spec->bus, spec->dev);
    list_funcs(host_funcs, have, sizeof(have));
    if (spec->all_funcs) {
        for (int f = 0; f < PT_FUNCS_PER_SLOT; f++)
            if (host_funcs & (1u << f))
                req.pfunc[req.nfuncs++] = (uint8_t)f;
    } else {
        for (int i = 0; i < spec->nfuncs; i++) {
            if (!(host_funcs & (1u << spec->funcs[i])))
                return fail_plain(err, text, "function %u is not present on the host "
                                  "(%04x:%02x:%02x has functions %s)", spec->funcs[i],
                                  spec->domain, spec->bus, spec->dev, have);
            req.pfunc[req.nfuncs++] = spec->funcs[i];
        }
    }
    for (int i = 0; i < req.nfuncs; i++)
        req.vfunc[i] = spec->explicit_map ? spec->vfuncs[i] : PT_UNSET;
    if (req.nfuncs == 1 && !spec->explicit_map)
        req.vfunc[0] = spec->vfunc;
    req.multi = req.nfuncs > 1;
    *out = req;
    return 0;
}

bool pt_vslot_parse(const char *text, unsigned *slot)
{
    char *end;

    if (!isxdigit((unsigned char)text[0]) || strchr(text, ':'))
        return false;
    unsigned long v = strtoul(text, &end, 16);
    if (*end || v >= PT_SLOTS)
        return false;
    *slot = (unsigned)v;
    return true;
}

const char *pt_bdf_format(PtBdf bdf, char *buf, size_t len)
{
    snprintf(buf, len, "%04x:%02x:%02x.%x", bdf.domain, bdf.bus, bdf.dev, bdf.func);
    return buf;
}

/* ---- the per-function wire form ---- */

int pt_wire_parse(const char *text, PtWire *out, PtError *err)
{
    Scan s = { .text = text ? text : "", .pos = 0, .err = err };
    PtWire w = { .opts = pt_options_unset() };
    unsigned f, v;
    char buf[8];

    if (at_end(&s))
        return fail_plain(err, "\"\"", "empty device parameter");
    if (parse_device(&s, &w.bdf.domain, &w.bdf.bus, &w.bdf.dev) < 0 ||
        expect(&s, '.', "the slot number") < 0 || hex_field(&s, &F_FUNC, &f) < 0)
        return -1;
    w.bdf.func = (uint8_t)f;
    if (peek(&s) == '@') {
        s.pos++;
        size_t pos = s.pos;
        if (hex_field(&s, &F_VDEVFN, &v) < 0)
            return -1;
        w.has_vdevfn = true;
        w.auto_slot = v & 0x100;
        if (w.auto_slot && (v & 0xf8))
            return fail_at(&s, pos, "vdevfn %x: the automatic-slot flag 100 takes only "
                                    "a function (100-107)", v);
        w.vdevfn = (uint8_t)(v & 0xff);
    }
    if (peek(&s) != ',' && !at_end(&s))
        return fail_at(&s, s.pos, "unexpected %s", shown(&s, s.pos, buf));
    if (parse_options(&s, OPT_WIRE, &w.opts) < 0)
        return -1;
    *out = w;
    return 0;
}

void pt_wire_format(const PtWire *w, char *buf, size_t len)
{
    char bdf[16], opts[128];
    char at[8] = "";

    pt_bdf_format(w->bdf, bdf, sizeof(bdf));
    if (w->has_vdevfn)
        snprintf(at, sizeof(at), "@%02x", w->auto_slot ? 0x100u | (w->vdevfn & 7u)
                                                       : (unsigned)w->vdevfn);
    pt_options_format(&w->opts, opts, sizeof(opts));
    snprintf(buf, len, "%s%s%s%s", bdf, at, opts[0] ? "," : "", opts);
}

/* ---- small shared parsers ---- */

void pt_error_set(PtError *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int pt_parse_uint(const char *text, int base, unsigned long max, unsigned long *out)
{
    char *end;

    if (!*text || strlen(text) > 10)
        return -EINVAL;
    for (const char *p = text; *p; p++)
        if (!(base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)))
            return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(text, &end, base);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "WHAT: why", or just why. */
static int refuse_named(const char *what, PtError *err, const PtError *why)
{
    if (what)
        pt_error_set(err, "%s: %.250s", what, why->msg);
    else
        *err = *why;
    return -EINVAL;
}

int pt_bdf_parse_plain(const char *what, const char *text, PtBdf *out, PtError *err)
{
    PtWire w;
    PtError e;

    if (pt_wire_parse(text, &w, &e) < 0)
        return refuse_named(what, err, &e);
    if (w.has_vdevfn || strchr(text, ',')) {
        pt_error_set(&e, "'%.40s': expected a plain DDDD:BB:SS.F", text);
        return refuse_named(what, err, &e);
    }
    *out = w.bdf;
    return 0;
}

int pt_options_parse(const char *what, const char *text, PtOptions *opts, PtError *err)
{
    char wire[200];
    PtWire w;
    PtError e;

    if (!*text) {
        *opts = pt_options_unset();
        return 0;
    }
    snprintf(wire, sizeof(wire), "0000:00:00.0,%.180s", text);
    if (strlen(text) > 180 || strchr(text, '@') || pt_wire_parse(wire, &w, &e) < 0) {
        pt_error_set(&e, "'%.60s': not a list of options (msitranslate, power_mgmt, "
                         "permissive, strict_reset, strict_iommu, strict_intx, strict_page, "
                         "rdm_policy)", text);
        return refuse_named(what, err, &e);
    }
    *opts = w.opts;
    return 0;
}
