/*
 * The domain on a real Xen, for xm: xl creates it paused from the guest
 * config without xm's own keys (qemu-dm places the devices, not libxl),
 * with a QMP socket of qemu-dm's own on the guest's QEMU; xm starts qemu-dm
 * and then unpauses it; destroy goes through xl once qemu-dm has stopped.
 * xl's output is appended to the domain's log; a failure says xl's last
 * line.
 */
#ifndef XL_DOMAIN_H
#define XL_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

/* dom0 of a running Xen (/proc/xen/capabilities says control_d). */
bool xl_xen_present(void);

/* The config handed to xl: text without the [start, end) byte spans of
 * cut (pairs), plus the guest QEMU's QMP socket for qemu-dm. */
char *xl_config_text(const char *text, const size_t *cut, size_t ncut, const char *qmp_path);

/* Every xl call appends its output to log; why gets its last line. */
int xl_create_paused(const char *cfg_file, const char *name, const char *log, unsigned *domid,
                     char *why, size_t len);
int xl_unpause(unsigned domid, const char *log, char *why, size_t len);
int xl_destroy(unsigned domid, const char *log, char *why, size_t len);

#endif
