/*
 * Ingest: one thread per region stream.
 *
 * A fetcher thread owns the NATS pull subscription: it fetches up to
 * batch.max_messages (waiting at most batch.max_wait_ms), validates each
 * message and splits the batch into lanes by a hash of the room. Each lane
 * is a thread with its own PostgreSQL session: it calls meridian_ingest()
 * once for its part of the batch (one statement, hence one transaction,
 * which assigns per-room sequence numbers and skips identities already
 * stored), publishes one meridian.commit.<room> per message, and only then
 * acks the stream messages.
 *
 * Lanes exist because one PostgreSQL session runs on one core: two lanes
 * write disjoint sets of rooms in parallel without contending for room
 * locks, and a room always maps to the same lane, whose queue is FIFO, so
 * each room's messages are numbered in stream order. The fetcher keeps at
 * most two batches queued per lane, which bounds memory and overlaps
 * fetching and validation with the database work.
 *
 * Why this order gives exactly-once history: a message is acked only after
 * its row is committed, so a crash at any point leaves it unacked and
 * JetStream redelivers it after consumer.ack_wait_ms; the redelivered copy
 * finds its identity row and gets the seq stored the first time, so the
 * commit republished is identical.
 *
 * Several control instances may run for one region (availability), but
 * only one of them ingests it at a time: the leader, which holds a
 * PostgreSQL advisory lock named after the region on a session of its own
 * (lead_check). Two instances pulling from one consumer would each get
 * part of a publisher's messages and could commit the later part first,
 * numbering a publisher's messages out of the order in which the relays
 * delivered them. A standby checks every second and takes over when the
 * leader's session ends (its process died, or it stopped). Messages the
 * old leader had fetched but not acknowledged are redelivered by JetStream
 * only after consumer.ack_wait_ms, and ahead of newer ones; so a new leader
 * that finds unacknowledged messages waits that long before its first
 * pull (lead_check), and seqs stay in stream order across the takeover.
 * Exactly-once does not depend on the lock: meridian_ingest() locks the
 * batch's room rows before looking identities up, so even two instances
 * pulling at once never number a message twice.
 *
 * When PostgreSQL is unreachable a lane keeps the batch it holds and
 * reconnects with exponential backoff (libpq tries every host of a
 * multi-host conninfo); the fetcher stops fetching while any lane is
 * disconnected or full: the backlog stays in the stream, which is what the
 * stream is for.
 *
 * The stream itself belongs to the region's relays: they create it and own
 * its configuration. Ingest only checks it (check_stream) and waits while
 * it is absent; it never creates or changes a stream.
 */
#include "ctl_ingest.h"
#include "ctl_db.h"
#include "ctl_envelope.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_proto.h"
#include "mr_stream.h"
#include "mr_time.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
#define MAINTAIN_EVERY_MS (10 * 60 * 1000)
#define LANE_QUEUE_MAX    2
/* Fetch wait while lanes work: their finished batches are acked between fetches. */
#define BUSY_FETCH_WAIT_MS 5
/* How long one pull's answer is awaited before the fetcher asks again (late answers are kept). */
#define PULL_ANSWER_WAIT_MS 1000
/* How often an absent stream is looked for again, and a refused one checked again. */
#define STREAM_ABSENT_RETRY_MS   1000
#define STREAM_MISMATCH_RETRY_MS 5000
/* A refusal is logged again at most this often while it lasts. */
#define STREAM_REFUSAL_LOG_MS (60 * 1000)
/* How often a standby tries to become the region's leader, and a leader checks its lock. */
#define LEAD_CHECK_MS 1000
/* The advisory lock class of ingest leadership (the key is a hash of the region). */
#define LEAD_LOCK_CLASS 0x4d524447 /* "MRDG" */
/* How often the consumer's lag and the stream's fill are read for /metrics. */
#define LAG_REFRESH_MS 5000
/* The longest a lag reading may hold the fetcher up when NATS answers slowly. */
#define LAG_REQUEST_WAIT_MS 1000

/* What ingest knows of its region stream (see check_stream). */
enum stream_state { STREAM_PENDING, STREAM_ABSENT, STREAM_OK, STREAM_MISMATCH };

static mr_metric m_stored = MR_COUNTER("meridian_control_messages_stored_total",
                                       "Messages written to PostgreSQL for the first time");
static mr_metric m_dups = MR_COUNTER("meridian_control_messages_duplicate_total",
                                     "Messages whose identity was already stored (redeliveries)");
static mr_metric m_poison = MR_COUNTER("meridian_control_messages_rejected_total",
                                       "Stream messages rejected as malformed (terminated)");
static mr_metric m_batches =
    MR_COUNTER("meridian_control_batches_total", "Batches committed to PostgreSQL");
static mr_metric m_db_errors =
    MR_COUNTER("meridian_control_db_errors_total", "Failed batch transactions (retried)");
static mr_metric m_reconnects =
    MR_COUNTER("meridian_control_db_reconnects_total", "PostgreSQL sessions opened by ingest");
static mr_metric m_batch_time = MR_HISTOGRAM("meridian_control_batch_seconds",
                                             "Time to write one batch to PostgreSQL", NULL, 0);
static mr_metric m_commit_latency =
    MR_HISTOGRAM("meridian_control_commit_latency_seconds",
                 "From the relay's timestamp to the commit publication", NULL, 0);

void ctl_ingest_metrics_register(void)
{
    m_batch_time.bounds = m_commit_latency.bounds = mr_latency_buckets;
    m_batch_time.nbounds = m_commit_latency.nbounds = mr_latency_buckets_n;
    mr_metric_register(&m_stored);
    mr_metric_register(&m_dups);
    mr_metric_register(&m_poison);
    mr_metric_register(&m_batches);
    mr_metric_register(&m_db_errors);
    mr_metric_register(&m_reconnects);
    mr_metric_register(&m_batch_time);
    mr_metric_register(&m_commit_latency);
}

/*
 * Per-region gauges: what `nats consumer info` and `nats stream info` would
 * say, so that "history is behind" and "the stream is nearly full" are on
 * a dashboard and can alert. Every instance of a region reads the same
 * durable consumer, so several control planes export the same values
 * (aggregate with max by region).
 */
enum {
    LAG_PENDING,      /* stream messages not yet delivered to the consumer */
    LAG_ACK_PENDING,  /* delivered, not yet acknowledged (being written, or lost with a crash) */
    LAG_REDELIVERED,  /* delivered more than once and not yet acknowledged */
    LAG_STREAM_MSGS,  /* messages in the stream */
    LAG_STREAM_BYTES, /* bytes in the stream */
    LAG_STREAM_MAX_BYTES,
    LAG_STREAM_MAX_MSGS,
    LAG_LEADER, /* 1 while this instance ingests the region */
    LAG_N
};

static const struct {
    const char *name, *help;
} lag_defs[LAG_N] = {
    {"meridian_control_consumer_pending_messages",
     "Stream messages not yet delivered to the durable consumer (history is behind by this many)."},
    {"meridian_control_consumer_ack_pending_messages",
     "Messages delivered to the durable consumer and not yet acknowledged."},
    {"meridian_control_consumer_redelivered_messages",
     "Unacknowledged messages that were delivered more than once."},
    {"meridian_control_stream_messages", "Messages held by the region stream."},
    {"meridian_control_stream_bytes", "Bytes held by the region stream."},
    {"meridian_control_stream_max_bytes", "The region stream's max_bytes limit (-1: none)."},
    {"meridian_control_stream_max_messages", "The region stream's max_msgs limit (-1: none)."},
    {"meridian_control_ingest_leader",
     "1 while this instance ingests the region (the others stand by)."},
};

/* One validated message of a batch. */
typedef struct item {
    natsMsg *msg;
    ctl_envelope e;
    int64_t seq;
} item;

/* A lane's share of one fetched batch, in stream order. */
typedef struct batch {
    item *items;
    size_t n;
    bool committed; /* set by the lane: commits and acks are due */
    struct batch *next;
} batch;

typedef struct lane {
    struct ctl_ingest *in;
    int index;
    pthread_t thread;
    PGconn *db;
    _Atomic bool db_ok;
    batch *head, *tail; /* under in->mu */
    int depth;
    int64_t next_maintain_ms;
} lane;

struct ctl_ingest {
    const ctl_config *cfg;
    natsConnection *nc;
    char region[80];
    char stream[MR_STREAM_NAME_MAX];
    char subjects[MR_STREAM_NAME_MAX];
    bool maintain;
    pthread_t thread; /* the fetcher */
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* any change of stop or of a lane queue */
    bool stop;                /* under mu */
    _Atomic int stream_state; /* a stream_state value */
    _Atomic bool sub_ok;
    char stream_problem[512]; /* under mu: why the stream is refused (STREAM_MISMATCH) */
    int64_t next_refusal_log_ms;
    jsCtx *js;
    natsSubscription *sub; /* plain subscription on `inbox`: every pull's answer lands here */
    char inbox[64];
    char next_subject[MR_STREAM_NAME_MAX + 64]; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    lane *lanes;
    int nlanes;
    batch *done_head, *done_tail; /* under mu: batches back from the lanes */
    _Atomic uint64_t commits;     /* transactions committed, for the test crash hook */
    uint64_t kill_after;
    mr_metric *lag;      /* LAG_N gauges labelled with the region */
    bool lag_registered; /* then never freed: the registry keeps pointing at them */
    int64_t next_lag_ms; /* fetcher thread: when to read them again */
    /* Leadership (fetcher thread; `leader` is read by /readyz). */
    PGconn *lead_db; /* the session holding the region's advisory lock */
    _Atomic bool leader;
    int64_t next_lead_ms;  /* next acquisition attempt or lock check */
    int64_t pull_after_ms; /* after a takeover: no pull before (redeliveries first) */
};

/* Sleep up to `ms`, returning early when stop is requested (then true) or, with `done`, when a
 * lane hands back a finished batch: its commits and acks should not wait. */
static bool nap_until_done(ctl_ingest *in, int64_t ms, bool done)
{
    /* Monotonic (see ctl_ingest_start): a step of the wall clock must not stretch the nap. */
    struct timespec ts = mr_deadline_ms(ms);
    pthread_mutex_lock(&in->mu);
    while (!in->stop && !(done && in->done_head) &&
           pthread_cond_timedwait(&in->cv, &in->mu, &ts) == 0)
        ;
    bool stop = in->stop;
    pthread_mutex_unlock(&in->mu);
    return stop;
}

/* Sleep up to `ms`, returning early (true) when stop is requested. */
static bool nap(ctl_ingest *in, int64_t ms)
{
    return nap_until_done(in, ms, false);
}

static bool stopping(ctl_ingest *in)
{
    pthread_mutex_lock(&in->mu);
    bool s = in->stop;
    pthread_mutex_unlock(&in->mu);
    return s;
}

static int64_t backoff_next(int64_t cur)
{
    int64_t n = cur * 2;
    return n > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n;
}

/* The current backoff, doubling it for next time. */
static int64_t retry_after(int64_t *backoff)
{
    int64_t wait = *backoff;
    *backoff = backoff_next(*backoff);
    return wait;
}

/*
 * Check the region stream against this control plane's expectations. The
 * region's relays create the stream and own its configuration; control
 * only reads it. A stream that differs from what control's `stream.*`
 * settings say is refused, loudly, and left alone: rewriting it is how a
 * control plane with a one-hour max_age once cut a week of retention (and
 * turned R3 into R1). Returns 0 when the stream is there and agrees,
 * otherwise how long to wait before checking again.
 */
static int64_t check_stream(ctl_ingest *in, int64_t *backoff)
{
    char why[512];
    mr_stream_state st = mr_stream_check(in->js, in->region, &in->cfg->stream, why, sizeof why);
    int was = atomic_exchange(&in->stream_state, st == MR_STREAM_OK         ? STREAM_OK
                                                 : st == MR_STREAM_ABSENT   ? STREAM_ABSENT
                                                 : st == MR_STREAM_MISMATCH ? STREAM_MISMATCH
                                                                            : STREAM_PENDING);
    switch (st) {
    case MR_STREAM_OK:
        mr_log_info("ingest %s: stream %s %s", in->region, in->stream,
                    was == STREAM_MISMATCH ? "agrees with this configuration now" : "found");
        return 0;
    case MR_STREAM_ABSENT:
        if (was != STREAM_ABSENT)
            mr_log_info("ingest %s: stream %s does not exist yet; waiting for the region's relays "
                        "to create it (control never creates or changes a region stream)",
                        in->region, in->stream);
        return STREAM_ABSENT_RETRY_MS;
    case MR_STREAM_MISMATCH: {
        pthread_mutex_lock(&in->mu);
        bool changed = strcmp(in->stream_problem, why) != 0;
        snprintf(in->stream_problem, sizeof in->stream_problem, "%s", why);
        pthread_mutex_unlock(&in->mu);
        int64_t now = mr_now_us() / 1000;
        if (changed || now >= in->next_refusal_log_ms) {
            mr_log_error("ingest %s: refusing to persist stream %s: it differs from this control "
                         "plane's stream settings: %s. The region's relays own the stream "
                         "configuration; make control's stream.* agree with them or leave those "
                         "settings out (control will not change the stream)",
                         in->region, in->stream, why);
            in->next_refusal_log_ms = now + STREAM_REFUSAL_LOG_MS;
        }
        return STREAM_MISMATCH_RETRY_MS;
    }
    default:
        mr_log_warn("ingest %s: %s", in->region, why);
        return retry_after(backoff);
    }
}

/*
 * Set up JetStream, check the stream and bind the pull subscription.
 * Returns 0 when all are in place, otherwise how long to wait (ms) before
 * trying again.
 */
static int64_t setup_nats(ctl_ingest *in, int64_t *backoff)
{
    natsStatus s;
    if (!in->js) {
        s = natsConnection_JetStream(&in->js, in->nc, NULL);
        if (s != NATS_OK) {
            mr_log_warn("ingest %s: jetstream context: %s", in->region, natsStatus_GetText(s));
            return retry_after(backoff);
        }
    }
    if (atomic_load(&in->stream_state) != STREAM_OK) {
        int64_t wait = check_stream(in, backoff);
        if (wait > 0)
            return wait;
    }
    if (!in->sub) {
        /*
         * The durable consumer is created explicitly, without a filter
         * subject: it takes the whole stream anyway, and nats-server 2.9
         * computes "pending" for a filtered consumer by scanning the
         * stream, on every pull request, which made draining a large
         * backlog quadratic. An existing consumer is bound as it is.
         */
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        s = js_GetConsumerInfo(&ci, in->js, in->stream, CTL_INGEST_DURABLE, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
            jsConsumerConfig cc;
            jsConsumerConfig_Init(&cc);
            cc.Durable = CTL_INGEST_DURABLE;
            cc.AckPolicy = js_AckExplicit;
            cc.AckWait = in->cfg->ack_wait_ms * 1000000LL;
            cc.MaxAckPending = in->cfg->max_ack_pending;
            cc.MaxDeliver = -1;
            cc.DeliverPolicy = js_DeliverAll;
            jerr = 0;
            s = js_AddConsumer(&ci, in->js, in->stream, &cc, NULL, &jerr);
            /* Another instance may have created it meanwhile: bind to theirs. */
            if (s != NATS_OK && jerr == JSConsumerNameExistErr)
                s = NATS_OK;
        }
        if (ci)
            jsConsumerInfo_Destroy(ci);
        if (s != NATS_OK) {
            mr_log_warn("ingest %s: consumer %s: %s (jetstream error %d)", in->region,
                        CTL_INGEST_DURABLE, natsStatus_GetText(s), (int)jerr);
            return retry_after(backoff);
        }
        /*
         * Pulls are sent by hand to one long-lived inbox instead of through
         * natsSubscription_Fetch: libnats drops (and in 3.4.1 even overruns
         * its array with) messages that answer a pull it has given up on,
         * and a dropped message stays unacked until `consumer.ack_wait_ms`
         * redelivers it. Here a late answer simply waits in the inbox for
         * the next round.
         */
        natsInbox *inbox = NULL;
        if (natsInbox_Create(&inbox) != NATS_OK)
            return retry_after(backoff);
        snprintf(in->inbox, sizeof in->inbox, "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        snprintf(in->next_subject, sizeof in->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
                 in->stream, CTL_INGEST_DURABLE);
        s = natsConnection_SubscribeSync(&in->sub, in->nc, in->inbox);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(in->sub, -1, -1);
        if (s != NATS_OK) {
            mr_log_warn("ingest %s: subscribe to the pull inbox: %s", in->region,
                        natsStatus_GetText(s));
            if (in->sub)
                natsSubscription_Destroy(in->sub);
            in->sub = NULL;
            return retry_after(backoff);
        }
        atomic_store(&in->sub_ok, true);
        mr_log_info("ingest %s: durable consumer %s bound", in->region, CTL_INGEST_DURABLE);
    }
    return 0;
}

static void db_close(lane *l)
{
    if (l->db)
        PQfinish(l->db);
    l->db = NULL;
    atomic_store(&l->db_ok, false);
}

/* Connect to PostgreSQL, retrying with backoff until it works or stop is requested. */
static bool db_connect(lane *l)
{
    ctl_ingest *in = l->in;
    int64_t backoff = BACKOFF_MIN_MS;
    char app[128];
    snprintf(app, sizeof app, "meridian-control/ingest/%s/%d", in->region, l->index);
    while (!l->db) {
        char err[512];
        l->db = ctl_db_open(in->cfg->postgres, app, err, sizeof err);
        if (l->db) {
            mr_metric_inc(&m_reconnects);
            atomic_store(&l->db_ok, true);
            mr_log_info("ingest %s/%d: connected to PostgreSQL (schema version %d)", in->region,
                        l->index, ctl_db_schema_version());
            l->next_maintain_ms = 0;
            return true;
        }
        mr_log_warn("ingest %s/%d: PostgreSQL: %s; retrying in %lld ms", in->region, l->index, err,
                    (long long)backoff);
        if (nap(in, backoff))
            return false;
        backoff = backoff_next(backoff);
    }
    return true;
}

/*
 * False until the first partition maintenance of this process has run (it
 * runs on lane 0 of the first region, right after that lane connects).
 * No lane of any region may write before: a row stored while the current
 * partition does not exist yet lands in messages_default, and then that
 * partition can never be created ("updated partition constraint for
 * default partition would be violated"), so maintenance fails all day and
 * the day's rows stay in the default partition. Shared by every region's
 * ingest, hence the one module-level variable.
 */
static _Atomic bool partitions_ready;

static void maintain(lane *l)
{
    ctl_ingest *in = l->in;
    int64_t now = mr_now_us() / 1000;
    if (!in->maintain || l->index != 0 || now < l->next_maintain_ms)
        return;
    char err[512];
    int dropped =
        ctl_db_maintain(l->db, ctl_config_interval_sql(in->cfg), in->cfg->partitions_ahead,
                        in->cfg->retention_days, err, sizeof err);
    if (dropped < 0) {
        mr_log_warn("partition maintenance: %s", err);
        l->next_maintain_ms = now + 60000;
        /* Tried: do not hold ingest back on a maintenance error (messages_default catches rows). */
        atomic_store(&partitions_ready, true);
        return;
    }
    if (dropped > 0)
        mr_log_info("partition maintenance: dropped %d expired partitions", dropped);
    l->next_maintain_ms = now + MAINTAIN_EVERY_MS;
    atomic_store(&partitions_ready, true);
}

/* Validate one stream message (subject and payload) and fill `it`. */
static int parse_item(ctl_ingest *in, natsMsg *msg, item *it, char *why, size_t whylen)
{
    const char *room;
    if (ctl_envelope_subject_room(natsMsg_GetSubject(msg), in->region, &room, why, whylen) != 0 ||
        ctl_envelope_parse(room, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &it->e,
                           why, whylen) != 0)
        return -1;
    it->msg = msg;
    it->seq = 0;
    return 0;
}

/*
 * Batch parameters are sent as binary-format text[] values: no escaping of
 * the JSON here and no array_in parsing in the server, both of which cost
 * per byte of every envelope.
 */
#define TEXT_OID       25
#define TEXT_ARRAY_OID 1009

static void put_be32(mr_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    mr_buf_append(b, x, 4);
}

/* Header of a one-dimensional array of `n` text elements, lower bound 1. */
static void bin_array_begin(mr_buf *b, size_t n)
{
    put_be32(b, 1); /* dimensions */
    put_be32(b, 0); /* no NULLs */
    put_be32(b, TEXT_OID);
    put_be32(b, (uint32_t)n);
    put_be32(b, 1); /* lower bound */
}

static void bin_array_text(mr_buf *b, const char *s)
{
    size_t n = strlen(s);
    put_be32(b, (uint32_t)n);
    mr_buf_append(b, s, n);
}

static int cmp_identity(const void *a, const void *b, void *arg)
{
    const item *items = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(items[x].e.room, items[y].e.room);
    if (c == 0)
        c = strcmp(items[x].e.msg_id, items[y].e.msg_id);
    if (c == 0)
        c = x < y ? -1 : x > y;
    return c;
}

/*
 * For every item, the index of the first item of the batch with the same
 * identity (itself when it is the first). The same message can sit twice
 * in one batch (a retry the stream kept, or a redelivery); the database
 * function takes each identity once, and the copies get the same seq.
 */
static size_t *first_of_identity(item *items, size_t n)
{
    size_t *order = mr_malloc(n * sizeof *order), *first = mr_malloc(n * sizeof *first);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_identity, items);
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (k > 0 && strcmp(items[i].e.room, items[order[k - 1]].e.room) == 0 &&
            strcmp(items[i].e.msg_id, items[order[k - 1]].e.msg_id) == 0)
            first[i] = first[order[k - 1]];
        else
            first[i] = i;
    }
    free(order);
    return first;
}

/*
 * Write the batch. Returns 0 with every item's seq set, or -1 after a
 * failure (already logged and counted).
 */
static int write_batch(lane *l, batch *bt, int64_t *fresh_out)
{
    ctl_ingest *in = l->in;
    item *items = bt->items;
    size_t n = bt->n;
    size_t *first = first_of_identity(items, n);
    size_t *pos = mr_malloc(n * sizeof *pos); /* database ordinal - 1 -> item index */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (first[i] == i)
            pos[m++] = i;
    mr_buf rooms = MR_BUF_INIT, ids = MR_BUF_INIT, envs = MR_BUF_INIT;
    bin_array_begin(&rooms, m);
    bin_array_begin(&ids, m);
    bin_array_begin(&envs, m);
    for (size_t k = 0; k < m; k++) {
        bin_array_text(&rooms, items[pos[k]].e.room);
        bin_array_text(&ids, items[pos[k]].e.msg_id);
        bin_array_text(&envs, items[pos[k]].e.env);
    }
    const char *params[3] = {rooms.data, ids.data, envs.data};
    const Oid types[3] = {TEXT_ARRAY_OID, TEXT_ARRAY_OID, TEXT_ARRAY_OID};
    const int lengths[3] = {(int)rooms.len, (int)ids.len, (int)envs.len};
    const int formats[3] = {1, 1, 1};
    int64_t t0 = mr_now_us();
    PGresult *r = PQexecParams(l->db,
                               "SELECT ord, seq, fresh FROM meridian_ingest($1::text[], "
                               "$2::text[], $3::text[])",
                               3, types, params, lengths, formats, 0);
    int rc = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && (size_t)PQntuples(r) == m) {
        int64_t fresh = 0;
        rc = 0;
        for (size_t i = 0; i < n; i++)
            items[i].seq = 0;
        for (int row = 0; row < PQntuples(r); row++) {
            long long ord = atoll(PQgetvalue(r, row, 0));
            if (ord < 1 || (size_t)ord > m || PQgetisnull(r, row, 1)) {
                rc = -1;
                break;
            }
            items[pos[ord - 1]].seq = atoll(PQgetvalue(r, row, 1));
            if (PQgetvalue(r, row, 2)[0] == 't')
                fresh++;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            items[i].seq = items[first[i]].seq;
            if (items[i].seq < 1)
                rc = -1;
        }
        *fresh_out = fresh;
        if (rc != 0)
            mr_log_error("ingest %s: meridian_ingest returned an inconsistent result", in->region);
    } else {
        mr_log_warn("ingest %s/%d: batch of %zu failed: %s", in->region, l->index, n,
                    PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(l->db));
    }
    PQclear(r);
    mr_metric_observe_us(&m_batch_time, (uint64_t)(mr_now_us() - t0));
    mr_buf_free(&rooms);
    mr_buf_free(&ids);
    mr_buf_free(&envs);
    free(first);
    free(pos);
    if (rc != 0)
        mr_metric_inc(&m_db_errors);
    return rc;
}

/* Publish meridian.commit.<room> for every item, in batch (hence per-room seq) order. */
static void publish_commits(ctl_ingest *in, item *items, size_t n)
{
    mr_buf b = MR_BUF_INIT;
    char subj[32 + MR_ROOM_MAX];
    int64_t now = mr_wall_ms();
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        mr_buf_reset(&b);
        mr_buf_printf(&b,
                      "{\"room\":\"%s\",\"msg_id\":\"%s\",\"seq\":%lld,\"message\":", it->e.room,
                      it->e.msg_id, (long long)it->seq);
        size_t el = strlen(it->e.env);
        mr_buf_append(&b, it->e.env, el - 1); /* drop the closing brace */
        mr_buf_printf(&b, ",\"seq\":%lld}}", (long long)it->seq);
        snprintf(subj, sizeof subj, "meridian.commit.%s", it->e.room);
        natsStatus s = natsConnection_Publish(in->nc, subj, b.data, (int)b.len);
        if (s != NATS_OK)
            mr_log_warn("ingest %s: publish %s: %s", in->region, subj, natsStatus_GetText(s));
        if (it->e.ts_ms > 0 && now >= it->e.ts_ms)
            mr_metric_observe_us(&m_commit_latency, (uint64_t)(now - it->e.ts_ms) * 1000);
    }
    mr_buf_free(&b);
}

/* Release a batch; its messages are destroyed (acked or not). */
static void batch_free(batch *bt)
{
    for (size_t i = 0; i < bt->n; i++) {
        ctl_envelope_free(&bt->items[i].e);
        natsMsg_Destroy(bt->items[i].msg);
    }
    free(bt->items);
    free(bt);
}

/*
 * Write one batch until it is committed or stop is requested; sets
 * bt->committed. The lane does no NATS work: commits, acks and the release
 * of the messages happen on the fetcher thread (see flush_done), so that
 * only one thread ever touches the subscription and its messages.
 */
static void lane_process(lane *l, batch *bt)
{
    ctl_ingest *in = l->in;
    int64_t t0 = mr_now_us(), backoff = BACKOFF_MIN_MS, fresh = 0;
    for (;;) {
        if (!l->db && !db_connect(l))
            return; /* stopping: the batch stays unacked and will be redelivered */
        if (write_batch(l, bt, &fresh) == 0)
            break;
        if (ctl_db_lost(l->db)) {
            mr_log_warn("ingest %s/%d: lost the PostgreSQL session; reconnecting", in->region,
                        l->index);
            db_close(l);
            continue;
        }
        /* A live session with a failed statement: a deadlock or serialisation error. */
        if (nap(in, backoff))
            return;
        backoff = backoff_next(backoff);
    }
    uint64_t commits = atomic_fetch_add(&in->commits, 1) + 1;
    mr_metric_inc(&m_batches);
    mr_metric_add(&m_stored, fresh);
    mr_metric_add(&m_dups, (int64_t)bt->n - fresh);
    if (in->kill_after && commits == in->kill_after) {
        /* Test hook (see docs/control.md): die between the commit and the ack. */
        mr_log_warn("ingest %s: MERIDIAN_CONTROL_TEST_KILL_AFTER_COMMIT reached; SIGKILL",
                    in->region);
        (void)raise(SIGKILL); /* does not return */
    }
    bt->committed = true;
    mr_log_debug("ingest %s/%d: %zu messages committed in %lld us", in->region, l->index, bt->n,
                 (long long)(mr_now_us() - t0));
}

/* Hand a finished (or abandoned) batch back to the fetcher. Caller holds mu. */
static void done_push(ctl_ingest *in, batch *bt)
{
    bt->next = NULL;
    if (in->done_tail)
        in->done_tail->next = bt;
    else
        in->done_head = bt;
    in->done_tail = bt;
}

/* Acknowledge ("+ACK") or terminate ("+TERM") one stream message through its reply subject. */
static natsStatus settle(ctl_ingest *in, natsMsg *msg, const char *how)
{
    const char *reply = natsMsg_GetReply(msg);
    if (!reply || !*reply)
        return NATS_OK;
    return natsConnection_PublishString(in->nc, reply, how);
}

/*
 * Publish the commits of the committed batches, ack their messages and
 * release everything (fetcher thread, or the stopping thread once the others
 * are joined). Uncommitted batches are released unacked: JetStream
 * redelivers them.
 */
static void flush_done(ctl_ingest *in)
{
    pthread_mutex_lock(&in->mu);
    batch *bt = in->done_head;
    in->done_head = in->done_tail = NULL;
    pthread_mutex_unlock(&in->mu);
    while (bt) {
        batch *next = bt->next;
        if (bt->committed) {
            publish_commits(in, bt->items, bt->n);
            /* An ack lost with the connection only means a redelivery (stored seqs are reused). */
            size_t failed = 0;
            natsStatus s = NATS_OK;
            for (size_t i = 0; i < bt->n; i++) {
                natsStatus si = settle(in, bt->items[i].msg, "+ACK");
                if (si != NATS_OK) {
                    failed++;
                    s = si;
                }
            }
            if (failed)
                mr_log_warn("ingest %s: %zu of %zu acks not sent (%s); they will be redelivered",
                            in->region, failed, bt->n, natsStatus_GetText(s));
        }
        batch_free(bt);
        bt = next;
    }
}

static void *lane_main(void *arg)
{
    lane *l = arg;
    ctl_ingest *in = l->in;
    for (;;) {
        /* Connect before work arrives, so readiness and the fetcher see the session. */
        if (!l->db && !db_connect(l))
            break;
        maintain(l);
        pthread_mutex_lock(&in->mu);
        while (!in->stop && !l->head)
            pthread_cond_wait(&in->cv, &in->mu);
        if (in->stop) {
            pthread_mutex_unlock(&in->mu);
            break;
        }
        batch *bt = l->head;
        l->head = bt->next;
        if (!l->head)
            l->tail = NULL;
        pthread_mutex_unlock(&in->mu);
        lane_process(l, bt);
        pthread_mutex_lock(&in->mu);
        done_push(in, bt);
        l->depth--;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    /*
     * Batches still queued get one attempt each (a session is there in the
     * normal case), so that a clean stop leaves nothing unacknowledged and
     * the next leader need not wait for redeliveries; what fails goes back
     * uncommitted and JetStream redelivers it.
     */
    pthread_mutex_lock(&in->mu);
    while (l->head) {
        batch *bt = l->head;
        l->head = bt->next;
        pthread_mutex_unlock(&in->mu);
        if (l->db)
            lane_process(l, bt);
        pthread_mutex_lock(&in->mu);
        done_push(in, bt);
    }
    l->tail = NULL;
    pthread_mutex_unlock(&in->mu);
    db_close(l);
    return NULL;
}

static uint32_t room_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void refresh_lag(ctl_ingest *in);

/*
 * Wait until every lane is connected and has room for one more batch,
 * publishing and acking finished batches meanwhile. False on stop. `busy`
 * tells whether a lane still has work (then a fetch must be short, or
 * finished batches would wait for it).
 */
static bool lanes_accepting(ctl_ingest *in, bool *busy)
{
    for (;;) {
        flush_done(in);
        /* Also while the lanes wait for PostgreSQL: that is when the lag grows. */
        refresh_lag(in);
        bool ok = true;
        *busy = false;
        pthread_mutex_lock(&in->mu);
        if (!atomic_load(&partitions_ready))
            ok = false;
        for (int i = 0; i < in->nlanes; i++) {
            if (in->lanes[i].depth >= LANE_QUEUE_MAX || !atomic_load(&in->lanes[i].db_ok))
                ok = false;
            if (in->lanes[i].depth > 0)
                *busy = true;
        }
        bool stop = in->stop;
        if (!ok && !stop && !in->done_head) {
            /* Woken by a lane finishing a batch; the time-out covers reconnects. */
            struct timespec ts = mr_deadline_ms(100);
            pthread_cond_timedwait(&in->cv, &in->mu, &ts);
        }
        pthread_mutex_unlock(&in->mu);
        if (stop)
            return false;
        if (ok)
            return true;
    }
}

/* Validate a fetched batch and hand each lane its share. Takes ownership of the messages. */
static void dispatch(ctl_ingest *in, natsMsg **msgs, int count)
{
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, so sizeof a pointer */
    batch **parts = mr_calloc((size_t)in->nlanes, sizeof *parts);
    for (int i = 0; i < count; i++) {
        natsMsg *msg = msgs[i];
        msgs[i] = NULL;
        item it;
        char why[128];
        if (parse_item(in, msg, &it, why, sizeof why) != 0) {
            /*
             * A malformed message can never be stored; redelivering it
             * forever would only block the consumer, so it is terminated.
             */
            mr_log_warn("ingest %s: rejecting stream message on %s: %s", in->region,
                        natsMsg_GetSubject(msg), why);
            mr_metric_inc(&m_poison);
            natsStatus ts = settle(in, msg, "+TERM");
            if (ts != NATS_OK)
                mr_log_warn("ingest %s: terminating it failed (%s); it will come back", in->region,
                            natsStatus_GetText(ts));
            natsMsg_Destroy(msg);
            continue;
        }
        int k = (int)(room_hash(it.e.room) % (uint32_t)in->nlanes);
        if (!parts[k]) {
            parts[k] = mr_calloc(1, sizeof **parts);
            parts[k]->items = mr_malloc((size_t)count * sizeof(item));
        }
        parts[k]->items[parts[k]->n++] = it;
    }
    pthread_mutex_lock(&in->mu);
    for (int k = 0; k < in->nlanes; k++) {
        if (!parts[k])
            continue;
        if (in->stop) {
            /* The lanes may be gone already: drop the batch unacked (it will be redelivered). */
            batch_free(parts[k]);
            continue;
        }
        lane *l = &in->lanes[k];
        if (l->tail)
            l->tail->next = parts[k];
        else
            l->head = parts[k];
        l->tail = parts[k];
        l->depth++;
    }
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    free(parts);
}

/* A pull's answer ends with a status message (404 no messages, 408, 409 ...); it has no $JS.ACK
 * reply subject, which every stream message has. */
static bool is_stream_msg(natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    return reply && strncmp(reply, "$JS.ACK.", 8) == 0;
}

/*
 * One round of fetching into `msgs` (room for `want`). When answers to an
 * earlier pull are still queued in the inbox they are taken first, without
 * asking again; otherwise a no-wait pull asks for up to `want` messages
 * (the server answers at once with what it has) and its answer is
 * collected until its closing status, `want` messages, or
 * PULL_ANSWER_WAIT_MS. Whatever arrives later stays queued for the next
 * round, so a slow answer is never lost.
 */
static natsStatus pull(ctl_ingest *in, natsMsg **msgs, int want, int *got)
{
    *got = 0;
    int queued = 0;
    natsSubscription_GetPending(in->sub, &queued, NULL);
    bool asked = queued == 0;
    if (asked) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"batch\":%d,\"no_wait\":true}", want);
        natsStatus s = natsConnection_PublishRequest(in->nc, in->next_subject, in->inbox, body, n);
        if (s != NATS_OK)
            return s;
    }
    int64_t deadline = mr_now_us() / 1000 + (asked ? PULL_ANSWER_WAIT_MS : 0);
    while (*got < want) {
        int64_t left = deadline - mr_now_us() / 1000;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, in->sub, left > 0 ? left : 1);
        if (s == NATS_TIMEOUT)
            break;
        if (s != NATS_OK)
            return s;
        if (is_stream_msg(m)) {
            msgs[(*got)++] = m;
            continue;
        }
        natsMsg_Destroy(m);
        if (asked)
            break; /* the server has answered in full */
    }
    return NATS_OK;
}

/*
 * Read the consumer's and the stream's state into the lag gauges (fetcher
 * thread, every LAG_REFRESH_MS once the consumer is bound). A failed read
 * leaves the last values: the nats_connected gauge tells why they are old.
 */
static void refresh_lag(ctl_ingest *in)
{
    int64_t now = mr_now_us() / 1000;
    if (now < in->next_lag_ms)
        return;
    in->next_lag_ms = now + LAG_REFRESH_MS;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = LAG_REQUEST_WAIT_MS;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, in->js, in->stream, CTL_INGEST_DURABLE, &o, &jerr);
    if (s == NATS_OK && ci) {
        mr_metric_set(&in->lag[LAG_PENDING], (int64_t)ci->NumPending);
        mr_metric_set(&in->lag[LAG_ACK_PENDING], ci->NumAckPending);
        mr_metric_set(&in->lag[LAG_REDELIVERED], ci->NumRedelivered);
    } else {
        mr_log_debug("ingest %s: consumer info: %s", in->region, natsStatus_GetText(s));
    }
    if (ci)
        jsConsumerInfo_Destroy(ci);
    jsStreamInfo *si = NULL;
    jerr = 0;
    s = js_GetStreamInfo(&si, in->js, in->stream, &o, &jerr);
    if (s == NATS_OK && si && si->Config) {
        mr_metric_set(&in->lag[LAG_STREAM_MSGS], (int64_t)si->State.Msgs);
        mr_metric_set(&in->lag[LAG_STREAM_BYTES], (int64_t)si->State.Bytes);
        mr_metric_set(&in->lag[LAG_STREAM_MAX_BYTES], si->Config->MaxBytes);
        mr_metric_set(&in->lag[LAG_STREAM_MAX_MSGS], si->Config->MaxMsgs);
    } else {
        mr_log_debug("ingest %s: stream info: %s", in->region, natsStatus_GetText(s));
    }
    if (si)
        jsStreamInfo_Destroy(si);
}

static void lead_close(ctl_ingest *in)
{
    if (in->lead_db)
        PQfinish(in->lead_db);
    in->lead_db = NULL;
    if (atomic_exchange(&in->leader, false))
        mr_log_info("ingest %s: no longer the region's leader", in->region);
    mr_metric_set(&in->lag[LAG_LEADER], 0);
}

/*
 * True while this instance is the region's leader and may pull (fetcher
 * thread). A standby tries to take the lock every LEAD_CHECK_MS; a leader
 * checks that its session (hence its lock) is still there as often. On
 * taking over with unacknowledged messages on the consumer (fetched by a
 * leader that is gone), the first pull waits until they are redeliverable.
 */
static bool lead_check(ctl_ingest *in)
{
    int64_t now = mr_now_us() / 1000;
    bool leader = atomic_load(&in->leader);
    if (now < in->next_lead_ms)
        return leader && now >= in->pull_after_ms;
    in->next_lead_ms = now + LEAD_CHECK_MS;
    char err[512];
    if (!in->lead_db) {
        char app[128];
        snprintf(app, sizeof app, "meridian-control/lead/%s", in->region);
        in->lead_db = ctl_db_connect(in->cfg->postgres, app, 5, err, sizeof err);
        if (!in->lead_db) {
            mr_log_debug("ingest %s: leadership: %s", in->region, err);
            return false;
        }
    }
    char sql[128];
    if (leader)
        snprintf(sql, sizeof sql, "SELECT true");
    else
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", LEAD_LOCK_CLASS,
                 (int)room_hash(in->region));
    PGresult *r = PQexec(in->lead_db, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    bool got = ok && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ok) {
        mr_log_warn("ingest %s: leadership session lost (%s)", in->region,
                    PQerrorMessage(in->lead_db));
        lead_close(in);
        return false;
    }
    if (leader || !got)
        return leader && now >= in->pull_after_ms;
    /* Taken over. */
    atomic_store(&in->leader, true);
    mr_metric_set(&in->lag[LAG_LEADER], 1);
    in->pull_after_ms = now;
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, in->js, in->stream, CTL_INGEST_DURABLE, NULL, NULL) == NATS_OK &&
        ci) {
        if (ci->NumAckPending > 0 && ci->Config)
            in->pull_after_ms = now + ci->Config->AckWait / 1000000;
        mr_log_info("ingest %s: this instance is the region's leader now%s", in->region,
                    ci->NumAckPending > 0 ? "; the previous leader's unacknowledged messages are "
                                            "taken first, once redelivered"
                                          : "");
        jsConsumerInfo_Destroy(ci);
    } else {
        /* Unknown: wait as if there were some (order before latency). */
        in->pull_after_ms = now + in->cfg->ack_wait_ms;
        mr_log_info("ingest %s: this instance is the region's leader now", in->region);
    }
    return now >= in->pull_after_ms;
}

static void *fetch_main(void *arg)
{
    ctl_ingest *in = arg;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, so sizeof a pointer */
    natsMsg **msgs = mr_calloc((size_t)in->cfg->batch_max_messages, sizeof *msgs);
    int64_t backoff = BACKOFF_MIN_MS;
    while (!stopping(in)) {
        int64_t wait_setup = setup_nats(in, &backoff);
        if (wait_setup > 0) {
            if (nap(in, wait_setup))
                break;
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        refresh_lag(in); /* standbys export the consumer's lag too */
        if (!lead_check(in)) {
            /* A standby, or a new leader letting redeliveries come first. */
            if (nap(in, 100))
                break;
            continue;
        }
        /* Fetch only what the lanes can write now: otherwise the backlog stays in the stream. */
        bool busy;
        if (!lanes_accepting(in, &busy))
            break;
        int wait = in->cfg->batch_max_wait_ms < 1000 ? in->cfg->batch_max_wait_ms : 1000;
        if (busy && wait > BUSY_FETCH_WAIT_MS)
            wait = BUSY_FETCH_WAIT_MS;
        int got = 0;
        natsStatus s = pull(in, msgs, in->cfg->batch_max_messages, &got);
        if (got > 0) {
            mr_log_debug("ingest %s: fetched %d", in->region, got);
            dispatch(in, msgs, got);
        }
        if (s != NATS_OK)
            mr_log_debug("ingest %s: pull: %s", in->region, natsStatus_GetText(s));
        /* Nothing available: wait `wait` ms before asking again. */
        if (got == 0 && nap_until_done(in, s == NATS_OK ? wait : 200, true))
            break;
    }
    free(msgs);
    return NULL;
}

ctl_ingest *ctl_ingest_start(const ctl_config *cfg, natsConnection *nc, const char *region,
                             bool maintain)
{
    ctl_ingest *in = mr_calloc(1, sizeof *in);
    in->cfg = cfg;
    in->nc = nc;
    in->maintain = maintain;
    if (maintain)
        atomic_store(&partitions_ready, false); /* until this ingest's lane 0 has maintained */
    snprintf(in->region, sizeof in->region, "%s", region);
    mr_stream_name(region, in->stream, sizeof in->stream);
    mr_stream_subjects(region, in->subjects, sizeof in->subjects);
    const char *k = getenv("MERIDIAN_CONTROL_TEST_KILL_AFTER_COMMIT");
    in->kill_after = k ? strtoull(k, NULL, 10) : 0;
    pthread_mutex_init(&in->mu, NULL);
    /* Every wait on cv is a duration: measured on the monotonic clock, not the wall clock. */
    if (mr_cond_init_monotonic(&in->cv) != 0) {
        mr_log_error("ingest %s: cannot create a condition variable", region);
        abort();
    }
    /* Before the fetcher starts: it fills these in (registered by ctl_ingest_lag_metrics_register).
     */
    in->lag = mr_calloc(LAG_N, sizeof *in->lag);
    mr_metric_set(&in->lag[LAG_STREAM_MAX_BYTES], -1);
    mr_metric_set(&in->lag[LAG_STREAM_MAX_MSGS], -1);
    in->nlanes = cfg->batch_lanes;
    in->lanes = mr_calloc((size_t)in->nlanes, sizeof *in->lanes);
    for (int i = 0; i < in->nlanes; i++) {
        in->lanes[i].in = in;
        in->lanes[i].index = i;
        if (pthread_create(&in->lanes[i].thread, NULL, lane_main, &in->lanes[i]) != 0) {
            mr_log_error("ingest %s: cannot start a lane thread", region);
            abort();
        }
    }
    if (pthread_create(&in->thread, NULL, fetch_main, in) != 0) {
        mr_log_error("ingest %s: cannot start thread", region);
        abort();
    }
    return in;
}

void ctl_ingest_lag_metrics_register(ctl_ingest *const *ingest, size_t n)
{
    /* Metrics sharing a name are registered together: gauge by gauge, then region by region. */
    for (size_t i = 0; i < n; i++) {
        ctl_ingest *in = ingest[i];
        char *labels = mr_malloc(sizeof in->region + 16);
        snprintf(labels, sizeof in->region + 16, "region=\"%s\"", in->region);
        for (int k = 0; k < LAG_N; k++) {
            in->lag[k].name = lag_defs[k].name;
            in->lag[k].help = lag_defs[k].help;
            in->lag[k].labels = labels;
            in->lag[k].kind = MR_METRIC_GAUGE;
        }
        in->lag_registered = true;
    }
    for (int k = 0; k < LAG_N; k++)
        for (size_t i = 0; i < n; i++)
            mr_metric_register(&ingest[i]->lag[k]);
}

void ctl_ingest_stop(ctl_ingest *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    in->stop = true;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    pthread_join(in->thread, NULL);
    for (int i = 0; i < in->nlanes; i++)
        pthread_join(in->lanes[i].thread, NULL);
    /* Committed batches still get their commits and acks: no needless redelivery. */
    flush_done(in);
    free(in->lanes);
    /* Releases the advisory lock: a standby takes over within LEAD_CHECK_MS. */
    lead_close(in);
    /* A plain inbox subscription: unsubscribing leaves the durable consumer in place. */
    if (in->sub) {
        natsSubscription_Unsubscribe(in->sub);
        natsSubscription_Destroy(in->sub);
    }
    if (in->js)
        jsCtx_Destroy(in->js);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    if (!in->lag_registered)
        free(in->lag);
    free(in);
}

static bool lanes_connected(ctl_ingest *in)
{
    for (int i = 0; i < in->nlanes; i++)
        if (!atomic_load(&in->lanes[i].db_ok))
            return false;
    return true;
}

bool ctl_ingest_db_connected(ctl_ingest *in)
{
    return lanes_connected(in);
}

bool ctl_ingest_ready(ctl_ingest *in)
{
    /*
     * An absent stream is not a reason to be unready: there is nothing to
     * persist yet, and ingest binds as soon as the relays create it. A
     * refused one is.
     */
    int st = atomic_load(&in->stream_state);
    return ((st == STREAM_OK && atomic_load(&in->sub_ok)) || st == STREAM_ABSENT) &&
           lanes_connected(in);
}

void ctl_ingest_describe(ctl_ingest *in, mr_buf *out)
{
    static const char *const names[] = {"pending", "absent", "ok", "mismatch"};
    int st = atomic_load(&in->stream_state);
    mr_buf_printf(out,
                  "\"%s\":{\"stream\":\"%s\",\"consumer\":\"%s\",\"postgres\":\"%s\","
                  "\"ingest\":\"%s\"",
                  in->region, names[st], atomic_load(&in->sub_ok) ? "bound" : "pending",
                  lanes_connected(in) ? "connected" : "disconnected",
                  atomic_load(&in->leader) ? "leader" : "standby");
    if (st == STREAM_MISMATCH) {
        pthread_mutex_lock(&in->mu);
        mr_buf_puts(out, ",\"stream_problem\":");
        mr_buf_json_str(out, in->stream_problem, strlen(in->stream_problem));
        pthread_mutex_unlock(&in->mu);
    }
    mr_buf_putc(out, '}');
}
