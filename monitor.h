/*
 * qemu-dm's text monitor: one command per line, one reply per command.
 * The command table is transport-free; monitor_attach_* serve it on stdio
 * or a unix socket from the GLib main loop.
 */
#ifndef MONITOR_H
#define MONITOR_H

#include <glib.h>
#include <stdbool.h>

#include "pt-guest.h"

typedef struct Monitor Monitor;

/* What the monitor acts on; quit is reported through the callback. */
typedef struct MonitorTarget {
    PtGuest *guest;
    PciBus *bus;
    void (*quit)(void *opaque);
    void *opaque;
} MonitorTarget;

Monitor *monitor_new(const MonitorTarget *target);
void monitor_free(Monitor *mon);

/*
 * Run one line; the reply (possibly several lines, each ending in '\n') is
 * appended to out.  Returns 0, or -1 when the command failed (the reply
 * then holds one line saying why).  Nothing changes on failure.
 */
int monitor_execute(Monitor *mon, const char *line, GString *out);

/* Serve on stdin/stdout with a "(qemu) " prompt; EOF quits. */
void monitor_attach_stdio(Monitor *mon);
/* Serve on a unix socket at path (one client at a time). */
int monitor_attach_unix(Monitor *mon, const char *path, GError **err);

#endif
