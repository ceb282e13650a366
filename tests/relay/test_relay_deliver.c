/*
 * Delivery and resume: dedup with real message ids, resume ordering, holding
 * live frames while history is fetched and releasing them without repeats.
 */
#include "relay_deliver.h"
#include "relay_fixture.h"
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

/*
 * The dedup ring against a model: for a stream of realistic ids (SHA-256
 * prefixes, so their index slots spread over the table and evictions move
 * entries across wrap-around) with repeats at every distance, relay_dedup_seen
 * answers exactly "among the last `cap` distinct ids remembered".
 */
START_TEST(dedup_realistic_ids)
{
    enum { CAP = 64, N = 3000, STEPS = 40000 };
    static char ids[N][MR_MSG_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        fx_msg_id("room", i, ids[i]);
    /* The ids really spread: their home slots in a 2*CAP index are mostly distinct. */
    bool home[2 * CAP] = {false};
    int distinct = 0;
    for (int i = 0; i < CAP; i++) {
        unsigned h = 0;
        for (int b = 3; b >= 0;
             b--) /* the first four bytes, little-endian, as relay_dedup reads them */
            h = h << 8 | (unsigned)strtoul((char[]){ids[i][2 * b], ids[i][2 * b + 1], 0}, NULL, 16);
        if (!home[h & (2 * CAP - 1)]) {
            home[h & (2 * CAP - 1)] = true;
            distinct++;
        }
    }
    ck_assert_int_gt(distinct, CAP / 2);

    relay_dedup d = {0};
    int window[CAP], wlen = 0, whead = 0; /* the model: the last CAP ids remembered */
    int next_new = 0;
    uint32_t rnd = 12345;
    for (int step = 0; step < STEPS && next_new < N; step++) {
        rnd = rnd * 1103515245u + 12345u;
        int pick;
        if (next_new == 0 || (rnd >> 16) % 3 == 0) {
            pick = next_new++;
        } else {
            /* A repeat from up to 2*CAP new ids back: half still remembered, half evicted. */
            int back = (int)((rnd >> 8) % (2 * CAP)) + 1;
            pick = next_new - back < 0 ? 0 : next_new - back;
        }
        bool expect = false;
        for (int i = 0; i < wlen; i++)
            if (window[(whead + i) % CAP] == pick)
                expect = true;
        bool got = relay_dedup_seen(&d, CAP, ids[pick]);
        ck_assert_msg(got == expect, "step %d, id %d: seen=%d, model says %d", step, pick, got,
                      expect);
        if (!expect) {
            if (wlen == CAP)
                whead = (whead + 1) % CAP;
            else
                wlen++;
            window[(whead + wlen - 1) % CAP] = pick;
        }
    }
    ck_assert_int_ge(next_new, N / 2);
    relay_dedup_free(&d);
}
END_TEST

/* A live `message` frame as it comes off NATS. */
static void live(relay_room *room, const char *room_name, int i)
{
    char id[MR_MSG_ID_LEN + 1], frame[200];
    fx_msg_id(room_name, i, id);
    int n =
        snprintf(frame, sizeof frame,
                 "{\"type\":\"message\",\"room\":\"%s\",\"msg_id\":\"%s\",\"data\":\"live-%d\"}",
                 room_name, id, i);
    ck_assert(relay_deliver_message(&fx.r, room, id, frame, (size_t)n));
}

/* A history page with messages from..to (inclusive) and the given `more`. */
static char *history(const char *room_name, int from, int to, bool more, int last_seq)
{
    json_t *msgs = json_array();
    for (int i = from; i <= to; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id(room_name, i, id);
        json_array_append_new(msgs,
                              json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "message", "room",
                                        room_name, "msg_id", id, "seq", i, "data", "stored"));
    }
    json_t *page =
        json_pack("{s:o, s:b, s:i}", "messages", msgs, "more", more, "last_seq", last_seq);
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    return text;
}

/* Answer the resume waiting on `token` with history from..to. */
static void reply_history(const char *token, int from, int to, bool more, int last_seq)
{
    char *page = history("r", from, to, more, last_seq);
    relay_resume_reply(&fx.r, token, page, strlen(page));
    free(page);
}

/* Start a resume of `m` from `since`; its inbox token goes to `token`. */
static void start(relay_conn *c, relay_member *m, int since, char token[256])
{
    relay_resume_start(&fx.r, c, m, since, NULL);
    snprintf(token, 256, "%s", fake_nats_last_request()->reply);
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static json_int_t num(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* Frame i of `f` is the message with seq/live index `i`: its msg_id matches. */
static void expect_message(char **f, size_t i, const char *room_name, int k)
{
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id(room_name, k, id);
    json_t *j = fx_json(f, i);
    ck_assert_str_eq(str(j, "type"), "message");
    ck_assert_msg(strcmp(str(j, "msg_id"), id) == 0, "frame %zu is not message %d: %s", i, k, f[i]);
    json_decref(j);
}

START_TEST(resume_hold_and_flush)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    relay_member *ma = fx_join(&fx, a, "r", NULL);
    fx_join(&fx, b, "r", NULL);
    relay_room *room = ma->room;
    json_t *join_id = json_integer(7);
    relay_resume_start(&fx.r, a, ma, 5, join_id);
    json_decref(join_id);
    const fake_nats_call *req = fake_nats_last_request();
    ck_assert_str_eq(req->subject, "meridian.history.r");
    ck_assert_str_eq(req->body, "{\"after\":5,\"limit\":1000}");
    char token[256];
    snprintf(token, sizeof token, "%s", req->reply);

    /* Live messages 7, 8, 9 while history is on its way: held for alice, not for bob. */
    for (int i = 7; i <= 9; i++)
        live(room, "r", i);
    ck_assert_uint_eq(a->qlen, 0);
    ck_assert_uint_eq(b->qlen, 3);

    /* History 6..7, everything after 5 (more=false); 7 is also among the held. */
    reply_history(token, 6, 7, false, 9);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 5);
    json_t *joined = fx_json(f, 0);
    ck_assert_str_eq(str(joined, "type"), "joined");
    ck_assert_int_eq(num(joined, "id"), 7);
    ck_assert(json_is_true(json_object_get(joined, "recovered")));
    ck_assert_int_eq(num(joined, "history"), 2);
    ck_assert_int_eq(num(joined, "since"), 5);
    ck_assert_int_eq(num(joined, "through"), 7);
    ck_assert_int_eq(num(joined, "last_seq"), 9);
    json_decref(joined);
    /* History in seq order, then the held frames in arrival order minus 7. */
    expect_message(f, 1, "r", 6);
    expect_message(f, 2, "r", 7);
    expect_message(f, 3, "r", 8);
    expect_message(f, 4, "r", 9);
    fx_frames_free(f);
    ck_assert(!ma->recovering);
    ck_assert_uint_eq(fx.r.resumes.count, 0);

    /* Live again: delivered at once. */
    live(room, "r", 10);
    ck_assert_uint_eq(a->qlen, 1);
    f = fx_take(a, &n);
    expect_message(f, 0, "r", 10);
    fx_frames_free(f);

    /* The commit of 7 (history sent it with its seq) skips alice; 8's reaches her as `commit`. */
    char id7[MR_MSG_ID_LEN + 1], id8[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", 7, id7);
    fx_msg_id("r", 8, id8);
    json_t *stored = json_pack("{s:s}", "type", "message");
    relay_deliver_commit(&fx.r, room, id7, 7, stored);
    ck_assert_uint_eq(a->qlen, 0);
    relay_deliver_commit(&fx.r, room, id8, 8, stored);
    json_decref(stored);
    f = fx_take(a, &n);
    ck_assert_uint_eq(n, 1);
    json_t *commit = fx_json(f, 0);
    ck_assert_str_eq(str(commit, "type"), "commit");
    ck_assert_str_eq(str(commit, "msg_id"), id8);
    ck_assert_int_eq(num(commit, "seq"), 8);
    json_decref(commit);
    fx_frames_free(f);
    ck_assert_uint_eq(b->qlen, 3 + 1 + 2); /* bob: live 7-9, live 10, both commits */
}
END_TEST

START_TEST(resume_history_limit)
{
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    char token[256];
    start(a, m, 0, token);
    reply_history(token, 1, 3, true, 50);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 4);
    json_t *joined = fx_json(f, 0);
    ck_assert(json_is_false(json_object_get(joined, "recovered")));
    ck_assert_str_eq(str(joined, "reason"), "history_limit");
    ck_assert_int_eq(num(joined, "next_after"), 3);
    ck_assert_ptr_null(json_object_get(joined, "id"));
    json_decref(joined);
    fx_frames_free(f);
}
END_TEST

START_TEST(resume_timeout_releases_held)
{
    fx.cfg.resume_timeout_ms = 0; /* due at once */
    relay_conn *a = fx_conn(&fx, "alice");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    char token[256];
    start(a, m, 3, token);
    live(m->room, "r", 4);
    ck_assert_uint_eq(a->qlen, 0);
    relay_resume_expire(&fx.r);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 2);
    json_t *joined = fx_json(f, 0);
    ck_assert(json_is_false(json_object_get(joined, "recovered")));
    ck_assert_str_eq(str(joined, "reason"), "history request timed out");
    json_decref(joined);
    expect_message(f, 1, "r", 4);
    fx_frames_free(f);
    /* The reply that comes after all is ignored. */
    reply_history(token, 4, 4, false, 4);
    ck_assert_uint_eq(a->qlen, 0);
}
END_TEST

START_TEST(resume_bus_down_and_member_gone)
{
    relay_conn *a = fx_conn(&fx, "alice"), *b = fx_conn(&fx, "bob");
    relay_member *m = fx_join(&fx, a, "r", NULL);
    /* No NATS: `joined` at once, recovered=false with the reason. */
    fake_nats.connected = false;
    relay_resume_start(&fx.r, a, m, 3, NULL);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 1);
    json_t *joined = fx_json(f, 0);
    ck_assert_str_eq(str(joined, "reason"), "history is unavailable: the message bus is down");
    json_decref(joined);
    fx_frames_free(f);
    ck_assert(!m->recovering);
    /* The member closes before the reply: it is dropped without a trace. */
    fake_nats.connected = true;
    relay_member *mb = fx_join(&fx, b, "r", NULL);
    char token[256];
    start(b, mb, 3, token);
    live(mb->room, "r", 4);
    fx_close(&fx, b);
    reply_history(token, 4, 4, false, 4);
    ck_assert_uint_eq(fx.r.resumes.count, 0);
    /* A reply that is not JSON finishes the resume with recovered=false. */
    relay_member *m2 = fx_join(&fx, a, "s", NULL);
    start(a, m2, 0, token);
    relay_resume_reply(&fx.r, token, "{not json", 9);
    f = fx_take(a, &n);
    ck_assert_uint_eq(n, 2); /* bob's leaving is no frame for alice; live 4 and joined */
    joined = fx_json(f, 1);
    ck_assert_str_eq(str(joined, "reason"), "history reply is not valid JSON");
    json_decref(joined);
    fx_frames_free(f);
}
END_TEST

Suite *relay_deliver_suite(void)
{
    Suite *s = suite_create("relay_deliver");
    TCase *tc = tcase_create("deliver");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, dedup_realistic_ids);
    tcase_add_test(tc, resume_hold_and_flush);
    tcase_add_test(tc, resume_history_limit);
    tcase_add_test(tc, resume_timeout_releases_held);
    tcase_add_test(tc, resume_bus_down_and_member_gone);
    suite_add_tcase(s, tc);
    return s;
}
