/*
 * Resume after a reconnect, in any region.
 *
 * The order matters for a gap-free result: the member's room subscription is
 * in place (and confirmed by the server) before history is requested, so any
 * message committed after the history snapshot also arrives live. Live
 * frames for the member are held meanwhile. When the history page arrives the
 * member gets `joined` with `recovered`, the history messages in seq order,
 * then the held frames minus those the history already contained.
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
#include "relay_metrics.h"
#include "relay_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct relay_resume {
    uint64_t id;
    uint64_t session_id;
    char room[MR_ROOM_MAX + 1];
    int64_t since;
    json_t *join_id;
    int64_t deadline_us;
} relay_resume;

static relay_member *find_member(relay *r, relay_resume *rs, relay_session **out)
{
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)rs->session_id);
    relay_session *s = mr_map_get(&r->sessions_by_id, key, strlen(key));
    if (!s)
        return NULL;
    *out = s;
    for (relay_member *m = s->memberships; m; m = m->session_next)
        if (strcmp(m->room->name, rs->room) == 0)
            return m->recovering ? m : NULL;
    return NULL;
}

static void put_id(mr_buf *b, json_t *id)
{
    if (!id)
        return;
    char *t = json_dumps(id, JSON_ENCODE_ANY);
    mr_buf_printf(b, ",\"id\":%s", t);
    free(t);
}

/* Send joined + history + held frames; `reply` is the control plane's answer or NULL. */
static void finish(relay *r, relay_session *s, relay_member *m, relay_resume *rs, json_t *reply,
                   const char *reason)
{
    json_t *messages = reply ? json_object_get(reply, "messages") : NULL;
    json_t *more = reply ? json_object_get(reply, "more") : NULL;
    json_t *last_seq = reply ? json_object_get(reply, "last_seq") : NULL;
    bool ok = json_is_array(messages) && json_is_boolean(more);
    bool recovered = ok && !json_is_true(more);
    int64_t delivered_to = rs->since;

    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"type\":\"joined\"");
    put_id(&b, rs->join_id);
    mr_buf_puts(&b, ",\"room\":");
    mr_buf_json_str(&b, rs->room, strlen(rs->room));
    mr_buf_printf(&b, ",\"recovered\":%s", recovered ? "true" : "false");
    if (ok) {
        size_t n = json_array_size(messages);
        json_t *lastm = n ? json_array_get(messages, n - 1) : NULL;
        if (lastm && json_is_integer(json_object_get(lastm, "seq")))
            delivered_to = json_integer_value(json_object_get(lastm, "seq"));
        mr_buf_printf(&b, ",\"history\":%zu,\"since\":%lld,\"through\":%lld", n,
                      (long long)rs->since, (long long)delivered_to);
        if (json_is_integer(last_seq))
            mr_buf_printf(&b, ",\"last_seq\":%lld", (long long)json_integer_value(last_seq));
        if (!recovered)
            mr_buf_printf(&b, ",\"reason\":\"history_limit\",\"next_after\":%lld",
                          (long long)delivered_to);
    } else {
        mr_buf_puts(&b, ",\"reason\":");
        mr_buf_json_str(&b, reason, strlen(reason));
    }
    mr_buf_putc(&b, '}');
    relay_session_send_buf(s, &b);

    /* History, oldest first; remember the ids to skip them among the held frames. */
    mr_map seen;
    mr_map_init(&seen);
    size_t i;
    json_t *e;
    if (ok) {
        json_array_foreach(messages, i, e)
        {
            json_t *id = json_object_get(e, "msg_id");
            if (!json_is_object(e) || !json_is_string(id))
                continue;
            mr_map_put(&seen, json_string_value(id), json_string_length(id), (void *)1);
            char *text = json_dumps(e, JSON_COMPACT);
            mr_buf_reset(&b);
            mr_buf_puts(&b, text);
            free(text);
            relay_session_send_buf(s, &b);
        }
    }
    m->recovering = false;
    if (ok && delivered_to > m->history_through)
        m->history_through = delivered_to;
    while (m->held) {
        relay_held *h = m->held;
        m->held = h->next;
        if (!mr_map_get(&seen, h->msg_id, MR_MSG_ID_LEN))
            relay_session_send(s, h->out);
        relay_out_unref(h->out);
        free(h);
    }
    m->held_tail = NULL;
    mr_map_free(&seen, NULL);
    mr_buf_free(&b);
    if (!recovered)
        mr_metric_inc(&relay_m.resumes_incomplete);
    mr_log_debug("session %s: resume of %s from %lld: recovered=%d (%s)", s->sid, rs->room,
                 (long long)rs->since, recovered, ok ? "history" : reason);
}

static void resume_free(relay_resume *rs)
{
    json_decref(rs->join_id);
    free(rs);
}

void relay_resume_start(relay *r, relay_session *s, relay_member *m, int64_t since, json_t *id)
{
    mr_metric_inc(&relay_m.resumes);
    relay_resume *rs = mr_calloc(1, sizeof *rs);
    rs->id = ++r->next_request_id;
    rs->session_id = s->id;
    snprintf(rs->room, sizeof rs->room, "%s", m->room->name);
    rs->since = since;
    rs->join_id = id ? json_incref(id) : NULL;
    rs->deadline_us = mr_now_us() + r->cfg->resume_timeout_ms * 1000;
    m->recovering = true;

    if (!r->cfg->jetstream) {
        finish(r, s, m, rs, NULL, "history is not available (jetstream is off)");
        resume_free(rs);
        return;
    }
    char token[24], subject[MR_ROOM_MAX + 32], body[96];
    snprintf(token, sizeof token, "%llu", (unsigned long long)rs->id);
    snprintf(subject, sizeof subject, "meridian.history.%s", rs->room);
    int n = snprintf(body, sizeof body, "{\"after\":%lld,\"limit\":%lld}", (long long)since,
                     (long long)r->cfg->resume_limit);
    if (relay_nats_request(r->nats, subject, token, body, (size_t)n) != 0) {
        finish(r, s, m, rs, NULL, "history is unavailable: the message bus is down");
        resume_free(rs);
        return;
    }
    mr_map_put(&r->resumes, token, strlen(token), rs);
}

void relay_resume_reply(relay *r, const char *token, natsMsg *msg)
{
    relay_resume *rs = mr_map_del(&r->resumes, token, strlen(token));
    if (!rs)
        return; /* timed out already, or not ours */
    relay_session *s;
    relay_member *m = find_member(r, rs, &s);
    if (m) {
        json_t *reply =
            json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
        const char *reason = "history service answered with an error";
        json_t *err = json_object_get(reply, "error");
        if (json_is_object(err) && json_is_string(json_object_get(err, "message")))
            reason = json_string_value(json_object_get(err, "message"));
        if (!reply)
            reason = "history reply is not valid JSON";
        finish(r, s, m, rs, err ? NULL : reply, reason);
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
        mr_map_entry *next = mr_map_next(&r->resumes, &bucket, e);
        if (rs->deadline_us <= now) {
            char token[24];
            snprintf(token, sizeof token, "%llu", (unsigned long long)rs->id);
            /* Continue from the next entry; deleting only frees this one. */
            mr_map_del(&r->resumes, token, strlen(token));
            relay_session *s;
            relay_member *m = find_member(r, rs, &s);
            if (m)
                finish(r, s, m, rs, NULL, "history request timed out");
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
