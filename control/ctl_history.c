/*
 * History queries. Both forms use the primary key (room, seq, stored_at) of
 * the partitioned messages table: "after" reads ascending from a seq,
 * "before" reads descending below a seq and reverses the page, so paging
 * backwards costs the same as paging forwards. One row more than asked is
 * read to know whether there is more. Stored envelopes have no "seq"; it is
 * spliced in here, as for commits.
 *
 * The NATS service runs in a queue group, so each request is answered by one
 * control instance; the NATS callback only parses and queues, the worker
 * pool does the query and the reply.
 */
#include "ctl_history.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mr_metric m_requests =
    MR_COUNTER("meridian_control_history_requests_total", "History requests over NATS");
static mr_metric m_errors =
    MR_COUNTER("meridian_control_history_errors_total", "History requests answered with an error");

void ctl_history_metrics_register(void)
{
    mr_metric_register(&m_requests);
    mr_metric_register(&m_errors);
}

const char *ctl_history_status_message(ctl_history_status s)
{
    return s == CTL_HIST_UNAVAILABLE ? "history unavailable" : "history query failed";
}

const char *ctl_history_status_code(ctl_history_status s)
{
    switch (s) {
    case CTL_HIST_OK:
        return "ok";
    case CTL_HIST_BAD_REQUEST:
        return "bad_request";
    case CTL_HIST_UNAVAILABLE:
        return "unavailable";
    default:
        return "internal";
    }
}

void ctl_history_error_json(mr_buf *out, const char *code, const char *message)
{
    mr_buf_printf(out, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    mr_buf_json_str(out, message, strlen(message));
    mr_buf_puts(out, "}}");
}

/* Read an optional non-negative integer member. */
static int opt_int(json_t *o, const char *key, int64_t *v, int64_t min, int64_t max, char *err,
                   size_t errlen)
{
    json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max) {
        snprintf(err, errlen, "\"%s\" must be an integer between %lld and %lld", key,
                 (long long)min, (long long)max);
        return -1;
    }
    *v = json_integer_value(j);
    return 0;
}

int ctl_history_parse_request(const char *data, size_t len, ctl_history_query *q, char *err,
                              size_t errlen)
{
    q->after = 0;
    q->before = 0;
    q->limit = CTL_HISTORY_LIMIT_DEFAULT;
    if (len == 0)
        return 0; /* an empty body means "from the start, default limit" */
    json_error_t jerr;
    json_t *o = json_loadb(data, len, 0, &jerr);
    if (!o || !json_is_object(o)) {
        snprintf(err, errlen, "request must be a JSON object");
        json_decref(o);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "after") != 0 && strcmp(key, "limit") != 0 && strcmp(key, "before") != 0) {
            snprintf(err, errlen, "unknown member \"%.64s\"", key);
            json_decref(o);
            return -1;
        }
    }
    int64_t limit = q->limit;
    int rc = opt_int(o, "after", &q->after, 0, INT64_MAX - 1, err, errlen);
    if (rc == 0)
        rc = opt_int(o, "before", &q->before, 1, INT64_MAX, err, errlen);
    if (rc == 0)
        rc = opt_int(o, "limit", &limit, 1, CTL_HISTORY_LIMIT_MAX, err, errlen);
    q->limit = (int)limit;
    json_decref(o);
    return rc;
}

static void append_envelope(mr_buf *out, const char *env, const char *seq)
{
    size_t n = strlen(env);
    if (n < 2 || env[n - 1] != '}') {
        mr_buf_puts(out, "null"); /* never happens: ingest stores compact objects */
        return;
    }
    mr_buf_append(out, env, n - 1);
    mr_buf_printf(out, ",\"seq\":%s}", seq);
}

/*
 * Bytes a message adds to a reply beyond its stored envelope: ",\"seq\":N"
 * (at most 26) and the comma between messages.
 */
#define PER_MESSAGE_BYTES 32
/* Everything of a reply but its messages: room (128), "more", last_seq, punctuation. */
#define REPLY_FRAME_BYTES 512

/*
 * One statement, hence one snapshot, for the page and last_seq: a reply
 * never claims a last_seq whose messages it leaves out without saying
 * "more". (last_seq used to be read by a second statement when the page
 * was empty; a commit between the two gave {"messages":[],"more":false,
 * "last_seq":1000} for after 0.) The row of `last` is always there, so an
 * empty page is one row whose seq is NULL.
 *
 * Pages are cut by bytes in the database, not after the fact, so that a
 * page of 1,000 large envelopes is never read just to be thrown away. The
 * inner query numbers the rows in page order and sums their sizes
 * (octet_length of a text reads its stored length, not the data); the
 * outer one keeps the rows that fit ($5 bytes, counting $6 per message
 * beyond its envelope), always the first, and one row past the cut
 * without its envelope, whose presence says "more".
 */
#define PAGE_SQL(dir)                                                                              \
    "WITH last AS (SELECT COALESCE((SELECT last_seq FROM rooms WHERE room = $1), 0) AS last_seq)," \
    " page AS (SELECT seq, CASE WHEN upto <= $5::bigint OR rn = 1 THEN envelope END AS envelope"   \
    "  FROM (SELECT seq, envelope, row_number() OVER w AS rn,"                                     \
    "   sum(octet_length(envelope) + $6::int) OVER w AS upto,"                                     \
    "   octet_length(envelope) + $6::int AS len"                                                   \
    "   FROM messages"                                                                             \
    "   WHERE room = $1 AND seq > $2::bigint AND ($3::bigint = 0 OR seq < $3::bigint)"             \
    "   WINDOW w AS (ORDER BY seq " dir " ROWS UNBOUNDED PRECEDING)"                               \
    "   ORDER BY seq " dir " LIMIT $4::int) numbered"                                              \
    "  WHERE upto - len <= $5::bigint OR rn <= 2)"                                                 \
    " SELECT page.seq, page.envelope, last.last_seq FROM last LEFT JOIN page ON true"              \
    " ORDER BY page.seq " dir

/* A failed statement: unavailable when the session is gone, internal otherwise. */
static ctl_history_status failed(PGconn *db, const ctl_history_query *q, char *err, size_t errlen)
{
    snprintf(err, errlen, "query failed: %s", PQerrorMessage(db));
    mr_log_warn("history %s: %s", q->room, err);
    return PQstatus(db) == CONNECTION_OK ? CTL_HIST_INTERNAL : CTL_HIST_UNAVAILABLE;
}

ctl_history_status ctl_history_run(PGconn *db, const ctl_history_query *q, mr_buf *out, char *err,
                                   size_t errlen)
{
    if (!db) {
        snprintf(err, errlen, "no PostgreSQL session");
        return CTL_HIST_UNAVAILABLE;
    }
    size_t max = q->max_bytes && q->max_bytes < CTL_HISTORY_PAGE_MAX_BYTES
                     ? q->max_bytes
                     : CTL_HISTORY_PAGE_MAX_BYTES;
    size_t budget = max > REPLY_FRAME_BYTES ? max - REPLY_FRAME_BYTES : 0;
    char after[24], before[24], limit[16], bytes[24], per_message[16];
    snprintf(after, sizeof after, "%lld", (long long)q->after);
    snprintf(before, sizeof before, "%lld", (long long)q->before);
    snprintf(limit, sizeof limit, "%d", q->limit + 1);
    snprintf(bytes, sizeof bytes, "%zu", budget);
    snprintf(per_message, sizeof per_message, "%d", PER_MESSAGE_BYTES);
    const char *params[6] = {q->room, after, before, limit, bytes, per_message};
    static const char sql_after[] = PAGE_SQL("ASC");
    static const char sql_before[] = PAGE_SQL("DESC");
    bool backwards = q->before > 0;
    PGresult *r =
        PQexecParams(db, backwards ? sql_before : sql_after, 6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return failed(db, q, err, errlen);
    }
    /*
     * The rows with an envelope are a prefix: those fit; any row after them
     * means more. An empty page is one row with a NULL seq (see PAGE_SQL).
     */
    int rows = PQntuples(r), shown = 0;
    if (rows == 1 && PQgetisnull(r, 0, 0))
        rows = 0;
    while (shown < rows && shown < q->limit && !PQgetisnull(r, shown, 1))
        shown++;
    bool more = rows > shown;
    const char *last = PQntuples(r) > 0 ? PQgetvalue(r, 0, 2) : "0";
    mr_buf_puts(out, "{\"room\":");
    mr_buf_json_str(out, q->room, strlen(q->room));
    mr_buf_puts(out, ",\"messages\":[");
    for (int i = 0; i < shown; i++) {
        int row = backwards ? shown - 1 - i : i;
        if (i)
            mr_buf_putc(out, ',');
        append_envelope(out, PQgetvalue(r, row, 1), PQgetvalue(r, row, 0));
    }
    mr_buf_printf(out, "],\"more\":%s,\"last_seq\":%s}", more ? "true" : "false", last);
    PQclear(r);
    return CTL_HIST_OK;
}

/* ---- NATS request-reply service ---- */

struct ctl_history_service {
    natsConnection *nc;
    natsSubscription *sub;
    ctl_pool *pool;
};

typedef struct nats_job {
    natsConnection *nc;
    char *reply;
    ctl_history_query q;
} nats_job;

/* Publish a reply; a failure is logged here (the requester will time out, so say why). */
static void publish_reply(natsConnection *nc, const char *room, const char *reply, const char *data,
                          size_t len)
{
    natsStatus s = natsConnection_Publish(nc, reply, data, (int)len);
    if (s != NATS_OK)
        mr_log_warn("history %s: reply of %zu bytes not sent: %s", room, len,
                    natsStatus_GetText(s));
}

static void reply_error(natsConnection *nc, const char *room, const char *reply, const char *code,
                        const char *msg)
{
    mr_buf b = MR_BUF_INIT;
    ctl_history_error_json(&b, code, msg);
    publish_reply(nc, room, reply, b.data, b.len);
    mr_buf_free(&b);
    mr_metric_inc(&m_errors);
}

/* NATS's default max_payload, for the moments the connection does not know the server's. */
#define NATS_DEFAULT_MAX_PAYLOAD (1 << 20)

static ctl_job_result run_nats_job(void *arg, PGconn *db, bool may_retry)
{
    nats_job *j = arg;
    /* A page must fit in one NATS message: the server refuses anything larger. */
    int64_t max_payload = natsConnection_GetMaxPayload(j->nc);
    if (max_payload <= 0)
        max_payload = NATS_DEFAULT_MAX_PAYLOAD;
    j->q.max_bytes = (size_t)max_payload;
    mr_buf b = MR_BUF_INIT;
    char err[256];
    ctl_history_status s = ctl_history_run(db, &j->q, &b, err, sizeof err);
    if (s == CTL_HIST_UNAVAILABLE && db && may_retry) {
        mr_buf_free(&b);
        return CTL_JOB_RETRY; /* the session died; the pool reconnects and runs this again */
    }
    if (s == CTL_HIST_OK && b.len > (size_t)max_payload) {
        /* One message larger than max_payload: nothing smaller can be sent. */
        mr_log_error("history %s: the message after seq %lld does not fit in one NATS message "
                     "(%zu bytes, max_payload %lld)",
                     j->q.room, (long long)j->q.after, b.len, (long long)max_payload);
        s = CTL_HIST_INTERNAL;
    }
    if (s == CTL_HIST_OK)
        publish_reply(j->nc, j->q.room, j->reply, b.data, b.len);
    else
        reply_error(j->nc, j->q.room, j->reply, ctl_history_status_code(s),
                    ctl_history_status_message(s));
    mr_buf_free(&b);
    free(j->reply);
    free(j);
    return CTL_JOB_DONE;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    ctl_history_service *svc = closure;
    mr_metric_inc(&m_requests);
    const char *reply = natsMsg_GetReply(msg);
    if (!reply || !reply[0]) {
        natsMsg_Destroy(msg); /* nobody to answer */
        return;
    }
    const char *subj = natsMsg_GetSubject(msg);
    const char *room = subj + strlen("meridian.history.");
    char err[160];
    nats_job *j = mr_calloc(1, sizeof *j);
    if (!mr_room_valid(room, strlen(room))) {
        reply_error(nc, "(invalid)", reply, "bad_request", "invalid room name");
        goto fail;
    }
    if (ctl_history_parse_request(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &j->q,
                                  err, sizeof err) != 0) {
        reply_error(nc, room, reply, "bad_request", err);
        goto fail;
    }
    memcpy(j->q.room, room, strlen(room) + 1);
    j->nc = nc;
    j->reply = mr_strdup(reply);
    if (ctl_pool_submit(svc->pool, run_nats_job, j) != 0) {
        reply_error(nc, room, reply, "unavailable", "too many pending history requests");
        free(j->reply);
        goto fail;
    }
    natsMsg_Destroy(msg);
    return;
fail:
    free(j);
    natsMsg_Destroy(msg);
}

ctl_history_service *ctl_history_service_start(natsConnection *nc, ctl_pool *pool, char *err,
                                               size_t errlen)
{
    ctl_history_service *svc = mr_calloc(1, sizeof *svc);
    svc->nc = nc;
    svc->pool = pool;
    natsStatus s = natsConnection_QueueSubscribe(&svc->sub, nc, "meridian.history.*",
                                                 "meridian-control", on_request, svc);
    if (s != NATS_OK) {
        snprintf(err, errlen, "subscribe meridian.history.*: %s", natsStatus_GetText(s));
        free(svc);
        return NULL;
    }
    return svc;
}

void ctl_history_service_stop(ctl_history_service *svc)
{
    if (!svc)
        return;
    /* Drain so that no callback still runs on `svc` once it is freed. */
    if (natsSubscription_Drain(svc->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(svc->sub, 5000);
    natsSubscription_Destroy(svc->sub);
    free(svc);
}
