/*
 * Delivery and resume: dedup with real message ids, resume ordering, holding
 * live frames while history is fetched and releasing them without repeats.
 */
#include "relay_suites.h"
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
 * The id ring against a model: for a stream of realistic ids (SHA-256
 * prefixes, so their index slots spread over the table and deletions move
 * entries across wrap-around), random adds, removals from anywhere, drops of
 * the oldest and expiry by time leave exactly the ids the model holds, in
 * the model's order, with their values; the ring grows to the cap and no
 * further, and gives memory back when it empties.
 */
START_TEST(dedup_realistic_ids)
{
    enum { MAX = 64, N = 3000, STEPS = 60000 };
    static uint8_t keys[N][RELAY_DEDUP_ID_BYTES];
    for (int i = 0; i < N; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("room", i, id);
        relay_dedup_key(id, keys[i]);
    }
    relay_dedup d = {0};
    int model[N], mlen = 0; /* ids in insertion order; the time of id i is i */
    int next_new = 0;
    uint32_t rnd = 12345;
    for (int step = 0; step < STEPS && next_new < N; step++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t op = (rnd >> 16) % 10;
        if (op < 5) {
            int rc = relay_dedup_add(&d, keys[next_new], next_new, -next_new, MAX);
            ck_assert_int_eq(rc, mlen < MAX ? 0 : -1);
            if (rc == 0)
                model[mlen++] = next_new;
            next_new++;
        } else if (op < 8 && mlen) {
            /* Remove one from anywhere, or an id not remembered. */
            int k = (int)((rnd >> 4) % (uint32_t)(mlen + 1));
            int victim = k < mlen ? model[k] : next_new;
            int64_t val = 1;
            ck_assert(relay_dedup_remove(&d, keys[victim], &val) == (k < mlen));
            if (k < mlen) {
                ck_assert_int_eq(val, -victim);
                memmove(model + k, model + k + 1, (size_t)(mlen - k - 1) * sizeof *model);
                mlen--;
            }
        } else if (op == 8 && mlen) {
            relay_dedup_drop_oldest(&d);
            memmove(model, model + 1, (size_t)(mlen - 1) * sizeof *model);
            mlen--;
        } else if (mlen) {
            /* Expire everything added before the middle of what is held. */
            int before = model[mlen / 2];
            relay_dedup_expire(&d, before);
            int k = 0;
            while (k < mlen && model[k] < before)
                k++;
            memmove(model, model + k, (size_t)(mlen - k) * sizeof *model);
            mlen -= k;
        }
        ck_assert_uint_eq(d.count, (uint32_t)mlen);
        ck_assert_uint_le(d.cap, MAX);
        ck_assert_int_eq(relay_dedup_oldest(&d), mlen ? model[0] : INT64_MAX);
        if (step % 97 == 0) {
            int k = 0;
            for (int i = 0; i < next_new; i++) {
                bool in = k < mlen && model[k] == i;
                ck_assert_msg(relay_dedup_has(&d, keys[i]) == in, "step %d: id %d", step, i);
                k += in;
            }
        }
    }
    ck_assert_int_ge(next_new, N / 2);
    relay_dedup_expire(&d, INT64_MAX);
    ck_assert_uint_eq(d.cap, 0); /* empty: nothing held */
    relay_dedup_free(&d);
}
END_TEST

/* Delivered seqs: in order, out of order, repeats, a baseline, and a gap given up. */
START_TEST(seqs_through_and_gaps)
{
    relay_seqs s = {0};
    ck_assert(relay_seqs_add(&s, 1));
    ck_assert(!relay_seqs_add(&s, 1));
    ck_assert(relay_seqs_add(&s, 3));
    ck_assert_int_eq(s.through, 1);
    ck_assert_int_eq(relay_seqs_gap_end(&s), 3);
    ck_assert(relay_seqs_add(&s, 2));
    ck_assert_int_eq(s.through, 3);
    ck_assert_int_eq(relay_seqs_gap_end(&s), 0);
    relay_seqs_through(&s, 10);
    ck_assert(!relay_seqs_add(&s, 7));
    ck_assert(relay_seqs_add(&s, 12));
    /* A gap at 11 that never closes is given up after RELAY_SEQS_ABOVE_MAX later seqs. */
    for (int64_t q = 13; q < 12 + RELAY_SEQS_ABOVE_MAX; q++)
        ck_assert(relay_seqs_add(&s, q));
    ck_assert_int_eq(s.through, 10);
    ck_assert(relay_seqs_add(&s, 12 + RELAY_SEQS_ABOVE_MAX));
    ck_assert_int_eq(s.through, 12 + RELAY_SEQS_ABOVE_MAX);
    ck_assert_uint_eq(s.n, 0);
    ck_assert(relay_seqs_has(&s, 11));
    relay_seqs_free(&s);
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

/* Answer the resume waiting on `token` with history from..to. */
static void reply_history(const char *token, int from, int to, bool more, int last_seq)
{
    char *page = fx_history("r", from, to, more, last_seq, 6);
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
    fx.cfg.resume_limit = 3; /* 50 messages missed: the first 3 are replayed */
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
    tcase_add_test(tc, seqs_through_and_gaps);
    tcase_add_test(tc, resume_hold_and_flush);
    tcase_add_test(tc, resume_history_limit);
    tcase_add_test(tc, resume_timeout_releases_held);
    tcase_add_test(tc, resume_bus_down_and_member_gone);
    suite_add_tcase(s, tc);
    return s;
}
