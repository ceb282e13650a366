/*
 * The message path end to end: clients on real relays, a real nats-server
 * with JetStream, meridian-control and a real PostgreSQL. Each test checks
 * one of Meridian's promises: acknowledged messages are never lost, history
 * holds each message exactly once with contiguous seqs, every member sees
 * the same seq for a message, and resume is gap-free or says it is not.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_member.h"
#include "mr_test_pg.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static char *tmp;
static mr_test_nats nats;
static mr_test_pg pg;
static ctl_proc ctl;
static mr_test_relay relays[2];

/* Two relays on one nats-server with JetStream, meridian-control and PostgreSQL. */
static void setup_with(const char *relay2_extra)
{
    (void)signal(SIGPIPE, SIG_IGN); /* writes to a killed relay must fail, not kill the test */
    tmp = mr_test_tmpdir("history");
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "test", "[\"test\"]",
                  "\"batch\":{\"max_messages\":200,\"max_wait_ms\":20},"
                  /* A pull abandoned on a loaded machine is redelivered in 5 s, not 30. */
                  "\"consumer\":{\"ack_wait_ms\":5000}");
    ctl_proc_start(&ctl, NULL);
    const char *limits = "\"publish_rate\":100000,\"publish_burst\":100000";
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, limits, "");
    mr_test_relay_config(&relays[1], tmp, "test", "relay-2", nats.url, limits, relay2_extra);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
    mr_test_relay_start(&relays[1], MERIDIAN_RELAY_BIN);
}

static void setup(void)
{
    /* relay-2 answers resumes with at most 5 messages, to test paging. */
    setup_with("\"resume\":{\"limit\":5}");
}

/* Both relays with the default resume settings: members fail over between them. */
static void setup_faults(void)
{
    setup_with("");
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        mr_test_relay_stop_clean(&relays[i]);
    ctl_proc_stop(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

static int64_t room_count(const char *room)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE room = '%s'", room);
    return ctl_test_sql_int(&pg, sql);
}

/* Wait until `room` holds at least `want` messages; returns how many it holds. */
static int64_t wait_room_at_least(const char *room, int64_t want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms, n = -1;
    while (mr_test_now_ms() < deadline) {
        n = room_count(room);
        if (n >= want)
            break;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return n;
}

static void wait_room_count(const char *room, int64_t want, int timeout_ms)
{
    int64_t n = wait_room_at_least(room, want, timeout_ms);
    ck_assert_msg(n == want, "room %s holds %lld messages, want %lld", room, (long long)n,
                  (long long)want);
}

static bool in_history(const char *room, const char *msg_id)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM message_ids WHERE room = '%s' AND msg_id = '%s'::uuid", room,
             msg_id);
    return ctl_test_sql_int(&pg, sql) == 1;
}

/* Pull the string or integer value of `key` out of a frame. */
static json_t *frame_json(const char *frame)
{
    json_t *j = json_loads(frame, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", frame);
    return j;
}

/* Read frames until `n` messages have their seq (from a commit or a message with seq). */
static void collect_seqs(mr_ws *ws, json_t *seqs, size_t n, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (json_object_size(seqs) < n) {
        int left = (int)(deadline - mr_test_now_ms());
        ck_assert_msg(left > 0, "only %zu of %zu seqs seen", json_object_size(seqs), n);
        char *p;
        int cc;
        int op = mr_ws_recv(ws, left, &p, NULL, &cc);
        ck_assert_msg(op == 1, "%s while collecting seqs (%zu of %zu)",
                      op == -1 ? "time-out" : "connection ended", json_object_size(seqs), n);
        json_t *j = frame_json(p);
        json_t *seq = json_object_get(j, "seq");
        json_t *id = json_object_get(j, "msg_id");
        if (json_is_integer(seq) && json_is_string(id))
            json_object_set(seqs, json_string_value(id), seq);
        json_decref(j);
        free(p);
    }
}

START_TEST(exactly_once_with_duplicates_from_two_relays)
{
    mr_ws a1, a2, b;
    mr_test_hello(&a1, &relays[0], "alice", NULL);
    mr_test_hello(&a2, &relays[1], "alice", NULL); /* same user: same identity for a mid */
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a1, "dup");
    mr_test_join(&a2, "dup");
    mr_test_join(&b, "dup");
    char mid[32];
    for (int i = 0; i < 50; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        mr_test_publish(&a1, "dup", mid, "1");
        mr_test_publish(&a1, "dup", mid, "1"); /* retried on the same relay */
        mr_test_publish(&a2, "dup", mid, "1"); /* and through another relay */
    }
    wait_room_count("dup", 50, 20000);
    /* Nothing more arrives later: count again after the members saw every commit. */
    json_t *seen_a = json_object(), *seen_b = json_object();
    collect_seqs(&a1, seen_a, 50, 40000);
    collect_seqs(&b, seen_b, 50, 40000);
    ck_assert_int_eq(ctl_test_check_history(&pg), 50);
    ck_assert_int_eq(room_count("dup"), 50);
    /* Every member sees the same seq for the same message. */
    ck_assert(json_equal(seen_a, seen_b));
    json_decref(seen_a);
    json_decref(seen_b);
    mr_ws_close(&a1);
    mr_ws_close(&a2);
    mr_ws_close(&b);
}
END_TEST

START_TEST(retry_after_reconnect_is_stored_once)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&a, "retry");
    mr_test_join(&b, "retry");
    /* Publish, then drop the connection without waiting for the ack. */
    mr_test_publish(&a, "retry", "lost-ack", "\"first try\"");
    mr_ws_close(&a);
    mr_test_hello(&a, &relays[1], "alice", NULL);
    mr_test_join(&a, "retry");
    mr_test_publish(&a, "retry", "lost-ack", "\"second try\"");
    mr_test_expect(&a, "\"type\":\"ack\"");
    mr_test_publish(&a, "retry", "after", "\"after\"");
    mr_test_expect(&a, "\"mid\":\"after\"");
    wait_room_count("retry", 2, 20000);
    ck_assert_int_eq(ctl_test_check_history(&pg), 2);
    /* b saw the retried message once: the next message after it is "after". */
    char *m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "lost-ack"), "%s", m ? m : "nothing");
    free(m);
    m = mr_test_next_message(&b, 5000);
    ck_assert_msg(m && strstr(m, "\"mid\":\"after\""), "%s", m ? m : "nothing");
    free(m);
    mr_ws_close(&a);
    mr_ws_close(&b);
}
END_TEST

/* Publish `n` messages to `room` as `user`, wait until all are in history. */
static void publish_committed(mr_test_relay *rp, const char *user, const char *room, int n,
                              int64_t total_after)
{
    mr_ws p;
    mr_test_hello(&p, rp, user, NULL);
    mr_test_join(&p, room);
    char mid[32], data[64];
    for (int i = 0; i < n; i++) {
        snprintf(mid, sizeof mid, "%s-%d", user, i);
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        mr_test_publish(&p, room, mid, data);
    }
    wait_room_count(room, total_after, 20000);
    mr_ws_close(&p);
}

START_TEST(resume_delivers_exactly_the_missed_messages)
{
    publish_committed(&relays[0], "early", "resume", 3, 3);
    /* The member comes back on relay-1 with since=3 after 20 more messages. */
    publish_committed(&relays[0], "pub", "resume", 20, 23);
    mr_ws m;
    mr_test_hello(&m, &relays[0], "member", NULL);
    mr_ws_send_text(&m, "{\"type\":\"join\",\"id\":\"r1\",\"room\":\"resume\",\"since\":3}");
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 10000);
    ck_assert_msg(f && strstr(f, "\"recovered\":true") && strstr(f, "\"id\":\"r1\""), "%s",
                  f ? f : "no joined");
    free(f);
    char *first = NULL;
    for (int i = 0; i < 20; i++) {
        char *msg = mr_test_next_message(&m, 5000);
        ck_assert_msg(msg != NULL, "history message %d missing", i);
        json_t *j = frame_json(msg);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 4 + i);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "data"), "i")), i);
        json_decref(j);
        if (i == 0)
            first = msg;
        else
            free(msg);
    }
    /*
     * A commit for a message the resume already sent may still be on its
     * way (the room is new on this relay, so it has no dedup state for it):
     * it must not reach the member a second time.
     */
    json_t *fj = frame_json(first);
    json_t *late = json_pack("{s:O,s:I,s:O}", "msg_id", json_object_get(fj, "msg_id"), "seq",
                             (json_int_t)4, "message", fj);
    char *late_text = json_dumps(late, JSON_COMPACT);
    natsConnection *nc = ctl_test_nats(nats.url);
    ck_assert_int_eq(natsConnection_PublishString(nc, "meridian.commit.resume", late_text),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_Flush(nc), NATS_OK);
    natsConnection_Destroy(nc);
    free(late_text);
    json_decref(late);
    json_decref(fj);
    free(first);
    /* Nothing else: a live message comes next. */
    mr_ws live;
    mr_test_hello(&live, &relays[0], "pub", NULL);
    mr_test_join(&live, "resume");
    mr_test_publish(&live, "resume", "live-1", "\"live\"");
    char *msg = mr_test_next_message(&m, 5000);
    ck_assert_msg(msg && strstr(msg, "live-1"), "%s", msg ? msg : "nothing");
    free(msg);
    mr_ws_close(&m);
    mr_ws_close(&live);
}
END_TEST

/* The next `message` or `commit` frame (acks and presence skipped), parsed; NULL on time-out. */
static json_t *next_delivery(mr_ws *ws, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        char *p;
        int cc;
        if (left <= 0 || mr_ws_recv(ws, left, &p, NULL, &cc) != 1)
            return NULL;
        json_t *j = frame_json(p);
        free(p);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && (strcmp(type, "message") == 0 || strcmp(type, "commit") == 0))
            return j;
        json_decref(j);
    }
}

/* Assert that `j` is a frame of `type` for `msg_id` with `seq` (0: no seq), and free it. */
static void expect_delivery(json_t *j, const char *type, const char *msg_id, int64_t seq)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    ck_assert_msg(j != NULL, "no %s for %s", type, msg_id);
    ck_assert_msg(strcmp(json_string_value(json_object_get(j, "type")), type) == 0 &&
                      strcmp(json_string_value(json_object_get(j, "msg_id")), msg_id) == 0,
                  "want %s of %s, got %s", type, msg_id, text);
    json_t *s = json_object_get(j, "seq");
    ck_assert_msg(seq ? json_integer_value(s) == seq : s == NULL, "want seq %lld: %s",
                  (long long)seq, text);
    free(text);
    json_decref(j);
}

/* The msg_id of the next `message` frame, which must come without a seq (its commit is not out). */
static char *next_uncommitted(mr_ws *ws)
{
    json_t *j = next_delivery(ws, 10000);
    ck_assert_msg(j != NULL, "no message");
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "message");
    ck_assert_msg(json_object_get(j, "seq") == NULL, "a seq although control is down");
    char *id = strdup(json_string_value(json_object_get(j, "msg_id")));
    json_decref(j);
    return id;
}

/*
 * A member got two messages without their seq (the control plane was down),
 * then its connection ended. It resumes on the other relay with `since` and
 * `have` naming the first: the history brings that one as a `commit` (its
 * seq), and only the other as a `message`: nothing twice across the two
 * sessions (before `have`, the chaos suite's relay-kill counted such repeats).
 */
START_TEST(resume_with_have_sends_commits_for_what_the_member_has)
{
    publish_committed(&relays[0], "early", "have", 3, 3);
    mr_ws m, p;
    mr_test_hello(&m, &relays[0], "member", NULL);
    mr_test_join(&m, "have");
    ctl_proc_stop(&ctl);
    mr_test_hello(&p, &relays[0], "pub", NULL);
    mr_test_join(&p, "have");
    mr_test_publish(&p, "have", "x", "\"x\"");
    mr_test_publish(&p, "have", "y", "\"y\"");
    char *x = next_uncommitted(&m), *y = next_uncommitted(&m);
    mr_ws_close(&m);
    ctl_proc_start(&ctl, NULL);
    wait_room_count("have", 5, 20000);

    mr_test_hello(&m, &relays[1], "member", NULL);
    char join[200];
    snprintf(join, sizeof join,
             "{\"type\":\"join\",\"id\":\"r\",\"room\":\"have\",\"since\":3,\"have\":[\"%s\"]}", x);
    mr_ws_send_text(&m, join);
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 10000);
    ck_assert_msg(f && strstr(f, "\"recovered\":true") && strstr(f, "\"history\":2"), "%s",
                  f ? f : "no joined");
    free(f);
    expect_delivery(next_delivery(&m, 5000), "commit", x, 4);
    expect_delivery(next_delivery(&m, 5000), "message", y, 5);
    mr_test_publish(&p, "have", "z", "\"z\"");
    json_t *z = next_delivery(&m, 5000);
    ck_assert_msg(z && strcmp(json_string_value(json_object_get(z, "type")), "message") == 0 &&
                      json_string_value(json_object_get(z, "data")) &&
                      strcmp(json_string_value(json_object_get(z, "data")), "z") == 0,
                  "the live message z does not come next");
    json_decref(z);
    free(x);
    free(y);
    mr_ws_close(&m);
    mr_ws_close(&p);
}
END_TEST

/*
 * The same member, the message not committed yet when it resumes: the
 * publisher retries it (same mid) through the other relay, whose fast path
 * would deliver it as new. `have` keeps it from the member, and its commit
 * comes as a `commit`.
 */
START_TEST(live_retry_of_a_message_in_have_is_not_delivered_again)
{
    mr_ws m, p;
    ctl_proc_stop(&ctl);
    mr_test_hello(&m, &relays[0], "member", NULL);
    mr_test_join(&m, "have2");
    mr_test_hello(&p, &relays[0], "pub", NULL);
    mr_test_join(&p, "have2");
    mr_test_publish(&p, "have2", "x", "\"x\"");
    mr_test_expect(&p, "\"type\":\"ack\"");
    char *x = next_uncommitted(&m);
    mr_ws_close(&m);
    mr_ws_close(&p);

    mr_test_hello(&m, &relays[1], "member", NULL);
    char join[200];
    snprintf(join, sizeof join,
             "{\"type\":\"join\",\"id\":\"r\",\"room\":\"have2\",\"since\":0,\"have\":[\"%s\"]}",
             x);
    mr_ws_send_text(&m, join);
    /* recovered:false: with the control plane down nobody answers for history. */
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 10000);
    ck_assert_msg(f != NULL, "no joined");
    free(f);
    /* The retry, through relay-2: stored once by the stream, but a new fast-path copy. */
    mr_test_hello(&p, &relays[1], "pub", NULL);
    mr_test_join(&p, "have2");
    mr_test_publish(&p, "have2", "x", "\"x\"");
    mr_test_expect(&p, "\"type\":\"ack\"");
    ctl_proc_start(&ctl, NULL);
    wait_room_count("have2", 1, 20000);
    expect_delivery(next_delivery(&m, 10000), "commit", x, 1);
    mr_test_publish(&p, "have2", "y", "\"y\"");
    json_t *y = next_delivery(&m, 5000);
    ck_assert_msg(y && strcmp(json_string_value(json_object_get(y, "type")), "message") == 0 &&
                      strcmp(json_string_value(json_object_get(y, "data")), "y") == 0,
                  "the live message y does not come next");
    json_decref(y);
    free(x);
    mr_ws_close(&m);
    mr_ws_close(&p);
}
END_TEST

/*
 * A resume sent a message from history; the publisher's retry of it (same
 * mid, through another relay: its first relay was stopped) then reaches the
 * member's relay on the fast path. The room is new on that relay, so it
 * never saw the commit: the copy must still not reach the member, who has it
 * with its seq (the chaos suite's relay-stop phase: once within a session).
 */
START_TEST(retry_after_the_resume_sent_it_is_not_delivered_again)
{
    publish_committed(&relays[0], "pub", "replayed", 3, 3);
    mr_ws m, p;
    mr_test_hello(&m, &relays[1], "member", NULL);
    mr_ws_send_text(&m, "{\"type\":\"join\",\"id\":\"r\",\"room\":\"replayed\",\"since\":0}");
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 10000);
    ck_assert_msg(f && strstr(f, "\"recovered\":true"), "%s", f ? f : "no joined");
    free(f);
    char ids[3][33];
    for (int i = 0; i < 3; i++) {
        json_t *j = next_delivery(&m, 5000);
        ck_assert_msg(j && json_integer_value(json_object_get(j, "seq")) == i + 1, "history %d", i);
        snprintf(ids[i], sizeof ids[i], "%s", json_string_value(json_object_get(j, "msg_id")));
        json_decref(j);
    }
    /* The retry of the second message, through the member's relay, then a new one. */
    mr_test_hello(&p, &relays[1], "pub", NULL);
    mr_test_join(&p, "replayed");
    mr_test_publish(&p, "replayed", "pub-1", "{\"i\":1}");
    mr_test_expect(&p, "\"type\":\"ack\"");
    mr_test_publish(&p, "replayed", "after", "\"after\"");
    json_t *next = next_delivery(&m, 5000);
    char *text = next ? json_dumps(next, JSON_COMPACT) : NULL;
    ck_assert_msg(next && strcmp(json_string_value(json_object_get(next, "msg_id")), ids[1]) != 0,
                  "the retry reached the member again: %s", text ? text : "nothing");
    ck_assert_msg(strcmp(json_string_value(json_object_get(next, "data")), "after") == 0, "%s",
                  text);
    free(text);
    json_decref(next);
    mr_ws_close(&m);
    mr_ws_close(&p);
}
END_TEST

START_TEST(resume_past_the_limit_says_so_and_pages_over_http)
{
    publish_committed(&relays[0], "pub", "paged", 12, 12);
    mr_ws m;
    mr_test_hello(&m, &relays[1], "member", NULL); /* relay-2 resumes at most 5 */
    mr_ws_send_text(&m, "{\"type\":\"join\",\"id\":7,\"room\":\"paged\",\"since\":2}");
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 10000);
    ck_assert_ptr_nonnull(f);
    json_t *j = frame_json(f);
    free(f);
    ck_assert(json_is_false(json_object_get(j, "recovered")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "next_after")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "last_seq")), 12);
    json_decref(j);
    for (int i = 0; i < 5; i++) {
        char *msg = mr_test_next_message(&m, 5000);
        ck_assert_msg(msg && strstr(msg, "\"seq\":"), "message %d: %s", i, msg ? msg : "none");
        free(msg);
    }
    /* The rest over the control plane's HTTP API. */
    char *body;
    int st = mr_test_http("127.0.0.1", ctl.http_port, "GET",
                          "/v1/rooms/paged/messages?after=7&limit=100",
                          "Authorization: Bearer " CTL_TEST_KEY "\r\n", NULL, &body);
    ck_assert_msg(st == 200, "status %d: %s", st, body);
    j = frame_json(body);
    free(body);
    json_t *msgs = json_object_get(j, "messages");
    ck_assert_int_eq(json_array_size(msgs), 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, i), "seq")),
                         8 + (int)i);
    json_decref(j);
    mr_ws_close(&m);
}
END_TEST

/* Publish continuously; record every acked msg_id. Returns the count of acks. */
static int publish_stream(mr_ws *ws, const char *room, int n, json_t *acked, void (*midway)(void))
{
    char frame[256];
    int acks = 0;
    for (int i = 0; i < n; i++) {
        snprintf(frame, sizeof frame,
                 "{\"type\":\"publish\",\"room\":\"%s\",\"mid\":\"s%d\",\"data\":\"steady\"}", room,
                 i);
        if (mr_ws_send_text(ws, frame) != 0)
            break; /* the relay is gone */
        if (i == n / 4 && midway)
            midway();
        /* Read whatever is there: acks and errors; a short wait keeps the pace steady. */
        char *p;
        int cc;
        while (mr_ws_recv(ws, 5, &p, NULL, &cc) == 1) {
            json_t *j = frame_json(p);
            if (strcmp(json_string_value(json_object_get(j, "type")), "ack") == 0) {
                json_object_set(acked, json_string_value(json_object_get(j, "msg_id")),
                                json_true());
                acks++;
            }
            json_decref(j);
            free(p);
        }
    }
    return acks;
}

static void pg_outage(void)
{
    mr_test_pg_stop(&pg);
}

START_TEST(no_acknowledged_message_lost_while_postgres_is_down)
{
    mr_ws p;
    mr_test_hello(&p, &relays[0], "pub", NULL);
    mr_test_join(&p, "steady");
    json_t *acked = json_object();
    int acks = publish_stream(&p, "steady", 200, acked, pg_outage);
    /* Acks keep coming while PostgreSQL is down: they only need the stream. */
    ck_assert_int_gt(acks, 150);
    mr_test_pg_restart(&pg);
    /* Collect the remaining acks. */
    int64_t deadline = mr_test_now_ms() + 10000;
    while (json_object_size(acked) < 200 && mr_test_now_ms() < deadline) {
        char *f;
        int cc;
        if (mr_ws_recv(&p, 200, &f, NULL, &cc) != 1)
            continue;
        json_t *j = frame_json(f);
        if (strcmp(json_string_value(json_object_get(j, "type")), "ack") == 0)
            json_object_set(acked, json_string_value(json_object_get(j, "msg_id")), json_true());
        json_decref(j);
        free(f);
    }
    wait_room_count("steady", (int64_t)json_object_size(acked), 30000);
    const char *id;
    json_t *v;
    json_object_foreach(acked, id, v) ck_assert_msg(in_history("steady", id), "acked %s lost", id);
    ck_assert_int_eq(ctl_test_check_history(&pg), (int64_t)json_object_size(acked));
    json_decref(acked);
    mr_ws_close(&p);
}
END_TEST

static void kill_relay_1(void)
{
    kill(relays[0].pid, SIGKILL);
}

START_TEST(relay_killed_under_load_loses_no_acknowledged_message)
{
    mr_ws p;
    mr_test_hello(&p, &relays[0], "pub", NULL);
    mr_test_join(&p, "killed");
    json_t *acked = json_object();
    publish_stream(&p, "killed", 400, acked, kill_relay_1);
    mr_test_wait_exit(relays[0].pid, 5000);
    relays[0].pid = 0;
    ck_assert_int_gt(json_object_size(acked), 0);
    /* A message stored just before the kill may never have been acknowledged: at least. */
    int64_t n = wait_room_at_least("killed", (int64_t)json_object_size(acked), 20000);
    ck_assert_msg(n >= (int64_t)json_object_size(acked), "room killed holds %lld of %zu acked",
                  (long long)n, json_object_size(acked));
    const char *id;
    json_t *v;
    json_object_foreach(acked, id, v) ck_assert_msg(in_history("killed", id), "acked %s lost", id);
    json_decref(acked);
    mr_ws_close(&p);
}
END_TEST

/*
 * Lost commits: the control plane's NATS user may not publish commits, so
 * every commit is lost on the way. Relays must notice the messages left
 * without a commit and fetch their seqs from history.
 */
static mr_test_relay lossy_relay;

static void setup_lost_commits(void)
{
    (void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal number */
    tmp = mr_test_tmpdir("lostcommits");
    memset(&nats, 0, sizeof nats);
    nats.port = mr_test_free_port();
    nats.dir = mr_test_tmpdir("nats");
    snprintf(nats.log, sizeof nats.log, "%s/nats.log", nats.dir);
    snprintf(nats.url, sizeof nats.url, "nats://127.0.0.1:%d", nats.port);
    char conf[1024], path[600];
    snprintf(conf, sizeof conf,
             "listen: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n"
             "authorization { users = [\n"
             " { user: ctl, password: ctlpw, permissions: { publish: { allow: [\">\"], deny: "
             "[\"meridian.commit.>\"] } } }\n"
             " { user: relay, password: relaypw }\n] }\n",
             nats.port, nats.dir);
    snprintf(path, sizeof path, "%s/nats.conf", nats.dir);
    ck_assert_int_eq(mr_test_write_file(path, conf), 0);
    char *argv[] = {"nats-server", "-c", path, NULL};
    nats.pid = mr_test_spawn(argv, nats.log);
    ck_assert(mr_test_wait_port("127.0.0.1", nats.port, 10000) == 0);
    mr_test_pg_start(&pg, false);
    /* Credentials come from files (a URL with a password in it is refused). */
    char nats_json[1024], pw[700];
    snprintf(pw, sizeof pw, "%s/ctl.password", tmp);
    ck_assert_int_eq(mr_test_write_file(pw, "ctlpw\n"), 0);
    snprintf(nats_json, sizeof nats_json,
             "{\"urls\":[\"%s\"],\"user\":\"ctl\",\"password_file\":\"%s\"}", nats.url, pw);
    ctl_proc_init(&ctl, nats_json, pg.conninfo, "test", "[\"test\"]", NULL);
    ctl_proc_start(&ctl, NULL);
    snprintf(pw, sizeof pw, "%s/relay.password", tmp);
    ck_assert_int_eq(mr_test_write_file(pw, "relaypw\n"), 0);
    snprintf(nats_json, sizeof nats_json,
             "{\"urls\":[\"%s\"],\"user\":\"relay\",\"password_file\":\"%s\"}", nats.url, pw);
    mr_test_relay_config(&lossy_relay, tmp, "test", "relay-lossy", nats_json, "",
                         "\"resume\":{\"commit_repair_ms\":300}");
    mr_test_relay_start(&lossy_relay, MERIDIAN_RELAY_BIN);
}

static void teardown_lost_commits(void)
{
    mr_test_relay_stop_clean(&lossy_relay);
    ctl_proc_stop(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

/* Read until the member has seqs for 5 messages; they must be 1..5. */
static void expect_seqs_1_to_5(mr_ws *m, int timeout_ms)
{
    json_t *seqs = json_object();
    collect_seqs(m, seqs, 5, timeout_ms);
    const char *id;
    json_t *v;
    int64_t sum = 0;
    json_object_foreach(seqs, id, v) sum += json_integer_value(v);
    ck_assert_int_eq(sum, 15);
    json_decref(seqs);
}

/* A member and a publisher join `room` on the lossy relay; 5 messages are published and acked. */
static void join_and_publish_five(mr_ws *m, mr_ws *p, const char *room)
{
    mr_test_hello(m, &lossy_relay, "member", NULL);
    mr_test_join(m, room);
    mr_test_hello(p, &lossy_relay, "pub", NULL);
    mr_test_join(p, room);
    char mid[16];
    for (int i = 0; i < 5; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        mr_test_publish(p, room, mid, "1");
        mr_test_expect(p, "\"type\":\"ack\"");
    }
}

START_TEST(lost_commits_are_repaired_from_history)
{
    mr_ws m, p;
    join_and_publish_five(&m, &p, "lossy");
    /* The seqs are 1..5, and they came from the repair, not from commits. */
    expect_seqs_1_to_5(&m, 15000);
    ck_assert_int_ge(mr_test_relay_metric(&lossy_relay, "meridian_relay_commits_repaired_total"),
                     5);
    mr_ws_close(&m);
    mr_ws_close(&p);
}
END_TEST

/*
 * The room's baseline (its last seq, read from history when the room is
 * created here) comes only after its messages were stored: the control
 * plane is down while the member joins and the messages are published, and
 * comes back afterwards with its commits still lost. The relay must look
 * behind the baseline for them.
 */
START_TEST(lost_commits_stored_before_the_baseline_are_repaired)
{
    ctl_proc_stop(&ctl);
    mr_ws m, p;
    join_and_publish_five(&m, &p, "late");
    ctl_proc_start(&ctl, NULL);
    expect_seqs_1_to_5(&m, 20000);
    mr_ws_close(&m);
    mr_ws_close(&p);
}
END_TEST

/* ---- faults: what each member sees, counted per session (mr_test_member.h) ---- */

enum { NMEMBERS = 4 };

/*
 * A publisher and a member on relay-1, two members on relay-2; each fails
 * over to the other relay when its own is gone.
 */
static void members_start(mr_test_member *ms, const char *room)
{
    mr_test_relay *r12[] = {&relays[0], &relays[1]}, *r21[] = {&relays[1], &relays[0]};
    mr_test_member_init(&ms[0], "pub", room, r12, 2);
    mr_test_member_init(&ms[1], "m1", room, r12, 2);
    mr_test_member_init(&ms[2], "m2", room, r21, 2);
    mr_test_member_init(&ms[3], "m3", room, r21, 2);
    for (int i = 0; i < NMEMBERS; i++)
        ck_assert_msg(mr_test_member_connect(&ms[i], 10000), "%s cannot join", ms[i].user);
}

/*
 * Every member got every acknowledged message with its seq; no `message`
 * twice in a session, no history at or below `since`; with
 * `commits_once`, no `commit` twice in a session either.
 */
static void members_check(mr_test_member *ms, const char *fault, bool commits_once)
{
    mr_test_members_settle(ms, NMEMBERS, 120000, 1000);
    long dups = 0, below = 0, commits = 0;
    for (int i = 0; i < NMEMBERS; i++) {
        mr_test_member_report(&ms[i], fault);
        dups += ms[i].dup_messages;
        below += ms[i].below_since;
        commits += ms[i].dup_commits;
    }
    ck_assert_msg(dups == 0, "%s: %ld duplicate message frames within sessions", fault, dups);
    ck_assert_msg(below == 0, "%s: %ld history messages at or below since", fault, below);
    if (commits_once)
        ck_assert_msg(commits == 0, "%s: %ld repeated commit frames", fault, commits);
    ck_assert_int_eq(ctl_test_check_history(&pg), (int64_t)json_object_size(ms[0].acked));
    for (int i = 0; i < NMEMBERS; i++)
        mr_test_member_free(&ms[i]);
}

START_TEST(relay_sigkill_no_duplicate_within_a_session)
{
    mr_test_member ms[NMEMBERS];
    members_start(ms, "f-relay");
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "a", 0, 150);
    kill(relays[0].pid, SIGKILL);
    mr_test_wait_exit(relays[0].pid, 5000);
    relays[0].pid = 0;
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "b", 0, 150);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "c", 0, 100);
    members_check(ms, "relay SIGKILL", true);
}
END_TEST

/*
 * PostgreSQL stopped while 1,500 messages go through the stream: the
 * members get them on the fast path at once, their commits only when
 * PostgreSQL is back, in a burst, and each member must see every message
 * once (the drill: 83,850 messages again as new ones).
 */
START_TEST(postgres_stopped_no_duplicate_within_a_session)
{
    mr_test_member ms[NMEMBERS];
    members_start(ms, "f-pg");
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "a", 0, 50);
    mr_test_pg_stop(&pg);
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "b", 0, 1500);
    mr_test_pg_restart(&pg);
    mr_test_members_publish(ms, NMEMBERS, &ms[0], "c", 0, 50);
    members_check(ms, "PostgreSQL stopped", true);
}
END_TEST

/*
 * The control plane dies three times between committing a batch to
 * PostgreSQL and publishing its commits (the test hook): relays repair the
 * missing commits from history, then the restarted control plane publishes
 * the same commits again when the stream redelivers the batch.
 */
START_TEST(control_sigkill_no_duplicate_within_a_session)
{
    mr_test_member ms[NMEMBERS];
    members_start(ms, "f-ctl");
    for (int round = 0; round < 3; round++) {
        ctl_proc_stop(&ctl);
        ctl_proc_start(&ctl, "MERIDIAN_CONTROL_TEST_KILL_AFTER_COMMIT=2");
        char tag[8];
        snprintf(tag, sizeof tag, "r%d", round);
        int i = 0;
        while (mr_test_alive(ctl.pid)) {
            ck_assert_msg(i < 20000, "control did not die after two commits");
            mr_test_members_publish(ms, NMEMBERS, &ms[0], tag, i, i + 20);
            i += 20;
        }
        ctl.pid = 0;
        /* Down for a while: relays repair from history meanwhile (nobody answers). */
        mr_test_members_publish(ms, NMEMBERS, &ms[0], tag, i, i + 100);
        ctl_proc_start(&ctl, NULL);
    }
    members_check(ms, "control SIGKILL", true);
}
END_TEST

/* ---- resume at real sizes: replay paced by what the member reads ---- */

/* Publish `n` messages of `bytes` bytes of data to `room` and wait until all are stored. */
static void publish_big(const char *room, int n, size_t bytes)
{
    mr_ws p;
    mr_test_hello(&p, &relays[0], "bigpub", NULL);
    mr_test_join(&p, room);
    char *data = malloc(bytes + 3);
    data[0] = '"';
    memset(data + 1, 'x', bytes);
    data[bytes + 1] = '"';
    data[bytes + 2] = '\0';
    char mid[32];
    int acks = 0;
    int64_t deadline = mr_test_now_ms() + 120000;
    for (int i = 0; i < n || acks < n;) {
        ck_assert_msg(mr_test_now_ms() < deadline, "%d of %d publishes acknowledged", acks, n);
        if (i < n) {
            snprintf(mid, sizeof mid, "big-%d", i++);
            mr_test_publish(&p, room, mid, data);
        }
        /* Read our own copies as we go, so the relay never sees us as a slow consumer. */
        char *f;
        int cc;
        while (mr_ws_recv(&p, i < n ? 1 : 5000, &f, NULL, &cc) == 1) {
            acks += strstr(f, "\"type\":\"ack\"") != NULL;
            ck_assert_msg(!strstr(f, "\"type\":\"error\""), "%s", f);
            free(f);
            if (i == n && acks == n)
                break;
        }
    }
    free(data);
    mr_ws_close(&p);
    wait_room_count(room, n, 60000);
}

/* Join `room` with since=0 and read the whole replay: every message once, in seq order. */
static void resume_all(const char *room, int n)
{
    mr_ws m;
    mr_test_hello(&m, &relays[0], "reader", NULL);
    char join[160];
    snprintf(join, sizeof join, "{\"type\":\"join\",\"id\":\"big\",\"room\":\"%s\",\"since\":0}",
             room);
    mr_ws_send_text(&m, join);
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 30000);
    ck_assert_msg(f != NULL, "no joined");
    json_t *j = frame_json(f);
    free(f);
    ck_assert_msg(json_is_true(json_object_get(j, "recovered")), "joined: %s",
                  json_dumps(j, JSON_COMPACT));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "history")), n);
    json_decref(j);
    for (int i = 1; i <= n; i++) {
        char *p;
        int cc = 0;
        int op = mr_ws_recv(&m, 30000, &p, NULL, &cc);
        ck_assert_msg(op == 1, "history message %d of %d: %s (close %d)", i, n,
                      op == 8 ? "closed" : "nothing", cc);
        json_t *mj = frame_json(p);
        free(p);
        ck_assert_str_eq(json_string_value(json_object_get(mj, "type")), "message");
        ck_assert_int_eq(json_integer_value(json_object_get(mj, "seq")), i);
        json_decref(mj);
    }
    ck_assert_int_eq(mr_test_relay_metric(&relays[0], "meridian_relay_slow_consumer_closes_total"),
                     0);
    mr_ws_close(&m);
}

/*
 * Join `room` (holding `total` messages) with rewind `n`: `joined` says the
 * rewind starts after seq total - n (0 when the room holds fewer), those
 * messages follow in seq order, once, then a live message.
 */
static void rewind_last(const char *room, int total, int n)
{
    mr_ws m;
    mr_test_hello(&m, &relays[0], "rewinder", NULL);
    char join[160];
    snprintf(join, sizeof join, "{\"type\":\"join\",\"id\":\"rw\",\"room\":\"%s\",\"rewind\":%d}",
             room, n);
    mr_ws_send_text(&m, join);
    char *f = mr_ws_expect(&m, "\"type\":\"joined\"", 30000);
    ck_assert_msg(f != NULL, "no joined");
    json_t *j = frame_json(f);
    ck_assert_msg(json_is_true(json_object_get(j, "recovered")), "joined: %s", f);
    int first = total > n ? total - n + 1 : 1;
    ck_assert_int_eq(json_integer_value(json_object_get(j, "since")), first - 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "through")), total);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "history")), total - first + 1);
    free(f);
    json_decref(j);
    for (int i = first; i <= total; i++) {
        char *msg = mr_test_next_message(&m, 30000);
        ck_assert_msg(msg != NULL, "rewound message %d missing", i);
        json_t *mj = frame_json(msg);
        free(msg);
        ck_assert_int_eq(json_integer_value(json_object_get(mj, "seq")), i);
        json_decref(mj);
    }
    mr_ws live;
    mr_test_hello(&live, &relays[0], "live", NULL);
    mr_test_join(&live, room);
    /* A mid of its own per call: the same mid again would be the same message, already rewound. */
    char mid[32];
    snprintf(mid, sizeof mid, "after-rewind-%d", total);
    mr_test_publish(&live, room, mid, "\"live\"");
    char *msg = mr_test_next_message(&m, 5000);
    ck_assert_msg(msg && strstr(msg, mid), "%s", msg ? msg : "nothing");
    free(msg);
    mr_ws_close(&live);
    mr_ws_close(&m);
}

START_TEST(rewind_gets_the_last_messages_then_live)
{
    publish_committed(&relays[0], "pub", "rewind", 20, 20);
    rewind_last("rewind", 20, 5);
    wait_room_count("rewind", 21, 20000);
    /* More than the room holds: all of it, from seq 1. */
    rewind_last("rewind", 21, 50);
}
END_TEST

START_TEST(resume_after_1000_messages_of_2kb)
{
    publish_big("big2k", 1000, 2000);
    resume_all("big2k", 1000);
}
END_TEST

START_TEST(resume_after_100_messages_of_60kb)
{
    publish_big("big60k", 100, 60000);
    resume_all("big60k", 100);
    /* 30 × 60 KB is more than one history page: the rewind reads forwards instead. */
    rewind_last("big60k", 100, 30);
}
END_TEST

/*
 * join(since) -> leave -> join(since) in one go: the first join is answered
 * (before its `left`), the second gets its own `joined` with its own id and
 * the history, once.
 */
START_TEST(join_leave_join_each_join_answered_once)
{
    publish_committed(&relays[0], "pub", "jlj", 3, 3);
    mr_ws m;
    mr_test_hello(&m, &relays[0], "member", NULL);
    mr_ws_send_text(&m, "{\"type\":\"join\",\"id\":\"j1\",\"room\":\"jlj\",\"since\":0}");
    mr_ws_send_text(&m, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"jlj\"}");
    mr_ws_send_text(&m, "{\"type\":\"join\",\"id\":\"j2\",\"room\":\"jlj\",\"since\":0}");
    int joined1 = 0, joined2 = 0, left = 0, messages = 0;
    int64_t deadline = mr_test_now_ms() + 10000;
    while (mr_test_now_ms() < deadline && !(joined2 && messages == 3)) {
        char *p;
        int cc;
        if (mr_ws_recv(&m, 200, &p, NULL, &cc) != 1)
            continue;
        json_t *j = frame_json(p);
        free(p);
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *id = json_string_value(json_object_get(j, "id"));
        if (strcmp(type, "joined") == 0 && strcmp(id, "j1") == 0) {
            ck_assert_msg(!left, "joined for j1 after the left");
            joined1++;
        } else if (strcmp(type, "joined") == 0 && strcmp(id, "j2") == 0) {
            ck_assert_msg(left, "joined for j2 before the left");
            ck_assert(json_is_true(json_object_get(j, "recovered")));
            joined2++;
        } else if (strcmp(type, "left") == 0) {
            left++;
        } else if (strcmp(type, "message") == 0) {
            ck_assert_msg(joined2, "a message before the second joined");
            messages++;
        }
        json_decref(j);
    }
    ck_assert_int_eq(left, 1);
    ck_assert_int_eq(joined1, 1);
    ck_assert_int_eq(joined2, 1);
    ck_assert_int_eq(messages, 3);
    /* Nothing more comes: no late joined, no repeated history. */
    char *late = mr_ws_expect(&m, "\"type\"", 1000);
    ck_assert_msg(late == NULL, "late frame: %s", late ? late : "");
    mr_ws_close(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("history_e2e");
    TCase *tc = mr_test_case(s, "relays_control_postgres", setup, teardown, 180);
    tcase_add_test(tc, exactly_once_with_duplicates_from_two_relays);
    tcase_add_test(tc, retry_after_reconnect_is_stored_once);
    tcase_add_test(tc, resume_delivers_exactly_the_missed_messages);
    tcase_add_test(tc, resume_past_the_limit_says_so_and_pages_over_http);
    tcase_add_test(tc, no_acknowledged_message_lost_while_postgres_is_down);
    tcase_add_test(tc, relay_killed_under_load_loses_no_acknowledged_message);
    tcase_add_test(tc, resume_after_1000_messages_of_2kb);
    tcase_add_test(tc, resume_after_100_messages_of_60kb);
    tcase_add_test(tc, join_leave_join_each_join_answered_once);
    TCase *have = mr_test_case(s, "have", setup, teardown, 120);
    tcase_add_test(have, resume_with_have_sends_commits_for_what_the_member_has);
    tcase_add_test(have, live_retry_of_a_message_in_have_is_not_delivered_again);
    tcase_add_test(have, retry_after_the_resume_sent_it_is_not_delivered_again);
    TCase *rewind = mr_test_case(s, "rewind", setup, teardown, 120);
    tcase_add_test(rewind, rewind_gets_the_last_messages_then_live);
    TCase *faults = mr_test_case(s, "faults", setup_faults, teardown, 300);
    tcase_add_test(faults, relay_sigkill_no_duplicate_within_a_session);
    tcase_add_test(faults, postgres_stopped_no_duplicate_within_a_session);
    tcase_add_test(faults, control_sigkill_no_duplicate_within_a_session);
    TCase *lost = mr_test_case(s, "lost_commits", setup_lost_commits, teardown_lost_commits, 120);
    tcase_add_test(lost, lost_commits_are_repaired_from_history);
    tcase_add_test(lost, lost_commits_stored_before_the_baseline_are_repaired);
    return mr_test_run(s);
}
