/*
 * The presence parsers (control/ctl_presence_parse.c): what relays send on
 * meridian.presence.<room> and meridian.relay.hb is accepted as it is, and
 * anything else is rejected with a reason (tests/fuzz/fuzz_presence.c
 * checks the same on random input).
 */
#include "ctl_suites.h"
#include "ctl_presence_parse.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define NODE "eu-west/relay-1/0123456789ab"

static int delta(const char *subject, const char *reply, const char *data, ctl_presence_item *it)
{
    return ctl_presence_parse_delta(subject, reply, data, strlen(data), it, NULL);
}

START_TEST(parse_delta_accepts_what_relays_send)
{
    ctl_presence_item it;
    ck_assert_int_eq(delta("meridian.presence.lobby", NULL,
                           "{\"op\":\"set\",\"node\":\"" NODE "\",\"user\":\"alice\","
                           "\"sessions\":2,\"seq\":17}",
                           &it),
                     CTL_PRESENCE_OK);
    ck_assert_int_eq(it.kind, CTL_PRESENCE_SET);
    ck_assert_str_eq(it.room, "lobby");
    ck_assert_str_eq(it.node, NODE);
    ck_assert_str_eq(it.user, "alice");
    ck_assert_int_eq(it.sessions, 2);
    ck_assert_int_eq(it.seq, 17);
    /* A relay's snapshot request is not ours to answer, and not an error. */
    ck_assert_int_eq(delta("meridian.presence.lobby", "_INBOX.abc.p.lobby", "{}", &it),
                     CTL_PRESENCE_IGNORED);
    const char *hb = "{\"node\":\"" NODE "\",\"interval_ms\":1000}";
    ck_assert_int_eq(ctl_presence_parse_heartbeat(hb, strlen(hb), &it, NULL), CTL_PRESENCE_OK);
    ck_assert_int_eq(it.kind, CTL_PRESENCE_SEEN);
    const char *bye = "{\"op\":\"bye\",\"node\":\"" NODE "\"}";
    ck_assert_int_eq(ctl_presence_parse_heartbeat(bye, strlen(bye), &it, NULL), CTL_PRESENCE_OK);
    ck_assert_int_eq(it.kind, CTL_PRESENCE_BYE);
    ck_assert_str_eq(it.node, NODE);
}
END_TEST

START_TEST(parse_rejects_malformed_input)
{
    char user[400], big[5000], long_user[600];
    memset(user, 'u', 257);
    user[257] = 0;
    snprintf(long_user, sizeof long_user,
             "{\"op\":\"set\",\"node\":\"" NODE "\",\"user\":\"%s\",\"sessions\":1,\"seq\":1}",
             user);
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\",\"sessions\":1,\"seq\":1", 55);
    big[sizeof big - 2] = '}';
    const char *bad[][2] = {
        {"meridian.presence.lobby", "not json"},
        {"meridian.presence.lobby", "[1,2]"},
        {"meridian.presence.lobby", "{\"op\":\"set\"}"},
        {"meridian.presence.lobby", "{\"op\":\"get\",\"node\":\"n\",\"user\":\"a\",\"sessions\":1,"
                                    "\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n n\",\"user\":\"a\","
                                    "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"\","
                                    "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\\u0000b\","
                                    "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.lobby", long_user},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":-1,\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":10000001,\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":1,\"seq\":0}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":1,\"seq\":\"1\"}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                    "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.lobby", big},
        {"meridian.presence.lo.bby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"a\","
                                     "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.", "{}"},
        {"meridian.other.lobby", "{}"},
    };
    ctl_presence_item it;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        ck_assert_msg(ctl_presence_parse_delta(bad[i][0], NULL, bad[i][1], strlen(bad[i][1]), &it,
                                               &why) == CTL_PRESENCE_BAD,
                      "case %zu accepted", i);
        ck_assert_msg(why && why[0], "case %zu without a reason", i);
    }
    const char *bad_hb[] = {"",
                            "[]",
                            "{\"interval_ms\":1000}",
                            "{\"node\":7}",
                            "{\"op\":\"nope\",\"node\":\"n\"}",
                            "{\"op\":1,\"node\":\"n\"}"};
    for (size_t i = 0; i < sizeof bad_hb / sizeof bad_hb[0]; i++)
        ck_assert_msg(ctl_presence_parse_heartbeat(bad_hb[i], strlen(bad_hb[i]), &it, NULL) ==
                          CTL_PRESENCE_BAD,
                      "heartbeat case %zu accepted", i);
}
END_TEST

Suite *presence_parse_suite(void)
{
    Suite *s = suite_create("presence_parse");
    TCase *tc = tcase_create("presence_parse");
    tcase_add_test(tc, parse_delta_accepts_what_relays_send);
    tcase_add_test(tc, parse_rejects_malformed_input);
    suite_add_tcase(s, tc);
    return s;
}
