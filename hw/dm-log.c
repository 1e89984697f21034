#include "dm-log.h"

#include <stdarg.h>
#include <stdio.h>

static DmLogSink log_sink;
static void *log_opaque;

void dm_log_set_sink(DmLogSink sink, void *opaque)
{
    log_sink = sink;
    log_opaque = opaque;
}

void dm_log(const char *who, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s: ", who);
    va_list ap;

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (log_sink)
        log_sink(line, log_opaque);
    else
        fprintf(stderr, "%s\n", line);
}
