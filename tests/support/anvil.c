#include "anvil.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef INTENTD_SOURCE_DIR
#error "INTENTD_SOURCE_DIR must name the source tree (for .local/npm)"
#endif

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool find_binary(char *path, size_t size)
{
    const char *env = getenv("ANVIL_BIN");
    if (env != NULL && access(env, X_OK) == 0) {
        snprintf(path, size, "%s", env);
        return true;
    }
    struct utsname u;
    uname(&u);
    const char *arch = strcmp(u.machine, "aarch64") == 0 ? "arm64" : "amd64";
    const char *mods = INTENTD_SOURCE_DIR "/.local/npm/node_modules";
    snprintf(path, size, "%s/@foundry-rs/anvil-linux-%s/bin/anvil", mods, arch);
    if (access(path, X_OK) == 0)
        return true;
    snprintf(path, size, "%s/@foundry-rs/anvil/dist/anvil", mods);
    return access(path, X_OK) == 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    close(fd);
    return ntohs(addr.sin_port);
}

int http_post_blocking(uint16_t port, const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));
    if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    char *start = strstr(out, "\r\n\r\n");
    if (start == NULL)
        return -1;
    memmove(out, start + 4, strlen(start + 4) + 1);
    return (int)strlen(out);
}

static pid_t spawn(const char *bin, uint16_t port, const char *const *extra_args)
{
    char port_str[8];
    snprintf(port_str, sizeof(port_str), "%u", port);
    const char *argv[32] = {bin, "--host", "127.0.0.1", "--port", port_str, "--silent"};
    size_t argc = 6;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && argc != 31; ++i)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* dies with the test process, even when a failed assertion ends it early */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

bool anvil_start(anvil_t *a, const char *const *extra_args)
{
    char bin[512], out[512];
    if (!find_binary(bin, sizeof(bin))) {
        fprintf(stderr, "anvil: not found; run scripts/deps.sh or set ANVIL_BIN\n");
        return false;
    }
    for (int tries = 0; tries != 3; ++tries) { /* the free port may be taken meanwhile */
        a->port = free_port();
        a->pid = spawn(bin, a->port, extra_args);
        for (int waited = 0; waited < 30000; waited += 50) {
            if (http_post_blocking(a->port,
                                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}", out,
                                   sizeof(out)) > 0) {
                snprintf(a->url, sizeof(a->url), "http://127.0.0.1:%u", a->port);
                return true;
            }
            if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
                a->pid = 0; /* it exited (port taken?): try another port */
                break;
            }
            sleep_ms(50);
        }
        anvil_stop(a);
    }
    fprintf(stderr, "anvil: %s did not answer eth_chainId\n", bin);
    return false;
}

void anvil_stop(anvil_t *a)
{
    if (a->pid <= 0)
        return;
    kill(a->pid, SIGTERM);
    for (int waited = 0; waited < 5000; waited += 20) {
        if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
            a->pid = 0;
            return;
        }
        sleep_ms(20);
    }
    kill(a->pid, SIGKILL);
    waitpid(a->pid, NULL, 0);
    a->pid = 0;
}
