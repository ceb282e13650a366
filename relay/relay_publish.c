/*
 * Durable publishing.
 *
 * The relay publishes the `message` frame with js_PublishMsgAsync and keeps a
 * pending record keyed by the natsMsg's address: the library hands the same
 * message back to the ack handler, and we own it until we destroy it here, so
 * the address is a unique key for the publish's lifetime.
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
#include "relay_metrics.h"
#include "relay_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct relay_pending {
    uint64_t session_id;
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

int relay_publish_durable(relay *r, relay_session *s, json_t *req_id, const char *subject,
                          const char *room, const char *msg_id, const char *mid, size_t mid_len,
                          const mr_buf *frame, int64_t start_us)
{
    natsMsg *msg = NULL;
    natsStatus st = natsMsg_Create(&msg, subject, NULL, frame->data, (int)frame->len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (st != NATS_OK) {
        natsMsg_Destroy(msg);
        return -1;
    }
    relay_pending *p = mr_calloc(1, sizeof *p);
    p->session_id = s->id;
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

static relay_session *session_of(relay *r, uint64_t id)
{
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)id);
    return mr_map_get(&r->sessions_by_id, key, strlen(key));
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
    relay_session *s = session_of(r, p->session_id);
    if (s) {
        if (in->status == NATS_OK) {
            mr_buf b = MR_BUF_INIT;
            mr_proto_ack(&b, p->req_id, p->room, p->msg_id, p->mid, p->mid_len);
            relay_session_send_buf(s, &b);
            mr_buf_free(&b);
            mr_metric_inc(&relay_m.acks);
            mr_metric_observe_us(&relay_m.publish_ack_latency,
                                 (uint64_t)(mr_now_us() - p->start_us));
        } else {
            mr_metric_inc(&relay_m.publish_failures);
            mr_log_warn("session %s: publish %s to %s not stored after %d attempts: %s", s->sid,
                        p->msg_id, p->room, p->attempts, in->err);
            relay_session_error(s, p->req_id, MR_ERR_UNAVAILABLE,
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
