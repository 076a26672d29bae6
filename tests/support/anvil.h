/*
 * A private anvil node for a test: started on a 127.0.0.1 port of its own, stopped (only the
 * process started here) at the end. The binary is $ANVIL_BIN, else the native one that
 * scripts/deps.sh installs under .local/npm (the npm bin is a node wrapper, whose pid is not
 * anvil's; $ANVIL_BIN too must be anvil itself, since the port's owner is checked by pid).
 *
 * Tests run in parallel: ports come from above the kernel's ephemeral range (so no port the
 * kernel hands out elsewhere can clash), a few per test process by its pid, and a start counts
 * only once the socket answering on the port is the started process's own; a clash (the other
 * process answers, ours exits) moves on to the next port.
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
/** Why the calling thread's last http_post_blocking returned -1 (connect, write or read, with
 * errno, and the bytes read), for the failure message. */
const char *http_post_blocking_failure(void);

#endif
