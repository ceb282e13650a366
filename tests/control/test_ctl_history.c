/*
 * Integration: history at real sizes and across a PostgreSQL restart,
 * against a real nats-server (JetStream) and PostgreSQL started here.
 *
 * - Histories of 1,000 messages of 2 KB and 100 of 60 KB come back
 *   complete to a NATS requester (the relays' path), page by page, each
 *   reply within the connection's max_payload: a page is bounded by bytes,
 *   holds at least one message and says more:true when it was cut.
 * - The first history query after PostgreSQL restarts is answered (the
 *   pool reconnects and retries once); while PostgreSQL is down the error
 *   says "history unavailable" without any of the server's own text, and
 *   history is back without a client having to fail first.
 */
#include "ctl_test_util.h"
#include "mr_test.h"
#include "mr_test_pg.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mr_test_nats nats;
static mr_test_pg pg;
static natsConnection *nc;
static jsCtx *js;
static ctl_proc ctl;

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    nc = ctl_test_nats(nats.url);
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    ctl_test_stream(js, "eu-west", NULL); /* as the region's relays do */
    ctl_proc_init(&ctl, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_wait_ms\":10}");
    ctl_proc_start(&ctl, NULL);
}

static void teardown(void)
{
    if (ctl.pid > 0)
        ck_assert_int_eq(ctl_proc_stop(&ctl), 0);
    ctl_proc_free(&ctl);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

static void wait_rows(const char *room, int64_t want)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE room = '%s'", room);
    int64_t deadline = mr_test_now_ms() + 60000, n = -1;
    while (mr_test_now_ms() < deadline && (n = ctl_test_sql_int(&pg, sql)) != want) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(n == want, "%s: %lld rows stored, want %lld", room, (long long)n,
                  (long long)want);
}

static void publish_room(const char *room, int count, size_t bytes)
{
    for (int i = 0; i < count; i++) {
        char mid[32], id[33];
        snprintf(mid, sizeof mid, "m%d", i);
        ck_assert_msg(ctl_test_publish_sized(js, "eu-west", room, "alice", mid, 1764300000000 + i,
                                             bytes, id) == 0,
                      "publish %s %d", room, i);
    }
    wait_rows(room, count);
}

/*
 * Read `room` the way a relay resumes and then pages: after=0 with the
 * largest limit, then after the last seq received while more is true.
 * Every message must arrive once, in seq order; returns the number of pages.
 */
static int read_all_pages(const char *room, int count)
{
    int64_t max_payload = natsConnection_GetMaxPayload(nc);
    ck_assert_int_gt(max_payload, 0);
    long long next = 1;
    int pages = 0;
    bool more = true;
    while (more) {
        char body[64];
        snprintf(body, sizeof body, "{\"after\":%lld,\"limit\":1000}", next - 1);
        size_t len = 0;
        json_t *o = ctl_test_history(nc, room, body, &len);
        ck_assert_msg(json_object_get(o, "error") == NULL, "%s: error reply", room);
        ck_assert_int_le((int64_t)len, max_payload);
        json_t *msgs = json_object_get(o, "messages");
        ck_assert_msg(json_array_size(msgs) >= 1, "%s: a page without messages", room);
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);
            ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), next);
            next++;
        }
        ck_assert_int_eq(json_integer_value(json_object_get(o, "last_seq")), count);
        more = json_is_true(json_object_get(o, "more"));
        ck_assert_msg(more == (next <= count), "%s: more=%d after seq %lld of %d", room, more,
                      next - 1, count);
        json_decref(o);
        pages++;
    }
    ck_assert_int_eq(next - 1, count);
    return pages;
}

START_TEST(test_large_histories_come_back_complete)
{
    publish_room("two-k", 1000, 2048);
    publish_room("sixty-k", 100, 60 * 1024);
    /* 2 MB and 6 MB of history: more than one 1 MB page each. */
    ck_assert_int_ge(read_all_pages("two-k", 1000), 2);
    ck_assert_int_ge(read_all_pages("sixty-k", 100), 6);
    /* Backwards paging is bounded the same way: the newest messages first, in ascending order. */
    json_t *o = ctl_test_history(nc, "sixty-k", "{\"before\":101,\"limit\":1000}", NULL);
    json_t *msgs = json_object_get(o, "messages");
    size_t n = json_array_size(msgs);
    ck_assert(n >= 1 && n < 100);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, n - 1), "seq")), 100);
    ck_assert(json_is_true(json_object_get(o, "more")));
    json_decref(o);
    /* The HTTP API pages the same history by bytes too. */
    char *body = NULL;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", CTL_TEST_KEY);
    int st = mr_test_http("127.0.0.1", ctl.http_port, "GET",
                          "/v1/rooms/sixty-k/messages?after=0&limit=1000", hdr, NULL, &body);
    ck_assert_int_eq(st, 200);
    o = json_loads(body, 0, NULL);
    ck_assert(json_array_size(json_object_get(o, "messages")) >= 1);
    json_decref(o);
    free(body);
}
END_TEST

/* An error reply carries the fixed text, nothing of PostgreSQL's. */
static void assert_clean_error(json_t *o)
{
    json_t *e = json_object_get(o, "error");
    ck_assert_msg(json_is_object(e), "no error in the reply");
    const char *msg = json_string_value(json_object_get(e, "message"));
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "unavailable");
    ck_assert_str_eq(msg, "history unavailable");
}

/* Four queries in a row (two per history worker) all return the room's `count` messages. */
static void assert_answered(const char *room, size_t count, const char *when)
{
    for (int i = 0; i < 4; i++) {
        json_t *o = ctl_test_history(nc, room, "{\"after\":0}", NULL);
        ck_assert_msg(json_object_get(o, "error") == NULL, "%s: query %d failed", when, i);
        ck_assert_uint_eq(json_array_size(json_object_get(o, "messages")), count);
        json_decref(o);
    }
}

START_TEST(test_history_after_postgres_restart)
{
    publish_room("restart", 5, 16);
    assert_answered("restart", 5, "before the outage");
    /* While PostgreSQL is down, the reply says so without its internals. */
    mr_test_pg_stop(&pg);
    for (int i = 0; i < 4; i++) {
        json_t *o = ctl_test_history(nc, "restart", "{\"after\":0}", NULL);
        assert_clean_error(o);
        json_decref(o);
    }
    char *body = NULL;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", CTL_TEST_KEY);
    int st = mr_test_http("127.0.0.1", ctl.http_port, "GET", "/v1/rooms/restart/messages", hdr,
                          NULL, &body);
    ck_assert_int_eq(st, 503);
    json_t *o = json_loads(body, 0, NULL);
    assert_clean_error(o);
    json_decref(o);
    free(body);
    /* Back within a deadline (the idle workers reconnect), then on every worker. */
    mr_test_pg_restart(&pg);
    int64_t deadline = mr_test_now_ms() + 15000;
    for (;;) {
        o = ctl_test_history(nc, "restart", "{\"after\":0}", NULL);
        bool ok = json_object_get(o, "error") == NULL;
        if (!ok)
            assert_clean_error(o);
        json_decref(o);
        if (ok)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "history not back after the restart");
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_answered("restart", 5, "after the restart");
}
END_TEST

START_TEST(test_first_query_after_restart_is_answered)
{
    publish_room("bounce", 3, 16);
    assert_answered("bounce", 3, "before the restart");
    /* A restart between two queries: the sessions the workers hold are dead. */
    mr_test_pg_stop(&pg);
    mr_test_pg_restart(&pg);
    assert_answered("bounce", 3, "after the restart");
    char *body = NULL;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", CTL_TEST_KEY);
    mr_test_pg_stop(&pg);
    mr_test_pg_restart(&pg);
    int st = mr_test_http("127.0.0.1", ctl.http_port, "GET", "/v1/rooms/bounce/messages", hdr, NULL,
                          &body);
    ck_assert_msg(st == 200, "HTTP after the restart: %d %s", st, body);
    free(body);
}
END_TEST

/* Publishes `n` small messages into "live", one at a time, while the test reads. */
static void *live_publisher(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        char mid[32], id[33];
        snprintf(mid, sizeof mid, "l%d", i);
        if (ctl_test_publish_sized(js, "eu-west", "live", "dora", mid, 1764300000000 + i, 16, id) !=
            0)
            return (void *)1;
    }
    return NULL;
}

/*
 * A reply describes one snapshot of the room: it never says last_seq N and
 * leaves out a message at or below N that it was asked for. (The page and
 * last_seq used to come from two statements when the page was empty, so a
 * commit between them gave {"messages":[],"more":false,"last_seq":5} for
 * after 0.) Read while messages are being committed, and check every reply.
 */
START_TEST(test_reply_is_one_snapshot)
{
    static int n = 1000;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, live_publisher, &n), 0);
    long long seen = 0;
    int replies = 0;
    int64_t deadline = mr_test_now_ms() + 60000;
    while (seen < n && mr_test_now_ms() < deadline) {
        char body[64];
        snprintf(body, sizeof body, "{\"after\":%lld}", seen);
        json_t *o = ctl_test_history(nc, "live", body, NULL);
        json_t *msgs = json_object_get(o, "messages");
        long long last = json_integer_value(json_object_get(o, "last_seq"));
        size_t k = json_array_size(msgs);
        bool more = json_is_true(json_object_get(o, "more"));
        /* Without more, the page holds everything after `seen` up to last_seq. */
        ck_assert_msg(more || last == seen + (long long)k,
                      "reply %d after %lld: %zu messages, more false, last_seq %lld", replies, seen,
                      k, last);
        if (k > 0)
            seen = json_integer_value(json_object_get(json_array_get(msgs, k - 1), "seq"));
        json_decref(o);
        replies++;
    }
    void *rc;
    pthread_join(t, &rc);
    ck_assert_ptr_null(rc);
    ck_assert_int_eq(seen, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_history");
    TCase *tc = mr_test_case(s, "sizes", setup, teardown, 240);
    tcase_add_test(tc, test_large_histories_come_back_complete);
    tc = mr_test_case(s, "outage", setup, teardown, 120);
    tcase_add_test(tc, test_history_after_postgres_restart);
    tc = mr_test_case(s, "snapshot", setup, teardown, 120);
    tcase_add_test(tc, test_reply_is_one_snapshot);
    tc = mr_test_case(s, "restart", setup, teardown, 120);
    tcase_add_test(tc, test_first_query_after_restart_is_answered);
    return mr_test_run(s);
}
