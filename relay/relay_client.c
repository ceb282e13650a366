/*
 * Client dispatch.
 *
 * A session starts unauthenticated with a timer armed for the handshake
 * timeout. Its first frame must be `hello` with a valid token; after that it
 * may join rooms, publish and ask for presence. Fragments are joined here,
 * each frame is parsed once (common/mr_proto.c) and handed to the handler its
 * type names in `frames` below. Joining and leaving, which touch every
 * feature's view of a room, are wired here too: a room new on this relay is
 * subscribed without waiting for the server, its joins are answered when
 * the confirmation comes back (relay_inbound.c, relay_resume.c) and fail
 * when it does not (relay_client_tick). Writes go through here so that a
 * history replay follows the client's reading. All of it runs on the lws
 * thread.
 */
#include "relay_client.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_frames.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_refresh.h"
#include "relay_resume.h"
#include "relay_signal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reassembly buffer larger than this is given back once its message is handled. */
#define RX_KEEP_BYTES 16384
/* The longest the session timer waits for a token's expiry in one go (a day). */
#define TOKEN_TIMER_MAX_S 86400

void relay_client_open(relay *r, relay_conn *c, struct lws *wsi)
{
    relay_conn_attach(r, c, wsi);
    lws_set_timer_usecs(wsi, (lws_usec_t)r->cfg->limits.handshake_timeout_ms * 1000);
}

/* Take `m` out of its connection's list of memberships. */
static void unlink_membership(relay_conn *c, relay_member *m)
{
    relay_member **pp = &c->memberships;
    while (*pp && *pp != m)
        pp = &(*pp)->conn_next;
    if (*pp) {
        *pp = m->conn_next;
        c->room_count--;
    }
}

/* Leave one room: the room and its subscriptions go with their last member. */
static void leave_membership(relay_conn *c, relay_member *m)
{
    relay *r = c->r;
    relay_room *room = m->room;
    bool last_of_user;
    bool empty = relay_room_leave(&r->rooms, m, c->user, &last_of_user);
    if (empty) {
        relay_presence_room_gone(r, room, c->user);
        relay_nats_unsubscribe(room->sub);
        relay_nats_unsubscribe(room->commit_sub);
        relay_nats_unsubscribe(room->presence_sub);
        room->sub = room->commit_sub = room->presence_sub = NULL;
        relay_room_destroy(&r->rooms, room);
        mr_metric_add(&relay_m.rooms, -1);
    } else {
        relay_presence_local(r, room, c->user, -1, c);
    }
}

void relay_client_closed(relay_conn *c)
{
    if (!c->r)
        return; /* never opened */
    while (c->memberships) {
        relay_member *m = c->memberships;
        c->memberships = m->conn_next;
        leave_membership(c, m);
    }
    relay_conn_detach(c);
}

void relay_client_timer(relay_conn *c)
{
    if (!c->user) {
        relay_conn_close(c, MR_CLOSE_HELLO_TIMEOUT, "no hello within the handshake timeout");
        return;
    }
    int64_t now = time(NULL);
    if (now >= c->token_exp + c->r->jwt.leeway_s) {
        relay_conn_close(c, MR_CLOSE_TOKEN_EXPIRED, "token expired");
        return;
    }
    int64_t due = relay_refresh_due_at(c->r, c);
    if (now >= due) {
        relay_refresh_hint(c->r, c);
        due = INT64_MAX;
    }
    /* At most a day at a time: the timer fires, finds the token valid and waits again. */
    int64_t wait_s =
        (due < c->token_exp + c->r->jwt.leeway_s ? due : c->token_exp + c->r->jwt.leeway_s) - now;
    if (wait_s > TOKEN_TIMER_MAX_S)
        wait_s = TOKEN_TIMER_MAX_S;
    if (c->wsi) /* unit tests' connections have no socket */
        lws_set_timer_usecs(c->wsi, (lws_usec_t)wait_s * 1000000);
}

int relay_client_writable(relay_conn *c)
{
    int rc = relay_conn_writable(c);
    /* A history replay goes out at the pace the client reads it. */
    if (rc == 0 && c->replays)
        relay_resume_pump(c->r, c);
    return rc;
}

void relay_client_tick(relay *r)
{
    if (r->rooms.subscribing == 0)
        return;
    int64_t now = mr_now_us();
    size_t b;
    mr_map_entry *e = mr_map_first(&r->rooms.by_name, &b);
    while (e) {
        relay_room *room = e->value;
        /* Take the next entry first: the room may be destroyed below (mr_map.h). */
        e = mr_map_next(&r->rooms.by_name, &b, e);
        if (!room->subscribing || room->subscribe_deadline_us > now)
            continue;
        mr_log_warn("room %s: NATS did not confirm the subscriptions within %d ms; its %zu "
                    "joins fail",
                    room->name, RELAY_SUBSCRIBE_CONFIRM_MS, room->member_count);
        /* Each join fails; the last one takes the room and its subscriptions with it. */
        while (room) {
            relay_member *m = room->members;
            relay_conn *c = m->conn;
            relay_resume_fail(r, m);
            unlink_membership(c, m);
            bool gone = room->member_count == 1;
            leave_membership(c, m);
            if (gone)
                room = NULL;
        }
    }
}

static void send_frame(relay_conn *c, mr_buf *b)
{
    relay_conn_send_buf(c, b);
    mr_buf_free(b);
}

static void on_hello(relay_conn *c, const mr_frame *f)
{
    if (c->user) {
        relay_conn_error(c, f->id, MR_ERR_ALREADY_AUTHENTICATED, "already authenticated");
        return;
    }
    mr_jwt_claims claims;
    mr_jwt_status st = mr_jwt_verify(&c->r->jwt, f->token, f->token_len, time(NULL), &claims);
    if (st != MR_JWT_OK) {
        mr_metric_inc(&relay_m.auth_failures);
        mr_log_info("session %s (%s): authentication failed: %s", c->sid, c->ip,
                    mr_jwt_status_str(st));
        relay_conn_error(c, f->id, MR_ERR_AUTH_FAILED, mr_jwt_status_str(st));
        relay_conn_close(c, MR_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    c->user = claims.sub;
    c->rooms_claim = claims.rooms;
    c->token_exp = claims.exp;
    c->token_at = time(NULL);
    const relay_limits *l = &c->r->cfg->limits;
    mr_ratelimit_init(&c->rl, l->publish_rate, l->publish_burst, mr_now_us());
    /* From now on the timer watches token expiry instead of the handshake. */
    relay_client_timer(c);
    mr_buf b = MR_BUF_INIT;
    relay_frame_welcome(&b, c->r, f->id, c->sid, c->user);
    send_frame(c, &b);
}

/*
 * A room new on this relay: subscribe, and ask the server to confirm. Joins
 * wait for the confirmation (relay_inbound.c) instead of blocking the lws
 * thread for the round trip. Returns -1 when NATS refuses at once.
 */
static int subscribe_room(relay *r, relay_room *room)
{
    if (relay_nats_subscribe(r->nats, room->name, &room->sub, &room->commit_sub,
                             &room->presence_sub) != 0)
        return -1;
    /* Before the confirmation is asked for, so that it covers the signals too. */
    if (relay_signal_room_created(r, room) != 0) {
        relay_nats_unsubscribe(room->sub);
        relay_nats_unsubscribe(room->commit_sub);
        relay_nats_unsubscribe(room->presence_sub);
        room->sub = room->commit_sub = room->presence_sub = NULL;
        return -1;
    }
    char token[MR_ROOM_MAX + 48];
    room->subscribe_id = ++r->next_request_id;
    snprintf(token, sizeof token, RELAY_INBOX_SUBSCRIBED "%llu.%s",
             (unsigned long long)room->subscribe_id, room->name);
    if (relay_nats_confirm(r->nats, token) != 0) {
        relay_nats_unsubscribe(room->sub);
        relay_nats_unsubscribe(room->commit_sub);
        relay_nats_unsubscribe(room->presence_sub);
        room->sub = room->commit_sub = room->presence_sub = NULL;
        return -1;
    }
    room->subscribing = true;
    room->subscribe_deadline_us = mr_now_us() + RELAY_SUBSCRIBE_CONFIRM_MS * 1000;
    r->rooms.subscribing++;
    return 0;
}

static void on_join(relay_conn *c, const mr_frame *f)
{
    relay *r = c->r;
    if (!mr_jwt_room_allowed(c->rooms_claim, f->room, f->room_len)) {
        relay_conn_error(c, f->id, MR_ERR_FORBIDDEN, "the token does not allow this room");
        return;
    }
    if (relay_conn_member(c, f->room, f->room_len)) {
        mr_buf b = MR_BUF_INIT;
        relay_frame_joined(&b, f->id, json_string_value(json_object_get(f->root, "room")));
        send_frame(c, &b);
        return;
    }
    if (c->room_count >= (uint32_t)r->cfg->limits.max_rooms_per_connection) {
        relay_conn_error(c, f->id, MR_ERR_TOO_MANY_ROOMS, "too many rooms on this connection");
        return;
    }
    bool created, first_of_user;
    relay_member *m =
        relay_room_join(&r->rooms, f->room, f->room_len, c, c->user, &created, &first_of_user);
    relay_room *room = m->room;
    if (created) {
        mr_metric_inc(&relay_m.rooms);
        if (subscribe_room(r, room) != 0) {
            bool last;
            relay_room_leave(&r->rooms, m, c->user, &last);
            relay_room_destroy(&r->rooms, room);
            mr_metric_add(&relay_m.rooms, -1);
            relay_conn_error(c, f->id, MR_ERR_UNAVAILABLE, "cannot subscribe to the room now");
            return;
        }
    }
    m->presence_events = f->presence;
    m->conn_next = c->memberships;
    c->memberships = m;
    c->room_count++;
    relay_deliver_have(m, f->have);
    /* `joined` follows once the room is subscribed (and, with since, the history is known). */
    if (f->has_rewind)
        relay_resume_rewind(r, c, m, f->rewind, f->id);
    else
        relay_resume_start(r, c, m, f->has_since ? f->since : -1, f->id);
    relay_presence_local(r, room, c->user, +1, c);
}

static void on_leave(relay_conn *c, const mr_frame *f)
{
    relay_member *m = relay_conn_member(c, f->room, f->room_len);
    if (!m) {
        relay_conn_error(c, f->id, MR_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    /* A join still waiting for its answer gets it first, so every request has one. */
    relay_resume_leaving(c->r, m);
    unlink_membership(c, m);
    char room[MR_ROOM_MAX + 1];
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    leave_membership(c, m);
    mr_buf b = MR_BUF_INIT;
    relay_frame_left(&b, f->id, room);
    send_frame(c, &b);
}

static void on_publish(relay_conn *c, const mr_frame *f)
{
    relay_published p;
    relay_publish(c->r, c, f, &p);
}

static void on_presence(relay_conn *c, const mr_frame *f)
{
    relay_member *m = relay_conn_member(c, f->room, f->room_len);
    if (!m) {
        relay_conn_error(c, f->id, MR_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    relay_presence_answer(c, m, f->id);
}

/*
 * A new token for the session. Memberships its rooms claim no longer
 * allows end here, each with a `left` the client did not ask for (a join
 * still waiting for its answer gets it first, as for a leave).
 */
static void on_refresh(relay_conn *c, const mr_frame *f)
{
    if (relay_refresh(c->r, c, f) != 0)
        return;
    relay_member **pp = &c->memberships;
    while (*pp) {
        relay_member *m = *pp;
        const char *name = m->room->name;
        if (mr_jwt_room_allowed(c->rooms_claim, name, strlen(name))) {
            pp = &m->conn_next;
            continue;
        }
        relay_resume_leaving(c->r, m);
        char room[MR_ROOM_MAX + 1];
        snprintf(room, sizeof room, "%s", name);
        unlink_membership(c, m);
        leave_membership(c, m);
        mr_buf b = MR_BUF_INIT;
        relay_frame_left_because(&b, room, "forbidden");
        send_frame(c, &b);
    }
    relay_client_timer(c);
}

static void on_signal(relay_conn *c, const mr_frame *f)
{
    relay_signal(c->r, c, f);
}

static void on_ping(relay_conn *c, const mr_frame *f)
{
    mr_buf b = MR_BUF_INIT;
    relay_frame_pong(&b, f->id, mr_wall_ms());
    send_frame(c, &b);
}

/* Client frames (docs/protocol.md, "Client frames"), indexed by mr_frame_type. */
static const struct {
    mr_frame_type type;
    bool needs_auth;
    void (*handle)(relay_conn *c, const mr_frame *f);
} frames[] = {
    {MR_FRAME_HELLO, false, on_hello},      {MR_FRAME_JOIN, true, on_join},
    {MR_FRAME_LEAVE, true, on_leave},       {MR_FRAME_PUBLISH, true, on_publish},
    {MR_FRAME_PRESENCE, true, on_presence}, {MR_FRAME_PING, true, on_ping},
    {MR_FRAME_REFRESH, true, on_refresh},   {MR_FRAME_SIGNAL, true, on_signal},
};

static void on_frame(relay_conn *c, const char *text, size_t len)
{
    mr_frame f;
    mr_proto_err err;
    if (mr_proto_parse(text, len, &f, &err) != 0) {
        relay_conn_error(c, err.id, err.code, err.message);
        mr_proto_err_free(&err);
        return;
    }
    size_t i = (size_t)f.type;
    if (i >= sizeof frames / sizeof frames[0] || frames[i].type != f.type)
        relay_conn_error(c, f.id, MR_ERR_INTERNAL, "frame type without a handler");
    else if (frames[i].needs_auth && !c->user)
        relay_conn_error(c, f.id, MR_ERR_NOT_AUTHENTICATED, "send hello first");
    else
        frames[i].handle(c, &f);
    mr_frame_free(&f);
}

int relay_client_receive(relay_conn *c, const void *in, size_t len, bool binary, bool final)
{
    if (c->close_code)
        return 0; /* closing: ignore what the client still sends */
    if (binary) {
        static const char why[] = "binary frames are not supported";
        lws_close_reason(c->wsi, (enum lws_close_status)MR_CLOSE_UNSUPPORTED, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    mr_metric_add(&relay_m.bytes_in, (int64_t)len);
    if (c->rx.len + len > (size_t)c->r->cfg->limits.max_message_bytes) {
        /* The message is too big: close now, without buffering the rest. */
        static const char why[] = "message too big";
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    if (!final) {
        mr_buf_append(&c->rx, in, len);
        return 0;
    }
    mr_metric_inc(&relay_m.frames_in);
    if (c->rx.len) {
        mr_buf_append(&c->rx, in, len);
        on_frame(c, c->rx.data, c->rx.len);
        mr_buf_reset(&c->rx);
        /* Do not keep a large reassembly buffer around for an idle connection. */
        if (c->rx.cap > RX_KEEP_BYTES)
            mr_buf_free(&c->rx);
    } else {
        on_frame(c, in, len);
    }
    return 0;
}
