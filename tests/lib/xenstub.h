/*
 * The test's side of xenstub.so (tests/lib/xenstub.c), the LD_PRELOAD
 * stand-in for Xen.  A test program is not linked with these: it finds them
 * with dlsym(RTLD_DEFAULT, ...) once the library is preloaded
 * (XENSTUB_API lists them for a table of function pointers).
 */
#ifndef XENSTUB_H
#define XENSTUB_H

#include <stddef.h>
#include <stdint.h>
#include <xenctrl.h>
#include <xen/hvm/ioreq.h>

/* The nth call (1: the next) of `call` fails with errno err; nth 0 disarms. */
void xenstub_fail(const char *call, unsigned nth, int err);
/* The guest makes a request on vCPU vcpu: into its ioreq slot, event
 * channel fired; or answered by "Xen" itself, as its MSI-X table handlers
 * answer for a bound entry (ready for the next poll).  -ENOENT: no server claims it (Xen would not send it);
 * -EBUSY: the slot is in use; other -errno: no server or channel. */
int xenstub_ioreq_post(unsigned vcpu, const ioreq_t *req);
/* 1 with the response in *out once the device model answered and
 * notified; 0 while not yet. */
int xenstub_ioreq_poll(unsigned vcpu, ioreq_t *out);
/* XENVER_get_features' submap 0 from now on (reset: 0, as Debian's Xen
 * 4.17: no XENFEAT_dm_msix_all_writes). */
void xenstub_set_features(uint32_t submap0);
/* Refusals recorded (what Xen would have refused). */
unsigned xenstub_violations(void);
const char *xenstub_violation(unsigned i);
/* 0 when nothing is held (assignment, mapping, permission, pirq, binding,
 * server, channel, resource, handle) and nothing was refused; else -1 and
 * what is left in buf. */
int xenstub_check_clean(char *buf, size_t len);
/* Forget everything (between tests); the log file is opened anew. */
void xenstub_reset(void);

#endif
