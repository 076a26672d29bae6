/* The outbound HTTP client over real loopback sockets, against a stand-in server that can be
 * slow, drop connections, answer 500 and 429 and close mid-body (tests/support/standin.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/http_client.h"
#include "support/harness.h"
#include "support/standin.h"

#define MSG_ISSUED 0x7e10
#define MAX_CALLS 16

/* Requests that one step issues at once, and what net_http_request said to each. */
typedef struct st_batch_t {
    net_http_client_t *client;
    net_http_request_t reqs[MAX_CALLS];
    size_t n;
} batch_t;

typedef struct st_fixture_t {
    standin_t *standin;
    net_http_client_t *client;
    harness_t h;
    int endpoint;
} fixture_t;

static void issue_step(rt_actor_t *self, void *arg)
{
    batch_t *b = arg;
    rt_msg_t *issued = rt_msg_new(MSG_ISSUED, sizeof(int) * b->n);
    int *results = rt_msg_payload(issued);
    for (size_t i = 0; i != b->n; ++i)
        results[i] = net_http_request(self, b->client, &b->reqs[i], i, NULL);
    rt_actor_send(self, issued); /* recorded before any response: those come from a later turn */
}

/* `url_format` may hold one %u for the stand-in's port; NULL: http://127.0.0.1:%u. */
static void setup(fixture_t *f, const net_http_client_config_t *config, const char *url_format)
{
    char url[128], err[256];
    f->standin = standin_start();
    f->client = net_http_client_create(config);
    snprintf(url, sizeof(url), url_format != NULL ? url_format : "http://127.0.0.1:%u",
             standin_port(f->standin));
    f->endpoint = net_http_client_add_endpoint(f->client, url, err, sizeof(err));
    cr_assert_geq(f->endpoint, 0, "%s", err);
    harness_start(&f->h, f->client, 2, 3000);
}

static void teardown(fixture_t *f)
{
    harness_stop(&f->h);
    net_http_client_free(f->client);
    standin_stop(f->standin);
}

/* Runs the batch on the driver and copies net_http_request's results into `results`. */
static void issue(fixture_t *f, batch_t *b, int *results)
{
    b->client = f->client;
    harness_run(&f->h, issue_step, b);
    harness_msg_t *m = harness_wait(&f->h, 5000);
    cr_assert_not_null(m, "the step did not run");
    cr_assert_eq(m->type, MSG_ISSUED);
    memcpy(results, m->payload, sizeof(int) * b->n);
    free(m);
}

/* The next response; the caller frees the returned message. */
static harness_msg_t *next_response(fixture_t *f, int timeout_ms)
{
    harness_msg_t *m = harness_wait(&f->h, timeout_ms);
    cr_assert_not_null(m, "no response within %d ms", timeout_ms);
    cr_assert_eq(m->type, NET_HTTP_MSG_RESPONSE);
    return m;
}

static net_http_response_t *resp_of(harness_msg_t *m)
{
    return (net_http_response_t *)m->payload;
}

/* Issues one request and returns its response. */
static harness_msg_t *roundtrip(fixture_t *f, const net_http_request_t *req)
{
    batch_t b = {.n = 1};
    b.reqs[0] = *req;
    int result;
    issue(f, &b, &result);
    cr_assert_eq(result, NET_HTTP_OK, "refused: %s", net_http_strerror(result));
    return next_response(f, 10000);
}

static net_http_request_t get(fixture_t *f, const char *path)
{
    return (net_http_request_t){.endpoint = f->endpoint, .path = path};
}

Test(http_client, post_echo_chunked_and_big_bodies, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    const char *json = "{\"jsonrpc\":\"2.0\",\"id\":1}";
    net_http_request_t post = {
        .endpoint = f.endpoint, .path = "/echo", .body = json, .body_len = strlen(json)};
    harness_msg_t *m = roundtrip(&f, &post);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK, "%s", net_http_strerror(resp_of(m)->error));
    cr_assert_eq(resp_of(m)->status, 200);
    cr_assert_str_eq(resp_of(m)->body, json);
    cr_assert(resp_of(m)->maybe_sent);
    free(m);
    /* an empty body (a node's bare 200) is an empty answer, not a crash */
    post.body = "", post.body_len = 0;
    m = roundtrip(&f, &post);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK, "%s", net_http_strerror(resp_of(m)->error));
    cr_assert_eq(resp_of(m)->status, 200);
    cr_assert_eq(resp_of(m)->body_len, 0);
    cr_assert_str_eq(resp_of(m)->body, "");
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/chunked"});
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_str_eq(resp_of(m)->body, "hello world");
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/big/300000"});
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_eq(resp_of(m)->body_len, 300000);
    cr_assert_eq(resp_of(m)->body[299999], 'x');
    free(m);
    teardown(&f);
}

Test(http_client, keep_alive_reuses_one_connection, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    for (int i = 0; i != 5; ++i) {
        net_http_request_t req = get(&f, "/conn");
        harness_msg_t *m = roundtrip(&f, &req);
        cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
        cr_assert_str_eq(resp_of(m)->body, "1", "request %d used connection %s", i,
                         resp_of(m)->body);
        free(m);
    }
    cr_assert_eq(standin_connections(f.standin), 1);
    /* a server that says Connection: close is not reused */
    net_http_request_t close_req = get(&f, "/close");
    free(roundtrip(&f, &close_req));
    net_http_request_t conn_req = get(&f, "/conn");
    harness_msg_t *m = roundtrip(&f, &conn_req);
    cr_assert_str_eq(resp_of(m)->body, "2");
    free(m);
    teardown(&f);
}

Test(http_client, concurrency_is_bounded_by_max_connections, .timeout = 30)
{
    fixture_t f;
    setup(&f, &(net_http_client_config_t){.max_connections = 2}, NULL);
    batch_t b = {.n = 6};
    for (size_t i = 0; i != b.n; ++i)
        b.reqs[i] = get(&f, "/slow/100");
    int results[MAX_CALLS];
    issue(&f, &b, results);
    for (size_t i = 0; i != b.n; ++i) {
        cr_assert_eq(results[i], NET_HTTP_OK);
        harness_msg_t *m = next_response(&f, 10000);
        cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
        free(m);
    }
    cr_assert_eq(standin_connections(f.standin), 2);
    teardown(&f);
}

Test(http_client, full_queue_refuses_with_busy, .timeout = 30)
{
    fixture_t f;
    setup(&f, &(net_http_client_config_t){.max_connections = 1, .max_waiting = 2}, NULL);
    batch_t b = {.n = 4};
    for (size_t i = 0; i != b.n; ++i)
        b.reqs[i] = get(&f, "/slow/200");
    int results[MAX_CALLS];
    issue(&f, &b, results);
    cr_assert_eq(results[0], NET_HTTP_OK);
    cr_assert_eq(results[1], NET_HTTP_OK);
    cr_assert_eq(results[2], NET_HTTP_OK);
    cr_assert_eq(results[3], NET_HTTP_ERR_BUSY);
    for (int i = 0; i != 3; ++i) {
        harness_msg_t *m = next_response(&f, 10000);
        cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
        cr_assert_eq(resp_of(m)->tag, (uint64_t)i, "answered in order on one connection");
        free(m);
    }
    cr_assert_null(harness_wait(&f.h, 300), "a refused request must not be answered");
    net_http_client_stats_t stats;
    net_http_client_stats(f.client, &stats);
    cr_assert_eq(stats.refused_busy, 1);
    cr_assert_eq(stats.requests, 3);
    cr_assert_eq(stats.completed_ok, 3);
    teardown(&f);
}

Test(http_client, total_timeout_fires, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    net_http_request_t req = get(&f, "/slow/3000");
    req.timeout_ms = 300;
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_TIMEOUT, "%s",
                 net_http_strerror(resp_of(m)->error));
    cr_assert(resp_of(m)->maybe_sent);
    cr_assert_geq(resp_of(m)->elapsed_ms, 290);
    cr_assert_lt(resp_of(m)->elapsed_ms, 2000);
    free(m);
    /* the timed-out connection is not reused; the next request works */
    req = get(&f, "/conn");
    m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_str_eq(resp_of(m)->body, "2");
    free(m);
    teardown(&f);
}

Test(http_client, waiting_request_times_out_unsent, .timeout = 30)
{
    fixture_t f;
    setup(&f, &(net_http_client_config_t){.max_connections = 1}, NULL);
    batch_t b = {.n = 2};
    b.reqs[0] = get(&f, "/slow/1000");
    b.reqs[1] = get(&f, "/echo");
    b.reqs[1].timeout_ms = 200;
    int results[MAX_CALLS];
    issue(&f, &b, results);
    harness_msg_t *m = next_response(&f, 5000);
    cr_assert_eq(resp_of(m)->tag, 1);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_TIMEOUT);
    cr_assert_not(resp_of(m)->maybe_sent, "it never left the queue");
    free(m);
    m = next_response(&f, 5000);
    cr_assert_eq(resp_of(m)->tag, 0);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    free(m);
    cr_assert_eq(standin_requests(f.standin, "/echo"), 0);
    teardown(&f);
}

Test(http_client, connect_timeout_fires_and_is_unsent, .timeout = 30)
{
    int fds[4];
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", blackhole_open(fds));
    fixture_t f;
    setup(&f, NULL, url);
    net_http_request_t req = {.endpoint = f.endpoint, .connect_timeout_ms = 200};
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_CONNECT_TIMEOUT, "%s",
                 net_http_strerror(resp_of(m)->error));
    cr_assert_not(resp_of(m)->maybe_sent);
    cr_assert_lt(resp_of(m)->elapsed_ms, 2000);
    free(m);
    teardown(&f);
    blackhole_close(fds);
}

Test(http_client, refused_connection_is_connect_error, .timeout = 30)
{
    int fd;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", refusing_port_open(&fd));
    fixture_t f;
    setup(&f, NULL, url);
    net_http_request_t req = {.endpoint = f.endpoint, .body = "{}", .body_len = 2};
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_CONNECT, "%s",
                 net_http_strerror(resp_of(m)->error));
    cr_assert_not(resp_of(m)->maybe_sent);
    free(m);
    teardown(&f);
    close(fd);
}

Test(http_client, dropped_truncated_and_garbled_responses, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    static const struct {
        const char *path;
        int error;
    } cases[] = {{"/drop", NET_HTTP_ERR_CLOSED},
                 {"/midbody", NET_HTTP_ERR_CLOSED},
                 {"/garbage", NET_HTTP_ERR_BAD_RESPONSE}};
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        net_http_request_t req = get(&f, cases[i].path);
        harness_msg_t *m = roundtrip(&f, &req);
        cr_assert_eq(resp_of(m)->error, cases[i].error, "%s: %s", cases[i].path,
                     net_http_strerror(resp_of(m)->error));
        cr_assert(resp_of(m)->maybe_sent);
        cr_assert_eq(resp_of(m)->body_len, 0);
        free(m);
    }
    teardown(&f);
}

Test(http_client, statuses_pass_through_with_retry_after, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    net_http_request_t req = get(&f, "/status/500");
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_eq(resp_of(m)->status, 500);
    cr_assert_str_eq(resp_of(m)->body, "status 500");
    free(m);
    req = get(&f, "/status/429");
    m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->status, 429);
    cr_assert_eq(resp_of(m)->retry_after_ms, 2000);
    free(m);
    req = get(&f, "/status/204");
    m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_eq(resp_of(m)->status, 204);
    free(m);
    teardown(&f);
}

Test(http_client, response_size_is_capped, .timeout = 30)
{
    fixture_t f;
    setup(&f, &(net_http_client_config_t){.max_response_bytes = 1000}, NULL);
    net_http_request_t req = get(&f, "/big/1000");
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    free(m);
    req = get(&f, "/big/1001");
    m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_TOO_LARGE);
    free(m);
    teardown(&f);
    /* without a Content-Length the cap applies as the body arrives */
    setup(&f, &(net_http_client_config_t){.max_response_bytes = 8}, NULL);
    req = get(&f, "/chunked");
    m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_ERR_TOO_LARGE);
    free(m);
    teardown(&f);
}

Test(http_client, named_host_is_resolved, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, "http://localhost:%u");
    for (int i = 0; i != 2; ++i) {
        net_http_request_t req = get(&f, "/conn");
        harness_msg_t *m = roundtrip(&f, &req);
        cr_assert_eq(resp_of(m)->error, NET_HTTP_OK, "%s", net_http_strerror(resp_of(m)->error));
        cr_assert_str_eq(resp_of(m)->body, "1");
        free(m);
    }
    teardown(&f);
}

Test(http_client, bad_urls_and_requests_are_refused, .timeout = 30)
{
    net_http_client_t *client = net_http_client_create(NULL);
    char err[256];
    /* https is accepted (tests/test_https_client.c), unless its CA file cannot be loaded */
    cr_assert_eq(net_http_client_add_endpoint(client, "https://rpc.example:443/", err, sizeof(err)),
                 0, "%s", err);
    net_http_client_t *no_ca =
        net_http_client_create(&(net_http_client_config_t){.ca_file = "/nonexistent/ca.pem"});
    cr_assert_eq(net_http_client_add_endpoint(no_ca, "https://rpc.example/", err, sizeof(err)),
                 NET_HTTP_ERR_INVALID);
    cr_assert_not_null(strstr(err, "/nonexistent/ca.pem"), "%s", err);
    net_http_client_free(no_ca);
    cr_assert_eq(net_http_client_add_endpoint(client, "ftp://x/", err, sizeof(err)),
                 NET_HTTP_ERR_UNSUPPORTED);
    cr_assert_eq(net_http_client_add_endpoint(client, "http://", err, sizeof(err)),
                 NET_HTTP_ERR_INVALID);
    net_http_client_free(client);

    fixture_t f;
    setup(&f, NULL, NULL);
    batch_t b = {.n = 4};
    b.reqs[0] = get(&f, "/echo");
    b.reqs[0].headers = (net_http_header_t[]){{"X-Evil", "a\r\nHost: other"}};
    b.reqs[0].num_headers = 1;
    b.reqs[1] = get(&f, "/echo two");
    b.reqs[2] = get(&f, "/echo");
    b.reqs[2].headers = (net_http_header_t[]){{"Content-Length", "5"}};
    b.reqs[2].num_headers = 1;
    b.reqs[3] = get(&f, "/echo");
    b.reqs[3].endpoint = 7;
    int results[MAX_CALLS];
    issue(&f, &b, results);
    for (size_t i = 0; i != b.n; ++i)
        cr_assert_eq(results[i], NET_HTTP_ERR_INVALID, "request %zu", i);
    cr_assert_null(harness_wait(&f.h, 200));
    teardown(&f);
}

Test(http_client, extra_headers_are_sent, .timeout = 30)
{
    fixture_t f;
    setup(&f, NULL, NULL);
    net_http_request_t req = {.endpoint = f.endpoint,
                              .method = "PUT",
                              .path = "/echo",
                              .content_type = "text/plain",
                              .body = "abc",
                              .body_len = 3,
                              .headers = (net_http_header_t[]){{"Authorization", "Bearer t"}},
                              .num_headers = 1};
    harness_msg_t *m = roundtrip(&f, &req);
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_str_eq(resp_of(m)->body, "abc");
    free(m);
    teardown(&f);
}

Test(http_client, shutdown_with_requests_in_flight_is_clean, .timeout = 30)
{
    fixture_t f;
    setup(&f, &(net_http_client_config_t){.max_connections = 1}, NULL);
    batch_t b = {.n = 3};
    for (size_t i = 0; i != b.n; ++i)
        b.reqs[i] = get(&f, "/slow/10000");
    int results[MAX_CALLS];
    issue(&f, &b, results);
    /* one in flight, two waiting: the drain deadline (3 s) passes and all are dropped, with no
     * leak (the ASan build checks) */
    teardown(&f);
}
