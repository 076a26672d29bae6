/* store/redis against a real Redis (REDIS_URL, started by scripts/test.sh): commands from many
 * actors, pub/sub, an unreachable server, and a restart survived (reconnect, re-subscribe). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/redis.h"

#ifndef REPO_ROOT
#error "REPO_ROOT must name the repository"
#endif

static rt_runtime_t *rt;
static store_redis_t *redis;
static char prefix[32];

static void start(const char *url)
{
    rt_config_t rc = {.workers = 2};
    rt = rt_runtime_create(&rc);
    cr_assert(rt_runtime_start(rt));
    char err[128];
    redis = store_redis_create(rt, url, err, sizeof(err));
    cr_assert_not_null(redis, "%s", err);
    snprintf(prefix, sizeof(prefix), "t%d", (int)getpid());
}

static void stop(void)
{
    store_redis_free(redis);
    usleep(100000);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
}

static const char *redis_url(void)
{
    const char *url = getenv("REDIS_URL");
    cr_assert_not_null(url, "REDIS_URL is not set: run the tests through scripts/test.sh");
    return url;
}

static bool wait_up(int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10, usleep(10000))
        if (store_redis_is_connected(redis))
            return true;
    return false;
}

/* ---- a client that does SET, GET, INCR and checks each answer ---- */

enum { MSG_GO = RT_MSG_USER + 1 };
typedef struct {
    int id, step, rounds;
} client_t;

static _Atomic long ok, wrong, unavailable, finished;

static void command(rt_actor_t *self, uint64_t corr, int argc, const char *const *argv)
{
    size_t lens[8];
    for (int i = 0; i != argc; ++i)
        lens[i] = strlen(argv[i]);
    store_redis_command(redis, self, corr, argc, argv, lens);
}

static void client_step(rt_actor_t *self, client_t *c)
{
    char key[64], value[32], counter[64];
    snprintf(key, sizeof(key), "%s:k%d", prefix, c->id);
    snprintf(value, sizeof(value), "v%d-%d", c->id, c->rounds);
    snprintf(counter, sizeof(counter), "%s:counter", prefix);
    switch (c->step) {
    case 0:
        command(self, 0, 3, (const char *[]){"SET", key, value});
        break;
    case 1:
        command(self, 1, 2, (const char *[]){"GET", key});
        break;
    case 2:
        command(self, 2, 2, (const char *[]){"INCR", counter});
        break;
    }
}

static void client_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    client_t *c = rt_actor_state(self);
    if (msg->type == MSG_GO) {
        client_step(self, c);
        return;
    }
    if (msg->type != STORE_REDIS_MSG_REPLY)
        return;
    store_redis_reply_t *r = rt_msg_payload(msg);
    if (r->status == STORE_REDIS_UNAVAILABLE) {
        atomic_fetch_add(&unavailable, 1);
    } else if (msg->corr == 1) {
        char expected[32];
        snprintf(expected, sizeof(expected), "v%d-%d", c->id, c->rounds);
        bool right = r->status == STORE_REDIS_OK && r->type == STORE_REDIS_STRING &&
                     strcmp(store_redis_text(r, 0), expected) == 0;
        atomic_fetch_add(right ? &ok : &wrong, 1);
    } else {
        atomic_fetch_add(r->status == STORE_REDIS_OK ? &ok : &wrong, 1);
    }
    if (++c->step == 3) {
        c->step = 0;
        if (--c->rounds == 0) {
            atomic_fetch_add(&finished, 1);
            return;
        }
    }
    client_step(self, c);
}

static void run_clients(rt_actor_t **clients, int n, int rounds)
{
    for (int i = 0; i != n; ++i) {
        clients[i] = rt_actor_spawn(rt, i % 2, client_behaviour, sizeof(client_t));
        client_t *c = rt_actor_state(clients[i]);
        c->id = i;
        c->rounds = rounds;
        rt_actor_send(clients[i], rt_msg_new(MSG_GO, 0));
    }
}

static void stop_clients(rt_actor_t **clients, int n)
{
    for (int i = 0; i != n; ++i) {
        rt_actor_send_stop(clients[i]);
        rt_actor_release(clients[i]);
    }
}

static void wait_finished(long n, int timeout_ms)
{
    for (int waited = 0; atomic_load(&finished) < n && waited < timeout_ms; waited += 10)
        usleep(10000);
}

Test(store_redis, commands_from_many_actors_get_their_own_answers, .timeout = 60)
{
    start(redis_url());
    cr_assert(wait_up(5000));
    enum { CLIENTS = 100, ROUNDS = 20 };
    static rt_actor_t *clients[CLIENTS];
    run_clients(clients, CLIENTS, ROUNDS);
    wait_finished(CLIENTS, 30000);
    cr_assert_eq(atomic_load(&finished), CLIENTS);
    cr_assert_eq(atomic_load(&wrong), 0);
    cr_assert_eq(atomic_load(&ok), (long)CLIENTS * ROUNDS * 3);
    stop_clients(clients, CLIENTS);
    stop();
}

Test(store_redis, an_unreachable_server_answers_unavailable_at_once, .timeout = 30)
{
    start("redis://127.0.0.1:1/0");
    enum { CLIENTS = 10 };
    static rt_actor_t *clients[CLIENTS];
    run_clients(clients, CLIENTS, 5);
    wait_finished(CLIENTS, 5000);
    cr_assert_eq(atomic_load(&finished), CLIENTS, "a command hung while Redis was down");
    cr_assert_eq(atomic_load(&unavailable), CLIENTS * 5 * 3);
    stop_clients(clients, CLIENTS);
    stop();
}

Test(store_redis, bad_urls_are_refused)
{
    rt_config_t rc = {.workers = 1};
    rt = rt_runtime_create(&rc);
    cr_assert(rt_runtime_start(rt));
    char err[128];
    cr_assert_null(store_redis_create(rt, "http://x", err, sizeof(err)));
    cr_assert_null(store_redis_create(rt, "redis://host:99999", err, sizeof(err)));
    cr_assert_null(store_redis_create(rt, "redis:///0", err, sizeof(err)));
    cr_assert_not_null(strstr(err, "REDIS_URL"));
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
}

/* ---- pub/sub ---- */

static _Atomic long received;
static char last_message[64];

static void sink_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != STORE_REDIS_MSG_PUBLISHED)
        return;
    store_redis_published_t *p = rt_msg_payload(msg);
    snprintf(last_message, sizeof(last_message), "%s", p->text + p->channel_len + 1);
    atomic_fetch_add(&received, 1);
}

enum { MSG_PUBLISH = RT_MSG_USER + 2 };

static void publisher_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    if (msg->type != MSG_PUBLISH)
        return;
    char channel[64];
    snprintf(channel, sizeof(channel), "%s:events", prefix);
    command(self, 0, 3, (const char *[]){"PUBLISH", channel, (const char *)rt_msg_payload(msg)});
}

/* Publishes until the sink has seen one more message (the subscription is asynchronous). */
static bool publish_until_received(rt_actor_t *publisher, const char *text, int timeout_ms)
{
    long before = atomic_load(&received);
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        rt_msg_t *msg = rt_msg_new(MSG_PUBLISH, strlen(text) + 1);
        memcpy(rt_msg_payload(msg), text, strlen(text) + 1);
        rt_actor_send(publisher, msg);
        usleep(50000);
        if (atomic_load(&received) > before && strcmp(last_message, text) == 0)
            return true;
    }
    return false;
}

static void restart_redis(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/scripts/services.sh restart redis >/dev/null", REPO_ROOT);
    cr_assert_eq(system(cmd), 0, "restarting Redis failed");
}

Test(store_redis, pubsub_delivers_and_survives_a_restart, .timeout = 60)
{
    start(redis_url());
    cr_assert(wait_up(5000));
    rt_actor_t *sink = rt_actor_spawn(rt, 1, sink_behaviour, 0);
    rt_actor_t *publisher = rt_actor_spawn(rt, 0, publisher_behaviour, 0);
    char channel[64];
    snprintf(channel, sizeof(channel), "%s:events", prefix);
    store_redis_subscribe(redis, channel, sink);
    cr_assert(publish_until_received(publisher, "hello", 5000), "no message arrived");

    restart_redis();
    /* commands work again once reconnected, and the subscription was renewed */
    cr_assert(wait_up(15000), "did not reconnect after the restart");
    cr_assert(publish_until_received(publisher, "after-restart", 15000),
              "the subscription was not renewed after the restart");
    atomic_store(&finished, 0);
    atomic_store(&wrong, 0);
    atomic_store(&ok, 0);
    static rt_actor_t *clients[10];
    run_clients(clients, 10, 5);
    wait_finished(10, 10000);
    cr_assert_eq(atomic_load(&ok), 10 * 5 * 3, "commands after the restart: ok %ld",
                 atomic_load(&ok));
    stop_clients(clients, 10);
    rt_actor_send_stop(sink);
    rt_actor_release(sink);
    rt_actor_send_stop(publisher);
    rt_actor_release(publisher);
    stop();
}
