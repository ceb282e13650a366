/*
 * Fan-out.
 *
 * Fast path: the NATS payload is already the client `message` frame, so it
 * is copied once into a shared buffer and referenced from each member's
 * queue; the message id comes from the Nats-Msg-Id header, and ids seen
 * recently in the room are dropped (a retried publish reaches core
 * subscribers twice even when the stream drops the copy).
 *
 * Commits: the control plane publishes meridian.commit.<room> once a message
 * has its seq. A message this relay already delivered is confirmed with a
 * small `commit` frame; one it never saw (the fast path lost it) is
 * delivered from the commit itself, seq included. Either way every member
 * learns every message with its seq.
 */
#include "relay_fanout.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_repair.h"
#include "relay_resume.h"
#include "relay_session.h"

#include <stdlib.h>
#include <string.h>

void relay_member_deliver(relay_member *m, relay_out *o, const char *msg_id)
{
    if (!m->recovering) {
        relay_session_send(m->session, o);
        return;
    }
    relay_held *h = mr_malloc(sizeof *h);
    h->next = NULL;
    h->out = relay_out_ref(o);
    memcpy(h->msg_id, msg_id, MR_MSG_ID_LEN + 1);
    if (m->held_tail)
        m->held_tail->next = h;
    else
        m->held = h;
    m->held_tail = h;
}

/* Deliver to every member; `seq` (0 if unknown) skips members whose resume already sent it. */
static size_t deliver_all(relay_room *room, relay_out *o, const char *msg_id, int64_t seq)
{
    size_t n = 0;
    for (relay_member *m = room->members; m; m = m->room_next) {
        if (seq > 0 && seq <= m->history_through)
            continue;
        relay_member_deliver(m, o, msg_id);
        n++;
    }
    return n;
}

static bool valid_msg_id(const char *s)
{
    if (!s || strlen(s) != MR_MSG_ID_LEN)
        return false;
    for (int i = 0; i < MR_MSG_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void on_fast_path(relay *r, natsMsg *msg, const char *room_name)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return; /* everyone left after the message was queued */
    const char *msg_id = NULL;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id) != NATS_OK || !valid_msg_id(msg_id)) {
        mr_log_warn("nats: message on %s without a valid Nats-Msg-Id; dropped",
                    natsMsg_GetSubject(msg));
        return;
    }
    if (relay_dedup_seen(&room->dedup, r->rooms.dedup_window, msg_id)) {
        mr_metric_inc(&relay_m.duplicates_dropped);
        return;
    }
    relay_repair_fast_path(r, room, msg_id);
    relay_out *o = relay_out_new(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    mr_metric_add(&relay_m.deliveries, (int64_t)deliver_all(room, o, msg_id, 0));
    relay_out_unref(o);
}

static void on_commit(relay *r, natsMsg *msg, const char *room_name)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return;
    json_t *c = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    json_t *msg_id = json_object_get(c, "msg_id");
    json_t *seq = json_object_get(c, "seq");
    json_t *message = json_object_get(c, "message");
    if (!json_is_string(msg_id) || !valid_msg_id(json_string_value(msg_id)) ||
        !json_is_integer(seq) || !json_is_object(message)) {
        mr_log_warn("nats: malformed commit on %s; dropped", natsMsg_GetSubject(msg));
        json_decref(c);
        return;
    }
    const char *id = json_string_value(msg_id);
    if (relay_repair_commit(r, room, id, json_integer_value(seq)))
        relay_fanout_commit(r, room, id, json_integer_value(seq), message);
    json_decref(c);
}

void relay_fanout_local(relay *r, relay_room *room, const char *msg_id, const mr_buf *frame)
{
    if (relay_dedup_seen(&room->dedup, r->rooms.dedup_window, msg_id))
        return; /* a retry of a message already delivered here */
    relay_repair_fast_path(r, room, msg_id);
    relay_out *o = relay_out_new(frame->data, frame->len);
    mr_metric_add(&relay_m.deliveries, (int64_t)deliver_all(room, o, msg_id, 0));
    relay_out_unref(o);
}

void relay_fanout_commit(relay *r, relay_room *room, const char *id, int64_t seq, json_t *message)
{
    mr_buf b = MR_BUF_INIT;
    if (relay_dedup_seen(&room->dedup, r->rooms.dedup_window, id)) {
        mr_buf_puts(&b, "{\"type\":\"commit\",\"room\":");
        mr_buf_json_str(&b, room->name, room->name_len);
        mr_buf_printf(&b, ",\"msg_id\":\"%s\",\"seq\":%lld}", id, (long long)seq);
        mr_metric_inc(&relay_m.commits);
    } else {
        char *text = json_dumps(message, JSON_COMPACT);
        mr_buf_puts(&b, text);
        free(text);
        mr_metric_inc(&relay_m.recovered_from_commit);
    }
    relay_out *o = relay_out_new(b.data, b.len);
    deliver_all(room, o, id, seq);
    relay_out_unref(o);
    mr_buf_free(&b);
}

void relay_fanout_inbound(relay *r, natsMsg *msg)
{
    const char *subject = natsMsg_GetSubject(msg);
    const char *inbox = relay_nats_inbox_prefix(r->nats);
    size_t il = strlen(inbox);
    if (strncmp(subject, inbox, il) == 0) {
        const char *token = subject + il;
        if (strncmp(token, "p.", 2) == 0)
            relay_presence_snapshot_reply(r, token + 2, msg);
        else if (strncmp(token, "c.", 2) == 0)
            relay_repair_reply(r, token + 2, msg);
        else
            relay_resume_reply(r, token, msg);
        return;
    }
    if (strncmp(subject, "meridian.presence.", 18) == 0) {
        relay_presence_on_nats(r, msg);
        return;
    }
    const char *last = strrchr(subject, '.');
    if (!last)
        return;
    if (strncmp(subject, "meridian.msg.", 13) == 0)
        on_fast_path(r, msg, last + 1);
    else if (strncmp(subject, "meridian.commit.", 16) == 0)
        on_commit(r, msg, last + 1);
}
