/* The intentd binary over real sockets: /healthz and /metrics, graceful shutdown on SIGTERM,
 * the command line, a clear refusal when io_uring is blocked, and request bodies over the size
 * limit answered as the API's problem+json 413 though h2o refuses them before any handler. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef INTENTD_BIN
#error "INTENTD_BIN must name the intentd binary"
#endif

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

/* Sends one HTTP/1.1 request and reads the whole answer (Connection: close). */
static int http_request(int port, const char *method, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n =
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 method, path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    return (int)len;
}

typedef struct {
    pid_t pid;
    int port;
    char log_path[64];
} server_t;

static pid_t spawn(char *const argv[], const char *log_path, int port, bool block_io_uring)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid != 0)
        return pid;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    char port_str[16];
    snprintf(port_str, sizeof(port_str), "%d", port);
    setenv("PORT", port_str, 1);
    setenv("WORKERS", "2", 1);
    setenv("SHUTDOWN_TIMEOUT_MS", "5000", 1);
    if (block_io_uring) {
        /* seccomp: io_uring_setup fails with EPERM, as under a container's default profile */
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(127);
    }
    execv(argv[0], argv);
    _exit(127);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int status;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void start_server(server_t *s)
{
    s->port = free_port();
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/intentd-test-%d.log", (int)getpid());
    char *argv[] = {INTENTD_BIN, NULL};
    s->pid = spawn(argv, s->log_path, s->port, false);
    char buf[4096];
    for (int tries = 0; tries != 500; ++tries) {
        if (http_request(s->port, "GET", "/healthz", buf, sizeof(buf)) > 0)
            return;
        usleep(10000);
    }
    cr_assert_fail("intentd did not answer /healthz within 5 s");
}

static char *read_file(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
    return buf;
}

Test(server, healthz_answers_over_a_real_socket, .timeout = 30)
{
    server_t s;
    start_server(&s);
    char buf[4096];
    cr_assert_gt(http_request(s.port, "GET", "/healthz", buf, sizeof(buf)), 0);
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    cr_assert_not_null(strstr(buf, "{\"status\":\"ok\"}"));
    cr_assert_not_null(strstr(buf, "application/json"));
    http_request(s.port, "POST", "/healthz", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 405", 12) == 0, "got: %s", buf);
    http_request(s.port, "GET", "/no-such-path", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 404", 12) == 0, "got: %s", buf);
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0);
}

Test(server, metrics_count_requests_per_worker, .timeout = 30)
{
    server_t s;
    start_server(&s);
    static char buf[65536];
    for (int i = 0; i != 20; ++i)
        http_request(s.port, "GET", "/healthz", buf, sizeof(buf));
    cr_assert_gt(http_request(s.port, "GET", "/metrics", buf, sizeof(buf)), 0);
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    cr_assert_not_null(strstr(buf, "# TYPE intentd_http_requests_total counter"));
    cr_assert_not_null(strstr(buf, "intentd_ring_submissions_total{worker=\"1\"}"));
    cr_assert_not_null(strstr(buf, "intentd_messages_handled_total{worker=\"0\"}"));
    cr_assert_not_null(strstr(buf, "intentd_actors_live{worker=\"0\"}"));
    long total = 0;
    for (char *p = buf; (p = strstr(p, "intentd_http_requests_total{worker=")) != NULL;) {
        p = strchr(p, '}') + 1;
        total += strtol(p, &p, 10);
    }
    cr_assert_geq(total, 21, "expected >= 21 requests counted, got %ld", total);
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0);
}

Test(server, sigterm_drains_and_exits_zero_and_frees_the_port, .timeout = 30)
{
    server_t s;
    start_server(&s);
    char buf[4096];
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0, "log: %s", read_file(s.log_path));
    cr_assert_lt(http_request(s.port, "GET", "/healthz", buf, sizeof(buf)), 0,
                 "still answering after exit");
    const char *log = read_file(s.log_path);
    cr_assert_not_null(strstr(log, "\"msg\":\"stopped\""), "log: %s", log);
    /* SIGINT takes the same path */
    start_server(&s);
    kill(s.pid, SIGINT);
    cr_assert_eq(wait_exit(s.pid, 10000), 0);
}

Test(server, help_lists_the_settings_and_bad_flags_are_refused, .timeout = 30)
{
    char log[] = "/tmp/intentd-test-help.log";
    char *help[] = {INTENTD_BIN, "--help", NULL};
    cr_assert_eq(wait_exit(spawn(help, log, 1, false), 10000), 0);
    const char *out = read_file(log);
    const char *names[] = {"PORT",
                           "DATABASE_URL",
                           "REDIS_URL",
                           "JWT_SECRET",
                           "PRIVATE_KEY",
                           "CRONOS_TESTNET_RPC",
                           "CRONOS_MAINNET_RPC",
                           "INTENT_CONTRACT_ADDRESS",
                           "API_RATE_LIMIT",
                           "TELEGRAM_BOT_TOKEN",
                           "WORKERS"};
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        cr_assert_not_null(strstr(out, names[i]), "--help lacks %s", names[i]);
    char *bad_flag[] = {INTENTD_BIN, "--no-such-flag", "1", NULL};
    cr_assert_eq(wait_exit(spawn(bad_flag, log, 1, false), 10000), 2);
    cr_assert_not_null(strstr(read_file(log), "unknown option"));
    char *bad_port[] = {INTENTD_BIN, "--port", "70000", NULL};
    cr_assert_eq(wait_exit(spawn(bad_port, log, 1, false), 10000), 2);
    cr_assert_not_null(strstr(read_file(log), "PORT must be"));
}

Test(server, secrets_are_never_logged, .timeout = 30)
{
    setenv("JWT_SECRET", "super-secret-jwt-value-longer-than-32-bytes", 1);
    setenv("PRIVATE_KEY", "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", 1);
    server_t s;
    start_server(&s);
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0);
    const char *log = read_file(s.log_path);
    cr_assert_null(strstr(log, "super-secret-jwt-value"), "JWT secret leaked to the log");
    cr_assert_null(strstr(log, "4c0883a69102937d"), "private key leaked to the log");
    cr_assert_not_null(strstr(log, "JWT_SECRET=<redacted>"));
    /* a secret too short for HS256 is refused at start, without being printed */
    setenv("JWT_SECRET", "short-secret-xyz", 1);
    char *argv[] = {INTENTD_BIN, NULL};
    char short_log[] = "/tmp/intentd-test-short-secret.log";
    cr_assert_eq(wait_exit(spawn(argv, short_log, free_port(), false), 10000), 2);
    cr_assert_null(strstr(read_file(short_log), "short-secret-xyz"), "the secret was printed");
    cr_assert_not_null(strstr(read_file(short_log), "JWT"), "%s", read_file(short_log));
    unsetenv("JWT_SECRET");
}

Test(server, refuses_to_start_without_io_uring, .timeout = 30)
{
    char log[] = "/tmp/intentd-test-nouring.log";
    char *argv[] = {INTENTD_BIN, NULL};
    int code = wait_exit(spawn(argv, log, free_port(), true), 10000);
    cr_assert_eq(code, 1, "exit %d, log: %s", code, read_file(log));
    cr_assert_not_null(strstr(read_file(log), "io_uring"), "log: %s", read_file(log));
    cr_assert_not_null(strstr(read_file(log), "cannot start"));
}

/* ---- bodies over the limit ---- */

#define BODY_LIMIT (1024 * 1024) /* NET_JSON_BODY_LIMIT_DEFAULT */
#define ORIGIN "https://app.example"

/* Sends `head` and then `len` bytes of `body` on a new connection, and reads the answer until
 * the server closes (at most `cap` - 1 bytes, NUL-terminated). A 10 s receive timeout makes a
 * server that keeps waiting for more fail the test instead of hanging it. The length read. */
static size_t exchange(int port, const char *head, const char *body, size_t len, char *out,
                       size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 10};
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    size_t head_len = strlen(head);
    cr_assert_eq(send(fd, head, head_len, MSG_NOSIGNAL), (ssize_t)head_len);
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, body + sent, len - sent, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "the server stopped reading after %zu of %zu bytes: %s", sent, len,
                     strerror(errno));
        sent += (size_t)n;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
    return got;
}

/* The value of response header `name` (lowercase) in `resp`, copied into `value`; false when
 * absent. Header names are compared case-insensitively. */
static bool header_value(const char *resp, const char *name, char *value, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t name_len = strlen(name);
    for (const char *line = strstr(resp, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, name_len) == 0 && line[2 + name_len] == ':') {
            const char *v = line + 2 + name_len + 1 + strspn(line + 2 + name_len + 1, " ");
            size_t v_len = (size_t)(strstr(v, "\r\n") - v);
            cr_assert_lt(v_len, cap);
            memcpy(value, v, v_len);
            value[v_len] = '\0';
            return true;
        }
    }
    return false;
}

static void assert_header(const char *resp, const char *name, const char *expected)
{
    char value[256];
    cr_assert(header_value(resp, name, value, sizeof(value)), "no %s in: %.1500s", name, resp);
    cr_assert_str_eq(value, expected, "%s", name);
}

/* `resp` is the API's problem `status` of type `slug`: RFC 9457 members, the security headers,
 * a request id that the body quotes, and CORS for ORIGIN. */
static void assert_problem(const char *resp, int status, const char *slug)
{
    char status_line[32], member[160], id[64];
    snprintf(status_line, sizeof(status_line), "HTTP/1.1 %d ", status);
    cr_assert(strncmp(resp, status_line, strlen(status_line)) == 0, "got: %.1500s", resp);
    assert_header(resp, "content-type", "application/problem+json");
    assert_header(resp, "x-content-type-options", "nosniff");
    assert_header(resp, "referrer-policy", "no-referrer");
    assert_header(resp, "x-frame-options", "DENY");
    assert_header(resp, "cache-control", "no-store");
    assert_header(resp, "content-security-policy", "default-src 'none'; frame-ancestors 'none'");
    assert_header(resp, "access-control-allow-origin", ORIGIN);
    cr_assert(header_value(resp, "x-request-id", id, sizeof(id)));
    cr_assert_eq(strlen(id), 24, "%s", id);
    const char *body = strstr(resp, "\r\n\r\n") + 4;
    snprintf(member, sizeof(member), "{\"type\":\"https://flowpay.dev/problems/%s\",\"title\":\"",
             slug);
    cr_assert(strncmp(body, member, strlen(member)) == 0, "%s", body);
    snprintf(member, sizeof(member), "\"status\":%d,\"detail\":\"", status);
    cr_assert_not_null(strstr(body, member), "%s", body);
    snprintf(member, sizeof(member), "\"requestId\":\"%s\"}", id);
    cr_assert_not_null(strstr(body, member), "%s", body);
    cr_assert_not_null(strstr(body, "\"errors\":["), "%s", body);
}

/* The requests the server's handlers have seen, summed over its workers (/metrics, which counts
 * itself). */
static long requests_handled(int port)
{
    static char buf[65536];
    cr_assert_gt(http_request(port, "GET", "/metrics", buf, sizeof(buf)), 0);
    long total = 0;
    for (char *p = buf; (p = strstr(p, "intentd_http_requests_total{worker=")) != NULL;) {
        p = strchr(p, '}') + 1;
        total += strtol(p, &p, 10);
    }
    return total;
}

static void assert_still_serving(int port)
{
    char buf[4096];
    cr_assert_gt(http_request(port, "GET", "/healthz", buf, sizeof(buf)), 0);
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
}

#define POST_NONCE                                                                                 \
    "POST /api/auth/nonce HTTP/1.1\r\nHost: localhost\r\nOrigin: " ORIGIN                          \
    "\r\nContent-Type: application/json\r\nConnection: close\r\n"

Test(server, bodies_over_the_limit_get_the_api_problem_413, .timeout = 60)
{
    setenv("CORS_ORIGINS", ORIGIN, 1);
    server_t s;
    start_server(&s);
    unsetenv("CORS_ORIGINS");
    static char resp[65536], head[512];
    /* a valid request but for its size: had any handler taken it, a nonce would be stored */
    static char body[BODY_LIMIT + 1], chunked[BODY_LIMIT + 1 + 17 * 16];
    size_t cap = sizeof(body);
    memset(body, ' ', cap);
    memcpy(body, "{\"address\":\"0x90F79bf6EB2c4f870365E785982E1f101E93b906\"", 55);
    body[cap - 1] = '}';
    long handled = requests_handled(s.port);

    /* a Content-Length over the limit: refused from the headers alone, without reading a body
     * (none is sent: waiting for it would time the read out) */
    snprintf(head, sizeof(head), "%sContent-Length: %d\r\n\r\n", POST_NONCE, BODY_LIMIT + 2);
    exchange(s.port, head, NULL, 0, resp, sizeof(resp));
    assert_problem(resp, 413, "body-too-large");
    cr_assert_not_null(strstr(resp, "\"detail\":\"the body is larger than 1048576 bytes\""));
    assert_header(resp, "connection", "close");
    snprintf(head, sizeof(head), "%sContent-Length: 10000000000\r\n\r\n", POST_NONCE);
    exchange(s.port, head, NULL, 0, resp, sizeof(resp));
    assert_problem(resp, 413, "body-too-large");

    /* chunked, growing past the limit: 16 chunks of 64 KiB (the limit exactly), then one byte;
     * refused as that byte arrives, before the body ends (nothing follows it, so the server has
     * read all that was sent and the client gets the whole answer) */
    snprintf(head, sizeof(head), "%sTransfer-Encoding: chunked\r\n\r\n", POST_NONCE);
    size_t chunked_len = 0;
    for (size_t i = 0; i != 17; ++i) {
        size_t n = i != 16 ? 65536 : 1;
        chunked_len += (size_t)sprintf(chunked + chunked_len, "%zx\r\n", n);
        memcpy(chunked + chunked_len, body + i * 65536, n);
        chunked_len += n;
        if (i != 16)
            chunked_len += (size_t)sprintf(chunked + chunked_len, "\r\n");
    }
    exchange(s.port, head, chunked, chunked_len, resp, sizeof(resp));
    assert_problem(resp, 413, "body-too-large");
    /* HEAD gets the headers only */
    exchange(s.port,
             "HEAD /api/auth/nonce HTTP/1.1\r\nHost: localhost\r\nOrigin: " ORIGIN
             "\r\nContent-Length: 2000000\r\n\r\n",
             NULL, 0, resp, sizeof(resp));
    cr_assert(strncmp(resp, "HTTP/1.1 413 ", 13) == 0, "got: %s", resp);
    assert_header(resp, "content-type", "application/problem+json");
    cr_assert_str_eq(strstr(resp, "\r\n\r\n"), "\r\n\r\n");
    /* no handler ran for any of them (this count's own request aside): nothing was stored */
    cr_assert_eq(requests_handled(s.port), handled + 1);
    assert_still_serving(s.port);

    /* a Content-Length of the limit + 1 is read in full (h2o's limit counts one more byte) and
     * refused by the handler: the same answer */
    snprintf(head, sizeof(head), "%sContent-Length: %d\r\n\r\n", POST_NONCE, BODY_LIMIT + 1);
    exchange(s.port, head, body, BODY_LIMIT + 1, resp, sizeof(resp));
    assert_problem(resp, 413, "body-too-large");
    cr_assert_not_null(strstr(resp, "\"detail\":\"the body is larger than 1048576 bytes\""));
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0, "log: %s", read_file(s.log_path));
}

Test(server, a_body_of_exactly_the_limit_reaches_the_handler, .timeout = 60)
{
    setenv("CORS_ORIGINS", ORIGIN, 1);
    server_t s;
    start_server(&s);
    unsetenv("CORS_ORIGINS");
    static char resp[65536], head[512];
    static char body[BODY_LIMIT + 16];
    memset(body, '[', BODY_LIMIT); /* JSON too deep to parse: a 400, not a 413 */
    snprintf(head, sizeof(head), "%sContent-Length: %d\r\n\r\n", POST_NONCE, BODY_LIMIT);
    exchange(s.port, head, body, BODY_LIMIT, resp, sizeof(resp));
    assert_problem(resp, 400, "invalid-request");
    cr_assert_not_null(strstr(resp, "not valid JSON"), "%s", resp);
    /* the same as one chunk: h2o lets a chunked body of exactly the limit through too */
    snprintf(head, sizeof(head), "%sTransfer-Encoding: chunked\r\n\r\n%x\r\n", POST_NONCE,
             BODY_LIMIT);
    memcpy(body + BODY_LIMIT, "\r\n0\r\n\r\n", 7);
    exchange(s.port, head, body, BODY_LIMIT + 7, resp, sizeof(resp));
    assert_problem(resp, 400, "invalid-request");
    /* and not JSON at all: 415 */
    snprintf(head, sizeof(head),
             "POST /api/auth/nonce HTTP/1.1\r\nHost: localhost\r\nOrigin: " ORIGIN
             "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
             BODY_LIMIT);
    exchange(s.port, head, body, BODY_LIMIT, resp, sizeof(resp));
    assert_problem(resp, 415, "unsupported-media-type");
    /* a broken chunked encoding, also refused by h2o itself, is a problem too */
    snprintf(head, sizeof(head), "%sTransfer-Encoding: chunked\r\n\r\nzz\r\n", POST_NONCE);
    exchange(s.port, head, NULL, 0, resp, sizeof(resp));
    assert_problem(resp, 400, "invalid-request");
    assert_still_serving(s.port);
    kill(s.pid, SIGTERM);
    cr_assert_eq(wait_exit(s.pid, 10000), 0, "log: %s", read_file(s.log_path));
}
