/*
 * A misbehaving local HTTP/1.1 server for tests, on 127.0.0.1 with a port of its own, served by
 * threads inside the test process. What it does depends on the path:
 *
 *   /echo            200, the request body back; "X-Conn: N" names the connection
 *   /conn            200, body N: the serial number of the connection (keep-alive shows as one)
 *   /slow/MS         waits MS milliseconds, then 200 "slow"
 *   /drop            reads the request and closes without answering
 *   /status/CODE     answers CODE ("Retry-After: 2" with 429)
 *   /midbody         announces 1000 bytes, sends 10, closes
 *   /big/N           200 with N bytes
 *   /chunked         200 "hello world" in three chunks
 *   /garbage         a line that is not HTTP, then closes
 *   /close           200 "bye" with "Connection: close", then closes
 *   /rpc/SCENARIO    a JSON-RPC 2.0 answer for every call of the request (single or batch),
 *                    with the request's ids: see standin.c for the scenarios, whose error texts
 *                    are anvil's own
 *
 * It counts connections and requests per path so that tests can see reuse and retries.
 */
#ifndef TESTS_SUPPORT_STANDIN_H
#define TESTS_SUPPORT_STANDIN_H

#include <stdint.h>

typedef struct st_standin_t standin_t;

/** Starts the server; aborts the test process when it cannot. */
standin_t *standin_start(void);
/** The port it listens on. */
uint16_t standin_port(standin_t *s);
/** Connections accepted so far. */
unsigned standin_connections(standin_t *s);
/** Requests received so far whose path starts with `prefix`. */
unsigned standin_requests(standin_t *s, const char *prefix);
/** Stops accepting, closes every connection, joins every thread and frees the server. */
void standin_stop(standin_t *s);

/** Opens a listener whose accept queue is full, so that connecting to it hangs (SYNs are
 * dropped): a stand-in for an unreachable host. Returns its port; close with blackhole_close. */
uint16_t blackhole_open(int fds[4]);
/** Closes what blackhole_open opened. */
void blackhole_close(int fds[4]);
/** A loopback port that refuses connections: bound (so nothing else takes it) but not
 * listening. Close `*fd` when done. */
uint16_t refusing_port_open(int *fd);

#endif
