/*
 * libFuzzer target for the notation parsers.  Input: byte 0 is the host's
 * function mask for pt_spec_expand, the rest is the text.  Every parser runs
 * on the text; a broken invariant aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pt-notation.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Fill pattern: shows whether a failed parse wrote its output anyway. */
#define POISON 0xa5

/*
 * A failure leaves a message: not empty and terminated inside the buffer
 * (which was poisoned, so the terminator proves the message was written).
 */
static void check_error(const PtError *err)
{
    CHECK(err->msg[0] != '\0');
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
}

static void check_untouched(const void *out, size_t len)
{
    const unsigned char *p = out;

    for (size_t i = 0; i < len; i++)
        CHECK(p[i] == POISON);
}

static void check_options(const PtOptions *o)
{
    CHECK(o->msitranslate == PT_UNSET || o->msitranslate == 0 || o->msitranslate == 1);
    CHECK(o->power_mgmt == PT_UNSET || o->power_mgmt == 0 || o->power_mgmt == 1);
    CHECK(o->permissive == PT_UNSET || o->permissive == 0 || o->permissive == 1);
    CHECK(o->map == PT_MAP_DEFAULT || o->map == PT_MAP_IDENTITY || o->map == PT_MAP_LEAST);
}

/* Functions 0-7, each at most once. */
static void check_func_list(const uint8_t *funcs, int n)
{
    unsigned seen = 0;

    for (int i = 0; i < n; i++) {
        CHECK(funcs[i] < PT_FUNCS_PER_SLOT);
        CHECK(!(seen & (1u << funcs[i])));
        seen |= 1u << funcs[i];
    }
}

static bool has_vfunc0(const uint8_t *vfuncs, int n)
{
    for (int i = 0; i < n; i++)
        if (vfuncs[i] == 0)
            return true;
    return false;
}

static void check_spec(const PtSpec *s)
{
    CHECK(s->dev < PT_SLOTS);
    CHECK(s->vslot == PT_UNSET || (s->vslot >= 0 && s->vslot < PT_SLOTS));
    CHECK(s->vfunc == PT_UNSET || (s->vfunc >= 0 && s->vfunc < PT_FUNCS_PER_SLOT));
    if (s->all_funcs) {
        CHECK(s->nfuncs == 0 && !s->explicit_map && s->multi_form);
    } else {
        CHECK(s->nfuncs >= 1 && s->nfuncs <= PT_FUNCS_PER_SLOT);
        check_func_list(s->funcs, s->nfuncs);
    }
    if (s->explicit_map) {
        check_func_list(s->vfuncs, s->nfuncs);
        CHECK(has_vfunc0(s->vfuncs, s->nfuncs));
    }
    if (s->vfunc != PT_UNSET)
        CHECK(!s->multi_form && s->vslot != PT_UNSET);
    check_options(&s->opts);
}

static void check_request(const PtSpec *s, const PtRequest *r, uint8_t host)
{
    CHECK(r->nfuncs >= 1 && r->nfuncs <= PT_FUNCS_PER_SLOT);
    check_func_list(r->pfunc, r->nfuncs);
    for (int i = 0; i < r->nfuncs; i++) {
        CHECK(host & (1u << r->pfunc[i]));
        CHECK(r->vfunc[i] == PT_UNSET || (r->vfunc[i] >= 0 && r->vfunc[i] < 8));
    }
    CHECK(r->multi == (r->nfuncs > 1));
    CHECK(!s->all_funcs || r->nfuncs == __builtin_popcount(host));
    CHECK(r->vslot == s->vslot);
    if (s->explicit_map) {
        bool v0 = false;
        for (int i = 0; i < r->nfuncs; i++)
            v0 |= r->vfunc[i] == 0;
        CHECK(v0);
    }
}

static void fuzz_spec(const char *text, uint8_t host)
{
    PtSpec spec;
    PtRequest req;
    PtError err;

    memset(&spec, POISON, sizeof(spec));
    memset(&err, POISON, sizeof(err));
    if (pt_spec_parse(text, &spec, &err) < 0) {
        check_error(&err);
        check_untouched(&spec, sizeof(spec));
        return;
    }
    check_spec(&spec);
    memset(&req, POISON, sizeof(req));
    memset(&err, POISON, sizeof(err));
    if (pt_spec_expand(&spec, text, host, &req, &err) < 0) {
        check_error(&err);
        check_untouched(&req, sizeof(req));
        return;
    }
    check_request(&spec, &req, host);
}

/* Field by field: struct copies need not carry the padding along. */
static bool spec_equal(const PtSpec *a, const PtSpec *b)
{
    return a->domain == b->domain && a->bus == b->bus && a->dev == b->dev &&
           a->all_funcs == b->all_funcs && a->explicit_map == b->explicit_map &&
           a->multi_form == b->multi_form && a->nfuncs == b->nfuncs &&
           !memcmp(a->funcs, b->funcs, (size_t)a->nfuncs) &&
           (!a->explicit_map || !memcmp(a->vfuncs, b->vfuncs, (size_t)a->nfuncs)) &&
           a->vslot == b->vslot && a->vfunc == b->vfunc &&
           a->opts.msitranslate == b->opts.msitranslate &&
           a->opts.power_mgmt == b->opts.power_mgmt &&
           a->opts.permissive == b->opts.permissive && a->opts.map == b->opts.map;
}

/* The unplug form is the spec form minus @VSLOT and options. */
static void fuzz_unplug(const char *text)
{
    PtSpec spec, full;
    PtError err;

    memset(&spec, POISON, sizeof(spec));
    memset(&err, POISON, sizeof(err));
    if (pt_spec_parse_unplug(text, &spec, &err) < 0) {
        check_error(&err);
        check_untouched(&spec, sizeof(spec));
        return;
    }
    check_spec(&spec);
    CHECK(spec.vslot == PT_UNSET && spec.vfunc == PT_UNSET);
    CHECK(pt_spec_parse(text, &full, &err) == 0);
    CHECK(spec_equal(&spec, &full));
    CHECK(full.opts.msitranslate == PT_UNSET && full.opts.power_mgmt == PT_UNSET &&
          full.opts.permissive == PT_UNSET && full.opts.map == PT_MAP_DEFAULT);
}

static bool wire_equal(const PtWire *a, const PtWire *b)
{
    return a->bdf.domain == b->bdf.domain && a->bdf.bus == b->bdf.bus &&
           a->bdf.dev == b->bdf.dev && a->bdf.func == b->bdf.func &&
           a->has_vdevfn == b->has_vdevfn && a->auto_slot == b->auto_slot &&
           (!a->has_vdevfn || a->vdevfn == b->vdevfn) &&
           a->opts.msitranslate == b->opts.msitranslate &&
           a->opts.power_mgmt == b->opts.power_mgmt &&
           a->opts.permissive == b->opts.permissive && a->opts.map == b->opts.map;
}

/* Parse, format, parse again: the same PtWire. */
static void fuzz_wire(const char *text)
{
    PtWire w, again;
    PtError err;
    char buf[128];

    memset(&w, POISON, sizeof(w));
    memset(&err, POISON, sizeof(err));
    if (pt_wire_parse(text, &w, &err) < 0) {
        check_error(&err);
        check_untouched(&w, sizeof(w));
        return;
    }
    CHECK(w.bdf.dev < PT_SLOTS && w.bdf.func < PT_FUNCS_PER_SLOT);
    CHECK(!w.auto_slot || (w.has_vdevfn && w.vdevfn < PT_FUNCS_PER_SLOT));
    CHECK(w.opts.map == PT_MAP_DEFAULT);
    check_options(&w.opts);
    memset(buf, POISON, sizeof(buf));
    pt_wire_format(&w, buf, sizeof(buf));
    CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
    if (pt_wire_parse(buf, &again, &err) < 0)
        abort();
    CHECK(wire_equal(&w, &again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Exact-size copy: ASan sees any read past the terminator. */
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    fuzz_spec(text, data[0]);
    fuzz_unplug(text);
    fuzz_wire(text);
    free(text);
    return 0;
}
