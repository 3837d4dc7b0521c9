// fs_ops: filesystem micro-operations in a tight loop in one process, timed with
// CLOCK_MONOTONIC, for Benchmarks/fs_bench.sh. Built by that script:
//   gcc -O2 -Wall -o fs_ops Benchmarks/fs_ops.c
//
// Usage (files are DIR/<prefix>NNNNNNN, or DIR/dNNN/<prefix>NNNNNNN with SUBDIRS > 0, file i
// in directory i % SUBDIRS):
//   fs_ops create  DIR N SIZE [SUBDIRS]   open(O_CREAT|O_TRUNC)+write SIZE bytes+close per file
//                                         (SIZE 0: empty files). Makes DIR and the subdirs.
//   fs_ops stat    DIR N [SUBDIRS]        stat(path) per file
//   fs_ops read    DIR N SIZE [SUBDIRS]   open+read to EOF+close per file; checks the size
//   fs_ops rename  DIR N [SUBDIRS]        rename <prefix>NNN -> <to-prefix>NNN in the same dir
//   fs_ops unlink  DIR N [SUBDIRS]        unlink per file (then rmdir of the subdirs, untimed)
//   fs_ops readdir DIR                    opendir + readdir to the end + closedir
//   fs_ops seqwrite FILE MB               write MB MiB in 1 MiB blocks of random bytes, fsync, close
//   fs_ops seqread  FILE                  read to EOF in 1 MiB blocks
// Options before the subcommand: -p PREFIX (default "f"), -t TO_PREFIX (rename target,
// default "r"), -F K (every K items of a per-file loop: write 2 to /proc/sys/vm/drop_caches and
// sleep 0.1 s, outside the measured time; needs root).
//
// Output: one line on stdout,
//   RESULT op=<op> n=<ops> bytes=<bytes> secs=<s> ops_s=<ops/s> mb_s=<MB/s> paused=<s>
// (secs excludes the -F pauses).
// (MB = 10^6 bytes). Any failed call prints the call, path, index and errno on stderr and
// exits 1. Content is pseudo-random (xorshift), different for every file and block, so no
// layer can special-case zeros or deduplicate.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static const char *prefix = "f";
static const char *to_prefix = "r";
static long forget_every = 0;   // -F K: every K items, pause the clock and drop the dentry/inode caches
static double paused = 0;       // seconds spent in those pauses, taken out of the measurement

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *call, const char *path, long index) {
    int e = errno;
    fprintf(stderr, "fs_ops: %s %s (item %ld): %s (errno %d)\n", call, path ? path : "", index, strerror(e), e);
    exit(1);
}

static void fill_random(unsigned char *buf, size_t len, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    for (; i < len; i++) buf[i] = (unsigned char)(x >> (8 * (i & 7)));
}

// Makes the kernel evict unused dentries and inodes (so a FUSE daemon gets FORGETs and can
// release what it holds per inode, such as passthrough_ll's O_PATH descriptor), then waits a
// little for the daemon to process them. Not counted in the measured time.
static void maybe_forget(long i) {
    if (forget_every <= 0 || i == 0 || i % forget_every != 0) return;
    double t0 = now();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0) die("open", "/proc/sys/vm/drop_caches", i);
    if (write(fd, "2", 1) != 1) die("write", "/proc/sys/vm/drop_caches", i);
    close(fd);
    usleep(100000);
    paused += now() - t0;
}

static void path_of(char *out, size_t cap, const char *dir, long i, long subdirs, const char *pfx) {
    if (subdirs > 0)
        snprintf(out, cap, "%s/d%03ld/%s%07ld", dir, i % subdirs, pfx, i);
    else
        snprintf(out, cap, "%s/%s%07ld", dir, pfx, i);
}

static void report(const char *op, long n, double bytes, double secs) {
    secs -= paused;
    if (secs <= 0) secs = 1e-9;
    printf("RESULT op=%s n=%ld bytes=%.0f secs=%.6f ops_s=%.1f mb_s=%.2f paused=%.3f\n", op, n, bytes, secs,
           n / secs, bytes / secs / 1e6, paused);
}

static long arg_long(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        fprintf(stderr, "fs_ops: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void make_dirs(const char *dir, long subdirs) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("mkdir", dir, -1);
    char p[4096];
    for (long d = 0; d < subdirs; d++) {
        snprintf(p, sizeof p, "%s/d%03ld", dir, d);
        if (mkdir(p, 0755) != 0 && errno != EEXIST) die("mkdir", p, d);
    }
}

static void write_all(int fd, const unsigned char *buf, size_t len, const char *path, long i) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write", path, i);
        }
        buf += w;
        len -= (size_t)w;
    }
}

static int cmd_create(const char *dir, long n, long size, long subdirs) {
    make_dirs(dir, subdirs);
    // One random buffer; every file gets its index stamped into its first bytes so no two
    // files are equal.
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    fill_random(buf, (size_t)size, 12345);
    char p[4096];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        maybe_forget(i);
        path_of(p, sizeof p, dir, i, subdirs, prefix);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("open(O_CREAT)", p, i);
        if (size > 0) {
            if (size >= 8) memcpy(buf, &i, sizeof i);
            write_all(fd, buf, (size_t)size, p, i);
        }
        if (close(fd) != 0) die("close", p, i);
    }
    report("create", n, (double)n * (double)size, now() - t0);
    free(buf);
    return 0;
}

static int cmd_stat(const char *dir, long n, long subdirs) {
    char p[4096];
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        maybe_forget(i);
        path_of(p, sizeof p, dir, i, subdirs, prefix);
        if (stat(p, &st) != 0) die("stat", p, i);
    }
    report("stat", n, 0, now() - t0);
    return 0;
}

static int cmd_read(const char *dir, long n, long size, long subdirs) {
    size_t cap = (size_t)(size > 0 ? size : 0) + 65536;
    unsigned char *buf = malloc(cap);
    char p[4096];
    double bytes = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        maybe_forget(i);
        path_of(p, sizeof p, dir, i, subdirs, prefix);
        int fd = open(p, O_RDONLY);
        if (fd < 0) die("open(O_RDONLY)", p, i);
        long got = 0;
        for (;;) {
            ssize_t r = read(fd, buf, cap);
            if (r < 0) {
                if (errno == EINTR) continue;
                die("read", p, i);
            }
            if (r == 0) break;
            got += r;
        }
        if (close(fd) != 0) die("close", p, i);
        if (got != size) {
            fprintf(stderr, "fs_ops: read %s (item %ld): %ld bytes, expected %ld\n", p, i, got, size);
            exit(1);
        }
        bytes += (double)got;
    }
    report("read", n, bytes, now() - t0);
    free(buf);
    return 0;
}

static int cmd_rename(const char *dir, long n, long subdirs) {
    char a[4096], b[4096];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        maybe_forget(i);
        path_of(a, sizeof a, dir, i, subdirs, prefix);
        path_of(b, sizeof b, dir, i, subdirs, to_prefix);
        if (rename(a, b) != 0) die("rename", a, i);
    }
    report("rename", n, 0, now() - t0);
    return 0;
}

static int cmd_unlink(const char *dir, long n, long subdirs) {
    char p[4096];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        maybe_forget(i);
        path_of(p, sizeof p, dir, i, subdirs, prefix);
        if (unlink(p) != 0) die("unlink", p, i);
    }
    double secs = now() - t0;
    for (long d = 0; d < subdirs; d++) {
        snprintf(p, sizeof p, "%s/d%03ld", dir, d);
        if (rmdir(p) != 0) die("rmdir", p, d);
    }
    report("unlink", n, 0, secs);
    return 0;
}

static int cmd_readdir(const char *dir) {
    double t0 = now();
    DIR *d = opendir(dir);
    if (!d) die("opendir", dir, -1);
    long count = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!(e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))) count++;
        errno = 0;
    }
    if (errno) die("readdir", dir, count);
    closedir(d);
    report("readdir", count, 0, now() - t0);
    return 0;
}

#define BLOCK (1 << 20)

static int cmd_seqwrite(const char *file, long mb) {
    unsigned char *buf = malloc(BLOCK);
    fill_random(buf, BLOCK, 777);
    double t0 = now();
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open(O_CREAT)", file, -1);
    for (long i = 0; i < mb; i++) {
        // A different block every time (cheap: restamp 64 bytes spread over the block).
        for (int k = 0; k < 8; k++) {
            uint64_t v = (uint64_t)i * 8 + (uint64_t)k + 1;
            memcpy(buf + (size_t)k * (BLOCK / 8), &v, sizeof v);
        }
        write_all(fd, buf, BLOCK, file, i);
    }
    if (fsync(fd) != 0) die("fsync", file, -1);
    if (close(fd) != 0) die("close", file, -1);
    report("seqwrite", mb, (double)mb * BLOCK, now() - t0);
    free(buf);
    return 0;
}

static int cmd_seqread(const char *file) {
    unsigned char *buf = malloc(BLOCK);
    double t0 = now();
    int fd = open(file, O_RDONLY);
    if (fd < 0) die("open(O_RDONLY)", file, -1);
    double bytes = 0;
    long blocks = 0;
    for (;;) {
        ssize_t r = read(fd, buf, BLOCK);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read", file, blocks);
        }
        if (r == 0) break;
        bytes += (double)r;
        blocks++;
    }
    if (close(fd) != 0) die("close", file, -1);
    report("seqread", blocks, bytes, now() - t0);
    free(buf);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: fs_ops [-p PREFIX] [-t TO_PREFIX] [-F K] create DIR N SIZE [SUBDIRS] | stat DIR N [SUBDIRS] |\n"
            "       read DIR N SIZE [SUBDIRS] | rename DIR N [SUBDIRS] | unlink DIR N [SUBDIRS] |\n"
            "       readdir DIR | seqwrite FILE MB | seqread FILE\n");
    exit(2);
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "+p:t:F:")) != -1) {
        if (opt == 'p')
            prefix = optarg;
        else if (opt == 't')
            to_prefix = optarg;
        else if (opt == 'F')
            forget_every = arg_long(optarg, "-F");
        else
            usage();
    }
    argc -= optind;
    argv += optind;
    if (argc < 2) usage();
    const char *cmd = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "create") && (argc == 4 || argc == 5))
        return cmd_create(argv[1], arg_long(argv[2], "N"), arg_long(argv[3], "SIZE"),
                          argc == 5 ? arg_long(argv[4], "SUBDIRS") : 0);
    if (!strcmp(cmd, "stat") && (argc == 3 || argc == 4))
        return cmd_stat(argv[1], arg_long(argv[2], "N"), argc == 4 ? arg_long(argv[3], "SUBDIRS") : 0);
    if (!strcmp(cmd, "read") && (argc == 4 || argc == 5))
        return cmd_read(argv[1], arg_long(argv[2], "N"), arg_long(argv[3], "SIZE"),
                        argc == 5 ? arg_long(argv[4], "SUBDIRS") : 0);
    if (!strcmp(cmd, "rename") && (argc == 3 || argc == 4))
        return cmd_rename(argv[1], arg_long(argv[2], "N"), argc == 4 ? arg_long(argv[3], "SUBDIRS") : 0);
    if (!strcmp(cmd, "unlink") && (argc == 3 || argc == 4))
        return cmd_unlink(argv[1], arg_long(argv[2], "N"), argc == 4 ? arg_long(argv[3], "SUBDIRS") : 0);
    if (!strcmp(cmd, "readdir") && argc == 2) return cmd_readdir(argv[1]);
    if (!strcmp(cmd, "seqwrite") && argc == 3) return cmd_seqwrite(argv[1], arg_long(argv[2], "MB"));
    if (!strcmp(cmd, "seqread") && argc == 2) return cmd_seqread(argv[1]);
    usage();
    return 2;
}
