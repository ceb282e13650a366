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
 * Core NATS mode acks at once. In JetStream mode the publish is an ordinary
 * core publish with a reply subject on this relay's inbox,
 * <inbox>a.<slot>.<gen>: the stream that captures the subject stores the
 * message and answers there with its PubAck, which comes back through the
 * inbox like any reply (relay_inbound.c) and is matched here by that token.
 * So a publish costs the lws thread one buffered write into the NATS
 * connection and the PubAck one message in the inbound batch, with no lock,
 * map or thread hand-off of libnats' JetStream layer per message (measured:
 * docs/benchmarks.md, "Durable publishes").
 *
 * The publishes waiting for their PubAck are records in one array (a slot
 * is reused once its publish is done; `gen` tells a late PubAck for an
 * earlier use of the slot from the current one), chained in the order of
 * their deadlines. At most RELAY_PUBLISH_MAX_INFLIGHT wait at once; a
 * publish beyond that is answered `unavailable` at once, as libnats did when
 * its own limit stalled.
 *
 * A record past its deadline (publish.ack_timeout_ms, checked every
 * housekeeping tick) is published again with the very same frame and
 * Nats-Msg-Id, so the stream stores it at most once however many attempts
 * reach it; the reply subject stays the same, so the PubAck of any attempt
 * acknowledges it. After publish.retries the client gets `unavailable` and
 * retries itself, again with the same mid, hence the same id. A PubAck
 * marked duplicate is still an ack: the message is in the stream. Anything
 * but a PubAck with a seq (an error, the server's "no responders" status
 * with no stream there, an answer we cannot read) fails the publish at
 * once; the client's retry is safe for the same reason.
 */
#include "relay_publish.h"
#include "mr_alloc.h"
#include "mr_json_scan.h"
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

/* No slot: the end of a chain. */
#define NO_SLOT UINT32_MAX

typedef struct relay_pending {
    mr_buf frame;   /* the `message` frame published (sent again on a retry); data NULL: free */
    json_t *req_id; /* the client's request id, echoed in its ack or error */
    uint64_t conn_id;
    int64_t start_us, deadline_us;
    uint32_t gen;        /* bumped each time the slot is freed: stale PubAcks do not match */
    uint32_t prev, next; /* deadline order while in flight; `next` chains free slots */
    int attempts;
    char room[MR_ROOM_MAX + 1];
    char msg_id[MR_MSG_ID_LEN + 1];
    char mid[MR_MID_MAX + 1];
    size_t mid_len;
} relay_pending;

struct relay_pubs {
    relay_pending *slot;
    uint32_t cap;
    uint32_t inflight;
    uint32_t free_head;  /* a free slot, or NO_SLOT */
    uint32_t head, tail; /* in flight, earliest deadline first */
};

static struct relay_pubs *pubs_of(relay *r)
{
    if (!r->pubs) {
        r->pubs = mr_calloc(1, sizeof *r->pubs);
        r->pubs->free_head = r->pubs->head = r->pubs->tail = NO_SLOT;
    }
    return r->pubs;
}

static void chain_append(struct relay_pubs *ps, uint32_t i)
{
    relay_pending *p = &ps->slot[i];
    p->next = NO_SLOT;
    p->prev = ps->tail;
    if (ps->tail != NO_SLOT)
        ps->slot[ps->tail].next = i;
    else
        ps->head = i;
    ps->tail = i;
}

static void chain_remove(struct relay_pubs *ps, uint32_t i)
{
    relay_pending *p = &ps->slot[i];
    if (p->prev != NO_SLOT)
        ps->slot[p->prev].next = p->next;
    else
        ps->head = p->next;
    if (p->next != NO_SLOT)
        ps->slot[p->next].prev = p->prev;
    else
        ps->tail = p->prev;
}

/* A free slot, the array grown when none is left; NO_SLOT at the in-flight limit. */
static uint32_t slot_take(struct relay_pubs *ps)
{
    if (ps->inflight >= RELAY_PUBLISH_MAX_INFLIGHT)
        return NO_SLOT;
    if (ps->free_head == NO_SLOT) {
        uint32_t cap = ps->cap ? 2 * ps->cap : 64;
        ps->slot = mr_realloc(ps->slot, cap * sizeof *ps->slot);
        memset(ps->slot + ps->cap, 0, (cap - ps->cap) * sizeof *ps->slot);
        /* New slots go on the free list lowest first. */
        for (uint32_t i = cap; i-- > ps->cap;) {
            ps->slot[i].next = ps->free_head;
            ps->free_head = i;
        }
        ps->cap = cap;
    }
    uint32_t i = ps->free_head;
    ps->free_head = ps->slot[i].next;
    ps->inflight++;
    return i;
}

/* The publish in slot `i` is done: out of the deadline chain, its resources freed. */
static void slot_release(struct relay_pubs *ps, uint32_t i)
{
    relay_pending *p = &ps->slot[i];
    chain_remove(ps, i);
    json_decref(p->req_id);
    p->req_id = NULL;
    mr_buf_free(&p->frame);
    p->gen++;
    p->next = ps->free_head;
    ps->free_head = i;
    ps->inflight--;
}

/* "a.<slot>.<gen>" in hex: the token of the reply subject (RELAY_INBOX_PUBACK). */
static void token_of(uint32_t slot, uint32_t gen, char out[32])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    memcpy(o, RELAY_INBOX_PUBACK, sizeof RELAY_INBOX_PUBACK - 1);
    o += sizeof RELAY_INBOX_PUBACK - 1;
    uint32_t v[2] = {slot, gen};
    for (int k = 0; k < 2; k++) {
        char tmp[8];
        int n = 0;
        do {
            tmp[n++] = hex[v[k] & 15];
            v[k] >>= 4;
        } while (v[k]);
        while (n)
            *o++ = tmp[--n];
        *o++ = k == 0 ? '.' : '\0';
    }
}

/* meridian.msg.<region>.<room> (snprintf cost more than the rest of building a publish). */
static void subject_of(const relay *r, const char *room, size_t room_len,
                       char out[RELAY_SUBJECT_MAX])
{
    size_t rl = strlen(r->cfg->region), pl = sizeof RELAY_SUBJ_MSG - 1;
    if (pl + rl + 1 + room_len >= RELAY_SUBJECT_MAX) {
        /* Not with a valid configuration (regions are short), but never overflow. */
        snprintf(out, RELAY_SUBJECT_MAX, RELAY_SUBJ_MSG "%s.%.*s", r->cfg->region, (int)room_len,
                 room);
        return;
    }
    memcpy(out, RELAY_SUBJ_MSG, pl);
    memcpy(out + pl, r->cfg->region, rl);
    out[pl + rl] = '.';
    memcpy(out + pl + rl + 1, room, room_len);
    out[pl + rl + 1 + room_len] = '\0';
}

/* Publish (again) the frame of slot `i` to its room's subject, PubAck to its token. */
static int send_pending(relay *r, struct relay_pubs *ps, uint32_t i)
{
    relay_pending *p = &ps->slot[i];
    char subject[RELAY_SUBJECT_MAX], token[32];
    subject_of(r, p->room, strlen(p->room), subject);
    token_of(i, p->gen, token);
    return relay_nats_publish(r->nats, subject, p->msg_id, token, p->frame.data, p->frame.len);
}

/*
 * Publish through JetStream; the ack or error is sent when the PubAck comes
 * (relay_publish_ack) or the attempts run out (relay_publish_tick). On
 * success the frame belongs to the pending record, which is returned, and
 * `frame` is emptied; NULL when the publish was refused.
 */
static const mr_buf *publish_durable(relay *r, relay_conn *c, json_t *req_id, const char *room,
                                     const char *msg_id, const char *mid, size_t mid_len,
                                     mr_buf *frame, int64_t start_us)
{
    if (!relay_nats_stream_ready(r->nats))
        return NULL;
    struct relay_pubs *ps = pubs_of(r);
    uint32_t i = slot_take(ps);
    if (i == NO_SLOT) {
        mr_log_warn("session %s: %u publishes already wait for their PubAck; refused", c->sid,
                    ps->inflight);
        return NULL;
    }
    relay_pending *p = &ps->slot[i];
    p->frame = *frame;
    p->req_id = req_id ? json_incref(req_id) : NULL;
    p->conn_id = c->id;
    p->start_us = start_us;
    p->deadline_us = start_us + r->cfg->publish_ack_timeout_ms * 1000;
    p->attempts = 1;
    size_t room_len = strlen(room);
    memcpy(p->room, room, room_len + 1 <= sizeof p->room ? room_len + 1 : sizeof p->room);
    p->room[sizeof p->room - 1] = '\0';
    memcpy(p->msg_id, msg_id, MR_MSG_ID_LEN + 1);
    memcpy(p->mid, mid, mid_len);
    p->mid_len = mid_len;
    chain_append(ps, i);
    if (send_pending(r, ps, i) != 0) {
        /* The caller still owns the frame. */
        p->frame = (mr_buf)MR_BUF_INIT;
        slot_release(ps, i);
        return NULL;
    }
    *frame = (mr_buf)MR_BUF_INIT;
    return &p->frame;
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
        .data_json = f->data,
        .data_json_len = f->data_len,
    };
    mr_buf b = MR_BUF_INIT;
    relay_frame_message(&b, &env);
    /* JetStream: the ack is sent when the stream has stored the message. */
    const mr_buf *sent = &b;
    int rc = 0;
    if (r->cfg->jetstream) {
        sent = publish_durable(r, c, f->id, room->name, out->msg_id, mid, mid_len, &b, start);
        rc = sent ? 0 : -1;
    } else {
        char subject[RELAY_SUBJECT_MAX];
        subject_of(r, room->name, room->name_len, subject);
        rc = relay_nats_publish(r->nats, subject, out->msg_id, NULL, b.data, b.len);
    }
    if (rc != 0) {
        mr_buf_free(&b);
        relay_conn_error(c, f->id, MR_ERR_UNAVAILABLE,
                         "the message bus is unavailable; retry with the same mid");
        return -1;
    }
    mr_metric_inc(&relay_m.publishes);
    /* Members here get it now, not after a round trip through NATS (docs/relay.md). */
    out->delivered = relay_deliver_message_except(r, room, out->msg_id, sent->data, sent->len,
                                                  c->no_echo ? c : NULL);
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

/* The publish of slot `i` is over: `ack` when `stored`, else `unavailable` (logged with `why`). */
static void finish(relay *r, struct relay_pubs *ps, uint32_t i, bool stored, const char *why)
{
    relay_pending *p = &ps->slot[i];
    relay_conn *c = relay_conn_find(r, p->conn_id);
    if (stored) {
        if (c) {
            mr_buf b = MR_BUF_INIT;
            relay_frame_ack(&b, p->req_id, p->room, p->msg_id, p->mid, p->mid_len);
            relay_conn_send_buf(c, &b);
            mr_buf_free(&b);
        }
        mr_metric_inc(&relay_m.acks);
        mr_metric_observe_us(&relay_m.publish_ack_latency, (uint64_t)(mr_now_us() - p->start_us));
    } else {
        mr_metric_inc(&relay_m.publish_failures);
        mr_log_warn("session %s: publish %s to %s not stored after %d attempt(s): %s",
                    c ? c->sid : "(closed)", p->msg_id, p->room, p->attempts, why);
        if (c)
            relay_conn_error(c, p->req_id, MR_ERR_UNAVAILABLE,
                             "the message was not stored; retry with the same mid");
    }
    slot_release(ps, i);
}

/* Parse "<slot>.<gen>" (hex); false when it is not one. */
static bool parse_token(const char *t, uint32_t *slot, uint32_t *gen)
{
    char *end;
    unsigned long a = strtoul(t, &end, 16);
    if (end == t || *end != '.' || a > UINT32_MAX)
        return false;
    const char *g = end + 1;
    unsigned long b = strtoul(g, &end, 16);
    if (end == g || *end != '\0' || b > UINT32_MAX)
        return false;
    *slot = (uint32_t)a;
    *gen = (uint32_t)b;
    return true;
}

/*
 * Whether `data` is a PubAck saying the stream stored the message:
 * {"stream":S,"seq":N} (maybe with "duplicate":true or "domain"). An error
 * ({"error":{"code":..,"description":..}}) copies its description to `why`.
 */
static bool stored_by_stream(const char *data, size_t len, char *why, size_t whylen)
{
    mr_json_object o;
    if (len == 0) {
        /* A status without a body: "503 no responders" when no stream captures the subject. */
        snprintf(why, whylen, "no stream answered (no responders)");
        return false;
    }
    if (!mr_json_scan_object(data, len, &o)) {
        snprintf(why, whylen, "unreadable PubAck: %.*s", (int)(len < 80 ? len : 80), data);
        return false;
    }
    bool repeated = false;
    const mr_json_member *err = mr_json_member_get(&o, "error", &repeated);
    const mr_json_member *seq = mr_json_member_get(&o, "seq", &repeated);
    const mr_json_member *stream = mr_json_member_get(&o, "stream", &repeated);
    if (err || repeated || !seq || seq->type != MR_JSON_INTEGER || seq->value[0] == '-' ||
        !stream || stream->type != MR_JSON_STRING) {
        const char *d = err ? memmem(err->value, err->value_len, "\"description\":\"", 15) : NULL;
        if (d) {
            d += 15;
            const char *e = memchr(d, '"', (size_t)(err->value + err->value_len - d));
            snprintf(why, whylen, "%.*s", e ? (int)(e - d) : 0, d);
        } else {
            snprintf(why, whylen, "not a PubAck: %.*s", (int)(len < 80 ? len : 80), data);
        }
        return false;
    }
    return true;
}

bool relay_publish_ack(relay *r, const char *token, const char *data, size_t len)
{
    struct relay_pubs *ps = r->pubs;
    uint32_t i, gen;
    if (!parse_token(token, &i, &gen))
        return false;
    if (!ps || i >= ps->cap || ps->slot[i].gen != gen || !ps->slot[i].frame.data)
        return true; /* a late PubAck of a publish already answered */
    char why[160] = "";
    finish(r, ps, i, stored_by_stream(data, len, why, sizeof why), why);
    return true;
}

void relay_publish_tick(relay *r, int64_t now_us)
{
    struct relay_pubs *ps = r->pubs;
    while (ps && ps->head != NO_SLOT && ps->slot[ps->head].deadline_us <= now_us) {
        uint32_t i = ps->head;
        relay_pending *p = &ps->slot[i];
        if (p->attempts <= r->cfg->publish_retries) {
            /* Same frame, same Nats-Msg-Id, same reply: the stream stores it at most once. */
            p->attempts++;
            mr_metric_inc(&relay_m.publish_retries);
            if (send_pending(r, ps, i) == 0) {
                p->deadline_us = now_us + r->cfg->publish_ack_timeout_ms * 1000;
                chain_remove(ps, i);
                chain_append(ps, i);
                continue;
            }
        }
        finish(r, ps, i, false, "no PubAck in time");
    }
}

void relay_publish_free_all(relay *r)
{
    struct relay_pubs *ps = r->pubs;
    if (!ps)
        return;
    while (ps->head != NO_SLOT)
        slot_release(ps, ps->head);
    free(ps->slot);
    free(ps);
    r->pubs = NULL;
}
