/*
 * Token refresh without reconnecting (issue 16 §1): a `refresh` with a
 * valid token of the same user keeps the session and its memberships,
 * except those a narrowed rooms claim no longer allows (each ends with a
 * `left` saying why); a token of another user or a bad token is refused and
 * the session keeps its token; `refresh_due` comes once per token, before
 * its expiry.
 */
#include "relay_suites.h"
#include "mr_alloc.h"
#include "mr_jwt.h"
#include "relay_client.h"
#include "relay_fixture.h"
#include "relay_refresh.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "refresh-test-secret"

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
    fx.r.nats_was_connected = true;
    fx.r.jwt = (mr_jwt_params){
        .secret = (const unsigned char *)SECRET, .secret_len = strlen(SECRET), .leeway_s = 5};
}

static void teardown(void)
{
    fx_free(&fx);
}

/* A `refresh` frame with a token of `sub`, valid for `ttl` s, with rooms claim `rooms` (JSON or
 * NULL). */
static void send_refresh(relay_conn *c, const char *id, const char *sub, int ttl, const char *rooms,
                         const char *secret)
{
    json_t *claims = json_pack("{s:s, s:I}", "sub", sub, "exp", (json_int_t)time(NULL) + ttl);
    if (rooms)
        json_object_set_new(claims, "rooms", json_loads(rooms, 0, NULL));
    char *token = mr_jwt_sign((const unsigned char *)secret, strlen(secret), claims);
    json_decref(claims);
    char frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"refresh\",\"id\":\"%s\",\"token\":\"%s\"}", id,
             token);
    free(token);
    fx_client_sends(c, frame);
}

static relay_conn *joined_conn(const char *user, const char *const *rooms, size_t n)
{
    relay_conn *c = fx_conn(&fx, user);
    c->token_exp = time(NULL) + 30;
    c->token_at = time(NULL);
    char frame[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"j%zu\",\"room\":\"%s\"}", i,
                 rooms[i]);
        fx_client_sends(c, frame);
        fx_confirm_last(&fx);
    }
    fx_discard(c);
    return c;
}

START_TEST(refresh_keeps_the_session_and_narrows_rooms)
{
    const char *rooms[] = {"team-a", "other", "team-b"};
    relay_conn *a = joined_conn("alice", rooms, 3);
    relay_conn *b = joined_conn("bob", rooms + 1, 1);
    fx_discard(a); /* bob's presence event */
    ck_assert_uint_eq(a->room_count, 3);
    int64_t before = a->token_exp;
    send_refresh(a, "r1", "alice", 3600, "[\"team-*\"]", SECRET);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 2);
    json_t *j = fx_json(f, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "refreshed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "r1");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "exp")), a->token_exp);
    json_decref(j);
    j = fx_json(f, 1);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "left");
    ck_assert_str_eq(json_string_value(json_object_get(j, "room")), "other");
    ck_assert_str_eq(json_string_value(json_object_get(j, "reason")), "forbidden");
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);
    fx_frames_free(f);
    ck_assert_int_gt(a->token_exp, before + 3000);
    ck_assert_uint_eq(a->room_count, 2);
    ck_assert_ptr_nonnull(relay_conn_member(a, "team-a", 6));
    ck_assert_ptr_nonnull(relay_conn_member(a, "team-b", 6));
    ck_assert_ptr_null(relay_conn_member(a, "other", 5));
    /* bob stays in "other"; alice may no longer join it. */
    ck_assert_ptr_nonnull(relay_conn_member(b, "other", 5));
    fx_client_sends(a, "{\"type\":\"join\",\"id\":\"x\",\"room\":\"other\"}");
    char types[128];
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:x");
    /* A wider token again: nothing is left, nothing rejoined by itself. */
    send_refresh(a, "r2", "alice", 3600, NULL, SECRET);
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "refreshed:r2");
    ck_assert_uint_eq(a->room_count, 2);
}
END_TEST

START_TEST(refresh_refused_keeps_the_current_token)
{
    const char *rooms[] = {"r"};
    relay_conn *a = joined_conn("alice", rooms, 1);
    int64_t exp = a->token_exp;
    send_refresh(a, "u", "mallory", 3600, NULL, SECRET);
    send_refresh(a, "s", "alice", 3600, NULL, "another-secret");
    send_refresh(a, "e", "alice", -3600, NULL, SECRET);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 3);
    const char *codes[] = {"user_mismatch", "auth_failed", "auth_failed"};
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
        ck_assert_str_eq(json_string_value(json_object_get(j, "code")), codes[i]);
        ck_assert(json_is_false(json_object_get(j, "retryable")));
        json_decref(j);
    }
    fx_frames_free(f);
    ck_assert_int_eq(a->close_code, 0); /* unlike hello, a bad refresh does not close */
    ck_assert_int_eq(a->token_exp, exp);
    ck_assert_str_eq(a->user, "alice");
    ck_assert_uint_eq(a->room_count, 1);
    /* Before hello there is no session to refresh. */
    relay_conn *anon = mr_malloc(sizeof *anon);
    relay_conn_attach(&fx.r, anon, NULL);
    send_refresh(anon, "h", "alice", 3600, NULL, SECRET);
    char types[64];
    fx_take_types(anon, types, sizeof types);
    ck_assert_str_eq(types, "error:h");
}
END_TEST

START_TEST(refresh_due_is_hinted_once_before_expiry)
{
    relay_conn *a = fx_conn(&fx, "alice");
    int64_t now = time(NULL);
    /* An hour-long token: hinted auth.refresh_hint_s (60) before its expiry. */
    a->token_at = now;
    a->token_exp = now + 3600;
    ck_assert_int_eq(relay_refresh_due_at(&fx.r, a), now + 3540);
    /* A 20 s token is hinted halfway, not at once. */
    a->token_exp = now + 20;
    ck_assert_int_eq(relay_refresh_due_at(&fx.r, a), now + 10);
    /* Due: the session timer sends it, once. */
    a->token_at = now - 100;
    a->token_exp = now + 30;
    relay_client_timer(a);
    relay_client_timer(a);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, 1);
    json_t *j = fx_json(f, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "refresh_due");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "exp")), now + 30);
    json_decref(j);
    fx_frames_free(f);
    ck_assert_int_eq(relay_refresh_due_at(&fx.r, a), INT64_MAX);
    /* A refreshed token is hinted again in its turn; hints can be turned off. */
    send_refresh(a, "r", "alice", 3600, NULL, SECRET);
    fx_discard(a);
    ck_assert_int_lt(relay_refresh_due_at(&fx.r, a), INT64_MAX);
    fx.cfg.refresh_hint_s = 0;
    ck_assert_int_eq(relay_refresh_due_at(&fx.r, a), INT64_MAX);
}
END_TEST

Suite *relay_refresh_suite(void)
{
    Suite *s = suite_create("relay_refresh");
    TCase *tc = tcase_create("refresh");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, refresh_keeps_the_session_and_narrows_rooms);
    tcase_add_test(tc, refresh_refused_keeps_the_current_token);
    tcase_add_test(tc, refresh_due_is_hinted_once_before_expiry);
    suite_add_tcase(s, tc);
    return s;
}
