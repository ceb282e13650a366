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
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_frames.h"
#include "relay_hook.h"
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

static void held_drop_all(relay_conn *c);

void relay_client_closed(relay_conn *c)
{
    if (!c->r)
        return; /* never opened */
    held_drop_all(c);
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
    c->no_echo = f->no_echo;
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

static void hold_join(relay_conn *c, const mr_frame *f, const relay_hook_rule *rule);

/* A join the token (and the backend's hook, if any) allows. */
static void join_room(relay_conn *c, const mr_frame *f)
{
    relay *r = c->r;
    if (relay_conn_member(c, f->room, f->room_len)) {
        mr_buf b = MR_BUF_INIT;
        relay_frame_joined(&b, f->id, f->room);
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

static void on_join(relay_conn *c, const mr_frame *f)
{
    if (!mr_jwt_room_allowed(c->rooms_claim, f->room, f->room_len)) {
        relay_conn_error(c, f->id, MR_ERR_FORBIDDEN, "the token does not allow this room");
        return;
    }
    const relay_hook_rule *rule =
        relay_hooks_match(c->r->hooks, RELAY_HOOK_ON_JOIN, f->room, f->room_len);
    if (rule && !relay_conn_member(c, f->room, f->room_len))
        hold_join(c, f, rule);
    else
        join_room(c, f);
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

static void hold_publish(relay_conn *c, const mr_frame *f);

static void on_publish(relay_conn *c, const mr_frame *f)
{
    /* Behind a publish waiting for its hook, every publish waits: the order is the client's. */
    if (c->held || relay_hooks_match(c->r->hooks, RELAY_HOOK_ON_PUBLISH, f->room, f->room_len)) {
        hold_publish(c, f);
        return;
    }
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

/*
 * Backend hooks (docs/relay.md, "Backend hooks"). A join or publish that a
 * hook rule covers is held, with its frame, until the backend's verdict
 * comes back from the hook thread (relay_hook.c). Joins wait side by side;
 * publishes wait in the connection's order: while the first waits for its
 * verdict, every later publish of the connection, hooked or not, queues
 * behind it, so the backend never reorders a client's messages. A publish
 * is given its mid (when it has none) and so its msg_id before the backend
 * sees it, and the verdict is remembered by msg_id (relay_hooks_remember):
 * a retry of the same mid gets the same message, or the same refusal,
 * without a second request.
 */
typedef struct relay_held {
    struct relay_held *next;
    uint64_t conn_id;
    uint64_t hook_id; /* the request in flight, 0 while queued */
    mr_frame f;       /* a copy of the client's frame (mr_frame_copy) */
    char mid[24];     /* a random mid for a publish that has none ("r-" and 16 hex) */
    char msg_id[MR_MSG_ID_LEN + 1];
} relay_held;

static void held_free(relay_held *h)
{
    mr_frame_free(&h->f);
    free(h);
}

static relay_held *hold(relay_conn *c, const mr_frame *f)
{
    relay_held *h = mr_calloc(1, sizeof *h);
    h->conn_id = c->id;
    mr_frame_copy(&h->f, f);
    return h;
}

/* The fields every hook request carries. */
static json_t *hook_body(relay_conn *c, const char *hook, const mr_frame *f)
{
    return json_pack("{s:s, s:s, s:s#, s:s, s:s, s:s}", "hook", hook, "user", c->user, "room",
                     f->room, (int)f->room_len, "region", c->r->cfg->region, "node",
                     c->r->cfg->node_id, "session", c->sid);
}

static void hook_send(relay *r, relay_held *h, json_t *body, const relay_hook_rule *rule, int event)
{
    char key[24];
    h->hook_id = ++r->next_request_id;
    snprintf(key, sizeof key, "%llu", (unsigned long long)h->hook_id);
    mr_map_put(&r->hook_waits, key, strlen(key), h);
    relay_hooks_call(r->hooks, rule, event, h->hook_id, json_dumps(body, JSON_COMPACT));
    json_decref(body);
}

static void hold_join(relay_conn *c, const mr_frame *f, const relay_hook_rule *rule)
{
    /* Joins waiting count as rooms: a client cannot keep the backend busy with more. */
    if (c->room_count + c->joins_held >= (uint32_t)c->r->cfg->limits.max_rooms_per_connection) {
        relay_conn_error(c, f->id, MR_ERR_TOO_MANY_ROOMS, "too many rooms on this connection");
        return;
    }
    c->joins_held++;
    relay_held *h = hold(c, f);
    hook_send(c->r, h, hook_body(c, "join", f), rule, RELAY_HOOK_ON_JOIN);
}

/* A refusal by the backend: `forbidden` with its reason, not counted as a bad frame. */
static void hook_refuse(relay_conn *c, json_t *id, const char *reason)
{
    mr_buf b = MR_BUF_INIT;
    relay_frame_error(&b, id, MR_ERR_FORBIDDEN, reason[0] ? reason : "refused by the app");
    send_frame(c, &b);
    mr_metric_inc(&relay_m.errors[MR_ERR_FORBIDDEN]);
}

static void hook_unavailable(relay_conn *c, json_t *id)
{
    relay_conn_error(c, id, MR_ERR_UNAVAILABLE,
                     "the app's backend did not answer; retry (with the same mid)");
}

/* Publish `h` as the verdict `v` says. */
static void publish_decided(relay_conn *c, relay_held *h, const relay_hook_result *v)
{
    if (v->verdict == RELAY_HOOK_DENY) {
        hook_refuse(c, h->f.id, v->reason);
    } else if (v->verdict == RELAY_HOOK_UNAVAILABLE) {
        hook_unavailable(c, h->f.id);
    } else {
        /* The backend's replacement data becomes the frame's text, as a client's would be. */
        mr_frame f = h->f;
        char *text = v->data ? json_dumps(v->data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (text) {
            f.data = text;
            f.data_len = strlen(text);
        }
        relay_published p;
        relay_publish(c->r, c, &f, &p);
        free(text);
    }
}

/* Publish what the connection holds, in order, until one waits for its backend. */
static void pump(relay_conn *c)
{
    relay *r = c->r;
    while (c->held && !c->held->hook_id) {
        relay_held *h = c->held;
        const mr_frame *f = &h->f;
        const relay_hook_rule *rule =
            relay_hooks_match(r->hooks, RELAY_HOOK_ON_PUBLISH, f->room, f->room_len);
        relay_hook_result cached;
        bool member = relay_conn_member(c, f->room, f->room_len) != NULL;
        if (rule && member && !relay_hooks_cached(r->hooks, h->msg_id, &cached)) {
            json_t *body = hook_body(c, "publish", f);
            json_object_set_new(body, "msg_id", json_string(h->msg_id));
            json_object_set_new(body, "mid", json_stringn(f->mid, f->mid_len));
            /* The data is kept as the client's JSON text; the request carries it as JSON. */
            json_t *data = json_loadb(f->data, f->data_len, JSON_DECODE_ANY, NULL);
            json_object_set_new(body, "data", data ? data : json_null());
            hook_send(r, h, body, rule, RELAY_HOOK_ON_PUBLISH);
            return;
        }
        c->held = h->next;
        c->held_count--;
        if (rule && member) {
            publish_decided(c, h, &cached);
            json_decref(cached.data);
        } else {
            relay_published p;
            relay_publish(r, c, f, &p); /* not hooked (or not a member: it says so) */
        }
        held_free(h);
    }
}

static void hold_publish(relay_conn *c, const mr_frame *f)
{
    if (c->held_count >= (uint32_t)c->r->cfg->hooks.max_pending) {
        relay_conn_error(c, f->id, MR_ERR_RATE_LIMITED,
                         "too many publishes waiting for the app's backend");
        return;
    }
    relay_held *h = hold(c, f);
    if (!h->f.mid) {
        /* The backend sees the msg_id the message will have, so give it its mid now. */
        h->mid[0] = 'r';
        h->mid[1] = '-';
        if (relay_random_hex(h->mid + 2, 8) != 0) {
            relay_conn_error(c, f->id, MR_ERR_INTERNAL,
                             "cannot give the message an id now; retry, or send a mid");
            held_free(h);
            return;
        }
        h->f.mid = h->mid;
        h->f.mid_len = strlen(h->mid);
    }
    mr_msg_id(f->room, f->room_len, c->user, h->f.mid, h->f.mid_len, h->msg_id);
    relay_held **tail = &c->held;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
    c->held_count++;
    pump(c);
}

static void held_drop_all(relay_conn *c)
{
    while (c->held) {
        relay_held *h = c->held;
        c->held = h->next;
        if (h->hook_id) {
            char key[24];
            snprintf(key, sizeof key, "%llu", (unsigned long long)h->hook_id);
            mr_map_del(&c->r->hook_waits, key, strlen(key));
        }
        held_free(h);
    }
    c->held_count = 0;
}

static void hook_decided(relay *r, relay_hook_result *v)
{
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)v->id);
    relay_held *h = mr_map_del(&r->hook_waits, key, strlen(key));
    relay_conn *c = h ? relay_conn_find(r, h->conn_id) : NULL;
    if (!c) {
        if (h)
            held_free(h); /* a join whose connection closed meanwhile */
        return;
    }
    if (h->f.type == MR_FRAME_JOIN) {
        c->joins_held--;
        if (v->verdict == RELAY_HOOK_ALLOW)
            join_room(c, &h->f);
        else if (v->verdict == RELAY_HOOK_DENY)
            hook_refuse(c, h->f.id, v->reason);
        else
            hook_unavailable(c, h->f.id);
        held_free(h);
        return;
    }
    /* A publish: the head of its connection's queue. */
    c->held = h->next;
    c->held_count--;
    if (v->verdict != RELAY_HOOK_UNAVAILABLE)
        relay_hooks_remember(r->hooks, h->msg_id, v);
    publish_decided(c, h, v);
    held_free(h);
    pump(c);
}

void relay_client_hooks_take(relay *r)
{
    relay_hook_result *v = relay_hooks_take(r->hooks);
    while (v) {
        relay_hook_result *next = v->next;
        hook_decided(r, v);
        relay_hook_result_free(v);
        v = next;
    }
}

static void free_held_value(void *h)
{
    held_free(h);
}

void relay_client_hooks_free(relay *r)
{
    mr_map_free(&r->hook_waits, free_held_value);
}
