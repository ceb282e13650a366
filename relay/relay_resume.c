/*
 * Joins and resume after a reconnect, in any region.
 *
 * A join is answered only once the server has confirmed the room's
 * subscriptions (a new room on this relay waits for that, relay_client.c
 * and relay_inbound.c), so nothing published after `joined` can miss the
 * member. The member's live frames are held until its answer is complete
 * (relay_deliver_hold), and its presence events start with `joined`.
 *
 * A join with `since` then reads history, in that order, which makes the
 * result gap-free: any message committed after the history snapshot also
 * arrives live. The first page tells what the replay will be: every message
 * after `since` up to the page's last_seq (seqs are contiguous per room),
 * or, beyond resume.limit, the first resume.limit of them and
 * recovered=false. `joined` says so; the pages follow, each asked for when
 * the previous one is sent, and each message is queued only while the
 * member's outbound queue holds less than half of limits.max_outbound_bytes,
 * so a replay of any size goes out at the pace the member reads, and never
 * makes it a slow consumer (relay_resume_pump runs as its queue drains).
 * Then the held frames follow, minus those the history contained, and the
 * member is live. A resume never sends a seq at or below `since`.
 *
 * A page that cannot be read before `joined` makes the answer
 * recovered=false with a fixed reason; one that cannot be read after it
 * (three attempts) closes the connection with 1011, since the member was
 * promised more: it resumes from the last seq it got.
 *
 * A join with `rewind: N` (the last N messages, N at most resume.rewind_max)
 * is a resume whose `since` the relay finds itself, after subscribing like
 * every join: it asks history for the newest N messages (`before` the
 * largest seq). That page starts at some seq F and ends at the room's
 * last_seq, so it is exactly the page a resume from since = F - 1 would
 * get, and the replay goes on as for that resume, with the same guarantees
 * (no gap to the live messages, none twice, `recovered`). Only when the
 * page was cut short by its size (large messages) is since = last_seq - N
 * used, and the history read forwards from there as usual.
 *
 * Each request has its own token, kept in r->resumes; the record belongs
 * to the membership (relay_member.resume) and goes with it, so a reply for
 * a membership that ended (left and joined again) finds nothing.
 */
#include "relay_resume.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decimal digits of a uint64_t and a NUL: request ids as inbox tokens. */
#define TOKEN_MAX 24
/* Requests of one page after `joined` before giving up on the replay. */
#define PAGE_ATTEMPTS 3
/* History is queued while the member's queue holds less than 1/QUEUE_SHARE of its limit. */
#define QUEUE_SHARE 2

typedef enum {
    WAIT_SUBSCRIBED, /* the room's subscriptions are not confirmed yet */
    WAIT_PAGE,       /* a history page was asked for */
    REPLAY,          /* `joined` sent; the page goes out as the queue drains */
    FINISHING,       /* history sent; the held frames wait for room in the queue */
} resume_state;

typedef struct relay_resume {
    relay *r;
    relay_member *m;
    json_t *join_id;
    int64_t since;  /* -1: a join without since */
    int64_t rewind; /* a join with rewind: the N asked for until the first page came, else 0 */
    resume_state state;
    bool answered;         /* `joined` was sent */
    bool presence_events;  /* what the join asked for: presence events start with `joined` */
    bool paced;            /* counted in conn->replays */
    char token[TOKEN_MAX]; /* the request in flight (its key in r->resumes), or "" */
    int64_t deadline_us;
    int attempts;      /* requests of the current page */
    int64_t target;    /* the last seq the replay sends */
    int64_t last_sent; /* the seq of the last history message queued */
    json_t *page;      /* the page being sent */
    size_t pos;        /* its next message */
    bool page_more;    /* history holds more after the page */
    relay_out *next;   /* a message built but not queued yet (the queue was full) */
    char next_id[MR_MSG_ID_LEN + 1];
    int64_t next_seq;
    mr_map seen;                   /* ids sent from history, to skip among the held frames */
    struct relay_resume *next_due; /* relay_resume_expire's list */
} relay_resume;

/* Forget the resume: the membership ends or its answer is complete. */
static void resume_done(relay_resume *rs)
{
    if (rs->token[0])
        mr_map_del(&rs->r->resumes, rs->token, strlen(rs->token));
    if (rs->paced)
        rs->m->conn->replays--;
    rs->m->resume = NULL;
    json_decref(rs->join_id);
    json_decref(rs->page);
    if (rs->next)
        relay_out_unref(rs->next);
    mr_map_free(&rs->seen, NULL);
    free(rs);
}

/* A membership ends: its resume goes with it, unanswered. */
static void member_free(relay_member *m)
{
    if (m->resume)
        resume_done(m->resume);
}

void relay_resume_init(relay *r)
{
    relay_rooms_add_state(&r->rooms, NULL, member_free);
}

static void send_joined(relay_resume *rs, const relay_resume_result *res)
{
    mr_buf b = MR_BUF_INIT;
    if (res)
        relay_frame_joined_resume(&b, rs->join_id, rs->m->room->name, res);
    else
        relay_frame_joined(&b, rs->join_id, rs->m->room->name);
    relay_conn_send_buf(rs->m->conn, &b);
    mr_buf_free(&b);
    rs->answered = true;
    rs->m->presence_events = rs->presence_events;
}

/* The answer is complete: the held frames follow (minus the history's), the member is live. */
static void finish(relay_resume *rs)
{
    relay_member *m = rs->m;
    if (rs->target > m->history_through)
        m->history_through = rs->target;
    relay_deliver_release(m, &rs->seen);
    if (rs->since >= 0)
        mr_log_debug("session %s: resume of %s from %lld: history through %lld sent", m->conn->sid,
                     m->room->name, (long long)rs->since, (long long)rs->last_sent);
    resume_done(rs);
}

/* `joined` with recovered=false and `reason`, no history: the member is live at once. */
static void answer_without_history(relay_resume *rs, const char *reason)
{
    relay_resume_result res = {.since = rs->since, .through = rs->since, .reason = reason};
    send_joined(rs, &res);
    relay_deliver_plan(rs->m, rs->m->history_through);
    mr_metric_inc(&relay_m.resumes_incomplete);
    mr_log_debug("session %s: resume of %s from %lld: recovered=false (%s)", rs->m->conn->sid,
                 rs->m->room->name, (long long)rs->since, reason);
    finish(rs);
}

/* Ask for the next page: after what was sent, at most what is left of the plan. */
static void request_page(relay_resume *rs)
{
    relay *r = rs->r;
    int64_t after = rs->answered ? rs->last_sent : rs->since;
    int64_t limit = r->cfg->resume_limit;
    if (rs->answered && rs->target - rs->last_sent < limit)
        limit = rs->target - rs->last_sent;
    char subject[RELAY_SUBJECT_MAX], body[96];
    snprintf(subject, sizeof subject, RELAY_SUBJ_HISTORY "%s", rs->m->room->name);
    int n;
    if (rs->rewind > 0) /* the newest N: below any seq there can be */
        n = snprintf(body, sizeof body, "{\"before\":%lld,\"limit\":%lld}", (long long)INT64_MAX,
                     (long long)rs->rewind);
    else
        n = snprintf(body, sizeof body, "{\"after\":%lld,\"limit\":%lld}", (long long)after,
                     (long long)limit);
    snprintf(rs->token, sizeof rs->token, "%llu", (unsigned long long)++r->next_request_id);
    rs->attempts++;
    rs->state = WAIT_PAGE;
    rs->deadline_us = mr_now_us() + r->cfg->resume_timeout_ms * 1000;
    if (relay_nats_request(r->nats, subject, rs->token, body, (size_t)n) != 0) {
        if (!rs->answered) {
            rs->token[0] = '\0';
            answer_without_history(rs, "history is unavailable: the message bus is down");
            return;
        }
        /* As if it timed out at once: the next expiry pass tries again. */
        rs->deadline_us = 0;
    }
    mr_map_put(&r->resumes, rs->token, strlen(rs->token), rs);
}

/* A page could not be read. */
static void page_failed(relay_resume *rs, const char *reason)
{
    if (!rs->answered) {
        answer_without_history(rs, reason);
        return;
    }
    if (rs->attempts < PAGE_ATTEMPTS) {
        request_page(rs);
        return;
    }
    /* The member was promised this history: it resumes from the last seq it got. */
    relay_conn *c = rs->m->conn;
    mr_log_warn("session %s: history replay of %s stopped after seq %lld of %lld (%s); closing",
                c->sid, rs->m->room->name, (long long)rs->last_sent, (long long)rs->target, reason);
    relay_conn_close(c, MR_CLOSE_INTERNAL, "history replay interrupted");
    resume_done(rs);
}

/* Queue history while the member's queue has room; finish when it is all sent. */
static void replay(relay_resume *rs)
{
    relay_member *m = rs->m;
    relay_conn *c = m->conn;
    size_t limit = (size_t)rs->r->cfg->limits.max_outbound_bytes;
    size_t budget = limit / QUEUE_SHARE;
    if (c->close_code) {
        resume_done(rs);
        return;
    }
    while (rs->state == REPLAY) {
        if (!rs->next) {
            json_t *e = rs->page ? json_array_get(rs->page, rs->pos) : NULL;
            if (!e)
                break;
            rs->pos++;
            json_t *seq = json_object_get(e, "seq");
            json_t *id = json_object_get(e, "msg_id");
            if (!json_is_integer(seq) || !json_is_string(id) ||
                !mr_msg_id_valid(json_string_value(id), json_string_length(id)))
                continue;
            int64_t s = json_integer_value(seq);
            if (s <= rs->last_sent || s <= rs->since)
                continue;
            if (s > rs->target) {
                rs->page_more = false; /* beyond the plan: those come live, or over HTTP */
                break;
            }
            mr_buf b = MR_BUF_INIT;
            /* What the member said it has (`have`) comes as its commit: the seq only. */
            if (relay_deliver_take_have(m, json_string_value(id)))
                relay_frame_commit(&b, m->room->name, m->room->name_len, json_string_value(id), s);
            else
                relay_frame_stored_message(&b, e);
            rs->next = relay_out_new(b.data, b.len);
            mr_buf_free(&b);
            memcpy(rs->next_id, json_string_value(id), MR_MSG_ID_LEN + 1);
            rs->next_seq = s;
        }
        if (c->qlen && c->qbytes + rs->next->len > budget)
            return; /* the next pump, as the queue drains */
        relay_conn_send_for(c, rs->next, m->room->name);
        relay_out_unref(rs->next);
        rs->next = NULL;
        mr_map_put(&rs->seen, rs->next_id, MR_MSG_ID_LEN, (void *)1);
        relay_deliver_replayed(rs->r, m->room, rs->next_id, rs->next_seq);
        rs->last_sent = rs->next_seq;
    }
    if (rs->state == REPLAY) {
        json_decref(rs->page);
        rs->page = NULL;
        if (rs->page_more && rs->last_sent < rs->target) {
            rs->attempts = 0;
            request_page(rs);
            return;
        }
        rs->state = FINISHING;
    }
    /* The held frames go out at once: wait until they fit beside what is queued. */
    if (c->qlen && c->qbytes + m->held_bytes > limit)
        return;
    finish(rs);
}

/* The room is subscribed: answer a plain join, or ask for the first page of a resume. */
static void begin(relay_resume *rs)
{
    if (rs->since < 0) {
        send_joined(rs, NULL);
        finish(rs);
        return;
    }
    if (!rs->r->cfg->jetstream) {
        answer_without_history(rs, "history is not available (jetstream is off)");
        return;
    }
    if (rs->rewind > 0 && rs->r->cfg->rewind_max == 0) {
        answer_without_history(rs, "rewind is off on this relay");
        return;
    }
    if (!relay_nats_connected(rs->r->nats)) {
        answer_without_history(rs, "history is unavailable: the message bus is down");
        return;
    }
    request_page(rs);
}

static void start(relay *r, relay_member *m, int64_t since, int64_t rewind, json_t *id)
{
    relay_resume *rs = mr_calloc(1, sizeof *rs);
    rs->r = r;
    rs->m = m;
    rs->since = since;
    rs->rewind = rewind;
    rs->join_id = id ? json_incref(id) : NULL;
    mr_map_init(&rs->seen);
    m->resume = rs;
    relay_deliver_hold(m);
    rs->presence_events = m->presence_events;
    m->presence_events = false;
    if (since >= 0) {
        mr_metric_inc(&relay_m.resumes);
        /* The member has everything up to `since`, whatever history says later. */
        if (since > m->history_through)
            m->history_through = since;
        rs->last_sent = since;
        rs->target = since;
    }
    rs->state = WAIT_SUBSCRIBED;
    if (!m->room->subscribing)
        begin(rs);
}

void relay_resume_start(relay *r, relay_conn *c, relay_member *m, int64_t since, json_t *id)
{
    (void)c;
    start(r, m, since, 0, id);
}

void relay_resume_rewind(relay *r, relay_conn *c, relay_member *m, int64_t n, json_t *id)
{
    if (n == 0) {
        relay_resume_start(r, c, m, -1, id);
        return;
    }
    (void)c;
    int64_t max = r->cfg->rewind_max;
    mr_metric_inc(&relay_m.rewinds);
    /* Since 0 until the newest page tells where the last N start. */
    start(r, m, 0, max > 0 && n > max ? max : n, id);
}

void relay_resume_subscribed(relay *r, relay_room *room)
{
    (void)r;
    /* begin() may finish a resume, never a membership: the list stays as it is. */
    for (relay_member *m = room->members; m; m = m->room_next)
        if (m->resume && m->resume->state == WAIT_SUBSCRIBED)
            begin(m->resume);
}

void relay_resume_fail(relay *r, relay_member *m)
{
    (void)r;
    relay_resume *rs = m->resume;
    if (!rs)
        return;
    if (!rs->answered)
        relay_conn_error(m->conn, rs->join_id, MR_ERR_UNAVAILABLE,
                         "cannot subscribe to the room now");
    resume_done(rs);
}

void relay_resume_leaving(relay *r, relay_member *m)
{
    (void)r;
    relay_resume *rs = m->resume;
    if (!rs || rs->answered)
        return;
    if (rs->since < 0) {
        send_joined(rs, NULL);
    } else {
        relay_resume_result res = {
            .since = rs->since, .through = rs->since, .reason = "left before history was read"};
        send_joined(rs, &res);
    }
}

/* The first page: plan the replay and send `joined`. */
static void plan(relay_resume *rs, json_t *messages, bool more, json_t *last_seq)
{
    relay *r = rs->r;
    size_t n = json_array_size(messages);
    json_t *first = n ? json_object_get(json_array_get(messages, 0), "seq") : NULL;
    json_t *last = n ? json_object_get(json_array_get(messages, n - 1), "seq") : NULL;
    int64_t first_seq = json_is_integer(first) ? json_integer_value(first) : rs->since + 1;
    relay_resume_result res = {.ok = true, .recovered = true, .since = rs->since};
    res.has_last_seq = json_is_integer(last_seq);
    res.last_seq = json_integer_value(last_seq);
    if (!more) {
        rs->target = json_is_integer(last) ? json_integer_value(last) : rs->since;
        res.count = n;
    } else {
        /* Seqs are contiguous from the first one history still holds. */
        int64_t newest = res.has_last_seq ? res.last_seq : 0;
        if (json_is_integer(last) && json_integer_value(last) > newest)
            newest = json_integer_value(last);
        rs->target = newest;
        if (newest - first_seq + 1 > r->cfg->resume_limit) {
            rs->target = first_seq + r->cfg->resume_limit - 1;
            res.recovered = false;
        }
        res.count = rs->target >= first_seq ? (size_t)(rs->target - first_seq + 1) : 0;
    }
    if (rs->target < rs->since)
        rs->target = rs->since;
    res.through = rs->target;
    send_joined(rs, &res);
    /* Commits up to the plan's end are the replay's to send: live ones are repeats. */
    if (rs->target > rs->m->history_through)
        rs->m->history_through = rs->target;
    relay_deliver_plan(rs->m, rs->m->history_through);
    if (!res.recovered)
        mr_metric_inc(&relay_m.resumes_incomplete);
}

/* The reason for a failed page: our own words, never the server's. */
static const char *error_reason(json_t *reply)
{
    if (!reply)
        return "history reply is not valid JSON";
    json_t *err = json_object_get(reply, "error");
    if (err) {
        const char *code = json_string_value(json_object_get(err, "code"));
        return code && strcmp(code, "unavailable") == 0 ? "history unavailable"
                                                        : "history request failed";
    }
    return "history reply is malformed";
}

/*
 * The newest page of a rewind: set `since` before its first message, so
 * the page is what a resume from there reads. Returns true when the page
 * is not used: it holds fewer than N messages only because of its size, so
 * the resume reads forwards from last_seq - N instead (asked for here).
 */
static bool rewind_found(relay_resume *rs, json_t *messages, bool more, json_t *last_seq)
{
    size_t n = json_array_size(messages);
    json_t *first = n ? json_object_get(json_array_get(messages, 0), "seq") : NULL;
    json_t *last = n ? json_object_get(json_array_get(messages, n - 1), "seq") : NULL;
    int64_t newest = json_is_integer(last_seq) ? json_integer_value(last_seq) : 0;
    if (json_is_integer(last) && json_integer_value(last) > newest)
        newest = json_integer_value(last);
    int64_t since;
    bool cut = more && (int64_t)n < rs->rewind;
    if (json_is_integer(first) && !cut)
        since = json_integer_value(first) - 1;
    else
        since = newest > rs->rewind ? newest - rs->rewind : 0;
    if (since < 0)
        since = 0;
    rs->rewind = 0;
    rs->since = rs->last_sent = rs->target = since;
    if (since > rs->m->history_through)
        rs->m->history_through = since;
    if (!cut)
        return false;
    rs->attempts = 0;
    request_page(rs);
    return true;
}

void relay_resume_reply(relay *r, const char *token, const char *data, size_t len)
{
    relay_resume *rs = mr_map_del(&r->resumes, token, strlen(token));
    if (!rs)
        return; /* timed out already, its membership ended, or not ours */
    rs->token[0] = '\0';
    json_t *reply = json_loadb(data, len, 0, NULL);
    json_t *messages = json_object_get(reply, "messages");
    json_t *more = json_object_get(reply, "more");
    if (!json_is_array(messages) || !json_is_boolean(more) || json_object_get(reply, "error")) {
        page_failed(rs, error_reason(reply));
        json_decref(reply);
        return;
    }
    bool more_after = json_is_true(more);
    if (rs->rewind > 0) {
        if (rewind_found(rs, messages, more_after, json_object_get(reply, "last_seq"))) {
            json_decref(reply);
            return;
        }
        more_after = false; /* the page ends at the newest message; `more` was about older ones */
    }
    if (!rs->answered)
        plan(rs, messages, more_after, json_object_get(reply, "last_seq"));
    rs->page = json_incref(messages);
    rs->pos = 0;
    rs->page_more = more_after;
    json_decref(reply);
    rs->state = REPLAY;
    if (!rs->paced) {
        rs->paced = true;
        rs->m->conn->replays++;
    }
    replay(rs);
}

void relay_resume_pump(relay *r, relay_conn *c)
{
    (void)r;
    for (relay_member *m = c->memberships; m; m = m->conn_next)
        if (m->resume && (m->resume->state == REPLAY || m->resume->state == FINISHING))
            replay(m->resume);
}

void relay_resume_expire(relay *r)
{
    int64_t now = mr_now_us();
    /* Collect first: handling one may ask for a page again, which inserts into the map. */
    relay_resume *due = NULL;
    size_t bucket;
    mr_map_entry *e = mr_map_first(&r->resumes, &bucket);
    while (e) {
        relay_resume *rs = e->value;
        /* Take the next entry first: deleting frees only this one (mr_map.h). */
        mr_map_entry *next = mr_map_next(&r->resumes, &bucket, e);
        if (rs->deadline_us <= now) {
            mr_map_del(&r->resumes, rs->token, strlen(rs->token));
            rs->token[0] = '\0';
            rs->next_due = due;
            due = rs;
        }
        e = next;
    }
    while (due) {
        relay_resume *rs = due;
        due = rs->next_due;
        page_failed(rs, "history request timed out");
    }
}

void relay_resume_free_all(relay *r)
{
    mr_map_free(&r->resumes, NULL);
}
