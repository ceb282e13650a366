/*
 * Publishing.
 *
 * A publish is checked (the sender is a member of the room, within its rate
 * limit), given its identity msg_id = hash(room, user, mid) (a random mid
 * when the client sent none), serialised once as the `message` frame, and
 * published to meridian.msg.<region>.<room> with the id as Nats-Msg-Id. The
 * frame is then delivered to this relay's members at once; the copy NATS
 * brings back is dropped as a duplicate.
 *
 * Core NATS mode acks at once. In JetStream mode the relay publishes with
 * js_PublishMsgAsync and keeps a pending record keyed by the natsMsg's
 * address: the library hands the same message back to the ack handler, and
 * we own it until we destroy it here, so the address is a unique key for the
 * publish's lifetime.
 *
 * A time-out is retried with the very same message (same Nats-Msg-Id), so the
 * stream stores it at most once however many attempts reach it. After the
 * retry budget the client gets `unavailable` and retries itself, again with
 * the same mid, hence the same id. A PubAck marked duplicate is still an ack:
 * the message is in the stream.
 */
#include "relay_publish.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Random bytes of the mid given to a publish without one ("r-" and their hex). */
#define RANDOM_MID_BYTES 8

typedef struct relay_pending {
    uint64_t conn_id;
    json_t *req_id;
    char room[MR_ROOM_MAX + 1];
    char msg_id[MR_MSG_ID_LEN + 1];
    char mid[MR_MID_MAX + 1];
    size_t mid_len;
    int64_t start_us;
    int attempts;
} relay_pending;

static void key_of(natsMsg *msg, char key[32])
{
    snprintf(key, 32, "%p", (void *)msg);
}

static void pending_free(relay_pending *p)
{
    json_decref(p->req_id);
    free(p);
}

/* Publish through JetStream; the ack or error is sent from relay_publish_outcome. */
static int publish_durable(relay *r, relay_conn *c, json_t *req_id, const char *subject,
                           const char *room, const char *msg_id, const char *mid, size_t mid_len,
                           const mr_buf *frame, int64_t start_us)
{
    natsMsg *msg = NULL;
    natsStatus st = natsMsg_Create(&msg, subject, NULL, frame->data, (int)frame->len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, RELAY_HDR_MSG_ID, msg_id);
    if (st != NATS_OK) {
        natsMsg_Destroy(msg);
        return -1;
    }
    relay_pending *p = mr_calloc(1, sizeof *p);
    p->conn_id = c->id;
    p->req_id = req_id ? json_incref(req_id) : NULL;
    snprintf(p->room, sizeof p->room, "%s", room);
    memcpy(p->msg_id, msg_id, MR_MSG_ID_LEN + 1);
    memcpy(p->mid, mid, mid_len);
    p->mid_len = mid_len;
    p->start_us = start_us;
    p->attempts = 1;
    char key[32];
    key_of(msg, key);
    mr_map_put(&r->pending_pubs, key, strlen(key), p);
    natsMsg *keep = msg;
    if (relay_nats_js_publish(r->nats, &msg) != 0) {
        mr_map_del(&r->pending_pubs, key, strlen(key));
        pending_free(p);
        natsMsg_Destroy(keep);
        return -1;
    }
    return 0;
}

int relay_publish(relay *r, relay_conn *c, const mr_frame *f, relay_published *out)
{
    int64_t start = mr_now_us();
    relay_member *m = relay_conn_member(c, f->room, f->room_len);
    if (!m) {
        relay_conn_error(c, f->id, MR_ERR_NOT_JOINED, "join the room before publishing");
        return -1;
    }
    if (!mr_ratelimit_take(&c->rl, start)) {
        relay_conn_error(c, f->id, MR_ERR_RATE_LIMITED, "publish rate limit exceeded");
        if (++c->strikes > (uint32_t)r->cfg->limits.rate_limit_strikes)
            relay_conn_close(c, MR_CLOSE_RATE_LIMIT, "publish rate limit exceeded");
        return -1;
    }
    c->strikes = 0;
    char random_mid[2 * RANDOM_MID_BYTES + 3];
    const char *mid = f->mid;
    size_t mid_len = f->mid_len;
    if (!mid) {
        random_mid[0] = 'r';
        random_mid[1] = '-';
        if (relay_random_hex(random_mid + 2, RANDOM_MID_BYTES) != 0) {
            /*
             * Every such publish would get the same mid, hence the same
             * msg_id, and the stream would drop all but the first while
             * acknowledging each: refuse instead.
             */
            mr_log_error("session %s: no random bytes for a publish without mid; refused", c->sid);
            relay_conn_error(c, f->id, MR_ERR_INTERNAL,
                             "cannot give the message an id now; retry, or send a mid");
            return -1;
        }
        mid = random_mid;
        mid_len = strlen(random_mid);
    }
    relay_room *room = m->room;
    out->room = room;
    out->delivered = false;
    mr_msg_id(room->name, room->name_len, c->user, mid, mid_len, out->msg_id);
    mr_envelope env = {
        .room = room->name,
        .room_len = room->name_len,
        .msg_id = out->msg_id,
        .from = c->user,
        .mid = mid,
        .mid_len = mid_len,
        .region = r->cfg->region,
        .node = r->cfg->node_id,
        .ts_ms = mr_wall_ms(),
        .data = f->data,
    };
    mr_buf b = MR_BUF_INIT;
    relay_frame_message(&b, &env);
    char subject[RELAY_SUBJECT_MAX];
    snprintf(subject, sizeof subject, RELAY_SUBJ_MSG "%s.%s", r->cfg->region, room->name);
    /* JetStream: the ack is sent when the stream has stored the message. */
    int rc = r->cfg->jetstream ? publish_durable(r, c, f->id, subject, room->name, out->msg_id, mid,
                                                 mid_len, &b, start)
                               : relay_nats_publish(r->nats, subject, out->msg_id, b.data, b.len);
    if (rc != 0) {
        mr_buf_free(&b);
        relay_conn_error(c, f->id, MR_ERR_UNAVAILABLE,
                         "the message bus is unavailable; retry with the same mid");
        return -1;
    }
    mr_metric_inc(&relay_m.publishes);
    /* Members here get it now, not after a round trip through NATS (docs/relay.md). */
    out->delivered = relay_deliver_message(r, room, out->msg_id, b.data, b.len);
    if (!r->cfg->jetstream) {
        mr_buf_reset(&b);
        relay_frame_ack(&b, f->id, room->name, out->msg_id, mid, mid_len);
        relay_conn_send_buf(c, &b);
        mr_metric_inc(&relay_m.acks);
        mr_metric_observe_us(&relay_m.publish_ack_latency, (uint64_t)(mr_now_us() - start));
    }
    mr_buf_free(&b);
    return 0;
}

void relay_publish_outcome(relay *r, relay_inbound *in)
{
    char key[32];
    key_of(in->msg, key);
    relay_pending *p = mr_map_get(&r->pending_pubs, key, strlen(key));
    if (!p) {
        natsMsg_Destroy(in->msg);
        in->msg = NULL;
        return;
    }
    if (in->status != NATS_OK && p->attempts <= r->cfg->publish_retries &&
        in->status == NATS_TIMEOUT) {
        /* Same message, same Nats-Msg-Id: the stream stores it at most once. */
        natsMsg *msg = in->msg;
        p->attempts++;
        mr_metric_inc(&relay_m.publish_retries);
        if (relay_nats_js_publish(r->nats, &msg) == 0) {
            in->msg = NULL; /* the library owns it again */
            return;
        }
    }
    mr_map_del(&r->pending_pubs, key, strlen(key));
    relay_conn *c = relay_conn_find(r, p->conn_id);
    if (c) {
        if (in->status == NATS_OK) {
            mr_buf b = MR_BUF_INIT;
            relay_frame_ack(&b, p->req_id, p->room, p->msg_id, p->mid, p->mid_len);
            relay_conn_send_buf(c, &b);
            mr_buf_free(&b);
            mr_metric_inc(&relay_m.acks);
            mr_metric_observe_us(&relay_m.publish_ack_latency,
                                 (uint64_t)(mr_now_us() - p->start_us));
        } else {
            mr_metric_inc(&relay_m.publish_failures);
            mr_log_warn("session %s: publish %s to %s not stored after %d attempts: %s", c->sid,
                        p->msg_id, p->room, p->attempts, in->err);
            relay_conn_error(c, p->req_id, MR_ERR_UNAVAILABLE,
                             "the message was not stored; retry with the same mid");
        }
    }
    pending_free(p);
    natsMsg_Destroy(in->msg);
    in->msg = NULL;
}

static void free_pending_value(void *p)
{
    pending_free(p);
}

void relay_publish_free_all(relay *r)
{
    mr_map_free(&r->pending_pubs, free_pending_value);
}
