#include "anvil.h"
#include <arpa/inet.h>
#include <dirent.h>
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

#define ANVIL_TRIES 8 /* ports tried before giving up */

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

/* The ports anvil may take: above the kernel's ephemeral range, where no port that the kernel
 * hands out (free_port() of api_server.c, outgoing connections) and none of scripts/services.sh
 * (20000-31999) can be; below that range when there is no room above it. */
static void port_range(unsigned *lo, unsigned *span)
{
    unsigned eph_lo = 32768, eph_hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%u %u", &eph_lo, &eph_hi) != 2)
            eph_lo = 32768, eph_hi = 60999;
        fclose(f);
    }
    if (eph_hi < 65535 - 1024) {
        *lo = eph_hi + 1;
        *span = 65535 - eph_hi;
    } else {
        *lo = eph_lo > 4096 + 1024 ? eph_lo - 4096 : 1024;
        *span = eph_lo > *lo ? eph_lo - *lo : 1;
    }
}

/* The port for this process's next start: tests run in parallel as processes of their own
 * (mostly with neighbouring pids), so each pid gets PORTS_PER_PID ports of its own and takes
 * them in turn; a clash with an unrelated process is caught by anvil_start's owner check. */
#define PORTS_PER_PID 16u
static uint16_t next_port(void)
{
    static unsigned starts;
    unsigned lo, span;
    port_range(&lo, &span);
    unsigned slot = (unsigned)getpid() % (span / PORTS_PER_PID > 0 ? span / PORTS_PER_PID : 1);
    return (uint16_t)(lo + (slot * PORTS_PER_PID + starts++ % PORTS_PER_PID) % span);
}

/* The inode of the socket listening on 127.0.0.1:`port` (/proc/net/tcp), 0 if none. */
static unsigned long listener_inode(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    unsigned long inode = 0;
    if (f == NULL)
        return 0;
    for (int n = 0; inode == 0 && n != 100000 && fgets(line, sizeof(line), f) != NULL; ++n) {
        unsigned addr, local_port, state;
        unsigned long ino;
        if (sscanf(line, " %*u: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
                   &local_port, &state, &ino) == 4 &&
            local_port == port && state == 0x0A /* LISTEN */)
            inode = ino;
    }
    fclose(f);
    return inode;
}

/* Whether process `pid` holds the socket `inode` (one of its descriptors names it). */
static bool holds_socket(pid_t pid, unsigned long inode)
{
    char dir_path[64], link[64], want[64];
    snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *dir = opendir(dir_path);
    bool found = false;
    struct dirent *e;
    for (int n = 0; dir != NULL && !found && n != 65536 && (e = readdir(dir)) != NULL; ++n) {
        ssize_t len = readlinkat(dirfd(dir), e->d_name, link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    if (dir != NULL)
        closedir(dir);
    return found;
}

/* A connected socket to 127.0.0.1:port whose reads give up after 15 s (anvil mining a block of
 * thousands of executions under ASan on 2 busy cores has taken more than 5), or -1. A refused
 * connection is tried again (3 times): nothing was sent, so that is safe for any method. */
static int connect_loopback(uint16_t port)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int attempt = 0; attempt != 3; ++attempt) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {15, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        close(fd);
    }
    return -1;
}

static __thread char post_failure[160];

const char *http_post_blocking_failure(void)
{
    return post_failure;
}

int http_post_blocking(uint16_t port, const char *body, char *out, size_t cap)
{
    int fd = connect_loopback(port);
    if (fd < 0) {
        snprintf(post_failure, sizeof(post_failure), "connect to port %u: %s", port,
                 strerror(errno));
        return -1;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));
    if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
        snprintf(post_failure, sizeof(post_failure), "write to fd %d: %s", fd, strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r = 0;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    int read_errno = errno;
    out[len] = '\0';
    close(fd);
    char *start = strstr(out, "\r\n\r\n");
    if (start == NULL) {
        snprintf(post_failure, sizeof(post_failure), "fd %d: %zu bytes, no header end (%s)", fd,
                 len, r < 0 ? strerror(read_errno) : "closed");
        return -1;
    }
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
    /* Another test's anvil may hold the port (or take it first): then ours exits at once, while
     * the other one answers. So the answer counts only when the listening socket is our
     * process's; otherwise ours is stopped and the next port is tried. */
    for (int tries = 0; tries != ANVIL_TRIES; ++tries) {
        a->port = next_port();
        a->pid = spawn(bin, a->port, extra_args);
        for (int waited = 0; waited < 30000; waited += 50) {
            unsigned long inode;
            if (http_post_blocking(a->port,
                                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}", out,
                                   sizeof(out)) > 0 &&
                (inode = listener_inode(a->port)) != 0 && holds_socket(a->pid, inode)) {
                snprintf(a->url, sizeof(a->url), "http://127.0.0.1:%u", a->port);
                return true;
            }
            if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
                a->pid = 0; /* it exited (the port was taken): the next port */
                break;
            }
            sleep_ms(50);
        }
        anvil_stop(a);
    }
    fprintf(stderr, "anvil: %s did not answer eth_chainId on a port of its own\n", bin);
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
