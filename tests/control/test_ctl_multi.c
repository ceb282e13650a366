/*
 * Two control planes on one region's stream at once, one of them killed
 * mid-run (real nats-server with JetStream, real PostgreSQL, two
 * meridian-control processes sharing the durable consumer). Several
 * publishers, each in its own order, write into a few rooms; afterwards
 * history must hold every message exactly once, each room's seqs must be
 * exactly 1..n, and each publisher's messages must be numbered in the
 * order they were published.
 */
#include "ctl_test_util.h"
#include "mr_test.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define PUBLISHERS    4
#define PER_PUBLISHER 500
#define TOTAL         (PUBLISHERS * PER_PUBLISHER)

static mr_test_nats nats;
static mr_test_pg pg;
static _Atomic int acked;
static _Atomic int failed;

static const char *const rooms[] = {"alpha", "beta", "gamma", "delta", "epsilon"};

static void setup(void)
{
    mr_test_nats_start(&nats, true);
    mr_test_pg_start(&pg, false);
    natsConnection *nc = ctl_test_nats(nats.url);
    jsCtx *js = NULL;
    ck_assert(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    ctl_test_stream(js, "eu-west", NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void teardown(void)
{
    mr_test_pg_destroy(&pg);
    mr_test_nats_stop(&nats);
}

typedef struct publisher {
    int index;
    pthread_t thread;
} publisher;

/* One publisher: its messages in order, each acknowledged by the stream before the next. */
static void *publisher_main(void *arg)
{
    publisher *p = arg;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (natsConnection_ConnectTo(&nc, nats.url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        atomic_fetch_add(&failed, PER_PUBLISHER);
        return NULL;
    }
    char from[16];
    snprintf(from, sizeof from, "pub%d", p->index);
    for (int i = 0; i < PER_PUBLISHER; i++) {
        char mid[16], id[33];
        snprintf(mid, sizeof mid, "%d", i);
        /* Every publisher writes every room, interleaved with the others. */
        const char *room = rooms[(i + p->index) % 5];
        if (ctl_test_publish(js, "eu-west", room, from, mid, 1764300000000 + i, true, id) == 0)
            atomic_fetch_add(&acked, 1);
        else
            atomic_fetch_add(&failed, 1);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return NULL;
}

START_TEST(test_two_control_planes_one_killed)
{
    /* Small batches so both instances get many; a short ack wait so the killed one's
     * unacknowledged messages come back within the test. */
    const char *extra = "\"batch\":{\"max_messages\":25,\"max_wait_ms\":5},"
                        "\"consumer\":{\"ack_wait_ms\":2000}";
    ctl_proc a, b;
    ctl_proc_init(&a, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_init(&b, nats.url, pg.conninfo, "eu-west", "[\"eu-west\"]", extra);
    ctl_proc_start(&a, NULL);
    ctl_proc_start(&b, NULL);

    publisher pubs[PUBLISHERS];
    for (int i = 0; i < PUBLISHERS; i++) {
        pubs[i].index = i;
        ck_assert_int_eq(pthread_create(&pubs[i].thread, NULL, publisher_main, &pubs[i]), 0);
    }
    /* Kill one instance in the middle of the load, without warning. */
    int64_t deadline = mr_test_now_ms() + 60000;
    while (atomic_load(&acked) < TOTAL * 2 / 5) {
        ck_assert_msg(mr_test_now_ms() < deadline, "publishing stalled at %d", atomic_load(&acked));
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    int64_t stored_at_kill = ctl_test_sql_int(&pg, "SELECT count(*) FROM messages");
    kill(a.pid, SIGKILL);
    mr_test_wait_exit(a.pid, 10000);
    a.pid = 0;
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(pubs[i].thread, NULL);
    ck_assert_int_eq(atomic_load(&failed), 0);
    ck_assert_int_eq(atomic_load(&acked), TOTAL);

    /* The survivor stores the rest, the killed one's unacknowledged batches included. */
    ck_assert_msg(ctl_test_wait_rows(&pg, TOTAL, 60000), "history has %lld of %d rows",
                  (long long)ctl_test_sql_int(&pg, "SELECT count(*) FROM messages"), TOTAL);
    ck_assert_int_eq(ctl_test_check_history(&pg), TOTAL);
    /* Both instances did part of the work before the kill. */
    ck_assert_msg(stored_at_kill > 0 && stored_at_kill < TOTAL, "stored at kill: %lld",
                  (long long)stored_at_kill);
    /* Each publisher's messages in each room are numbered in publish order. */
    int64_t out_of_order = ctl_test_sql_int(
        &pg, "SELECT count(*) FROM (SELECT (envelope::json->>'mid')::int AS n, "
             "lag((envelope::json->>'mid')::int) OVER (PARTITION BY room, envelope::json->>'from' "
             "ORDER BY seq) AS prev FROM messages) t WHERE prev > n");
    ck_assert_msg(out_of_order == 0,
                  "%lld messages numbered before an earlier one of the same "
                  "publisher",
                  (long long)out_of_order);
    /* Nothing more arrives later (no duplicate from a late redelivery). */
    struct timespec ts = {2, 500 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(ctl_test_check_history(&pg), TOTAL);

    ck_assert_int_eq(ctl_proc_stop(&b), 0);
    ctl_proc_free(&a);
    ctl_proc_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control_multi");
    TCase *tc = mr_test_case(s, "multi", setup, teardown, 150);
    tcase_add_test(tc, test_two_control_planes_one_killed);
    return mr_test_run(s);
}
