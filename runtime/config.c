#include "runtime/config.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/log.h"

/* "DATABASE_URL" -> "database-url" */
static void flag_name(const char *env, char *out, size_t size)
{
    size_t i = 0;
    for (; env[i] != '\0' && i + 1 < size; ++i)
        out[i] = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
    out[i] = '\0';
}

static rt_option_t *find_flag(rt_option_t *opts, size_t n, const char *name, size_t name_len)
{
    char flag[128];
    for (size_t i = 0; i != n; ++i) {
        flag_name(opts[i].env, flag, sizeof(flag));
        if (strlen(flag) == name_len && memcmp(flag, name, name_len) == 0)
            return &opts[i];
    }
    return NULL;
}

rt_config_result_t rt_config_load(rt_option_t *opts, size_t n, int argc, char **argv, char *err,
                                  size_t err_size)
{
    for (size_t i = 0; i != n; ++i) {
        const char *env = getenv(opts[i].env);
        opts[i].value = env != NULL && env[0] != '\0' ? env : opts[i].default_value;
    }
    for (int a = 1; a < argc; ++a) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return RT_CONFIG_HELP;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_size, "unexpected argument '%s' (see --help)", arg);
            return RT_CONFIG_ERROR;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        rt_option_t *opt = find_flag(opts, n, name, name_len);
        if (opt == NULL) {
            snprintf(err, err_size, "unknown option '--%.*s' (see --help)", (int)name_len, name);
            return RT_CONFIG_ERROR;
        }
        if (eq != NULL) {
            opt->value = eq + 1;
        } else if (a + 1 < argc) {
            opt->value = argv[++a];
        } else {
            snprintf(err, err_size, "option '--%.*s' needs a value", (int)name_len, name);
            return RT_CONFIG_ERROR;
        }
    }
    return RT_CONFIG_OK;
}

void rt_config_print_help(FILE *out, const char *program, const char *summary,
                          const rt_option_t *opts, size_t n)
{
    fprintf(out, "Usage: %s [--option value ...]\n\n%s\n\n", program, summary);
    fprintf(out, "Every option is an environment variable; the flag of the same name overrides "
                 "it.\n\n");
    char flag[128];
    for (size_t i = 0; i != n; ++i) {
        flag_name(opts[i].env, flag, sizeof(flag));
        fprintf(out, "  %-28s --%s\n      %s", opts[i].env, flag, opts[i].help);
        if (opts[i].default_value != NULL && !opts[i].secret)
            fprintf(out, " (default: %s)", opts[i].default_value);
        if (opts[i].secret)
            fprintf(out, " [secret: never logged]");
        fputc('\n', out);
    }
}

void rt_config_log(const rt_option_t *opts, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        if (opts[i].value == NULL)
            continue;
        rt_log_info("config", "%s=%s", opts[i].env, opts[i].secret ? "<redacted>" : opts[i].value);
    }
}

rt_option_t *rt_config_find(rt_option_t *opts, size_t n, const char *env)
{
    for (size_t i = 0; i != n; ++i)
        if (strcmp(opts[i].env, env) == 0)
            return &opts[i];
    rt_log_fatal("config", "no option named %s", env);
}

bool rt_config_int(const rt_option_t *opt, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t err_size)
{
    *out = 0;
    if (opt->value == NULL)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(opt->value, &end, 10);
    if (errno != 0 || end == opt->value || *end != '\0' || v < min || v > max) {
        snprintf(err, err_size, "%s must be a whole number from %lld to %lld, not '%s'", opt->env,
                 (long long)min, (long long)max, opt->secret ? "<redacted>" : opt->value);
        return false;
    }
    *out = v;
    return true;
}
