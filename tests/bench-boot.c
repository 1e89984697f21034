/*
 * The QEMU guest's boot, from starting qemu-dm to the guest's first PCI
 * view on its console (qemu-dm -guest qemu on a simulated host, the USB
 * controller 00:1d.* in slot 7), booting the kernel's unpacked ELF image
 * through its PVH entry next to booting the bzImage, which decompresses
 * itself under TCG.  Runs alternate so the machine's load falls on both.
 * Skipped without a guest image (scripts/guest-image).
 */
#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "simtree.h"

#define ASUS   "asus-p6t6-x58-ich10-gt218.lspci"
#define ROUNDS 3
#define VIEW_TIMEOUT_S 60

static const char *image = SRCDIR "/cache/guest";

/* Seconds from qemu-dm's start to the view's first line, or -1. */
static double boot_once(const char *tree, const char *image_dir)
{
    const char *argv[] = { BUILDDIR "/qemu-dm", "-host-sysfs", tree, "-hypervisor", "sim",
                           "-guest", "qemu", "-guest-image", image_dir,
                           "-guest-timeout", "120", "-pci", "00:1d.*@7", "-monitor", "stdio",
                           NULL };
    g_autoptr(GError) err = NULL;
    gint64 t0 = g_get_monotonic_time(), deadline = t0 + VIEW_TIMEOUT_S * G_USEC_PER_SEC;
    double s = -1;
    GSubprocess *p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                       G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                       G_SUBPROCESS_FLAGS_STDERR_MERGE, &err);

    if (!p) {
        fprintf(stderr, "bench-boot: %s\n", err->message);
        return -1;
    }
    g_autoptr(GDataInputStream) out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
    char *line;
    while (s < 0 && g_get_monotonic_time() < deadline &&
           (line = g_data_input_stream_read_line(out, NULL, NULL, NULL))) {
        if (strstr(line, "PCIVIEW-BEGIN"))
            s = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        g_free(line);
    }
    g_output_stream_write_all(g_subprocess_get_stdin_pipe(p), "quit\n", 5, NULL, NULL, NULL);
    g_output_stream_close(g_subprocess_get_stdin_pipe(p), NULL, NULL);
    while ((line = g_data_input_stream_read_line(out, NULL, NULL, NULL)))
        g_free(line);
    g_subprocess_wait(p, NULL, NULL);
    g_object_unref(p);
    return s;
}

/* An image directory with the bzImage only: qemu-dm boots vmlinuz. */
static char *bzimage_only(void)
{
    char *dir = g_dir_make_tmp("bench-boot-XXXXXX", NULL);
    const char *files[] = { "vmlinuz", "initrd.gz" };

    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *from = g_build_filename(image, files[i], NULL);
        g_autofree char *to = g_build_filename(dir, files[i], NULL);
        if (symlink(from, to) < 0)
            g_error("%s: %s", to, g_strerror(errno));
    }
    return dir;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(void)
{
    g_autofree char *vmlinux = g_build_filename(image, "vmlinux", NULL);
    double pvh[ROUNDS], bz[ROUNDS];

    if (access(vmlinux, R_OK) != 0) {
        printf("bench-boot: skipped: no %s (scripts/guest-image)\n", vmlinux);
        return 0;
    }
    char *tree = simtree_build(ASUS, true);
    char *bzdir = bzimage_only();
    for (int r = 0; r < ROUNDS; r++) {
        bz[r] = boot_once(tree, bzdir);
        pvh[r] = boot_once(tree, image);
        if (bz[r] < 0 || pvh[r] < 0) {
            fprintf(stderr, "bench-boot: no PCI view within %d s\n", VIEW_TIMEOUT_S);
            return 1;
        }
    }
    qsort(bz, ROUNDS, sizeof(double), cmp_double);
    qsort(pvh, ROUNDS, sizeof(double), cmp_double);
    printf("bench-boot: QEMU guest, qemu-dm start -> first PCI view (00:1d.*@7), median of %d\n",
           ROUNDS);
    printf("  bzImage, decompressing itself     %5.1f s  (%.1f-%.1f)\n", bz[ROUNDS / 2], bz[0],
           bz[ROUNDS - 1]);
    printf("  vmlinux through its PVH entry     %5.1f s  (%.1f-%.1f)   %.2fx\n",
           pvh[ROUNDS / 2], pvh[0], pvh[ROUNDS - 1], pvh[ROUNDS / 2] / bz[ROUNDS / 2]);
    printf("  goal: at most 6 s: %s\n", pvh[ROUNDS / 2] <= 6 ? "holds" : "misses");
    g_autofree char *l1 = g_build_filename(bzdir, "vmlinuz", NULL);
    g_autofree char *l2 = g_build_filename(bzdir, "initrd.gz", NULL);
    g_unlink(l1);
    g_unlink(l2);
    g_rmdir(bzdir);
    g_free(bzdir);
    simtree_remove(tree);
    return 0;
}
