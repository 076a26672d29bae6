/* The outbound HTTP client over https (wolfSSL), against a Python TLS stand-in on loopback
 * (tests/support/tls_standin.py) with throwaway certificates the test makes with the openssl
 * command (tests/support/make_test_certs.sh). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "chain/rpc.h"
#include "chain/rpc_codec.h"
#include "net/http_client.h"
#include "support/harness.h"

#define MSG_ISSUED 0x7e20
#define MSG_SENT 0x7e21

typedef struct st_server_t {
    pid_t pid;
    unsigned port;
} server_t;

static char cert_dir[64];

/* Makes the certificates once per test process (criterion runs each test in its own). */
static void make_certs(void)
{
    strcpy(cert_dir, "/tmp/intentd-https-XXXXXX");
    cr_assert_not_null(mkdtemp(cert_dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sh %s %s", MAKE_CERTS, cert_dir);
    cr_assert_eq(system(cmd), 0, "could not make certificates (is openssl installed?)");
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *cert_path(char *buf, const char *name)
{
    snprintf(buf, 128, "%s/%s", cert_dir, name);
    return buf;
}

/* Starts the stand-in with the certificate `name` (.pem and .key) and reads its port. */
static server_t server_start(const char *name)
{
    char cert[128], key[128], pem[64], keyname[64];
    snprintf(pem, sizeof(pem), "%s.pem", name);
    snprintf(keyname, sizeof(keyname), "%s.key", name);
    cert_path(cert, pem);
    cert_path(key, keyname);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    server_t s = {0};
    s.pid = fork();
    cr_assert_geq(s.pid, 0);
    if (s.pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", TLS_STANDIN, cert, key, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    cr_assert(f != NULL && fscanf(f, "%u", &s.port) == 1, "the stand-in did not start");
    fclose(f);
    return s;
}

static void server_stop(server_t *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

/* A port that accepts TCP connections (into the backlog) and never says anything. */
static int silent_port_open(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

typedef struct st_fixture_t {
    server_t server;
    net_http_client_t *client;
    harness_t h;
    int endpoint;
} fixture_t;

/* `url_format` holds one %u for the port; the client trusts `ca` (a .pem in cert_dir). */
static void setup(fixture_t *f, const char *cert, const char *ca, const char *url_format)
{
    char url[128], err[256], ca_file[128];
    make_certs();
    f->server = server_start(cert);
    net_http_client_config_t config = {.ca_file = cert_path(ca_file, ca)};
    f->client = net_http_client_create(&config);
    snprintf(url, sizeof(url), url_format, f->server.port);
    f->endpoint = net_http_client_add_endpoint(f->client, url, err, sizeof(err));
    cr_assert_geq(f->endpoint, 0, "%s", err);
    harness_start(&f->h, f->client, 2, 3000);
}

static void teardown(fixture_t *f)
{
    harness_stop(&f->h);
    net_http_client_free(f->client);
    server_stop(&f->server);
    remove_certs();
}

typedef struct st_step_t {
    net_http_client_t *client;
    net_http_request_t req;
} step_t;

static void issue_step(rt_actor_t *self, void *arg)
{
    step_t *s = arg;
    rt_msg_t *issued = rt_msg_new(MSG_ISSUED, sizeof(int));
    *(int *)rt_msg_payload(issued) = net_http_request(self, s->client, &s->req, 1, NULL);
    rt_actor_send(self, issued);
}

/* Issues one request and returns its response message (free it). */
static harness_msg_t *roundtrip(fixture_t *f, const net_http_request_t *req)
{
    static step_t step;
    step.client = f->client;
    step.req = *req;
    harness_run(&f->h, issue_step, &step);
    harness_msg_t *m = harness_wait(&f->h, 5000);
    cr_assert(m != NULL && m->type == MSG_ISSUED);
    int result = *(int *)m->payload;
    free(m);
    cr_assert_eq(result, NET_HTTP_OK, "refused: %s", net_http_strerror(result));
    m = harness_wait(&f->h, 10000);
    cr_assert_not_null(m, "no response");
    cr_assert_eq(m->type, NET_HTTP_MSG_RESPONSE);
    return m;
}

static net_http_response_t *resp_of(harness_msg_t *m)
{
    return (net_http_response_t *)m->payload;
}

static void assert_ok_body(harness_msg_t *m, const char *body)
{
    net_http_response_t *r = resp_of(m);
    cr_assert_eq(r->error, NET_HTTP_OK, "%s", net_http_strerror(r->error));
    cr_assert_eq(r->status, 200);
    cr_assert(r->maybe_sent);
    cr_assert_str_eq(r->body, body);
}

Test(https_client, json_post_with_length_and_chunked, .timeout = 60)
{
    fixture_t f;
    setup(&f, "leaf", "ca.pem", "https://localhost:%u");
    const char *json = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}";
    net_http_request_t post = {
        .endpoint = f.endpoint, .path = "/echo", .body = json, .body_len = strlen(json)};
    harness_msg_t *m = roundtrip(&f, &post);
    assert_ok_body(m, json);
    free(m);
    post.path = "/echo-chunked";
    m = roundtrip(&f, &post);
    assert_ok_body(m, json);
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/chunked"});
    assert_ok_body(m, "hello world");
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/big/300000"});
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_eq(resp_of(m)->body_len, 300000);
    cr_assert_eq(resp_of(m)->body[299999], 'x');
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/nope"});
    cr_assert_eq(resp_of(m)->error, NET_HTTP_OK);
    cr_assert_eq(resp_of(m)->status, 404);
    free(m);
    teardown(&f);
}

Test(https_client, keep_alive_reuses_one_tls_connection, .timeout = 60)
{
    fixture_t f;
    setup(&f, "leaf", "ca.pem", "https://localhost:%u");
    for (int i = 0; i != 5; ++i) {
        harness_msg_t *m =
            roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/conn"});
        assert_ok_body(m, "1"); /* every request on the first (and only) connection */
        free(m);
    }
    /* Connection: close is honoured: the next request makes a second connection */
    harness_msg_t *m =
        roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/close"});
    assert_ok_body(m, "bye");
    free(m);
    m = roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .path = "/conn"});
    assert_ok_body(m, "2");
    free(m);
    teardown(&f);
}

static void assert_refused(fixture_t *f)
{
    const char *json = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}";
    net_http_request_t post = {
        .endpoint = f->endpoint, .path = "/echo", .body = json, .body_len = strlen(json)};
    harness_msg_t *m = roundtrip(f, &post);
    net_http_response_t *r = resp_of(m);
    cr_assert_eq(r->error, NET_HTTP_ERR_TLS, "got %s", net_http_strerror(r->error));
    cr_assert_eq(r->status, 0);
    cr_assert_eq(r->body_len, 0);
    cr_assert_str_eq(r->body, "");
    cr_assert_not(r->maybe_sent, "a refused handshake sent nothing");
    free(m);
}

Test(https_client, wrong_host_name_is_refused, .timeout = 60)
{
    fixture_t f;
    setup(&f, "wrong", "ca.pem", "https://localhost:%u"); /* trusted CA, made for wrong.example */
    assert_refused(&f);
    teardown(&f);
}

Test(https_client, untrusted_ca_is_refused, .timeout = 60)
{
    fixture_t f;
    setup(&f, "rogue", "ca.pem", "https://localhost:%u"); /* for localhost, by an unknown CA */
    assert_refused(&f);
    teardown(&f);
}

Test(https_client, trusting_the_system_bundle_refuses_a_private_ca, .timeout = 60)
{
    fixture_t f;
    make_certs();
    f.server = server_start("leaf");
    f.client = net_http_client_create(NULL);
    char url[128], err[256];
    snprintf(url, sizeof(url), "https://localhost:%u", f.server.port);
    f.endpoint = net_http_client_add_endpoint(f.client, url, err, sizeof(err));
    cr_assert_geq(f.endpoint, 0, "%s", err);
    harness_start(&f.h, f.client, 2, 3000);
    assert_refused(&f);
    teardown(&f);
}

Test(https_client, stalled_handshake_times_out, .timeout = 60)
{
    unsigned port;
    int fd = silent_port_open(&port);
    make_certs();
    char ca_file[128], url[128], err[256];
    net_http_client_config_t config = {.ca_file = cert_path(ca_file, "ca.pem")};
    net_http_client_t *client = net_http_client_create(&config);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", port);
    fixture_t f = {.client = client};
    f.endpoint = net_http_client_add_endpoint(client, url, err, sizeof(err));
    cr_assert_geq(f.endpoint, 0, "%s", err);
    harness_start(&f.h, client, 2, 3000);
    harness_msg_t *m =
        roundtrip(&f, &(net_http_request_t){.endpoint = f.endpoint, .connect_timeout_ms = 300});
    net_http_response_t *r = resp_of(m);
    cr_assert_eq(r->error, NET_HTTP_ERR_CONNECT_TIMEOUT, "got %s", net_http_strerror(r->error));
    cr_assert_not(r->maybe_sent);
    cr_assert(r->elapsed_ms >= 250 && r->elapsed_ms < 2000, "after %u ms", r->elapsed_ms);
    free(m);
    harness_stop(&f.h);
    net_http_client_free(client);
    close(fd);
    remove_certs();
}

typedef struct st_rpc_step_t {
    chain_rpc_t *rpc;
    chain_rpc_call_t call;
} rpc_step_t;

static void rpc_step(rt_actor_t *self, void *arg)
{
    rpc_step_t *s = arg;
    rt_msg_t *sent = rt_msg_new(MSG_SENT, sizeof(int));
    *(int *)rt_msg_payload(sent) = chain_rpc_send(self, s->rpc, &s->call, 1, 0, 7);
    rt_actor_send(self, sent);
}

Test(https_client, chain_rpc_over_https, .timeout = 60)
{
    make_certs();
    server_t server = server_start("leaf");
    char ca_file[128], url[128], err[256];
    net_http_client_config_t config = {.ca_file = cert_path(ca_file, "ca.pem")};
    net_http_client_t *http = net_http_client_create(&config);
    snprintf(url, sizeof(url), "https://localhost:%u/rpc", server.port);
    const char *urls[] = {url};
    chain_rpc_t *rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = urls, .num_urls = 1}, http,
                                        err, sizeof(err));
    cr_assert_not_null(rpc, "%s", err);
    harness_t h;
    harness_start(&h, http, 2, 3000);
    chain_rpc_start(rpc, h.rt);
    static rpc_step_t step;
    step.rpc = rpc;
    step.call = chain_rpc_eth_chain_id();
    harness_run(&h, rpc_step, &step);
    harness_msg_t *m = harness_wait(&h, 5000);
    cr_assert(m != NULL && m->type == MSG_SENT && *(int *)m->payload == CHAIN_RPC_OK);
    free(m);
    m = harness_wait(&h, 15000);
    cr_assert_not_null(m, "no reply");
    cr_assert_eq(m->type, CHAIN_RPC_MSG_REPLY);
    chain_rpc_reply_t *reply = (chain_rpc_reply_t *)m->payload;
    cr_assert_eq(reply->items[0].error, CHAIN_RPC_OK, "%s",
                 chain_rpc_strerror(reply->items[0].error));
    size_t len;
    const char *text = chain_rpc_reply_result(reply, 0, &len);
    uint64_t chain_id;
    cr_assert_eq(chain_rpc_result_u64(text, len, &chain_id), CHAIN_OK, "%s", text);
    cr_assert_eq(chain_id, 31337);
    free(m);
    chain_rpc_stop(rpc);
    harness_stop(&h);
    chain_rpc_free(rpc);
    net_http_client_free(http);
    server_stop(&server);
    remove_certs();
}
