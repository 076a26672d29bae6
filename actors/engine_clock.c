/* See engine_clock.h. */
#include "actors/engine_clock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"

static atomic_bool test_mode;
static _Atomic int64_t offset_ms;
static engine_clock_listener_fn listener;
static void *listener_ctx;

void engine_clock_set_test_mode(bool enabled)
{
    atomic_store(&test_mode, enabled);
}

bool engine_clock_test_mode(void)
{
    return atomic_load(&test_mode);
}

void engine_clock_set_listener(engine_clock_listener_fn fn, void *ctx)
{
    listener_ctx = ctx;
    listener = fn;
}

int64_t engine_clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
           atomic_load_explicit(&offset_ms, memory_order_relaxed);
}

int64_t engine_clock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 +
           atomic_load_explicit(&offset_ms, memory_order_relaxed) * 1000;
}

int64_t engine_clock_now_s(void)
{
    int64_t ms = engine_clock_now_ms();
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int64_t engine_clock_offset_ms(void)
{
    return atomic_load(&offset_ms);
}

bool engine_clock_advance(int64_t seconds)
{
    if (!atomic_load(&test_mode) || seconds < 1 || seconds > ENGINE_CLOCK_MAX_ADVANCE_S)
        return false;
    atomic_fetch_add(&offset_ms, seconds * 1000);
    if (listener != NULL)
        listener(listener_ctx);
    return true;
}

bool engine__clock_set_offset_ms(int64_t ms)
{
    if (!atomic_load(&test_mode) || ms <= -INT64_C(86400000) || ms >= INT64_C(86400000))
        return false;
    atomic_store(&offset_ms, ms);
    if (listener != NULL)
        listener(listener_ctx);
    return true;
}

/* Only the machine itself may move the clock: the endpoint exists only in the test mode, and
 * even then a remote peer must not learn that it does. */
static bool peer_is_loopback(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len != 0 && ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (len != 0 && ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
    return false;
}

static const net_json_field_t clock_fields[] = {
    {"advanceSeconds", NET_JSON_INTEGER, NET_JSON_REQUIRED, 0, 1, ENGINE_CLOCK_MAX_ADVANCE_S},
};

int engine_clock_handle(h2o_req_t *req, void *data)
{
    (void)data;
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len,
                   H2O_STRLIT("/internal/test/clock")) ||
        !atomic_load(&test_mode) || !peer_is_loopback(req))
        return -1;
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (!post && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return net_problem_method_not_allowed(req, NET_HTTP_GET | NET_HTTP_POST);
    if (post) {
        json_t *body = net_json_read(req, clock_fields, 1);
        if (body == NULL)
            return 0; /* answered */
        int64_t seconds = (int64_t)json_integer_value(json_object_get(body, "advanceSeconds"));
        json_decref(body);
        engine_clock_advance(seconds); /* the range was checked by net_json_read */
    }
    return net_json_send(req, 200,
                         json_pack("{sI sI}", "now", (json_int_t)engine_clock_now_s(),
                                   "offsetSeconds", (json_int_t)(engine_clock_offset_ms() / 1000)));
}
