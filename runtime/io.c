#include "runtime/io.h"
#include <assert.h>
#include <string.h>
#include "runtime/worker.h"

/* One in-flight operation. Lives in the worker's slab; its address is the CQE's user_data. */
typedef struct st_io_op_t {
    rt_actor_t *actor; /* holds a reference until the completion is delivered */
    uint64_t tag;
    struct __kernel_timespec timeout; /* IORING_OP_TIMEOUT reads it at submit time and after */
} io_op_t;

/* Gets an SQE, flushing the queue to the kernel once if it is full. NULL means the ring is
 * saturated (the completion queue cannot take more): the caller is refused, not queued. */
static struct io_uring_sqe *get_sqe(rt_worker_t *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (sqe == NULL) {
        int ret = io_uring_submit(&w->ring);
        if (ret > 0)
            atomic_fetch_add_explicit(&w->metrics.ring_submissions, (uint64_t)ret,
                                      memory_order_relaxed);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

/* Prepares the bookkeeping for one operation; returns its SQE with user_data set, or NULL. */
static struct io_uring_sqe *begin_op(rt_actor_t *self, uint64_t tag, io_op_t **op_out)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->id == self->home);
    /* bound: never more operations in flight than the completion queue holds, so no CQE is
     * ever dropped on overflow */
    if (w->io_in_flight >= (uint64_t)w->ring.cq.ring_entries)
        return NULL;
    struct io_uring_sqe *sqe = get_sqe(w);
    if (sqe == NULL)
        return NULL;
    io_op_t *op = rt_slab_alloc(&w->slab, sizeof(*op));
    memset(op, 0, sizeof(*op));
    rt_actor_retain(self);
    op->actor = self;
    op->tag = tag;
    ++w->io_in_flight;
    *op_out = op;
    return sqe;
}

static rt_io_op_t finish_op(struct io_uring_sqe *sqe, io_op_t *op)
{
    io_uring_sqe_set_data(sqe, op);
    return (rt_io_op_t)(uintptr_t)op;
}

rt_io_op_t rt_io_poll(rt_actor_t *self, int fd, unsigned poll_mask, uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    io_uring_prep_poll_add(sqe, fd, poll_mask);
    return finish_op(sqe, op);
}

rt_io_op_t rt_io_read(rt_actor_t *self, int fd, void *buf, unsigned len, uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    io_uring_prep_read(sqe, fd, buf, len, (uint64_t)-1); /* -1: current file position */
    return finish_op(sqe, op);
}

rt_io_op_t rt_io_write(rt_actor_t *self, int fd, const void *buf, unsigned len, uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    io_uring_prep_write(sqe, fd, buf, len, (uint64_t)-1);
    return finish_op(sqe, op);
}

rt_io_op_t rt_io_accept(rt_actor_t *self, int fd, uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return finish_op(sqe, op);
}

rt_io_op_t rt_io_connect(rt_actor_t *self, int fd, const struct sockaddr *addr, socklen_t len,
                         uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    io_uring_prep_connect(sqe, fd, addr, len);
    return finish_op(sqe, op);
}

rt_io_op_t rt_io_timeout(rt_actor_t *self, uint64_t timeout_ms, uint64_t tag)
{
    io_op_t *op;
    struct io_uring_sqe *sqe = begin_op(self, tag, &op);
    if (sqe == NULL)
        return 0;
    op->timeout.tv_sec = (long long)(timeout_ms / 1000);
    op->timeout.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    io_uring_prep_timeout(sqe, &op->timeout, 0, 0);
    return finish_op(sqe, op);
}

bool rt_io_cancel(rt_actor_t *self, rt_io_op_t op_id)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && w->id == self->home && op_id != 0);
    struct io_uring_sqe *sqe = get_sqe(w);
    if (sqe == NULL)
        return false;
    io_uring_prep_cancel64(sqe, op_id, 0);
    io_uring_sqe_set_data(sqe, NULL); /* the cancel's own completion is not reported */
    return true;
}

/* Turns one CQE into an RT_MSG_IO for the actor that asked. Called by the worker loop. */
void rt__io_complete(rt_worker_t *w, struct io_uring_cqe *cqe)
{
    io_op_t *op = io_uring_cqe_get_data(cqe);
    if (op == NULL)
        return; /* a cancel request's own completion */
    rt_msg_t *msg = rt_msg_new(RT_MSG_IO, sizeof(rt_io_result_t));
    rt_io_result_t *result = rt_msg_payload(msg);
    result->res = cqe->res;
    result->flags = cqe->flags;
    result->tag = op->tag;
    result->op_id = (uint64_t)(uintptr_t)op;
    rt_actor_t *actor = op->actor;
    rt_slab_free_local(&w->slab, op, sizeof(*op));
    assert(w->io_in_flight > 0);
    --w->io_in_flight;
    rt_actor_send(actor, msg);
    rt_actor_release(actor);
}
