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
 */
#include "relay_repair.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_fanout.h"
#include "relay_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define AWAITING_MAX 4096

/* Ask history for `limit` messages after `after`, or with `backward` the newest ones below it. */
static void request_page(relay *r, relay_room *room, bool backward, int64_t from, int limit)
{
    char subject[MR_ROOM_MAX + 32], token[MR_ROOM_MAX + 4], body[96];
    snprintf(subject, sizeof subject, "meridian.history.%s", room->name);
    snprintf(token, sizeof token, "c.%s", room->name);
    int n = snprintf(body, sizeof body, "{\"%s\":%lld,\"limit\":%d}", backward ? "before" : "after",
                     (long long)from, limit);
    room->repair_backward = backward;
    int64_t now = mr_now_us();
    room->repair_inflight = relay_nats_request(r->nats, subject, token, body, (size_t)n) == 0;
    room->repair_deadline_us = now + r->cfg->resume_timeout_ms * 1000;
    room->repair_last_us = now;
}

static void request(relay *r, relay_room *room, int64_t after, int limit)
{
    request_page(r, room, false, after, limit);
}

void relay_repair_room_created(relay *r, relay_room *room)
{
    if (!r->cfg->jetstream || r->cfg->commit_repair_ms == 0)
        return;
    mr_map_init(&room->awaiting);
    room->repair_enabled = true;
    /* Ask for nothing after the largest seq: the reply carries last_seq. */
    request(r, room, INT64_MAX - 1, 1);
}

void relay_repair_room_free(relay_room *room)
{
    if (room->repair_enabled)
        mr_map_free(&room->awaiting, NULL);
    room->repair_enabled = false;
}

void relay_repair_fast_path(relay *r, relay_room *room, const char *msg_id)
{
    if (!room->repair_enabled || room->awaiting.count >= AWAITING_MAX)
        return;
    mr_map_put(&room->awaiting, msg_id, MR_MSG_ID_LEN, (void *)(intptr_t)(mr_now_us() / 1000));
}

static void ask_missing(relay *r, relay_room *room)
{
    if (room->repair_inflight)
        return;
    mr_metric_inc(&relay_m.commit_repairs);
    if (room->seq_known)
        request(r, room, room->last_seq, 1000);
    else
        request(r, room, INT64_MAX - 1, 1);
}

bool relay_repair_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq)
{
    if (!room->repair_enabled)
        return true;
    mr_map_del(&room->awaiting, msg_id, MR_MSG_ID_LEN);
    /*
     * Commits are always delivered, even when they look old: several control
     * threads (one per region stream) publish commits for one room, so they
     * can arrive out of seq order, and a repeat costs a member only a
     * duplicate `commit` it drops by msg_id. last_seq serves gap detection
     * alone, and starts from the baseline history reply.
     */
    if (!room->seq_known)
        return true;
    if (seq == room->last_seq + 1) {
        room->last_seq = seq;
    } else if (seq > room->last_seq + 1) {
        mr_log_debug("room %s: commit %lld after %lld; repairing the gap", room->name,
                     (long long)seq, (long long)room->last_seq);
        ask_missing(r, room);
    }
    return true;
}

void relay_repair_reply(relay *r, const char *room_name, natsMsg *msg)
{
    relay_room *room = relay_room_find(&r->rooms, room_name, strlen(room_name));
    if (!room || !room->repair_enabled)
        return;
    room->repair_inflight = false;
    json_t *j = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    json_t *messages = json_object_get(j, "messages");
    json_t *last = json_object_get(j, "last_seq");
    if (!json_is_array(messages)) {
        json_decref(j);
        return; /* an error reply: the next tick tries again */
    }
    if (!room->seq_known && json_array_size(messages) == 0 && json_is_integer(last)) {
        room->seq_known = true;
        room->last_seq = json_integer_value(last);
        room->baseline_ms = mr_now_us() / 1000;
        json_decref(j);
        return;
    }
    bool backward = room->repair_backward;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *seq = json_object_get(m, "seq");
        json_t *id = json_object_get(m, "msg_id");
        if (!json_is_integer(seq) || !json_is_string(id) || json_string_length(id) != MR_MSG_ID_LEN)
            continue;
        int64_t s = json_integer_value(seq);
        if (room->seq_known && s <= room->last_seq) {
            /*
             * Behind last_seq: only a message delivered here whose commit
             * never came (the baseline was read after it was stored).
             */
            if (mr_map_del(&room->awaiting, json_string_value(id), MR_MSG_ID_LEN)) {
                relay_fanout_commit(r, room, json_string_value(id), s, m);
                mr_metric_inc(&relay_m.commits_repaired);
            }
            continue;
        }
        mr_map_del(&room->awaiting, json_string_value(id), MR_MSG_ID_LEN);
        relay_fanout_commit(r, room, json_string_value(id), s, m);
        room->seq_known = true;
        room->last_seq = s;
        mr_metric_inc(&relay_m.commits_repaired);
    }
    if (!backward && json_is_true(json_object_get(j, "more")))
        ask_missing(r, room);
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
        if (!room->repair_enabled)
            continue;
        if (room->repair_inflight && now > room->repair_deadline_us)
            room->repair_inflight = false;
        if (room->repair_inflight || now - room->repair_last_us < wait_us)
            continue;
        if (!room->seq_known) {
            request(r, room, INT64_MAX - 1, 1);
            continue;
        }
        if (room->awaiting.count == 0)
            continue;
        int64_t oldest_ms = INT64_MAX;
        size_t b;
        for (mr_map_entry *e = mr_map_first(&room->awaiting, &b); e;
             e = mr_map_next(&room->awaiting, &b, e))
            if ((int64_t)(intptr_t)e->value < oldest_ms)
                oldest_ms = (int64_t)(intptr_t)e->value;
        if (now / 1000 - oldest_ms < r->cfg->commit_repair_ms)
            continue;
        if (room->baseline_ms && oldest_ms <= room->baseline_ms && room->last_seq > 0) {
            /*
             * Delivered before the baseline reply came: it may be stored
             * at or below last_seq already, where a forward request cannot
             * see it. Look once at the newest page below last_seq.
             */
            room->baseline_ms = 0;
            mr_metric_inc(&relay_m.commit_repairs);
            size_t want = room->awaiting.count + 100;
            request_page(r, room, true, room->last_seq + 1, want > 1000 ? 1000 : (int)want);
        } else {
            ask_missing(r, room);
        }
    }
}
