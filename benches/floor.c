// The syscall floor of a scan, for benches (issue 14): getdents64 + fstatat per entry (plus an
// open and a close per directory), N threads over a shared stack of directory paths, no tree
// built. Prints the entry count and the sum of st_blocks * 512 (hard links counted each time).
// With a third argument B, each thread also writes B bytes per entry (of the entry's stat) to
// memory of its own, in order: what holding a tree of B bytes per entry costs (the pages'
// faults and zeroing, the caches the writes take from the kernel), without building one.
// With a fourth argument `early`, a directory's listing ends at a call whose last record has
// d_off INT64_MAX (ext4's end of a hash-ordered listing) instead of at a call that returns
// nothing, as dtui's does on ext4: the floor with one getdents64 fewer per directory.
//
// Build and run: cc -O2 -pthread -o /tmp/dtui-floor benches/floor.c && /tmp/dtui-floor TREE 2 [B [early]]
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct d64 { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };
static char **stack; static size_t top, cap; static int busy; static size_t tree_bytes; static int early;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t total_entries, total_disk;

static void push(char *p) {
    pthread_mutex_lock(&mu);
    if (top == cap) { cap = cap ? cap * 2 : 1024; stack = realloc(stack, cap * sizeof *stack); }
    stack[top++] = p; pthread_cond_signal(&cv); pthread_mutex_unlock(&mu);
}
static void *worker(void *arg) {
    (void)arg; char *buf = malloc(65536); uint64_t ents = 0, disk = 0;
    // Room for 2^28 entries a thread, reserved, not resident until written.
    size_t room = tree_bytes ? (size_t)tree_bytes << 28 : 0;
    char *mem = room ? mmap(NULL, room, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : NULL;
    if (mem == MAP_FAILED) { perror("mmap"); exit(1); }
    for (;;) {
        pthread_mutex_lock(&mu);
        while (top == 0 && busy > 0) pthread_cond_wait(&cv, &mu);
        if (top == 0) { pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu); break; }
        char *path = stack[--top]; busy++; pthread_mutex_unlock(&mu);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            long n;
            while ((n = syscall(SYS_getdents64, fd, buf, 65536)) > 0) {
                int64_t last_off = 0;
                for (long pos = 0; pos < n;) {
                    struct d64 *d = (struct d64 *)(buf + pos); pos += d->reclen; last_off = d->off;
                    if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) continue;
                    struct stat st;
                    if (fstatat(fd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (mem) for (size_t k = 0; k < tree_bytes; k += sizeof st)
                            memcpy(mem + ents * tree_bytes + k, &st, tree_bytes - k < sizeof st ? tree_bytes - k : sizeof st);
                        ents++; disk += (uint64_t)st.st_blocks * 512;
                        if (S_ISDIR(st.st_mode)) {
                            size_t a = strlen(path), b = strlen(d->name);
                            char *c = malloc(a + b + 2); memcpy(c, path, a); c[a] = '/'; memcpy(c + a + 1, d->name, b + 1);
                            push(c);
                        }
                    }
                }
                if (early && last_off == INT64_MAX) break;
            }
            close(fd);
        }
        free(path);
        pthread_mutex_lock(&mu); busy--; if (busy == 0 && top == 0) pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu); total_entries += ents; total_disk += disk; pthread_mutex_unlock(&mu);
    free(buf); if (mem) munmap(mem, room); return NULL;
}
int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 2; pthread_t t[64];
    tree_bytes = argc > 3 ? (size_t)atol(argv[3]) : 0;
    early = argc > 4 && !strcmp(argv[4], "early");
    push(strdup(argv[1]));
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("%lu entries, %lu bytes on disk (root excluded)\n", total_entries, total_disk);
    return 0;
}
