/*
 * Commit repair.
 *
 * The control plane publishes meridian.commit.<room> on core NATS once, so a
 * commit published just before a region's NATS server dies, or while its
 * gateways are reconnecting, can be lost; nothing would resend it. Relays
 * therefore keep, per room:
 *
 *  - last_seq: the highest seq up to which every commit was delivered. A
 *    baseline comes from history when the room is created here; commits then
 *    advance it one by one. A commit that skips ahead reveals a gap.
 *  - awaiting: message ids delivered on the fast path whose commit has not
 *    arrived (bounded per room).
 *
 * On a gap, or when a message has waited `commit_repair_ms`, the relay asks
 * meridian.history.<room> for everything after last_seq and delivers what it
 * gets exactly as if the commits had arrived. One request per room is in
 * flight at a time, and a room asks at most once per `commit_repair_ms`.
 *
 * The baseline can be read after messages delivered here were already
 * stored (a slow or restarting control plane): their seqs are then at or
 * below last_seq, where a forward request never looks. So once, for
 * messages that were waiting before the baseline arrived, the relay reads
 * the newest page below last_seq instead and delivers from it only the
 * messages it is waiting for.
 *
 * The state lives in the room's repair slot (relay_rooms_add_state); a room
 * without it (JetStream or repair off) is not repaired.
 */
#include "relay_repair.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_deliver.h"
#include "relay_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most fast-path ids a room remembers while they wait for their commits. */
#define AWAITING_MAX 4096
/* Most messages asked for in one history page (the control plane's own cap). */
#define PAGE_MAX 1000
/* Extra messages read behind the baseline beyond those awaited (others' messages). */
#define BEHIND_SLACK 100
/* `after` for "nothing after the newest": the reply carries only last_seq. */
#define AFTER_NEWEST (INT64_MAX - 1)

typedef struct repair_room {
    bool seq_known, inflight;
    bool backward; /* the request in flight reads the newest page below last_seq */
    int64_t last_seq;
    int64_t baseline_ms; /* when last_seq came from the baseline reply; 0 once looked behind it */
    int64_t deadline_us, last_us;
    mr_map awaiting; /* msg_id -> (intptr) ms when delivered on the fast path */
} repair_room;

static void repair_room_free(void *p)
{
    repair_room *rr = p;
    mr_map_free(&rr->awaiting, NULL);
    free(rr);
}

void relay_repair_init(relay *r)
{
    r->repair_slot = relay_rooms_add_state(&r->rooms, repair_room_free, NULL);
}

static repair_room *state_of(relay *r, relay_room *room)
{
    return room->state[r->repair_slot];
}

/* Ask history for `limit` messages after `from`, or with `backward` the newest ones below it. */
static void request_page(relay *r, relay_room *room, repair_room *rr, bool backward, int64_t from,
                         int limit)
{
    char subject[RELAY_SUBJECT_MAX], token[MR_ROOM_MAX + 4], body[96];
    snprintf(subject, sizeof subject, RELAY_SUBJ_HISTORY "%s", room->name);
    snprintf(token, sizeof token, RELAY_INBOX_REPAIR "%s", room->name);
    int n = snprintf(body, sizeof body, "{\"%s\":%lld,\"limit\":%d}", backward ? "before" : "after",
                     (long long)from, limit);
    rr->backward = backward;
    int64_t now = mr_now_us();
    rr->inflight = relay_nats_request(r->nats, subject, token, body, (size_t)n) == 0;
    rr->deadline_us = now + r->cfg->resume_timeout_ms * 1000;
    rr->last_us = now;
}

static void request(relay *r, relay_room *room, repair_room *rr, int64_t after, int limit)
{
    request_page(r, room, rr, false, after, limit);
}

void relay_repair_room_created(relay *r, relay_room *room)
{
    if (!r->cfg->jetstream || r->cfg->commit_repair_ms == 0)
        return;
    repair_room *rr = mr_calloc(1, sizeof *rr);
    mr_map_init(&rr->awaiting);
    room->state[r->repair_slot] = rr;
    /* Ask for nothing after the largest seq: the reply carries last_seq. */
    request(r, room, rr, AFTER_NEWEST, 1);
}

void relay_repair_awaiting(relay *r, relay_room *room, const char *msg_id)
{
    repair_room *rr = state_of(r, room);
    if (!rr || rr->awaiting.count >= AWAITING_MAX)
        return;
    mr_map_put(&rr->awaiting, msg_id, MR_MSG_ID_LEN, (void *)(intptr_t)(mr_now_us() / 1000));
}

static void ask_missing(relay *r, relay_room *room, repair_room *rr)
{
    if (rr->inflight)
        return;
    mr_metric_inc(&relay_m.commit_repairs);
    if (rr->seq_known)
        request(r, room, rr, rr->last_seq, PAGE_MAX);
    else
        request(r, room, rr, AFTER_NEWEST, 1);
}

bool relay_repair_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq)
{
    repair_room *rr = state_of(r, room);
    if (!rr)
        return true;
    mr_map_del(&rr->awaiting, msg_id, MR_MSG_ID_LEN);
    /*
     * Commits are always delivered, even when they look old: several control
     * threads (one per region stream) publish commits for one room, so they
     * can arrive out of seq order, and a repeat costs a member only a
     * duplicate `commit` it drops by msg_id. last_seq serves gap detection
     * alone, and starts from the baseline history reply.
     */
    if (!rr->seq_known)
        return true;
    if (seq == rr->last_seq + 1) {
        rr->last_seq = seq;
    } else if (seq > rr->last_seq + 1) {
        mr_log_debug("room %s: commit %lld after %lld; repairing the gap", room->name,
                     (long long)seq, (long long)rr->last_seq);
        ask_missing(r, room, rr);
    }
    return true;
}

void relay_repair_reply(relay *r, const char *room_name, const char *data, size_t len)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    repair_room *rr = room ? state_of(r, room) : NULL;
    if (!rr)
        return;
    rr->inflight = false;
    json_t *j = json_loadb(data, len, 0, NULL);
    json_t *messages = json_object_get(j, "messages");
    json_t *last = json_object_get(j, "last_seq");
    if (!json_is_array(messages)) {
        json_decref(j);
        return; /* an error reply: the next tick tries again */
    }
    if (!rr->seq_known && json_array_size(messages) == 0 && json_is_integer(last)) {
        rr->seq_known = true;
        rr->last_seq = json_integer_value(last);
        rr->baseline_ms = mr_now_us() / 1000;
        json_decref(j);
        return;
    }
    bool backward = rr->backward;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *seq = json_object_get(m, "seq");
        json_t *id = json_object_get(m, "msg_id");
        if (!json_is_integer(seq) || !json_is_string(id) || json_string_length(id) != MR_MSG_ID_LEN)
            continue;
        int64_t s = json_integer_value(seq);
        if (rr->seq_known && s <= rr->last_seq) {
            /*
             * Behind last_seq: only a message delivered here whose commit
             * never came (the baseline was read after it was stored).
             */
            if (mr_map_del(&rr->awaiting, json_string_value(id), MR_MSG_ID_LEN)) {
                relay_deliver_commit(r, room, json_string_value(id), s, m);
                mr_metric_inc(&relay_m.commits_repaired);
            }
            continue;
        }
        mr_map_del(&rr->awaiting, json_string_value(id), MR_MSG_ID_LEN);
        relay_deliver_commit(r, room, json_string_value(id), s, m);
        rr->seq_known = true;
        rr->last_seq = s;
        mr_metric_inc(&relay_m.commits_repaired);
    }
    if (!backward && json_is_true(json_object_get(j, "more")))
        ask_missing(r, room, rr);
    json_decref(j);
}

void relay_repair_tick(relay *r)
{
    if (!r->cfg->jetstream || r->cfg->commit_repair_ms == 0)
        return;
    int64_t now = mr_now_us();
    int64_t wait_us = r->cfg->commit_repair_ms * 1000;
    size_t rb;
    for (mr_map_entry *re = mr_map_first(&r->rooms.by_name, &rb); re;
         re = mr_map_next(&r->rooms.by_name, &rb, re)) {
        relay_room *room = re->value;
        repair_room *rr = state_of(r, room);
        if (!rr)
            continue;
        if (rr->inflight && now > rr->deadline_us)
            rr->inflight = false;
        if (rr->inflight || now - rr->last_us < wait_us)
            continue;
        if (!rr->seq_known) {
            request(r, room, rr, AFTER_NEWEST, 1);
            continue;
        }
        if (rr->awaiting.count == 0)
            continue;
        int64_t oldest_ms = INT64_MAX;
        size_t b;
        for (mr_map_entry *e = mr_map_first(&rr->awaiting, &b); e;
             e = mr_map_next(&rr->awaiting, &b, e))
            if ((int64_t)(intptr_t)e->value < oldest_ms)
                oldest_ms = (int64_t)(intptr_t)e->value;
        if (now / 1000 - oldest_ms < r->cfg->commit_repair_ms)
            continue;
        if (rr->baseline_ms && oldest_ms <= rr->baseline_ms && rr->last_seq > 0) {
            /*
             * Delivered before the baseline reply came: it may be stored
             * at or below last_seq already, where a forward request cannot
             * see it. Look once at the newest page below last_seq.
             */
            rr->baseline_ms = 0;
            mr_metric_inc(&relay_m.commit_repairs);
            size_t want = rr->awaiting.count + BEHIND_SLACK;
            request_page(r, room, rr, true, rr->last_seq + 1,
                         want > PAGE_MAX ? PAGE_MAX : (int)want);
        } else {
            ask_missing(r, room, rr);
        }
    }
}
