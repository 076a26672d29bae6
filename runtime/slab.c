#include "runtime/slab.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/log.h"

#define CHUNK_BYTES (64 * 1024)

static const uint32_t class_sizes[RT_SLAB_NUM_CLASSES] = {
    16,  32,  48,  64,  80,  96,  112, 128,  144,  160,  176,  192,
    208, 224, 240, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
};

void rt_slab_init(rt_slab_t *slab)
{
    memset(slab, 0, sizeof(*slab));
    for (int i = 0; i != RT_SLAB_NUM_CLASSES; ++i) {
        slab->classes[i].object_size = class_sizes[i];
        rt_mpsc_init(&slab->classes[i].remote_frees);
    }
}

void rt_slab_dispose(rt_slab_t *slab)
{
    void *chunk = slab->chunks;
    while (chunk != NULL) {
        void *next = *(void **)chunk;
        free(chunk);
        chunk = next;
    }
    slab->chunks = NULL;
    slab->carve_pos = slab->carve_end = NULL;
}

int rt_slab_class_of(size_t size)
{
    if (size <= 256)
        return size == 0 ? 0 : (int)((size + 15) / 16) - 1;
    for (int i = 16; i != RT_SLAB_NUM_CLASSES; ++i)
        if (size <= class_sizes[i])
            return i;
    return -1;
}

/* Takes a fresh chunk from the system. The first cache line holds the chunk list link, so
 * objects start 64-byte aligned. */
static void refill_carve(rt_slab_t *slab)
{
    char *chunk = aligned_alloc(64, CHUNK_BYTES);
    if (chunk == NULL)
        rt_log_fatal("slab", "out of memory allocating a %d byte chunk", CHUNK_BYTES);
    *(void **)chunk = slab->chunks;
    slab->chunks = chunk;
    slab->carve_pos = chunk + 64;
    slab->carve_end = chunk + CHUNK_BYTES;
    slab->bytes_reserved += CHUNK_BYTES;
}

/* Moves everything other threads freed into the local list. O(number reclaimed). */
static void reclaim_remote(rt_slab_class_t *cls)
{
    rt_mpsc_node_t *node;
    while ((node = rt_mpsc_pop(&cls->remote_frees)) != NULL) {
        *(void **)node = cls->free_list;
        cls->free_list = node;
        --cls->objects_in_use;
    }
}

void *rt_slab_alloc(rt_slab_t *slab, size_t size)
{
    int idx = rt_slab_class_of(size);
    assert(idx >= 0);
    rt_slab_class_t *cls = &slab->classes[idx];
    if (cls->free_list == NULL)
        reclaim_remote(cls);
    void *p = cls->free_list;
    if (p != NULL) {
        cls->free_list = *(void **)p;
    } else {
        if ((size_t)(slab->carve_end - slab->carve_pos) < cls->object_size)
            refill_carve(slab); /* the tail of the old chunk is left unused: < 4 KiB */
        p = slab->carve_pos;
        slab->carve_pos += cls->object_size;
    }
    ++cls->objects_in_use;
    return p;
}

void rt_slab_free_local(rt_slab_t *slab, void *p, size_t size)
{
    int idx = rt_slab_class_of(size);
    assert(idx >= 0 && p != NULL);
    rt_slab_class_t *cls = &slab->classes[idx];
    *(void **)p = cls->free_list;
    cls->free_list = p;
    --cls->objects_in_use;
}

void rt_slab_free_remote(rt_slab_t *slab, void *p, size_t size)
{
    int idx = rt_slab_class_of(size);
    assert(idx >= 0 && p != NULL);
    rt_mpsc_push(&slab->classes[idx].remote_frees, (rt_mpsc_node_t *)p);
}
