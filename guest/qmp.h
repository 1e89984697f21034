/*
 * A QMP client on the GLib main loop: one command on the wire at a time
 * from a queue, each with a timeout and a done callback; events handed on
 * as they come.  QMP replies are one JSON object per line; the few keys
 * needed ("id", "desc", "event", "device") are picked out of the line.
 *
 * Used for the QEMU guest qemu-dm starts itself (a socketpair) and for the
 * guest's own device model on Xen (its QMP socket path).
 */
#ifndef GUEST_QMP_H
#define GUEST_QMP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Qmp Qmp;

/* A command's end: error NULL on "return", else QEMU's "desc" or why there
 * was no answer.  tag is the caller's, given with the command. */
typedef void (*QmpDoneFn)(void *opaque, unsigned tag, const char *what, const char *error);
/* An event line ("event" picked out), and the socket's end. */
typedef void (*QmpEventFn)(void *opaque, const char *event, const char *line);
typedef void (*QmpClosedFn)(void *opaque);

/* Takes fd (connected); qmp_capabilities is the first command sent. */
Qmp *qmp_new(int fd, QmpEventFn on_event, QmpClosedFn on_closed, void *opaque);
/* Connect to a QMP unix socket: NULL with why on failure. */
Qmp *qmp_connect(const char *path, QmpEventFn on_event, QmpClosedFn on_closed, void *opaque,
                 char *why, size_t len);
/* Close the socket (the command in flight ends with "QEMU is gone", queued
 * ones are dropped), then free. */
void qmp_free(Qmp *q);
void qmp_close(Qmp *q);
bool qmp_is_open(const Qmp *q);

/*
 * Queue a command (json and what are taken; fd, if >= 0, is sent with it
 * as SCM_RIGHTS and closed).  done may be NULL: a refusal is then logged.
 */
void qmp_call(Qmp *q, char *json, char *what, int fd, QmpDoneFn done, void *opaque,
              unsigned tag);
/* Drop the queued (not yet sent) commands with this done and tag. */
void qmp_drop(Qmp *q, QmpDoneFn done, unsigned tag);

/* {"execute": "device_add", ...} from "driver,key=value,..." */
char *qmp_device_add_json(const char *opts);
/* The JSON string or number after the last "key": in line, or NULL (g_free). */
char *qmp_json_pick(const char *line, const char *key);

#endif
