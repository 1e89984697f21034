/*
 * Differential test of the notation parser against xl's own,
 * libxlutil's xlu_pci_parse_spec_string (Xen 4.17), on the subset xl knows:
 *
 *   [DDDD:]BB:SS.(F|*)[@VSLOT][,msitranslate=0|1][,power_mgmt=0|1][,permissive=0|1]
 *
 * Generated strings, valid and spoiled, must get the same verdict and, when
 * accepted, the same fields.  Where xl is laxer by design (sscanf %x, atoi,
 * extra keys) the inputs stay out of the generator and are listed instead in
 * a table with both results, which is checked too.
 *
 * XL_ORACLE_SEED=<n> replays a run; XL_ORACLE_COUNT=<n> changes its size.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <libxl.h>
#include <libxlutil.h>

#include "pt-notation.h"
#include "xl-domain.h"

#define DEFAULT_SEED  0x5eed2024u
#define DEFAULT_COUNT 4000u

/* xl fills the three options with 0 when they are not written (measured). */
#define XL_OPT_DEFAULT 0

/* One parse, either side, in common terms. */
typedef struct Outcome {
    bool ok;
    unsigned domain, bus, dev, func;
    bool all_funcs;
    int nfuncs;             /* 0 with all_funcs */
    bool vslot_set;         /* ours only: xl has no "unset" */
    int vslot;
    int msitranslate, power_mgmt, permissive;
} Outcome;

/* ---- xl's side ---- */

static XLU_Config *xl_cfg(void)
{
    static XLU_Config *cfg;

    if (!cfg) {
        /* xl reports unknown keys on the stream: keep the TAP output clean. */
        FILE *sink = fopen("/dev/null", "w");
        g_assert_nonnull(sink);
        cfg = xlu_cfg_init(sink, "xl-oracle");
        g_assert_nonnull(cfg);
    }
    return cfg;
}

/*
 * xl 4.17's parse_bdf uses sscanf's %n even when the '.' after the slot did
 * not match, so it reads an uninitialised int (valgrind confirms).  Its
 * verdict on such text is undefined, so xl is not asked: this runs the same
 * two scans with n preset.
 */
static bool bdf_reads_stale_n(const char *text)
{
    unsigned colons = 0, a, b, c;
    int n = -1;
    bool matched;

    for (const char *p = text; isxdigit((unsigned char)*p) || *p == ':'; p++)
        colons += *p == ':';
    if (colons == 1)
        matched = sscanf(text, "%x:%x.%n", &a, &b, &n) == 2;
    else if (colons == 2)
        matched = sscanf(text, "%x:%x:%x.%n", &a, &b, &c, &n) == 3;
    else
        return false;
    return matched && n < 0;
}

/* The positional BDF and any "bdf=" value go through that scan. */
static bool xl_undefined(const char *text)
{
    if (bdf_reads_stale_n(text))
        return true;
    for (const char *p = strstr(text, "bdf="); p; p = strstr(p + 1, "bdf=")) {
        g_autofree char *val = g_strndup(p + 4, strcspn(p + 4, ","));
        if ((p == text || p[-1] == ',') && bdf_reads_stale_n(val))
            return true;
    }
    return false;
}

static void xl_fill(const libxl_device_pci *pci, Outcome *out)
{
    out->domain = (unsigned)pci->domain;
    out->bus = pci->bus;
    out->dev = pci->dev;
    out->func = pci->func;
    out->all_funcs = pci->vfunc_mask == LIBXL_PCI_FUNC_ALL;
    out->nfuncs = out->all_funcs ? 0 : pci->vfunc_mask == 1 ? 1 : -1;
    /* The parser only writes whole slots: function bits would be news. */
    out->vslot = pci->vdevfn & 7 ? -1 : (int)(pci->vdevfn >> 3);
    out->msitranslate = pci->msitranslate;
    out->power_mgmt = pci->power_mgmt;
    out->permissive = pci->permissive;
}

static void xl_parse(const char *text, Outcome *out)
{
    libxl_device_pci pci;

    *out = (Outcome){ 0 };
    libxl_device_pci_init(&pci);
    out->ok = xlu_pci_parse_spec_string(xl_cfg(), &pci, text) == 0;
    if (out->ok)
        xl_fill(&pci, out);
    libxl_device_pci_dispose(&pci);
}

/* ---- our side ---- */

static int opt_or_xl_default(int v)
{
    return v == PT_UNSET ? XL_OPT_DEFAULT : v;
}

static void ours_parse(const char *text, Outcome *out)
{
    PtSpec spec;
    PtError err;

    *out = (Outcome){ 0 };
    out->ok = pt_spec_parse(text, &spec, &err) == 0;
    if (!out->ok)
        return;
    out->domain = spec.domain;
    out->bus = spec.bus;
    out->dev = spec.dev;
    out->all_funcs = spec.all_funcs;
    out->func = spec.all_funcs ? 0 : spec.funcs[0];   /* xl's '*' has func 0 */
    /* A form xl lacks (vfunc, F=V, map=) shows up as a difference. */
    out->nfuncs = spec.explicit_map || spec.vfunc != PT_UNSET ||
                  spec.opts.map != PT_MAP_DEFAULT ? -2 : spec.nfuncs;
    out->vslot_set = spec.vslot != PT_UNSET;
    out->vslot = out->vslot_set ? spec.vslot : 0;
    out->msitranslate = opt_or_xl_default(spec.opts.msitranslate);
    out->power_mgmt = opt_or_xl_default(spec.opts.power_mgmt);
    out->permissive = opt_or_xl_default(spec.opts.permissive);
}

static void outcome_format(const Outcome *o, GString *s)
{
    if (!o->ok) {
        g_string_append(s, "reject");
        return;
    }
    g_string_append_printf(s, "%04x:%02x:%02x.", o->domain, o->bus, o->dev);
    if (o->all_funcs)
        g_string_append_c(s, '*');
    else
        g_string_append_printf(s, "%x", o->func);
    if (o->nfuncs > 1 || o->nfuncs < 0)
        g_string_append_printf(s, "(nfuncs %d)", o->nfuncs);
    g_string_append_printf(s, "@%02x msi=%d pm=%d perm=%d", (unsigned)o->vslot,
                           o->msitranslate, o->power_mgmt, o->permissive);
}

static bool outcome_equal(const Outcome *a, const Outcome *b)
{
    if (a->ok != b->ok)
        return false;
    return !a->ok ||
           (a->domain == b->domain && a->bus == b->bus && a->dev == b->dev &&
            a->func == b->func && a->all_funcs == b->all_funcs &&
            a->nfuncs == b->nfuncs && a->vslot == b->vslot &&
            a->msitranslate == b->msitranslate && a->power_mgmt == b->power_mgmt &&
            a->permissive == b->permissive);
}

/* Same verdict and fields; our unset vslot only stands for "no '@' written". */
static bool agree(const char *text, const Outcome *xl, const Outcome *ours, GString *why)
{
    bool same = outcome_equal(xl, ours);

    if (same && ours->ok && !ours->vslot_set && strchr(text, '@'))
        same = false;
    if (!same) {
        g_string_append_printf(why, "\"%s\": xl ", text);
        outcome_format(xl, why);
        g_string_append(why, ", ours ");
        outcome_format(ours, why);
    }
    return same;
}

/* ---- the generator ---- */

typedef struct Rng {
    guint64 s;
} Rng;

/* splitmix64: tiny, and the same sequence everywhere for a given seed. */
static guint64 rng_next(Rng *r)
{
    guint64 z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned pick(Rng *r, unsigned n)
{
    return (unsigned)(rng_next(r) % n);
}

static bool chance(Rng *r, unsigned percent)
{
    return pick(r, 100) < percent;
}

/* A spec kept in parts so that one part can be spoiled. */
enum { P_DOMAIN, P_BUS, P_SLOT, P_FUNC, P_VSLOT, P_NUMBERS };
enum { S_DOMAIN, S_BUS, S_DOT, S_AT, S_SEPS };
#define MAX_OPTS 3

typedef struct Draft {
    char num[P_NUMBERS][12];
    bool has_domain, has_vslot;
    char sep[S_SEPS][4];
    char opt[MAX_OPTS][32];
    int nopts;
} Draft;

/* value in hex, width digits (zero padded), random letter case. */
static void hex_text(Rng *r, char *buf, size_t len, unsigned value, int width)
{
    snprintf(buf, len, "%0*x", width, value);
    for (char *p = buf; *p; p++)
        if (isalpha((unsigned char)*p) && chance(r, 30))
            *p = (char)toupper((unsigned char)*p);
}

static int digits_of(unsigned v)
{
    int n = 1;

    while (v >>= 4)
        n++;
    return n;
}

/* A valid number: our widths are xl's too; wider runs are a divergence. */
static void valid_number(Rng *r, char *buf, size_t len, unsigned max, int max_width)
{
    unsigned v = chance(r, 30) ? 0 : pick(r, max + 1);
    int lo = digits_of(v);

    hex_text(r, buf, len, v, lo + (int)pick(r, (unsigned)(max_width - lo + 1)));
}

static const char *const opt_keys[] = { "msitranslate", "power_mgmt", "permissive" };

static void valid_options(Rng *r, Draft *d)
{
    int order[MAX_OPTS] = { 0, 1, 2 };

    for (int i = MAX_OPTS - 1; i > 0; i--) {
        int j = (int)pick(r, (unsigned)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    d->nopts = (int)pick(r, MAX_OPTS + 1);
    for (int i = 0; i < d->nopts; i++)
        snprintf(d->opt[i], sizeof(d->opt[i]), "%s=%u", opt_keys[order[i]], pick(r, 2));
}

static void valid_draft(Rng *r, Draft *d)
{
    *d = (Draft){ .has_domain = chance(r, 50), .has_vslot = chance(r, 50) };
    valid_number(r, d->num[P_DOMAIN], sizeof(d->num[0]), 0xffff, 4);
    valid_number(r, d->num[P_BUS], sizeof(d->num[0]), 0xff, 2);
    valid_number(r, d->num[P_SLOT], sizeof(d->num[0]), 0x1f, 2);
    valid_number(r, d->num[P_VSLOT], sizeof(d->num[0]), 0x1f, 2);
    if (chance(r, 15))
        strcpy(d->num[P_FUNC], "*");
    else
        valid_number(r, d->num[P_FUNC], sizeof(d->num[0]), 7, 1);
    strcpy(d->sep[S_DOMAIN], ":");
    strcpy(d->sep[S_BUS], ":");
    strcpy(d->sep[S_DOT], ".");
    strcpy(d->sep[S_AT], "@");
    valid_options(r, d);
}

static void draft_render(const Draft *d, GString *s)
{
    g_string_truncate(s, 0);
    if (d->has_domain)
        g_string_append_printf(s, "%s%s", d->num[P_DOMAIN], d->sep[S_DOMAIN]);
    g_string_append_printf(s, "%s%s%s%s%s", d->num[P_BUS], d->sep[S_BUS],
                           d->num[P_SLOT], d->sep[S_DOT], d->num[P_FUNC]);
    if (d->has_vslot)
        g_string_append_printf(s, "%s%s", d->sep[S_AT], d->num[P_VSLOT]);
    for (int i = 0; i < d->nopts; i++)
        g_string_append_printf(s, ",%s", d->opt[i]);
}

/* A numeric part that is present in the rendering. */
static int present_number(Rng *r, const Draft *d)
{
    for (;;) {
        int p = (int)pick(r, P_NUMBERS);
        if ((p != P_DOMAIN || d->has_domain) && (p != P_VSLOT || d->has_vslot))
            return p;
    }
}

/*
 * The spoilers.  Each makes one kind of mistake and stays clear of what xl
 * reads loosely: no whitespace, 'x', sign, ',' or '=' is ever inserted, and
 * option values stay 0|1 (xl takes any text there through atoi).
 */
static const char NOT_HEX[] = "ghijklmnopqrstuvwyzGHKZ";
static const char STRAY[] = "gz#/;_!*:@G%&~";

static void spoil_bad_hex(Rng *r, Draft *d, GString *s)
{
    char *num = d->num[present_number(r, d)];
    size_t n = strlen(num);

    num[pick(r, (unsigned)n)] = NOT_HEX[pick(r, sizeof(NOT_HEX) - 1)];
    draft_render(d, s);
}

/* Out of range by value, in xl's digit widths too. */
static void spoil_range(Rng *r, Draft *d, GString *s)
{
    size_t len = sizeof(d->num[0]);

    switch (pick(r, 5)) {
    case 0: hex_text(r, d->num[P_FUNC], len, 8 + pick(r, 8), 1); break;
    case 1: hex_text(r, d->num[P_FUNC], len, 0x10 + pick(r, 0xf0), 2); break;
    case 2: hex_text(r, d->num[P_SLOT], len, 0x20 + pick(r, 0xe0), 2); break;
    case 3: hex_text(r, d->num[P_BUS], len, 0x100 + pick(r, 0xf00), 3); break;
    default:
        d->has_domain = true;
        hex_text(r, d->num[P_DOMAIN], len, 0x10000 + pick(r, 0xf0000), 5);
        break;
    }
    draft_render(d, s);
}

static void spoil_vslot(Rng *r, Draft *d, GString *s)
{
    size_t len = sizeof(d->num[0]);

    d->has_vslot = true;
    if (chance(r, 70))
        hex_text(r, d->num[P_VSLOT], len, 0x20 + pick(r, 0xe0), 2);
    else
        hex_text(r, d->num[P_VSLOT], len, 0x100 + pick(r, 0xf00), 3);
    draft_render(d, s);
}

/*
 * A number or the '.' left out.  Other separators are not: without them two
 * digit runs merge into one too long for us, which xl reads (a divergence).
 */
static void spoil_missing(Rng *r, Draft *d, GString *s)
{
    unsigned what = pick(r, P_NUMBERS + 1);

    if (what < P_NUMBERS) {
        d->num[what][0] = '\0';
        d->has_vslot |= what == P_VSLOT;
        d->has_domain |= what == P_DOMAIN;
    } else {
        d->sep[S_DOT][0] = '\0';
    }
    draft_render(d, s);
}

/*
 * '.' for ':' and the like; the first option comma may be hit too.  No '-':
 * "1d.0-7" is our range.
 */
static void spoil_separator(Rng *r, Draft *d, GString *s)
{
    static const char seps[] = ".:;/_#@!";
    unsigned which = pick(r, S_SEPS + 1);
    char c;

    if (which == S_SEPS && d->nopts == 0)
        which = S_DOT;
    char *sep = which < S_SEPS ? d->sep[which] : NULL;
    do
        c = seps[pick(r, sizeof(seps) - 1)];
    while (sep && c == sep[0]);
    if (sep) {
        sep[0] = c;
        sep[1] = '\0';
        d->has_vslot |= which == S_AT;
        d->has_domain |= which == S_DOMAIN;
        draft_render(d, s);
        return;
    }
    draft_render(d, s);
    s->str[strcspn(s->str, ",")] = c;
}

static void spoil_double_delimiter(Rng *r, Draft *d, GString *s)
{
    unsigned which = pick(r, S_SEPS + 1);

    if (which == S_SEPS) {
        if (d->nopts == 0)
            valid_options(r, d);
        if (d->nopts > 0) {
            draft_render(d, s);
            g_string_insert_c(s, (gssize)strcspn(s->str, ","), ',');
            return;
        }
        which = S_BUS;
    }
    d->has_vslot |= which == S_AT;
    d->has_domain |= which == S_DOMAIN;
    d->sep[which][1] = d->sep[which][0];
    d->sep[which][2] = '\0';
    draft_render(d, s);
}

/* Cut anywhere except right after ',' or '=' (xl takes both as complete). */
static void spoil_truncate(Rng *r, Draft *d, GString *s)
{
    draft_render(d, s);
    for (int tries = 0; tries < 16; tries++) {
        size_t at = pick(r, (unsigned)s->len);
        if (at == 0 || (s->str[at - 1] != ',' && s->str[at - 1] != '=')) {
            g_string_truncate(s, at);
            return;
        }
    }
    g_string_truncate(s, 0);
}

/* A stray character in the BDF part or in an option key. */
static void spoil_stray(Rng *r, Draft *d, GString *s)
{
    draft_render(d, s);
    size_t bdf_end = strcspn(s->str, ",");
    size_t at;

    if (d->nopts > 0 && chance(r, 30)) {
        size_t key_start = bdf_end + 1;
        at = key_start + pick(r, (unsigned)strcspn(s->str + key_start, "=") + 1);
    } else {
        at = pick(r, (unsigned)bdf_end + 1);
    }
    g_string_insert_c(s, (gssize)at, STRAY[pick(r, sizeof(STRAY) - 1)]);
}

static void spoil_key(Rng *r, Draft *d, GString *s)
{
    /* Close to the real keys, but none that xl or we know. */
    static const char *const bad_keys[] = {
        "foo", "msi", "msitranslat", "msitranslatee", "MSITRANSLATE", "power-mgmt",
        "powermgmt", "Permissive", "permissive_", "", "_", "z", "msi translate",
    };
    static const char *const no_value[] = { "msitranslate", "power_mgmt1", "permissive:1" };

    if (d->nopts == 0)
        d->nopts = 1;
    int i = (int)pick(r, (unsigned)d->nopts);
    if (chance(r, 75))
        snprintf(d->opt[i], sizeof(d->opt[i]), "%s=%u",
                 bad_keys[pick(r, G_N_ELEMENTS(bad_keys))], pick(r, 2));
    else
        snprintf(d->opt[i], sizeof(d->opt[i]), "%s", no_value[pick(r, 3)]);
    draft_render(d, s);
}

static void spoil_empty(Rng *r, Draft *d, GString *s)
{
    static const char *const texts[] = { "", ",", "@", ".", ":", "*", "@7" };

    (void)d;
    g_string_assign(s, texts[pick(r, G_N_ELEMENTS(texts))]);
}

typedef void (*Spoiler)(Rng *r, Draft *d, GString *s);

static const Spoiler spoilers[] = {
    spoil_bad_hex, spoil_range, spoil_vslot, spoil_missing, spoil_separator,
    spoil_double_delimiter, spoil_truncate, spoil_stray, spoil_key, spoil_empty,
};

static void generate(Rng *r, GString *s)
{
    Draft d;

    valid_draft(r, &d);
    if (chance(r, 50))
        draft_render(&d, s);
    else
        spoilers[pick(r, G_N_ELEMENTS(spoilers))](r, &d, s);
}

/* ---- test cases ---- */

static guint64 env_number(const char *name, guint64 dflt)
{
    const char *v = g_getenv(name);

    return v && *v ? g_ascii_strtoull(v, NULL, 0) : dflt;
}

typedef struct Tally {
    unsigned compared, accepted, rejected, undefined, disagreed;
} Tally;

static void compare_one(const char *text, Tally *t)
{
    Outcome xl, ours;
    g_autoptr(GString) why = g_string_new(NULL);

    ours_parse(text, &ours);
    if (xl_undefined(text)) {
        /* Whatever xl does there, a spec without its '.' is no spec. */
        if (ours.ok)
            g_test_message("ours accepts \"%s\", where xl is undefined", text);
        t->disagreed += ours.ok;
        t->undefined++;
        return;
    }
    xl_parse(text, &xl);
    t->compared++;
    if (!agree(text, &xl, &ours, why)) {
        if (t->disagreed++ < 40)
            g_test_message("disagree: %s", why->str);
        return;
    }
    if (ours.ok)
        t->accepted++;
    else
        t->rejected++;
}

static void test_generated(void)
{
    guint64 seed = env_number("XL_ORACLE_SEED", DEFAULT_SEED);
    guint64 count = env_number("XL_ORACLE_COUNT", DEFAULT_COUNT);
    Rng r = { seed };
    Tally t = { 0 };
    g_autoptr(GString) s = g_string_new(NULL);

    g_test_message("seed %#" G_GINT64_MODIFIER "x, %" G_GUINT64_FORMAT
                   " strings (XL_ORACLE_SEED / XL_ORACLE_COUNT replay)", seed, count);
    for (guint64 i = 0; i < count; i++) {
        generate(&r, s);
        compare_one(s->str, &t);
    }
    g_test_message("compared %u: %u both accept, %u both reject, %u disagree; "
                   "%u not asked (xl undefined)", t.compared, t.accepted, t.rejected,
                   t.disagreed, t.undefined);
    g_assert_cmpuint(t.disagreed, ==, 0);
    g_assert_cmpuint(t.compared, >=, 500);
    g_assert_cmpuint(t.accepted, >=, 150);
    g_assert_cmpuint(t.rejected, >=, 150);
}

/* The examples measured in the reference, through the same comparison. */
static void test_reference_examples(void)
{
    static const char *const texts[] = {
        "0000:00:1d.0", "00:1d.*@7", "00:1d.1@07,msitranslate=1,power_mgmt=1",
        "00:1d.0-2", "00:1d.0,3,5,7", "0000:00:1d.1@7.2", "zz:1d.0", "00:1d.8",
        "00:20.0", "00:1d.3@8.3,permissive=1",
    };
    /* The extended forms among them are ours alone: see the divergence table. */
    static const bool ours_only[G_N_ELEMENTS(texts)] = {
        [3] = true, [4] = true, [5] = true, [9] = true,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        Outcome xl, ours;
        g_autoptr(GString) why = g_string_new(NULL);

        xl_parse(texts[i], &xl);
        ours_parse(texts[i], &ours);
        if (ours_only[i])
            g_assert_true(!xl.ok && ours.ok);
        else if (!agree(texts[i], &xl, &ours, why))
            g_error("%s", why->str);
    }
}

/* What xl fills in when nothing is written: the defaults compared against. */
static void test_xl_defaults(void)
{
    libxl_device_pci pci;

    libxl_device_pci_init(&pci);
    g_assert_cmpint(xlu_pci_parse_spec_string(xl_cfg(), &pci, "00:1d.0"), ==, 0);
    g_assert_cmpint(pci.msitranslate, ==, XL_OPT_DEFAULT);
    g_assert_cmpint(pci.power_mgmt, ==, XL_OPT_DEFAULT);
    g_assert_cmpint(pci.permissive, ==, XL_OPT_DEFAULT);
    g_assert_cmpuint(pci.vdevfn, ==, 0);
    g_assert_cmpuint(pci.vfunc_mask, ==, 1);
    g_assert_false(pci.seize);
    g_assert_null(pci.name);
    libxl_device_pci_dispose(&pci);
}

/* ---- the documented divergences ---- */

typedef enum Verdict { REJECT, ACCEPT, UNDEFINED } Verdict;

typedef struct Divergence {
    const char *text;
    Verdict xl;
    const char *xl_got;     /* outcome_format of xl's result when it accepts */
    Verdict ours;
    const char *why;
} Divergence;

#define DFLT "@00 msi=0 pm=0 perm=0"

static const Divergence divergences[] = {
    /* xl is lax where it scans numbers with sscanf %x */
    { "00:0x1d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "%x takes a 0x prefix" },
    { "00:1d.0x7", ACCEPT, "0000:00:1d.7" DFLT, REJECT, "%x takes a 0x prefix" },
    { "00:1d.0@0x7", ACCEPT, "0000:00:1d.0@07 msi=0 pm=0 perm=0", REJECT, "%x takes a 0x prefix" },
    { "00:+1d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "%x takes a sign" },
    { "00:1d.-0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "%x takes a sign" },
    { "00:1d.0@+7", ACCEPT, "0000:00:1d.0@07 msi=0 pm=0 perm=0", REJECT, "%x takes a sign" },
    { "00: 1d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "%x skips white space" },
    { "00:1d. 0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "%x skips white space" },
    { "00:1d.0@ 7", ACCEPT, "0000:00:1d.0@07 msi=0 pm=0 perm=0", REJECT, "%x skips white space" },
    { "00000:00:1d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "digit runs are unbounded: domain has 4" },
    { "000:1d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "digit runs are unbounded: bus has 2" },
    { "00:01d.0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "digit runs are unbounded: slot has 2" },
    { "00:1d.00", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "digit runs are unbounded: function has 1" },
    { "00:1d.0@007", ACCEPT, "0000:00:1d.0@07 msi=0 pm=0 perm=0", REJECT, "digit runs are unbounded: vslot has 2" },
    /* option values go through atoi, and empty items are skipped */
    { "00:1d.0,msitranslate=2", ACCEPT, "0000:00:1d.0@00 msi=1 pm=0 perm=0", REJECT, "atoi: any non-zero is on; we take 0|1" },
    { "00:1d.0,msitranslate=yes", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "atoi: a word is 0, silently" },
    { "00:1d.0,power_mgmt=", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "atoi: empty value is 0" },
    { "00:1d.0,permissive=1x", ACCEPT, "0000:00:1d.0@00 msi=0 pm=0 perm=1", REJECT, "atoi ignores trailing junk" },
    { "00:1d.0,permissive=1 ", ACCEPT, "0000:00:1d.0@00 msi=0 pm=0 perm=1", REJECT, "atoi ignores trailing space" },
    { "00:1d.0,msitranslate==1", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "the value is \"=1\", atoi gives 0" },
    { "00:1d.0,msitranslate=1;power_mgmt=1", ACCEPT, "0000:00:1d.0@00 msi=1 pm=0 perm=0", REJECT, "the value swallows the rest" },
    { "00:1d.0,msitranslate=1,msitranslate=0", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "the last wins; we refuse a key given twice" },
    { "00:1d.0,", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "trailing comma; we refuse empty items" },
    { "00:1d.0,permissive=1,", ACCEPT, "0000:00:1d.0@00 msi=0 pm=0 perm=1", REJECT, "trailing comma; we refuse empty items" },
    /* keys that belong to xl, not to the device model's notation */
    { "bdf=00:1d.1", ACCEPT, "0000:00:1d.1" DFLT, REJECT, "xl's key=value form of the BDF" },
    { "00:1d.0,vslot=7", ACCEPT, "0000:00:1d.0@07 msi=0 pm=0 perm=0", REJECT, "xl's key=value form of @VSLOT" },
    { "00:1d.0@7,vslot=8", ACCEPT, "0000:00:1d.0@08 msi=0 pm=0 perm=0", REJECT, "two vslots, the last wins" },
    { "00:1d.0,bdf=00:1e.0", ACCEPT, "0000:00:1e.0" DFLT, REJECT, "two BDFs, the last wins" },
    { "name=gpu0", ACCEPT, "0000:00:00.0(nfuncs -1)" DFLT, REJECT, "assignable-device name: xl resolves it, we need a BDF" },
    { "00:1d.0,seize=1", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "seizing from pciback is xl's job" },
    { "00:1d.0,rdm_policy=strict", ACCEPT, "0000:00:1d.0" DFLT, REJECT, "rdm_policy only in the wire form, from libxl" },
    /* xl reads an uninitialised %n when '.' does not follow the slot */
    { "00:1d", UNDEFINED, NULL, REJECT, "no '.F': xl's parse_bdf uses an unset %n" },
    { "0000:00:1d", UNDEFINED, NULL, REJECT, "no '.F': xl's parse_bdf uses an unset %n" },
    { "00:1dg.0", UNDEFINED, NULL, REJECT, "junk before '.': xl's parse_bdf uses an unset %n" },
    { "00:1d@7", UNDEFINED, NULL, REJECT, "no '.F': xl's parse_bdf uses an unset %n" },
    /* the extended notation, ours alone */
    { "00:1d.0-2", REJECT, NULL, ACCEPT, "function range" },
    { "00:1d.0,3,5,7", REJECT, NULL, ACCEPT, "function list" },
    { "00:1d.2=0,1=1,0=2@7", REJECT, NULL, ACCEPT, "explicit pfunc=vfunc map" },
    { "00:1d.1@7.2", REJECT, NULL, ACCEPT, "@VSLOT.VFUNC" },
    { "00:1d.*,map=least", REJECT, NULL, ACCEPT, "map= option" },
    { "06:00.1,strict_reset=0", REJECT, NULL, ACCEPT, "strict_X= options: the group rules (Qubes' name)" },
};

static Verdict xl_verdict(const char *text, Outcome *xl)
{
    if (xl_undefined(text))
        return UNDEFINED;
    xl_parse(text, xl);
    return xl->ok ? ACCEPT : REJECT;
}

static void check_divergence(const Divergence *d)
{
    static const char *const names[] = { "reject", "accept", "undefined" };
    Outcome xl, ours;
    Verdict xv = xl_verdict(d->text, &xl);

    ours_parse(d->text, &ours);
    g_test_message("%-40s xl %-9s ours %-6s  %s", d->text, names[d->xl],
                   names[d->ours], d->why);
    if (xv != d->xl)
        g_error("\"%s\": xl says %s, the table %s", d->text, names[xv], names[d->xl]);
    if ((ours.ok ? ACCEPT : REJECT) != d->ours)
        g_error("\"%s\": ours %s, the table %s", d->text, ours.ok ? "accepts" : "rejects",
                names[d->ours]);
    if (xv == ACCEPT) {
        g_autoptr(GString) got = g_string_new(NULL);
        outcome_format(&xl, got);
        g_assert_cmpstr(got->str, ==, d->xl_got);
    }
}

static void test_divergences(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(divergences); i++)
        check_divergence(&divergences[i]);
}

/* [start, end) of the statement of key: from its line's start to just
 * before the first `upto` after it. */
static void span_of(const char *text, const char *key, const char *upto, size_t *span)
{
    g_autofree char *pat = g_strdup_printf("\n%s =", key);
    const char *p = strstr(text, pat);
    g_assert_nonnull(p);
    const char *end = strstr(p + 1, upto);
    g_assert_nonnull(end);
    span[0] = (size_t)(p + 1 - text);
    span[1] = (size_t)(end - text);
}

/*
 * What xm hands xl on a real Xen, read back by xl's own config parser: xm's
 * own statements gone (pci would make libxl pass the devices through
 * itself), everything else as written, and the guest QEMU's QMP socket for
 * qemu-dm in device_model_args_hvm.
 */
static void test_config_for_xl(void)
{
    const char *text = "name = \"hvm1\"\ntype = \"hvm\"\n# the set\n"
                       "pci = [ '0000:00:1d.*@7',\n        '0000:00:0b.1,0@8' ]\n"
                       "pci_map = \"least\"\nmemory = 256\n";
    size_t cut[4];
    XLU_ConfigList *list;
    const char *v;
    long l;
    int n;

    span_of(text, "pci", " ]\n", cut);
    cut[1] += 2;
    span_of(text, "pci_map", "\n", cut + 2);
    g_autofree char *out = xl_config_text(text, cut, 2, "/run/xen/xm/hvm1.qmp");
    FILE *sink = fopen("/dev/null", "w");
    XLU_Config *cfg = xlu_cfg_init(sink, "xm-for-xl");
    g_assert_cmpint(xlu_cfg_readdata(cfg, out, (int)strlen(out)), ==, 0);
    g_assert_cmpint(xlu_cfg_get_list(cfg, "pci", &list, &n, 1), !=, 0);
    g_assert_cmpint(xlu_cfg_get_string(cfg, "pci_map", &v, 1), !=, 0);
    g_assert_cmpint(xlu_cfg_get_string(cfg, "name", &v, 0), ==, 0);
    g_assert_cmpstr(v, ==, "hvm1");
    g_assert_cmpint(xlu_cfg_get_string(cfg, "type", &v, 0), ==, 0);
    g_assert_cmpstr(v, ==, "hvm");
    g_assert_cmpint(xlu_cfg_get_long(cfg, "memory", &l, 0), ==, 0);
    g_assert_cmpint(l, ==, 256);
    g_assert_cmpint(xlu_cfg_get_list(cfg, "device_model_args_hvm", &list, &n, 0), ==, 0);
    g_assert_cmpint(n, ==, 2);
    g_assert_cmpstr(xlu_cfg_get_listitem(list, 0), ==, "-qmp");
    g_assert_cmpstr(xlu_cfg_get_listitem(list, 1), ==, "unix:/run/xen/xm/hvm1.qmp,server=on,wait=off");
    xlu_cfg_destroy(cfg);
    fclose(sink);
}

static void test_xen_absent_here(void)
{
    /* This machine is no dom0: xm keeps to the simulated host. */
    g_assert_false(xl_xen_present());
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/xl-oracle/xl-defaults", test_xl_defaults);
    g_test_add_func("/xl-oracle/reference-examples", test_reference_examples);
    g_test_add_func("/xl-oracle/generated", test_generated);
    g_test_add_func("/xl-oracle/divergences", test_divergences);
    g_test_add_func("/xl-oracle/xm-config-for-xl", test_config_for_xl);
    g_test_add_func("/xl-oracle/xen-absent-here", test_xen_absent_here);
    return g_test_run();
}
