// The kernel's floor for fanotify events outside the root (issue 21, item 3): a reader that
// does nothing with the events but count them, against dtui's watcher. One filesystem mark
// with dtui's event mask on the filesystem of DIR; a child process renames DIR/x0 -> x1 -> ..
// (a directory, a new name each time: the kernel merges an event identical to one queued) N
// times, as `benches/live.rs --only foreign` does; the reader polls and reads until it has
// seen N FAN_RENAME events and prints its own thread's CPU (CLOCK_THREAD_CPUTIME_ID) per
// rename, the reads and the bytes per event.
//
// Build: cc -O2 -o /tmp/dtui-fanfloor benches/fanotify_floor.c
// Run (root; on a filesystem of its own, or other processes' events are read too):
//   /tmp/dtui-fanfloor [-r dfid_name_target|dfid_name] [-b BUF] [-p PAUSE_MS]
//                      [-i] [-n N] DIR
//   -r  the group's report flags: dfid_name_target is dtui's (FAN_REPORT_DFID_NAME_TARGET:
//       old and new directory with names and the child's handle, three records per rename),
//       dfid_name without the child's handle (two). Without names there is no FAN_RENAME, and
//       the FAN_MOVED_FROM events of one directory are identical, so the kernel merges them:
//       no variant to compare.
//   -b  read buffer bytes (262144, dtui's)
//   -p  sleep this long after a read that filled less than half the buffer (5, dtui's)
//   -i  an ignore mark on DIR as dtui places on a directory outside its root (renames are not
//       ignored: the kernel ORs both directories' ignore masks, so they would hide moves in)
//   -n  renames (2000)
//   -s  also parse each event's info records as dtui does (type, length, handle bytes)
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const char *report = "dfid_name_target";
    size_t buf_len = 262144;
    int pause_ms = 5, ignore = 0, parse = 0;
    long n = 2000;
    int opt;
    while ((opt = getopt(argc, argv, "r:b:p:in:s")) != -1) {
        switch (opt) {
        case 'r': report = optarg; break;
        case 'b': buf_len = strtoul(optarg, NULL, 10); break;
        case 'p': pause_ms = atoi(optarg); break;
        case 'i': ignore = 1; break;
        case 'n': n = strtol(optarg, NULL, 10); break;
        case 's': parse = 1; break;
        default: fprintf(stderr, "usage: see the comment at the top\n"); return 2;
        }
    }
    if (optind >= argc) { fprintf(stderr, "usage: see the comment at the top\n"); return 2; }
    const char *dir = argv[optind];
    unsigned flags;
    uint64_t mask = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_ONDIR;
    if (!strcmp(report, "dfid_name_target")) flags = FAN_REPORT_DFID_NAME_TARGET;
    else if (!strcmp(report, "dfid_name")) flags = FAN_REPORT_DFID_NAME;
    else { fprintf(stderr, "unknown -r %s\n", report); return 2; }
    mask |= FAN_RENAME;
    int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | flags,
                            O_RDONLY | O_CLOEXEC | O_LARGEFILE);
    if (fan < 0) { perror("fanotify_init"); return 1; }
    if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, dir)) {
        perror("fanotify_mark"); return 1;
    }
    if (ignore) {
        uint64_t ignored = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB |
                           FAN_ONDIR | FAN_EVENT_ON_CHILD;
        if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV | FAN_MARK_EVICTABLE, ignored,
                          AT_FDCWD, dir)) {
            perror("fanotify_mark(ignore)"); return 1;
        }
    }
    char path[4096], path2[4096];
    snprintf(path, sizeof path, "%s/x0", dir);
    mkdir(path, 0755); // (there from an earlier run: fine)
    pid_t child = fork();
    if (child == 0) {
        usleep(100 * 1000);
        for (long k = 0; k < n; k++) {
            snprintf(path, sizeof path, "%s/x%ld", dir, k);
            snprintf(path2, sizeof path2, "%s/x%ld", dir, k + 1);
            if (rename(path, path2)) { perror("rename"); _exit(1); }
        }
        // Back to x0 for the next run (one more event, not waited for).
        snprintf(path, sizeof path, "%s/x%ld", dir, n);
        snprintf(path2, sizeof path2, "%s/x0", dir);
        if (rename(path, path2)) { perror("rename back"); _exit(1); }
        _exit(0);
    }
    char *buf = aligned_alloc(8, buf_len);
    long renames = 0, events = 0, reads = 0, bytes = 0, records = 0;
    uint64_t sink = 0;
    double t0 = thread_cpu();
    while (renames < n) {
        struct pollfd p = {.fd = fan, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0) { fprintf(stderr, "timed out at %ld renames\n", renames); break; }
        ssize_t got = read(fan, buf, buf_len);
        if (got <= 0) continue;
        reads++;
        bytes += got;
        for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, got);
             m = FAN_EVENT_NEXT(m, got)) {
            events++;
            if (m->mask & FAN_RENAME) renames++;
            if (m->fd >= 0) close(m->fd);
            if (parse) {
                char *r = (char *)m + m->metadata_len, *end = (char *)m + m->event_len;
                while (r + 4 <= end) {
                    struct fanotify_event_info_header *h = (void *)r;
                    if (h->len < 4 || r + h->len > end) break;
                    struct fanotify_event_info_fid *f = (void *)r;
                    struct file_handle *fh = (void *)f->handle;
                    sink += h->info_type + fh->handle_bytes + (unsigned char)fh->f_handle[0];
                    records++;
                    r += h->len;
                }
            }
        }
        if ((size_t)got < buf_len / 2 && pause_ms > 0) usleep(pause_ms * 1000);
    }
    double cpu = thread_cpu() - t0;
    int status;
    waitpid(child, &status, 0);
    printf("report %s, buffer %zu, pause %d ms, ignore mark %s%s: %ld renames, %ld events in %ld "
           "reads, %.0f bytes/event, %ld records; reader CPU %.2f ms = %.3f us per rename\n",
           report, buf_len, pause_ms, ignore ? "yes" : "no", parse ? ", records parsed" : "",
           renames, events, reads, events ? (double)bytes / events : 0.0, records, cpu * 1e3,
           cpu * 1e6 / (renames ? renames : 1));
    if (sink == 1) printf("(never)\n"); // keeps the parse from being optimized away
    return renames >= n ? 0 : 1;
}
