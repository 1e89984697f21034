/*
 * Config-space read latency, measured inside a guest (the real-Xen tier's
 * side-by-side scenario; built static on the host, run from the guest's
 * initramfs, which has no C library).
 *
 *   cfgread-bench [-n READS] [-t SECS] CONFIG...
 *       READS timed 4-byte preads of each sysfs config file, the files in
 *       turn, cycling over a few registers; one line per file:
 *       PCIBENCH 0000:00:07.0 reads=10000 p50=41000 p99=90000 max=... mean=... (ns)
 *       Stops early after SECS seconds in all (reads= says how many ran).
 *   cfgread-bench -r COUNT
 *       COUNT timed writes of "1" to /sys/bus/pci/rescan (a whole bus walk):
 *       PCIRESCAN runs=5 p50=... min=... max=... (ns)
 *
 * Every read reaches the device model: the guest kernel does not cache
 * config space, so each pread is one config cycle (port 0xcfc) trapped by Xen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pci/header.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Registers xen_pt and qemu-dm treat differently: emulated IDs, the live
 * class/revision word, an emulated BAR, the subsystem IDs. */
static const off_t offsets[] = {
    PCI_VENDOR_ID, PCI_CLASS_REVISION, PCI_BASE_ADDRESS_0, PCI_SUBSYSTEM_VENDOR_ID,
};
#define N_OFFSETS (sizeof(offsets) / sizeof(offsets[0]))

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The p-th percentile of n sorted samples (nearest rank). */
static uint64_t percentile(const uint64_t *s, size_t n, unsigned p)
{
    size_t rank = (n * p + 99) / 100;

    return s[rank ? rank - 1 : 0];
}

static void print_stats(const char *tag, const char *name, const char *count_word,
                        uint64_t *s, size_t n)
{
    uint64_t sum = 0;

    if (n == 0) {
        printf("%s %s%s%s=0\n", tag, name, *name ? " " : "", count_word);
        return;
    }
    qsort(s, n, sizeof(*s), cmp_u64);
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    printf("%s %s%s%s=%zu p50=%llu p99=%llu min=%llu max=%llu mean=%llu\n", tag, name,
           *name ? " " : "", count_word, n, (unsigned long long)percentile(s, n, 50),
           (unsigned long long)percentile(s, n, 99), (unsigned long long)s[0],
           (unsigned long long)s[n - 1], (unsigned long long)(sum / n));
}

/* The function's name: the sysfs folder holding its config file. */
static const char *function_name(const char *config_path)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s", config_path);
    return basename(dirname(buf));
}

/* One timed pread of 4 bytes; 0 on success. */
static int timed_read(int fd, off_t off, uint64_t *ns)
{
    uint32_t val;
    uint64_t t0 = now_ns();
    ssize_t n = pread(fd, &val, sizeof(val), off);

    *ns = now_ns() - t0;
    return n == sizeof(val) ? 0 : -1;
}

/*
 * Round-robin over the files, one read each per round: every function's
 * samples span the same stretch of time, so a host whose load changes
 * during the run slows them all alike (this one is shared and nested).
 */
static int bench_configs(char **paths, int nfiles, size_t reads, unsigned secs, uint64_t *s)
{
    int fds[nfiles];
    size_t n = 0;
    int rc = 0;

    for (int f = 0; f < nfiles; f++)
        if ((fds[f] = open(paths[f], O_RDONLY)) < 0) {
            printf("PCIBENCH-FAILED %s: %s\n", paths[f], strerror(errno));
            while (f--)
                close(fds[f]);
            return -1;
        }
    uint64_t deadline = now_ns() + (uint64_t)secs * 1000000000u;
    for (; n < reads && rc == 0 && now_ns() < deadline; n++)
        for (int f = 0; f < nfiles && rc == 0; f++)
            if (timed_read(fds[f], offsets[n % N_OFFSETS], &s[(size_t)f * reads + n]) < 0) {
                printf("PCIBENCH-FAILED %s: short read at %#llx\n", paths[f],
                       (unsigned long long)offsets[n % N_OFFSETS]);
                rc = -1;
            }
    for (int f = 0; f < nfiles; f++) {
        close(fds[f]);
        if (rc == 0)
            print_stats("PCIBENCH", function_name(paths[f]), "reads", &s[(size_t)f * reads], n);
    }
    return rc;
}

static int bench_rescan(size_t runs, uint64_t *s)
{
    for (size_t i = 0; i < runs; i++) {
        int fd = open("/sys/bus/pci/rescan", O_WRONLY);
        if (fd < 0) {
            printf("PCIRESCAN-FAILED: %s\n", strerror(errno));
            return -1;
        }
        uint64_t t0 = now_ns();
        ssize_t w = write(fd, "1", 1);
        s[i] = now_ns() - t0;
        close(fd);
        if (w != 1) {
            printf("PCIRESCAN-FAILED: %s\n", strerror(errno));
            return -1;
        }
    }
    print_stats("PCIRESCAN", "", "runs", s, runs);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: cfgread-bench [-n READS] [-t SECS] CONFIG...\n"
                    "       cfgread-bench -r COUNT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    size_t reads = 10000, rescans = 0;
    unsigned secs = 180;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "n:t:r:")) != -1) {
        char *end;
        if (opt == '?')
            usage();
        unsigned long v = strtoul(optarg, &end, 10);
        if (*end || v == 0 || v > 10000000)
            usage();
        if (opt == 'n')
            reads = v;
        else if (opt == 't')
            secs = (unsigned)v;
        else
            rescans = v;
    }
    if (rescans == 0 && optind == argc)
        usage();
    size_t nfiles = (size_t)(argc - optind);
    uint64_t *s = calloc(nfiles * reads > rescans ? nfiles * reads : rescans, sizeof(*s));
    if (!s)
        return 1;
    if (rescans)
        rc |= bench_rescan(rescans, s);
    if (nfiles)
        rc |= bench_configs(argv + optind, (int)nfiles, reads, secs, s);
    free(s);
    fflush(stdout);
    return rc ? 1 : 0;
}
