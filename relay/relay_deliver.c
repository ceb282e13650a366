/*
 * Delivery.
 *
 * A message frame is copied once into a shared buffer (relay_out) and a
 * reference is queued for each member. Commits confirm a message this relay
 * delivered with a small `commit` frame; a message it never saw (the fast
 * path lost it) is delivered from the commit itself, seq included. Either
 * way every member learns every message with its seq, once.
 *
 * Once is kept with three records per room (relay_dedup.h), sized by time
 * and by the room's traffic rather than a fixed count:
 *
 *  - awaiting: ids delivered on the fast path whose commit has not come,
 *    with the delivery's stamp (a per-room counter; each member keeps the
 *    stamp of its joining, so a member that joined after the delivery gets
 *    the message itself from the commit, not a `commit` for a message it
 *    never got). They stay until the commit comes, however long the history
 *    outage (up to the stream's max_age, after which the message can never
 *    be committed), so a backlog of commits after an outage is a burst of
 *    `commit` frames and never the messages again. Only a room that waits
 *    for more than `limits.dedup_window` commits forgets its oldest ids, so
 *    that live delivery never stops: their commits bring those messages
 *    again (docs/protocol.md says so).
 *  - committed: ids whose commit was delivered, kept for the stream's
 *    duplicate window, so that a fast-path copy slower than its commit, or
 *    a publisher's retry through another relay, is recognised. Without
 *    JetStream there are no commits, and delivered ids go here directly.
 *  - seqs: every seq delivered. A commit published again (a control plane
 *    restarted before acking its stream) or read again from history
 *    (repair) has a seq already delivered, and goes nowhere, however late.
 *
 * A member that is recovering history (relay_resume.c) gets nothing queued:
 * its frames are held in arrival order until the resume releases them. Once
 * the resume knows what its history holds (relay_deliver_plan), commits the
 * history covers are dropped from them, and from then on they may take at
 * most limits.max_outbound_bytes (else the member is a slow consumer).
 * Before that, for at most resume.timeout_ms, they are held whatever their
 * size: commits arriving meanwhile, for messages the history will send
 * anyway, are the common case (a member resuming just after a burst), and
 * the frames are shared with the other members, so holding costs one small
 * entry each.
 */
#include "relay_deliver.h"
#include "mr_alloc.h"
#include "mr_time.h"
#include "relay_conn.h"
#include "relay_frames.h"
#include "relay_metrics.h"

#include <stdlib.h>
#include <string.h>

/* A frame held back from a member while its history is being fetched. */
typedef struct relay_held {
    struct relay_held *next;
    relay_out *out;
    int64_t seq; /* a message from its commit: its seq; 0 for a fast-path frame */
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
    m->held_bytes = 0;
    if (m->have) {
        m->conn->have_ids -= (uint32_t)m->have->count;
        mr_map_free(m->have, NULL);
        free(m->have);
        m->have = NULL;
    }
}

void relay_deliver_init(relay *r)
{
    relay_rooms_add_state(&r->rooms, NULL, member_free);
}

/* Whether `m`'s held frames exceed its outbound limit (it is then closed as a slow consumer). */
static bool held_over_limit(relay_member *m, size_t bytes)
{
    relay_conn *c = m->conn;
    if (bytes <= (size_t)c->r->cfg->limits.max_outbound_bytes)
        return false;
    /* Live traffic outran the history replay: the member cannot keep up. */
    relay_conn_slow_consumer(c, m->room->name, bytes);
    return true;
}

void relay_deliver_to(relay_member *m, relay_out *o, const char *msg_id, int64_t seq)
{
    relay_conn *c = m->conn;
    if (!m->recovering) {
        relay_conn_send_for(c, o, m->room->name);
        return;
    }
    if (c->close_code)
        return;
    if (m->hold_bounded && held_over_limit(m, m->held_bytes + o->len))
        return;
    relay_held *h = mr_malloc(sizeof *h);
    h->next = NULL;
    h->out = relay_out_ref(o);
    h->seq = seq;
    memcpy(h->msg_id, msg_id, MR_MSG_ID_LEN + 1);
    if (m->held_tail)
        m->held_tail->next = h;
    else
        m->held = h;
    m->held_tail = h;
    m->held_bytes += o->len;
}

void relay_deliver_have(relay_member *m, json_t *ids)
{
    /*
     * A connection remembers at most MR_HAVE_MAX ids over all its rooms
     * (about 100 KB): the ids beyond come again with their seq, as for a
     * client that does not send `have` (docs/protocol.md).
     */
    relay_conn *c = m->conn;
    if (!json_array_size(ids) || c->have_ids >= MR_HAVE_MAX)
        return;
    m->have = mr_malloc(sizeof *m->have);
    mr_map_init(m->have);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (c->have_ids >= MR_HAVE_MAX)
            break;
        if (!mr_map_put(m->have, json_string_value(id), MR_MSG_ID_LEN, (void *)1))
            c->have_ids++;
    }
}

static bool member_has(const relay_member *m, const char *msg_id)
{
    return m->have && mr_map_get(m->have, msg_id, MR_MSG_ID_LEN);
}

bool relay_deliver_take_have(relay_member *m, const char *msg_id)
{
    if (!member_has(m, msg_id))
        return false;
    mr_map_del(m->have, msg_id, MR_MSG_ID_LEN);
    m->conn->have_ids--;
    return true;
}

/*
 * Deliver to every member (a fast-path message: nobody knows its seq yet),
 * except those that said they have it: a publisher's retry through another
 * region of a message they got from a relay that died.
 */
static size_t deliver_all(relay_room *room, relay_out *o, const char *msg_id, int64_t replayed_seq,
                          const relay_conn *except)
{
    size_t n = 0;
    for (relay_member *m = room->members; m; m = m->room_next) {
        if (m->conn == except || member_has(m, msg_id) ||
            (replayed_seq > 0 && m->history_through >= replayed_seq))
            continue;
        relay_deliver_to(m, o, msg_id, 0);
        n++;
    }
    return n;
}

static int64_t now_ms(void)
{
    return mr_now_us() / 1000;
}

/* Remember an id with `val` for the stream's duplicate window (the oldest goes when full). */
static void remember_for_window(relay *r, relay_dedup *d, const uint8_t *key, int64_t val)
{
    int64_t now = now_ms();
    relay_dedup_expire(d, now - r->cfg->stream_duplicate_window_s * 1000);
    if (relay_dedup_add(d, key, now, val, r->rooms.dedup_window) != 0) {
        relay_dedup_drop_oldest(d);
        relay_dedup_add(d, key, now, val, r->rooms.dedup_window);
    }
}

static void remember_committed(relay *r, relay_room *room, const uint8_t *key)
{
    remember_for_window(r, &room->committed, key, 0);
}

bool relay_deliver_message(relay *r, relay_room *room, const char *msg_id, const void *frame,
                           size_t len)
{
    return relay_deliver_message_except(r, room, msg_id, frame, len, NULL);
}

bool relay_deliver_message_except(relay *r, relay_room *room, const char *msg_id, const void *frame,
                                  size_t len, const relay_conn *except)
{
    uint8_t key[RELAY_DEDUP_ID_BYTES];
    relay_dedup_key(msg_id, key);
    if (relay_dedup_has(&room->awaiting, key) || relay_dedup_has(&room->committed, key)) {
        mr_metric_inc(&relay_m.duplicates_dropped);
        return false;
    }
    /* A resume sent it from history (its seq): the members that have that seq skip it. */
    int64_t replayed_seq = 0;
    relay_dedup_expire(&room->replayed, now_ms() - r->cfg->stream_duplicate_window_s * 1000);
    relay_dedup_get(&room->replayed, key, &replayed_seq);
    if (r->cfg->jetstream) {
        int64_t now = now_ms();
        /* A message older than the stream's max_age (0: none) can never be committed any more. */
        if (r->cfg->stream_max_age_s > 0)
            relay_dedup_expire(&room->awaiting, now - r->cfg->stream_max_age_s * 1000);
        if (relay_dedup_add(&room->awaiting, key, now, (int64_t)(room->stamp + 1),
                            r->rooms.dedup_window) != 0) {
            /* Live delivery goes on: the oldest id waiting is forgotten (docs/relay.md). */
            relay_dedup_drop_oldest(&room->awaiting);
            mr_metric_inc(&relay_m.awaiting_forgotten);
            relay_dedup_add(&room->awaiting, key, now, (int64_t)(room->stamp + 1),
                            r->rooms.dedup_window);
        }
    } else {
        remember_committed(r, room, key);
    }
    room->stamp++;
    relay_out *o = relay_out_new(frame, len);
    mr_metric_add(&relay_m.deliveries, (int64_t)deliver_all(room, o, msg_id, replayed_seq, except));
    relay_out_unref(o);
    return true;
}

/* The commit's frame of one kind, built on first use: `message` set for the message itself. */
static relay_out *frame_once(relay_out **o, relay_room *room, const char *msg_id, int64_t seq,
                             json_t *message)
{
    if (!*o) {
        mr_buf b = MR_BUF_INIT;
        if (message)
            relay_frame_stored_message(&b, message);
        else
            relay_frame_commit(&b, room->name, room->name_len, msg_id, seq);
        *o = relay_out_new(b.data, b.len);
        mr_buf_free(&b);
    }
    return *o;
}

bool relay_deliver_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq,
                          json_t *message)
{
    uint8_t key[RELAY_DEDUP_ID_BYTES];
    relay_dedup_key(msg_id, key);
    int64_t stamp = 0;
    bool awaited = relay_dedup_remove(&room->awaiting, key, &stamp);
    bool fresh = relay_seqs_add(&room->seqs, seq);
    if (!awaited && (!fresh || relay_dedup_has(&room->committed, key))) {
        mr_metric_inc(&relay_m.commits_repeated);
        return false;
    }
    remember_committed(r, room, key);
    mr_metric_inc(awaited ? &relay_m.commits : &relay_m.recovered_from_commit);
    /*
     * Members that got the message on the fast path, here or (their `have`)
     * from another relay, get its seq; the others (it never came here, or
     * they joined after it did) get the message.
     * Members that have the seq already (their resume, their `since`) get nothing.
     */
    relay_out *commit = NULL, *whole = NULL;
    for (relay_member *m = room->members; m; m = m->room_next) {
        if (seq <= m->history_through)
            continue;
        if (relay_deliver_take_have(m, msg_id) || (awaited && m->stamp < (uint64_t)stamp))
            relay_deliver_to(m, frame_once(&commit, room, msg_id, seq, NULL), msg_id, seq);
        else
            relay_deliver_to(m, frame_once(&whole, room, msg_id, seq, message), msg_id, seq);
    }
    if (commit)
        relay_out_unref(commit);
    if (whole)
        relay_out_unref(whole);
    return true;
}

void relay_deliver_replayed(relay *r, relay_room *room, const char *msg_id, int64_t seq)
{
    uint8_t key[RELAY_DEDUP_ID_BYTES];
    relay_dedup_key(msg_id, key);
    if (!relay_dedup_has(&room->replayed, key)) /* else another resume sent it: same seq */
        remember_for_window(r, &room->replayed, key, seq);
}

void relay_deliver_baseline(relay_room *room, int64_t seq)
{
    relay_seqs_through(&room->seqs, seq);
}

int64_t relay_deliver_through(const relay_room *room)
{
    return room->seqs.through;
}

int64_t relay_deliver_gap_end(const relay_room *room)
{
    return relay_seqs_gap_end(&room->seqs);
}

int64_t relay_deliver_oldest_awaiting_ms(const relay_room *room)
{
    return relay_dedup_oldest(&room->awaiting);
}

size_t relay_deliver_awaiting_count(const relay_room *room)
{
    return room->awaiting.count;
}

void relay_deliver_hold(relay_member *m)
{
    m->recovering = true;
    m->hold_bounded = false;
}

void relay_deliver_plan(relay_member *m, int64_t through)
{
    /* What the history will send is not held twice: commits up to `through` go. */
    relay_held **pp = &m->held;
    m->held_tail = NULL;
    while (*pp) {
        relay_held *h = *pp;
        if (h->seq > 0 && h->seq <= through) {
            *pp = h->next;
            m->held_bytes -= h->out->len;
            relay_out_unref(h->out);
            free(h);
            continue;
        }
        m->held_tail = h;
        pp = &h->next;
    }
    m->hold_bounded = true;
    held_over_limit(m, m->held_bytes);
}

void relay_deliver_release(relay_member *m, const mr_map *skip)
{
    m->recovering = false;
    while (m->held) {
        relay_held *h = m->held;
        m->held = h->next;
        if (!skip || !mr_map_get(skip, h->msg_id, MR_MSG_ID_LEN))
            relay_conn_send_for(m->conn, h->out, m->room->name);
        relay_out_unref(h->out);
        free(h);
    }
    m->held_tail = NULL;
    m->held_bytes = 0;
}
