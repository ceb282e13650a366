/*
 * Unit tests of the control plane modules that need no servers: stream
 * naming, configuration parsing and errors, history request parsing (and,
 * in suites of their own, envelopes and presence input).
 */
#include "ctl_suites.h"
#include "ctl_config.h"
#include "ctl_history.h"
#include "mr_stream.h"
#include "mr_test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_stream_name)
{
    char out[MR_STREAM_NAME_MAX];
    mr_stream_name("eu-west", out, sizeof out);
    ck_assert_str_eq(out, "MERIDIAN_EU_WEST");
    mr_stream_name("ap-south-1", out, sizeof out);
    ck_assert_str_eq(out, "MERIDIAN_AP_SOUTH_1");
    mr_stream_name("us", out, sizeof out);
    ck_assert_str_eq(out, "MERIDIAN_US");
    char small[12];
    mr_stream_name("eu-west", small, sizeof small);
    ck_assert_str_eq(small, "MERIDIAN_EU"); /* truncated, still terminated */
    mr_stream_subjects("eu-west", out, sizeof out);
    ck_assert_str_eq(out, "meridian.msg.eu-west.>");
}
END_TEST

static char *write_tmp(const char *text)
{
    char *dir = mr_test_tmpdir("ctlcfg");
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/c.json", dir);
    free(dir);
    ck_assert(mr_test_write_file(path, text) == 0);
    return path;
}

/* Load + finish; returns 0 or -1 with the error in err. */
static int load(const char *text, ctl_config *c, char *err, size_t n)
{
    char *path = write_tmp(text);
    ctl_config_init(c);
    int rc = ctl_config_load(c, path, err, n);
    if (rc == 0)
        rc = ctl_config_finish(c, err, n);
    free(path);
    return rc;
}

START_TEST(test_config_full)
{
    ctl_config c;
    char err[640];
    int rc = load("{\"region\":\"eu-west\",\"regions\":[\"eu-west\",\"us-east\"],"
                  "\"nats\":\"nats://127.0.0.1:1,nats://127.0.0.1:2\",\"postgres\":\"host=a,b\","
                  "\"api_keys\":[\"0123456789abcdef\"],\"batch\":{\"max_messages\":500,"
                  "\"max_wait_ms\":5},\"stream\":{\"max_age_s\":60,\"placement\":\"eu-west\"},"
                  "\"retention_days\":7,\"partition_interval\":\"hour\"}",
                  &c, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(c.nregions, 2);
    ck_assert_int_eq(c.nats.n_urls, 2);
    ck_assert_int_eq(c.batch_max_messages, 500);
    ck_assert_int_eq(c.stream.max_age_s, 60);
    ck_assert_str_eq(c.stream.placement, "eu-west");
    ck_assert_str_eq(ctl_config_interval_sql(&c), "1 hour");
    ctl_config_free(&c);
}
END_TEST

START_TEST(test_config_errors)
{
    struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"]}", "region"},
        {"{\"region\":\"EU\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"]}", "region"},
        {"{\"region\":\"eu\",\"api_keys\":[\"0123456789abcdef\"]}", "postgres"},
        {"{\"region\":\"eu\",\"postgres\":\"x\"}", "api_keys"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"short\"]}", "api_keys[0]"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],\"batch\":"
         "{\"max_messages\":0}}",
         "batch.max_messages"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],\"bogus\":1}",
         "bogus"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],"
         "\"partition_interval\":\"month\"}",
         "partition_interval"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],"
         "\"regions\":[\"eu\",\"eu\"]}",
         "twice"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],"
         "\"tls\":{\"cert\":\"a\"}}",
         "tls"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys\":[\"0123456789abcdef\"],"
         "\"http_listen\":\"nope\"}",
         "http_listen"},
        {"{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys_file\":\"/nonexistent/keys\"}",
         "api_keys_file"},
        {"{\"region\":", "c.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ctl_config c;
        char err[640] = "";
        ck_assert_msg(load(cases[i].text, &c, err, sizeof err) != 0, "accepted: %s", cases[i].text);
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "error \"%s\" lacks \"%s\"", err,
                      cases[i].needle);
        ctl_config_free(&c);
    }
}
END_TEST

START_TEST(test_keys_file)
{
    char *keys = write_tmp("# backends\n\n  key-one-0123456789  \nkey-two-0123456789\n");
    char text[1024];
    snprintf(text, sizeof text, "{\"region\":\"eu\",\"postgres\":\"x\",\"api_keys_file\":\"%s\"}",
             keys);
    ctl_config c;
    char err[640];
    ck_assert_msg(load(text, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.napi_keys, 2);
    ck_assert_str_eq(c.api_keys[0], "key-one-0123456789");
    ctl_config_free(&c);
    free(keys);
}
END_TEST

START_TEST(test_history_request_parse)
{
    ctl_history_query q;
    char err[160];
    ck_assert_int_eq(ctl_history_parse_request("", 0, &q, err, sizeof err), 0);
    ck_assert_int_eq(q.limit, 100);
    ck_assert_int_eq(q.after, 0);
    const char *ok = "{\"after\":42,\"limit\":1000,\"before\":50}";
    ck_assert_int_eq(ctl_history_parse_request(ok, strlen(ok), &q, err, sizeof err), 0);
    ck_assert_int_eq(q.after, 42);
    ck_assert_int_eq(q.before, 50);
    ck_assert_int_eq(q.limit, 1000);
    const char *bad[] = {"{\"limit\":0}",
                         "{\"limit\":1001}",
                         "{\"after\":-1}",
                         "{\"before\":0}",
                         "{\"after\":true}",
                         "{\"x\":1}",
                         "[]",
                         "{",
                         "\"s\"",
                         "{\"after\":1e2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(ctl_history_parse_request(bad[i], strlen(bad[i]), &q, err, sizeof err) != 0,
                      "accepted %s", bad[i]);
    mr_buf b = MR_BUF_INIT;
    ctl_history_error_json(&b, "bad_request", "quote \" here");
    ck_assert_str_eq(b.data,
                     "{\"error\":{\"code\":\"bad_request\",\"message\":\"quote \\\" here\"}}");
    mr_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_unit");
    TCase *tc = tcase_create("unit");
    tcase_add_test(tc, test_stream_name);
    tcase_add_test(tc, test_config_full);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_keys_file);
    tcase_add_test(tc, test_history_request_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_add_suite(sr, envelope_suite());
    srunner_add_suite(sr, presence_parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
