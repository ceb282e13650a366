/* mr_metrics: what every daemon's /metrics ends with (build info, process metrics). */
#include "test_suites.h"
#include "mr_buf.h"
#include "mr_metrics.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double value_of(const char *text, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = strstr(text, needle);
    ck_assert_msg(p != NULL, "%s missing from:\n%s", name, text);
    return strtod(p + strlen(needle), NULL);
}

START_TEST(test_build_info_and_process)
{
    mr_buf b = MR_BUF_INIT;
    mr_metrics_render(&b);
    mr_buf_putc(&b, '\0');
    const char *t = b.data;
    char want[160];
    snprintf(want, sizeof want, "\nmeridian_build_info{version=\"%s\",commit=\"%s\"} 1\n",
             MERIDIAN_VERSION, mr_build_commit());
    ck_assert_msg(strstr(t, want) != NULL, "no %s in\n%s", want, t);
    ck_assert(strstr(t, "# TYPE process_cpu_seconds_total counter\n") != NULL);
    /* Real values, not placeholders. */
    ck_assert(value_of(t, "process_resident_memory_bytes") > 100000);
    ck_assert(value_of(t, "process_virtual_memory_bytes") >=
              value_of(t, "process_resident_memory_bytes"));
    ck_assert(value_of(t, "process_open_fds") >= 3);
    ck_assert(value_of(t, "process_max_fds") >= value_of(t, "process_open_fds"));
    double start = value_of(t, "process_start_time_seconds");
    double now = (double)time(NULL);
    ck_assert_msg(start > now - 600 && start <= now + 1, "start %f now %f", start, now);
    ck_assert(value_of(t, "process_cpu_seconds_total") >= 0);
    const char *c = mr_build_commit();
    ck_assert(strcmp(c, "unknown") == 0 || strspn(c, "0123456789abcdef") == strlen(c));
    mr_buf_free(&b);
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_build_info_and_process);
    suite_add_tcase(s, tc);
    return s;
}
