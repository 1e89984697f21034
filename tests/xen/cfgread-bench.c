/*
 * Config-space read latency, measured inside a guest (the real-Xen tier's
 * side-by-side scenario; built static on the host, run from the guest's
 * initramfs, which has no C library).
 *
 *   cfgread-bench [-n READS] [-t SECS] CONFIG...
 *       READS timed 4-byte preads of each sysfs config file, cycling over a
 *       few registers; one line per file:
 *       PCIBENCH 0000:00:07.0 reads=10000 p50=41000 p99=90000 max=... mean=... (ns)
 *       Stops early after SECS seconds per file (reads= says how many ran).
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

static int bench_config(const char *path, size_t reads, unsigned secs, uint64_t *s)
{
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    uint32_t val;

    if (fd < 0) {
        printf("PCIBENCH-FAILED %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint64_t deadline = now_ns() + (uint64_t)secs * 1000000000u;
    for (; n < reads; n++) {
        uint64_t t0 = now_ns();
        if (pread(fd, &val, sizeof(val), offsets[n % N_OFFSETS]) != sizeof(val)) {
            printf("PCIBENCH-FAILED %s: short read at %#llx\n", path,
                   (unsigned long long)offsets[n % N_OFFSETS]);
            close(fd);
            return -1;
        }
        s[n] = now_ns() - t0;
        if (s[n] + t0 > deadline)
            break;
    }
    close(fd);
    print_stats("PCIBENCH", function_name(path), "reads", s, n < reads ? n + 1 : n);
    return 0;
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
    unsigned secs = 30;
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
    uint64_t *s = malloc(sizeof(*s) * (reads > rescans ? reads : rescans));
    if (!s)
        return 1;
    if (rescans)
        rc |= bench_rescan(rescans, s);
    for (int i = optind; i < argc; i++)
        rc |= bench_config(argv[i], reads, secs, s);
    free(s);
    fflush(stdout);
    return rc ? 1 : 0;
}
