/*
 * Settings from the environment and the command line.
 *
 * The program declares a table of options, each named by its environment variable
 * (DATABASE_URL); the matching flag is derived from it (--database-url). The environment is
 * read first, then flags override it. Values of options marked secret are never printed: the
 * effective configuration is logged with them as "<redacted>".
 */
#ifndef RUNTIME_CONFIG_H
#define RUNTIME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct st_rt_option_t {
    const char *env;           /* environment variable name, e.g. "DATABASE_URL" */
    const char *default_value; /* NULL: unset unless given */
    const char *help;
    bool secret;       /* never logged or printed */
    const char *value; /* resolved value (points into environ, argv or default_value) */
} rt_option_t;

typedef enum en_rt_config_result_t {
    RT_CONFIG_OK,
    RT_CONFIG_HELP,  /* --help or -h was given */
    RT_CONFIG_ERROR, /* unknown flag or missing value: `err` says which */
} rt_config_result_t;

/** Resolves every option from the environment, then from argv (--name=value or --name value). */
rt_config_result_t rt_config_load(rt_option_t *opts, size_t n, int argc, char **argv, char *err,
                                  size_t err_size);
/** Prints usage: every option with its flag, default and help. */
void rt_config_print_help(FILE *out, const char *program, const char *summary,
                          const rt_option_t *opts, size_t n);
/** Logs the effective configuration, secrets redacted. */
void rt_config_log(const rt_option_t *opts, size_t n);
/** The option named `env`; aborts when the table has none (a programming error). */
rt_option_t *rt_config_find(rt_option_t *opts, size_t n, const char *env);
/** Parses the option as an integer within [min, max]; false (with `err` naming the option and
 * the accepted range) when it is not one. An unset option yields `*out = 0` and true. */
bool rt_config_int(const rt_option_t *opt, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t err_size);

#endif
