/* The intentd binary over real sockets: /healthz and /metrics, graceful shutdown on SIGTERM,
 * the command line, and a clear refusal when io_uring is blocked. */
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
