/*
 * mr_alloc's out-of-memory policy reaches jansson: after
 * mr_alloc_use_for_jansson(), jansson's allocations go through mr_malloc (a
 * counting allocator underneath sees them), and one that fails aborts instead
 * of handing NULL back to the caller. Without the call jansson bypasses
 * mr_malloc: the counter sees nothing.
 */
#include "test_suites.h"
#include "mr_alloc.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>

static size_t counted;

static void *counting_malloc(size_t n)
{
    counted++;
    return malloc(n);
}

static void *failing_malloc(size_t n)
{
    return NULL;
}

/* Some JSON work: an object with a string member, encoded and parsed back. */
static void json_work(void)
{
    json_t *o = json_object();
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_object_set_new(o, "key", json_string("value")), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    json_t *back = json_loads(s, 0, NULL);
    ck_assert(json_equal(o, back));
    free(s);
    json_decref(back);
    json_decref(o);
}

/* Check runs each test in its own process, so what one installs the next does not see. */
START_TEST(jansson_allocates_through_mr_malloc)
{
    mr_alloc_set_malloc(counting_malloc);
    mr_alloc_use_for_jansson();
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    ck_assert(m == mr_malloc);
    ck_assert(f == free);
    json_work();
    ck_assert_uint_ge(counted, 5);
}
END_TEST

START_TEST(jansson_without_the_call_bypasses_mr_malloc)
{
    mr_alloc_set_malloc(counting_malloc);
    json_work();
    ck_assert_uint_eq(counted, 0);
}
END_TEST

/* Raises SIGABRT (mr_malloc's policy): passes only if it does. */
START_TEST(jansson_out_of_memory_aborts)
{
    mr_alloc_use_for_jansson();
    mr_alloc_set_malloc(failing_malloc);
    json_t *s = json_string("value");
    /* Unreachable with the policy in place; without it jansson returns NULL. */
    ck_abort_msg("jansson returned %p instead of aborting", (void *)s);
}
END_TEST

Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("jansson");
    tcase_add_test(tc, jansson_allocates_through_mr_malloc);
    tcase_add_test(tc, jansson_without_the_call_bypasses_mr_malloc);
    tcase_add_test_raise_signal(tc, jansson_out_of_memory_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}
