/*
 * I/O on behalf of actors, through the home worker's io_uring.
 *
 * An actor asks for an operation (poll a foreign fd such as libpq's or hiredis's, read, write,
 * accept, connect, a timeout) and gets its completion later as an RT_MSG_IO message carrying
 * rt_io_result_t. Buffers and socket addresses passed in must stay valid until then (keep them
 * in the actor's state). Operations are queued and submitted in one io_uring_enter per loop
 * turn, which is where the ring saves system calls. Only from the actor's own behaviour.
 */
#ifndef RUNTIME_IO_H
#define RUNTIME_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "runtime/actor.h"

/** Payload of RT_MSG_IO. */
typedef struct st_rt_io_result_t {
    int32_t res;    /* as io_uring reports it: >= 0 result, or -errno */
    uint32_t flags; /* CQE flags */
    uint64_t tag;   /* what the actor passed in */
    uint64_t op_id; /* what the submit call returned */
} rt_io_result_t;

/** Operation id, for rt_io_cancel; 0 means the operation could not be queued (ring full and
 * the in-flight bound reached) and no completion will come. */
typedef uint64_t rt_io_op_t;

/** One-shot readiness poll (POLLIN / POLLOUT ...); res is the ready mask. */
rt_io_op_t rt_io_poll(rt_actor_t *self, int fd, unsigned poll_mask, uint64_t tag);
/** read(2) into `buf`; res is the byte count. */
rt_io_op_t rt_io_read(rt_actor_t *self, int fd, void *buf, unsigned len, uint64_t tag);
/** write(2) from `buf`. */
rt_io_op_t rt_io_write(rt_actor_t *self, int fd, const void *buf, unsigned len, uint64_t tag);
/** accept4(2) with SOCK_NONBLOCK|SOCK_CLOEXEC; res is the new fd. */
rt_io_op_t rt_io_accept(rt_actor_t *self, int fd, uint64_t tag);
/** connect(2); `addr` must stay valid until the completion. */
rt_io_op_t rt_io_connect(rt_actor_t *self, int fd, const struct sockaddr *addr, socklen_t len,
                         uint64_t tag);
/** Completes with -ETIME after `timeout_ms`. */
rt_io_op_t rt_io_timeout(rt_actor_t *self, uint64_t timeout_ms, uint64_t tag);
/** Asks the kernel to cancel `op`; its completion still arrives (usually with -ECANCELED). */
bool rt_io_cancel(rt_actor_t *self, rt_io_op_t op);

#endif
