/*
 * Live updates at scale: N concurrent WebSockets (default 10,000, over U users) on one intentd
 * (release build, its own process, no database), fed through the test-only publish endpoint.
 *
 * Figures: server memory per socket (RSS before and after the sockets opened), event-to-socket
 * latency p50/p99/max under a paced load (the publisher stamps CLOCK_MONOTONIC into each event;
 * the client, on the same machine, takes the difference on receipt: it includes the publish
 * request's own HTTP round trip), and frames delivered per second when publishing as fast as
 * the server takes it. One process, one thread, epoll: the client needs no more than the server.
 *
 * usage: ws_bench [SOCKETS [USERS [RATE_EVENTS_PER_S [SECONDS]]]]
 *        (defaults 10000 1000 1000 5; each event reaches SOCKETS/USERS sockets)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "net/jwt.h"

#define SECRET "bench-secret-of-at-least-thirty-two-bytes!!"
#define PUBLISHERS 8
#define MAX_SAMPLES (8u << 20)
#define CONNECT_BATCH 500

typedef struct st_sock_t {
    int fd;
    bool open; /* 101 received */
    uint16_t len;
    uint8_t buf[1024]; /* a partial frame or response head carried over between reads */
} sock_t;

typedef struct st_pub_t {
    int fd;
    bool busy;
    size_t len;
    char buf[4096];
} pub_t;

static int port, nsockets, nusers, ep;
static sock_t *socks;
static pub_t pubs[PUBLISHERS];
static char (*tokens)[512];
static uint32_t *samples; /* latencies, us */
static size_t nsamples;
static uint64_t frames;
static bool sampling;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* A loopback port nothing listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static long server_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

/* Parses the frames buffered for socket `s`; text frames carry {"t": ns}. */
static void consume(sock_t *s, uint64_t now)
{
    size_t off = 0;
    while (s->len - off >= 2) {
        uint8_t *p = s->buf + off;
        size_t h = 2, len = p[1] & 0x7f;
        if (len == 126) {
            if (s->len - off < 4)
                break;
            len = (size_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            fprintf(stderr, "unexpected huge frame\n");
            exit(1);
        }
        if (s->len - off < h + len)
            break;
        if ((p[0] & 0x0f) == 8) {
            fprintf(stderr, "closed by the server: %u %.*s\n",
                    len >= 2 ? (unsigned)(p[h] << 8 | p[h + 1]) : 0u, len >= 2 ? (int)len - 2 : 0,
                    (char *)p + h + 2);
            exit(1);
        }
        if ((p[0] & 0x0f) == 1) {
            ++frames;
            char *t = memmem(p + h, len, "\"t\":", 4);
            if (t != NULL && sampling && nsamples < MAX_SAMPLES) {
                uint64_t sent = strtoull(t + 4, NULL, 10);
                samples[nsamples++] = (uint32_t)((now - sent) / 1000);
            }
        }
        off += h + len;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len = (uint16_t)(s->len - off);
}

static void on_socket(sock_t *s)
{
    uint64_t now = now_ns();
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "socket closed by the server\n");
                exit(1);
            }
            return;
        }
        s->len = (uint16_t)(s->len + n);
        if (!s->open) {
            char *end = memmem(s->buf, s->len, "\r\n\r\n", 4);
            if (end == NULL)
                continue;
            if (strncmp((char *)s->buf, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "upgrade refused: %.*s\n", 40, s->buf);
                exit(1);
            }
            size_t head = (size_t)(end + 4 - (char *)s->buf);
            memmove(s->buf, s->buf + head, s->len - head);
            s->len = (uint16_t)(s->len - head);
            s->open = true;
        }
        consume(s, now);
    }
}

static void on_publisher(pub_t *p)
{
    for (;;) {
        ssize_t n = read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "publisher connection closed\n");
                exit(1);
            }
            return;
        }
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
        char *end = strstr(p->buf, "\r\n\r\n");
        char *cl = strcasestr(p->buf, "content-length:");
        if (end == NULL || cl == NULL)
            continue;
        size_t total = (size_t)(end + 4 - p->buf) + strtoul(cl + 15, NULL, 10);
        if (p->len < total)
            continue;
        if (strncmp(p->buf, "HTTP/1.1 202", 12) != 0) {
            fprintf(stderr, "publish refused: %.60s\n", p->buf);
            exit(1);
        }
        memmove(p->buf, p->buf + total, p->len - total);
        p->len -= total;
        p->busy = false;
    }
}

static void publish(pub_t *p, int user, int count)
{
    char body[128], req[1024];
    int blen = snprintf(body, sizeof(body),
                        "{\"type\":\"intent.updated\",\"count\":%d,\"data\":{\"t\":%llu}}", count,
                        (unsigned long long)now_ns());
    int n = snprintf(req, sizeof(req),
                     "POST /api/test/events HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     tokens[user], blen, body);
    if (write(p->fd, req, (size_t)n) != n) {
        perror("publish write");
        exit(1);
    }
    p->busy = true;
}

/* Handles what is ready, waiting up to `timeout_ns` (the client must not spin: it shares the
 * machine's cores with the server it measures). */
static void poll_ns(uint64_t timeout_ns)
{
    struct epoll_event evs[256];
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                          .tv_nsec = (long)(timeout_ns % 1000000000u)};
    int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
    for (int i = 0; i < n; ++i) {
        uint64_t tag = evs[i].data.u64;
        if (tag >= (uint64_t)nsockets)
            on_publisher(&pubs[tag - (uint64_t)nsockets]);
        else
            on_socket(&socks[tag]);
    }
}

static void poll_once(int timeout_ms)
{
    poll_ns((uint64_t)timeout_ms * 1000000u);
}

static pid_t server_pid;

/* Whatever ends the bench (an error exit included) ends its server too. */
static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static pid_t start_server(const char *bin)
{
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof(p), "%d", port);
        setenv("PORT", p, 1);
        setenv("JWT_SECRET", SECRET, 1);
        setenv("EVENTS_TEST_ENDPOINT", "1", 1);
        setenv("API_RATE_LIMIT", "0", 1);
        setenv("USER_RATE_LIMIT", "0", 1);
        setenv("LOG_LEVEL", "warn", 1);
        unsetenv("DATABASE_URL");
        unsetenv("REDIS_URL");
        unsetenv("RPC_URL");
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
    atexit(stop_server);
    for (int i = 0; i != 500; ++i, usleep(20000)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (up)
            return pid;
    }
    fprintf(stderr, "intentd did not start\n");
    exit(1);
}

static void make_tokens(void)
{
    char err[128];
    net_jwt_keys_t *keys = net_jwt_keys_load(SECRET, NULL, err, sizeof(err));
    tokens = calloc((size_t)nusers, sizeof(*tokens));
    for (int u = 0; u != nusers; ++u) {
        char sub[40];
        snprintf(sub, sizeof(sub), "00000000-0000-4000-8000-%012d", u);
        net_jwt_claim_t extra[] = {{"wal", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}};
        int64_t now = (int64_t)time(NULL);
        net_jwt_sign_t c = {
            .sub = sub, .iat = now, .exp = now + 3600, .extra = extra, .extra_count = 1};
        if (net_jwt_sign(keys, &c, tokens[u], sizeof(tokens[u])) == 0)
            exit(1);
    }
    net_jwt_keys_free(keys);
}

static void open_sockets(void)
{
    uint64_t handshake_start = now_ns();
    socks = calloc((size_t)nsockets, sizeof(*socks));
    for (int i = 0; i < nsockets;) {
        int batch_end = i + CONNECT_BATCH < nsockets ? i + CONNECT_BATCH : nsockets;
        for (int j = i; j != batch_end; ++j) {
            socks[j].fd = dial();
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                     .data.u64 = (uint64_t)j};
            epoll_ctl(ep, EPOLL_CTL_ADD, socks[j].fd, &ev);
        }
        /* send each handshake once connected, then wait for the 101s of the batch */
        for (int j = i; j != batch_end; ++j) {
            char req[1024];
            int n =
                snprintf(req, sizeof(req),
                         "GET /api/ws HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
                         tokens[j % nusers]);
            for (int tries = 0; write(socks[j].fd, req, (size_t)n) != n; ++tries) {
                if (tries == 5000) {
                    fprintf(stderr, "cannot connect socket %d\n", j);
                    exit(1);
                }
                usleep(1000);
            }
        }
        for (bool all = false; !all;) {
            if (now_ns() - handshake_start > 60000000000ull) {
                fprintf(stderr, "handshakes did not complete within 60 s\n");
                exit(1);
            }
            poll_once(100);
            all = true;
            for (int j = i; j != batch_end && all; ++j)
                all = socks[j].open;
        }
        i = batch_end;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct st_figures_t {
    long rss0_kb, rss1_kb, rss2_kb;
    double open_s, flat_s;
    uint64_t published, late, paced_frames, flat_published, flat_frames;
} figures_t;

/* `rate` events per second for `seconds`, each to one user (all of its sockets); a publish is
 * skipped (counted) when every publisher connection still waits for its answer. */
static void paced_phase(int rate, int seconds, figures_t *fig)
{
    sampling = true;
    frames = 0;
    uint64_t start = now_ns(), interval = 1000000000ull / (uint64_t)rate, next = start;
    uint64_t end = start + (uint64_t)seconds * 1000000000ull;
    while (now_ns() < end) {
        uint64_t now = now_ns();
        if (now >= next) {
            pub_t *p = NULL;
            for (int i = 0; i != PUBLISHERS && p == NULL; ++i)
                p = pubs[i].busy ? NULL : &pubs[i];
            if (p != NULL)
                publish(p, (int)(fig->published++ % (uint64_t)nusers), 1);
            else
                ++fig->late;
            next += interval;
        }
        now = now_ns();
        poll_ns(next > now ? next - now : 0);
    }
    for (uint64_t drain_end = now_ns() + 2000000000ull; now_ns() < drain_end;)
        poll_once(10); /* the last frames */
    sampling = false;
    fig->paced_frames = frames;
    qsort(samples, nsamples, sizeof(*samples), cmp_u32);
}

/* Every publisher busy all the time, 10 events per request, for `seconds`. */
static void flat_phase(int seconds, figures_t *fig)
{
    frames = 0;
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000ull;
    while (now_ns() < end) {
        for (int i = 0; i != PUBLISHERS; ++i)
            if (!pubs[i].busy) {
                publish(&pubs[i], (int)(fig->flat_published / 10 % (uint64_t)nusers), 10);
                fig->flat_published += 10;
            }
        poll_once(1);
    }
    fig->flat_s = (double)(now_ns() - start) / 1e9;
    fig->flat_frames = frames;
    for (uint64_t drain_end = now_ns() + 3000000000ull; now_ns() < drain_end;)
        poll_once(10);
}

static void print_figures(const figures_t *f, int rate, int seconds)
{
    int per_user = nsockets / nusers;
    printf("ws_bench %d %d %d %d  (sockets users rate seconds; intentd %s, 2 workers)\n", nsockets,
           nusers, rate, seconds, INTENTD_BIN);
    printf("sockets opened:            %d in %.2f s\n", nsockets, f->open_s);
    printf("server RSS:                %ld kB idle, %ld kB with sockets, %ld kB after load\n",
           f->rss0_kb, f->rss1_kb, f->rss2_kb);
    printf("memory per socket:         %.0f bytes\n",
           (double)(f->rss1_kb - f->rss0_kb) * 1024.0 / (double)nsockets);
    printf("paced: %d events/s x %d sockets each: %llu frames received of %llu expected "
           "(%llu publishes skipped: publishers busy)\n",
           rate, per_user, (unsigned long long)f->paced_frames,
           (unsigned long long)(f->published * (uint64_t)per_user), (unsigned long long)f->late);
    if (nsamples > 0)
        printf("event-to-socket latency:   p50 %u us, p99 %u us, max %u us (%zu samples)\n",
               samples[nsamples / 2], samples[nsamples * 99 / 100], samples[nsamples - 1],
               nsamples);
    printf("flat out: %.0f events/s published, %.0f frames/s delivered\n",
           (double)f->flat_published / f->flat_s, (double)f->flat_frames / f->flat_s);
}

int main(int argc, char **argv)
{
    nsockets = argc > 1 ? atoi(argv[1]) : 10000;
    nusers = argc > 2 ? atoi(argv[2]) : 1000;
    int rate = argc > 3 ? atoi(argv[3]) : 1000, seconds = argc > 4 ? atoi(argv[4]) : 5;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* the server, forked below, inherits it too */
    setrlimit(RLIMIT_NOFILE, &rl);
    if (nsockets < 1 || nusers < 1 || rate < 1 || seconds < 1 ||
        (rlim_t)nsockets + 64 > rl.rlim_cur) {
        fprintf(stderr, "usage: ws_bench [SOCKETS [USERS [RATE [SECONDS]]]] (RLIMIT_NOFILE %llu)\n",
                (unsigned long long)rl.rlim_cur);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    port = free_port();
    pid_t server = start_server(INTENTD_BIN);
    ep = epoll_create1(0);
    make_tokens();
    samples = malloc(MAX_SAMPLES * sizeof(*samples));
    figures_t fig = {0};
    usleep(200000);
    fig.rss0_kb = server_rss_kb(server);
    uint64_t t0 = now_ns();
    open_sockets();
    fig.open_s = (double)(now_ns() - t0) / 1e9;
    usleep(200000);
    fig.rss1_kb = server_rss_kb(server);
    for (int i = 0; i != PUBLISHERS; ++i) {
        pubs[i].fd = dial();
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = (uint64_t)(nsockets + i)};
        epoll_ctl(ep, EPOLL_CTL_ADD, pubs[i].fd, &ev);
    }
    usleep(100000);
    paced_phase(rate, seconds, &fig);
    flat_phase(seconds, &fig);
    fig.rss2_kb = server_rss_kb(server);
    stop_server();
    print_figures(&fig, rate, seconds);
    return 0;
}
