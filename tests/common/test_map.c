/* Hash map: put, replace, delete and iterate across growth, and delete while iterating. */
#include "test_suites.h"
#include "mr_map.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

START_TEST(basic)
{
    mr_map m;
    mr_map_init(&m);
    char k[32];
    for (intptr_t i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key%ld", (long)i);
        ck_assert_ptr_null(mr_map_put(&m, k, strlen(k), (void *)(i + 1)));
    }
    ck_assert_int_eq(m.count, 1000);
    snprintf(k, sizeof k, "key%d", 500);
    ck_assert_ptr_eq(mr_map_get(&m, k, strlen(k)), (void *)501);
    ck_assert_ptr_eq(mr_map_put(&m, k, strlen(k), (void *)7), (void *)501);
    ck_assert_ptr_eq(mr_map_del(&m, k, strlen(k)), (void *)7);
    ck_assert_ptr_null(mr_map_get(&m, k, strlen(k)));
    size_t b, n = 0;
    for (mr_map_entry *e = mr_map_first(&m, &b); e; e = mr_map_next(&m, &b, e))
        n++;
    ck_assert_int_eq(n, 999);
    mr_map_free(&m, NULL);
}
END_TEST

/*
 * The promise in mr_map.h that relay_resume_expire relies on: with the next
 * entry taken first, deleting the current one leaves the walk intact.
 */
START_TEST(delete_while_iterating)
{
    mr_map m;
    mr_map_init(&m);
    enum { N = 1000 };
    static int visited[N];
    char k[32];
    for (intptr_t i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%ld", (long)i);
        mr_map_put(&m, k, strlen(k), (void *)i);
    }
    /* Delete every entry whose value is odd. */
    size_t b;
    mr_map_entry *e = mr_map_first(&m, &b);
    while (e) {
        mr_map_entry *next = mr_map_next(&m, &b, e);
        intptr_t v = (intptr_t)e->value;
        visited[v]++;
        if (v % 2)
            ck_assert_ptr_eq(mr_map_del(&m, e->key, e->klen), (void *)v);
        e = next;
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(visited[i] == 1, "entry %d visited %d times", i, visited[i]);
    ck_assert_uint_eq(m.count, N / 2);
    /* The survivors are all there, once each; then delete every one of them while walking. */
    size_t n = 0;
    e = mr_map_first(&m, &b);
    while (e) {
        mr_map_entry *next = mr_map_next(&m, &b, e);
        ck_assert_int_eq((intptr_t)e->value % 2, 0);
        mr_map_del(&m, e->key, e->klen);
        n++;
        e = next;
    }
    ck_assert_uint_eq(n, N / 2);
    ck_assert_uint_eq(m.count, 0);
    ck_assert_ptr_null(mr_map_first(&m, &b));
    mr_map_free(&m, NULL);
}
END_TEST

Suite *map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, basic);
    tcase_add_test(tc, delete_while_iterating);
    suite_add_tcase(s, tc);
    return s;
}
