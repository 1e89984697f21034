/*
 * fakexen.so: an LD_PRELOAD stand-in for the hypervisor calls Debian's
 * xenstored (Xen 4.17) makes, so the real daemon runs its normal dom0 set-up
 * on a machine without Xen.  It defines exactly what xenstored imports from
 * libxenctrl, libxenevtchn and libxengnttab, plus open() of the two
 * /proc/xen files dom0's connection is made of.  tests/lib/xenstored.c
 * checks with nm that this list still covers the binary's imports.
 *
 * Built only as the shared object (tests/fakexen.mk defines FAKEXEN_SO);
 * in the test helper library this file is empty, since its open() and
 * Xen symbols must never reach a test program.
 */
#ifdef FAKEXEN_SO

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define FAKE_PAGE      4096
#define FAKE_DOMID_MAX 0x7ff0u      /* DOMID_FIRST_RESERVED: all below "exist" */

/* ---- libxenctrl: a handle and domains that all exist and run ---- */

static int xc_dummy;

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    (void)logger, (void)dombuild_logger, (void)open_flags;
    return (xc_interface *)&xc_dummy;
}

int xc_interface_close(xc_interface *xch)
{
    (void)xch;
    return 0;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                      xc_dominfo_t *info)
{
    (void)xch;
    if (max_doms == 0 || first_domid >= FAKE_DOMID_MAX)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    info->running = 1;
    info->hvm = first_domid != 0;
    return 1;
}

/* ---- libxenevtchn: an eventfd that never fires, ports handed out ---- */

struct xenevtchn_handle {
    int fd;
    evtchn_port_t next_port;
};

static xenevtchn_handle *evtchn_wrap(int fd)
{
    xenevtchn_handle *h = calloc(1, sizeof(*h));

    if (!h) {
        close(fd);
        return NULL;
    }
    h->fd = fd;
    h->next_port = 10;
    return h;
}

xenevtchn_handle *xenevtchn_open(xentoollog_logger *logger, unsigned int flags)
{
    (void)logger, (void)flags;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? NULL : evtchn_wrap(fd);
}

xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd, unsigned int flags)
{
    (void)logger, (void)flags;
    return evtchn_wrap(fd);
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    return xce->fd;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce, (void)port;
    return 0;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce, (void)port;
    return 0;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce, (void)port;
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    (void)xce;
    errno = EAGAIN;
    return -1;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    (void)domid, (void)remote_port;
    return (xenevtchn_port_or_error_t)xce->next_port++;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
    (void)virq;
    return (xenevtchn_port_or_error_t)xce->next_port++;
}

/* ---- libxengnttab: a zeroed page per grant map (an idle ring) ---- */

static int gnttab_dummy;

xengnttab_handle *xengnttab_open(xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger, (void)open_flags;
    return (xengnttab_handle *)&gnttab_dummy;
}

int xengnttab_close(xengnttab_handle *xgt)
{
    (void)xgt;
    return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    (void)xgt, (void)nr_grants;
    return 0;
}

void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
    (void)xgt, (void)domid, (void)ref;
    void *p = mmap(NULL, FAKE_PAGE, prot | PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    (void)xgt;
    return munmap(start_address, (size_t)count * FAKE_PAGE);
}

/* ---- /proc/xen: dom0's event channel port and its (idle) ring page ---- */

static int memfd_holding(const char *name, const void *data, size_t len, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) < 0 || (len && write(fd, data, len) != (ssize_t)len) ||
        lseek(fd, 0, SEEK_SET) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int open(const char *path, int flags, ...)
{
    static int (*real_open)(const char *, int, ...);
    mode_t mode = 0;

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (!strcmp(path, "/proc/xen/xsd_port"))
        return memfd_holding("xsd_port", "1", 1, 1);
    if (!strcmp(path, "/proc/xen/xsd_kva"))
        return memfd_holding("xsd_kva", NULL, 0, FAKE_PAGE);
    if (!real_open)
        real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return real_open(path, flags, mode);
}

#endif /* FAKEXEN_SO */

/* Keeps the translation unit non-empty when FAKEXEN_SO is not defined. */
typedef int fakexen_unused;
