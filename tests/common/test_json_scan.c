/*
 * The fast JSON object scan: what it accepts must be exactly what jansson
 * accepts as an object, member by member; everything it is not sure of it
 * leaves to jansson (returns false).
 */
#include "test_suites.h"
#include "mr_json_scan.h"

#include <check.h>
#include <jansson.h>
#include <string.h>

static bool scan(const char *text, mr_json_object *o)
{
    return mr_json_scan_object(text, strlen(text), o);
}

START_TEST(plain_objects_and_their_members)
{
    mr_json_object o;
    bool rep = false;
    ck_assert(scan(
        " {\"room\":\"a-b\",\"ts\":-17,\"x\":1.5,\"data\":{\"k\":[1,true,null,\"é\"]}}\n", &o));
    ck_assert_uint_eq(o.count, 4);
    const mr_json_member *m = mr_json_member_get(&o, "room", &rep);
    ck_assert(m && m->type == MR_JSON_STRING && m->value_len == 3 && !memcmp(m->value, "a-b", 3));
    m = mr_json_member_get(&o, "ts", &rep);
    ck_assert(m && m->type == MR_JSON_INTEGER && m->value_len == 3 && !memcmp(m->value, "-17", 3));
    ck_assert_int_eq(mr_json_member_get(&o, "x", &rep)->type, MR_JSON_REAL);
    m = mr_json_member_get(&o, "data", &rep);
    ck_assert(m && m->type == MR_JSON_OBJECT && m->value[0] == '{' &&
              m->value[m->value_len - 1] == '}');
    ck_assert_ptr_null(mr_json_member_get(&o, "missing", &rep));
    ck_assert(scan("{}", &o) && o.count == 0);
    ck_assert(scan("{\"a\\\"b\":\"c\\n\"}", &o));
    ck_assert(o.members[0].key_escaped && o.members[0].value_escaped);
    ck_assert_ptr_null(mr_json_member_get(&o, "a\\\"b", &rep)); /* escaped keys never match */
    ck_assert(!rep);
    ck_assert(scan("{\"k\":1,\"j\":2,\"k\":3}", &o));
    m = mr_json_member_get(&o, "k", &rep);
    ck_assert(m && rep && m->value[0] == '1');
}
END_TEST

START_TEST(invalid_or_unsure_is_left_to_the_full_parser)
{
    static const char *const texts[] = {
        "",
        "[]",
        "\"s\"",
        "{",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":1} x",
        "{\"a\":\"\x01\"}",             /* control character */
        "{\"a\":\"\xc3\"}",             /* truncated UTF-8 */
        "{\"a\":\"\xc0\xaf\"}",         /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u0041\"}",         /* \u: left to jansson */
        "{\"a\":1e5}",                 /* exponent: left to jansson */
        "{\"a\":1234567890123456789}", /* 19 digits */
        "{\"a\":{\"x\":1,\"x\":2}}",   /* a nested name repeated */
        "{\"a\":[{\"x\":1,\"y\":{\"z\":1,\"z\":1}}]}",
        "{\"a\":{\"\\/\":1,\"/\":2}}", /* nested escaped names: one may spell another */
    };
    mr_json_object o;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        ck_assert_msg(!scan(texts[i], &o), "accepted %s", texts[i]);
    /* A NUL byte inside is never plainly valid. */
    ck_assert(!mr_json_scan_object("{\"a\":\"x\0\"}", 9, &o));
    /* Too deep, and too many members. */
    char deep[400] = "{\"a\":";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    ck_assert(!scan(deep, &o));
    char wide[1024] = "{";
    for (int i = 0; i < MR_JSON_SCAN_MEMBERS + 1; i++)
        sprintf(wide + strlen(wide), "%s\"k%d\":%d", i ? "," : "", i, i);
    strcat(wide, "}");
    ck_assert(!scan(wide, &o));
    /* The same number of members in a nested object, and the most that pass. */
    char nested[1100] = "{\"a\":";
    strcat(nested, wide);
    strcat(nested, "}");
    ck_assert(!scan(nested, &o));
    strcpy(nested, "{\"a\":{");
    for (int i = 0; i < MR_JSON_SCAN_MEMBERS; i++)
        sprintf(nested + strlen(nested), "%s\"k%d\":%d", i ? "," : "", i, i);
    strcat(nested, "}}");
    ck_assert(scan(nested, &o));
    /* The top level reports its repeated names instead of refusing them. */
    bool rep = false;
    ck_assert(scan("{\"a\":1,\"a\":{\"b\":1,\"c\":{\"b\":2}}}", &o));
    ck_assert_ptr_nonnull(mr_json_member_get(&o, "a", &rep));
    ck_assert(rep);
}
END_TEST

START_TEST(whatever_it_accepts_jansson_accepts_as_the_same_object)
{
    static const char *const texts[] = {
        "{\"room\":\"r\",\"msg_id\":\"0123456789abcdef0123456789abcdef\",\"ts\":1795849395299}",
        "{ \"a\" : [ 1 , -0 , 0.25 , \"\xe2\x82\xac\xf0\x9f\x98\x80\" ] , \"b\" : { } }",
        "{\"n\":123456789012345678,\"neg\":-123456789012345678,\"s\":\"\\\\\\/\\b\\f\\r\\t\"}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        mr_json_object o;
        ck_assert_msg(scan(texts[i], &o), "refused %s", texts[i]);
        json_t *j = json_loads(texts[i], 0, NULL);
        ck_assert_msg(json_is_object(j), "jansson refused %s", texts[i]);
        ck_assert_uint_eq(json_object_size(j), o.count);
        json_decref(j);
    }
}
END_TEST

Suite *json_scan_suite(void)
{
    Suite *s = suite_create("json_scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, plain_objects_and_their_members);
    tcase_add_test(tc, invalid_or_unsure_is_left_to_the_full_parser);
    tcase_add_test(tc, whatever_it_accepts_jansson_accepts_as_the_same_object);
    suite_add_tcase(s, tc);
    return s;
}
