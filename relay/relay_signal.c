/*
 * Ephemeral signals.
 *
 * A signal is what a chat shows for a moment and then forgets: "alice is
 * typing", a cursor, a read mark. It must cost far less than a message and
 * leave nothing behind, so it skips everything that makes a message
 * durable: no msg_id and dedup, no JetStream publish and PubAck, no commit,
 * no seq, no history, no ack to the sender. The relay builds the client
 * frame once, queues it for the room's other members here, and publishes
 * it on core NATS to meridian.sig.<region>.<room>, which no stream captures
 * (streams take meridian.msg.<region>.>). Every relay with members in the
 * room subscribes to meridian.sig.*.<room> (taken with the room's other
 * subscriptions and confirmed with them), so gateways carry signals to the
 * other regions by interest, and delivers what comes in after
 * relay_inbound.c has checked it. The copy of a relay's own signal that
 * NATS echoes back names this relay's instance and is dropped.
 *
 * Delivery is at most once and best effort: a member whose queue holds more
 * than half of limits.max_outbound_bytes skips the signal rather than being
 * closed as a slow consumer for something ephemeral, and a member whose
 * join is still being answered (a history replay) gets none until it is
 * live. The sender does not get its own signal back (its other sessions
 * do). Signals have their own token bucket per connection (signals.rate,
 * signals.burst), separate from publishes, and a small size bound
 * (signals.max_bytes of `data`).
 */
#include "relay_signal.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unsubscribe(void *state)
{
    relay_nats_unsubscribe(state);
}

void relay_signal_init(relay *r)
{
    r->signal_slot = relay_rooms_add_state(&r->rooms, unsubscribe, NULL);
}

int relay_signal_room_created(relay *r, relay_room *room)
{
    char subject[RELAY_SUBJECT_MAX];
    snprintf(subject, sizeof subject, RELAY_SUBJ_SIGNAL "*.%s", room->name);
    natsSubscription *sub = NULL;
    if (relay_nats_subscribe_subject(r->nats, subject, &sub) != 0)
        return -1;
    room->state[r->signal_slot] = sub;
    return 0;
}

/* Queue `o` for every live member of `room` except `sender`, skipping members with a full queue. */
static void deliver(relay *r, relay_room *room, relay_out *o, const relay_conn *sender)
{
    size_t budget = (size_t)r->cfg->limits.max_outbound_bytes / 2;
    for (relay_member *m = room->members; m; m = m->room_next) {
        relay_conn *c = m->conn;
        if (c == sender || m->resume || c->close_code || c->qbytes + o->len > budget)
            continue;
        relay_conn_send(c, o);
        mr_metric_inc(&relay_m.signals_delivered);
    }
}

void relay_signal(relay *r, relay_conn *c, const mr_frame *f)
{
    relay_member *m = relay_conn_member(c, f->room, f->room_len);
    if (!m) {
        relay_conn_error(c, f->id, MR_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    int64_t now = mr_now_us();
    if (!c->signal_rl_ready) {
        mr_ratelimit_init(&c->signal_rl, r->cfg->signal_rate, r->cfg->signal_burst, now);
        c->signal_rl_ready = true;
    }
    /* The payload as compact JSON text (mr_proto keeps it so). */
    const char *data = f->data;
    size_t data_len = f->data_len;
    if (data_len > (size_t)r->cfg->signal_max_bytes) {
        char why[96];
        snprintf(why, sizeof why, "signal data is larger than signals.max_bytes (%lld bytes)",
                 (long long)r->cfg->signal_max_bytes);
        relay_conn_error(c, f->id, MR_ERR_BAD_FRAME, why);
        return;
    }
    if (!mr_ratelimit_take(&c->signal_rl, now)) {
        relay_conn_error(c, f->id, MR_ERR_RATE_LIMITED, "signal rate limit exceeded");
        return;
    }
    if (!relay_nats_connected(r->nats)) {
        relay_conn_error(c, f->id, MR_ERR_UNAVAILABLE, "the message bus is down");
        return;
    }
    mr_buf b = MR_BUF_INIT;
    relay_frame_signal(&b, m->room->name, c->user, r->cfg->region, r->instance, data, data_len);
    char subject[RELAY_SUBJECT_MAX];
    snprintf(subject, sizeof subject, RELAY_SUBJ_SIGNAL "%s.%s", r->cfg->region, m->room->name);
    if (relay_nats_publish_raw(r->nats, subject, NULL, b.data, b.len) != 0)
        mr_log_debug("session %s: signal to %s not published", c->sid, m->room->name);
    mr_metric_inc(&relay_m.signals);
    relay_out *o = relay_out_new(b.data, b.len);
    mr_buf_free(&b);
    deliver(r, m->room, o, c);
    relay_out_unref(o);
}

void relay_signal_deliver(relay *r, relay_room *room, const char *frame, size_t len)
{
    relay_out *o = relay_out_new(frame, len);
    deliver(r, room, o, NULL);
    relay_out_unref(o);
}
