/*
 * Presence webhooks (docs/control.md, "Webhooks"): a real relay from the
 * build, nats-server, PostgreSQL and the small HTTP receiver of
 * tests/support/hook_backend.py, which checks every signature. Clients
 * join and leave rooms on the relay; control POSTs presence.join and
 * presence.leave events. The parsers of what control reads from NATS have
 * unit tests of their own (test_ctl_presence_parse.c, in control_unit).
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_backend.h"
#include "mr_test_pg.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "presence-test-secret-0123456789"

static mr_test_nats nats;
static mr_test_pg pg;
static mr_test_backend backend;
static mr_test_relay relay;
static bool relay_running;
static char *tmp;
static char secret_file[600];

/* ---- against the real servers ---- */

static void setup(void)
{
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for SIGPIPE */
    tmp = mr_test_tmpdir("presence");
    snprintf(secret_file, sizeof secret_file, "%s/webhook.secret", tmp);
    ck_assert_int_eq(mr_test_write_file(secret_file, SECRET "\n"), 0);
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    /* The relay first: it creates the region stream. */
    mr_test_relay_config(&relay, tmp, "eu-west", "relay-1", nats.url, "", "");
    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
    relay_running = true;
}

static void teardown(void)
{
    if (relay_running)
        mr_test_relay_stop_clean(&relay);
    mr_test_backend_stop(&backend);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

static void start_control(ctl_proc *c, const char *region)
{
    char extra[900], regions[64];
    snprintf(extra, sizeof extra,
             "\"webhook\":{\"url\":\"http://127.0.0.1:%d/webhook\",\"secret_file\":\"%s\","
             "\"events\":[\"message\",\"presence\"],\"presence_expire_ms\":3000,"
             "\"retry_min_ms\":50,\"retry_max_ms\":400,\"poll_ms\":50,\"timeout_ms\":2000}",
             backend.port, secret_file);
    snprintf(regions, sizeof regions, "[\"%s\"]", region);
    ctl_proc_init(c, nats.url, pg.conninfo, region, regions, extra);
    ctl_proc_start(c, NULL);
}

/*
 * Wait until one of `n` control planes is the webhook sender: changes before
 * that are not sent (docs/control.md, "Enabling and disabling").
 */
static void wait_sender(ctl_proc *const *cs, int n)
{
    int64_t deadline = mr_test_now_ms() + 15000;
    for (;;) {
        for (int i = 0; i < n; i++)
            if (mr_test_metric(cs[i]->admin_port, "meridian_control_webhook_sender") == 1)
                return;
        ck_assert_msg(mr_test_now_ms() < deadline, "no control plane became the webhook sender");
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Every presence event the receiver accepted, in arrival order (a new reference). */
static json_t *presence_events(void)
{
    json_t *stats = mr_test_backend_stats(&backend);
    json_t *out = json_array();
    size_t i, k;
    json_t *w, *ev;
    json_array_foreach(json_object_get(stats, "webhooks"), i, w)
    {
        json_array_foreach(json_object_get(json_object_get(w, "body"), "events"), k, ev)
        {
            const char *type = json_string_value(json_object_get(ev, "type"));
            if (type && strncmp(type, "presence.", 9) == 0)
                json_array_append(out, ev);
        }
    }
    ck_assert_int_eq(json_integer_value(json_object_get(stats, "bad_signatures")), 0);
    json_decref(stats);
    return out;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Count events of `type` for `user` in `e`. */
static int count_of(json_t *e, const char *type, const char *user)
{
    int n = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(e, i, ev)
    {
        n += strcmp(json_string_value(json_object_get(ev, "type")), type) == 0 &&
             strcmp(json_string_value(json_object_get(ev, "user")), user) == 0;
    }
    return n;
}

static void assert_event(json_t *ev, const char *type, const char *room, const char *user,
                         const char *reason)
{
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), type);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "room")), room);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "user")), user);
    const char *id = json_string_value(json_object_get(ev, "id"));
    ck_assert_msg(id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32, "id %s",
                  id ? id : "(none)");
    ck_assert(json_is_integer(json_object_get(ev, "ts")));
    if (reason)
        ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")), reason);
    else
        ck_assert_ptr_null(json_object_get(ev, "reason"));
}

/* Connect as `user` and join `room`. */
static void enter(mr_ws *ws, const char *user, const char *room)
{
    mr_test_hello(ws, &relay, user, NULL);
    mr_test_join(ws, room);
}

/* Wait until some event of `type` for `user` arrived; returns all events. */
static json_t *wait_for(const char *type, const char *user, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        json_t *e = presence_events();
        if (count_of(e, type, user) > 0)
            return e;
        ck_assert_msg(mr_test_now_ms() < deadline, "no %s for %s", type, user);
        json_decref(e);
        nap_ms(50);
    }
}

static long metric(ctl_proc *c, const char *name)
{
    return mr_test_metric(c->admin_port, name);
}

/*
 * A join and a leave become a signed presence.join and presence.leave; a
 * second session of the same user is neither (bob and carol are markers:
 * their events arrive after anything alice's second session would cause).
 */
START_TEST(join_then_leave_once_per_user)
{
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc c;
    start_control(&c, "eu-west");
    wait_sender((ctl_proc *[]){&c}, 1);
    mr_ws a1, a2, bob, carol;
    enter(&a1, "alice", "lobby");
    json_t *e = wait_for("presence.join", "alice", 15000);
    json_decref(e);
    enter(&a2, "alice", "lobby");
    enter(&bob, "bob", "lobby");
    e = wait_for("presence.join", "bob", 15000);
    ck_assert_int_eq(count_of(e, "presence.join", "alice"), 1);
    json_decref(e);
    mr_ws_close(&a2);
    enter(&carol, "carol", "lobby");
    e = wait_for("presence.join", "carol", 15000);
    ck_assert_int_eq(count_of(e, "presence.leave", "alice"), 0);
    json_decref(e);
    mr_ws_close(&a1);
    e = wait_for("presence.leave", "alice", 15000);
    ck_assert_int_eq(json_array_size(e), 4);
    assert_event(json_array_get(e, 0), "presence.join", "lobby", "alice", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(e, 0), "sessions")), 1);
    assert_event(json_array_get(e, 3), "presence.leave", "lobby", "alice", "left");
    ck_assert_str_ne(json_string_value(json_object_get(json_array_get(e, 0), "id")),
                     json_string_value(json_object_get(json_array_get(e, 3), "id")));
    json_decref(e);
    mr_ws_close(&bob);
    mr_ws_close(&carol);
    ck_assert_int_eq(ctl_proc_stop(&c), 0);
    ctl_proc_free(&c);
}
END_TEST

/*
 * Two control planes of two regions on the one database both receive every
 * delta; each change is still one event, and the copies are counted stale.
 */
START_TEST(two_regions_one_event)
{
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc eu, us;
    start_control(&eu, "eu-west");
    start_control(&us, "us-east");
    wait_sender((ctl_proc *[]){&eu, &us}, 2);
    mr_ws a;
    enter(&a, "alice", "lobby");
    json_t *e = wait_for("presence.join", "alice", 15000);
    json_decref(e);
    mr_ws_close(&a);
    e = wait_for("presence.leave", "alice", 15000);
    /* Both control planes saw both deltas: one applied each, the other's copy stale. */
    int64_t deadline = mr_test_now_ms() + 10000;
    while (metric(&eu, "meridian_control_presence_stale_total") +
                   metric(&us, "meridian_control_presence_stale_total") <
               2 &&
           mr_test_now_ms() < deadline)
        nap_ms(50);
    ck_assert_int_eq(metric(&eu, "meridian_control_presence_applied_total") +
                         metric(&us, "meridian_control_presence_applied_total"),
                     2);
    ck_assert_int_eq(metric(&eu, "meridian_control_presence_stale_total") +
                         metric(&us, "meridian_control_presence_stale_total"),
                     2);
    /*
     * Both control planes are done with alice's deltas (the metrics above),
     * and the outbox goes out in order: once bob's join is in, anything
     * alice's deltas could have added would be too.
     */
    json_decref(e);
    mr_ws b;
    enter(&b, "bob", "lobby");
    e = wait_for("presence.join", "bob", 15000);
    ck_assert_int_eq(json_array_size(e), 3);
    ck_assert_int_eq(count_of(e, "presence.join", "alice"), 1);
    ck_assert_int_eq(count_of(e, "presence.leave", "alice"), 1);
    json_decref(e);
    mr_ws_close(&b);
    ck_assert_int_eq(ctl_proc_stop(&us), 0);
    ck_assert_int_eq(ctl_proc_stop(&eu), 0);
    ctl_proc_free(&us);
    ctl_proc_free(&eu);
}
END_TEST

/* A receiver that fails gets the same event again, with the same idempotency key. */
START_TEST(retries_keep_the_idempotency_key)
{
    mr_test_backend_start(&backend, tmp, secret_file, 3);
    ctl_proc c;
    start_control(&c, "eu-west");
    wait_sender((ctl_proc *[]){&c}, 1);
    mr_ws a;
    enter(&a, "alice", "lobby");
    json_t *e = wait_for("presence.join", "alice", 20000);
    ck_assert_int_eq(json_array_size(e), 1);
    const char *id = json_string_value(json_object_get(json_array_get(e, 0), "id"));
    json_t *stats = mr_test_backend_stats(&backend);
    json_t *attempts = json_object_get(stats, "webhook_attempts");
    ck_assert_int_ge(json_array_size(attempts), 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(json_string_value(json_array_get(attempts, i)), id);
    json_decref(stats);
    json_decref(e);
    ck_assert_int_ge(metric(&c, "meridian_control_webhook_failures_total"), 3);
    mr_ws_close(&a);
    ck_assert_int_eq(ctl_proc_stop(&c), 0);
    ctl_proc_free(&c);
}
END_TEST

/*
 * Forged and malformed messages on the presence subjects are dropped and
 * counted; control stays up and real presence still works.
 */
START_TEST(malformed_presence_dropped_and_counted)
{
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc c;
    start_control(&c, "eu-west");
    wait_sender((ctl_proc *[]){&c}, 1);
    natsConnection *nc = ctl_test_nats(nats.url);
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *bad[][2] = {
        {"meridian.presence.lobby", "not json"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"mallory\","
                                    "\"sessions\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"../../x y\",\"user\":\"m\","
                                    "\"sessions\":1,\"seq\":1}"},
        {"meridian.presence.lobby", "{\"op\":\"set\",\"node\":\"n\",\"user\":\"m\","
                                    "\"sessions\":99999999999,\"seq\":1}"},
        {"meridian.presence.lobby", big},
        {"meridian.relay.hb", "{\"op\":\"drop tables\",\"node\":\"n\"}"},
        {"meridian.relay.hb", "\xff\xfe"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(natsConnection_PublishString(nc, bad[i][0], bad[i][1]), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
    int64_t deadline = mr_test_now_ms() + 10000;
    while (metric(&c, "meridian_control_presence_rejected_total") < 7 &&
           mr_test_now_ms() < deadline)
        nap_ms(50);
    ck_assert_int_eq(metric(&c, "meridian_control_presence_rejected_total"), 7);
    ck_assert(ctl_proc_log_has(&c, "presence: dropped a malformed message"));
    mr_ws a;
    enter(&a, "alice", "lobby");
    json_t *e = wait_for("presence.join", "alice", 15000);
    ck_assert_int_eq(json_array_size(e), 1);
    json_decref(e);
    mr_ws_close(&a);
    natsConnection_Destroy(nc);
    ck_assert_int_eq(ctl_proc_stop(&c), 0);
    ctl_proc_free(&c);
}
END_TEST

/*
 * A relay that stops says bye: its users leave with reason relay_stopped. A
 * relay killed says nothing: they leave with relay_lost once its heartbeats
 * have been missing for webhook.presence_expire_ms.
 */
START_TEST(relay_gone_users_leave_with_reason)
{
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc c;
    start_control(&c, "eu-west");
    wait_sender((ctl_proc *[]){&c}, 1);
    mr_ws a;
    enter(&a, "alice", "lobby");
    json_t *e = wait_for("presence.join", "alice", 15000);
    json_decref(e);
    mr_test_relay_stop_clean(&relay);
    relay_running = false;
    e = wait_for("presence.leave", "alice", 15000);
    assert_event(json_array_get(e, 1), "presence.leave", "lobby", "alice", "relay_stopped");
    json_decref(e);
    mr_ws_close(&a);

    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
    relay_running = true;
    mr_ws b;
    enter(&b, "bob", "lobby");
    e = wait_for("presence.join", "bob", 15000);
    json_decref(e);
    ck_assert(mr_test_stop(relay.pid, SIGKILL, 5000) >= 0);
    relay_running = false;
    e = wait_for("presence.leave", "bob", 20000);
    assert_event(json_array_get(e, 3), "presence.leave", "lobby", "bob", "relay_lost");
    json_decref(e);
    ck_assert_int_ge(metric(&c, "meridian_control_presence_relays_lost_total"), 1);
    mr_ws_close(&b);
    ck_assert_int_eq(ctl_proc_stop(&c), 0);
    ctl_proc_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_presence");
    TCase *tc = mr_test_case(s, "presence", setup, teardown, 120);
    tcase_add_test(tc, join_then_leave_once_per_user);
    tcase_add_test(tc, two_regions_one_event);
    tcase_add_test(tc, retries_keep_the_idempotency_key);
    tcase_add_test(tc, malformed_presence_dropped_and_counted);
    tcase_add_test(tc, relay_gone_users_leave_with_reason);
    return mr_test_run(s);
}
