/* The slab allocator: size classes, reuse, and frees from other threads coming back. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include "runtime/slab.h"

Test(slab, size_classes_cover_every_size)
{
    for (size_t size = 1; size <= RT_SLAB_MAX_OBJECT; ++size) {
        int c = rt_slab_class_of(size);
        cr_assert_geq(c, 0, "size %zu has no class", size);
    }
    cr_assert_eq(rt_slab_class_of(RT_SLAB_MAX_OBJECT + 1), -1);
    cr_assert_eq(rt_slab_class_of(64), rt_slab_class_of(49));
}

Test(slab, freed_objects_are_reused_and_distinct_while_live)
{
    static rt_slab_t slab;
    rt_slab_init(&slab);
    void *ptrs[1000];
    for (int i = 0; i != 1000; ++i) {
        ptrs[i] = rt_slab_alloc(&slab, 100);
        memset(ptrs[i], i & 0xff, 100); /* ASan would flag an overlap or overflow */
    }
    for (int i = 0; i != 1000; ++i)
        for (int j = 0; j != 100; ++j)
            cr_assert_eq(((unsigned char *)ptrs[i])[j], i & 0xff);
    size_t reserved = slab.bytes_reserved;
    for (int i = 0; i != 1000; ++i)
        rt_slab_free_local(&slab, ptrs[i], 100);
    for (int i = 0; i != 1000; ++i)
        ptrs[i] = rt_slab_alloc(&slab, 100);
    cr_assert_eq(slab.bytes_reserved, reserved, "freed objects were not reused");
    rt_slab_dispose(&slab);
}

static rt_slab_t shared_slab;
static void *remote_ptrs[10000];

static void *free_from_other_thread(void *arg)
{
    for (int i = 0; i != 10000; ++i)
        rt_slab_free_remote(&shared_slab, remote_ptrs[i], 64);
    return NULL;
}

Test(slab, remote_frees_are_reclaimed_by_the_owner)
{
    rt_slab_init(&shared_slab);
    for (int i = 0; i != 10000; ++i)
        remote_ptrs[i] = rt_slab_alloc(&shared_slab, 64);
    size_t reserved = shared_slab.bytes_reserved;
    pthread_t t;
    pthread_create(&t, NULL, free_from_other_thread, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i != 9999; ++i) /* the queue may keep its last node until the next push */
        rt_slab_alloc(&shared_slab, 64);
    cr_assert_eq(shared_slab.bytes_reserved, reserved, "remote frees were not reclaimed");
    rt_slab_dispose(&shared_slab);
}
