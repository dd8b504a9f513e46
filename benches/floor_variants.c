// Variants of benches/floor.c (issue 14): what a scan of a tree costs in syscalls when the
// per-entry and per-directory calls change. No tree is built; prints the entry count and the
// sum of st_blocks * 512 (hard links counted each time), which every variant must agree on.
//
// Build: cc -O2 -pthread -o /tmp/dtui-fv benches/floor_variants.c -luring   (apt: liburing-dev)
// Run:   /tmp/dtui-fv [options] TREE
//   -t N   threads (2)
//   -m M   per-entry call: fstatat (default, as floor.c), statx (dtui's mask), statxmin (type,
//          size, blocks, nlink, ino, mtime; AT_STATX_DONT_SYNC), uring (IORING_OP_STATX, a
//          directory's entries submitted together, -q per submit), none (no stat: listing only)
//   -q N   io_uring SQEs per submit (64)
//   -w N   io_uring: at most N io-wq workers per ring (IORING_REGISTER_IOWQ_MAX_WORKERS; 0 = default)
//   -a     a directory found by a stat is opened at once from its parent's fd (openat, one
//          lookup, as dtui does) and listed next by the same worker, instead of being pushed as
//          a path that the next worker opens from the root (floor.c: a lookup per component);
//          handed to the shared stack by path only while another worker waits for work
//   -d     a name d_type says is a directory is not stat'ed by name: it is opened (openat from
//          its parent's fd, which the listing needs anyway) and fstat'ed; the worker keeps the fd
//          and lists it next (depth first), handing directories to the shared stack by path
//          only while another worker waits for work
//   -i     stat a directory's entries in inode order
//   -b N   getdents64 buffer bytes (65536)
//   -e     stop listing after a short getdents64 (assumes a short read means the end, true of
//          ext4 but not promised by the API): one getdents64 call per small directory, not two
//   -u     unshare(CLONE_FILES) in each worker: a private fd table, so the kernel takes no
//          reference on the directory fd per call (fdget on a table of one user); fds never
//          cross workers here (-d keeps them per worker, the shared stack holds paths)
//
// What it measured (2026-12-01, 2 vCPU AMD EPYC KVM guest, kernel 6.18, ext4, warm cache, the
// 500,000-entry tree of benches/gen_tree.py: 47,432 directories, ~10.5 entries each; medians of
// 10 interleaved rounds; the machine was shared, load average 5-9, so CPU time (user+sys of all
// threads) is the steady figure and wall time swings with the other load):
//   pdu 0.24                                      CPU 1680-1895 ms
//   dtui scan --no-cache (cd4b75d)               CPU 1327-1575 ms   (~1.2x the floor below)
//   floor.c / -m statx -a (dtui's calls)         CPU 1099-1240 ms   (= 0.62-0.68x pdu's CPU)
//   -m statxmin, -m fstatat, -b 262144, -t 3/4   within +-3 % of -m statx -a (noise)
//   -d / -e / -u each                            -1..-4 %; all three -5..-6 % (-e tried in dtui
//                                                itself: no CPU change measurable)
//   -i (inode order, warm cache)                 +3..+5 % (worse)
//   -m uring (any -q, -w)                        +56..+66 % CPU: IORING_OP_STATX is always
//                                                punted to io-wq workers (iou-wrk threads do the
//                                                statx, plus queueing and wake-ups); its wall time
//                                                only looks better under load, because its extra
//                                                kernel threads take a larger share of the CPU
//   -m none -a (listing only: open, getdents, close) CPU ~430 ms: 37 % of the floor, all in ext4
//                                                (htree readdir hashes and sorts even one-block
//                                                directories) and in open/close
// No variant gets a scan of this tree meaningfully below the synchronous floor. Run with
// benches/cpu_wall.py (interleaved rounds, median wall and CPU); table in BENCHMARKS.md.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { M_FSTATAT, M_STATX, M_STATXMIN, M_URING, M_NONE };
static int mode = M_FSTATAT, nthreads = 2, qdepth = 64, wq_max = 0, aflag, dflag, iflag, eflag, uflag;
static size_t bufsize = 65536;

struct d64 { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

// The shared stack of directory paths (as floor.c).
static char **stack; static size_t top, cap; static int busy, waiting;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t total_entries, total_disk;

static void push_path(char *p) {
    pthread_mutex_lock(&mu);
    if (top == cap) { cap = cap ? cap * 2 : 1024; stack = realloc(stack, cap * sizeof *stack); }
    stack[top++] = p; pthread_cond_signal(&cv); pthread_mutex_unlock(&mu);
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *c = malloc(la + lb + 2); memcpy(c, a, la); c[la] = '/'; memcpy(c + la + 1, b, lb + 1);
    return c;
}

struct ent { uint64_t ino; size_t off; unsigned char type; const char *name; };
static int by_ino(const void *a, const void *b) {
    uint64_t x = ((const struct ent *)a)->ino, y = ((const struct ent *)b)->ino;
    return x < y ? -1 : x > y;
}

// A directory opened by its parent's worker, listed next by the same worker.
struct local { int fd; char *path; };

struct worker {
    char *buf; size_t buflen;
    struct ent *ents; size_t nents, capents;
    struct local *loc; size_t nloc, caploc;
    struct io_uring ring; struct statx *sx;
    uint64_t entries, disk;
};

static const unsigned MINMASK = STATX_TYPE | STATX_SIZE | STATX_BLOCKS | STATX_NLINK | STATX_INO | STATX_MTIME;
static const unsigned DTUIMASK = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE |
    STATX_BLOCKS | STATX_MTIME | STATX_CTIME | 0x1000 /* STATX_MNT_ID */;

// Reads all of `fd` into w->ents (names point into w->buf, grown as needed).
static void list(struct worker *w, int fd) {
    size_t used = 0; w->nents = 0;
    for (;;) {
        if (w->buflen - used < bufsize) {
            // Grow; names already listed point into buf, so re-point them after realloc.
            w->buflen = w->buflen * 2 + bufsize; w->buf = realloc(w->buf, w->buflen);
        }
        long n = syscall(SYS_getdents64, fd, w->buf + used, bufsize);
        if (n <= 0) break;
        for (long pos = 0; pos < n;) {
            struct d64 *d = (struct d64 *)(w->buf + used + pos); pos += d->reclen;
            if (d->name[0] == '.' && (!d->name[1] || (d->name[1] == '.' && !d->name[2]))) continue;
            if (w->nents == w->capents) { w->capents = w->capents ? w->capents * 2 : 256; w->ents = realloc(w->ents, w->capents * sizeof *w->ents); }
            w->ents[w->nents++] = (struct ent){ d->ino, (size_t)(d->name - w->buf), d->type, NULL };
        }
        used += (size_t)n;
        if (eflag && (size_t)n + 512 < bufsize) break;
    }
    for (size_t i = 0; i < w->nents; i++) w->ents[i].name = w->buf + w->ents[i].off;
}

static void account(struct worker *w, uint64_t blocks) { w->entries++; w->disk += blocks * 512; }

static void found_dir(struct worker *w, int parent, const char *path, const char *name, int fd_opened) {
    if (fd_opened < 0 && aflag && !__atomic_load_n(&waiting, __ATOMIC_RELAXED))
        fd_opened = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_opened >= 0) {
        if (w->nloc == w->caploc) { w->caploc = w->caploc ? w->caploc * 2 : 64; w->loc = realloc(w->loc, w->caploc * sizeof *w->loc); }
        w->loc[w->nloc++] = (struct local){ fd_opened, join(path, name) };
    } else {
        push_path(join(path, name));
    }
}

static void do_dir(struct worker *w, int fd, const char *path) {
    list(w, fd);
    if (iflag) qsort(w->ents, w->nents, sizeof *w->ents, by_ino);
    if (mode == M_NONE) {
        // Listing only (the lower bound of any scan): directories known by d_type.
        w->entries += w->nents;
        for (size_t i = 0; i < w->nents; i++) if (w->ents[i].type == DT_DIR) found_dir(w, fd, path, w->ents[i].name, -1);
        return;
    }
    size_t i = 0;
    while (i < w->nents) {
        // Directories by d_type: open and fstat (the open is needed to list them anyway).
        if (dflag && w->ents[i].type == DT_DIR && !__atomic_load_n(&waiting, __ATOMIC_RELAXED)) {
            int c = openat(fd, w->ents[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            if (c >= 0 && fstat(c, &st) == 0) { account(w, (uint64_t)st.st_blocks); found_dir(w, fd, path, w->ents[i].name, c); }
            else if (c >= 0) close(c);
            i++; continue;
        }
        if (mode == M_URING) {
            // Queue the next run of entries that need a stat by name, up to qdepth.
            unsigned q = 0; size_t idx[4096];
            while (i < w->nents && q < (unsigned)qdepth) {
                if (dflag && w->ents[i].type == DT_DIR && !__atomic_load_n(&waiting, __ATOMIC_RELAXED)) break;
                struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
                io_uring_prep_statx(sqe, fd, w->ents[i].name, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, MINMASK, &w->sx[q]);
                sqe->user_data = q; idx[q++] = i++;
            }
            io_uring_submit_and_wait(&w->ring, q);
            for (unsigned k = 0; k < q; k++) {
                struct io_uring_cqe *cqe;
                if (io_uring_wait_cqe(&w->ring, &cqe) != 0) abort();
                unsigned s = (unsigned)cqe->user_data; int res = cqe->res; io_uring_cqe_seen(&w->ring, cqe);
                if (res == 0) {
                    account(w, w->sx[s].stx_blocks);
                    if (S_ISDIR(w->sx[s].stx_mode)) found_dir(w, fd, path, w->ents[idx[s]].name, -1);
                }
            }
            continue;
        }
        const char *name = w->ents[i].name; i++;
        if (mode == M_FSTATAT) {
            struct stat st;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                account(w, (uint64_t)st.st_blocks);
                if (S_ISDIR(st.st_mode)) found_dir(w, fd, path, name, -1);
            }
        } else {
            struct statx sx;
            unsigned mask = mode == M_STATX ? DTUIMASK : MINMASK;
            int fl = AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC | (mode == M_STATX ? AT_NO_AUTOMOUNT : 0);
            if (statx(fd, name, fl, mask, &sx) == 0) {
                account(w, sx.stx_blocks);
                if (S_ISDIR(sx.stx_mode)) found_dir(w, fd, path, name, -1);
            }
        }
    }
}

static void *worker(void *arg) {
    (void)arg;
    if (uflag && unshare(CLONE_FILES) != 0) { perror("unshare"); exit(1); }
    struct worker w = {0};
    w.buflen = bufsize; w.buf = malloc(w.buflen);
    if (mode == M_URING) {
        if (io_uring_queue_init((unsigned)qdepth, &w.ring, 0) != 0) { perror("io_uring_queue_init"); exit(1); }
        if (wq_max) { unsigned v[2] = { (unsigned)wq_max, (unsigned)wq_max }; io_uring_register_iowq_max_workers(&w.ring, v); }
        w.sx = calloc((size_t)qdepth, sizeof *w.sx);
    }
    for (;;) {
        // Another worker waits: give it the oldest directory of this worker's own (the one
        // nearest the top of the tree, so likely the largest subtree), by path.
        if (w.nloc > 1 && __atomic_load_n(&waiting, __ATOMIC_RELAXED)) {
            struct local l = w.loc[0];
            memmove(w.loc, w.loc + 1, (w.nloc - 1) * sizeof *w.loc); w.nloc--;
            close(l.fd); push_path(l.path);
        }
        if (w.nloc) {
            struct local l = w.loc[--w.nloc];
            do_dir(&w, l.fd, l.path); close(l.fd); free(l.path);
            continue;
        }
        pthread_mutex_lock(&mu);
        while (top == 0 && busy > 0) { waiting++; pthread_cond_wait(&cv, &mu); waiting--; }
        if (top == 0) { pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu); break; }
        char *path = stack[--top]; busy++; pthread_mutex_unlock(&mu);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            do_dir(&w, fd, path);
            close(fd);
            // Drain what this directory handed to this worker before counting it done.
            while (w.nloc) {
                if (w.nloc > 1 && __atomic_load_n(&waiting, __ATOMIC_RELAXED)) {
                    struct local l = w.loc[0];
                    memmove(w.loc, w.loc + 1, (w.nloc - 1) * sizeof *w.loc); w.nloc--;
                    close(l.fd); push_path(l.path);
                    continue;
                }
                struct local l = w.loc[--w.nloc]; do_dir(&w, l.fd, l.path); close(l.fd); free(l.path);
            }
        }
        free(path);
        pthread_mutex_lock(&mu); busy--; if (busy == 0 && top == 0) pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu); total_entries += w.entries; total_disk += w.disk; pthread_mutex_unlock(&mu);
    if (mode == M_URING) io_uring_queue_exit(&w.ring);
    free(w.buf); free(w.ents); free(w.loc); free(w.sx);
    return NULL;
}

int main(int argc, char **argv) {
    int o;
    while ((o = getopt(argc, argv, "t:m:q:w:adib:eu")) != -1) {
        switch (o) {
        case 't': nthreads = atoi(optarg); break;
        case 'm':
            mode = !strcmp(optarg, "statx") ? M_STATX : !strcmp(optarg, "statxmin") ? M_STATXMIN
                 : !strcmp(optarg, "uring") ? M_URING : !strcmp(optarg, "none") ? M_NONE : M_FSTATAT;
            break;
        case 'q': qdepth = atoi(optarg); if (qdepth > 4096) qdepth = 4096; break;
        case 'w': wq_max = atoi(optarg); break;
        case 'a': aflag = 1; break;
        case 'd': dflag = 1; break;
        case 'i': iflag = 1; break;
        case 'b': bufsize = (size_t)atol(optarg); break;
        case 'e': eflag = 1; break;
        case 'u': uflag = 1; break;
        default: fprintf(stderr, "usage: %s [-t N] [-m fstatat|statx|statxmin|uring|none] [-q N] [-w N] [-a] [-d] [-i] [-b N] [-e] [-u] TREE\n", argv[0]); return 2;
        }
    }
    if (optind >= argc) return 2;
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    pthread_t t[64]; if (nthreads > 64) nthreads = 64;
    push_path(strdup(argv[optind]));
    for (int i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    printf("%lu entries, %lu bytes on disk (root excluded)\n", total_entries, total_disk);
    return 0;
}
