/* Config reader: each error names the file, the key path and the reason. */
#include "test_suites.h"
#include "mr_config.h"
#include "mr_test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load_text(mr_cfg *c, const char *text)
{
    static char path[600];
    char *dir = mr_test_tmpdir("cfg");
    snprintf(path, sizeof path, "%s/c.json", dir);
    ck_assert_int_eq(mr_test_write_file(path, text), 0);
    free(dir);
    c->file = path;
    return mr_cfg_load(c, path);
}

START_TEST(syntax_error_has_position)
{
    mr_cfg c = {0};
    ck_assert_ptr_null(load_text(&c, "{\n  \"a\": 1,\n}"));
    ck_assert(c.failed);
    ck_assert_msg(strstr(c.err, "c.json:3:") != NULL, "%s", c.err);
}
END_TEST

START_TEST(not_an_object)
{
    mr_cfg c = {0};
    ck_assert_ptr_null(load_text(&c, "[1]"));
    ck_assert_msg(strstr(c.err, "must be a JSON object") != NULL, "%s", c.err);
}
END_TEST

START_TEST(typed_getters)
{
    mr_cfg c = {0};
    json_t *root = load_text(&c, "{\"limits\":{\"rate\":\"fast\",\"n\":5},\"name\":\"x\"}");
    ck_assert_ptr_nonnull(root);
    json_t *lim = mr_cfg_obj(&c, root, "", "limits");
    ck_assert_int_eq(mr_cfg_int(&c, lim, "limits", "n", 1, 0, 10), 5);
    ck_assert_str_eq(mr_cfg_str(&c, root, "", "name", "d"), "x");
    ck_assert_str_eq(mr_cfg_str(&c, root, "", "missing", "d"), "d");
    ck_assert(!c.failed);
    mr_cfg_num(&c, lim, "limits", "rate", 1, 0, 10);
    ck_assert(c.failed);
    ck_assert_msg(strstr(c.err, "limits.rate: must be a number") != NULL, "%s", c.err);
    json_decref(root);
}
END_TEST

START_TEST(range_and_unknown_keys)
{
    mr_cfg c = {0};
    json_t *root = load_text(&c, "{\"n\":50,\"typo\":1}");
    mr_cfg_int(&c, root, "", "n", 1, 0, 10);
    ck_assert_msg(strstr(c.err, "n: must be between 0 and 10 (got 50)") != NULL, "%s", c.err);
    mr_cfg c2 = {.file = "f.json"};
    static const char *const allowed[] = {"n", NULL};
    mr_cfg_check_keys(&c2, root, "", allowed);
    ck_assert_msg(strstr(c2.err, "f.json: typo: unknown key") != NULL, "%s", c2.err);
    json_decref(root);
}
END_TEST

START_TEST(hostport)
{
    char host[64];
    int port;
    ck_assert_int_eq(mr_parse_hostport("127.0.0.1:80", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 80);
    ck_assert_int_eq(mr_parse_hostport("[::1]:9", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(mr_parse_hostport(":8080", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(mr_parse_hostport("nohost", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_parse_hostport("h:99999", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_parse_hostport("h:", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_parse_hostport("h:12x", host, sizeof host, &port), -1);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, syntax_error_has_position);
    tcase_add_test(tc, not_an_object);
    tcase_add_test(tc, typed_getters);
    tcase_add_test(tc, range_and_unknown_keys);
    tcase_add_test(tc, hostport);
    suite_add_tcase(s, tc);
    return s;
}
