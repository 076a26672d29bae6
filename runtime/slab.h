/*
 * Per-worker slab allocator for actors and messages.
 *
 * Each worker owns one rt_slab_t and is the only thread that allocates from it. Objects are
 * carved from 64 KiB chunks into size classes and recycled through a free list, so the hot
 * path (alloc, free on the owning worker) is a pointer pop/push with no locks and no malloc
 * header. An object freed by another worker is handed back through a wait-free MPSC queue per
 * class and reclaimed by the owner when its local list runs dry (the "remote free" scheme of
 * mimalloc and snmalloc). Callers pass the size back on free (sized free): actors and
 * messages already record it, which saves a header per object.
 */
#ifndef RUNTIME_SLAB_H
#define RUNTIME_SLAB_H

#include <stddef.h>
#include <stdint.h>
#include "runtime/mpsc.h"

/** Largest object the slab serves; larger ones go to malloc. */
#define RT_SLAB_MAX_OBJECT 4096
#define RT_SLAB_NUM_CLASSES 24

typedef struct st_rt_slab_class_t {
    void *free_list;        /* local, owner only */
    rt_mpsc_t remote_frees; /* objects freed by other threads */
    uint32_t object_size;
    uint32_t objects_in_use; /* owner's view; remote frees are counted when reclaimed */
} rt_slab_class_t;

typedef struct st_rt_slab_t {
    rt_slab_class_t classes[RT_SLAB_NUM_CLASSES];
    void *chunks; /* singly linked list of chunks, for release at exit */
    char *carve_pos, *carve_end;
    size_t bytes_reserved; /* sum of chunk sizes: what the slab took from the system */
} rt_slab_t;

/** Prepares an empty slab. */
void rt_slab_init(rt_slab_t *slab);
/** Returns every chunk to the system. All objects must be dead. */
void rt_slab_dispose(rt_slab_t *slab);
/** Size class index for `size` bytes, or -1 when the object is larger than RT_SLAB_MAX_OBJECT. */
int rt_slab_class_of(size_t size);
/** Allocates `size` bytes (<= RT_SLAB_MAX_OBJECT) on the owning thread. Never returns NULL. */
void *rt_slab_alloc(rt_slab_t *slab, size_t size);
/** Frees on the owning thread. O(1). */
void rt_slab_free_local(rt_slab_t *slab, void *p, size_t size);
/** Frees from any other thread: queued to the owner, wait-free. */
void rt_slab_free_remote(rt_slab_t *slab, void *p, size_t size);

#endif
