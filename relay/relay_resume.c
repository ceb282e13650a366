/*
 * Resume after a reconnect, in any region.
 *
 * The order matters for a gap-free result: the member's room subscription is
 * in place (and confirmed by the server) before history is requested, so any
 * message committed after the history snapshot also arrives live. Live
 * frames for the member are held meanwhile (relay_deliver_hold). When the
 * history page arrives the member gets `joined` with `recovered`, the history
 * messages in seq order, then the held frames minus those the history already
 * contained.
 *
 * recovered is true only when the page holds everything after `since`
 * (more=false). Otherwise the member is told the seq to page from over the
 * control plane's HTTP API. A timeout or an error says recovered=false with
 * the reason; the member is live either way.
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

typedef struct relay_resume {
    char token[TOKEN_MAX]; /* the request's id, its key in r->resumes */
    uint64_t conn_id;
    char room[MR_ROOM_MAX + 1];
    int64_t since;
    json_t *join_id;
    int64_t deadline_us;
} relay_resume;

/* The membership still waiting for this resume, or NULL when the member left or closed. */
static relay_member *find_member(relay *r, relay_resume *rs, relay_conn **out)
{
    relay_conn *c = relay_conn_find(r, rs->conn_id);
    if (!c)
        return NULL;
    *out = c;
    relay_member *m = relay_conn_member(c, rs->room, strlen(rs->room));
    return m && m->recovering ? m : NULL;
}

/* Send joined + history + held frames; `reply` is the control plane's answer or NULL. */
static void finish(relay_conn *c, relay_member *m, relay_resume *rs, json_t *reply,
                   const char *reason)
{
    json_t *messages = reply ? json_object_get(reply, "messages") : NULL;
    json_t *more = reply ? json_object_get(reply, "more") : NULL;
    json_t *last_seq = reply ? json_object_get(reply, "last_seq") : NULL;
    relay_resume_result res = {
        .ok = json_is_array(messages) && json_is_boolean(more),
        .since = rs->since,
        .through = rs->since,
        .reason = reason,
    };
    res.recovered = res.ok && !json_is_true(more);
    if (res.ok) {
        res.count = json_array_size(messages);
        json_t *lastm = res.count ? json_array_get(messages, res.count - 1) : NULL;
        if (lastm && json_is_integer(json_object_get(lastm, "seq")))
            res.through = json_integer_value(json_object_get(lastm, "seq"));
        res.has_last_seq = json_is_integer(last_seq);
        res.last_seq = json_integer_value(last_seq);
    }
    mr_buf b = MR_BUF_INIT;
    relay_frame_joined_resume(&b, rs->join_id, rs->room, &res);
    relay_conn_send_buf(c, &b);

    /* History, oldest first; remember the ids to skip them among the held frames. */
    mr_map seen;
    mr_map_init(&seen);
    size_t i;
    json_t *e;
    if (res.ok) {
        json_array_foreach(messages, i, e)
        {
            json_t *id = json_object_get(e, "msg_id");
            if (!json_is_object(e) || !json_is_string(id))
                continue;
            mr_map_put(&seen, json_string_value(id), json_string_length(id), (void *)1);
            mr_buf_reset(&b);
            relay_frame_stored_message(&b, e);
            relay_conn_send_buf(c, &b);
        }
    }
    if (res.ok && res.through > m->history_through)
        m->history_through = res.through;
    relay_deliver_release(m, &seen);
    mr_map_free(&seen, NULL);
    mr_buf_free(&b);
    if (!res.recovered)
        mr_metric_inc(&relay_m.resumes_incomplete);
    mr_log_debug("session %s: resume of %s from %lld: recovered=%d (%s)", c->sid, rs->room,
                 (long long)rs->since, res.recovered, res.ok ? "history" : reason);
}

static void resume_free(relay_resume *rs)
{
    json_decref(rs->join_id);
    free(rs);
}

void relay_resume_start(relay *r, relay_conn *c, relay_member *m, int64_t since, json_t *id)
{
    mr_metric_inc(&relay_m.resumes);
    relay_resume *rs = mr_calloc(1, sizeof *rs);
    snprintf(rs->token, sizeof rs->token, "%llu", (unsigned long long)++r->next_request_id);
    rs->conn_id = c->id;
    snprintf(rs->room, sizeof rs->room, "%s", m->room->name);
    rs->since = since;
    rs->join_id = id ? json_incref(id) : NULL;
    rs->deadline_us = mr_now_us() + r->cfg->resume_timeout_ms * 1000;
    relay_deliver_hold(m);

    if (!r->cfg->jetstream) {
        finish(c, m, rs, NULL, "history is not available (jetstream is off)");
        resume_free(rs);
        return;
    }
    char subject[RELAY_SUBJECT_MAX], body[96];
    snprintf(subject, sizeof subject, RELAY_SUBJ_HISTORY "%s", rs->room);
    int n = snprintf(body, sizeof body, "{\"after\":%lld,\"limit\":%lld}", (long long)since,
                     (long long)r->cfg->resume_limit);
    if (relay_nats_request(r->nats, subject, rs->token, body, (size_t)n) != 0) {
        finish(c, m, rs, NULL, "history is unavailable: the message bus is down");
        resume_free(rs);
        return;
    }
    mr_map_put(&r->resumes, rs->token, strlen(rs->token), rs);
}

void relay_resume_reply(relay *r, const char *token, const char *data, size_t len)
{
    relay_resume *rs = mr_map_del(&r->resumes, token, strlen(token));
    if (!rs)
        return; /* timed out already, or not ours */
    relay_conn *c;
    relay_member *m = find_member(r, rs, &c);
    if (m) {
        json_t *reply = json_loadb(data, len, 0, NULL);
        const char *reason = "history service answered with an error";
        json_t *err = json_object_get(reply, "error");
        if (json_is_object(err) && json_is_string(json_object_get(err, "message")))
            reason = json_string_value(json_object_get(err, "message"));
        if (!reply)
            reason = "history reply is not valid JSON";
        finish(c, m, rs, err ? NULL : reply, reason);
        json_decref(reply);
    }
    resume_free(rs);
}

void relay_resume_expire(relay *r)
{
    int64_t now = mr_now_us();
    size_t bucket;
    mr_map_entry *e = mr_map_first(&r->resumes, &bucket);
    while (e) {
        relay_resume *rs = e->value;
        /* Take the next entry first: deleting frees only this one (mr_map.h). */
        mr_map_entry *next = mr_map_next(&r->resumes, &bucket, e);
        if (rs->deadline_us <= now) {
            mr_map_del(&r->resumes, rs->token, strlen(rs->token));
            relay_conn *c;
            relay_member *m = find_member(r, rs, &c);
            if (m)
                finish(c, m, rs, NULL, "history request timed out");
            resume_free(rs);
        }
        e = next;
    }
}

static void free_resume_value(void *p)
{
    resume_free(p);
}

void relay_resume_free_all(relay *r)
{
    mr_map_free(&r->resumes, free_resume_value);
}
