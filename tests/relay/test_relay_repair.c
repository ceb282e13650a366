/*
 * Commit repair: the baseline, gaps in seqs read from history once they
 * last, one request in flight, reading behind the baseline.
 */
#include "relay_suites.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_fixture.h"
#include "relay_repair.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;
static relay_conn *alice;
static relay_room *room;

static void setup(void)
{
    fx_init(&fx);
    alice = fx_conn(&fx, "alice");
    bool created;
    room = fx_join(&fx, alice, "r", &created)->room;
    ck_assert(created);
    relay_repair_room_created(&fx.r, room);
}

static void teardown(void)
{
    fx_free(&fx);
}

static void reply(const char *page)
{
    relay_repair_reply(&fx.r, "r", page, strlen(page));
}

/* A history page holding the given seqs (message ids from fx_msg_id). */
static void reply_with(const int *seqs, int n, bool more)
{
    json_t *msgs = json_array();
    for (int i = 0; i < n; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", seqs[i], id);
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:i}", "type", "message", "room",
                                              "r", "msg_id", id, "seq", seqs[i]));
    }
    json_t *page = json_pack("{s:o, s:b}", "messages", msgs, "more", more);
    char *text = json_dumps(page, JSON_COMPACT);
    reply(text);
    free(text);
    json_decref(page);
}

static void commit(int seq)
{
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", seq, id);
    json_t *stored =
        json_pack("{s:s, s:s, s:s, s:i}", "type", "message", "room", "r", "msg_id", id, "seq", seq);
    relay_deliver_commit(&fx.r, room, id, seq, stored);
    relay_repair_commit(&fx.r, room);
    json_decref(stored);
}

/* Run the tick until it has sent request number `count` (or two seconds pass). */
static void tick_until_request(int count)
{
    int64_t deadline = mr_now_us() + 2000000;
    while (fake_nats.requests < count && mr_now_us() < deadline)
        relay_repair_tick(&fx.r);
}

static void expect_request(int count, const char *body)
{
    ck_assert_int_eq(fake_nats.requests, count);
    const fake_nats_call *c = fake_nats_last_request();
    ck_assert_str_eq(c->subject, "meridian.history.r");
    ck_assert_str_eq(c->reply, "c.r");
    ck_assert_str_eq(c->body, body);
}

/* The seqs of the messages queued for alice, in order (takes them). */
static int take_seqs(int *seqs, int max)
{
    size_t n;
    char **f = fx_take(alice, &n);
    ck_assert_int_le((int)n, max);
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        seqs[i] = (int)json_integer_value(json_object_get(j, "seq"));
        json_decref(j);
    }
    fx_frames_free(f);
    return (int)n;
}

START_TEST(repair_gaps)
{
    fx.cfg.commit_repair_ms = 1;
    /* The room's creation asked for its last seq. */
    expect_request(1, "{\"after\":9223372036854775806,\"limit\":1}");
    commit(3); /* before the baseline: nothing to compare with */
    ck_assert_int_eq(fake_nats.requests, 1);
    reply("{\"messages\":[],\"more\":false,\"last_seq\":5}");
    commit(6);
    /* 8 after 6: 7 is missing, but commits of several control planes come out of order. */
    commit(8);
    ck_assert_int_eq(fake_nats.requests, 1);
    /* 7 comes after all: no gap left, nothing to read. */
    commit(7);
    int64_t deadline = mr_now_us() + 5000;
    while (mr_now_us() < deadline)
        relay_repair_tick(&fx.r);
    ck_assert_int_eq(fake_nats.requests, 1);
    /* 10 after 8, and 9 does not come: read once the gap has lasted commit_repair_ms. */
    commit(10);
    tick_until_request(2);
    expect_request(2, "{\"after\":8,\"limit\":1000}");
    /* Another gap while that request is in flight: no second request. */
    commit(12);
    relay_repair_tick(&fx.r);
    ck_assert_int_eq(fake_nats.requests, 2);
    int seqs[8];
    ck_assert_int_eq(take_seqs(seqs, 8), 6); /* 3, 6, 8, 7, 10, 12 as commits came */
    /* The page delivers 9 as if its commit had come; 10 was delivered already. */
    reply_with((const int[]){9, 10}, 2, false);
    ck_assert_int_eq(take_seqs(seqs, 8), 1);
    ck_assert_int_eq(seqs[0], 9);
    /* 11 is still missing: the next read starts after 10. */
    tick_until_request(3);
    expect_request(3, "{\"after\":10,\"limit\":1000}");
    /* A page with more, which moved things on, asks for the next one at once. */
    reply_with((const int[]){11}, 1, true);
    expect_request(4, "{\"after\":12,\"limit\":1000}");
    ck_assert_int_eq(take_seqs(seqs, 8), 1);
    /* An error reply leaves it to the next tick; a page for another room is ignored. */
    reply("{\"error\":{\"message\":\"down\"}}");
    relay_repair_reply(&fx.r, "nope", "{}", 2);
    reply("not json");
    ck_assert_int_eq(fake_nats.requests, 4);
}
END_TEST

/*
 * A message delivered before the baseline reply whose commit never comes:
 * its seq can be at or below the baseline, so repair reads the newest page
 * below it once and delivers only what it was waiting for.
 */
START_TEST(repair_behind_baseline)
{
    fx.cfg.commit_repair_ms = 1;
    char id4[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", 4, id4);
    const char frame[] = "{\"type\":\"message\"}";
    ck_assert(relay_deliver_message(&fx.r, room, id4, frame, sizeof frame - 1));
    (void)take_seqs((int[8]){0}, 8);
    reply("{\"messages\":[],\"more\":false,\"last_seq\":5}");
    /* Poll the tick until the message has waited commit_repair_ms (1 ms). */
    int64_t deadline = mr_now_us() + 2000000;
    while (fake_nats.requests == 1 && mr_now_us() < deadline)
        relay_repair_tick(&fx.r);
    expect_request(2, "{\"before\":6,\"limit\":101}");
    /* The page holds 4 (awaited: delivered, as a commit) and 5 (not awaited: skipped). */
    reply_with((const int[]){4, 5}, 2, false);
    size_t n;
    char **f = fx_take(alice, &n);
    ck_assert_uint_eq(n, 1);
    json_t *j = fx_json(f, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "commit");
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg_id")), id4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 4);
    json_decref(j);
    fx_frames_free(f);
    /* Nothing waits any more: later ticks ask for nothing. */
    int before = fake_nats.requests;
    deadline = mr_now_us() + 5000;
    while (mr_now_us() < deadline)
        relay_repair_tick(&fx.r);
    ck_assert_int_eq(fake_nats.requests, before);
}
END_TEST

START_TEST(repair_off_without_jetstream)
{
    fx.cfg.jetstream = false;
    relay_conn *b = fx_conn(&fx, "bob");
    bool created;
    relay_room *other = fx_join(&fx, b, "s", &created)->room;
    ck_assert(created);
    int before = fake_nats.requests;
    relay_repair_room_created(&fx.r, other);
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id("s", 9, id);
    const char frame[] = "{\"type\":\"message\"}";
    ck_assert(relay_deliver_message(&fx.r, other, id, frame, sizeof frame - 1));
    relay_repair_commit(&fx.r, other);
    relay_repair_tick(&fx.r);
    ck_assert_int_eq(fake_nats.requests, before);
}
END_TEST

Suite *relay_repair_suite(void)
{
    Suite *s = suite_create("relay_repair");
    TCase *tc = tcase_create("repair");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, repair_gaps);
    tcase_add_test(tc, repair_behind_baseline);
    tcase_add_test(tc, repair_off_without_jetstream);
    suite_add_tcase(s, tc);
    return s;
}
