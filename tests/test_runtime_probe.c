/* The runtime's rings never interrupt the thread that probes, starts and stops it. The kernel
 * tears a closed ring down a few ms later and then interrupts, as a signal would, every thread
 * still alive that set it up; a socket read with SO_RCVTIMEO on such a thread fails with EINTR.
 * test_executor's blocking JSON-RPC calls to anvil failed so ("no answer") right after
 * harness_start, whose rt_probe_io_uring made and closed a ring on the test's own thread. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "runtime/worker.h"

#define READ_TIMEOUT_MS 100
#define READS 5 /* the window watched: READS * READ_TIMEOUT_MS, teardown takes a few ms */

static int pair[2] = {-1, -1};

/* A connected pair whose first end's reads give up after READ_TIMEOUT_MS; nothing is ever
 * written, so every read there ends with EAGAIN unless something interrupts it. */
static void open_pair(void)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0, "%s",
                 strerror(errno));
    struct timeval tv = {0, READ_TIMEOUT_MS * 1000};
    cr_assert_eq(setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static void close_pair(void)
{
    for (int i = 0; i != 2; ++i)
        if (pair[i] >= 0)
            close(pair[i]);
    pair[0] = pair[1] = -1;
}

/* Blocking reads on this thread, each of which must end by its timeout and none by EINTR. */
static void expect_reads_left_alone(const char *after)
{
    for (int i = 0; i != READS; ++i) {
        char byte;
        errno = 0;
        ssize_t n = read(pair[0], &byte, 1);
        int err = errno;
        cr_assert_eq(n, -1, "read %d after %s returned %zd", i + 1, after, n);
        cr_assert_neq(err, EINTR,
                      "read %d after %s was interrupted (EINTR): a ring set up on this thread "
                      "was torn down and the kernel interrupted the thread",
                      i + 1, after);
        cr_assert(err == EAGAIN || err == EWOULDBLOCK, "read %d after %s: %s", i + 1, after,
                  strerror(err));
    }
}

TestSuite(runtime_probe, .init = open_pair, .fini = close_pair);

Test(runtime_probe, probing_io_uring_leaves_the_callers_blocking_reads_alone)
{
    char why[256];
    cr_assert(rt_probe_io_uring(why, sizeof(why)), "%s", why);
    expect_reads_left_alone("rt_probe_io_uring");
}

Test(runtime_probe, a_runtime_started_and_stopped_leaves_the_callers_blocking_reads_alone)
{
    /* what tests/support/harness.c does around each engine test */
    char why[256];
    cr_assert(rt_probe_io_uring(why, sizeof(why)), "%s", why);
    rt_config_t config = {.workers = 2, .drain_timeout_ms = 2000};
    rt_runtime_t *rt = rt_runtime_create(&config);
    cr_assert_not_null(rt);
    cr_assert(rt_runtime_start(rt));
    expect_reads_left_alone("starting the runtime");
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    expect_reads_left_alone("stopping the runtime");
}
