/*
 * A private anvil node for a test: started on a free 127.0.0.1 port, stopped (only the process
 * started here) at the end. The binary is $ANVIL_BIN, else the native one that scripts/deps.sh
 * installs under .local/npm (the npm bin is a node wrapper, whose pid is not anvil's).
 */
#ifndef TESTS_SUPPORT_ANVIL_H
#define TESTS_SUPPORT_ANVIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct st_anvil_t {
    pid_t pid;
    uint16_t port;
    char url[64];
} anvil_t;

/** Starts anvil (chain id 31337, its ten dev accounts) and waits until it answers; `extra_args`
 * is NULL-terminated or NULL. Returns false with a reason on stderr. */
bool anvil_start(anvil_t *a, const char *const *extra_args);
/** Stops the anvil this test started. */
void anvil_stop(anvil_t *a);
/** Posts `body` to http://127.0.0.1:port/ with a blocking socket and reads the answer's body
 * into `out` (NUL-terminated). Returns its length, or -1. For set-up and readiness only. */
int http_post_blocking(uint16_t port, const char *body, char *out, size_t cap);

#endif
