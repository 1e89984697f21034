/*
 * The device model's log: one line per event, prefixed by who speaks
 * (e.g. "0000:00:1d.1 -> 07.1: ...").  Lines go to stderr unless a sink is
 * installed (tests capture them; qemu-dm may send them to a file).
 */
#ifndef DM_LOG_H
#define DM_LOG_H

/*
 * Running out of memory is the one failure that is neither logged here nor
 * returned as an error: the product code allocates only through GLib
 * (g_new0, g_strdup, g_renew...), which says so on stderr and aborts, as
 * QEMU does.  A device model short of memory cannot keep a guest's devices
 * consistent, and a recovery path after every allocation would be code no
 * test reaches.
 */

typedef void (*DmLogSink)(const char *line, void *opaque);

void dm_log(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NULL sink: back to stderr. */
void dm_log_set_sink(DmLogSink sink, void *opaque);

#endif
