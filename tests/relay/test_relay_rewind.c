/*
 * Rewind on join (issue 16 §2): `join` with `rewind: N` replays the room's
 * last N messages with the guarantees of `since` — asked for only once the
 * room is subscribed, nothing between the history and the live messages
 * lost, nothing twice, `recovered` — and N is bounded by resume.rewind_max.
 */
#include "relay_suites.h"
#include "relay_deliver.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "relay_resume.h"

#include <check.h>
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

static json_int_t num(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* The last history request of a join (repair and presence ask too, under their own tokens). */
static const fake_nats_call *join_request(void)
{
    for (int i = fake_nats.requests - 1; i >= 0; i--) {
        const fake_nats_call *c = &fake_nats.request[i];
        if (strncmp(c->subject, "meridian.history.", 17) == 0 &&
            strncmp(c->reply, RELAY_INBOX_REPAIR, strlen(RELAY_INBOX_REPAIR)) != 0)
            return c;
    }
    ck_abort_msg("no history request of a join");
    return NULL;
}

/* Answer the last history request of a join with the stored messages from..to. */
static void reply_last(int from, int to, bool more, int last_seq)
{
    char token[256];
    snprintf(token, sizeof token, "%s", join_request()->reply);
    char *page = fx_history("r", from, to, more, last_seq, 6);
    relay_resume_reply(&fx.r, token, page, strlen(page));
    free(page);
}

/* The message of index k (fx_msg_id) as the publisher's relay sends it, delivered live. */
static void live(relay_room *room, int k)
{
    char id[MR_MSG_ID_LEN + 1], frame[128];
    fx_msg_id("r", k, id);
    int n = snprintf(frame, sizeof frame, "{\"type\":\"message\",\"room\":\"r\",\"msg_id\":\"%s\"}",
                     id);
    relay_deliver_message(&fx.r, room, id, frame, (size_t)n);
}

static void commit(relay_room *room, int k)
{
    char id[MR_MSG_ID_LEN + 1];
    fx_msg_id("r", k, id);
    json_t *stored =
        json_pack("{s:s, s:s, s:s, s:i}", "type", "message", "room", "r", "msg_id", id, "seq", k);
    relay_deliver_commit(&fx.r, room, id, k, stored);
    json_decref(stored);
}

/*
 * Frames of `c` after a rewind: `joined` with since/through/history, then
 * the messages named by `ks` (fx_msg_id indexes), and nothing else.
 */
static void expect(relay_conn *c, int since, int through, int history, const int *ks, size_t nk)
{
    size_t n;
    char **f = fx_take(c, &n);
    ck_assert_msg(n == nk + 1, "%zu frames, expected %zu", n, nk + 1);
    json_t *j = fx_json(f, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "joined");
    ck_assert(json_is_true(json_object_get(j, "recovered")));
    ck_assert_int_eq(num(j, "since"), since);
    ck_assert_int_eq(num(j, "through"), through);
    ck_assert_int_eq(num(j, "history"), history);
    json_decref(j);
    for (size_t i = 0; i < nk; i++) {
        char id[MR_MSG_ID_LEN + 1];
        fx_msg_id("r", ks[i], id);
        j = fx_json(f, i + 1);
        ck_assert_msg(strcmp(json_string_value(json_object_get(j, "msg_id")), id) == 0,
                      "frame %zu is not message %d: %s", i + 1, ks[i], f[i + 1]);
        json_decref(j);
    }
    fx_frames_free(f);
}

/*
 * The room holds 1..10; a member joins with rewind 3 while message 11 is
 * delivered live and 10's commit arrives: it gets 8, 9, 10 from history,
 * then 11, each once; later commits of what it has go nowhere.
 */
START_TEST(rewind_replays_the_last_n_once)
{
    relay_conn *a = fx_conn(&fx, "alice");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"r\",\"rewind\":3}");
    /* History is asked for only after the subscription is confirmed. */
    ck_assert_int_eq(fake_nats.requests, 0);
    fx_confirm_last(&fx);
    const fake_nats_call *req = join_request();
    ck_assert_str_eq(req->subject, "meridian.history.r");
    ck_assert_str_eq(req->body, "{\"before\":9223372036854775807,\"limit\":3}");
    relay_room *room = relay_room_find(&fx.r.rooms, "r", 1);
    live(room, 11);
    commit(room, 10);
    ck_assert_uint_eq(a->qlen, 0); /* held until the answer */
    reply_last(8, 10, true, 10);
    const int ks[] = {8, 9, 10, 11};
    expect(a, 7, 10, 3, ks, 4);
    commit(room, 9);
    commit(room, 10);
    ck_assert_uint_eq(a->qlen, 0);
    commit(room, 11);
    char types[256];
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "commit");
}
END_TEST

/* N is bounded by resume.rewind_max; rewind 0 is a plain join; rewind with since is refused. */
START_TEST(rewind_is_bounded_and_checked)
{
    fx.cfg.rewind_max = 5;
    relay_conn *a = fx_conn(&fx, "alice");
    char types[256];
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"x\",\"room\":\"r\",\"rewind\":2,\"since\":1}");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"y\",\"room\":\"r\",\"rewind\":-1}");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"z\",\"room\":\"r\",\"rewind\":\"3\"}");
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:x error:y error:z");
    ck_assert_uint_eq(a->room_count, 0);
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"r\",\"rewind\":500}");
    fx_confirm_last(&fx);
    ck_assert_str_eq(join_request()->body, "{\"before\":9223372036854775807,\"limit\":5}");
    reply_last(6, 10, true, 10);
    const int ks[] = {6, 7, 8, 9, 10};
    expect(a, 5, 10, 5, ks, 5);
    relay_conn *b = fx_conn(&fx, "bob");
    int requests = fake_nats.requests;
    fx_client_sends(b, "{\"type\":\"join\",\"id\":\"k\",\"room\":\"r\",\"rewind\":0}");
    ck_assert_int_eq(fake_nats.requests, requests);
    size_t n;
    char **f = fx_take(b, &n);
    ck_assert_uint_eq(n, 1);
    json_t *j = fx_json(f, 0);
    ck_assert_ptr_null(json_object_get(j, "recovered")); /* a plain `joined` */
    json_decref(j);
    fx_frames_free(f);
}
END_TEST

/*
 * Large messages: the newest page holds 2 of the 5 asked for (its byte
 * bound), so the relay reads forwards from last_seq - 5 like a resume.
 */
START_TEST(rewind_page_cut_by_size_reads_forwards)
{
    relay_conn *a = fx_conn(&fx, "alice");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"r\",\"rewind\":5}");
    fx_confirm_last(&fx);
    reply_last(9, 10, true, 10);
    ck_assert_uint_eq(a->qlen, 0);
    ck_assert_str_eq(join_request()->body, "{\"after\":5,\"limit\":1000}");
    reply_last(6, 10, false, 10);
    const int ks[] = {6, 7, 8, 9, 10};
    expect(a, 5, 10, 5, ks, 5);
}
END_TEST

/* A room with fewer messages than asked, and an empty one. */
START_TEST(rewind_of_short_and_empty_rooms)
{
    relay_conn *a = fx_conn(&fx, "alice");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"r\",\"rewind\":50}");
    fx_confirm_last(&fx);
    reply_last(1, 2, false, 2);
    const int ks[] = {1, 2};
    expect(a, 0, 2, 2, ks, 2);
    relay_conn *b = fx_conn(&fx, "bob");
    fx_client_sends(b, "{\"type\":\"join\",\"id\":\"k\",\"room\":\"s\",\"rewind\":50}");
    fx_confirm_last(&fx);
    char token[256];
    snprintf(token, sizeof token, "%s", join_request()->reply);
    const char empty[] = "{\"messages\":[],\"more\":false,\"last_seq\":0}";
    relay_resume_reply(&fx.r, token, empty, sizeof empty - 1);
    expect(b, 0, 0, 0, NULL, 0);
}
END_TEST

/* Without history (jetstream off, rewind off, history down) the member is live with
 * recovered:false. */
START_TEST(rewind_without_history_says_why)
{
    fx.cfg.rewind_max = 0;
    relay_conn *a = fx_conn(&fx, "alice");
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"r\",\"rewind\":5}");
    fx_confirm_last(&fx);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 1);
    json_t *j = fx_json(f, 0);
    ck_assert(json_is_false(json_object_get(j, "recovered")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "reason")),
                     "rewind is off on this relay");
    json_decref(j);
    fx_frames_free(f);
    fx.cfg.rewind_max = 100;
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"k\",\"room\":\"s\",\"rewind\":5}");
    fx_confirm_last(&fx);
    char token[256];
    snprintf(token, sizeof token, "%s", join_request()->reply);
    const char down[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}";
    relay_resume_reply(&fx.r, token, down, sizeof down - 1);
    f = fx_take(a, &n);
    ck_assert_uint_eq(n, 1);
    j = fx_json(f, 0);
    ck_assert(json_is_false(json_object_get(j, "recovered")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "reason")), "history unavailable");
    json_decref(j);
    fx_frames_free(f);
    ck_assert_uint_eq(a->room_count, 2); /* live either way */
}
END_TEST

Suite *relay_rewind_suite(void)
{
    Suite *s = suite_create("relay_rewind");
    TCase *tc = tcase_create("rewind");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rewind_replays_the_last_n_once);
    tcase_add_test(tc, rewind_is_bounded_and_checked);
    tcase_add_test(tc, rewind_page_cut_by_size_reads_forwards);
    tcase_add_test(tc, rewind_of_short_and_empty_rooms);
    tcase_add_test(tc, rewind_without_history_says_why);
    suite_add_tcase(s, tc);
    return s;
}
