/*
 * Webhooks of the control plane (docs/control.md, "Webhooks") against a
 * real nats-server, a real PostgreSQL and a small real HTTP receiver
 * (tests/support/hook_backend.py), which checks each request's signature
 * with the secret it shares with control and refuses a bad one.
 */
#include "ctl_test_util.h"
#include "ctl_webhook.h"
#include "mr_test.h"
#include "mr_test_backend.h"
#include "mr_test_pg.h"

#include <check.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET "webhook-test-secret-0123456789"

static mr_test_nats nats;
static mr_test_pg pg;
static natsConnection *nc;
static jsCtx *js;
static mr_test_backend backend;
static char *tmp;
static char secret_file[600];

static void setup(void)
{
    tmp = mr_test_tmpdir("webhook");
    snprintf(secret_file, sizeof secret_file, "%s/webhook.secret", tmp);
    ck_assert_int_eq(mr_test_write_file(secret_file, SECRET "\n"), 0);
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    nc = ctl_test_nats(nats.url);
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    ctl_test_stream(js, "eu-west", NULL);
}

static void teardown(void)
{
    mr_test_backend_stop(&backend);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

static void start_control(ctl_proc *c)
{
    char extra[800];
    snprintf(extra, sizeof extra,
             "\"webhook\":{\"url\":\"http://127.0.0.1:%d/webhook\",\"secret_file\":\"%s\","
             "\"retry_min_ms\":50,\"retry_max_ms\":400,\"poll_ms\":50,\"batch_max\":3,"
             "\"timeout_ms\":2000}",
             backend.port, secret_file);
    ctl_proc_init(c, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(c, NULL);
    /*
     * Ready is not yet sending: messages committed before the sender turned
     * the outbox on are not sent (docs/control.md, "Enabling and
     * disabling"). Publishing at once lost all of them now and then.
     */
    int64_t deadline = mr_test_now_ms() + 15000;
    while (mr_test_metric(c->admin_port, "meridian_control_webhook_sender") != 1) {
        ck_assert_msg(mr_test_now_ms() < deadline, "control never became the webhook sender");
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Every event the receiver accepted, in arrival order (a new reference). */
static json_t *events(void)
{
    json_t *stats = mr_test_backend_stats(&backend);
    json_t *out = json_array();
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(stats, "webhooks"), i, w)
    {
        json_array_extend(out, json_object_get(json_object_get(w, "body"), "events"));
    }
    json_decref(stats);
    return out;
}

static json_t *wait_events(size_t want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        json_t *e = events();
        if (json_array_size(e) >= want || mr_test_now_ms() > deadline)
            return e;
        json_decref(e);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static long metric(ctl_proc *c, const char *name)
{
    return mr_test_metric(c->admin_port, name);
}

static long wait_metric(ctl_proc *c, const char *name, long want, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    long v;
    while ((v = metric(c, name)) != want && mr_test_now_ms() < deadline) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return v;
}

/* The signature is HMAC-SHA256 over "<t>.<body>", as the receiver recomputes it. */
START_TEST(signature_is_hmac_of_timestamp_and_body)
{
    char sig[200];
    const char *body = "{\"events\":[]}";
    ctl_webhook_sign((const unsigned char *)SECRET, strlen(SECRET), 1700000000, body, strlen(body),
                     sig, sizeof sig);
    const char *text = "1700000000.{\"events\":[]}";
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)text, strlen(text), mac,
         &len);
    char want[100] = "t=1700000000,v1=";
    for (unsigned i = 0; i < len; i++)
        snprintf(want + 16 + 2 * i, 3, "%02x", mac[i]);
    ck_assert_str_eq(sig, want);
}
END_TEST

/* Committed messages arrive signed, in order, after the receiver's first failures. */
START_TEST(delivered_signed_in_order_after_retries)
{
    mr_test_backend_start(&backend, tmp, secret_file, 2);
    ctl_proc c;
    start_control(&c);
    char ids[7][33];
    for (int i = 0; i < 7; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "m%d", i);
        ck_assert_int_eq(
            ctl_test_publish(js, "eu-west", "lobby", "alice", mid, 1000 + i, true, ids[i]), 0);
    }
    json_t *e = wait_events(7, 20000);
    ck_assert_int_eq(json_array_size(e), 7);
    for (size_t i = 0; i < 7; i++) {
        json_t *ev = json_array_get(e, i);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "id")), ids[i]);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "message.committed");
        ck_assert_str_eq(json_string_value(json_object_get(ev, "room")), "lobby");
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "seq")), (json_int_t)i + 1);
        json_t *m = json_object_get(ev, "message");
        ck_assert_str_eq(json_string_value(json_object_get(m, "msg_id")), ids[i]);
    }
    json_decref(e);
    json_t *stats = mr_test_backend_stats(&backend);
    ck_assert_int_eq(json_integer_value(json_object_get(stats, "bad_signatures")), 0);
    json_decref(stats);
    ck_assert_int_ge(metric(&c, "meridian_control_webhook_failures_total"), 2);
    ck_assert_int_eq(wait_metric(&c, "meridian_control_webhook_backlog", 0, 5000), 0);
    ck_assert_int_eq(metric(&c, "meridian_control_webhook_delivered_total"), 7);
    ck_assert_int_eq(ctl_proc_stop(&c), 0);
    ctl_proc_free(&c);
}
END_TEST

/*
 * Messages committed while the receiver is down stay in the outbox across a
 * SIGKILL of control; the restarted control delivers every one.
 */
START_TEST(restart_resumes_without_loss)
{
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc c;
    start_control(&c);
    char ids[10][33];
    for (int i = 0; i < 3; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "a%d", i);
        ck_assert_int_eq(ctl_test_publish(js, "eu-west", "r1", "bob", mid, 1, true, ids[i]), 0);
    }
    json_t *e = wait_events(3, 20000);
    ck_assert_int_eq(json_array_size(e), 3);
    json_decref(e);
    mr_test_backend_stop(&backend);
    for (int i = 3; i < 10; i++) {
        char mid[16];
        snprintf(mid, sizeof mid, "a%d", i);
        ck_assert_int_eq(
            ctl_test_publish(js, "eu-west", i % 2 ? "r1" : "r2", "bob", mid, 1, true, ids[i]), 0);
    }
    /* Committed, not delivered: the backlog says so. */
    ck_assert(ctl_test_wait_rows(&pg, 10, 20000));
    ck_assert_int_eq(wait_metric(&c, "meridian_control_webhook_backlog", 7, 5000), 7);
    ck_assert(mr_test_stop(c.pid, SIGKILL, 5000) >= 0);
    /* The receiver comes back (on another port: control's new config says which). */
    mr_test_backend_start(&backend, tmp, secret_file, 0);
    ctl_proc c2;
    start_control(&c2);
    e = wait_events(7, 20000);
    ck_assert_int_eq(json_array_size(e), 7);
    for (int i = 3; i < 10; i++) {
        bool found = false;
        for (size_t k = 0; k < json_array_size(e); k++)
            found |=
                strcmp(json_string_value(json_object_get(json_array_get(e, k), "id")), ids[i]) == 0;
        ck_assert_msg(found, "message %d was not delivered after the restart", i);
    }
    json_decref(e);
    ck_assert_int_eq(wait_metric(&c2, "meridian_control_webhook_backlog", 0, 5000), 0);
    ck_assert_int_eq(ctl_proc_stop(&c2), 0);
    ctl_proc_free(&c2);
    ctl_proc_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_webhook");
    TCase *unit = mr_test_case(s, "unit", NULL, NULL, 10);
    tcase_add_test(unit, signature_is_hmac_of_timestamp_and_body);
    TCase *tc = mr_test_case(s, "webhook", setup, teardown, 120);
    tcase_add_test(tc, delivered_signed_in_order_after_retries);
    tcase_add_test(tc, restart_resumes_without_loss);
    return mr_test_run(s);
}
