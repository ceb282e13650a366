/*
 * Integration: the control API's publish endpoint cannot take a WebSocket
 * user's identity. A real relay (from the build), nats-server with
 * JetStream, meridian-control and PostgreSQL, all started here.
 *
 * A backend that posts {"from":"alice","mid":"m1"} through the API and
 * alice publishing mid "m1" herself through a relay are two messages: the
 * API's message identity lives in a namespace of its own, so alice's
 * publish is neither dropped as a duplicate of the API's (she used to get
 * an ack while the room and history only ever saw the API's text) nor the
 * other way round.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_pg.h"
#include "mr_test_relay.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *tmp;
static mr_test_nats nats;
static mr_test_pg pg;
static ctl_proc ctl;
static mr_test_relay relay;

static void setup(void)
{
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for SIGPIPE */
    tmp = mr_test_tmpdir("apiid");
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    /* The relay first: it creates the region stream. */
    mr_test_relay_config(&relay, tmp, "eu-west", "relay-1", nats.url, "", "");
    mr_test_relay_start(&relay, MERIDIAN_RELAY_BIN);
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_wait_ms\":10}");
    ctl_proc_start(&ctl, NULL);
}

static void teardown(void)
{
    mr_test_relay_stop_clean(&relay);
    ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&ctl);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

/* POST one message through the API; returns its msg_id (malloc'd). */
static char *api_publish(const char *room, const char *body)
{
    char path[256], hdr[128];
    snprintf(path, sizeof path, "/v1/rooms/%s/messages", room);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             CTL_TEST_KEY);
    char *resp = NULL;
    int st = mr_test_http("127.0.0.1", ctl.http_port, "POST", path, hdr, body, &resp);
    ck_assert_msg(st == 202, "POST: %d %s", st, resp);
    json_t *o = json_loads(resp, 0, NULL);
    ck_assert(json_is_string(json_object_get(o, "msg_id")));
    char *id = strdup(json_string_value(json_object_get(o, "msg_id")));
    json_decref(o);
    free(resp);
    return id;
}

/* The stored text of every message in `room`, by sender, as "from:text;" in seq order. */
static char *history_texts(const char *room, int64_t want, int timeout_ms)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT string_agg((envelope::json->>'from') || ':' || (envelope::json->'data'->>'t'),"
             " ';' ORDER BY seq) FROM messages WHERE room = '%s' HAVING count(*) = %lld",
             room, (long long)want);
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        char *v = mr_test_pg_value(&pg, sql);
        if (v && v[0])
            return v;
        free(v);
        ck_assert_msg(mr_test_now_ms() < deadline, "%s: never %lld messages in history", room,
                      (long long)want);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

START_TEST(test_api_cannot_take_a_users_identity)
{
    /* A backend speaks "as alice" first, with the mid alice is about to use. */
    char *api_id =
        api_publish("lobby", "{\"from\":\"alice\",\"mid\":\"m1\",\"data\":{\"t\":\"api\"}}");
    mr_ws alice, bob;
    mr_test_hello(&alice, &relay, "alice", NULL);
    mr_test_join(&alice, "lobby");
    mr_test_hello(&bob, &relay, "bob", NULL);
    mr_test_join(&bob, "lobby");
    mr_test_publish(&alice, "lobby", "m1", "{\"t\":\"alice\"}");
    char *ack = mr_ws_expect(&alice, "\"type\":\"ack\"", 5000);
    ck_assert_msg(ack != NULL, "no ack for alice's publish");
    json_t *a = json_loads(ack, 0, NULL);
    const char *alice_id = json_string_value(json_object_get(a, "msg_id"));
    ck_assert_msg(alice_id && strcmp(alice_id, api_id) != 0,
                  "alice's message got the API message's identity %s", api_id);
    /* Bob, in the room, receives alice's own text. */
    char *m = mr_test_next_message(&bob, 5000);
    ck_assert_msg(m && strstr(m, "\"t\":\"alice\""), "bob got %s", m ? m : "(nothing)");
    free(m);
    /* History holds both messages, each once. */
    char *texts = history_texts("lobby", 2, 15000);
    ck_assert_str_eq(texts, "alice:api;alice:alice");
    free(texts);
    /* A retried API post is still the same message (idempotent), now a duplicate. */
    char *again =
        api_publish("lobby", "{\"from\":\"alice\",\"mid\":\"m1\",\"data\":{\"t\":\"api\"}}");
    ck_assert_str_eq(again, api_id);
    free(again);
    json_decref(a);
    free(ack);
    free(api_id);
    mr_ws_close(&alice);
    mr_ws_close(&bob);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_api_identity");
    TCase *tc = mr_test_case(s, "identity", setup, teardown, 120);
    tcase_add_test(tc, test_api_cannot_take_a_users_identity);
    return mr_test_run(s);
}
