/* Token bucket: burst, refill, and no refill beyond the burst. */
#include "test_suites.h"
#include "mr_ratelimit.h"

#include <check.h>

START_TEST(burst_then_refill)
{
    mr_ratelimit rl;
    mr_ratelimit_init(&rl, 10, 5, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(mr_ratelimit_take(&rl, 0));
    ck_assert(!mr_ratelimit_take(&rl, 0));
    ck_assert(!mr_ratelimit_take(&rl, 50000)); /* half a token after 50 ms */
    ck_assert(mr_ratelimit_take(&rl, 100000)); /* one token after 100 ms */
    ck_assert(!mr_ratelimit_take(&rl, 100000));
}
END_TEST

START_TEST(capped_at_burst)
{
    mr_ratelimit rl;
    mr_ratelimit_init(&rl, 1000, 3, 0);
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += mr_ratelimit_take(&rl, 60 * 1000000LL);
    ck_assert_int_eq(ok, 3);
}
END_TEST

START_TEST(clock_going_backwards)
{
    mr_ratelimit rl;
    mr_ratelimit_init(&rl, 1, 1, 1000000);
    ck_assert(mr_ratelimit_take(&rl, 1000000));
    ck_assert(!mr_ratelimit_take(&rl, 0));
    ck_assert(mr_ratelimit_take(&rl, 2000000));
}
END_TEST

Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("bucket");
    tcase_add_test(tc, burst_then_refill);
    tcase_add_test(tc, capped_at_burst);
    tcase_add_test(tc, clock_going_backwards);
    suite_add_tcase(s, tc);
    return s;
}
