/*
 * Relay units: configuration errors and the room table here; the connection
 * queue, delivery and resume, repair and presence in their own files, against
 * a relay without sockets or NATS (relay_fixture.h).
 */
#include "relay_suites.h"
#include "mr_test.h"
#include "relay_config.h"
#include "relay_room.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load(const char *text, char *err, size_t errlen)
{
    char *dir = mr_test_tmpdir("relaycfg");
    char path[600];
    snprintf(path, sizeof path, "%s/relay.json", dir);
    ck_assert_int_eq(mr_test_write_file(path, text), 0);
    relay_config c;
    relay_config_defaults(&c);
    int rc = relay_config_load(&c, path, err, errlen);
    if (rc == 0)
        rc = relay_config_validate(&c, err, errlen);
    relay_config_free(&c);
    free(dir);
    return rc;
}

static void expect_config_error(const char *text, const char *needle)
{
    char err[600] = "";
    ck_assert_msg(load(text, err, sizeof err) == -1, "accepted: %s", text);
    ck_assert_msg(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
}

START_TEST(config_ok)
{
    char err[600] = "";
    ck_assert_msg(load("{\"region\":\"eu-west\",\"auth\":{\"secret\":\"0123456789abcdef\"},"
                       "\"limits\":{\"publish_rate\":10.5}}",
                       err, sizeof err) == 0,
                  "%s", err);
}
END_TEST

/* The object form of "nats", and the comma-separated string the control plane also takes. */
START_TEST(config_nats_forms)
{
    char err[600] = "";
    ck_assert_msg(load("{\"auth\":{\"secret\":\"0123456789abcdef\"},"
                       "\"nats\":\"nats://a:1,tls://b:2\"}",
                       err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(load("{\"auth\":{\"secret\":\"0123456789abcdef\"},"
                       "\"nats\":{\"urls\":[\"nats://a:1\"],\"tls\":{}}}",
                       err, sizeof err) == 0,
                  "%s", err);
}
END_TEST

START_TEST(config_errors)
{
    expect_config_error("{}", "auth.secret: a token secret is required");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limits\":{\"publish_rate\":\"x\"}}",
                        "relay.json: limits.publish_rate: must be a number");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limits\":{\"max_message_bytes\":1}}",
                        "limits.max_message_bytes: must be between");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limits\":{\"receive_buffer_bytes\":64}}",
                        "limits.receive_buffer_bytes: must be between 128 and 65536");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limitz\":{}}", "limitz: unknown key");
    expect_config_error("{\"auth\":{\"secret\":\"s\",\"secrt\":1}}", "auth.secrt: unknown key");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"region\":\"eu west\"}", "region:");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"listen\":\"nowhere\"}", "listen:");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"nats\":[]}",
                        "nats: at least one NATS URL is required");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"nats\":[\"http://x\"]}", "nats:");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"nats\":5}",
                        "nats: must be a list of URLs or an object");
    /* Credentials never come from a URL, and the message does not repeat them. */
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"nats\":[\"nats://u:pw@x:1\"]}",
                        "nats: \"nats://x:1\": credentials in a URL are not accepted");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"nats\":{\"urls\":[\"nats://x:1\"],"
                        "\"nkey_seed_file\":\"/nonexistent/relay.nk\"}}",
                        "nats.nkey_seed_file: cannot read /nonexistent/relay.nk");
    expect_config_error("{\"auth\":{\"secret_file\":\"/nonexistent/secret\"}}",
                        "auth.secret_file: cannot read");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"tls\":{\"cert\":\"c.pem\"}}",
                        "tls: cert and key must be given together");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"tls\":{\"ciphersuites\":\"RC4-MD5\"}}",
                        "tls.ciphersuites: not a list of TLS 1.3 suites");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limits\":{\"ping_interval_s\":30,"
                        "\"idle_timeout_s\":20}}",
                        "limits.idle_timeout_s");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"log_level\":\"loud\"}", "log_level:");
    /* One publish of the largest size would close every member as a slow consumer. */
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"limits\":{\"max_message_bytes\":65536,"
                        "\"max_outbound_bytes\":8192}}",
                        "limits.max_outbound_bytes: must be at least limits.max_message_bytes");
    expect_config_error("{\"auth\":", "relay.json:1:");
    /* Clients are sent to fallback URLs: WebSocket URLs only, few, short. */
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"fallback_urls\":[\"javascript:alert(1)\"]}",
                        "fallback_urls: \"javascript:alert(1)\" must be a ws:// or wss:// URL");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"fallback_urls\":[\"http://evil/\"]}",
                        "fallback_urls:");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"admin_api_key\":\"short\"}",
                        "admin_api_key: use at least 16 characters");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"admin_api_key_file\":\"/nonexistent/k\"}",
                        "admin_api_key_file: cannot read /nonexistent/k");
    expect_config_error("{\"auth\":{\"secret\":\"s\"},\"admin_api_key\":\"0123456789abcdef\","
                        "\"admin_api_key_file\":\"/etc/hostname\"}",
                        "set either admin_api_key or admin_api_key_file");
}
END_TEST

/* Backend hook rules (docs/relay.md, "Backend hooks"): each mistake named with its rule. */
START_TEST(config_hooks)
{
    char err[600] = "";
    ck_assert_msg(load("{\"auth\":{\"secret\":\"0123456789abcdef\"},\"hooks\":{\"rules\":["
                       "{\"on\":[\"join\",\"publish\"],\"rooms\":[\"a-*\"],\"url\":\"http://h/x\","
                       "\"timeout_ms\":100,\"on_failure\":\"allow\"},"
                       "{\"on\":[\"join\"],\"url\":\"https://h/y\"}],\"max_connections\":2}}",
                       err, sizeof err) == 0,
                  "%s", err);
    const char *s = "{\"auth\":{\"secret\":\"s\"},\"hooks\":";
    char text[600];
    const struct {
        const char *hooks, *needle;
    } bad[] = {
        {"{\"rules\":[{\"on\":[\"leave\"],\"url\":\"http://h/\"}]}",
         "hooks.rules[0]: on: \"leave\" is not join or publish"},
        {"{\"rules\":[{\"url\":\"http://h/\"}]}", "hooks.rules[0]: on: list join, publish"},
        {"{\"rules\":[{\"on\":[\"join\"],\"url\":\"http://h/\"},{\"on\":[\"join\"]}]}",
         "hooks.rules[1]: url: an http:// or https:// URL"},
        {"{\"rules\":[{\"on\":[\"join\"],\"url\":\"ftp://h/\"}]}", "hooks.rules[0]: url:"},
        {"{\"rules\":[{\"on\":[\"join\"],\"url\":\"http://h/\",\"on_failure\":\"maybe\"}]}",
         "on_failure: \"maybe\" must be refuse or allow"},
        {"{\"rules\":[{\"on\":[\"join\"],\"url\":\"http://h/\",\"timeout_ms\":0}]}",
         "hooks.rules[0].timeout_ms: must be between"},
        {"{\"rules\":[{\"on\":[\"join\"],\"url\":\"http://h/\",\"retry\":1}]}",
         "hooks.rules[0].retry: unknown key"},
        {"{\"rules\":{}}", "hooks.rules: must be an array"},
        {"{\"rules\":[5]}", "hooks.rules[0]: must be an object"},
        {"{\"max_pending\":0}", "hooks.max_pending: must be between"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s%s}", s, bad[i].hooks);
        expect_config_error(text, bad[i].needle);
    }
}
END_TEST

START_TEST(config_url_valid)
{
    const char *good[] = {"ws://a", "wss://eu.ws.example/", "ws://127.0.0.1:17100/",
                          "wss://[::1]:443/path?x=1", "wss://h.example/a%20b"};
    const char *bad[] = {"",
                         "javascript:alert(1)",
                         "http://evil/",
                         "WSS://x/",
                         "wss://",
                         "wss:///path",
                         "wss://:443/",
                         "wss://a b/",
                         "wss://a/\"onload=",
                         "wss://a/<script>",
                         "wss://a/\n",
                         "wss://a/\x7f",
                         "wss://a/\xc3\xa9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(relay_config_url_valid(good[i]), "refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!relay_config_url_valid(bad[i]), "accepted %s", bad[i]);
    char url[RELAY_URL_MAX + 2];
    memset(url, 'x', sizeof url - 1);
    memcpy(url, "wss://", 6);
    url[RELAY_URL_MAX] = '\0';
    ck_assert(relay_config_url_valid(url));
    url[RELAY_URL_MAX] = 'x';
    url[RELAY_URL_MAX + 1] = '\0';
    ck_assert(!relay_config_url_valid(url));
}
END_TEST

START_TEST(rooms_membership)
{
    relay_rooms rs;
    relay_rooms_init(&rs, 64);
    bool created, first;
    int s1, s2, s3; /* only their addresses are used as session identities */
    relay_member *m1 = relay_room_join(&rs, "r", 1, (void *)&s1, "alice", &created, &first);
    ck_assert(created && first);
    relay_member *m2 = relay_room_join(&rs, "r", 1, (void *)&s2, "alice", &created, &first);
    ck_assert(!created && !first);
    relay_member *m3 = relay_room_join(&rs, "r", 1, (void *)&s3, "bob", &created, &first);
    ck_assert(first);
    relay_room *room = relay_room_find(&rs, "r", 1);
    ck_assert_int_eq(room->member_count, 3);
    ck_assert_int_eq(room->users.count, 2);
    bool last;
    ck_assert(!relay_room_leave(&rs, m1, "alice", &last));
    ck_assert(!last);
    ck_assert(!relay_room_leave(&rs, m3, "bob", &last));
    ck_assert(last);
    ck_assert(relay_room_leave(&rs, m2, "alice", &last));
    ck_assert(last);
    relay_room_destroy(&rs, room);
    ck_assert_ptr_null(relay_room_find(&rs, "r", 1));
    relay_rooms_free(&rs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_unit");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, config_ok);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, config_url_valid);
    tcase_add_test(tc, config_hooks);
    tcase_add_test(tc, config_nats_forms);
    tcase_add_test(tc, rooms_membership);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_add_suite(sr, relay_conn_suite());
    srunner_add_suite(sr, relay_deliver_suite());
    srunner_add_suite(sr, relay_repair_suite());
    srunner_add_suite(sr, relay_presence_suite());
    srunner_add_suite(sr, relay_once_suite());
    srunner_add_suite(sr, relay_join_suite());
    srunner_add_suite(sr, relay_publish_suite());
    srunner_add_suite(sr, relay_rewind_suite());
    srunner_add_suite(sr, relay_refresh_suite());
    srunner_add_suite(sr, relay_signal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
