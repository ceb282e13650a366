/*
 * Delivery.
 *
 * A message frame is copied once into a shared buffer (relay_out) and a
 * reference is queued for each member. Its id is remembered in the room's
 * dedup ring first: a retried publish reaches core subscribers twice even
 * when the stream drops the copy, and the publisher's relay delivers its own
 * messages before their NATS copy comes back.
 *
 * Commits confirm a message this relay delivered with a small `commit`
 * frame; a message it never saw (the fast path lost it) is delivered from
 * the commit itself, seq included. Either way every member learns every
 * message with its seq.
 *
 * A member that is recovering history (relay_resume.c) gets nothing queued:
 * its frames are held in arrival order until the resume releases them.
 */
#include "relay_deliver.h"
#include "mr_alloc.h"
#include "relay_conn.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdlib.h>
#include <string.h>

/* A frame held back from a member while its history is being fetched. */
typedef struct relay_held {
    struct relay_held *next;
    relay_out *out;
    char msg_id[MR_MSG_ID_LEN + 1];
} relay_held;

/* A membership ends: drop what it still held. */
static void member_free(relay_member *m)
{
    while (m->held) {
        relay_held *h = m->held;
        m->held = h->next;
        relay_out_unref(h->out);
        free(h);
    }
    m->held_tail = NULL;
}

void relay_deliver_init(relay *r)
{
    relay_rooms_add_state(&r->rooms, NULL, member_free);
}

void relay_deliver_to(relay_member *m, relay_out *o, const char *msg_id)
{
    if (!m->recovering) {
        relay_conn_send(m->conn, o);
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
        relay_deliver_to(m, o, msg_id);
        n++;
    }
    return n;
}

bool relay_deliver_message(relay *r, relay_room *room, const char *msg_id, const void *frame,
                           size_t len)
{
    if (relay_dedup_seen(&room->dedup, r->rooms.dedup_window, msg_id))
        return false;
    relay_out *o = relay_out_new(frame, len);
    mr_metric_add(&relay_m.deliveries, (int64_t)deliver_all(room, o, msg_id, 0));
    relay_out_unref(o);
    return true;
}

void relay_deliver_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq,
                          json_t *message)
{
    mr_buf b = MR_BUF_INIT;
    if (relay_dedup_seen(&room->dedup, r->rooms.dedup_window, msg_id)) {
        relay_frame_commit(&b, room->name, room->name_len, msg_id, seq);
        mr_metric_inc(&relay_m.commits);
    } else {
        relay_frame_stored_message(&b, message);
        mr_metric_inc(&relay_m.recovered_from_commit);
    }
    relay_out *o = relay_out_new(b.data, b.len);
    deliver_all(room, o, msg_id, seq);
    relay_out_unref(o);
    mr_buf_free(&b);
}

void relay_deliver_hold(relay_member *m)
{
    m->recovering = true;
}

void relay_deliver_release(relay_member *m, const mr_map *skip)
{
    m->recovering = false;
    while (m->held) {
        relay_held *h = m->held;
        m->held = h->next;
        if (!skip || !mr_map_get(skip, h->msg_id, MR_MSG_ID_LEN))
            relay_conn_send(m->conn, h->out);
        relay_out_unref(h->out);
        free(h);
    }
    m->held_tail = NULL;
}
