/*
 * The machine's CPU time over a run, from /proc/stat: how busy all its CPUs were and how much of
 * their time the host took (steal). Why: the generator shares the server's CPUs, so a rate is
 * light or heavy by what the server and the generator together leave free, not by the server's
 * own capacity; and time the host takes from a vCPU is time no process on it can answer in.
 * Nothing else on this machine reads these counters for a run's window, hence by hand.
 */
#include <stdio.h>
#include <string.h>
#include "bench/loadgen.h"

#define LG_STAT_BYTES 65536 /* /proc/stat of a few hundred CPUs */

bool lg_machine_parse(const char *stat, lg_machine_t *out)
{
    *out = (lg_machine_t){0};
    /* "cpu  user nice system idle iowait irq softirq steal guest guest_nice", in USER_HZ ticks
     * (guest time is already counted in user); then one "cpuN" line per CPU */
    unsigned long long v[8];
    if (strncmp(stat, "cpu ", 4) != 0 ||
        sscanf(stat + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) != 8)
        return false;
    out->busy = v[0] + v[1] + v[2] + v[5] + v[6];
    out->idle = v[3] + v[4];
    out->steal = v[7];
    for (const char *line = strchr(stat, '\n'); line != NULL; line = strchr(line + 1, '\n'))
        if (strncmp(line + 1, "cpu", 3) == 0 && line[4] >= '0' && line[4] <= '9')
            ++out->cpus;
    return out->cpus > 0;
}

bool lg_machine_read(lg_machine_t *out)
{
    *out = (lg_machine_t){0};
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return false;
    char buf[LG_STAT_BYTES]; /* read twice per run, on the generator's main thread */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return lg_machine_parse(buf, out);
}

bool lg_machine_share(const lg_machine_t *from, const lg_machine_t *to, double *busy, double *steal)
{
    if (from->cpus == 0 || to->cpus != from->cpus || to->busy < from->busy ||
        to->idle < from->idle || to->steal < from->steal)
        return false;
    unsigned long long b = to->busy - from->busy, i = to->idle - from->idle,
                       s = to->steal - from->steal, all = b + i + s;
    if (all == 0)
        return false;
    *busy = (double)b / (double)all;
    *steal = (double)s / (double)all;
    return true;
}
