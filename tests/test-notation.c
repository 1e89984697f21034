/* The extended BDF notation: every form, the malformed-spec table, expansion
 * against host function masks, and the toolstacks' wire forms. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "pt-notation.h"

/* ---- well-formed specs ---- */

typedef struct GoodSpec {
    const char *text;
    uint16_t domain;
    uint8_t bus, dev;
    bool all_funcs, explicit_map, multi_form;
    const char *funcs;      /* written order, e.g. "0,1,2" ("" with '*') */
    const char *vfuncs;     /* with explicit_map */
    int vslot, vfunc;
    const char *opts;       /* pt_options_format of the result */
} GoodSpec;

static const GoodSpec good_specs[] = {
    { "0000:00:1d.0", 0, 0, 0x1d, false, false, false, "0", "", -1, -1, "" },
    { "00:1d.2", 0, 0, 0x1d, false, false, false, "2", "", -1, -1, "" },
    { "0000:00:1d.0-2@7", 0, 0, 0x1d, false, false, true, "0,1,2", "", 7, -1, "" },
    { "0000:00:1d.0,3,5,7", 0, 0, 0x1d, false, false, true, "0,3,5,7", "", -1, -1, "" },
    { "0000:00:1d.*", 0, 0, 0x1d, true, false, true, "", "", -1, -1, "" },
    { "00:1d.2=0,1=1@7", 0, 0, 0x1d, false, true, true, "2,1", "0,1", 7, -1, "" },
    { "00:1d.2=0,1=1,0=2@7", 0, 0, 0x1d, false, true, true, "2,1,0", "0,1,2", 7, -1, "" },
    { "0000:00:1d.0-2@7,map=least", 0, 0, 0x1d, false, false, true, "0,1,2", "", 7, -1, "map=least" },
    { "00:1d.7,1,0@07,map=least", 0, 0, 0x1d, false, false, true, "7,1,0", "", 7, -1, "map=least" },
    { "00:1d.0-2,7", 0, 0, 0x1d, false, false, true, "0,1,2,7", "", -1, -1, "" },
    { "00:1d.1@7.2", 0, 0, 0x1d, false, false, false, "1", "", 7, 2, "" },
    { "00:1D.0@1F", 0, 0, 0x1d, false, false, false, "0", "", 0x1f, -1, "" },
    { "ffff:ff:1f.7@1f,permissive=1,power_mgmt=0", 0xffff, 0xff, 0x1f, false, false, false, "7", "", 31, -1,
      "power_mgmt=0,permissive=1" },
    { "06:00.0,1,msitranslate=1,map=identity", 0, 6, 0, false, false, true, "0,1", "", -1, -1,
      "msitranslate=1,map=identity" },
    { "1:2:3.4", 1, 2, 3, false, false, false, "4", "", -1, -1, "" },
    { "00:1d.3-3", 0, 0, 0x1d, false, false, true, "3", "", -1, -1, "" },
    { "00:1d.*@7,msitranslate=0", 0, 0, 0x1d, true, false, true, "", "", 7, -1, "msitranslate=0" },
    { "06:00.1,strict_intx=1,strict_reset=0", 0, 6, 0, false, false, false, "1", "", -1, -1,
      "strict_reset=0,strict_intx=1" },
    { "00:1d.0@9,strict_iommu=0,strict_page=0", 0, 0, 0x1d, false, false, false, "0", "", 9, -1,
      "strict_iommu=0,strict_page=0" },
};

static void join_u8(const uint8_t *v, int n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%u", i ? "," : "", v[i]);
}

static void test_good_specs(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(good_specs); i++) {
        const GoodSpec *g = &good_specs[i];
        PtSpec s;
        PtError e;
        char funcs[32], vfuncs[32], opts[96];

        if (pt_spec_parse(g->text, &s, &e) < 0)
            g_error("%s rejected: %s", g->text, e.msg);
        join_u8(s.funcs, s.nfuncs, funcs, sizeof(funcs));
        join_u8(s.vfuncs, s.explicit_map ? s.nfuncs : 0, vfuncs, sizeof(vfuncs));
        pt_options_format(&s.opts, opts, sizeof(opts));
        g_assert_cmpuint(s.domain, ==, g->domain);
        g_assert_cmpuint(s.bus, ==, g->bus);
        g_assert_cmpuint(s.dev, ==, g->dev);
        g_assert_cmpint(s.all_funcs, ==, g->all_funcs);
        g_assert_cmpint(s.explicit_map, ==, g->explicit_map);
        g_assert_cmpint(s.multi_form, ==, g->multi_form);
        g_assert_cmpstr(funcs, ==, g->funcs);
        g_assert_cmpstr(vfuncs, ==, g->vfuncs);
        g_assert_cmpint(s.vslot, ==, g->vslot);
        g_assert_cmpint(s.vfunc, ==, g->vfunc);
        g_assert_cmpstr(opts, ==, g->opts);
    }
}

/* ---- malformed specs: each with its exact message ---- */

typedef struct BadSpec {
    const char *text;
    const char *msg;
} BadSpec;

static const BadSpec bad_specs[] = {
    { "", "\"\": empty PCI device spec" },
    { "0000:00:1d.0-9", "0000:00:1d.0-9: function 9 out of range 0-7 (at column 14)" },
    { "00:1d", "00:1d: expected '.' after the slot number, found end of text (at column 6)" },
    { "00:1d.", "00:1d.: expected a hex function number, found end of text (at column 7)" },
    { "zz:1d.0", "zz:1d.0: expected a hex bus number, found 'z' (at column 1)" },
    { ":1d.0", ":1d.0: expected a hex bus number, found ':' (at column 1)" },
    { "00:20.0", "00:20.0: slot 20 out of range 00-1f (at column 4)" },
    { "00:1d.8", "00:1d.8: function 8 out of range 0-7 (at column 7)" },
    { "00:1d.f", "00:1d.f: function f out of range 0-7 (at column 7)" },
    { "0000:100:1d.0", "0000:100:1d.0: bus 100 out of range 00-ff (at column 6)" },
    { "00000:00:1d.0", "00000:00:1d.0: domain 00000 has more than 4 digits (at column 1)" },
    { "00:1d.007", "00:1d.007: function 007 has more than 1 digit (at column 7)" },
    { "00:001d.0", "00:001d.0: slot 001d has more than 2 digits (at column 4)" },
    { "123456789:00:1d.0", "123456789:00:1d.0: domain number has too many digits (at column 1)" },
    { "1:2:3:4.0", "1:2:3:4.0: expected '.' after the slot number, found ':' (at column 6)" },
    { "00-1d.0", "00-1d.0: expected ':' after the bus number (at column 3)" },
    { "00:1d.0 ", "00:1d.0 : unexpected ' ' (at column 8)" },
    { " 00:1d.0", " 00:1d.0: expected a hex bus number, found ' ' (at column 1)" },
    { "00:1d.0;1", "00:1d.0;1: unexpected ';' (at column 8)" },
    { "00:1d.0-2@7.1", "00:1d.0-2@7.1: a virtual function (@SS.F) can only be given for a single function "
                       "(at column 12)" },
    { "00:1d.0@20", "00:1d.0@20: guest slot 20 out of range 00-1f (at column 9)" },
    { "00:1d.0@", "00:1d.0@: expected a hex guest slot number, found end of text (at column 9)" },
    { "00:1d.0@7.8", "00:1d.0@7.8: virtual function 8 out of range 0-7 (at column 11)" },
    { "00:1d.0,0", "00:1d.0,0: function 0 listed twice (at column 9)" },
    { "00:1d.0-2,1", "00:1d.0-2,1: function 1 listed twice (at column 11)" },
    { "00:1d.2-0", "00:1d.2-0: range 2-0 is descending (at column 7)" },
    { "00:1d.0-", "00:1d.0-: expected a hex function number, found end of text (at column 9)" },
    { "00:1d.*,1", "00:1d.*,1: '*' already names every function (at column 9)" },
    { "00:1d.*-2", "00:1d.*-2: unexpected '-' (at column 8)" },
    { "00:1d.2=1,1=2", "00:1d.2=1,1=2: virtual device does not include virtual function 0" },
    { "00:1d.2=0,1=0", "00:1d.2=0,1=0: virtual function 0 given twice (at column 13)" },
    { "00:1d.0,1=2", "00:1d.0,1=2: mixed F=V pairs and plain functions: map every function or none "
                     "(at column 9)" },
    { "00:1d.0=0,1", "00:1d.0=0,1: mixed F=V pairs and plain functions: map every function or none "
                     "(at column 11)" },
    { "00:1d.0=0-2", "00:1d.0=0-2: unexpected '-' (at column 10)" },
    { "00:1d.1=0,map=least", "00:1d.1=0,map=least: map= does not apply to explicit F=V pairs" },
    { "00:1d.0,map=foo", "00:1d.0,map=foo: option map=foo: the value must be identity or least (at column 13)" },
    { "00:1d.0,msitranslate=2", "00:1d.0,msitranslate=2: option msitranslate=2: the value must be 0 or 1 "
                                "(at column 22)" },
    { "00:1d.0,permissive=", "00:1d.0,permissive=: option permissive=: the value must be 0 or 1 (at column 20)" },
    { "00:1d.0,foo=1", "00:1d.0,foo=1: unknown option 'foo' (known: msitranslate, power_mgmt, permissive, map, "
                       "strict_reset, strict_iommu, strict_intx, strict_page) (at column 9)" },
    { "00:1d.0,rdm_policy=strict", "00:1d.0,rdm_policy=strict: unknown option 'rdm_policy' (known: msitranslate, "
                                   "power_mgmt, permissive, map, strict_reset, strict_iommu, strict_intx, "
                                   "strict_page) (at column 9)" },
    { "06:00.1,strict_reset=no", "06:00.1,strict_reset=no: option strict_reset=no: the value must be 0 or 1 "
                                 "(at column 22)" },
    { "06:00.1,strict_reset=", "06:00.1,strict_reset=: option strict_reset=: the value must be 0 or 1 "
                               "(at column 22)" },
    { "06:00.1,strict_phantom=0", "06:00.1,strict_phantom=0: unknown option 'strict_phantom' (known: "
                                  "msitranslate, power_mgmt, permissive, map, strict_reset, strict_iommu, "
                                  "strict_intx, strict_page) (at column 9)" },
    { "06:00.1,strict_page=0,strict_page=1", "06:00.1,strict_page=0,strict_page=1: option strict_page given "
                                             "twice (at column 23)" },
    { "00:1d.0,msitranslate", "00:1d.0,msitranslate: expected key=value, found 'msitranslate' (at column 9)" },
    { "00:1d.0,,map=least", "00:1d.0,,map=least: empty item between commas (at column 9)" },
    { "00:1d.0,", "00:1d.0,: empty item between commas (at column 9)" },
    { "00:1d.0,map=least,map=least", "00:1d.0,map=least,map=least: option map given twice (at column 19)" },
    { "1c:03.2,4,map=least@9", "1c:03.2,4,map=least@9: '@' after an option: @VSLOT goes before "
      "the options, e.g. 00:1d.0-2@7,map=least (at column 20)" },
    { "00:1d.0,permissive=1@9", "00:1d.0,permissive=1@9: '@' after an option: @VSLOT goes before "
      "the options, e.g. 00:1d.0-2@7,map=least (at column 21)" },
    { "00:1d.0,3,map=least,5", "00:1d.0,3,map=least,5: function '5' after an option: list functions before "
                               "options (at column 21)" },
    { "00:1d.0@7@8", "00:1d.0@7@8: unexpected '@' (at column 10)" },
    { "00:1d.0\t", "00:1d.0\t: unexpected 0x09 (at column 8)" },
};

static void test_bad_specs(void)
{
    g_assert_cmpuint(G_N_ELEMENTS(bad_specs), >=, 30);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_specs); i++) {
        PtSpec s, before;
        PtError e = { { 0 } };

        memset(&s, 0xa5, sizeof(s));
        before = s;
        g_assert_cmpint(pt_spec_parse(bad_specs[i].text, &s, &e), ==, -1);
        g_assert_cmpstr(e.msg, ==, bad_specs[i].msg);
        /* Nothing half-parsed leaks out. */
        g_assert_cmpmem(&s, sizeof(s), &before, sizeof(before));
    }
}

static void test_null_text(void)
{
    PtSpec s;
    PtError e;

    g_assert_cmpint(pt_spec_parse(NULL, &s, &e), ==, -1);
    g_assert_cmpstr(e.msg, ==, "\"\": empty PCI device spec");
}

static void test_unplug_form(void)
{
    static const BadSpec refused[] = {
        { "0000:00:1d.0-2@7", "0000:00:1d.0-2@7: detach takes no @VSLOT: the whole guest slot is removed "
                              "(at column 15)" },
        { "0000:00:1d.0,map=least", "0000:00:1d.0,map=least: detach takes no options (at column 14)" },
        { "0000:00:1d.0-9", "0000:00:1d.0-9: function 9 out of range 0-7 (at column 14)" },
    };
    PtSpec s;
    PtError e;

    g_assert_cmpint(pt_spec_parse_unplug("0000:00:1d.0-2", &s, &e), ==, 0);
    g_assert_cmpint(s.nfuncs, ==, 3);
    g_assert_cmpint(pt_spec_parse_unplug("00:1d.1", &s, &e), ==, 0);
    g_assert_cmpint(s.funcs[0], ==, 1);
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_assert_cmpint(pt_spec_parse_unplug(refused[i].text, &s, &e), ==, -1);
        g_assert_cmpstr(e.msg, ==, refused[i].msg);
    }
}

/* ---- expansion against the host's functions ---- */

static PtRequest expand_ok(const char *text, uint8_t host)
{
    PtSpec s;
    PtRequest r;
    PtError e;

    if (pt_spec_parse(text, &s, &e) < 0 || pt_spec_expand(&s, text, host, &r, &e) < 0)
        g_error("%s: %s", text, e.msg);
    return r;
}

static void assert_pfuncs(const PtRequest *r, const char *want)
{
    char got[32];

    join_u8(r->pfunc, r->nfuncs, got, sizeof(got));
    g_assert_cmpstr(got, ==, want);
}

static void test_expand(void)
{
    /* ICH10 USB: functions 0,1,2,7. */
    PtRequest r = expand_ok("0000:00:1d.*", 0x87);
    assert_pfuncs(&r, "0,1,2,7");
    g_assert_true(r.multi);
    g_assert_cmpint(r.vslot, ==, PT_UNSET);

    r = expand_ok("0000:00:1d.0-2@7", 0x87);
    assert_pfuncs(&r, "0,1,2");
    g_assert_cmpint(r.vslot, ==, 7);
    for (int i = 0; i < r.nfuncs; i++)
        g_assert_cmpint(r.vfunc[i], ==, PT_UNSET);

    r = expand_ok("0000:00:1d.0,3,5,7", 0xaf);
    assert_pfuncs(&r, "0,3,5,7");

    r = expand_ok("00:1d.2=0,1=1@7", 0x87);
    assert_pfuncs(&r, "2,1");
    g_assert_cmpint(r.vfunc[0], ==, 0);
    g_assert_cmpint(r.vfunc[1], ==, 1);

    /* A single function: no identity, but a pinned vfunc travels. */
    r = expand_ok("00:1d.1@7.2", 0x87);
    g_assert_false(r.multi);
    g_assert_cmpint(r.vfunc[0], ==, 2);

    /* '*' on a single-function device is a single function. */
    r = expand_ok("01:00.*", 0x01);
    assert_pfuncs(&r, "0");
    g_assert_false(r.multi);
}

static void test_expand_errors(void)
{
    static const struct { const char *text; uint8_t host; const char *msg; } cases[] = {
        { "0000:00:1d.0,3,5,7", 0x87,
          "0000:00:1d.0,3,5,7: function 3 is not present on the host (0000:00:1d has functions 0,1,2,7)" },
        { "00:1d.4", 0x87, "00:1d.4: function 4 is not present on the host (0000:00:1d has functions 0,1,2,7)" },
        { "00:05.*", 0x00, "00:05.*: no host device 0000:00:05" },
        { "00:05.0", 0x00, "00:05.0: no host device 0000:00:05" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        PtSpec s;
        PtRequest r, before;
        PtError e;

        memset(&r, 0x5a, sizeof(r));
        before = r;
        g_assert_cmpint(pt_spec_parse(cases[i].text, &s, &e), ==, 0);
        g_assert_cmpint(pt_spec_expand(&s, cases[i].text, cases[i].host, &r, &e), ==, -1);
        g_assert_cmpstr(e.msg, ==, cases[i].msg);
        g_assert_cmpmem(&r, sizeof(r), &before, sizeof(before));
    }
}

/* What a function runs with: every shown option, one not given as its meaning. */
static void test_options_applied(void)
{
    PtOptions o = pt_options_unset();
    PtSpec s;
    PtError e;
    char buf[96];

    pt_options_format_applied(&o, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "msitranslate=0 power_mgmt=0 permissive=0 map=identity");
    g_assert_cmpint(pt_spec_parse("00:1d.0-2,permissive=1,map=least,strict_reset=0", &s, &e), ==, 0);
    pt_options_format_applied(&s.opts, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "msitranslate=0 power_mgmt=0 permissive=1 map=least");
}

static void test_options_merge(void)
{
    PtSpec s;
    PtError e;
    PtOptions dflt = { .msitranslate = 1, .power_mgmt = 0, .permissive = 0, .map = PT_MAP_LEAST };
    char buf[96];

    g_assert_cmpint(pt_spec_parse("00:1d.0-2,msitranslate=0,map=identity", &s, &e), ==, 0);
    PtOptions m = pt_options_merge(s.opts, dflt);
    pt_options_format(&m, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "msitranslate=0,power_mgmt=0,permissive=0,map=identity");

    g_assert_cmpint(pt_spec_parse("00:1d.0-2", &s, &e), ==, 0);
    m = pt_options_merge(s.opts, dflt);
    g_assert_cmpint(m.map, ==, PT_MAP_LEAST);
    g_assert_cmpint(m.msitranslate, ==, 1);

    /* The guest relaxes reset; a spec may be strict again, or relax another. */
    PtOptions relaxed = pt_options_unset();
    relaxed.strict[PT_STRICT_RESET] = PT_STRICT_OFF;
    g_assert_cmpint(pt_spec_parse("06:00.1,strict_reset=1,strict_page=0", &s, &e), ==, 0);
    m = pt_options_merge(s.opts, relaxed);
    pt_options_format(&m, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "strict_reset=1,strict_page=0");
    g_assert_cmpint(pt_spec_parse("06:00.1", &s, &e), ==, 0);
    m = pt_options_merge(s.opts, relaxed);
    g_assert_cmpint(m.strict[PT_STRICT_RESET], ==, PT_STRICT_OFF);
    g_assert_cmpint(m.strict[PT_STRICT_INTX], ==, PT_STRICT_DEFAULT);
    /* Not said is strict: a zeroed PtOptions relaxes nothing. */
    g_assert_cmpint(PT_STRICT_DEFAULT, ==, 0);
}

/* ---- wire forms on the device-model channel ---- */

static void test_wire_forms(void)
{
    static const struct {
        const char *text;
        bool has_vdevfn, auto_slot;
        uint8_t vdevfn;
        const char *formatted;
    } cases[] = {
        /* xend: 0x100|vfunc = any free slot, this vfunc. */
        { "0000:00:1d.1@101,msitranslate=1,power_mgmt=0", true, true, 1,
          "0000:00:1d.1@101,msitranslate=1,power_mgmt=0" },
        { "0000:00:1d.0@38", true, false, 0x38, "0000:00:1d.0@38" },
        /* libxl omits '@' when the devfn is 0 (automatic). */
        { "0000:06:00.1,msitranslate=0,power_mgmt=1", false, false, 0,
          "0000:06:00.1,msitranslate=0,power_mgmt=1" },
        { "00:1d.2@3a", true, false, 0x3a, "0000:00:1d.2@3a" },
        { "0000:00:1d.0@3f,msitranslate=1,power_mgmt=0,permissive=1,rdm_policy=strict", true, false, 0x3f,
          "0000:00:1d.0@3f,msitranslate=1,power_mgmt=0,permissive=1" },
        /* Ours: a relaxed group rule travels with the function (pci-ins, opts-N). */
        { "0000:06:00.1,strict_reset=0", false, false, 0, "0000:06:00.1,strict_reset=0" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        PtWire w, again;
        PtError e;
        char buf[128];

        if (pt_wire_parse(cases[i].text, &w, &e) < 0)
            g_error("%s: %s", cases[i].text, e.msg);
        g_assert_cmpint(w.has_vdevfn, ==, cases[i].has_vdevfn);
        g_assert_cmpint(w.auto_slot, ==, cases[i].auto_slot);
        g_assert_cmpuint(w.vdevfn, ==, cases[i].vdevfn);
        pt_wire_format(&w, buf, sizeof(buf));
        g_assert_cmpstr(buf, ==, cases[i].formatted);
        g_assert_cmpint(pt_wire_parse(buf, &again, &e), ==, 0);
        g_assert_cmpmem(&again, sizeof(again), &w, sizeof(w));
    }
}

static void test_wire_errors(void)
{
    static const BadSpec cases[] = {
        { "0000:00:1d.1@139", "0000:00:1d.1@139: vdevfn 139: the automatic-slot flag 100 takes only a "
                              "function (100-107) (at column 14)" },
        { "0000:00:1d.1@200", "0000:00:1d.1@200: vdevfn 200 out of range 00-1ff (at column 14)" },
        { "0000:00:1d.0-2@7", "0000:00:1d.0-2@7: unexpected '-' (at column 13)" },
        { "0000:00:1d.0,map=least", "0000:00:1d.0,map=least: unknown option 'map' (known: msitranslate, "
                                    "power_mgmt, permissive, strict_reset, strict_iommu, strict_intx, "
                                    "strict_page, rdm_policy) (at column 14)" },
        { "0000:00:1d.0,rdm_policy=loose", "0000:00:1d.0,rdm_policy=loose: option rdm_policy=loose: the value "
                                           "must be strict or relaxed (at column 25)" },
        { "", "\"\": empty device parameter" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        PtWire w;
        PtError e;

        g_assert_cmpint(pt_wire_parse(cases[i].text, &w, &e), ==, -1);
        g_assert_cmpstr(e.msg, ==, cases[i].msg);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/notation/good-specs", test_good_specs);
    g_test_add_func("/notation/malformed-table", test_bad_specs);
    g_test_add_func("/notation/null-text", test_null_text);
    g_test_add_func("/notation/options-applied", test_options_applied);
    g_test_add_func("/notation/unplug-form", test_unplug_form);
    g_test_add_func("/notation/expand", test_expand);
    g_test_add_func("/notation/expand-errors", test_expand_errors);
    g_test_add_func("/notation/options-merge", test_options_merge);
    g_test_add_func("/notation/wire-forms", test_wire_forms);
    g_test_add_func("/notation/wire-errors", test_wire_errors);
    return g_test_run();
}
