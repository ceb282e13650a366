/*
 * Backend hooks (docs/relay.md, "Backend hooks") against a real relay, a
 * real nats-server and a small real HTTP backend (tests/support/
 * hook_backend.py), which answers by the words of the room's name. Rooms
 * "h-*" are hooked with on_failure refuse, "open-*" with on_failure allow,
 * every other room is not hooked.
 */
#include "mr_test.h"
#include "mr_test_backend.h"
#include "mr_test_relay.h"

#include <check.h>
#include <signal.h>
#include <time.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mr_test_nats nats;
static mr_test_relay relay;
static mr_test_backend backend;
static char *tmp;

static void setup(void)
{
    tmp = mr_test_tmpdir("hooks");
    mr_test_backend_start(&backend, tmp, NULL, 0);
    mr_test_nats_start(&nats, true);
    char extra[1200];
    snprintf(extra, sizeof extra,
             "\"hooks\":{\"max_connections\":4,\"rules\":["
             "{\"on\":[\"join\",\"publish\"],\"rooms\":[\"open-*\"],"
             "\"url\":\"http://127.0.0.1:%d/hook\",\"timeout_ms\":400,\"on_failure\":\"allow\"},"
             "{\"on\":[\"join\",\"publish\"],\"rooms\":[\"h-*\"],"
             "\"url\":\"http://127.0.0.1:%d/hook\",\"timeout_ms\":400}]}",
             backend.port, backend.port);
    mr_test_relay_config(&relay, tmp, "test", "relay-1", nats.url,
                         "\"publish_rate\":100000,\"publish_burst\":100000", extra);
    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
}

static void teardown(void)
{
    mr_test_relay_stop_clean(&relay);
    mr_test_nats_stop(&nats);
    mr_test_backend_stop(&backend);
}

static void send_join(mr_ws *ws, const char *room)
{
    char frame[300];
    snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"j-%s\",\"room\":\"%s\"}", room,
             room);
    ck_assert_int_eq(mr_ws_send_text(ws, frame), 0);
}

/* The next frame answering request `id` (other frames are skipped), parsed. */
static json_t *answer(mr_ws *ws, const char *id)
{
    char needle[160];
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
    char *f = mr_ws_expect(ws, needle, 5000);
    ck_assert_msg(f != NULL, "no answer to %s", id);
    json_t *j = json_loads(f, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", f);
    free(f);
    return j;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The hook requests the backend got for `hook` in `room`. */
static size_t backend_requests(const char *hook, const char *room, json_t **last)
{
    json_t *stats = mr_test_backend_stats(&backend);
    size_t n = 0, i;
    json_t *req;
    json_array_foreach(json_object_get(stats, "hooks"), i, req)
    {
        if (strcmp(str(req, "hook"), hook) == 0 && strcmp(str(req, "room"), room) == 0) {
            n++;
            if (last) {
                json_decref(*last);
                *last = json_incref(req);
            }
        }
    }
    json_decref(stats);
    return n;
}

START_TEST(join_allowed_and_denied_with_a_sanitised_reason)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    send_join(&a, "h-allow");
    json_t *j = answer(&a, "j-h-allow");
    ck_assert_str_eq(str(j, "type"), "joined");
    json_decref(j);
    json_t *req = NULL;
    ck_assert_int_eq(backend_requests("join", "h-allow", &req), 1);
    ck_assert_str_eq(str(req, "user"), "alice");
    ck_assert_str_eq(str(req, "region"), "test");
    ck_assert_str_eq(str(req, "node"), "relay-1");
    ck_assert_int_gt(strlen(str(req, "session")), 0);
    json_decref(req);

    send_join(&a, "h-deny");
    j = answer(&a, "j-h-deny");
    ck_assert_str_eq(str(j, "type"), "error");
    ck_assert_str_eq(str(j, "code"), "forbidden");
    const char *reason = str(j, "message");
    /* The backend's reason, control characters made spaces, cut to 200 bytes of UTF-8. */
    ck_assert_msg(strncmp(reason, "no entry  for alice é", 22) == 0, "reason: %s", reason);
    ck_assert_int_le(strlen(reason), 200);
    ck_assert_int_ge(strlen(reason), 198);
    for (const char *p = reason; *p; p++)
        ck_assert_int_ge((unsigned char)*p, 0x20);
    json_decref(j);
    /* Not a member: a publish there is refused by the relay itself. */
    mr_test_publish(&a, "h-deny", "m1", "1");
    j = answer(&a, "m1");
    ck_assert_str_eq(str(j, "code"), "not_joined");
    json_decref(j);
    ck_assert_int_ge(mr_test_relay_metric(&relay, "meridian_relay_hook_denials_total"), 1);
    mr_ws_close(&a);
}
END_TEST

START_TEST(publish_data_replaced_or_refused)
{
    mr_ws a, b;
    mr_test_hello(&a, &relay, "alice", NULL);
    mr_test_hello(&b, &relay, "bob", NULL);
    mr_test_join(&a, "h-replace");
    mr_test_join(&b, "h-replace");
    mr_test_publish(&a, "h-replace", "m1", "{\"text\":\"hi\"}");
    char *m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "\"data\":{\"replaced\":{\"text\":\"hi\"}}"), "got %s",
                  m ? m : "nothing");
    free(m);
    json_t *req = NULL;
    ck_assert_int_eq(backend_requests("publish", "h-replace", &req), 1);
    ck_assert_str_eq(str(req, "mid"), "m1");
    ck_assert_int_eq(strlen(str(req, "msg_id")), 32);
    ck_assert_str_eq(str(json_object_get(req, "data"), "text"), "hi");
    json_decref(req);

    mr_test_join(&a, "h-denypub");
    mr_test_publish(&a, "h-denypub", "m2", "{\"text\":\"spam\"}");
    json_t *j = answer(&a, "m2");
    ck_assert_str_eq(str(j, "code"), "forbidden");
    ck_assert_str_eq(str(j, "message"), "no spam");
    json_decref(j);
    /* Its retry gets the same refusal, remembered: the backend is not asked again. */
    mr_test_publish(&a, "h-denypub", "m2", "{\"text\":\"spam\"}");
    j = answer(&a, "m2");
    ck_assert_str_eq(str(j, "code"), "forbidden");
    ck_assert_str_eq(str(j, "message"), "no spam");
    json_decref(j);
    ck_assert_int_eq(backend_requests("publish", "h-denypub", NULL), 1);
    /* Replacement data over limits.max_message_bytes is a failure: refused (on_failure). */
    mr_test_join(&a, "h-bigdata");
    mr_test_publish(&a, "h-bigdata", "m3", "1");
    j = answer(&a, "m3");
    ck_assert_str_eq(str(j, "code"), "unavailable");
    json_decref(j);
    /* A publish without mid is given one before the backend sees it. */
    ck_assert_int_eq(mr_ws_send_text(&a, "{\"type\":\"publish\",\"id\":\"nomid\",\"room\":"
                                         "\"h-replace\",\"data\":2}"),
                     0);
    j = answer(&a, "nomid");
    ck_assert_str_eq(str(j, "type"), "ack");
    req = NULL;
    ck_assert_int_eq(backend_requests("publish", "h-replace", &req), 2);
    ck_assert_str_eq(str(req, "msg_id"), str(j, "msg_id"));
    json_decref(req);
    json_decref(j);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

/* Every way a backend can fail, with on_failure refuse: `unavailable`, a metric, a log line. */
START_TEST(failures_refuse_without_blocking_the_relay)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    int64_t t0 = mr_test_now_ms();
    send_join(&a, "h-slow");
    /* The relay answers other frames while the backend sleeps. */
    ck_assert_int_eq(mr_ws_send_text(&a, "{\"type\":\"ping\",\"id\":\"p\"}"), 0);
    json_t *j = answer(&a, "p");
    ck_assert_str_eq(str(j, "type"), "pong");
    ck_assert_int_lt(mr_test_now_ms() - t0, 300);
    json_decref(j);
    j = answer(&a, "j-h-slow");
    ck_assert_str_eq(str(j, "code"), "unavailable");
    ck_assert_int_lt(mr_test_now_ms() - t0, 2500);
    json_decref(j);
    const char *rooms[] = {"h-err", "h-garbage", "h-huge", "h-noallow"};
    for (size_t i = 0; i < 4; i++) {
        send_join(&a, rooms[i]);
        char id[64];
        snprintf(id, sizeof id, "j-%s", rooms[i]);
        j = answer(&a, id);
        ck_assert_msg(strcmp(str(j, "code"), "unavailable") == 0, "%s: %s", rooms[i],
                      str(j, "code"));
        json_decref(j);
    }
    ck_assert_int_ge(mr_test_relay_metric(&relay, "meridian_relay_hook_failures_total"), 5);
    char *log = mr_test_read_file(relay.log);
    ck_assert_msg(strstr(log, "no answer within 400 ms"), "no time-out line in the log");
    free(log);
    mr_ws_close(&a);
}
END_TEST

START_TEST(failures_allow_with_on_failure_allow)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    const char *rooms[] = {"open-slow", "open-err", "open-garbage"};
    for (size_t i = 0; i < 3; i++) {
        send_join(&a, rooms[i]);
        char id[64];
        snprintf(id, sizeof id, "j-%s", rooms[i]);
        json_t *j = answer(&a, id);
        ck_assert_msg(strcmp(str(j, "type"), "joined") == 0, "%s: %s", rooms[i], str(j, "type"));
        json_decref(j);
    }
    /* The message goes out as the client sent it. */
    mr_test_publish(&a, "open-garbage", "m1", "{\"text\":\"as sent\"}");
    char *m = mr_test_next_message(&a, 5000);
    ck_assert_msg(m && strstr(m, "\"data\":{\"text\":\"as sent\"}"), "got %s", m ? m : "-");
    free(m);
    mr_ws_close(&a);
}
END_TEST

/* Hooked and unhooked publishes of one client keep its order. */
START_TEST(order_kept_across_hooked_and_plain_rooms)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    mr_test_join(&a, "h-order");
    mr_test_join(&a, "plain");
    char mid[32];
    for (int i = 0; i < 40; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        mr_test_publish(&a, i % 3 ? "plain" : "h-order", mid, "1");
    }
    for (int i = 0; i < 40; i++) {
        char *m = mr_test_next_message(&a, 5000);
        snprintf(mid, sizeof mid, "\"mid\":\"m%d\"", i);
        ck_assert_msg(m && strstr(m, mid), "message %d: %s", i, m ? m : "nothing");
        free(m);
    }
    mr_ws_close(&a);
}
END_TEST

/* A retried mid gets the decision its first attempt got, without a second request. */
START_TEST(retried_mid_is_not_hooked_again)
{
    mr_ws a, b;
    mr_test_hello(&a, &relay, "alice", NULL);
    mr_test_hello(&b, &relay, "bob", NULL);
    mr_test_join(&a, "h-counter");
    mr_test_join(&b, "h-counter");
    mr_test_publish(&a, "h-counter", "same", "1");
    json_t *first = answer(&a, "same");
    ck_assert_str_eq(str(first, "type"), "ack");
    mr_test_publish(&a, "h-counter", "same", "1");
    json_t *second = answer(&a, "same");
    ck_assert_str_eq(str(second, "type"), "ack");
    ck_assert_str_eq(str(first, "msg_id"), str(second, "msg_id"));
    mr_test_publish(&a, "h-counter", "other", "1");
    json_decref(answer(&a, "other"));
    ck_assert_int_eq(backend_requests("publish", "h-counter", NULL), 2);
    ck_assert_int_eq(mr_test_relay_metric(&relay, "meridian_relay_hook_cached_total"), 1);
    /* One message per mid, with the data of the first decision. */
    char *m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "\"mid\":\"same\""), "got %s", m ? m : "-");
    char want[64];
    snprintf(want, sizeof want, "\"data\":{\"n\":");
    ck_assert_ptr_nonnull(strstr(m, want));
    free(m);
    m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "\"mid\":\"other\""), "got %s", m ? m : "-");
    free(m);
    json_decref(first);
    json_decref(second);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

START_TEST(connections_to_the_backend_are_kept_alive)
{
    json_t *stats = mr_test_backend_stats(&backend);
    long before = (long)json_integer_value(json_object_get(stats, "connections"));
    json_decref(stats);
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    for (int i = 0; i < 30; i++) {
        char room[32];
        snprintf(room, sizeof room, "h-allow-%d", i);
        mr_test_join(&a, room);
    }
    stats = mr_test_backend_stats(&backend);
    long after = (long)json_integer_value(json_object_get(stats, "connections"));
    size_t hooks = json_array_size(json_object_get(stats, "hooks"));
    json_decref(stats);
    ck_assert_int_eq(hooks, 30);
    /* 30 requests, one after the other: one kept-alive connection, plus this /stats request. */
    ck_assert_msg(after - before <= 2, "%ld connections for 30 hook requests", after - before - 1);
    mr_ws_close(&a);
}
END_TEST

/* Joins waiting for their hook count as rooms: one client cannot queue unbounded requests. */
START_TEST(waiting_joins_count_against_the_room_limit)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    char room[32];
    for (int i = 0; i < 100; i++) {
        snprintf(room, sizeof room, "h-slow-%d", i);
        send_join(&a, room);
    }
    send_join(&a, "h-allow-101");
    json_t *j = answer(&a, "j-h-allow-101");
    ck_assert_str_eq(str(j, "code"), "too_many_rooms");
    json_decref(j);
    /* Every waiting join still gets its answer (the backend is too slow: unavailable). */
    int unavailable = 0;
    int64_t deadline = mr_test_now_ms() + 10000;
    while (unavailable < 100 && mr_test_now_ms() < deadline) {
        char *f = NULL;
        size_t len = 0;
        int close_code = 0;
        if (mr_ws_recv(&a, 1000, &f, &len, &close_code) == 1 && f &&
            strstr(f, "\"id\":\"j-h-slow-") && strstr(f, "\"code\":\"unavailable\""))
            unavailable++;
        free(f);
    }
    ck_assert_int_eq(unavailable, 100);
    mr_ws_close(&a);
}
END_TEST

/* Replace the relay's "hooks" by `hooks` (JSON) in its config file and send SIGHUP. */
static void reload_hooks(const char *hooks)
{
    json_t *cfg = json_load_file(relay.cfg, 0, NULL);
    ck_assert_ptr_nonnull(cfg);
    json_object_set_new(cfg, "hooks", json_loads(hooks, 0, NULL));
    ck_assert_int_eq(json_dump_file(cfg, relay.cfg, JSON_INDENT(2)), 0);
    json_decref(cfg);
    ck_assert_int_eq(kill(relay.pid, SIGHUP), 0);
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        char *log = mr_test_read_file(relay.log);
        bool done = log && strstr(log, "reload: applied");
        free(log);
        if (done)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "no reload; see %s", relay.log);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/*
 * SIGHUP reloads hooks.rules: rooms the new rules leave out are no longer
 * hooked, rooms they add are; a request in flight under the old rules still
 * gets its answer.
 */
START_TEST(rules_reload_on_sighup)
{
    mr_ws a;
    mr_test_hello(&a, &relay, "alice", NULL);
    /* The backend answers this one after 3 s: past its 400 ms, under the old rule. */
    send_join(&a, "h-slow-1");
    /* In flight before the reload: a relay slower to read the join than the SIGHUP (a busy
     * machine) would otherwise judge it by the new rules, which do not hook it. */
    int64_t deadline = mr_test_now_ms() + 5000;
    while (backend_requests("join", "h-slow-1", NULL) == 0) {
        ck_assert_msg(mr_test_now_ms() < deadline, "the backend never got the h-slow-1 hook");
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    char hooks[600];
    snprintf(hooks, sizeof hooks,
             "{\"max_connections\":4,\"rules\":[{\"on\":[\"join\"],\"rooms\":[\"x-*\"],"
             "\"url\":\"http://127.0.0.1:%d/hook\",\"timeout_ms\":400}]}",
             backend.port);
    reload_hooks(hooks);
    json_t *j = answer(&a, "j-h-slow-1");
    ck_assert_str_eq(str(j, "code"), "unavailable");
    json_decref(j);
    send_join(&a, "h-deny");
    j = answer(&a, "j-h-deny");
    ck_assert_str_eq(str(j, "type"), "joined");
    json_decref(j);
    ck_assert_int_eq(backend_requests("join", "h-deny", NULL), 0);
    send_join(&a, "x-deny");
    j = answer(&a, "j-x-deny");
    ck_assert_str_eq(str(j, "code"), "forbidden");
    json_decref(j);
    ck_assert_int_eq(backend_requests("join", "x-deny", NULL), 1);
    mr_ws_close(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_hooks");
    TCase *tc = mr_test_case(s, "hooks", setup, teardown, 120);
    tcase_add_test(tc, join_allowed_and_denied_with_a_sanitised_reason);
    tcase_add_test(tc, publish_data_replaced_or_refused);
    tcase_add_test(tc, failures_refuse_without_blocking_the_relay);
    tcase_add_test(tc, failures_allow_with_on_failure_allow);
    tcase_add_test(tc, order_kept_across_hooked_and_plain_rooms);
    tcase_add_test(tc, retried_mid_is_not_hooked_again);
    tcase_add_test(tc, connections_to_the_backend_are_kept_alive);
    tcase_add_test(tc, waiting_joins_count_against_the_room_limit);
    tcase_add_test(tc, rules_reload_on_sighup);
    return mr_test_run(s);
}
