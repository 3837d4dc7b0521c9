/*
 * peer_bench: the db_bench workloads of `slice bench`, run through the C APIs of LevelDB,
 * RocksDB and LMDB, printing the same result lines, so the engines can be compared side by
 * side. Built by Benchmarks/compare.sh from Debian's libleveldb-dev, librocksdb-dev and
 * liblmdb-dev (each engine is compiled in only when its header is found: -DHAVE_LEVELDB ...).
 *
 * Same keys (decimal, zero-padded to key_size), same value bytes, same random sequence
 * (xorshift64 seeded per thread as slice bench does), WAL on without fsync unless --sync,
 * no compression, the given cache size and bloom bits.
 */
#define _GNU_SOURCE
#include <errno.h>
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
static const char *benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,readhot,readseq,seekrandom,deleterandom,compact";
static long num = 1000000, reads = -1;
static int key_size = 16, value_size = 100, do_sync = 0, bloom_bits = 10;
static long cache_size = 8 << 20, write_buffer_size = 64 << 20;
static const char *db_path = "/tmp/peerbench";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_key(long i, char *k) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%ld", i);
    if (n >= key_size) { memcpy(k, digits + n - key_size, key_size); return; }
    memset(k, '0', key_size - n);
    memcpy(k + key_size - n, digits, n);
}

static long next_rand(uint64_t *r) {
    *r ^= *r << 13; *r ^= *r >> 7; *r ^= *r << 17;
    return (long)(*r % (uint64_t)num);
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "peer_bench: %s: %s\n", what, err ? err : "failed");
    exit(2);
}

/* ---- engine abstraction: open, put, del, get, seek, scan, compact, close ---- */
typedef struct {
    void (*open)(int fresh);
    void (*put)(const char *k, size_t kl, const char *v, size_t vl, int sync);
    void (*putbatch)(long first, int n, const char *v);
    void (*del)(const char *k, size_t kl);
    int (*get)(const char *k, size_t kl, size_t *vl);
    int (*seek)(const char *k, size_t kl, size_t *bytes);
    long (*scan)(size_t *bytes, int reverse);
    void (*compact)(void);
    void (*close)(void);
} Engine;

static void rmrf(const char *p) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) die("rm", p);
}

#ifdef HAVE_LEVELDB
static leveldb_t *ldb; static leveldb_options_t *lopt; static leveldb_writeoptions_t *lwo, *lwos;
static leveldb_readoptions_t *lro; static leveldb_cache_t *lcache; static leveldb_filterpolicy_t *lfp;
static void l_open(int fresh) {
    char *err = NULL;
    if (fresh) rmrf(db_path);
    lopt = leveldb_options_create();
    leveldb_options_set_create_if_missing(lopt, 1);
    leveldb_options_set_compression(lopt, leveldb_no_compression);
    leveldb_options_set_write_buffer_size(lopt, write_buffer_size);
    lcache = leveldb_cache_create_lru(cache_size);
    leveldb_options_set_cache(lopt, lcache);
    leveldb_options_set_max_open_files(lopt, 5000);
    if (bloom_bits > 0) { lfp = leveldb_filterpolicy_create_bloom(bloom_bits); leveldb_options_set_filter_policy(lopt, lfp); }
    ldb = leveldb_open(lopt, db_path, &err);
    if (err) die("leveldb_open", err);
    lwo = leveldb_writeoptions_create();
    lwos = leveldb_writeoptions_create(); leveldb_writeoptions_set_sync(lwos, 1);
    lro = leveldb_readoptions_create();
}
static void l_put(const char *k, size_t kl, const char *v, size_t vl, int sync) {
    char *err = NULL; leveldb_put(ldb, sync ? lwos : lwo, k, kl, v, vl, &err); if (err) die("put", err);
}
static void l_putbatch(long first, int n, const char *v) {
    char *err = NULL; char k[1100]; leveldb_writebatch_t *b = leveldb_writebatch_create();
    for (int j = 0; j < n; j++) { make_key(first + j, k); leveldb_writebatch_put(b, k, key_size, v, value_size); }
    leveldb_write(ldb, do_sync ? lwos : lwo, b, &err); if (err) die("write", err); leveldb_writebatch_destroy(b);
}
static void l_del(const char *k, size_t kl) { char *err = NULL; leveldb_delete(ldb, do_sync ? lwos : lwo, k, kl, &err); if (err) die("delete", err); }
static int l_get(const char *k, size_t kl, size_t *vl) {
    char *err = NULL; char *v = leveldb_get(ldb, lro, k, kl, vl, &err); if (err) die("get", err);
    if (v) { leveldb_free(v); return 1; } *vl = 0; return 0;
}
static int l_seek(const char *k, size_t kl, size_t *bytes) {
    leveldb_iterator_t *it = leveldb_create_iterator(ldb, lro); leveldb_iter_seek(it, k, kl); int found = 0; *bytes = 0;
    if (leveldb_iter_valid(it)) { size_t a, b; const char *key = leveldb_iter_key(it, &a); leveldb_iter_value(it, &b); *bytes = a + b; found = a == kl && memcmp(key, k, kl) == 0; }
    leveldb_iter_destroy(it); return found;
}
static long l_scan(size_t *bytes, int reverse) {
    long n = 0; *bytes = 0; leveldb_iterator_t *it = leveldb_create_iterator(ldb, lro);
    if (reverse) leveldb_iter_seek_to_last(it); else leveldb_iter_seek_to_first(it);
    for (; leveldb_iter_valid(it); reverse ? leveldb_iter_prev(it) : leveldb_iter_next(it)) { size_t a, b; leveldb_iter_key(it, &a); leveldb_iter_value(it, &b); *bytes += a + b; n++; }
    leveldb_iter_destroy(it); return n;
}
static void l_compact(void) { leveldb_compact_range(ldb, NULL, 0, NULL, 0); }
static void l_close(void) { leveldb_close(ldb); leveldb_options_destroy(lopt); leveldb_cache_destroy(lcache); if (lfp) leveldb_filterpolicy_destroy(lfp); lfp = NULL; }
static Engine LEVELDB = {l_open, l_put, l_putbatch, l_del, l_get, l_seek, l_scan, l_compact, l_close};
#endif

#ifdef HAVE_ROCKSDB
static rocksdb_t *rdb; static rocksdb_options_t *ropt; static rocksdb_writeoptions_t *rwo, *rwos;
static rocksdb_readoptions_t *rro; static rocksdb_cache_t *rcache; static rocksdb_block_based_table_options_t *rbbt;
static void r_open(int fresh) {
    char *err = NULL;
    if (fresh) rmrf(db_path);
    ropt = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(ropt, 1);
    rocksdb_options_set_compression(ropt, rocksdb_no_compression);
    rocksdb_options_set_write_buffer_size(ropt, write_buffer_size);
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
    rwos = rocksdb_writeoptions_create(); rocksdb_writeoptions_set_sync(rwos, 1);
    rro = rocksdb_readoptions_create();
}
static void r_put(const char *k, size_t kl, const char *v, size_t vl, int sync) {
    char *err = NULL; rocksdb_put(rdb, sync ? rwos : rwo, k, kl, v, vl, &err); if (err) die("put", err);
}
static void r_putbatch(long first, int n, const char *v) {
    char *err = NULL; char k[1100]; rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (int j = 0; j < n; j++) { make_key(first + j, k); rocksdb_writebatch_put(b, k, key_size, v, value_size); }
    rocksdb_write(rdb, do_sync ? rwos : rwo, b, &err); if (err) die("write", err); rocksdb_writebatch_destroy(b);
}
static void r_del(const char *k, size_t kl) { char *err = NULL; rocksdb_delete(rdb, do_sync ? rwos : rwo, k, kl, &err); if (err) die("delete", err); }
static int r_get(const char *k, size_t kl, size_t *vl) {
    char *err = NULL; char *v = rocksdb_get(rdb, rro, k, kl, vl, &err); if (err) die("get", err);
    if (v) { rocksdb_free(v); return 1; } *vl = 0; return 0;
}
static int r_seek(const char *k, size_t kl, size_t *bytes) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(rdb, rro); rocksdb_iter_seek(it, k, kl); int found = 0; *bytes = 0;
    if (rocksdb_iter_valid(it)) { size_t a, b; const char *key = rocksdb_iter_key(it, &a); rocksdb_iter_value(it, &b); *bytes = a + b; found = a == kl && memcmp(key, k, kl) == 0; }
    rocksdb_iter_destroy(it); return found;
}
static long r_scan(size_t *bytes, int reverse) {
    long n = 0; *bytes = 0; rocksdb_iterator_t *it = rocksdb_create_iterator(rdb, rro);
    if (reverse) rocksdb_iter_seek_to_last(it); else rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); reverse ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) { size_t a, b; rocksdb_iter_key(it, &a); rocksdb_iter_value(it, &b); *bytes += a + b; n++; }
    rocksdb_iter_destroy(it); return n;
}
static void r_compact(void) { rocksdb_compact_range(rdb, NULL, 0, NULL, 0); }
static void r_close(void) { rocksdb_close(rdb); rocksdb_options_destroy(ropt); }
static Engine ROCKSDB = {r_open, r_put, r_putbatch, r_del, r_get, r_seek, r_scan, r_compact, r_close};
#endif

#ifdef HAVE_LMDB
static MDB_env *menv; static MDB_dbi mdbi;
static void m_check(int rc, const char *what) { if (rc) die(what, mdb_strerror(rc)); }
static void m_open(int fresh) {
    if (fresh) rmrf(db_path);
    mkdir(db_path, 0755);
    m_check(mdb_env_create(&menv), "env_create");
    m_check(mdb_env_set_mapsize(menv, (size_t)64 << 30), "mapsize");
    /* MDB_NOSYNC: like a WAL without fsync (survives a process crash, not a power cut). */
    m_check(mdb_env_open(menv, db_path, do_sync ? 0 : MDB_NOSYNC, 0644), "env_open");
    MDB_txn *t; m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn"); m_check(mdb_dbi_open(t, NULL, 0, &mdbi), "dbi"); m_check(mdb_txn_commit(t), "commit");
}
static void m_put(const char *k, size_t kl, const char *v, size_t vl, int sync) {
    MDB_txn *t; MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn"); m_check(mdb_put(t, mdbi, &key, &val, 0), "put"); m_check(mdb_txn_commit(t), "commit");
    if (sync) mdb_env_sync(menv, 1);
}
static void m_putbatch(long first, int n, const char *v) {
    MDB_txn *t; char k[1100]; m_check(mdb_txn_begin(menv, NULL, 0, &t), "txn");
    for (int j = 0; j < n; j++) { make_key(first + j, k); MDB_val key = {key_size, k}, val = {value_size, (void *)v}; m_check(mdb_put(t, mdbi, &key, &val, 0), "put"); }
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
static int m_seek(const char *k, size_t kl, size_t *bytes) {
    MDB_txn *t; MDB_cursor *c; MDB_val key = {kl, (void *)k}, val; m_check(mdb_txn_begin(menv, NULL, MDB_RDONLY, &t), "txn");
    mdb_cursor_open(t, mdbi, &c); int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); *bytes = rc ? 0 : key.mv_size + val.mv_size;
    int found = rc == 0 && key.mv_size == kl && memcmp(key.mv_data, k, kl) == 0; mdb_cursor_close(c); mdb_txn_abort(t); return found;
}
static long m_scan(size_t *bytes, int reverse) {
    MDB_txn *t; MDB_cursor *c; MDB_val key, val; long n = 0; *bytes = 0; m_check(mdb_txn_begin(menv, NULL, MDB_RDONLY, &t), "txn");
    mdb_cursor_open(t, mdbi, &c); while (mdb_cursor_get(c, &key, &val, reverse ? MDB_PREV : MDB_NEXT) == 0) { n++; *bytes += key.mv_size + val.mv_size; }
    mdb_cursor_close(c); mdb_txn_abort(t); return n;
}
static void m_compact(void) { mdb_env_sync(menv, 1); }
static void m_close(void) { mdb_env_close(menv); }
static Engine LMDB = {m_open, m_put, m_putbatch, m_del, m_get, m_seek, m_scan, m_compact, m_close};
#endif

static void report(const char *name, long ops, double secs, double bytes, long found, int is_read) {
    printf("%-12s : %11.3f micros/op;", name, ops ? secs * 1e6 / ops : 0.0);
    if (bytes > 0) printf(" %6.1f MB/s", bytes / 1048576.0 / secs);
    if (is_read) printf(" (%ld of %ld found)", found, ops);
    printf("\n");
    fflush(stdout);
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
        else if (!strcmp(a, "--db")) db_path = v;
        else { fprintf(stderr, "peer_bench: unknown flag %s\n", a); return 2; }
    }
    if (reads < 0) reads = num;
    Engine *e = NULL;
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
    char *value = malloc(value_size + 1), key[1100];
    for (int i = 0; i < value_size; i++) value[i] = (char)(((unsigned)i * 2654435761u) >> 13);
    printf("%s db_bench: keys %d bytes, values %d bytes, entries %ld, cache %ld bytes, bloom %d bits, sync %d\n",
           engine, key_size, value_size, num, cache_size, bloom_bits, do_sync);
    int opened = 0;
    char *list = strdup(benchmarks), *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int fresh = !strncmp(name, "fill", 4);
        if (opened && fresh) { e->close(); opened = 0; }
        if (!opened) { e->open(fresh); opened = 1; }
        uint64_t r = 0x2545F4914F6CDD1DULL;
        double t0 = now(), bytes = 0; long ops = 0, found = 0; size_t vl;
        if (!strcmp(name, "fillseq") || !strcmp(name, "fillrandom") || !strcmp(name, "overwrite") || !strcmp(name, "fillsync")) {
            int rnd = strcmp(name, "fillseq") != 0, sync = do_sync || !strcmp(name, "fillsync");
            long n = !strcmp(name, "fillsync") ? (num / 1000 > 0 ? num / 1000 : 1) : num;
            for (long i = 0; i < n; i++) { make_key(rnd ? next_rand(&r) : i, key); e->put(key, key_size, value, value_size, sync); }
            ops = n; bytes = (double)n * (key_size + value_size);
            report(name, ops, now() - t0, bytes, 0, 0);
        } else if (!strcmp(name, "fillbatch")) {
            for (long i = 0; i < num / 1000; i++) e->putbatch(i * 1000, 1000, value);
            ops = num / 1000; bytes = (double)ops * 1000 * (key_size + value_size);
            report(name, ops, now() - t0, bytes, 0, 0);
        } else if (!strcmp(name, "readrandom") || !strcmp(name, "readhot") || !strcmp(name, "readmissing")) {
            long range = !strcmp(name, "readhot") ? (num / 100 > 0 ? num / 100 : 1) : num;
            int missing = !strcmp(name, "readmissing");
            for (long i = 0; i < reads; i++) {
                make_key(next_rand(&r) % range, key); size_t kl = key_size; if (missing) key[kl++] = '.';
                if (e->get(key, kl, &vl)) found++;
                bytes += kl + vl;
            }
            report(name, reads, now() - t0, bytes, found, 1);
        } else if (!strcmp(name, "seekrandom")) {
            for (long i = 0; i < reads; i++) { make_key(next_rand(&r), key); size_t b; if (e->seek(key, key_size, &b)) found++; bytes += b; }
            report(name, reads, now() - t0, bytes, found, 1);
        } else if (!strcmp(name, "readseq") || !strcmp(name, "readreverse")) {
            size_t b; ops = e->scan(&b, !strcmp(name, "readreverse"));
            report(name, ops, now() - t0, (double)b, 0, 0);
        } else if (!strcmp(name, "deleteseq") || !strcmp(name, "deleterandom")) {
            int rnd = !strcmp(name, "deleterandom");
            for (long i = 0; i < num; i++) { make_key(rnd ? next_rand(&r) : i, key); e->del(key, key_size); }
            report(name, num, now() - t0, (double)num * key_size, 0, 0);
        } else if (!strcmp(name, "compact")) {
            e->compact();
            report(name, 1, now() - t0, 0, 0, 0);
        } else {
            fprintf(stderr, "peer_bench: unknown benchmark %s\n", name);
        }
    }
    if (opened) e->close();
    return 0;
}
