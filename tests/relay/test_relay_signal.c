/*
 * Ephemeral signals (issue 16 §3): a `signal` reaches the room's other
 * members and goes out on core NATS only (meridian.sig.<region>.<room>, no
 * JetStream, no msg_id, no ack); it has its own rate limit and a small size
 * limit; what comes in from NATS is checked like every NATS input, and the
 * echo of the relay's own signal is dropped.
 */
#include "relay_suites.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "mr_time.h"
#include "relay_metrics.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
    fx.r.nats_was_connected = true;
    snprintf(fx.r.instance, sizeof fx.r.instance, "local/relay-1/abcdef");
}

static void teardown(void)
{
    fx_free(&fx);
}

static relay_conn *member(const char *user, const char *room)
{
    relay_conn *c = fx_conn(&fx, user);
    char frame[128];
    snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"j\",\"room\":\"%s\"}", room);
    fx_client_sends(c, frame);
    if (relay_room_find(&fx.r.rooms, room, strlen(room))->subscribing)
        fx_confirm_last(&fx);
    fx_discard(c);
    return c;
}

START_TEST(signal_reaches_the_other_members_over_core_nats)
{
    relay_conn *a = member("alice", "r"), *b = member("bob", "r"), *a2 = member("alice", "r");
    relay_conn *c = member("carol", "elsewhere");
    fx_discard(a), fx_discard(b); /* presence events */
    int publishes = fake_nats.publishes;
    fx_client_sends(a,
                    "{\"type\":\"signal\",\"id\":\"s\",\"room\":\"r\",\"data\":{\"typing\":true}}");
    ck_assert_uint_eq(a->qlen, 0); /* no ack, no echo to the sender */
    ck_assert_uint_eq(c->qlen, 0);
    const char want[] =
        "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"alice\",\"region\":\"local\","
        "\"node\":\"local/relay-1/abcdef\",\"data\":{\"typing\":true}}";
    relay_conn *others[] = {b, a2}; /* the sender's other session gets it too */
    for (int i = 0; i < 2; i++) {
        size_t n;
        char **f = fx_take(others[i], &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(f[0], want);
        fx_frames_free(f);
    }
    /* One core publish, on the signal subject, without a Nats-Msg-Id. */
    ck_assert_int_eq(fake_nats.publishes, publishes + 1);
    const fake_nats_call *p = fake_nats_last_publish();
    ck_assert_str_eq(p->subject, "meridian.sig.local.r");
    ck_assert_str_eq(p->reply, "");
    ck_assert_str_eq(p->body, want);
    ck_assert_int_eq(fake_nats.requests, 2 * 2); /* only presence and repair of the two rooms */
}
END_TEST

START_TEST(signal_limits)
{
    fx.cfg.signal_burst = 2;
    fx.cfg.signal_rate = 0.001;
    fx.cfg.signal_max_bytes = 16;
    relay_conn *a = member("alice", "r");
    member("bob", "r");
    fx_discard(a);
    char types[256];
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"n\",\"room\":\"s\",\"data\":1}");
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"big\",\"room\":\"r\","
                       "\"data\":\"0123456789abcdefg\"}");
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"nodata\",\"room\":\"r\"}");
    fx_client_sends(
        a, "{\"type\":\"signal\",\"id\":\"1\",\"room\":\"r\",\"data\":\"0123456789abcd\"}");
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"2\",\"room\":\"r\",\"data\":2}");
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"3\",\"room\":\"r\",\"data\":3}");
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:n error:big error:nodata error:3");
    /* Publishes have their own bucket (set up at hello): the signals did not use it up. */
    mr_ratelimit_init(&a->rl, 1, 1, mr_now_us());
    fx_client_sends(a, "{\"type\":\"publish\",\"id\":\"p\",\"room\":\"r\",\"data\":1}");
    size_t n;
    char **f = fx_take(a, &n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(!strstr(f[i], "rate_limited"), "publish refused: %s", f[i]);
    fx_frames_free(f);
    /* NATS down: refused before anything is delivered. */
    fx.cfg.signal_burst = 100;
    a->signal_rl_ready = false;
    fake_nats.connected = false;
    fx_discard(a);
    fx_client_sends(a, "{\"type\":\"signal\",\"id\":\"d\",\"room\":\"r\",\"data\":4}");
    fx_take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:d");
}
END_TEST

static void from_nats(const char *subject, const char *payload)
{
    fake_nats_deliver(subject, payload);
    relay_inbound_take(&fx.r);
}

START_TEST(signals_from_nats_are_checked)
{
    relay_conn *a = member("alice", "r"), *b = member("bob", "r");
    fx_discard(a);
    const char good[] =
        "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"dave\",\"region\":\"us-east\","
        "\"node\":\"us-east/relay-2/123456\",\"data\":{\"cursor\":[1,2]}}";
    int64_t rejected = relay_m.nats_rejected.value;
    from_nats("meridian.sig.us-east.r", good);
    for (relay_conn *c = a; c; c = c == a ? b : NULL) {
        size_t n;
        char **f = fx_take(c, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(f[0], good);
        fx_frames_free(f);
    }
    /* Our own signal coming back: dropped, not an error. */
    from_nats("meridian.sig.local.r",
              "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"alice\",\"region\":\"local\","
              "\"node\":\"local/relay-1/abcdef\",\"data\":1}");
    /* A room without members here: nothing to do. */
    from_nats("meridian.sig.us-east.none",
              "{\"type\":\"signal\",\"room\":\"none\",\"from\":\"d\",\"region\":\"us-east\","
              "\"node\":\"us-east/relay-2/123456\",\"data\":1}");
    ck_assert_int_eq(relay_m.nats_rejected.value, rejected);
    const char *bad[][2] = {
        {"meridian.sig.eu-west.r", good},                     /* region of another subject */
        {"meridian.sig.us-east.s", good},                     /* room of another subject */
        {"meridian.sig.us-east", good},                       /* no room */
        {"meridian.sig.us east.r", good},                     /* bad region */
        {"meridian.sig.us-east.r", "{\"type\":\"message\"}"}, /* not a signal */
        {"meridian.sig.us-east.r", "[1]"},                    /* not an object */
        {"meridian.sig.us-east.r", "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"d\","
                                   "\"region\":\"us-east\",\"node\":\"a b\",\"data\":1}"},
        {"meridian.sig.us-east.r", "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"\","
                                   "\"region\":\"us-east\",\"node\":\"n\",\"data\":1}"},
        {"meridian.sig.us-east.r", "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"d\","
                                   "\"region\":\"us-east\",\"node\":\"n\"}"},
        {"meridian.sig.us-east.r", "{\"type\":\"signal\",\"type\":\"signal\",\"room\":\"r\"}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        from_nats(bad[i][0], bad[i][1]);
    /* Larger than signals.max_bytes and its slack. */
    size_t big = (size_t)fx.cfg.signal_max_bytes + 5000;
    char *huge = malloc(big + 200);
    int n = snprintf(huge, 200,
                     "{\"type\":\"signal\",\"room\":\"r\",\"from\":\"d\",\"region\":\"us-east\","
                     "\"node\":\"n\",\"data\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}");
    from_nats("meridian.sig.us-east.r", huge);
    free(huge);
    ck_assert_int_eq(relay_m.nats_rejected.value, rejected + 11);
    ck_assert_uint_eq(a->qlen, 0);
    ck_assert_uint_eq(b->qlen, 0);
}
END_TEST

/* A member whose queue is half full skips signals instead of becoming a slow consumer. */
START_TEST(signal_skips_a_busy_member)
{
    fx.cfg.limits.max_outbound_bytes = 4096;
    relay_conn *a = member("alice", "r"), *b = member("bob", "r");
    char frame[256];
    snprintf(frame, sizeof frame, "{\"type\":\"signal\",\"room\":\"r\",\"data\":\"%0100d\"}", 0);
    for (int i = 0; i < 40; i++)
        fx_client_sends(a, frame);
    ck_assert_int_eq(b->close_code, 0);
    ck_assert_uint_le(b->qbytes, 2048);
    ck_assert_uint_gt(b->qlen, 5);
}
END_TEST

Suite *relay_signal_suite(void)
{
    Suite *s = suite_create("relay_signal");
    TCase *tc = tcase_create("signal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, signal_reaches_the_other_members_over_core_nats);
    tcase_add_test(tc, signal_limits);
    tcase_add_test(tc, signals_from_nats_are_checked);
    tcase_add_test(tc, signal_skips_a_busy_member);
    suite_add_tcase(s, tc);
    return s;
}
