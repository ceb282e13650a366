/*
 * Envelope validation (control/ctl_envelope.c): the subject's room, the fast
 * path and the jansson path, and that both paths give the same result on
 * what the fast path accepts (the fuzz target checks the same on random
 * input).
 */
#include "ctl_suites.h"
#include "ctl_envelope.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef"

START_TEST(test_subject_room)
{
    const char *room = NULL;
    char why[128];
    ck_assert_int_eq(
        ctl_envelope_subject_room("meridian.msg.eu-west.lobby", "eu-west", &room, why, sizeof why),
        0);
    ck_assert_str_eq(room, "lobby");
    static const char *bad[] = {"meridian.msg.us-east.lobby",
                                "meridian.msg.eu-westx.lobby",
                                "meridian.msg.eu-west",
                                "meridian.msg.eu-west.",
                                "other.eu-west.x",
                                "meridian.msg.eu-west.a.b",
                                "meridian.msg.eu-west.bad!room"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(ctl_envelope_subject_room(bad[i], "eu-west", &room, why, sizeof why) == -1,
                      "accepted %s", bad[i]);
}
END_TEST

/* Parse with both paths; the fast path, when it accepts, must agree with the full one. */
static int parse(const char *room, const char *text, ctl_envelope *e, bool *fast, char *why,
                 size_t n)
{
    ctl_envelope f = {0};
    *fast = ctl_envelope_parse_fast(room, text, strlen(text), &f);
    int rc = ctl_envelope_parse_full(room, text, strlen(text), e, why, n);
    if (*fast) {
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(f.room, e->room);
        ck_assert_str_eq(f.msg_id, e->msg_id);
        ck_assert_int_eq(f.ts_ms, e->ts_ms);
        ck_assert_str_eq(f.env, e->env);
        ctl_envelope_free(&f);
    }
    return rc;
}

START_TEST(test_plain_envelope_kept_as_received)
{
    const char *text = "{\"type\":\"message\",\"room\":\"lobby\",\"msg_id\":\"" ID
                       "\",\"from\":\"alice\",\"ts\":1764300000000,\"data\":{\"t\":[1,2]}}  \n";
    ctl_envelope e = {0};
    bool fast;
    char why[128] = "";
    ck_assert_int_eq(parse("lobby", text, &e, &fast, why, sizeof why), 0);
    ck_assert(fast);
    ck_assert_str_eq(e.room, "lobby");
    ck_assert_str_eq(e.msg_id, ID);
    ck_assert_int_eq(e.ts_ms, 1764300000000);
    /* Byte for byte, without the trailing whitespace. */
    ck_assert_uint_eq(strlen(e.env), strlen(text) - 3);
    ck_assert(strncmp(e.env, text, strlen(e.env)) == 0);
    ctl_envelope_free(&e);
    ck_assert_ptr_null(e.env);
}
END_TEST

START_TEST(test_seq_is_removed)
{
    const char *text =
        "{\"room\":\"r\",\"msg_id\":\"" ID "\",\"seq\":999,\"ts\":1.5,\"data\":\"x\"}";
    ctl_envelope e = {0};
    bool fast;
    char why[128];
    ck_assert_int_eq(parse("r", text, &e, &fast, why, sizeof why), 0);
    ck_assert(!fast); /* a forged seq goes through jansson */
    ck_assert_int_eq(e.ts_ms, 0);
    json_t *o = json_loads(e.env, 0, NULL);
    ck_assert(json_is_object(o));
    ck_assert_ptr_null(json_object_get(o, "seq"));
    ck_assert_str_eq(json_string_value(json_object_get(o, "data")), "x");
    ck_assert(e.env[strlen(e.env) - 1] == '}');
    json_decref(o);
    ctl_envelope_free(&e);
}
END_TEST

START_TEST(test_fallbacks_agree)
{
    /* Valid, but not plain: escaped keys and values, exponents, duplicate names. */
    static const char *ok[] = {
        "{\"r\\u006fom\":\"r\",\"msg_id\":\"" ID "\"}",
        "{\"room\":\"r\",\"msg_id\":\"" ID "\",\"data\":\"\\u00e9\",\"ts\":12}",
        "{\"room\":\"r\",\"msg_id\":\"" ID "\",\"n\":1e3}",
        "{\"room\":\"x\",\"room\":\"r\",\"msg_id\":\"" ID "\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ctl_envelope e = {0};
        bool fast;
        char why[128];
        ck_assert_msg(parse("r", ok[i], &e, &fast, why, sizeof why) == 0, "%s: %s", ok[i], why);
        ck_assert_msg(!fast, "fast path accepted %s", ok[i]);
        ck_assert_str_eq(e.msg_id, ID);
        ctl_envelope_free(&e);
    }
}
END_TEST

START_TEST(test_rejections_explained)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "not valid JSON"},
        {"{\"room\":\"r\",", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"room\":\"r\",\"msg_id\":\"" ID "\",\"ts\":99999999999999999999}", "not valid JSON"},
        {"{\"msg_id\":\"" ID "\"}", "\"room\" does not match"},
        {"{\"room\":\"other\",\"msg_id\":\"" ID "\"}", "\"room\" does not match"},
        {"{\"room\":\"r\\u0000\",\"msg_id\":\"" ID "\"}", "not valid JSON"},
        {"{\"room\":\"r\",\"msg_id\":\"0123456789ABCDEF0123456789ABCDEF\"}", "\"msg_id\" must"},
        {"{\"room\":\"r\",\"msg_id\":\"0123\"}", "\"msg_id\" must"},
        {"{\"room\":\"r\",\"msg_id\":7}", "\"msg_id\" must"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ctl_envelope e = {0};
        char why[160] = "";
        ck_assert_msg(
            ctl_envelope_parse("r", bad[i].text, strlen(bad[i].text), &e, why, sizeof why) == -1,
            "accepted %s", bad[i].text);
        ck_assert_msg(strstr(why, bad[i].why) != NULL, "%s: \"%s\"", bad[i].text, why);
        ck_assert_ptr_null(e.env);
    }
}
END_TEST

Suite *envelope_suite(void)
{
    Suite *s = suite_create("control_envelope");
    TCase *tc = tcase_create("envelope");
    tcase_add_test(tc, test_subject_room);
    tcase_add_test(tc, test_plain_envelope_kept_as_received);
    tcase_add_test(tc, test_seq_is_removed);
    tcase_add_test(tc, test_fallbacks_agree);
    tcase_add_test(tc, test_rejections_explained);
    suite_add_tcase(s, tc);
    return s;
}
