/*
 * How much CPU time the machine itself takes away, in stalls a server cannot avoid: one thread
 * per CPU, pinned, reads the clock in a tight loop for a few seconds; a gap between two reads
 * longer than the threshold is time the thread did not run. When the guest's scheduler did not
 * switch it out (its involuntary context switches did not move), the time went to the
 * hypervisor (another tenant on the vCPU's core) or to interrupts: invisible to the kernel's
 * run queues, and the same for every program on that CPU, bare h2o included.
 *
 * Why: the bench's open-loop p99 targets are a few milliseconds, and on a shared 2-vCPU machine
 * the host can take a vCPU away for several of them, several times a second, at some hours and
 * not at others. Recorded with the latency figures, this says which kind of hour a run had.
 *
 * usage: stall_probe [seconds] [threshold_us]   (default 2 s, 200 us)
 * Prints a line per CPU and "json: " figures for bench/run.sh. Uses every CPU for its duration:
 * run it when nothing is measured.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256
/* The switch count is read again this often between gaps, so that a short preemption is not
 * taken for the cause of the next gap. */
#define CSW_REFRESH_ITERS 4096

typedef struct st_probe_t {
    int cpu;
    uint64_t duration_ns, threshold_ns;
    bool pinned;
    /* results */
    uint64_t host_gaps, host_ns, host_max_ns; /* the thread was not switched out */
    uint64_t guest_gaps, guest_ns;            /* the guest's scheduler ran something else */
} probe_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long involuntary_switches(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

static void *probe_main(void *arg)
{
    probe_t *p = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    p->pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
    sched_yield(); /* move to the CPU before measuring */
    long switches = involuntary_switches();
    uint64_t prev = now_ns(), end = prev + p->duration_ns;
    for (uint64_t iter = 1;; ++iter) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        uint64_t gap = t - prev;
        if (gap > p->threshold_ns) {
            long s = involuntary_switches();
            if (s != switches) {
                ++p->guest_gaps;
                p->guest_ns += gap;
            } else {
                ++p->host_gaps;
                p->host_ns += gap;
                if (gap > p->host_max_ns)
                    p->host_max_ns = gap;
            }
            switches = s;
            t = now_ns(); /* the read above is not part of the next gap */
        } else if (iter % CSW_REFRESH_ITERS == 0) {
            switches = involuntary_switches();
            t = now_ns();
        }
        prev = t;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    double threshold_us = argc > 2 ? atof(argv[2]) : 200.0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (seconds <= 0 || threshold_us <= 0 || ncpu < 1) {
        fprintf(stderr, "usage: stall_probe [seconds > 0] [threshold_us > 0]\n");
        return 2;
    }
    if (ncpu > MAX_CPUS)
        ncpu = MAX_CPUS;
    static probe_t probes[MAX_CPUS];
    pthread_t threads[MAX_CPUS];
    for (long i = 0; i != ncpu; ++i) {
        probes[i] = (probe_t){.cpu = (int)i,
                              .duration_ns = (uint64_t)(seconds * 1e9),
                              .threshold_ns = (uint64_t)(threshold_us * 1e3)};
        if (pthread_create(&threads[i], NULL, probe_main, &probes[i]) != 0) {
            fprintf(stderr, "stall_probe: cannot start a thread\n");
            return 1;
        }
    }
    uint64_t gaps = 0, lost_ns = 0, max_ns = 0;
    for (long i = 0; i != ncpu; ++i) {
        pthread_join(threads[i], NULL);
        const probe_t *p = &probes[i];
        printf("cpu %d%s: %llu stalls over %.0f us (%.2f ms in all, longest %.2f ms); the guest "
               "switched the probe out %llu times (%.2f ms)\n",
               p->cpu, p->pinned ? "" : " (not pinned)", (unsigned long long)p->host_gaps,
               threshold_us, (double)p->host_ns / 1e6, (double)p->host_max_ns / 1e6,
               (unsigned long long)p->guest_gaps, (double)p->guest_ns / 1e6);
        gaps += p->host_gaps;
        lost_ns += p->host_ns;
        if (p->host_max_ns > max_ns)
            max_ns = p->host_max_ns;
    }
    double cpu_s = seconds * (double)ncpu;
    printf("json: {\"name\":\"machine_stalls_per_cpu_s\",\"value\":%.1f,\"unit\":\"stalls over "
           "%.0f us per CPU-second\"}\n",
           (double)gaps / cpu_s, threshold_us);
    printf("json: {\"name\":\"machine_stall_ms_per_cpu_s\",\"value\":%.2f,\"unit\":\"ms lost per "
           "CPU-second\"}\n",
           (double)lost_ns / 1e6 / cpu_s);
    printf("json: {\"name\":\"machine_stall_longest_ms\",\"value\":%.2f,\"unit\":\"ms\"}\n",
           (double)max_ns / 1e6);
    return 0;
}
