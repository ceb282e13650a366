/*
 * meridian-bench-ingest: measures the control plane's persistence path.
 *
 *   preload N    publish N relay-style envelopes into the region stream as
 *                fast as JetStream takes them (async, with Nats-Msg-Id);
 *   drain N      count commits on meridian.commit.> until N distinct
 *                messages are committed and report messages per second
 *                (run it while meridian-control drains a preloaded backlog);
 *   rate R D     publish R messages/s for D seconds and report the
 *                publish-to-commit latency (p50, p90, p99, max).
 *
 * Timestamps travel in the message data (monotonic microseconds of this
 * process), so latency includes the JetStream publish, the fetch, the
 * database transaction and the commit publication.
 */
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_proto.h"
#include "mr_stream.h"
#include "mr_time.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROOMS 100

static const char *url = "nats://127.0.0.1:4222";
static const char *region = "eu-west";

typedef struct tracker {
    size_t n;
    _Atomic uint8_t *seen;    /* per message index: committed already */
    int64_t *latency_us;      /* per message index */
    _Atomic size_t committed; /* distinct */
    _Atomic size_t total;     /* including republished duplicates */
    _Atomic int64_t first_us, last_us;
} tracker;

/* Pull "i":N and "t":T out of the commit without a full JSON parse (fast path). */
static int extract(const char *p, int len, long long *idx, long long *t)
{
    /* memmem, not a memcmp at every offset: this client shares the cores it measures. */
    const char *d = memmem(p, (size_t)len, "\"data\":{\"i\":", 12);
    if (!d)
        return -1;
    char *e;
    *idx = strtoll(d + 12, &e, 10);
    if (strncmp(e, ",\"t\":", 5) != 0)
        return -1;
    *t = strtoll(e + 5, NULL, 10);
    return 0;
}

static void on_commit(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    tracker *tr = arg;
    int64_t now = mr_now_us();
    long long idx, t;
    if (extract(natsMsg_GetData(msg), natsMsg_GetDataLength(msg), &idx, &t) == 0 && idx >= 0 &&
        (size_t)idx < tr->n) {
        atomic_fetch_add(&tr->total, 1);
        if (atomic_exchange(&tr->seen[idx], 1) == 0) {
            tr->latency_us[idx] = now - t;
            int64_t zero = 0;
            atomic_compare_exchange_strong(&tr->first_us, &zero, now);
            atomic_store(&tr->last_us, now);
            atomic_fetch_add(&tr->committed, 1);
        }
    }
    natsMsg_Destroy(msg);
}

static void envelope(mr_buf *b, long long i, const char *room, char id[MR_MSG_ID_LEN + 1],
                     const char *run)
{
    char mid[64];
    snprintf(mid, sizeof mid, "%s-%lld", run, i);
    mr_msg_id(room, strlen(room), "bench", mid, strlen(mid), id);
    mr_buf_reset(b);
    /* Same shape as mr_proto_message; data first carries the index and send time. */
    mr_buf_printf(b,
                  "{\"type\":\"message\",\"room\":\"%s\",\"msg_id\":\"%s\",\"from\":\"bench\","
                  "\"mid\":\"%s\",\"region\":\"%s\",\"node\":\"bench\",\"ts\":%lld,\"data\":{"
                  "\"i\":%lld,\"t\":%lld,\"text\":\"hello from the ingest benchmark\"}}",
                  room, id, mid, region, (long long)mr_wall_ms(), i, (long long)mr_now_us());
}

static jsCtx *js_async(natsConnection *nc)
{
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = 8192;
    o.PublishAsync.StallWait = 30000; /* a loaded server may be slow to ack: wait, do not fail */
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, nc, &o) != NATS_OK) {
        fprintf(stderr, "jetstream context failed\n");
        exit(1);
    }
    /* The benchmark publishes as a relay does, so it creates the stream as relays do (they own
     * it; meridian-control never creates one). */
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    char err[256];
    if (mr_stream_ensure(js, region, &sc, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return js;
}

static int publish_one(jsCtx *js, mr_buf *b, long long i, const char *run)
{
    char room[32], subj[96], id[MR_MSG_ID_LEN + 1];
    snprintf(room, sizeof room, "bench-%lld", i % ROOMS);
    envelope(b, i, room, id, run);
    snprintf(subj, sizeof subj, "meridian.msg.%s.%s", region, room);
    natsMsg *m = NULL;
    natsMsg_Create(&m, subj, NULL, b->data, (int)b->len);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    natsStatus s = js_PublishMsgAsync(js, &m, NULL);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return -1;
    }
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: meridian-bench-ingest [--nats URL] [--region R] [--run ID]\n"
                    "         preload N | drain N | rate MSGS_PER_S SECONDS\n");
    exit(2);
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    const char *run = "r0";
    int a = 1;
    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (strcmp(argv[a], "--nats") == 0)
            url = argv[a + 1];
        else if (strcmp(argv[a], "--region") == 0)
            region = argv[a + 1];
        else if (strcmp(argv[a], "--run") == 0)
            run = argv[a + 1];
        else
            usage();
    }
    if (a >= argc)
        usage();
    const char *mode = argv[a];
    natsConnection *nc = NULL;
    natsOptions *no = NULL;
    natsOptions_Create(&no);
    natsOptions_SetURL(no, url);
    natsOptions_SetMaxPendingMsgs(no, 10000000);
    if (natsConnection_Connect(&nc, no) != NATS_OK) {
        fprintf(stderr, "cannot connect to %s\n", url);
        return 1;
    }
    mr_buf b = MR_BUF_INIT;
    if (strcmp(mode, "preload") == 0 && a + 1 < argc) {
        long long n = atoll(argv[a + 1]);
        jsCtx *js = js_async(nc);
        int64_t t0 = mr_now_us();
        for (long long i = 0; i < n; i++)
            if (publish_one(js, &b, i, run) != 0) {
                fprintf(stderr, "publish %lld failed\n", i);
                return 1;
            }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
            fprintf(stderr, "pending publishes did not complete\n");
            return 1;
        }
        double s = (double)(mr_now_us() - t0) / 1e6;
        printf("preloaded %lld messages in %.2f s (%.0f msg/s)\n", n, s, (double)n / s);
        jsCtx_Destroy(js);
    } else if (strcmp(mode, "drain") == 0 && a + 1 < argc) {
        /*
         * Completion is read from the durable consumer (nothing pending,
         * nothing unacknowledged), not from the commits: commits are core
         * NATS, and a benchmark client that falls behind may miss some.
         * The clock starts at the first sign of progress.
         */
        long long n = atoll(argv[a + 1]);
        tracker tr = {.n = (size_t)n};
        tr.seen = calloc(tr.n, 1);
        tr.latency_us = calloc(tr.n, sizeof *tr.latency_us);
        natsSubscription *sub = NULL;
        natsConnection_Subscribe(&sub, nc, "meridian.commit.>", on_commit, &tr);
        natsSubscription_SetPendingLimits(sub, -1, -1);
        natsConnection_Flush(nc);
        jsCtx *js = NULL;
        natsConnection_JetStream(&js, nc, NULL);
        char stream[MR_STREAM_NAME_MAX];
        mr_stream_name(region, stream, sizeof stream);
        fprintf(stderr, "waiting for %lld messages to drain (start meridian-control now)\n", n);
        int64_t deadline = mr_now_us() + 600LL * 1000000, t_start = 0, t_end = 0;
        while (mr_now_us() < deadline) {
            jsConsumerInfo *ci = NULL;
            if (js_GetConsumerInfo(&ci, js, stream, "meridian-control", NULL, NULL) == NATS_OK) {
                uint64_t left = ci->NumPending + (uint64_t)ci->NumAckPending;
                jsConsumerInfo_Destroy(ci);
                if (!t_start && left < (uint64_t)n)
                    t_start = mr_now_us();
                if (left == 0 && t_start) {
                    t_end = mr_now_us();
                    break;
                }
            }
            /*
             * Until the drain starts, poll every 5 ms so the clock starts
             * within 5 ms of the first acks. Then consumer info is not free
             * for the server with a large backlog: poll it every 500 ms and
             * use the commits this client sees to notice the end sooner.
             */
            for (int w = 0; w < (t_start ? 25 : 1) && atomic_load(&tr.committed) < tr.n; w++) {
                struct timespec ts = {0, (t_start ? 20 : 5) * 1000000};
                nanosleep(&ts, NULL);
            }
        }
        double s = (double)(t_end - t_start) / 1e6;
        if (!t_end) {
            printf("not drained within 600 s\n");
            return 1;
        }
        printf("drained %lld messages in %.2f s: %.0f msg/s (commits seen by this client: %zu)\n",
               n, s, (double)n / s, atomic_load(&tr.committed));
        natsSubscription_Destroy(sub);
        jsCtx_Destroy(js);
        free((void *)tr.seen);
        free(tr.latency_us);
    } else if (strcmp(mode, "rate") == 0 && a + 2 < argc) {
        long long rate = atoll(argv[a + 1]), secs = atoll(argv[a + 2]);
        tracker tr = {.n = (size_t)(rate * secs)};
        tr.seen = calloc(tr.n, 1);
        tr.latency_us = calloc(tr.n, sizeof *tr.latency_us);
        natsSubscription *sub = NULL;
        natsConnection_Subscribe(&sub, nc, "meridian.commit.>", on_commit, &tr);
        natsSubscription_SetPendingLimits(sub, -1, -1);
        natsConnection_Flush(nc);
        jsCtx *js = js_async(nc);
        int64_t t0 = mr_now_us();
        /* Publish on a 1 ms grid: every tick sends the messages now due. */
        for (long long i = 0; i < (long long)tr.n;) {
            long long due = (mr_now_us() - t0) * rate / 1000000;
            if (due > (long long)tr.n)
                due = (long long)tr.n;
            for (; i < due; i++)
                publish_one(js, &b, i, run);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        double pub_s = (double)(mr_now_us() - t0) / 1e6;
        int64_t deadline = mr_now_us() + 60LL * 1000000;
        while (atomic_load(&tr.committed) < tr.n && mr_now_us() < deadline) {
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
        size_t done = atomic_load(&tr.committed);
        int64_t *l = malloc(done * sizeof *l);
        size_t k = 0;
        for (size_t i = 0; i < tr.n; i++)
            if (tr.seen[i])
                l[k++] = tr.latency_us[i];
        qsort(l, k, sizeof *l, cmp64);
        if (k == 0) {
            printf("no commits\n");
            return 1;
        }
        size_t p50 = k / 2, p90 = k * 9 / 10, p99 = k * 99 / 100; /* indices into the sorted l */
        printf("rate %lld msg/s for %lld s (published in %.2f s): committed %zu/%zu; "
               "publish-to-commit p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
               rate, secs, pub_s, done, tr.n, l[p50] / 1000.0, l[p90] / 1000.0, l[p99] / 1000.0,
               l[k - 1] / 1000.0);
        free(l);
        natsSubscription_Destroy(sub);
        jsCtx_Destroy(js);
        free((void *)tr.seen);
        free(tr.latency_us);
    } else {
        usage();
    }
    mr_buf_free(&b);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(no);
    return 0;
}
