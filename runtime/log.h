/*
 * Structured logging: one JSON object per line on stderr.
 *
 * {"ts":"2026-11-21T09:00:00.123Z","level":"info","worker":0,"component":"http","msg":"..."}
 *
 * Each line is formatted into a stack buffer and written with a single write(2), so lines from
 * different workers never interleave. Callers must never pass secrets: values of settings
 * marked secret are only ever logged as "<redacted>" (see config.h).
 */
#ifndef RUNTIME_LOG_H
#define RUNTIME_LOG_H

#include <stdarg.h>

typedef enum en_rt_log_level_t {
    RT_LOG_DEBUG,
    RT_LOG_INFO,
    RT_LOG_WARN,
    RT_LOG_ERROR,
    RT_LOG_FATAL,
} rt_log_level_t;

/** Sets the lowest level that is written (default info). */
void rt_log_set_level(rt_log_level_t level);
/** Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int rt_log_parse_level(const char *name);
/** Tags the calling thread's lines with a worker id (-1: not a worker). */
void rt_log_set_worker(int worker_id);
/** Writes one line; `fmt` is printf-style and its result is JSON-escaped into "msg". */
void rt_log(rt_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Logs at fatal level and exits with status 1 (for states the process cannot continue from). */
void rt_log_fatal(const char *component, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#define rt_log_debug(component, ...) rt_log(RT_LOG_DEBUG, component, __VA_ARGS__)
#define rt_log_info(component, ...) rt_log(RT_LOG_INFO, component, __VA_ARGS__)
#define rt_log_warn(component, ...) rt_log(RT_LOG_WARN, component, __VA_ARGS__)
#define rt_log_error(component, ...) rt_log(RT_LOG_ERROR, component, __VA_ARGS__)

#endif
