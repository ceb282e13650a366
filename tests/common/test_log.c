/* mr_log: one line per event, text or JSON, credentials masked. */
#include "test_suites.h"
#include "mr_log.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run one mr_log call with stderr captured; returns what it wrote (malloc'd). */
static char *capture(mr_log_format format, const char *msg)
{
    char path[] = "/tmp/mr-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    unsetenv("JOURNAL_STREAM");
    mr_log_init("test", MR_LOG_DEBUG);
    mr_log_set_format(format);
    mr_log_warn("%s", msg);
    mr_log_set_format(MR_LOG_TEXT);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    ck_assert_int_eq(pread(fd, out, (size_t)len, 0), len);
    close(fd);
    return out;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* What libpq says when a server refuses a connection: two lines, a tab, a trailing newline. */
static const char *libpq_error =
    "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\n"
    "\tIs the server running on that host and accepting TCP/IP connections?\n";

START_TEST(test_text_one_line)
{
    char *out = capture(MR_LOG_TEXT, libpq_error);
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_msg(strstr(out,
                         " warn  test: connection to server at \"127.0.0.1\", port 5432 "
                         "failed: Connection refused; Is the server running on that host") != NULL,
                  "%s", out);
    ck_assert(out[strlen(out) - 1] == '\n' && out[strlen(out) - 2] == '?');
    free(out);
}
END_TEST

START_TEST(test_json_one_object)
{
    char *out = capture(MR_LOG_JSON, "ERROR:  bad \"quote\" \\ here\nDETAIL:  Key (room)=(x).\n");
    ck_assert_int_eq(count_lines(out), 1);
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    ck_assert_msg(o != NULL, "not JSON: %s (%s)", out, e.text);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "component")), "test");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")),
                     "ERROR:  bad \"quote\" \\ here; DETAIL:  Key (room)=(x).");
    const char *ts = json_string_value(json_object_get(o, "ts"));
    ck_assert_msg(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z', "ts %s", ts);
    ck_assert_int_eq(json_object_size(o), 4);
    json_decref(o);
    free(out);
}
END_TEST

START_TEST(test_json_control_and_utf8)
{
    /* A control character is not a line break: it becomes a space; UTF-8 passes unchanged. */
    char *out = capture(MR_LOG_JSON, "a\x01"
                                     "b caf\xc3\xa9\r\n");
    json_t *o = json_loads(out, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "a b caf\xc3\xa9");
    json_decref(o);
    free(out);
}
END_TEST

START_TEST(test_credentials_masked)
{
    char out[256];
    mr_log_sanitize("connect host=db user=meridian password=hunter2 dbname=m failed", out,
                    sizeof out);
    ck_assert_str_eq(out, "connect host=db user=meridian password=*** dbname=m failed");
    mr_log_sanitize("postgresql://meridian:hunter2@db:5432/m and nats://u:p@127.0.0.1:4222", out,
                    sizeof out);
    ck_assert_str_eq(out, "postgresql://meridian:***@db:5432/m and nats://u:***@127.0.0.1:4222");
    mr_log_sanitize("password='a \\' b' PASSWORD=x", out, sizeof out);
    ck_assert_str_eq(out, "password=*** PASSWORD=***");
    /* Nothing to mask: unchanged. */
    mr_log_sanitize("ws://127.0.0.1:8080/ and user@example.com: ok", out, sizeof out);
    ck_assert_str_eq(out, "ws://127.0.0.1:8080/ and user@example.com: ok");
    /* A small buffer truncates, always NUL-terminated. */
    mr_log_sanitize("abcdef", out, 4);
    ck_assert_str_eq(out, "abc");
    char *line = capture(MR_LOG_TEXT, "dsn host=x password=topsecret");
    ck_assert_ptr_null(strstr(line, "topsecret"));
    free(line);
}
END_TEST

START_TEST(test_format_parse)
{
    ck_assert_int_eq(mr_log_format_parse("text"), MR_LOG_TEXT);
    ck_assert_int_eq(mr_log_format_parse("json"), MR_LOG_JSON);
    ck_assert_int_eq(mr_log_format_parse("JSON"), -1);
    ck_assert_int_eq(mr_log_format_parse(""), -1);
}
END_TEST

START_TEST(test_long_message_stays_one_line)
{
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    big[100] = '"';
    for (int f = MR_LOG_TEXT; f <= MR_LOG_JSON; f++) {
        char *out = capture((mr_log_format)f, big);
        ck_assert_int_eq(count_lines(out), 1);
        ck_assert(out[strlen(out) - 1] == '\n');
        if (f == MR_LOG_JSON) {
            json_t *o = json_loads(out, 0, NULL);
            ck_assert_msg(o != NULL, "truncated JSON line does not parse: %.200s", out);
            json_decref(o);
        }
        free(out);
    }
    free(big);
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_text_one_line);
    tcase_add_test(tc, test_json_one_object);
    tcase_add_test(tc, test_json_control_and_utf8);
    tcase_add_test(tc, test_credentials_masked);
    tcase_add_test(tc, test_format_parse);
    tcase_add_test(tc, test_long_message_stays_one_line);
    suite_add_tcase(s, tc);
    return s;
}
