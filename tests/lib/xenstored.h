/*
 * The real xenstored (Debian's Xen 4.17) for tests: started on a private
 * socket under fakexen.so (the LD_PRELOAD stand-in for the hypervisor),
 * ready when it prints its pid (-P), stopped and cleaned up by the test.
 * While one runs, XENSTORED_PATH in this process's environment points at
 * it, so libxenstore here and every child (xm, qemu-dm, xenstore-*) uses it.
 */
#ifndef TESTS_XENSTORED_H
#define TESTS_XENSTORED_H

#include <glib.h>

typedef struct Xenstored Xenstored;

/* Fails the test (g_error) with the reason when the daemon cannot start,
 * including fakexen.so missing one of the daemon's hypervisor imports. */
Xenstored *xenstored_start(void);
void xenstored_stop(Xenstored *xd);

const char *xenstored_socket(const Xenstored *xd);
const char *xenstored_dir(const Xenstored *xd);
GPid xenstored_pid(const Xenstored *xd);

/* Where the fixture's pieces are (overridable: XENSTORED_BIN). */
const char *xenstored_binary(void);
const char *xenstored_fakexen(void);

/*
 * fakexen.so defines every xc_ and xen symbol the daemon imports:
 * 0, or -1 with *missing listing what is not covered (g_free it).
 */
int xenstored_check_imports(char **missing);

#endif
