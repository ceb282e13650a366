/*
 * Client sessions.
 *
 * A session starts unauthenticated with a timer armed for the handshake
 * timeout. Its first frame must be `hello` with a valid token; after that it
 * may join rooms, publish and ask for presence. All of it runs on the lws
 * thread.
 *
 * Writes go through a per-session ring of shared frames (relay_out). A frame
 * for a room is serialised once and referenced from every member's ring, so
 * fan-out costs one pointer and one reference per member. The ring is
 * bounded in bytes: a member that cannot keep up is closed as a slow
 * consumer (4008) instead of growing memory without bound.
 *
 * Closes are requested, not done in place: the close code is recorded and
 * the session asks to become writable, so frames queued before the close
 * (an `error` explaining it, for instance) still reach the client.
 */
#include "relay_session.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"
#include "relay_metrics.h"
#include "relay_drain.h"
#include "relay_fanout.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_repair.h"
#include "relay_resume.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    if (bytes > sizeof raw)
        bytes = sizeof raw;
    if (RAND_bytes(raw, (int)bytes) != 1)
        memset(raw, 0, bytes);
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
}

void relay_session_open(relay *r, relay_session *s, struct lws *wsi)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    s->wsi = wsi;
    s->id = ++r->next_session_id;
    random_hex(s->sid, 8);
    if (!lws_get_peer_simple(wsi, s->ip, sizeof s->ip))
        snprintf(s->ip, sizeof s->ip, "unknown");
    s->next = r->sessions;
    if (r->sessions)
        r->sessions->prev = s;
    r->sessions = s;
    r->session_count++;
    size_t il = strlen(s->ip);
    intptr_t n = (intptr_t)mr_map_get(&r->ip_counts, s->ip, il);
    mr_map_put(&r->ip_counts, s->ip, il, (void *)(n + 1));
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)s->id);
    mr_map_put(&r->sessions_by_id, key, strlen(key), s);
    mr_metric_inc(&relay_m.connections);
    mr_metric_inc(&relay_m.connections_total);
    lws_set_timer_usecs(wsi, (lws_usec_t)r->cfg->limits.handshake_timeout_ms * 1000);
}

static void leave_membership(relay_session *s, relay_member *m)
{
    relay *r = s->r;
    relay_room *room = m->room;
    bool last_of_user;
    bool empty = relay_room_leave(&r->rooms, m, s->user, &last_of_user);
    if (empty) {
        relay_presence_room_gone(r, room, s->user);
        relay_nats_unsubscribe(room->sub);
        relay_nats_unsubscribe(room->commit_sub);
        relay_nats_unsubscribe(room->presence_sub);
        room->sub = room->commit_sub = room->presence_sub = NULL;
        relay_room_destroy(&r->rooms, room);
        mr_metric_add(&relay_m.rooms, -1);
    } else {
        relay_presence_local(r, room, s->user, -1, s);
    }
}

void relay_session_closed(relay_session *s)
{
    relay *r = s->r;
    if (!r)
        return; /* never opened */
    while (s->memberships) {
        relay_member *m = s->memberships;
        s->memberships = m->session_next;
        leave_membership(s, m);
    }
    while (s->qlen) {
        relay_out_unref(s->q[s->qhead]);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    free(s->q);
    mr_buf_free(&s->rx);
    free(s->user);
    json_decref(s->rooms_claim);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    r->session_count--;
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)s->id);
    mr_map_del(&r->sessions_by_id, key, strlen(key));
    size_t il = strlen(s->ip);
    intptr_t n = (intptr_t)mr_map_get(&r->ip_counts, s->ip, il);
    if (n <= 1)
        mr_map_del(&r->ip_counts, s->ip, il);
    else
        mr_map_put(&r->ip_counts, s->ip, il, (void *)(n - 1));
    mr_metric_add(&relay_m.connections, -1);
    s->r = NULL;
}

void relay_session_send(relay_session *s, relay_out *o)
{
    if (s->close_code)
        return; /* nothing more goes out once a close is requested */
    if (s->qbytes + o->len > (size_t)s->r->cfg->limits.max_outbound_bytes) {
        mr_log_info("session %s (%s): slow consumer, %zu bytes queued; closing", s->sid,
                    s->user ? s->user : "-", s->qbytes);
        mr_metric_inc(&relay_m.slow_consumer_closes);
        /* Drop what is queued: the client is told why by the close code alone. */
        while (s->qlen) {
            relay_out_unref(s->q[s->qhead]);
            s->qhead = (s->qhead + 1) % s->qcap;
            s->qlen--;
        }
        s->qbytes = 0;
        relay_session_close(s, MR_CLOSE_SLOW_CONSUMER, "slow consumer");
        return;
    }
    if (s->qlen == s->qcap) {
        uint32_t ncap = s->qcap ? s->qcap * 2 : 4;
        relay_out **nq = mr_malloc(ncap * sizeof *nq);
        for (uint32_t i = 0; i < s->qlen; i++)
            nq[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qhead = 0;
        s->qcap = ncap;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = relay_out_ref(o);
    s->qlen++;
    s->qbytes += o->len;
    if (s->qlen == 1)
        lws_callback_on_writable(s->wsi);
}

void relay_session_send_buf(relay_session *s, const mr_buf *b)
{
    relay_out *o = relay_out_new(b->data, b->len);
    relay_session_send(s, o);
    relay_out_unref(o);
}

void relay_session_close(relay_session *s, int code, const char *reason)
{
    if (s->close_code)
        return;
    s->close_code = code;
    s->close_reason = reason;
    /*
     * The close frame goes out after what is queued and after any part of a frame the
     * kernel has not taken yet; a client that stops reading gets this long, then it is
     * disconnected without one.
     */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, RELAY_CLOSE_FLUSH_S);
    lws_callback_on_writable(s->wsi);
}

void relay_session_error(relay_session *s, json_t *id, mr_error_code code, const char *message)
{
    mr_buf b = MR_BUF_INIT;
    mr_proto_error_frame(&b, id, code, message);
    relay_session_send_buf(s, &b);
    mr_buf_free(&b);
    mr_metric_inc(&relay_m.errors[code]);
    if (!mr_proto_error_retryable(code) && code != MR_ERR_AUTH_FAILED &&
        ++s->bad_frames > (uint32_t)s->r->cfg->limits.max_bad_frames)
        relay_session_close(s, MR_CLOSE_PROTOCOL, "too many invalid frames");
}

/* Take the head frame off the queue, counting it as written. */
static relay_out *dequeue(relay_session *s)
{
    relay_out *o = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    s->qbytes -= o->len;
    mr_metric_inc(&relay_m.frames_out);
    mr_metric_add(&relay_m.bytes_out, o->len);
    return o;
}

/*
 * Write several queued frames with one send. On loopback and on busy relays
 * the cost of a delivery is mostly the syscall, so a member with a backlog
 * gets up to 64 KiB of frames per send. Server frames are not masked, so the
 * WebSocket headers are simply written in front of each payload here and the
 * batch goes out raw. Returns lws_write's result.
 */
static int write_batch(relay_session *s)
{
    mr_buf *wb = &s->r->write_batch;
    uint32_t k = 0;
    size_t total = 0;
    while (k < s->qlen && total < 65536) {
        total += s->q[(s->qhead + k) % s->qcap]->len + 10;
        k++;
    }
    mr_buf_reset(wb);
    mr_buf_reserve(wb, LWS_PRE + total);
    unsigned char *start = (unsigned char *)wb->data + LWS_PRE, *p = start;
    for (uint32_t i = 0; i < k; i++) {
        relay_out *o = dequeue(s);
        *p++ = 0x81; /* FIN, text */
        if (o->len < 126) {
            *p++ = (unsigned char)o->len;
        } else if (o->len < 65536) {
            *p++ = 126;
            *p++ = (unsigned char)(o->len >> 8);
            *p++ = (unsigned char)o->len;
        } else {
            *p++ = 127;
            for (int b = 7; b >= 0; b--)
                *p++ = (unsigned char)((uint64_t)o->len >> (8 * b));
        }
        memcpy(p, relay_out_payload(o), o->len);
        p += o->len;
        relay_out_unref(o);
    }
    return lws_write(s->wsi, start, (size_t)(p - start), LWS_WRITE_RAW);
}

int relay_session_writable(relay_session *s)
{
    /*
     * Write while the kernel takes it; lws keeps a partial write itself and
     * we stop there until the next writable callback. The first write needs
     * no check: the callback means poll() found the socket writable, and
     * lws_send_pipe_choked() is a poll() of its own, one extra syscall per
     * delivery when a member has one frame queued (the common case).
     */
    for (bool first = true;
         s->qlen && !lws_partial_buffered(s->wsi) && (first || !lws_send_pipe_choked(s->wsi));
         first = false) {
        int n;
        if (s->qlen > 1) {
            n = write_batch(s);
        } else {
            relay_out *o = dequeue(s);
            n = lws_write(s->wsi, relay_out_payload(o), o->len, LWS_WRITE_TEXT);
            relay_out_unref(o);
        }
        if (n < 0)
            return -1;
    }
    /* The close frame must not overtake the rest of a frame the kernel did not take. */
    if (s->qlen || (s->close_code && lws_partial_buffered(s->wsi))) {
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (s->close_code) {
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_reason, strlen(s->close_reason));
        return -1;
    }
    return 0;
}

void relay_session_timer(relay_session *s)
{
    if (!s->user) {
        relay_session_close(s, MR_CLOSE_HELLO_TIMEOUT, "no hello within the handshake timeout");
        return;
    }
    int64_t now = time(NULL);
    if (now >= s->token_exp + s->r->jwt.leeway_s) {
        relay_session_close(s, MR_CLOSE_TOKEN_EXPIRED, "token expired");
        return;
    }
    lws_set_timer_usecs(s->wsi, (lws_usec_t)(s->token_exp + s->r->jwt.leeway_s - now) * 1000000);
}

static void send_welcome(relay_session *s, json_t *id)
{
    const relay_config *c = s->r->cfg;
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"type\":\"welcome\"");
    if (id) {
        char *ids = json_dumps(id, JSON_ENCODE_ANY);
        mr_buf_printf(&b, ",\"id\":%s", ids);
        free(ids);
    }
    mr_buf_puts(&b, ",\"region\":");
    mr_buf_json_str(&b, c->region, strlen(c->region));
    mr_buf_puts(&b, ",\"node\":");
    mr_buf_json_str(&b, c->node_id, strlen(c->node_id));
    mr_buf_printf(&b, ",\"session\":\"%s\",\"user\":", s->sid);
    mr_buf_json_str(&b, s->user, strlen(s->user));
    mr_buf_printf(&b,
                  ",\"heartbeat\":%lld,\"limits\":{\"max_message_bytes\":%lld,\"publish_rate\":%g,"
                  "\"publish_burst\":%g,\"max_rooms\":%lld,\"idle_timeout\":%lld}}",
                  (long long)c->limits.ping_interval_s, (long long)c->limits.max_message_bytes,
                  c->limits.publish_rate, c->limits.publish_burst,
                  (long long)c->limits.max_rooms_per_connection,
                  (long long)c->limits.idle_timeout_s);
    /* Drop the closing brace to add the fallback URLs. */
    b.len--;
    mr_buf_puts(&b, ",\"fallback\":");
    relay_drain_urls_json(s->r, &b);
    mr_buf_putc(&b, '}');
    relay_session_send_buf(s, &b);
    mr_buf_free(&b);
}

static void on_hello(relay_session *s, mr_frame *f)
{
    if (s->user) {
        relay_session_error(s, f->id, MR_ERR_ALREADY_AUTHENTICATED, "already authenticated");
        return;
    }
    mr_jwt_claims claims;
    mr_jwt_status st = mr_jwt_verify(&s->r->jwt, f->token, f->token_len, time(NULL), &claims);
    if (st != MR_JWT_OK) {
        mr_metric_inc(&relay_m.auth_failures);
        mr_log_info("session %s (%s): authentication failed: %s", s->sid, s->ip,
                    mr_jwt_status_str(st));
        relay_session_error(s, f->id, MR_ERR_AUTH_FAILED, mr_jwt_status_str(st));
        relay_session_close(s, MR_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    s->user = claims.sub;
    s->rooms_claim = claims.rooms;
    s->token_exp = claims.exp;
    const relay_limits *l = &s->r->cfg->limits;
    mr_ratelimit_init(&s->rl, l->publish_rate, l->publish_burst, mr_now_us());
    /* From now on the timer watches token expiry instead of the handshake. */
    relay_session_timer(s);
    send_welcome(s, f->id);
}

static relay_member *find_membership(relay_session *s, const char *room, size_t len)
{
    for (relay_member *m = s->memberships; m; m = m->session_next)
        if (m->room->name_len == len && memcmp(m->room->name, room, len) == 0)
            return m;
    return NULL;
}

static void on_join(relay_session *s, mr_frame *f)
{
    if (!mr_jwt_room_allowed(s->rooms_claim, f->room, f->room_len)) {
        relay_session_error(s, f->id, MR_ERR_FORBIDDEN, "the token does not allow this room");
        return;
    }
    mr_buf b = MR_BUF_INIT;
    if (find_membership(s, f->room, f->room_len)) {
        mr_proto_joined(&b, f->id, json_string_value(json_object_get(f->root, "room")));
        relay_session_send_buf(s, &b);
        mr_buf_free(&b);
        return;
    }
    if (s->room_count >= (uint32_t)s->r->cfg->limits.max_rooms_per_connection) {
        relay_session_error(s, f->id, MR_ERR_TOO_MANY_ROOMS, "too many rooms on this connection");
        return;
    }
    bool created, first_of_user;
    relay_member *m =
        relay_room_join(&s->r->rooms, f->room, f->room_len, s, s->user, &created, &first_of_user);
    if (created) {
        mr_metric_inc(&relay_m.rooms);
        if (relay_nats_subscribe(s->r->nats, m->room->name, &m->room->sub, &m->room->commit_sub,
                                 &m->room->presence_sub) != 0) {
            bool last;
            relay_room *room = m->room;
            relay_room_leave(&s->r->rooms, m, s->user, &last);
            relay_room_destroy(&s->r->rooms, room);
            mr_metric_add(&relay_m.rooms, -1);
            relay_session_error(s, f->id, MR_ERR_UNAVAILABLE, "cannot subscribe to the room now");
            return;
        }
    }
    m->presence_events = f->presence;
    m->session_next = s->memberships;
    s->memberships = m;
    s->room_count++;
    if (f->has_since) {
        /* `joined` follows once the missed history is known. */
        relay_resume_start(s->r, s, m, f->since, f->id);
    } else {
        mr_proto_joined(&b, f->id, m->room->name);
        relay_session_send_buf(s, &b);
    }
    mr_buf_free(&b);
    (void)first_of_user;
    if (created) {
        relay_presence_room_created(s->r, m->room);
        relay_repair_room_created(s->r, m->room);
    }
    relay_presence_local(s->r, m->room, s->user, +1, s);
}

static void on_leave(relay_session *s, mr_frame *f)
{
    relay_member **pp = &s->memberships;
    while (*pp && !((*pp)->room->name_len == f->room_len &&
                    memcmp((*pp)->room->name, f->room, f->room_len) == 0))
        pp = &(*pp)->session_next;
    if (!*pp) {
        relay_session_error(s, f->id, MR_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    relay_member *m = *pp;
    *pp = m->session_next;
    s->room_count--;
    char room[MR_ROOM_MAX + 1];
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    leave_membership(s, m);
    mr_buf b = MR_BUF_INIT;
    mr_proto_left(&b, f->id, room);
    relay_session_send_buf(s, &b);
    mr_buf_free(&b);
}

static void on_presence(relay_session *s, mr_frame *f)
{
    relay_member *m = find_membership(s, f->room, f->room_len);
    if (!m) {
        relay_session_error(s, f->id, MR_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"type\":\"presence\"");
    if (f->id) {
        char *ids = json_dumps(f->id, JSON_ENCODE_ANY);
        mr_buf_printf(&b, ",\"id\":%s", ids);
        free(ids);
    }
    mr_buf_puts(&b, ",\"room\":");
    mr_buf_json_str(&b, m->room->name, m->room->name_len);
    mr_buf_puts(&b, ",\"members\":");
    relay_presence_members(m->room, &b);
    mr_buf_puts(&b, "}");
    relay_session_send_buf(s, &b);
    mr_buf_free(&b);
}

static void on_publish(relay_session *s, mr_frame *f)
{
    int64_t start = mr_now_us();
    relay *r = s->r;
    relay_member *m = find_membership(s, f->room, f->room_len);
    if (!m) {
        relay_session_error(s, f->id, MR_ERR_NOT_JOINED, "join the room before publishing");
        return;
    }
    if (!mr_ratelimit_take(&s->rl, start)) {
        relay_session_error(s, f->id, MR_ERR_RATE_LIMITED, "publish rate limit exceeded");
        if (++s->strikes > (uint32_t)r->cfg->limits.rate_limit_strikes)
            relay_session_close(s, MR_CLOSE_RATE_LIMIT, "publish rate limit exceeded");
        return;
    }
    s->strikes = 0;
    char random_mid[2 * 8 + 3];
    const char *mid = f->mid;
    size_t mid_len = f->mid_len;
    if (!mid) {
        random_mid[0] = 'r';
        random_mid[1] = '-';
        random_hex(random_mid + 2, 8);
        mid = random_mid;
        mid_len = strlen(random_mid);
    }
    char msg_id[MR_MSG_ID_LEN + 1];
    mr_msg_id(m->room->name, m->room->name_len, s->user, mid, mid_len, msg_id);
    mr_envelope env = {
        .room = m->room->name,
        .room_len = m->room->name_len,
        .msg_id = msg_id,
        .from = s->user,
        .mid = mid,
        .mid_len = mid_len,
        .region = r->cfg->region,
        .node = r->cfg->node_id,
        .ts_ms = mr_wall_ms(),
        .data = f->data,
    };
    mr_buf b = MR_BUF_INIT;
    mr_proto_message(&b, &env);
    char subject[MR_ROOM_MAX + 96];
    snprintf(subject, sizeof subject, "meridian.msg.%s.%s", r->cfg->region, m->room->name);
    if (r->cfg->jetstream) {
        /* The ack is sent when the stream has stored the message. */
        if (relay_publish_durable(r, s, f->id, subject, m->room->name, msg_id, mid, mid_len, &b,
                                  start) != 0) {
            mr_buf_free(&b);
            relay_session_error(s, f->id, MR_ERR_UNAVAILABLE,
                                "the message bus is unavailable; retry with the same mid");
            return;
        }
        mr_metric_inc(&relay_m.publishes);
        relay_fanout_local(r, m->room, msg_id, &b);
        mr_buf_free(&b);
        return;
    }
    if (relay_nats_publish(r->nats, subject, msg_id, b.data, b.len) != 0) {
        mr_buf_free(&b);
        relay_session_error(s, f->id, MR_ERR_UNAVAILABLE,
                            "the message bus is unavailable; retry with the same mid");
        return;
    }
    mr_metric_inc(&relay_m.publishes);
    relay_fanout_local(r, m->room, msg_id, &b);
    mr_buf_reset(&b);
    mr_proto_ack(&b, f->id, m->room->name, msg_id, mid, mid_len);
    relay_session_send_buf(s, &b);
    mr_buf_free(&b);
    mr_metric_inc(&relay_m.acks);
    mr_metric_observe_us(&relay_m.publish_ack_latency, (uint64_t)(mr_now_us() - start));
}

static void on_frame(relay_session *s, const char *text, size_t len)
{
    mr_frame f;
    mr_proto_err err;
    if (mr_proto_parse(text, len, &f, &err) != 0) {
        relay_session_error(s, err.id, err.code, err.message);
        mr_proto_err_free(&err);
        return;
    }
    if (!s->user && f.type != MR_FRAME_HELLO) {
        relay_session_error(s, f.id, MR_ERR_NOT_AUTHENTICATED, "send hello first");
    } else {
        switch (f.type) {
        case MR_FRAME_HELLO:
            on_hello(s, &f);
            break;
        case MR_FRAME_JOIN:
            on_join(s, &f);
            break;
        case MR_FRAME_LEAVE:
            on_leave(s, &f);
            break;
        case MR_FRAME_PUBLISH:
            on_publish(s, &f);
            break;
        case MR_FRAME_PRESENCE:
            on_presence(s, &f);
            break;
        case MR_FRAME_PING: {
            mr_buf b = MR_BUF_INIT;
            mr_proto_pong(&b, f.id, mr_wall_ms());
            relay_session_send_buf(s, &b);
            mr_buf_free(&b);
            break;
        }
        }
    }
    mr_frame_free(&f);
}

int relay_session_receive(relay_session *s, const void *in, size_t len, bool binary, bool final)
{
    if (s->close_code)
        return 0; /* closing: ignore what the client still sends */
    if (binary) {
        lws_close_reason(s->wsi, (enum lws_close_status)MR_CLOSE_UNSUPPORTED,
                         (unsigned char *)"binary frames are not supported", 31);
        return -1;
    }
    mr_metric_add(&relay_m.bytes_in, (int64_t)len);
    if (s->rx.len + len > (size_t)s->r->cfg->limits.max_message_bytes) {
        /* The message is too big: close now, without buffering the rest. */
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    }
    if (!final) {
        mr_buf_append(&s->rx, in, len);
        return 0;
    }
    mr_metric_inc(&relay_m.frames_in);
    if (s->rx.len) {
        mr_buf_append(&s->rx, in, len);
        on_frame(s, s->rx.data, s->rx.len);
        mr_buf_reset(&s->rx);
        /* Do not keep a large reassembly buffer around for an idle connection. */
        if (s->rx.cap > 16384)
            mr_buf_free(&s->rx);
    } else {
        on_frame(s, in, len);
    }
    return 0;
}
