/*
 * Presence across relays and regions.
 *
 * Each relay owns the truth about its own sessions. When the number of a
 * user's sessions in a room changes on a relay, the relay publishes
 * meridian.presence.<room> {"op":"set","node":N,"user":U,"sessions":n,"seq":s}
 * (0 means gone; s numbers the process's deltas, for the control plane). Relays with members in the
 * room keep, per room, the sessions each other relay reported for each user, and tell their members
 * when a user's total across all relays goes from 0 to some (join) or back
 * to 0 (leave).
 *
 * A relay that starts watching a room asks the others for a snapshot with a
 * request on the same subject; each relay with members there answers with
 * its users. Every relay heartbeats on meridian.relay.hb (a subject no room
 * name can produce, unlike the meridian.presence.hb of old); a relay that
 * misses `presence.expire_heartbeats` heartbeats is considered gone and its
 * entries are dropped everywhere, so a relay killed with SIGKILL leaves no
 * zombie members. N is a per-process instance id, so a restarted relay
 * never inherits its predecessor's entries.
 *
 * During a drain a relay does not announce its leaving sessions one by one:
 * its clients are moving to other relays, which announce them there, and the
 * drained relay says "bye" only as it exits. Members therefore never see a
 * moved user disappear and come back.
 */
#include "relay_presence.h"
#include "mr_alloc.h"
#include "mr_jwt.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"
#include "relay_frames.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct remote_entry {
    char *user;
    char node[RELAY_NODE_ID_MAX];
    long sessions;
} remote_entry;

typedef struct node_info {
    int64_t last_seen_us;
} node_info;

/* A room's view of the other relays, in the room's presence slot. */
typedef struct presence_room {
    mr_map remote;        /* "user\x1fnode" -> remote_entry* */
    mr_map remote_totals; /* user -> (intptr_t) sum of its sessions on other relays */
} presence_room;

/* Most sessions one relay may report for a user; larger counts are refused as malformed. */
#define RELAY_PRESENCE_SESSIONS_MAX 10000000
/*
 * Most relays heard of at once. Each costs a map entry until it misses its
 * heartbeats, so a publisher inventing ids cannot grow memory without bound.
 */
#define RELAY_PRESENCE_NODES_MAX 4096

/* Key of a remote entry: a user (at most MR_JWT_SUB_MAX bytes), \x1f, a node's instance id. */
#define REMOTE_KEY_MAX (MR_JWT_SUB_MAX + 1 + RELAY_NODE_ID_MAX)

static void free_remote(void *p)
{
    remote_entry *e = p;
    free(e->user);
    free(e);
}

static void presence_room_free(void *p)
{
    presence_room *pr = p;
    mr_map_free(&pr->remote, free_remote);
    mr_map_free(&pr->remote_totals, NULL);
    free(pr);
}

/* The room's presence state, made on first use. */
static presence_room *state_of(relay *r, relay_room *room)
{
    presence_room *pr = room->state[r->presence_slot];
    if (!pr) {
        pr = mr_calloc(1, sizeof *pr);
        mr_map_init(&pr->remote);
        mr_map_init(&pr->remote_totals);
        room->state[r->presence_slot] = pr;
    }
    return pr;
}

void relay_presence_init(relay *r)
{
    unsigned char rnd[6];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(r->instance, sizeof r->instance, "%s/%s/%02x%02x%02x%02x%02x%02x", r->cfg->region,
             r->cfg->node_id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    mr_map_init(&r->presence_nodes);
    r->presence_slot = relay_rooms_add_state(&r->rooms, presence_room_free, NULL);
}

static void free_node(void *p)
{
    free(p);
}

void relay_presence_free(relay *r)
{
    mr_map_free(&r->presence_nodes, free_node);
}

static long remote_total(presence_room *pr, const char *user)
{
    return (long)(intptr_t)mr_map_get(&pr->remote_totals, user, strlen(user));
}

static long local_count(relay_room *room, const char *user)
{
    return (long)(intptr_t)mr_map_get(&room->users, user, strlen(user));
}

static void send_event(relay_room *room, const char *event, const char *user, long sessions,
                       relay_conn *except)
{
    mr_buf b = MR_BUF_INIT;
    relay_frame_presence_event(&b, room->name, room->name_len, event, user, sessions);
    relay_out *o = relay_out_new(b.data, b.len);
    for (relay_member *m = room->members; m; m = m->room_next)
        if (m->conn != except && m->presence_events)
            relay_conn_send(m->conn, o);
    relay_out_unref(o);
    mr_buf_free(&b);
}

/* Announce a transition of the user's total across relays. */
static void total_changed(relay_room *room, const char *user, long before, long after,
                          relay_conn *except, bool updates)
{
    if (before == 0 && after > 0)
        send_event(room, "join", user, after, except);
    else if (before > 0 && after == 0)
        send_event(room, "leave", user, 0, except);
    else if (updates && before != after)
        /* Session counts stay right too, e.g. when a dead relay's session expires. */
        send_event(room, "update", user, after, except);
}

static void publish_set(relay *r, relay_room *room, const char *user, long sessions)
{
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"op\":\"set\",\"node\":");
    mr_buf_json_str(&b, r->instance, strlen(r->instance));
    mr_buf_puts(&b, ",\"user\":");
    mr_buf_json_str(&b, user, strlen(user));
    /*
     * seq numbers this process's deltas. Relays ignore it; control planes
     * (ctl_presence.c) keep, per user and relay, the highest they applied,
     * so that a delta reaching them late or twice (one copy per control
     * plane, across gateways) cannot undo a newer one.
     */
    mr_buf_printf(&b, ",\"sessions\":%ld,\"seq\":%llu}", sessions,
                  (unsigned long long)++r->presence_seq);
    char subject[RELAY_SUBJECT_MAX];
    snprintf(subject, sizeof subject, RELAY_SUBJ_PRESENCE "%s", room->name);
    relay_nats_publish_raw(r->nats, subject, NULL, b.data, b.len);
    mr_buf_free(&b);
}

void relay_presence_local(relay *r, relay_room *room, const char *user, int delta,
                          relay_conn *except)
{
    /*
     * The relay is stopping and closes every session: the others are going
     * too, and other relays had the bye (relay_presence_bye). Announcing
     * each close to every member left would queue N² frames.
     */
    if (r->destroying)
        return;
    long local = local_count(room, user);
    long after = local + remote_total(state_of(r, room), user);
    /*
     * A user's extra session here is not announced as an update: in a large
     * room every join would cost a frame per member. Counts still converge
     * through snapshots, and remote changes (a dead relay) are announced.
     */
    total_changed(room, user, after - delta, after, except, false);
    /* Sessions closed by a drain are not announced: see the comment at the top. */
    if (!r->drain_started)
        publish_set(r, room, user, local);
}

/* Set one remote entry and keep the per-user total in step. */
static void remote_set(relay *r, relay_room *room, const char *node, const char *user,
                       long sessions)
{
    presence_room *pr = state_of(r, room);
    char key[REMOTE_KEY_MAX + 1];
    int kl = snprintf(key, sizeof key, "%s\x1f%s", user, node);
    if (kl < 0 || (size_t)kl >= sizeof key)
        return;
    remote_entry *e = mr_map_get(&pr->remote, key, (size_t)kl);
    long prev = e ? e->sessions : 0;
    long before = local_count(room, user) + remote_total(pr, user);
    if (sessions <= 0) {
        if (e) {
            mr_map_del(&pr->remote, key, (size_t)kl);
            free_remote(e);
            e = NULL;
        }
        sessions = 0;
    } else if (!e) {
        e = mr_calloc(1, sizeof *e);
        e->user = mr_strdup(user);
        snprintf(e->node, sizeof e->node, "%s", node);
        mr_map_put(&pr->remote, key, (size_t)kl, e);
    }
    if (e && sessions > 0)
        e->sessions = sessions;
    long total = remote_total(pr, user) + sessions - prev;
    size_t ul = strlen(user);
    if (total > 0)
        mr_map_put(&pr->remote_totals, user, ul, (void *)(intptr_t)total);
    else
        mr_map_del(&pr->remote_totals, user, ul);
    total_changed(room, user, before, local_count(room, user) + (total > 0 ? total : 0), NULL,
                  true);
}

static void drop_node(relay *r, const char *node)
{
    size_t rb;
    for (mr_map_entry *re = mr_map_first(&r->rooms.by_name, &rb); re;
         re = mr_map_next(&r->rooms.by_name, &rb, re)) {
        relay_room *room = re->value;
        presence_room *pr = state_of(r, room);
        /* Collect first: remote_set changes the map being walked. */
        size_t n = 0, cap = pr->remote.count;
        char **users = cap ? mr_malloc(cap * sizeof *users) : NULL;
        size_t b;
        for (mr_map_entry *e = mr_map_first(&pr->remote, &b); e;
             e = mr_map_next(&pr->remote, &b, e)) {
            remote_entry *en = e->value;
            if (strcmp(en->node, node) == 0)
                users[n++] = mr_strdup(en->user);
        }
        for (size_t i = 0; i < n; i++) {
            remote_set(r, room, node, users[i], 0);
            free(users[i]);
        }
        free(users);
    }
    node_info *ni = mr_map_del(&r->presence_nodes, node, strlen(node));
    free(ni);
}

static void answer_query(relay *r, relay_room *room, const char *reply)
{
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"node\":");
    mr_buf_json_str(&b, r->instance, strlen(r->instance));
    mr_buf_puts(&b, ",\"users\":{");
    size_t bucket;
    bool first = true;
    for (mr_map_entry *e = mr_map_first(&room->users, &bucket); e;
         e = mr_map_next(&room->users, &bucket, e)) {
        if (!first)
            mr_buf_putc(&b, ',');
        mr_buf_json_str(&b, e->key, e->klen);
        mr_buf_printf(&b, ":%ld", (long)(intptr_t)e->value);
        first = false;
    }
    mr_buf_puts(&b, "}}");
    relay_nats_publish_raw(r->nats, reply, NULL, b.data, b.len);
    mr_buf_free(&b);
}

/*
 * Everything below comes from NATS, where any connected process could
 * publish: each field is checked before it is used, as the frame parser
 * checks client frames. A node id is what relay_presence_init makes: region
 * and node id of at most 64 bytes each (relay_config.c), two slashes and 12
 * hex digits, so at most 142 bytes of [A-Za-z0-9_/-].
 */
static bool node_valid(const char *s, size_t len)
{
    return len < RELAY_NODE_ID_MAX && mr_instance_valid(s, len);
}

/* The node id in `j`, or NULL when it is absent or malformed. */
static const char *node_of(json_t *j)
{
    json_t *node = json_object_get(j, "node");
    if (!json_is_string(node) || !node_valid(json_string_value(node), json_string_length(node)))
        return NULL;
    return json_string_value(node);
}

/* A user as tokens name them (1 to MR_JWT_SUB_MAX bytes, no NUL). */
static bool user_valid(const char *user, size_t len)
{
    return len > 0 && len <= MR_JWT_SUB_MAX && strlen(user) == len;
}

static bool sessions_valid(json_t *n)
{
    return json_is_integer(n) && json_integer_value(n) >= 0 &&
           json_integer_value(n) <= RELAY_PRESENCE_SESSIONS_MAX;
}

/* Note that `node` is alive; false when it is new and too many nodes are known already. */
static bool saw_node(relay *r, const char *node)
{
    size_t nl = strlen(node);
    node_info *ni = mr_map_get(&r->presence_nodes, node, nl);
    if (!ni) {
        if (r->presence_nodes.count >= RELAY_PRESENCE_NODES_MAX)
            return false;
        ni = mr_calloc(1, sizeof *ni);
        mr_map_put(&r->presence_nodes, node, nl, ni);
    }
    ni->last_seen_us = mr_now_us();
    return true;
}

/* Apply another relay's users in `room` (`node` is valid and not this relay). */
static bool apply_snapshot(relay *r, relay_room *room, const char *node, json_t *j)
{
    json_t *users = json_object_get(j, "users");
    if (!json_is_object(users))
        return false;
    const char *user;
    json_t *n;
    json_object_foreach(users, user, n)
    {
        /* jansson keys cannot hold NUL, so strlen is the key's length. */
        if (!user_valid(user, strlen(user)) || !sessions_valid(n))
            return false;
    }
    if (!saw_node(r, node))
        return false;
    mr_log_debug("presence: snapshot from %s for %s", node, room->name);
    json_object_foreach(users, user, n)
        remote_set(r, room, node, user, (long)json_integer_value(n));
    return true;
}

bool relay_presence_on_heartbeat(relay *r, const char *data, size_t len)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *node = node_of(j);
    json_t *op = json_object_get(j, "op");
    bool ok = node && (!op || (json_is_string(op) && strcmp(json_string_value(op), "bye") == 0));
    if (ok && strcmp(node, r->instance) != 0) {
        if (op)
            drop_node(r, node);
        else
            ok = saw_node(r, node);
    }
    json_decref(j);
    return ok;
}

bool relay_presence_on_message(relay *r, const char *room_name, const char *reply, const char *data,
                               size_t len)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return true; /* every member left after the message was queued */
    if (reply && reply[0]) {
        answer_query(r, room, reply);
        return true;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *node = node_of(j);
    json_t *op = json_object_get(j, "op");
    json_t *user = json_object_get(j, "user");
    json_t *sessions = json_object_get(j, "sessions");
    bool ok = node && json_is_string(op) && strcmp(json_string_value(op), "set") == 0 &&
              json_is_string(user) &&
              user_valid(json_string_value(user), json_string_length(user)) &&
              sessions_valid(sessions);
    /* This relay's own deltas come back to it too. */
    if (ok && strcmp(node, r->instance) != 0) {
        ok = saw_node(r, node);
        if (ok)
            remote_set(r, room, node, json_string_value(user), (long)json_integer_value(sessions));
    }
    json_decref(j);
    return ok;
}

bool relay_presence_snapshot_reply(relay *r, const char *room_name, const char *data, size_t len)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room)
        return true;
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *node = node_of(j);
    bool ok = node && (strcmp(node, r->instance) == 0 || apply_snapshot(r, room, node, j));
    json_decref(j);
    return ok;
}

void relay_presence_room_created(relay *r, relay_room *room)
{
    char subject[RELAY_SUBJECT_MAX], token[MR_ROOM_MAX + 4];
    snprintf(subject, sizeof subject, RELAY_SUBJ_PRESENCE "%s", room->name);
    snprintf(token, sizeof token, RELAY_INBOX_PRESENCE "%s", room->name);
    relay_nats_request(r->nats, subject, token, "{}", 2);
}

void relay_presence_room_gone(relay *r, relay_room *room, const char *user)
{
    /* The last local member left: tell the others, keep nothing. */
    if (!r->drain_started)
        publish_set(r, room, user, 0);
}

void relay_presence_members(relay *r, relay_room *room, mr_buf *b)
{
    presence_room *pr = state_of(r, room);
    mr_buf_putc(b, '[');
    bool first = true;
    size_t bucket;
    for (mr_map_entry *e = mr_map_first(&room->users, &bucket); e;
         e = mr_map_next(&room->users, &bucket, e)) {
        long total = (long)(intptr_t)e->value + remote_total(pr, e->key);
        mr_buf_puts(b, first ? "{\"user\":" : ",{\"user\":");
        mr_buf_json_str(b, e->key, e->klen);
        mr_buf_printf(b, ",\"sessions\":%ld}", total);
        first = false;
    }
    for (mr_map_entry *e = mr_map_first(&pr->remote_totals, &bucket); e;
         e = mr_map_next(&pr->remote_totals, &bucket, e)) {
        if (local_count(room, e->key) > 0)
            continue; /* already listed with the local sessions */
        mr_buf_puts(b, first ? "{\"user\":" : ",{\"user\":");
        mr_buf_json_str(b, e->key, e->klen);
        mr_buf_printf(b, ",\"sessions\":%ld}", (long)(intptr_t)e->value);
        first = false;
    }
    mr_buf_putc(b, ']');
}

void relay_presence_answer(relay_conn *c, relay_member *m, json_t *id)
{
    mr_buf members = MR_BUF_INIT, b = MR_BUF_INIT;
    relay_presence_members(c->r, m->room, &members);
    relay_frame_presence_members(&b, id, m->room->name, m->room->name_len, &members);
    relay_conn_send_buf(c, &b);
    mr_buf_free(&members);
    mr_buf_free(&b);
}

void relay_presence_tick(relay *r)
{
    int64_t now = mr_now_us();
    int64_t interval = r->cfg->presence_heartbeat_ms * 1000;
    if (now >= r->presence_next_hb_us) {
        r->presence_next_hb_us = now + interval;
        mr_buf b = MR_BUF_INIT;
        mr_buf_puts(&b, "{\"node\":");
        mr_buf_json_str(&b, r->instance, strlen(r->instance));
        mr_buf_printf(&b, ",\"interval_ms\":%lld}", (long long)r->cfg->presence_heartbeat_ms);
        relay_nats_publish_raw(r->nats, RELAY_SUBJ_HEARTBEAT, NULL, b.data, b.len);
        mr_buf_free(&b);
    }
    int64_t expire = interval * r->cfg->presence_expire_heartbeats;
    size_t bucket;
    for (mr_map_entry *e = mr_map_first(&r->presence_nodes, &bucket); e;) {
        node_info *ni = e->value;
        mr_map_entry *next = mr_map_next(&r->presence_nodes, &bucket, e);
        if (now - ni->last_seen_us > expire) {
            mr_log_info("presence: relay %s missed its heartbeats; dropping its members", e->key);
            /* A copy of the whole key: drop_node deletes the entry that holds it. */
            char *node = mr_strndup(e->key, e->klen);
            drop_node(r, node);
            free(node);
            /* drop_node changed the map: start over, the walk is short. */
            next = mr_map_first(&r->presence_nodes, &bucket);
        }
        e = next;
    }
}

void relay_presence_reannounce(relay *r)
{
    size_t rb;
    for (mr_map_entry *re = mr_map_first(&r->rooms.by_name, &rb); re;
         re = mr_map_next(&r->rooms.by_name, &rb, re)) {
        relay_room *room = re->value;
        size_t b;
        for (mr_map_entry *e = mr_map_first(&room->users, &b); e;
             e = mr_map_next(&room->users, &b, e))
            publish_set(r, room, e->key, (long)(intptr_t)e->value);
        relay_presence_room_created(r, room);
    }
}

void relay_presence_bye(relay *r)
{
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"op\":\"bye\",\"node\":");
    mr_buf_json_str(&b, r->instance, strlen(r->instance));
    mr_buf_putc(&b, '}');
    relay_nats_publish_raw(r->nats, RELAY_SUBJ_HEARTBEAT, NULL, b.data, b.len);
    mr_buf_free(&b);
}
