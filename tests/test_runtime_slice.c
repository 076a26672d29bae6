/* Worker threads ask the kernel for the scheduler slice the configuration names (rt_config_t
 * slice_us, WORKER_SLICE_US), and only they: the process's other threads (the main thread,
 * libpq's, the probes') keep the kernel's default. Read back from /proc/self/task/<tid>/sched,
 * which shows se.slice on kernels with EEVDF custom slices (6.12+); skipped elsewhere. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/worker.h"

#define SLICE_US 300

/* The se.slice of thread `tid` in nanoseconds, -1 when the kernel does not show it. */
static long long slice_of(const char *tid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/self/task/%s/sched", tid);
    FILE *f = fopen(path, "r");
    long long slice = -1;
    while (f != NULL && slice < 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "se.slice ", 9) == 0 && colon != NULL)
            slice = strtoll(colon + 1, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return slice;
}

/* How many of this process's threads run with a slice of `slice_ns`; skips the test when the
 * kernel shows no slices. */
static int threads_with_slice(long long slice_ns)
{
    DIR *dir = opendir("/proc/self/task");
    cr_assert_not_null(dir);
    int n = 0, shown = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        long long s = slice_of(e->d_name);
        shown += s >= 0;
        n += s == slice_ns;
    }
    closedir(dir);
    if (shown == 0)
        cr_skip_test("this kernel shows no se.slice in /proc/<pid>/task/<tid>/sched");
    return n;
}

static void run_with_slice(uint32_t slice_us, int expect_threads)
{
    rt_config_t config = {.workers = 2, .drain_timeout_ms = 2000, .slice_us = slice_us};
    rt_runtime_t *rt = rt_runtime_create(&config);
    cr_assert_not_null(rt);
    cr_assert(rt_runtime_start(rt));
    int n = threads_with_slice((long long)SLICE_US * 1000);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    cr_assert_eq(n, expect_threads, "%d threads run with a %d us slice, expected %d", n, SLICE_US,
                 expect_threads);
}

Test(runtime_slice, every_worker_and_only_the_workers_ask_for_the_configured_slice)
{
    run_with_slice(SLICE_US, 2);
}

Test(runtime_slice, no_slice_configured_leaves_the_kernels_default)
{
    run_with_slice(0, 0);
}
