/*
 * peer_bench: the workloads of `slice bench`, run through the C APIs of LevelDB, RocksDB and
 * LMDB with the same operation sequences and the same result lines, so the engines can be
 * compared side by side. Built by Benchmarks/compare.sh from Debian's libleveldb-dev,
 * librocksdb-dev and liblmdb-dev (or a RocksDB built from source: ROCKSDB_DIR); each engine is
 * compiled in only when asked (-DHAVE_LEVELDB ...).
 *
 * The workloads (Sources/slice/BenchWorkload.swift defines the same, byte for byte):
 *   keys      `%016ld` of i, 0 <= i < num (key_size digits); a missing key is the first
 *             key_size-1 digits of a key plus 'x', so it falls between existing keys
 *   values    value_size bytes sliced from a 1 MiB pool at a random offset per put; with
 *             --compression_ratio=r < 1 each 100-byte piece of the pool keeps its first
 *             max(1, (int)(100 r)) random bytes and repeats them to the piece's end
 *   random    splitmix64; a workload's generator is seeded with FNV-1a-64 of its name plus
 *             thread * 0x9E3779B97F4A7C15; values draw from a second generator (seed ^ VALUE_SALT)
 *   fillseq / deleteseq        every key once in order; fillrandom / deleterandom: every key
 *             once in a Fisher-Yates permutation (generator of the name, thread 0). With T
 *             threads the sequence is cut into T contiguous parts, one per thread.
 *   overwrite num uniform puts; readrandom / readmissing: num uniform gets of existing /
 *             missing keys; seekrandom: num times a fresh iterator, seek to a uniform key, read
 *             it and 10 more entries (key and value each). With T threads these split the count.
 *   readseq   one full scan (key and value of every entry), one thread
 *   compact   one manual compaction of the whole key range (memtable included)
 *   ycsb_a / ycsb_b / ycsb_c   num operations, 50 / 95 / 100 % gets, the rest blind puts;
 *             keys: YCSB's zipfian generator (theta 0.99, over num items) scrambled through
 *             FNV-1a-64 of the rank's 8 little-endian bytes, modulo num
 *   --batch_size=B  fills put B consecutive keys of their sequence per write batch
 *   After every writing workload (untimed) the store directory is watched until it has been
 *   unchanged (file count, sizes, mtimes) for a second: background work is over.
 * Settings: WAL on, fsync per write only with --sync=1, --compression=none (default), snappy,
 * lz4 or zstd on every level (LevelDB: none or snappy), the given block cache
 * and bloom bits (0: no filter), the engine's default write buffer unless one is given. Prints
 * peak RSS (VmHWM) at the end.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef HAVE_LMDB
#include <lmdb.h>
#endif

static const char *engine = "leveldb";
static const char *benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,seekrandom,ycsb_a,ycsb_b,ycsb_c,deleterandom";
static long num = 1000000, reads = -1;
static int key_size = 16, value_size = 100, do_sync = 0, bloom_bits = 0, threads = 1, batch_size = 1, settle = 1;
static long cache_size = 8 << 20, write_buffer_size = 0; /* 0: the engine's default */
static const char *compression = "none";
static double compression_ratio = 1.0;
static const char *db_path = "/tmp/peerbench";

#define POOL_SIZE (1 << 20)
#define GOLDEN 0x9E3779B97F4A7C15ULL
#define VALUE_SALT 0x56414C554553ULL /* "VALUES" */
static unsigned char *pool;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += GOLDEN);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001B3ULL; }
    return h;
}

static uint64_t seed_of(const char *name, int thread) { return fnv1a(name, strlen(name)) + (uint64_t)thread * GOLDEN; }

static void make_key(long i, char *k) {
    for (int p = key_size - 1; p >= 0; p--) { k[p] = (char)('0' + i % 10); i /= 10; }
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "peer_bench: %s: %s\n", what, err ? err : "failed");
    exit(2);
}

/* ---- engine abstraction ---- */
typedef struct {
    void (*open)(int fresh);
    void (*write)(const long *keys, const uint32_t *offsets, int n); /* n puts in one batch */
    void (*del)(const char *k, size_t kl);
    int (*get)(const char *k, size_t kl, size_t *vl);
    long (*seek)(const char *k, size_t kl, int count, size_t *bytes); /* entries read */
    long (*scan)(size_t *bytes);
    void (*compact)(void); /* the whole key range, memtable included (NULL: not supported) */
    void (*close)(void);
} Engine;

static void rmrf(const char *p) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) die("rm", p);
}

#ifdef HAVE_LEVELDB
static leveldb_t *ldb; static leveldb_options_t *lopt; static leveldb_writeoptions_t *lwo;
static leveldb_readoptions_t *lro; static leveldb_cache_t *lcache; static leveldb_filterpolicy_t *lfp;
static void l_open(int fresh) {
    char *err = NULL;
    if (fresh) rmrf(db_path);
    lopt = leveldb_options_create();
    leveldb_options_set_create_if_missing(lopt, 1);
    if (!strcmp(compression, "snappy")) leveldb_options_set_compression(lopt, leveldb_snappy_compression);
    else if (!strcmp(compression, "none")) leveldb_options_set_compression(lopt, leveldb_no_compression);
    else die("leveldb compression (none or snappy)", compression);
    if (write_buffer_size > 0) leveldb_options_set_write_buffer_size(lopt, write_buffer_size);
    lcache = leveldb_cache_create_lru(cache_size);
    leveldb_options_set_cache(lopt, lcache);
    leveldb_options_set_max_open_files(lopt, 5000);
    if (bloom_bits > 0) { lfp = leveldb_filterpolicy_create_bloom(bloom_bits); leveldb_options_set_filter_policy(lopt, lfp); }
    ldb = leveldb_open(lopt, db_path, &err);
    if (err) die("leveldb_open", err);
    lwo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(lwo, do_sync);
    lro = leveldb_readoptions_create();
}
static void l_write(const long *keys, const uint32_t *offsets, int n) {
    char *err = NULL, k[64];
    if (n == 1) {
        make_key(keys[0], k);
        leveldb_put(ldb, lwo, k, key_size, (const char *)pool + offsets[0], value_size, &err);
    } else {
        leveldb_writebatch_t *b = leveldb_writebatch_create();
        for (int j = 0; j < n; j++) { make_key(keys[j], k); leveldb_writebatch_put(b, k, key_size, (const char *)pool + offsets[j], value_size); }
        leveldb_write(ldb, lwo, b, &err);
        leveldb_writebatch_destroy(b);
    }
    if (err) die("write", err);
}
static void l_del(const char *k, size_t kl) { char *err = NULL; leveldb_delete(ldb, lwo, k, kl, &err); if (err) die("delete", err); }
static int l_get(const char *k, size_t kl, size_t *vl) {
    char *err = NULL; char *v = leveldb_get(ldb, lro, k, kl, vl, &err); if (err) die("get", err);
    if (v) { leveldb_free(v); return 1; } *vl = 0; return 0;
}
static long l_seek(const char *k, size_t kl, int count, size_t *bytes) {
    leveldb_iterator_t *it = leveldb_create_iterator(ldb, lro); long n = 0; *bytes = 0;
    for (leveldb_iter_seek(it, k, kl); n < count && leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t a, b; leveldb_iter_key(it, &a); leveldb_iter_value(it, &b); *bytes += a + b; n++;
    }
    leveldb_iter_destroy(it); return n;
}
static long l_scan(size_t *bytes) {
    long n = 0; *bytes = 0; leveldb_iterator_t *it = leveldb_create_iterator(ldb, lro);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) { size_t a, b; leveldb_iter_key(it, &a); leveldb_iter_value(it, &b); *bytes += a + b; n++; }
    leveldb_iter_destroy(it); return n;
}
static void l_close(void) { leveldb_close(ldb); leveldb_options_destroy(lopt); leveldb_cache_destroy(lcache); if (lfp) leveldb_filterpolicy_destroy(lfp); lfp = NULL; }
static void l_compact(void) { leveldb_compact_range(ldb, NULL, 0, NULL, 0); }
static Engine LEVELDB = {l_open, l_write, l_del, l_get, l_seek, l_scan, l_compact, l_close};
#endif

#ifdef HAVE_ROCKSDB
static rocksdb_t *rdb; static rocksdb_options_t *ropt; static rocksdb_writeoptions_t *rwo;
static rocksdb_readoptions_t *rro; static rocksdb_cache_t *rcache; static rocksdb_block_based_table_options_t *rbbt;
static void r_open(int fresh) {
    char *err = NULL;
    if (fresh) rmrf(db_path);
    ropt = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(ropt, 1);
    if (!strcmp(compression, "none")) rocksdb_options_set_compression(ropt, rocksdb_no_compression);
    else if (!strcmp(compression, "snappy")) rocksdb_options_set_compression(ropt, rocksdb_snappy_compression);
    else if (!strcmp(compression, "lz4")) rocksdb_options_set_compression(ropt, rocksdb_lz4_compression);
    else if (!strcmp(compression, "zstd")) rocksdb_options_set_compression(ropt, rocksdb_zstd_compression);
    else die("rocksdb compression", compression);
    if (write_buffer_size > 0) rocksdb_options_set_write_buffer_size(ropt, write_buffer_size);
    rocksdb_options_set_max_open_files(ropt, 5000);
    rocksdb_options_increase_parallelism(ropt, 2);
    rbbt = rocksdb_block_based_options_create();
    rcache = rocksdb_cache_create_lru(cache_size);
    rocksdb_block_based_options_set_block_cache(rbbt, rcache);
    if (bloom_bits > 0) rocksdb_block_based_options_set_filter_policy(rbbt, rocksdb_filterpolicy_create_bloom_full(bloom_bits));
    rocksdb_options_set_block_based_table_factory(ropt, rbbt);
    rdb = rocksdb_open(ropt, db_path, &err);
    if (err) die("rocksdb_open", err);
    rwo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(rwo, do_sync);
    rro = rocksdb_readoptions_create();
}
static void r_write(const long *keys, const uint32_t *offsets, int n) {
    char *err = NULL, k[64];
    if (n == 1) {
        make_key(keys[0], k);
        rocksdb_put(rdb, rwo, k, key_size, (const char *)pool + offsets[0], value_size, &err);
    } else {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        for (int j = 0; j < n; j++) { make_key(keys[j], k); rocksdb_writebatch_put(b, k, key_size, (const char *)pool + offsets[j], value_size); }
        rocksdb_write(rdb, rwo, b, &err);
        rocksdb_writebatch_destroy(b);
    }
    if (err) die("write", err);
}
static void r_del(const char *k, size_t kl) { char *err = NULL; rocksdb_delete(rdb, rwo, k, kl, &err); if (err) die("delete", err); }
static int r_get(const char *k, size_t kl, size_t *vl) {
    char *err = NULL; char *v = rocksdb_get(rdb, rro, k, kl, vl, &err); if (err) die("get", err);
    if (v) { rocksdb_free(v); return 1; } *vl = 0; return 0;
}
static long r_seek(const char *k, size_t kl, int count, size_t *bytes) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(rdb, rro); long n = 0; *bytes = 0;
    for (rocksdb_iter_seek(it, k, kl); n < count && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t a, b; rocksdb_iter_key(it, &a); rocksdb_iter_value(it, &b); *bytes += a + b; n++;
    }
    rocksdb_iter_destroy(it); return n;
}
static long r_scan(size_t *bytes) {
    long n = 0; *bytes = 0; rocksdb_iterator_t *it = rocksdb_create_iterator(rdb, rro);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) { size_t a, b; rocksdb_iter_key(it, &a); rocksdb_iter_value(it, &b); *bytes += a + b; n++; }
    rocksdb_iter_destroy(it); return n;
}
static void r_close(void) { rocksdb_close(rdb); rocksdb_options_destroy(ropt); }
static void r_compact(void) { rocksdb_compact_range(rdb, NULL, 0, NULL, 0); }
static Engine ROCKSDB = {r_open, r_write, r_del, r_get, r_seek, r_scan, r_compact, r_close};
#endif

#ifdef HAVE_LMDB
static MDB_env *menv; static MDB_dbi mdbi;
static void m_check(int rc, const char *what) { if (rc) die(what, mdb_strerror(rc)); }
static void m_open(int fresh) {
    if (fresh) rmrf(db_path);
    mkdir(db_path, 0755);
    m_check(mdb_env_create(&menv), "env_create");
    m_check(mdb_env_set_mapsize(menv, (size_t)64 << 30), "mapsize");
    m_check(mdb_env_set_maxreaders(menv, 256), "maxreaders");
    /* MDB_NOSYNC: like a WAL without fsync (survives a process crash, not a power cut). */
    m_check(mdb_env_open(menv, db_path, (do_sync ? 0 : MDB_NOSYNC) | MDB_NOTLS, 0644), "env_open");
    MDB_txn *t; m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn"); m_check(mdb_dbi_open(t, NULL, 0, &mdbi), "dbi"); m_check(mdb_txn_commit(t), "commit");
}
static void m_write(const long *keys, const uint32_t *offsets, int n) {
    MDB_txn *t; char k[64]; m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn");
    for (int j = 0; j < n; j++) { make_key(keys[j], k); MDB_val key = {key_size, k}, val = {value_size, pool + offsets[j]}; m_check(mdb_put(t, mdbi, &key, &val, 0), "put"); }
    m_check(mdb_txn_commit(t), "commit");
}
static void m_del(const char *k, size_t kl) {
    MDB_txn *t; MDB_val key = {kl, (void *)k}; m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn");
    int rc = mdb_del(t, mdbi, &key, NULL); if (rc && rc != MDB_NOTFOUND) m_check(rc, "del"); m_check(mdb_txn_commit(t), "commit");
}
static int m_get(const char *k, size_t kl, size_t *vl) {
    MDB_txn *t; MDB_val key = {kl, (void *)k}, val; m_check(mdb_txn_begin(menv, NULL, MDB_RDONLY, &t), "txn");
    int rc = mdb_get(t, mdbi, &key, &val); *vl = rc ? 0 : val.mv_size; mdb_txn_abort(t); return rc == 0;
}
static long m_seek(const char *k, size_t kl, int count, size_t *bytes) {
    MDB_txn *t; MDB_cursor *c; MDB_val key = {kl, (void *)k}, val; long n = 0; *bytes = 0;
    m_check(mdb_txn_begin(menv, NULL, MDB_RDONLY, &t), "txn"); mdb_cursor_open(t, mdbi, &c);
    for (int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0 && n < count; rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) { *bytes += key.mv_size + val.mv_size; n++; }
    mdb_cursor_close(c); mdb_txn_abort(t); return n;
}
static long m_scan(size_t *bytes) {
    MDB_txn *t; MDB_cursor *c; MDB_val key, val; long n = 0; *bytes = 0; m_check(mdb_txn_begin(menv, NULL, MDB_RDONLY, &t), "txn");
    mdb_cursor_open(t, mdbi, &c); while (mdb_cursor_get(c, &key, &val, MDB_NEXT) == 0) { n++; *bytes += key.mv_size + val.mv_size; }
    mdb_cursor_close(c); mdb_txn_abort(t); return n;
}
static void m_close(void) { mdb_env_close(menv); }
static Engine LMDB = {m_open, m_write, m_del, m_get, m_seek, m_scan, NULL, m_close};
#endif

/* ---- workloads ---- */
static Engine *e;

/* YCSB's zipfian generator over `items` (Gray et al.; YCSB's ZipfianGenerator). */
typedef struct { double theta, alpha, zetan, eta, half_pow; long items; } Zipf;
static Zipf zipf_make(long items, double theta) {
    Zipf z = {theta, 1 / (1 - theta), 0, 0, pow(0.5, theta), items};
    for (long i = 0; i < items; i++) z.zetan += 1 / pow((double)(i + 1), theta);
    double zeta2 = 1 + pow(0.5, theta);
    z.eta = (1 - pow(2.0 / items, 1 - theta)) / (1 - zeta2 / z.zetan);
    return z;
}
static long zipf_next(const Zipf *z, double u) {
    double uz = u * z->zetan;
    if (uz < 1) return 0;
    if (uz < 1 + z->half_pow) return 1;
    long v = (long)(z->items * pow(z->eta * u - z->eta + 1, z->alpha));
    return v < z->items ? v : z->items - 1;
}
static double unit(uint64_t *s) { return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0); }

typedef struct {
    const char *name; int thread; long from, to; /* part of a sequence, or a count */
    const long *perm; const Zipf *zipf; int read_percent;
    long ops, found; double bytes, secs;
} Job;

static void *run_job(void *arg) {
    Job *j = arg;
    const char *name = j->name;
    uint64_t rng = seed_of(name, j->thread), vrng = rng ^ VALUE_SALT;
    char k[64];
    size_t vl, b;
    long batch_keys[1024]; uint32_t batch_offsets[1024];
    double t0 = now();
    if (!strcmp(name, "fillseq") || !strcmp(name, "fillrandom")) {
        int n = 0;
        for (long i = j->from; i < j->to; i++) {
            batch_keys[n] = j->perm ? j->perm[i] : i;
            batch_offsets[n] = (uint32_t)(splitmix(&vrng) % (POOL_SIZE - value_size + 1));
            if (++n == batch_size || i + 1 == j->to) { e->write(batch_keys, batch_offsets, n); n = 0; }
        }
        j->ops = j->to - j->from; j->bytes = (double)j->ops * (key_size + value_size);
    } else if (!strcmp(name, "overwrite")) {
        for (long i = j->from; i < j->to; i++) {
            long key = (long)(splitmix(&rng) % (uint64_t)num);
            uint32_t off = (uint32_t)(splitmix(&vrng) % (POOL_SIZE - value_size + 1));
            e->write(&key, &off, 1);
        }
        j->ops = j->to - j->from; j->bytes = (double)j->ops * (key_size + value_size);
    } else if (!strcmp(name, "deleteseq") || !strcmp(name, "deleterandom")) {
        for (long i = j->from; i < j->to; i++) { make_key(j->perm ? j->perm[i] : i, k); e->del(k, key_size); }
        j->ops = j->to - j->from; j->bytes = (double)j->ops * key_size;
    } else if (!strcmp(name, "readrandom") || !strcmp(name, "readmissing")) {
        int missing = !strcmp(name, "readmissing");
        for (long i = j->from; i < j->to; i++) {
            make_key((long)(splitmix(&rng) % (uint64_t)num), k);
            if (missing) k[key_size - 1] = 'x';
            if (e->get(k, key_size, &vl)) { j->found++; j->bytes += key_size + vl; }
        }
        j->ops = j->to - j->from;
    } else if (!strcmp(name, "seekrandom")) {
        for (long i = j->from; i < j->to; i++) {
            make_key((long)(splitmix(&rng) % (uint64_t)num), k);
            if (e->seek(k, key_size, 11, &b) > 0) j->found++;
            j->bytes += b;
        }
        j->ops = j->to - j->from;
    } else if (j->zipf) {
        for (long i = j->from; i < j->to; i++) {
            int read = (long)(splitmix(&rng) % 100) < j->read_percent;
            uint64_t rank = (uint64_t)zipf_next(j->zipf, unit(&rng));
            long key = (long)(fnv1a(&rank, 8) % (uint64_t)num); /* little-endian bytes */
            if (read) {
                make_key(key, k);
                if (e->get(k, key_size, &vl)) { j->found++; j->bytes += key_size + vl; }
            } else {
                uint32_t off = (uint32_t)(splitmix(&vrng) % (POOL_SIZE - value_size + 1));
                e->write(&key, &off, 1);
                j->bytes += key_size + value_size;
            }
        }
        j->ops = j->to - j->from;
    }
    j->secs = now() - t0;
    return NULL;
}

/* Waits until the directory's file count, sizes and mtimes have not changed for a second. */
static void settle_dir(void) {
    char last[64] = "";
    double stable_since = now();
    for (;;) {
        uint64_t h = 0xCBF29CE484222325ULL; long files = 0;
        DIR *d = opendir(db_path);
        if (!d) return;
        struct dirent *de;
        char path[4096];
        while ((de = readdir(d))) {
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", db_path, de->d_name);
            if (stat(path, &st) != 0) continue;
            uint64_t v[3] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec};
            h += fnv1a(de->d_name, strlen(de->d_name)) ^ fnv1a(v, sizeof v); /* order-independent */
            files++;
        }
        closedir(d);
        char cur[64];
        snprintf(cur, sizeof cur, "%ld:%llu", files, (unsigned long long)h);
        if (strcmp(cur, last)) { strcpy(last, cur); stable_since = now(); }
        else if (now() - stable_since >= 1.0) return;
        usleep(100000);
    }
}

static long *permutation(const char *name) {
    long *p = malloc(sizeof(long) * num);
    for (long i = 0; i < num; i++) p[i] = i;
    uint64_t s = seed_of(name, 0);
    for (long i = num - 1; i > 0; i--) { long j = (long)(splitmix(&s) % (uint64_t)(i + 1)), t = p[i]; p[i] = p[j]; p[j] = t; }
    return p;
}

static void report(const char *name, long ops, double secs, double bytes, long found, int is_read) {
    printf("%-12s : %11.3f micros/op;", name, ops ? secs * 1e6 / ops : 0.0);
    if (bytes > 0) printf(" %6.1f MB/s", bytes / 1048576.0 / secs);
    if (is_read) printf(" (%ld of %ld found)", found, ops);
    printf("\n");
    fflush(stdout);
}

static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r"); char line[256]; long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "VmHWM:", 6)) v = atol(line + 6);
    fclose(f); return v;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *v = strchr(a, '=');
        if (!v) { fprintf(stderr, "peer_bench: flags are --name=value (got %s)\n", a); return 2; }
        *v++ = 0;
        if (!strcmp(a, "--engine")) engine = v;
        else if (!strcmp(a, "--benchmarks")) benchmarks = v;
        else if (!strcmp(a, "--num")) num = atol(v);
        else if (!strcmp(a, "--reads")) reads = atol(v);
        else if (!strcmp(a, "--key_size")) key_size = atoi(v);
        else if (!strcmp(a, "--value_size")) value_size = atoi(v);
        else if (!strcmp(a, "--sync")) do_sync = atoi(v);
        else if (!strcmp(a, "--bloom_bits")) bloom_bits = atoi(v);
        else if (!strcmp(a, "--cache_size")) cache_size = atol(v);
        else if (!strcmp(a, "--write_buffer_size")) write_buffer_size = atol(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--batch_size")) batch_size = atoi(v);
        else if (!strcmp(a, "--settle")) settle = atoi(v);
        else if (!strcmp(a, "--db")) db_path = v;
        else if (!strcmp(a, "--compression")) compression = v;
        else if (!strcmp(a, "--compression_ratio")) compression_ratio = atof(v);
        else { fprintf(stderr, "peer_bench: unknown flag %s\n", a); return 2; }
    }
    if (reads < 0) reads = num;
    if (threads < 1 || threads > 256 || batch_size < 1 || batch_size > 1024 || key_size < 8 || key_size > 32 ||
        value_size < 0 || value_size > POOL_SIZE) { fprintf(stderr, "peer_bench: bad flags\n"); return 2; }
#ifdef HAVE_LEVELDB
    if (!strcmp(engine, "leveldb")) e = &LEVELDB;
#endif
#ifdef HAVE_ROCKSDB
    if (!strcmp(engine, "rocksdb")) e = &ROCKSDB;
#endif
#ifdef HAVE_LMDB
    if (!strcmp(engine, "lmdb")) e = &LMDB;
#endif
    if (!e) { fprintf(stderr, "peer_bench: engine %s not compiled in\n", engine); return 2; }
    pool = malloc(POOL_SIZE);
    uint64_t ps = fnv1a("pool", 4);
    for (int i = 0; i < POOL_SIZE; i += 8) { uint64_t r = splitmix(&ps); memcpy(pool + i, &r, 8); }
    if (compression_ratio < 1) {
        int distinct = (int)(100 * compression_ratio);
        if (distinct < 1) distinct = 1;
        for (int i = 0; i < POOL_SIZE; i++) { int o = i % 100; if (o >= distinct) pool[i] = pool[i - o + o % distinct]; }
    }
    printf("%s bench: keys %d bytes, values %d bytes, entries %ld, threads %d, batch %d, cache %ld bytes, bloom %d bits, sync %d, compression %s (values compress to %g)\n",
           engine, key_size, value_size, num, threads, batch_size, cache_size, bloom_bits, do_sync, compression, compression_ratio);
    int opened = 0;
    char *list = strdup(benchmarks), *save = NULL;
    int default_threads = threads;
    for (char *token = strtok_r(list, ",", &save); token; token = strtok_r(NULL, ",", &save)) {
        /* name@T: that benchmark with T threads */
        char name[64];
        snprintf(name, sizeof name, "%s", token);
        char *at = strchr(name, '@');
        threads = default_threads;
        if (at) { *at = 0; threads = atoi(at + 1); if (threads < 1 || threads > 256) { fprintf(stderr, "peer_bench: bad %s\n", token); return 2; } }
        int fresh = !strncmp(name, "fill", 4);
        if (opened && fresh) { e->close(); opened = 0; }
        if (!opened) { e->open(fresh); opened = 1; }
        if (!strcmp(name, "compact")) {
            if (!e->compact) die("compact", "not supported by this engine");
            double t0 = now(); e->compact();
            report(token, 1, now() - t0, 0, 0, 0);
            continue;
        }
        if (!strcmp(name, "readseq")) {
            double t0 = now(); size_t b; long ops = e->scan(&b);
            report(token, ops, now() - t0, (double)b, 0, 0);
            continue;
        }
        int sequence = !strcmp(name, "fillseq") || !strcmp(name, "fillrandom") || !strcmp(name, "deleteseq") || !strcmp(name, "deleterandom");
        int is_read = !strcmp(name, "readrandom") || !strcmp(name, "readmissing") || !strcmp(name, "seekrandom");
        int read_percent = !strcmp(name, "ycsb_a") ? 50 : !strcmp(name, "ycsb_b") ? 95 : !strcmp(name, "ycsb_c") ? 100 : -1;
        if (!sequence && !is_read && read_percent < 0 && strcmp(name, "overwrite")) { fprintf(stderr, "peer_bench: unknown benchmark %s\n", name); continue; }
        long *perm = !strcmp(name, "fillrandom") || !strcmp(name, "deleterandom") ? permutation(name) : NULL;
        Zipf z; if (read_percent >= 0) z = zipf_make(num, 0.99);
        long total = is_read || read_percent >= 0 ? reads : num;
        Job jobs[256]; pthread_t tids[256];
        for (int t = 0; t < threads; t++) {
            jobs[t] = (Job){name, t, total * t / threads, total * (t + 1) / threads, perm, read_percent >= 0 ? &z : NULL, read_percent, 0, 0, 0, 0};
        }
        double t0 = now();
        for (int t = 0; t < threads; t++) pthread_create(&tids[t], NULL, run_job, &jobs[t]);
        for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
        double secs = now() - t0, bytes = 0; long ops = 0, found = 0;
        for (int t = 0; t < threads; t++) { ops += jobs[t].ops; found += jobs[t].found; bytes += jobs[t].bytes; }
        report(token, ops, secs, bytes, found, is_read || read_percent >= 0);
        free(perm);
        if (settle && !is_read && read_percent != 100) settle_dir();
    }
    if (opened) e->close();
    printf("peak RSS: %ld KiB\n", peak_rss_kib());
    return 0;
}
