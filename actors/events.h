/*
 * The users' live event stream: what the engine and the API announce, and what the WebSocket
 * sessions (actors/session.c) deliver.
 *
 * An event is {"type","at","data"} for one user (shared/api.md, "Live updates"). It reaches every
 * open socket of that user in every intentd process sharing the Redis: the producing process
 * delivers it to its own sessions directly and publishes it once on Redis; the other processes
 * deliver what they receive from Redis, and each process ignores its own publications, so each
 * socket gets it once. Without Redis, delivery stays in the process.
 *
 * Events of one intent are published from the actor that owns that intent's state, so they keep
 * their order per intent.
 */
#ifndef ACTORS_EVENTS_H
#define ACTORS_EVENTS_H

#include <jansson.h>
#include <stdint.h>

typedef struct st_events_t events_t;

/**
 * Publishes an event of `type` (intent.created, intent.updated, intent.delayed,
 * execution.signed, execution.broadcast, execution.confirmed, execution.failed,
 * notification.created) for the user `user_id` (a UUID), with `data` the intent, execution or
 * notification object; steals the reference to `data`. `at_ms` is the event's time (unix ms; 0:
 * now). Callable from any worker thread; never blocks. `events` may be NULL (the event is
 * dropped), so that components run without live updates in tests.
 */
void events_publish(events_t *events, const char *user_id, const char *type, json_t *data,
                    int64_t at_ms);

#endif
