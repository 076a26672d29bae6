#include "runtime/log.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static _Atomic int min_level = RT_LOG_INFO;
static __thread int thread_worker_id = -1;
static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void rt_log_set_level(rt_log_level_t level)
{
    atomic_store(&min_level, (int)level);
}

int rt_log_parse_level(const char *name)
{
    for (int i = RT_LOG_DEBUG; i <= RT_LOG_ERROR; ++i)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void rt_log_set_worker(int worker_id)
{
    thread_worker_id = worker_id;
}

/* Appends `src` JSON-escaped; stops (truncating) when `cap` would be exceeded. */
static size_t append_escaped(char *dst, size_t len, size_t cap, const char *src)
{
    for (; *src != '\0' && len + 7 < cap; ++src) {
        unsigned char c = (unsigned char)*src;
        if (c == '"' || c == '\\') {
            dst[len++] = '\\';
            dst[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(dst + len, cap - len, "\\u%04x", c);
        } else {
            dst[len++] = (char)c;
        }
    }
    return len;
}

static void vlog(rt_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    char msg[LINE_MAX_BYTES / 2], line[LINE_MAX_BYTES];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = (size_t)snprintf(
        line, sizeof(line),
        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"worker\":%d,"
        "\"component\":\"",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000, level_names[level], thread_worker_id);
    len = append_escaped(line, len, sizeof(line), component);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
    len = append_escaped(line, len, sizeof(line) - 3, msg);
    line[len++] = '"';
    line[len++] = '}';
    line[len++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, len);
    (void)unused; /* nowhere left to report a failed log write */
}

void rt_log(rt_log_level_t level, const char *component, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, fmt, ap);
    va_end(ap);
}

void rt_log_fatal(const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(RT_LOG_FATAL, component, fmt, ap);
    va_end(ap);
    exit(1);
}
