/*
 * Joins and resumes through the client dispatcher: a new room's join waits
 * for the server's confirmation without blocking (and fails when it does
 * not come), a join answered before its `left`, a history replay paced by
 * what the member reads, the frames held meanwhile bounded, a room that
 * waits for too many commits forgetting its oldest ids, a member that
 * joined after a fast-path delivery, and a publish refused without
 * randomness.
 */
#include "relay_suites.h"
#include "mr_time.h"
#include "relay_client.h"
#include "relay_deliver.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "relay_resume.h"

#include <check.h>
#include <dlfcn.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
    fx.r.nats_was_connected = true; /* no reconnect for relay_inbound_take to react to */
}

static void teardown(void)
{
    fx_free(&fx);
}

/* A frame from the client, as lws hands it over. */
static void client_sends(relay_conn *c, const char *text)
{
    ck_assert_int_eq(relay_client_receive(c, text, strlen(text), false, true), 0);
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* The frames queued for `c`, as "type[:id]" words separated by spaces; takes them. */
static void take_types(relay_conn *c, char *out, size_t cap)
{
    size_t n, used = 0;
    char **f = fx_take(c, &n);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        const char *id = str(j, "id");
        used += (size_t)snprintf(out + used, cap - used, "%s%s%s%s", i ? " " : "", str(j, "type"),
                                 id ? ":" : "", id ? id : "");
        json_decref(j);
    }
    fx_frames_free(f);
}

/* The confirmation token the relay asked NATS to echo for a new room. */
static void last_confirm(char *token, size_t cap)
{
    int i = fake_nats.publishes - 1;
    while (i >= 0 && strcmp(fake_nats.publish[i].subject, "confirm") != 0)
        i--;
    ck_assert_msg(i >= 0, "no subscription confirmation asked for");
    snprintf(token, cap, "%s", fake_nats.publish[i].reply);
}

START_TEST(join_waits_for_the_subscription)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    client_sends(a, "{\"type\":\"join\",\"id\":\"a1\",\"room\":\"r\"}");
    char token[256], types[512];
    last_confirm(token, sizeof token);
    ck_assert_uint_eq(a->qlen, 0); /* no `joined` before the server has the interest */
    relay_room *room = relay_room_find(&fx.r.rooms, "r", 1);
    ck_assert(room && room->subscribing);
    /* A second member joins meanwhile, and a message arrives: both wait. */
    client_sends(b, "{\"type\":\"join\",\"id\":\"b1\",\"room\":\"r\"}");
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", 1, id);
    const char frame[] = "{\"type\":\"message\",\"data\":1}";
    ck_assert(relay_deliver_message(&fx.r, room, id, frame, sizeof frame - 1));
    ck_assert_uint_eq(b->qlen, 0);
    /* A confirmation of an earlier subscription of the same name changes nothing. */
    fake_nats_deliver("_INBOX.fake.s.999.r", "");
    relay_inbound_take(&fx.r);
    ck_assert_uint_eq(a->qlen, 0);
    int requests = fake_nats.requests;
    char subject[300];
    snprintf(subject, sizeof subject, "_INBOX.fake.%s", token);
    fake_nats_deliver(subject, "");
    relay_inbound_take(&fx.r);
    ck_assert(!room->subscribing);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "joined:a1 message");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "joined:b1 message");
    /* Presence and repair start once the room is subscribed: a snapshot and a baseline. */
    ck_assert_int_eq(fake_nats.requests, requests + 2);
    /* A third join of the subscribed room is answered at once. */
    relay_conn *c = fx_conn(&fx, "carol");
    client_sends(c, "{\"type\":\"join\",\"id\":\"c1\",\"room\":\"r\"}");
    take_types(c, types, sizeof types);
    ck_assert_str_eq(types, "joined:c1");
}
END_TEST

START_TEST(join_fails_when_the_subscription_is_not_confirmed)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    client_sends(a, "{\"type\":\"join\",\"id\":\"a1\",\"room\":\"r\"}");
    client_sends(b, "{\"type\":\"join\",\"id\":\"b1\",\"room\":\"r\",\"since\":3}");
    relay_room *room = relay_room_find(&fx.r.rooms, "r", 1);
    ck_assert_ptr_nonnull(room);
    relay_client_tick(&fx.r); /* not due yet */
    ck_assert_ptr_nonnull(relay_room_find(&fx.r.rooms, "r", 1));
    room->subscribe_deadline_us = mr_now_us() - 1;
    relay_client_tick(&fx.r);
    ck_assert_ptr_null(relay_room_find(&fx.r.rooms, "r", 1));
    ck_assert_uint_eq(fx.r.rooms.subscribing, 0);
    char types[512];
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:a1");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "error:b1");
    ck_assert_ptr_null(a->memberships);
    ck_assert_uint_eq(b->room_count, 0);
    /* NATS down at the join: refused at once. */
    fake_nats.connected = false;
    client_sends(a, "{\"type\":\"join\",\"id\":\"a2\",\"room\":\"s\"}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:a2");
    ck_assert_ptr_null(relay_room_find(&fx.r.rooms, "s", 1));
}
END_TEST

/* Confirm the subscription the relay asked for last. */
static void confirm_last(void)
{
    char token[256], subject[300];
    last_confirm(token, sizeof token);
    snprintf(subject, sizeof subject, "_INBOX.fake.%s", token);
    fake_nats_deliver(subject, "");
    relay_inbound_take(&fx.r);
}

/*
 * join(since) -> leave -> join(since) before the history came: the first
 * join is answered before the `left`, the first reply is dropped, and the
 * second join gets its own `joined` and the history once.
 */
START_TEST(leave_answers_the_pending_join_first)
{
    relay_conn *a = fx_conn(&fx, "alice");
    client_sends(a, "{\"type\":\"join\",\"id\":\"j1\",\"room\":\"r\",\"since\":0}");
    confirm_last();
    char first[256], types[512];
    snprintf(first, sizeof first, "%s", fake_nats_last_request()->reply);
    ck_assert_str_eq(fake_nats_last_request()->subject, "meridian.history.r");
    ck_assert_uint_eq(a->qlen, 0);
    client_sends(a, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"r\"}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "joined:j1 left:l");
    client_sends(a, "{\"type\":\"join\",\"id\":\"j2\",\"room\":\"r\",\"since\":0}");
    confirm_last();
    char second[256];
    snprintf(second, sizeof second, "%s", fake_nats_last_request()->reply);
    char *text = fx_history("r", 1, 3, false, 3, 6);
    relay_resume_reply(&fx.r, first, text, strlen(text));
    ck_assert_uint_eq(a->qlen, 0);
    relay_resume_reply(&fx.r, second, text, strlen(text));
    free(text);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "joined:j2 message message message");
}
END_TEST

/*
 * 600 messages of 2 KB (1.2 MB) after `since`, in two pages: never more than
 * half of max_outbound_bytes is queued, the member is never closed, and it
 * gets joined, the 600 in order, then the live messages held meanwhile,
 * minus a commit the history already covered.
 */
START_TEST(replay_is_paced_by_the_reader)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    relay_resume_start(&fx.r, a, m, 0, NULL);
    char token[256];
    snprintf(token, sizeof token, "%s", fake_nats_last_request()->reply);
    char *text = fx_history("r", 1, 300, true, 600, 2000);
    relay_resume_reply(&fx.r, token, text, strlen(text));
    free(text);
    size_t budget = (size_t)fx.cfg.limits.max_outbound_bytes / 2;
    int expect = 1;
    bool joined = false, second_page = false, live_seen = false;
    char live_id[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", 1000, live_id);
    for (int rounds = 0; rounds < 100 && !live_seen; rounds++) {
        ck_assert_int_eq(a->close_code, 0);
        ck_assert_uint_le(a->qbytes, budget);
        if (rounds == 1) {
            /* Live traffic meanwhile: a new message, and the commit of one in the plan. */
            char live[128];
            int ln =
                snprintf(live, sizeof live, "{\"type\":\"message\",\"msg_id\":\"%s\"}", live_id);
            ck_assert(relay_deliver_message(&fx.r, m->room, live_id, live, (size_t)ln));
            char id[MR_MSG_ID_LEN + 1];
            fx_msg_id("r", 450, id);
            json_t *stored = json_pack("{s:s, s:i}", "type", "message", "seq", 450);
            relay_deliver_commit(&fx.r, m->room, id, 450, stored);
            json_decref(stored);
        }
        size_t n;
        char **f = fx_take(a, &n);
        for (size_t i = 0; i < n; i++) {
            json_t *j = fx_json(f, i);
            if (expect > 600) {
                /* After the history: the live message held meanwhile, and nothing else. */
                ck_assert_str_eq(str(j, "msg_id"), live_id);
                ck_assert_uint_eq(i, n - 1);
                live_seen = true;
            } else if (!joined) {
                ck_assert_str_eq(str(j, "type"), "joined");
                ck_assert(json_is_true(json_object_get(j, "recovered")));
                ck_assert_int_eq(json_integer_value(json_object_get(j, "history")), 600);
                joined = true;
            } else {
                ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), expect);
                expect++;
            }
            json_decref(j);
        }
        fx_frames_free(f);
        if (!second_page && fake_nats.requests > 1) {
            /* The second page is asked for only once the first one is sent. */
            ck_assert_int_eq(expect, 301);
            const fake_nats_call *req = fake_nats_last_request();
            ck_assert_str_eq(req->body, "{\"after\":300,\"limit\":300}");
            text = fx_history("r", 301, 600, false, 600, 2000);
            relay_resume_reply(&fx.r, req->reply, text, strlen(text));
            free(text);
            second_page = true;
        }
        relay_resume_pump(&fx.r, a);
    }
    ck_assert_int_eq(expect, 601);
    /* The live message came last; the commit of 450 was the history's to send. */
    ck_assert(live_seen);
    ck_assert_uint_eq(a->qlen, 0);
    ck_assert_uint_eq(a->replays, 0);
    ck_assert_ptr_null(m->resume);
}
END_TEST

/* A live message of about 1 KB for room r, numbered i. */
static void live_kb(relay_room *room, int i)
{
    char id[MR_MSG_ID_LEN + 1], frame[1300], data[1100];
    fx_msg_id("r", i, id);
    memset(data, 'q', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    int n = snprintf(frame, sizeof frame, "{\"type\":\"message\",\"data\":\"%s\"}", data);
    relay_deliver_message(&fx.r, room, id, frame, (size_t)n);
}

/*
 * Commits that arrive before the history (a member resuming just after a
 * burst) are held whatever their size, and dropped once the history turns
 * out to hold them; a replay slower than the room's live traffic after that
 * is bounded: the member is a slow consumer.
 */
START_TEST(held_frames_are_bounded)
{
    fx.cfg.limits.max_outbound_bytes = 8192;
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    relay_resume_start(&fx.r, a, m, 0, NULL);
    char token[256];
    snprintf(token, sizeof token, "%s", fake_nats_last_request()->reply);
    for (int i = 1; i <= 20; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", i, id);
        json_t *stored =
            json_pack("{s:s, s:s, s:i, s:s}", "type", "message", "msg_id", id, "seq", i, "data",
                      "0123456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901");
        relay_deliver_commit(&fx.r, m->room, id, i, stored);
        json_decref(stored);
    }
    ck_assert_uint_gt(m->held_bytes, 6000); /* held, not closed */
    ck_assert_int_eq(a->close_code, 0);
    /* History 1..20 of 1 KB each: the queue takes half of 8 KB, the rest waits. */
    char *text = fx_history("r", 1, 20, false, 20, 1000);
    relay_resume_reply(&fx.r, token, text, strlen(text));
    free(text);
    ck_assert_uint_eq(m->held_bytes, 0); /* the 20 commits are the history's */
    ck_assert_int_eq(a->close_code, 0);
    ck_assert_ptr_nonnull(m->resume);
    for (int i = 21; i <= 40 && !a->close_code; i++) {
        live_kb(m->room, i);
        ck_assert_uint_le(m->held_bytes, 8192);
    }
    ck_assert_int_eq(a->close_code, MR_CLOSE_SLOW_CONSUMER);
}
END_TEST

/*
 * A room that waits for more commits than it may remember keeps delivering
 * live and forgets its oldest ids: their commits bring those messages again
 * (with their seq), as docs/protocol.md says; the others are commits.
 */
START_TEST(oldest_ids_forgotten_when_too_many_wait)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_room *room = fx_join(&fx, a, "r", NULL)->room;
    fx.r.rooms.dedup_window = 16;
    for (int i = 1; i <= 20; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", i, id);
        const char frame[] = "{\"type\":\"message\"}";
        ck_assert(relay_deliver_message(&fx.r, room, id, frame, sizeof frame - 1));
    }
    ck_assert_uint_eq(room->awaiting.count, 16);
    fx_discard(a);
    for (int i = 1; i <= 20; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", i, id);
        json_t *stored = json_pack("{s:s, s:s, s:i}", "type", "message", "msg_id", id, "seq", i);
        relay_deliver_commit(&fx.r, room, id, i, stored);
        json_decref(stored);
    }
    char types[2048];
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "message message message message commit commit commit commit commit "
                            "commit commit commit commit commit commit commit commit commit commit "
                            "commit");
}
END_TEST

/* A member that joined after a fast-path delivery gets the message itself from its commit. */
START_TEST(later_member_gets_the_message_not_a_commit)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    relay_room *room = fx_join(&fx, a, "r", NULL)->room;
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", 1, id);
    const char frame[] = "{\"type\":\"message\"}";
    ck_assert(relay_deliver_message(&fx.r, room, id, frame, sizeof frame - 1));
    relay_member *mb = fx_join(&fx, b, "r", NULL);
    relay_resume_start(&fx.r, b, mb, 0, NULL);
    char token[256];
    snprintf(token, sizeof token, "%s", fake_nats_last_request()->reply);
    /* History read before the message was stored: empty. */
    relay_resume_reply(&fx.r, token, "{\"messages\":[],\"more\":false,\"last_seq\":0}", 43);
    json_t *stored = json_pack("{s:s, s:s, s:i}", "type", "message", "msg_id", id, "seq", 1);
    relay_deliver_commit(&fx.r, room, id, 1, stored);
    json_decref(stored);
    char types[512];
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "message commit");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "joined message");
}
END_TEST

/* RAND_bytes, failing on demand: the relay's calls reach this one first. */
static bool rand_fails;

int RAND_bytes(unsigned char *buf, int num)
{
    if (rand_fails)
        return 0;
    int (*real)(unsigned char *, int) =
        (int (*)(unsigned char *, int))dlsym(RTLD_NEXT, "RAND_bytes");
    return real(buf, num);
}

/*
 * A publish without `mid` needs random bytes for its identity: without
 * them every such publish would share one msg_id, and the stream would
 * acknowledge and drop all but the first. It is refused instead.
 */
START_TEST(publish_without_randomness_is_refused)
{
    fx.cfg.jetstream = false; /* core publishes: the fake NATS records them */
    relay_conn *a = fx_conn(&fx, "alice");
    mr_ratelimit_init(&a->rl, 1000, 1000, mr_now_us());
    fx_join(&fx, a, "r", NULL);
    rand_fails = true;
    client_sends(a, "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"data\":1}");
    client_sends(a, "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"data\":2}");
    rand_fails = false;
    ck_assert_int_eq(fake_nats.publishes, 0);
    char types[512];
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:p1 error:p2");
    /* With a mid, or with randomness back, publishes go out. */
    client_sends(a, "{\"type\":\"publish\",\"id\":\"p3\",\"room\":\"r\",\"data\":3}");
    ck_assert_int_eq(fake_nats.publishes, 1);
}
END_TEST

Suite *relay_join_suite(void)
{
    Suite *s = suite_create("relay_join");
    TCase *tc = tcase_create("join");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, join_waits_for_the_subscription);
    tcase_add_test(tc, join_fails_when_the_subscription_is_not_confirmed);
    tcase_add_test(tc, leave_answers_the_pending_join_first);
    tcase_add_test(tc, replay_is_paced_by_the_reader);
    tcase_add_test(tc, held_frames_are_bounded);
    tcase_add_test(tc, oldest_ids_forgotten_when_too_many_wait);
    tcase_add_test(tc, later_member_gets_the_message_not_a_commit);
    tcase_add_test(tc, publish_without_randomness_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
