#include "pt-plan.h"

#include <stdio.h>

PtPlanDefaults pt_plan_defaults(void)
{
    PtPlanDefaults d = { .opts = pt_options_unset() };

    d.opts.map = PT_MAP_IDENTITY;
    return d;
}

static int check_assignable(HostPci *host, const PtRequest *req, const char *text,
                            PtError *err)
{
    for (int i = 0; i < req->nfuncs; i++) {
        PtBdf bdf = { req->domain, req->bus, req->dev, req->pfunc[i] };
        const char *driver;
        char name[16];

        if (host_pci_assignable(host, bdf))
            continue;
        driver = host_pci_driver(host, bdf);
        pt_bdf_format(bdf, name, sizeof(name));
        if (driver)
            snprintf(err->msg, sizeof(err->msg), "%.80s: %s is not assignable: bound to "
                     "%.32s (bind it to pciback or pci-stub first)", text, name, driver);
        else
            snprintf(err->msg, sizeof(err->msg), "%.80s: %s is not assignable: no driver "
                     "bound (bind it to pciback or pci-stub first)", text, name);
        return -1;
    }
    return 0;
}

int pt_plan_request(HostPci *host, PtBusMap *map, const PtRequest *request, const char *text,
                    const PtPlanDefaults *dflt, bool partial, PtPlan *plan, PtError *err)
{
    PtRequest req = *request;
    PtPlan out;

    if (check_assignable(host, &req, text, err) < 0)
        return -1;
    out.opts = pt_options_merge(req.opts, dflt->opts);
    req.opts = out.opts;
    if (pt_place(map, &req, dflt->opts.map, partial, text, &out.placement, err) < 0)
        return -1;
    *plan = out;
    return 0;
}

int pt_plan_spec(HostPci *host, PtBusMap *map, const char *text,
                 const PtPlanDefaults *dflt, PtPlan *plan, PtError *err)
{
    PtSpec spec;
    PtRequest req;

    if (pt_spec_parse(text, &spec, err) < 0)
        return -1;
    uint8_t present = host_pci_present_funcs(host, spec.domain, spec.bus, spec.dev);
    if (pt_spec_expand(&spec, text, present, &req, err) < 0)
        return -1;
    return pt_plan_request(host, map, &req, text, dflt, false, plan, err);
}
