/*
 * Once per member, whatever arrives late or twice: commits after a long
 * history outage, repeated and out-of-order commits, a fast-path copy after
 * its commit, a resume's `since`, and replies matched to the membership that
 * asked (docs/protocol.md, "What a client may see twice").
 */
#include "relay_suites.h"
#include "relay_deliver.h"
#include "relay_fixture.h"
#include "relay_repair.h"
#include "relay_resume.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
}

static void teardown(void)
{
    fx_free(&fx);
}

/* The frame a relay forwards for message i of `room` (fast path). */
static bool fast(relay_room *room, int i)
{
    char id[MR_MSG_ID_LEN + 1], frame[200];
    fx_msg_id(room->name, i, id);
    int n = snprintf(frame, sizeof frame,
                     "{\"type\":\"message\",\"room\":\"%s\",\"msg_id\":\"%s\",\"data\":%d}",
                     room->name, id, i);
    return relay_deliver_message(&fx.r, room, id, frame, (size_t)n);
}

/* The commit of message i with its seq, as the control plane publishes it. */
static void commit(relay_room *room, int i, int64_t seq)
{
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id(room->name, i, id);
    json_t *stored = json_pack("{s:s, s:s, s:s, s:I, s:i}", "type", "message", "room", room->name,
                               "msg_id", id, "seq", (json_int_t)seq, "data", i);
    relay_deliver_commit(&fx.r, room, id, seq, stored);
    relay_repair_commit(&fx.r, room);
    json_decref(stored);
}

/* Frames queued for `c`, counted by type; takes them. */
typedef struct counts {
    size_t messages, commits, joined, other;
} counts;

static counts take_counts(relay_conn *c)
{
    counts k = {0};
    size_t n;
    char **f = fx_take(c, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "message") == 0)
            k.messages++;
        else if (strcmp(type, "commit") == 0)
            k.commits++;
        else if (strcmp(type, "joined") == 0)
            k.joined++;
        else
            k.other++;
        json_decref(j);
    }
    fx_frames_free(f);
    return k;
}

/*
 * A history outage: 5,000 messages reach the members on the fast path, and
 * their commits only come afterwards, in a burst. Each is a `commit` frame,
 * never the message again, however many messages the outage held back.
 */
START_TEST(commits_after_a_long_outage_are_commits)
{
    enum { N = 5000 };
    relay_conn *a = fx_conn(&fx, "alice");
    relay_room *room = fx_join(&fx, a, "r", NULL)->room;
    for (int i = 1; i <= N; i++)
        ck_assert(fast(room, i));
    counts k = take_counts(a);
    ck_assert_uint_eq(k.messages, N);
    for (int i = 1; i <= N; i++)
        commit(room, i, i);
    k = take_counts(a);
    ck_assert_msg(k.messages == 0, "%zu messages delivered again from their commits", k.messages);
    ck_assert_uint_eq(k.commits, N);
}
END_TEST

/*
 * A commit published again (a control plane restarted before it acked the
 * stream), at once or after thousands of other messages: members already
 * have it, so it goes nowhere.
 */
START_TEST(repeated_commits_reach_nobody)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_room *room = fx_join(&fx, a, "r", NULL)->room;
    ck_assert(fast(room, 1));
    commit(room, 1, 1);
    commit(room, 1, 1);
    counts k = take_counts(a);
    ck_assert_uint_eq(k.messages, 1);
    ck_assert_msg(k.commits == 1, "%zu commit frames for one message", k.commits);
    /* A message first seen in its commit, repeated too. */
    commit(room, 2, 2);
    commit(room, 2, 2);
    k = take_counts(a);
    ck_assert_uint_eq(k.messages, 1);
    ck_assert_uint_eq(k.commits, 0);
    for (int i = 3; i <= 3000; i++) {
        ck_assert(fast(room, i));
        commit(room, i, i);
    }
    fx_discard(a);
    commit(room, 1, 1);
    commit(room, 2, 2);
    k = take_counts(a);
    ck_assert_msg(k.messages == 0 && k.commits == 0,
                  "repeats after 3,000 messages: %zu messages, %zu commits", k.messages, k.commits);
}
END_TEST

/* A `have` array naming messages from..to of `room`. */
static json_t *have_ids(const char *room, int from, int to)
{
    json_t *a = json_array();
    char id[MR_MSG_ID_LEN + 1];
    for (int i = from; i <= to; i++) {
        fx_msg_id(room, i, id);
        json_array_append_new(a, json_string(id));
    }
    return a;
}

/*
 * A member whose join said it has messages 1 and 2 (`have`: got on another
 * relay, without their seq): the fast-path copy of 1 (a retry) does not
 * reach it, and both commits come to it as `commit` frames, while a member
 * without `have` gets the messages. A connection remembers at most
 * MR_HAVE_MAX such ids over all its rooms: the ids beyond come as messages.
 */
START_TEST(have_turns_messages_into_commits)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    relay_room *room = m->room;
    json_t *have = have_ids("r", 1, 2);
    relay_deliver_have(m, have);
    json_decref(have);
    ck_assert_uint_eq(a->have_ids, 2);
    fx_join(&fx, b, "r", NULL);
    ck_assert(fast(room, 1));
    counts k = take_counts(a);
    ck_assert_msg(k.messages == 0, "a retried message it has reached it");
    ck_assert_uint_eq(take_counts(b).messages, 1);
    commit(room, 1, 1);
    commit(room, 2, 2);
    k = take_counts(a);
    ck_assert_msg(k.messages == 0 && k.commits == 2, "%zu messages, %zu commits", k.messages,
                  k.commits);
    k = take_counts(b);
    ck_assert_uint_eq(k.commits, 1);  /* it got 1 on the fast path */
    ck_assert_uint_eq(k.messages, 1); /* and 2 only from its commit */
    ck_assert_uint_eq(a->have_ids, 0);

    /* The bound: 1000 ids in one room and 1000 in another keep MR_HAVE_MAX in all. */
    relay_member *m2 = fx_join(&fx, a, "s", NULL), *m3 = fx_join(&fx, a, "t", NULL);
    have = have_ids("s", 1, 1000);
    relay_deliver_have(m2, have);
    json_decref(have);
    have = have_ids("t", 1, 1000);
    relay_deliver_have(m3, have);
    json_decref(have);
    ck_assert_uint_eq(a->have_ids, MR_HAVE_MAX);
    ck_assert_uint_eq(m3->have->count, MR_HAVE_MAX - 1000);
    fx_close(&fx, a);
}
END_TEST

/*
 * The commit overtook the message (another region's fast path is slower
 * than its commit): the member got the message with its seq, and the
 * fast-path copy that comes later, even much later (a publisher retrying
 * through another relay), is dropped.
 */
START_TEST(fast_path_copy_after_its_commit_is_dropped)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_room *room = fx_join(&fx, a, "r", NULL)->room;
    commit(room, 1, 1);
    ck_assert(!fast(room, 1));
    for (int i = 2; i <= 3000; i++) {
        ck_assert(fast(room, i));
        commit(room, i, i);
    }
    ck_assert(!fast(room, 1));
    counts k = take_counts(a);
    ck_assert_uint_eq(k.messages, 3000);
}
END_TEST

/*
 * Commits from several control planes arrive out of seq order, and a
 * history page (repair) repeats some of them: each member gets one commit
 * per message.
 */
START_TEST(out_of_order_commits_and_a_repair_page_once_each)
{
    relay_conn *a = fx_conn(&fx, "alice");
    bool created;
    relay_room *room = fx_join(&fx, a, "r", &created)->room;
    ck_assert(created);
    relay_repair_room_created(&fx.r, room);
    relay_repair_reply(&fx.r, "r", "{\"messages\":[],\"more\":false,\"last_seq\":0}", 43);
    for (int i = 1; i <= 6; i++)
        ck_assert(fast(room, i));
    fx_discard(a);
    static const int order[] = {2, 1, 4, 3, 6, 5};
    for (int i = 0; i < 6; i++)
        commit(room, order[i], order[i]);
    /* The history page repair asks for when it sees a gap, arriving after the commits. */
    json_t *msgs = json_array();
    for (int i = 1; i <= 6; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", i, id);
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:i}", "type", "message", "room",
                                              "r", "msg_id", id, "seq", i));
    }
    json_t *page = json_pack("{s:o, s:b, s:i}", "messages", msgs, "more", 0, "last_seq", 6);
    char *text = json_dumps(page, JSON_COMPACT);
    relay_repair_reply(&fx.r, "r", text, strlen(text));
    free(text);
    json_decref(page);
    counts k = take_counts(a);
    ck_assert_uint_eq(k.messages, 0);
    ck_assert_msg(k.commits == 6, "%zu commit frames for 6 messages", k.commits);
}
END_TEST

/*
 * A member resumes from since=10 while history cannot be read: whatever
 * commit at or below 10 arrives later (a repeat, in a room new on this
 * relay) is not sent to it; it said it has those.
 */
START_TEST(since_holds_when_history_fails)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    fake_nats.connected = false;
    relay_resume_start(&fx.r, a, m, 10, NULL);
    fake_nats.connected = true;
    counts k = take_counts(a);
    ck_assert_uint_eq(k.joined, 1);
    commit(m->room, 5, 5);
    commit(m->room, 10, 10);
    k = take_counts(a);
    ck_assert_msg(k.messages == 0, "%zu messages at or below since", k.messages);
    commit(m->room, 11, 11);
    k = take_counts(a);
    ck_assert_uint_eq(k.messages, 1);
}
END_TEST

/* Leave one room as a `leave` frame does (fx_close leaves them all). */
static void leave(relay_conn *c, relay_member *m)
{
    relay_member **pp = &c->memberships;
    while (*pp != m)
        pp = &(*pp)->conn_next;
    *pp = m->conn_next;
    c->room_count--;
    relay_room *room = m->room;
    bool last;
    if (relay_room_leave(&fx.r.rooms, m, c->user, &last))
        relay_room_destroy(&fx.r.rooms, room);
}

/*
 * join(since) -> leave -> join(since) before the first history reply: the
 * first reply belongs to the first membership, which is gone; the second
 * join is answered from its own reply, with its own id.
 */
START_TEST(replies_go_to_the_membership_that_asked)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m1 = fx_join(&fx, a, "r", NULL);
    json_t *id1 = json_string("first"), *id2 = json_string("second");
    relay_resume_start(&fx.r, a, m1, 0, id1);
    char token1[256];
    snprintf(token1, sizeof token1, "%s", fake_nats_last_request()->reply);
    leave(a, m1);
    fx_discard(a); /* what the first join and the leave answered */
    relay_member *m2 = fx_join(&fx, a, "r", NULL);
    relay_resume_start(&fx.r, a, m2, 0, id2);
    char token2[256];
    snprintf(token2, sizeof token2, "%s", fake_nats_last_request()->reply);
    ck_assert_str_ne(token1, token2);
    char *page = fx_history("r", 1, 3, false, 3, 6);
    relay_resume_reply(&fx.r, token1, page, strlen(page));
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_msg(n == 0, "the first join's reply reached the second membership: %s", f[0]);
    fx_frames_free(f);
    relay_resume_reply(&fx.r, token2, page, strlen(page));
    f = fx_take(a, &n);
    ck_assert_uint_eq(n, 4);
    json_t *j = fx_json(f, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "joined");
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "second");
    json_decref(j);
    fx_frames_free(f);
    free(page);
    json_decref(id1);
    json_decref(id2);
}
END_TEST

Suite *relay_once_suite(void)
{
    Suite *s = suite_create("relay_once");
    TCase *tc = tcase_create("once");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, commits_after_a_long_outage_are_commits);
    tcase_add_test(tc, repeated_commits_reach_nobody);
    tcase_add_test(tc, have_turns_messages_into_commits);
    tcase_add_test(tc, fast_path_copy_after_its_commit_is_dropped);
    tcase_add_test(tc, out_of_order_commits_and_a_repair_page_once_each);
    tcase_add_test(tc, since_holds_when_history_fails);
    tcase_add_test(tc, replies_go_to_the_membership_that_asked);
    suite_add_tcase(s, tc);
    return s;
}
