/* Hash map: put, replace, delete and iterate across growth. */
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

Suite *map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, basic);
    suite_add_tcase(s, tc);
    return s;
}
