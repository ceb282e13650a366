/*
 * Durable publishes against the fake NATS: a JetStream publish is a core
 * publish whose PubAck comes back on the relay's inbox (relay_publish.c).
 * The client's `ack` waits for a PubAck with a seq; errors, "no responders"
 * and time-outs after the retries answer `unavailable`; retries carry the
 * same Nats-Msg-Id; a late or foreign PubAck changes nothing.
 */
#include "relay_suites.h"

#include "relay_client.h"
#include "relay_fixture.h"
#include "relay_inbound.h"
#include "relay_deliver.h"
#include "relay_publish.h"

#include "mr_time.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static relay_fixture fx;

static void setup(void)
{
    fx_init(&fx);
    /* As if NATS had been up all along: no presence announcements among the publishes. */
    fx.r.nats_was_connected = true;
}

static void teardown(void)
{
    fx_free(&fx);
}

static void client_sends(relay_conn *c, const char *text)
{
    ck_assert_int_eq(relay_client_receive(c, text, strlen(text), false, true), 0);
}

/* The frames queued for `c`, as "type[:id][:code]" words separated by spaces; takes them. */
static void take_types(relay_conn *c, char *out, size_t cap)
{
    size_t n, used = 0;
    char **f = fx_take(c, &n);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *code = json_string_value(json_object_get(j, "code"));
        used += (size_t)snprintf(out + used, cap - used, "%s%s%s%s%s%s", i ? " " : "",
                                 json_string_value(json_object_get(j, "type")), id ? ":" : "",
                                 id ? id : "", code ? ":" : "", code ? code : "");
        json_decref(j);
    }
    fx_frames_free(f);
}

/* A member of room "r" that may publish freely. */
static relay_conn *publisher(const char *user)
{
    relay_conn *c = fx_conn(&fx, user);
    mr_ratelimit_init(&c->rl, 1000, 1000, mr_now_us());
    fx_join(&fx, c, "r", NULL);
    return c;
}

/* The PubAck (or anything else) for publish number `i` (0-based) reaches the relay. */
static void answer(int i, const char *body)
{
    ck_assert_int_lt(i, fake_nats.publishes);
    char subject[300];
    snprintf(subject, sizeof subject, "_INBOX.fake.%s", fake_nats.publish[i].reply);
    fake_nats_deliver(subject, body);
    relay_inbound_take(&fx.r);
}

static const char pub_ack[] = "{\"stream\":\"MERIDIAN_EU\",\"seq\":7}";

START_TEST(ack_waits_for_the_puback)
{
    relay_conn *a = publisher("alice");
    char types[512];
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    ck_assert_int_eq(fake_nats.publishes, 1);
    const fake_nats_call *p = &fake_nats.publish[0];
    ck_assert_str_eq(p->subject, "meridian.msg.local.r");
    ck_assert_msg(strncmp(p->reply, RELAY_INBOX_PUBACK, 2) == 0, "reply token %s", p->reply);
    ck_assert_uint_eq(strlen(p->msg_id), MR_MSG_ID_LEN);
    /* The member (the publisher) has the message at once, the ack waits for the stream. */
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "message");
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:p1");
    /* The same PubAck again (or any late one) acknowledges nothing more. */
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "");
}
END_TEST

/* PubAcks may come in any order: each acknowledges its own publish. */
START_TEST(acks_match_their_publishes)
{
    relay_conn *a = publisher("alice");
    relay_conn *b = publisher("bob");
    char types[512];
    client_sends(a, "{\"type\":\"publish\",\"id\":\"a1\",\"room\":\"r\",\"mid\":\"1\",\"data\":1}");
    client_sends(b, "{\"type\":\"publish\",\"id\":\"b1\",\"room\":\"r\",\"mid\":\"1\",\"data\":2}");
    client_sends(a, "{\"type\":\"publish\",\"id\":\"a2\",\"room\":\"r\",\"mid\":\"2\",\"data\":3}");
    ck_assert_int_eq(fake_nats.publishes, 3);
    fx_discard(a);
    fx_discard(b);
    answer(2, pub_ack);
    answer(1, "{\"stream\":\"MERIDIAN_EU\",\"seq\":9,\"duplicate\":true}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:a2");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "ack:b1");
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:a1");
}
END_TEST

/* What is not a PubAck with a seq is no ack: the client hears `unavailable`. */
START_TEST(errors_are_unavailable)
{
    static const char max_msgs[] =
        "{\"error\":{\"code\":503,\"err_code\":10077,\"description\":\"maximum messages "
        "exceeded\"}}";
    static const char *const bodies[] = {
        max_msgs,
        "", /* the "no responders" status: no stream captures the subject */
        "{\"stream\":\"MERIDIAN_EU\"}",
        "{\"stream\":\"MERIDIAN_EU\",\"seq\":\"7\"}",
        "{\"stream\":\"MERIDIAN_EU\",\"seq\":-1}",
        "{\"stream\":\"MERIDIAN_EU\",\"seq\":7,\"error\":{\"code\":500}}",
        "not json",
    };
    relay_conn *a = publisher("alice");
    char types[512];
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char frame[200];
        snprintf(
            frame, sizeof frame,
            "{\"type\":\"publish\",\"id\":\"p%zu\",\"room\":\"r\",\"mid\":\"m%zu\",\"data\":1}", i,
            i);
        client_sends(a, frame);
        fx_discard(a);
        answer((int)i, bodies[i]);
        char want[64];
        snprintf(want, sizeof want, "error:p%zu:unavailable", i);
        take_types(a, types, sizeof types);
        ck_assert_msg(strcmp(types, want) == 0, "answer %s: got %s", bodies[i], types);
    }
}
END_TEST

/*
 * No PubAck in time: the same frame goes out again with the same
 * Nats-Msg-Id and reply, publish.retries times; then `unavailable`. A
 * PubAck for any attempt acknowledges the publish.
 */
START_TEST(timeouts_retry_with_the_same_id)
{
    fx.cfg.publish_retries = 2;
    relay_conn *a = publisher("alice");
    char types[512];
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"mid\":\"m2\",\"data\":2}");
    fx_discard(a);
    int64_t t = mr_now_us();
    relay_publish_tick(&fx.r, t); /* not due yet */
    ck_assert_int_eq(fake_nats.publishes, 2);
    int64_t step = fx.cfg.publish_ack_timeout_ms * 1000 + 1;
    t += step;
    relay_publish_tick(&fx.r, t);
    ck_assert_int_eq(fake_nats.publishes, 4);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(fake_nats.publish[2 + i].msg_id, fake_nats.publish[i].msg_id);
        ck_assert_str_eq(fake_nats.publish[2 + i].reply, fake_nats.publish[i].reply);
        ck_assert_str_eq(fake_nats.publish[2 + i].body, fake_nats.publish[i].body);
    }
    /* The first publish's first attempt is acknowledged late: that is its ack. */
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:p1");
    t += step;
    relay_publish_tick(&fx.r, t);
    ck_assert_int_eq(fake_nats.publishes, 5); /* only the second publish is retried again */
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "");
    t += step;
    relay_publish_tick(&fx.r, t);
    ck_assert_int_eq(fake_nats.publishes, 5);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:p2:unavailable");
    /* Its PubAck after all: the client was told already; nothing more is sent. */
    answer(1, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "");
}
END_TEST

/* A retry while NATS is down fails at once instead of waiting another round. */
START_TEST(retry_without_nats_fails)
{
    relay_conn *a = publisher("alice");
    char types[512];
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    fx_discard(a);
    fake_nats.connected = false;
    relay_publish_tick(&fx.r, mr_now_us() + fx.cfg.publish_ack_timeout_ms * 1000 + 1);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:p1:unavailable");
    /* Refused at once while disconnected. */
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"mid\":\"m2\",\"data\":1}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "error:p2:unavailable");
}
END_TEST

/* A publisher gone before its PubAck: the PubAck is dropped, and so is a retry's failure. */
START_TEST(publisher_gone_before_the_puback)
{
    relay_conn *a = publisher("alice");
    relay_conn *b = publisher("bob");
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"mid\":\"m2\",\"data\":1}");
    fx_close(&fx, a);
    fx_discard(b);
    answer(0, pub_ack);
    fx.cfg.publish_retries = 0;
    relay_publish_tick(&fx.r, mr_now_us() + fx.cfg.publish_ack_timeout_ms * 1000 + 1);
    char types[512];
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "");
}
END_TEST

/*
 * A publisher that said "echo":false (hello; c->no_echo) gets its ack and
 * not its own message, the other member gets the message; the commit then
 * reaches both as a `commit` (the publisher has the message: it sent it),
 * never as the message itself.
 */
START_TEST(no_echo_publisher_gets_its_ack_and_the_commit)
{
    relay_conn *a = publisher("alice");
    relay_conn *b = publisher("bob");
    a->no_echo = true;
    fx_discard(a);
    fx_discard(b);
    char types[512];
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "message");
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:p1");
    relay_member *m = relay_conn_member(a, "r", 1);
    ck_assert_ptr_nonnull(m);
    const char *id = fake_nats.publish[0].msg_id;
    json_t *stored = json_pack("{s:s, s:s, s:s, s:i, s:i}", "type", "message", "room", "r",
                               "msg_id", id, "seq", 1, "data", 1);
    ck_assert(relay_deliver_commit(&fx.r, m->room, id, 1, stored));
    json_decref(stored);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "commit");
    take_types(b, types, sizeof types);
    ck_assert_str_eq(types, "commit");
    /* Without the option the publisher gets its message (the default). */
    a->no_echo = false;
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"mid\":\"m2\",\"data\":1}");
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "message");
}
END_TEST

/* Tokens that name no publish (garbage, out of range, an old generation) are ignored. */
START_TEST(foreign_tokens_are_ignored)
{
    relay_conn *a = publisher("alice");
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p1\",\"room\":\"r\",\"mid\":\"m1\",\"data\":1}");
    fx_discard(a);
    static const char *const tokens[] = {"a.",       "a.0",     "a.0.",          "a.x.0", "a.0.1",
                                         "a.ffff.0", "a.0.0.0", "a.100000000.0", "a.-1.0"};
    char types[512];
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        if (strcmp(tokens[i], fake_nats.publish[0].reply) == 0)
            continue;
        char subject[300];
        snprintf(subject, sizeof subject, "_INBOX.fake.%s", tokens[i]);
        fake_nats_deliver(subject, pub_ack);
        relay_inbound_take(&fx.r);
        take_types(a, types, sizeof types);
        ck_assert_msg(strcmp(types, "") == 0, "token %s answered: %s", tokens[i], types);
    }
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:p1");
    /* The slot is used again with a new generation: the old token does not match it. */
    client_sends(a,
                 "{\"type\":\"publish\",\"id\":\"p2\",\"room\":\"r\",\"mid\":\"m2\",\"data\":1}");
    fx_discard(a);
    ck_assert_str_ne(fake_nats.publish[1].reply, fake_nats.publish[0].reply);
    answer(0, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "");
    answer(1, pub_ack);
    take_types(a, types, sizeof types);
    ck_assert_str_eq(types, "ack:p2");
}
END_TEST

/* Many publishes in flight: every one is acknowledged once, in whatever order PubAcks come. */
START_TEST(many_in_flight)
{
    relay_conn *a = publisher("alice");
    enum { N = 60 }; /* FAKE_NATS_MAX publishes are recorded */
    for (int i = 0; i < N; i++) {
        char frame[200];
        snprintf(frame, sizeof frame,
                 "{\"type\":\"publish\",\"id\":%d,\"room\":\"r\",\"mid\":\"m%d\",\"data\":1}", i,
                 i);
        client_sends(a, frame);
    }
    fx_discard(a);
    ck_assert_int_eq(fake_nats.publishes, N);
    for (int i = N - 1; i >= 0; i -= 2)
        answer(i, pub_ack);
    for (int i = 0; i < N; i += 2)
        answer(i, pub_ack);
    size_t n;
    char **f = fx_take(a, &n);
    ck_assert_uint_eq(n, N);
    int seen[N] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *j = fx_json(f, i);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "ack");
        seen[json_integer_value(json_object_get(j, "id"))]++;
        json_decref(j);
    }
    fx_frames_free(f);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
}
END_TEST

Suite *relay_publish_suite(void)
{
    Suite *s = suite_create("relay_publish");
    TCase *tc = tcase_create("durable");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ack_waits_for_the_puback);
    tcase_add_test(tc, acks_match_their_publishes);
    tcase_add_test(tc, errors_are_unavailable);
    tcase_add_test(tc, timeouts_retry_with_the_same_id);
    tcase_add_test(tc, retry_without_nats_fails);
    tcase_add_test(tc, publisher_gone_before_the_puback);
    tcase_add_test(tc, foreign_tokens_are_ignored);
    tcase_add_test(tc, no_echo_publisher_gets_its_ack_and_the_commit);
    tcase_add_test(tc, many_in_flight);
    suite_add_tcase(s, tc);
    return s;
}
