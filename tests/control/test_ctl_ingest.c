/*
 * Integration: the persistence path of meridian-control against a real
 * nats-server (JetStream) and a real PostgreSQL, both started here.
 * Exactly-once under duplicates and under a SIGKILL between the database
 * commit and the stream ack, no loss across a PostgreSQL outage, history
 * order, and the NATS history service.
 */
#include "ctl_test_util.h"
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_test.h"
#include "mr_test_pg.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* ---- commit collector: remembers every (msg_id, seq) announced on meridian.commit.> ---- */

typedef struct commit_rec {
    char msg_id[33];
    long long seq;
} commit_rec;

typedef struct collector {
    pthread_mutex_t mu;
    commit_rec *recs;
    size_t n, cap;
    int malformed;
    natsSubscription *sub;
} collector;

static void on_commit(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    collector *c = arg;
    json_t *o = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    const char *id = json_string_value(json_object_get(o, "msg_id"));
    json_t *m = json_object_get(o, "message");
    long long seq = json_integer_value(json_object_get(o, "seq"));
    pthread_mutex_lock(&c->mu);
    if (!id || strlen(id) != 32 || seq < 1 ||
        json_integer_value(json_object_get(m, "seq")) != seq ||
        !json_is_string(json_object_get(m, "msg_id")) ||
        strcmp(json_string_value(json_object_get(m, "msg_id")), id) != 0) {
        c->malformed++;
    } else {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->recs = mr_realloc(c->recs, c->cap * sizeof *c->recs);
        }
        memcpy(c->recs[c->n].msg_id, id, 33);
        c->recs[c->n].seq = seq;
        c->n++;
    }
    pthread_mutex_unlock(&c->mu);
    json_decref(o);
    natsMsg_Destroy(msg);
}

static void collector_start(collector *c, natsConnection *nc)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    ck_assert(natsConnection_Subscribe(&c->sub, nc, "meridian.commit.>", on_commit, c) == NATS_OK);
    ck_assert(natsConnection_Flush(nc) == NATS_OK);
}

static int cmp_rec(const void *a, const void *b)
{
    return strcmp(((const commit_rec *)a)->msg_id, ((const commit_rec *)b)->msg_id);
}

/* Every msg_id was announced with one seq only; returns the number of distinct msg_ids. */
static size_t collector_check(collector *c)
{
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    ck_assert_int_eq(c->malformed, 0);
    qsort(c->recs, c->n, sizeof *c->recs, cmp_rec);
    size_t distinct = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (i > 0 && strcmp(c->recs[i].msg_id, c->recs[i - 1].msg_id) == 0) {
            ck_assert_msg(c->recs[i].seq == c->recs[i - 1].seq,
                          "msg_id %s committed with seq %lld and %lld", c->recs[i].msg_id,
                          c->recs[i].seq, c->recs[i - 1].seq);
            continue;
        }
        distinct++;
    }
    free(c->recs);
    return distinct;
}

/* ---- fixture ---- */

static mr_test_nats nats;
static mr_test_pg pg;
static natsConnection *nc;
static jsCtx *js;

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    nc = ctl_test_nats(nats.url);
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    /* The streams exist before control starts, as the region's relays create them. */
    ctl_test_stream(js, "eu-west", NULL);
    ctl_test_stream(js, "us-east", NULL);
}

static void teardown(void)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

/* Wait until the durable consumer has nothing pending or unacknowledged. */
static bool wait_drained(const char *stream, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, js, stream, "meridian-control", NULL, NULL) == NATS_OK) {
            bool done = ci->NumPending == 0 && ci->NumAckPending == 0;
            jsConsumerInfo_Destroy(ci);
            if (done)
                return true;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool wait_rows(int64_t want, int timeout_ms)
{
    return ctl_test_wait_rows(&pg, want, timeout_ms);
}

static const char *rooms[] = {"lobby", "room-b", "room_c", "d"};

START_TEST(test_exactly_once_duplicates)
{
    /* Two instances share the durable consumer: no message may be numbered twice. */
    ctl_proc a, b;
    const char *extra = "\"batch\":{\"max_messages\":20,\"max_wait_ms\":20}";
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_init(&b, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(&a, NULL);
    ctl_proc_start(&b, NULL);
    collector col;
    collector_start(&col, nc);

    char id[33];
    int64_t ts = 1764300000000;
    for (int i = 0; i < 300; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "m%d", i);
        ck_assert(ctl_test_publish(js, "eu-west", rooms[i % 3], "alice", mid, ts + i, true, id) ==
                  0);
    }
    /* Retries through the stream's de-duplication window (same Nats-Msg-Id): dropped there. */
    for (int i = 0; i < 50; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "m%d", i);
        ck_assert(ctl_test_publish(js, "eu-west", rooms[i % 3], "alice", mid, ts + 9000 + i, true,
                                   id) == 0);
    }
    /*
     * Retries the stream keeps (no Nats-Msg-Id, a later ts, as after a long
     * reconnect): only the database identity can drop these.
     */
    for (int i = 100; i < 200; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "m%d", i);
        ck_assert(ctl_test_publish(js, "eu-west", rooms[i % 3], "alice", mid, ts + 99000 + i, false,
                                   id) == 0);
    }
    ck_assert_msg(wait_drained("MERIDIAN_EU_WEST", 30000), "consumer not drained");
    ck_assert(wait_rows(300, 10000));
    ck_assert_int_eq(ctl_test_check_history(&pg), 300);
    for (int r = 0; r < 3; r++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT max(seq) FROM messages WHERE room = '%s'", rooms[r]);
        ck_assert_int_eq(ctl_test_sql_int(&pg, sql), 100);
    }
    /*
     * Which copy of a retried message is kept depends on which instance
     * commits first (both share the consumer); either way it is kept once,
     * with the identity of the message, whatever its ts.
     */
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT count(DISTINCT envelope::json->>'mid') FROM "
                                           "messages"),
                     300);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT count(*) FROM message_ids"), 300);
    /* Commits: every message announced, the duplicates with the same seq again. */
    int64_t deadline = mr_test_now_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&col.mu);
        size_t n = col.n;
        pthread_mutex_unlock(&col.mu);
        if (n >= 400 || mr_test_now_ms() > deadline)
            break;
        struct timespec tsl = {0, 20 * 1000000};
        nanosleep(&tsl, NULL);
    }
    ck_assert_int_eq(collector_check(&col), 300);
    ck_assert_int_eq(ctl_proc_stop(&a), 0);
    ck_assert_int_eq(ctl_proc_stop(&b), 0);
    ctl_proc_free(&a);
    ctl_proc_free(&b);
}
END_TEST

START_TEST(test_crash_between_commit_and_ack)
{
    ctl_proc a;
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_messages\":25,\"max_wait_ms\":20},"
                  "\"consumer\":{\"ack_wait_ms\":1000}");
    ctl_proc_start(&a, "MERIDIAN_CONTROL_TEST_KILL_AFTER_COMMIT=2");
    collector col;
    collector_start(&col, nc);
    char id[33];
    for (int i = 0; i < 200; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "c%d", i);
        ck_assert(ctl_test_publish(js, "eu-west", rooms[i % 4], "bob", mid, 1764300000000 + i, true,
                                   id) == 0);
    }
    int st = mr_test_wait_exit(a.pid, 30000);
    ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "control did not die by SIGKILL after the commit (status %d)", st);
    a.pid = 0;
    /* Two batches were committed but their messages never acked. */
    int64_t stored = ctl_test_sql_int(&pg, "SELECT count(*) FROM messages");
    ck_assert_int_gt(stored, 0);
    ck_assert_int_lt(stored, 200);
    int64_t committed_before = stored;

    ctl_proc_start(&a, NULL);
    ck_assert_msg(wait_drained("MERIDIAN_EU_WEST", 30000), "consumer not drained");
    ck_assert(wait_rows(200, 10000));
    ck_assert_int_eq(ctl_test_check_history(&pg), 200);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT max(last_seq) FROM rooms"), 50);
    /* The redelivered, already committed messages were republished with their first seq. */
    int64_t deadline = mr_test_now_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&col.mu);
        size_t n = col.n;
        pthread_mutex_unlock(&col.mu);
        if (n >= (size_t)(200 + 0 * committed_before) || mr_test_now_ms() > deadline)
            break;
        struct timespec tsl = {0, 20 * 1000000};
        nanosleep(&tsl, NULL);
    }
    ck_assert_int_eq(collector_check(&col), 200);
    ck_assert_int_eq(ctl_proc_stop(&a), 0);
    ctl_proc_free(&a);
}
END_TEST

/* ---- steady publisher for the outage test ---- */

typedef struct publisher {
    pthread_t thread;
    _Atomic int stop;
    char (*acked)[33];     /* read by the test only after the join */
    _Atomic size_t nacked; /* watched by the test while publishing */
    size_t cap;
    int failures;
} publisher;

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    for (int i = 0; !p->stop && i < 100000; i++) {
        char mid[32], id[33];
        snprintf(mid, sizeof mid, "p%d", i);
        if (ctl_test_publish(js, "eu-west", rooms[i % 3], "carol", mid, 1764300000000 + i, true,
                             id) == 0) {
            if (p->nacked == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 1024;
                p->acked = mr_realloc(p->acked, p->cap * sizeof *p->acked);
            }
            memcpy(p->acked[p->nacked], id, 33);
            atomic_fetch_add(&p->nacked, 1);
        } else {
            p->failures++;
        }
        struct timespec ts = {0, 4 * 1000000}; /* steady rate, about 200 messages/s */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

START_TEST(test_pg_outage_no_loss)
{
    ctl_proc a;
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_messages\":100,\"max_wait_ms\":20}");
    ctl_proc_start(&a, NULL);
    publisher p = {0};
    pthread_create(&p.thread, NULL, publisher_main, &p);
    /* Let some traffic flow, then take the database away under load. */
    int64_t deadline = mr_test_now_ms() + 10000;
    while (ctl_test_sql_int(&pg, "SELECT count(*) FROM messages") < 100 &&
           mr_test_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    mr_test_pg_stop(&pg);
    size_t at_stop = p.nacked;
    /* Keep publishing while PostgreSQL is down: the stream must hold the backlog. */
    deadline = mr_test_now_ms() + 10000;
    while (p.nacked < at_stop + 400 && mr_test_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(mr_test_alive(a.pid), "control died while PostgreSQL was down");
    char *body = NULL;
    int rs = mr_test_http_get("127.0.0.1", a.admin_port, "/readyz", &body);
    ck_assert_int_eq(rs, 503);
    free(body);
    mr_test_pg_restart(&pg);
    deadline = mr_test_now_ms() + 10000;
    size_t at_start = p.nacked;
    while (p.nacked < at_start + 200 && mr_test_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    p.stop = 1;
    pthread_join(p.thread, NULL);
    ck_assert_int_eq(p.failures, 0);
    ck_assert_msg(wait_drained("MERIDIAN_EU_WEST", 60000), "backlog not caught up");
    ck_assert(wait_rows((int64_t)p.nacked, 10000));
    ck_assert_int_eq(ctl_test_check_history(&pg), (int64_t)p.nacked);
    /* Every PubAck'd identity is in history (checked by value, not only by count). */
    mr_buf arr = MR_BUF_INIT;
    mr_buf_puts(&arr, "SELECT count(*) FROM messages WHERE msg_id = ANY('{");
    for (size_t i = 0; i < p.nacked; i++)
        mr_buf_printf(&arr, "%s%s", i ? "," : "", p.acked[i]);
    mr_buf_puts(&arr, "}'::uuid[])");
    ck_assert_int_eq(ctl_test_sql_int(&pg, arr.data), (int64_t)p.nacked);
    mr_buf_free(&arr);
    free(p.acked);
    ck_assert_int_eq(ctl_proc_stop(&a), 0);
    ctl_proc_free(&a);
}
END_TEST

/* ---- history over NATS request-reply ---- */

static json_t *history_request(const char *room, const char *body)
{
    return ctl_test_history(nc, room, body, NULL);
}

static void assert_page(json_t *o, long long first, long long count, bool more, long long last)
{
    json_t *msgs = json_object_get(o, "messages");
    ck_assert_msg(json_is_array(msgs), "no messages array");
    ck_assert_int_eq(json_array_size(msgs), count);
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), first + (long long)i);
        ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "message");
    }
    ck_assert(json_is_true(json_object_get(o, "more")) == more);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "last_seq")), last);
}

START_TEST(test_history_nats)
{
    ctl_proc a;
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\",\"us-east\"]", NULL);
    ctl_proc_start(&a, NULL);
    char id[33];
    for (int i = 0; i < 250; i++) {
        char mid[32];
        snprintf(mid, sizeof mid, "h%d", i);
        /* Two regions feed the same room: one order per room all the same. */
        ck_assert(ctl_test_publish(js, i % 2 ? "us-east" : "eu-west", "hist", "dave", mid,
                                   1764300000000 + i, true, id) == 0);
    }
    ck_assert(wait_rows(250, 30000));
    ck_assert_int_eq(ctl_test_check_history(&pg), 250);

    json_t *o = history_request("hist", "{\"after\":0,\"limit\":100}");
    assert_page(o, 1, 100, true, 250);
    json_decref(o);
    o = history_request("hist", "{\"after\":200}");
    assert_page(o, 201, 50, false, 250);
    json_decref(o);
    o = history_request("hist", "{\"after\":0,\"before\":11,\"limit\":5}");
    assert_page(o, 6, 5, true, 250);
    json_decref(o);
    o = history_request("hist", "");
    assert_page(o, 1, 100, true, 250);
    json_decref(o);
    o = history_request("nobody-here", "{\"after\":0}");
    assert_page(o, 1, 0, false, 0);
    json_decref(o);

    static const char *bad[] = {
        "{\"limit\":0}", "{\"limit\":1001}", "{\"after\":-1}", "{\"after\":\"1\"}",
        "[1,2]",         "not json",         "{\"what\":1}",   "{\"after\":1.5}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o = history_request("hist", bad[i]);
        json_t *e = json_object_get(o, "error");
        ck_assert_msg(e != NULL, "no error for %s", bad[i]);
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "bad_request");
        json_decref(o);
    }
    /* Still alive and serving after the bad requests. */
    o = history_request("hist", "{\"after\":249}");
    assert_page(o, 250, 1, false, 250);
    json_decref(o);
    ck_assert_int_eq(ctl_proc_stop(&a), 0);

    /* Schema version and partitions: maintenance is idempotent, retention drops partitions. */
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT max(version) FROM schema_migrations"), 5);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT meridian_maintain('1 day', 3, '30 days')"), 0);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT meridian_maintain('1 day', 3, '30 days')"), 0);
    ck_assert_int_ge(ctl_test_sql_int(&pg, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                           "'messages'::regclass"),
                     5);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT count(*) FROM messages_default"), 0);
    /* A negative retention makes every partition expired: they are dropped, rows not deleted. */
    ck_assert_int_ge(ctl_test_sql_int(&pg, "SELECT meridian_maintain('1 day', 0, '-10 days')"), 4);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT count(*) FROM messages"), 0);
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT count(*) FROM message_ids"), 0);
    /* Sequences continue after retention: rooms keep their last_seq. */
    ck_assert_int_eq(ctl_test_sql_int(&pg, "SELECT last_seq FROM rooms WHERE room = 'hist'"), 250);
    ctl_proc_free(&a);
}
END_TEST

/*
 * Waits inside ingest (the fetcher's pause between pulls, the hand-off
 * between lanes and the fetcher) are durations: a wall clock stepped back
 * an hour (tests/support/mr_test_clockstep.c) must not stretch them, or
 * messages published after the step would sit in the stream for an hour.
 */
START_TEST(test_wall_clock_step_does_not_stall_ingest)
{
    ctl_proc a;
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]",
                  "\"batch\":{\"max_wait_ms\":20}");
    mr_test_clockstep_env(3600);
    ctl_proc_start(&a, NULL);
    mr_test_clockstep_env(0);
    char id[33];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            char mid[32];
            snprintf(mid, sizeof mid, "c%d-%d", round, i);
            ck_assert(ctl_test_publish(js, "eu-west", "clock", "erin", mid, 1764300000000 + i, true,
                                       id) == 0);
        }
        ck_assert_msg(wait_rows(20 * (round + 1), 15000), "round %d: messages not stored; see %s",
                      round, a.log);
    }
    ck_assert_int_eq(ctl_proc_stop(&a), 0);
    ctl_proc_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_ingest");
    TCase *tc = tcase_create("ingest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exactly_once_duplicates);
    tcase_add_test(tc, test_crash_between_commit_and_ack);
    tcase_add_test(tc, test_pg_outage_no_loss);
    tcase_add_test(tc, test_history_nats);
    suite_add_tcase(s, tc);
    /* The ingest lanes under TSan (scripts/test --tsan runs only this case): duplicates
     * spread over lanes, and lanes retrying through a PostgreSQL outage. */
    TCase *threads = mr_test_case(s, "threads", setup, teardown, 240);
    tcase_set_tags(threads, "tsan_only");
    tcase_add_test(threads, test_exactly_once_duplicates);
    tcase_add_test(threads, test_pg_outage_no_loss);
    TCase *clock = mr_test_case(s, "clock", setup, teardown, 120);
    tcase_add_test(clock, test_wall_clock_step_does_not_stall_ingest);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
