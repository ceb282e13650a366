/*
 * Commit repair.
 *
 * The control plane publishes meridian.commit.<room> on core NATS once, so a
 * commit published just before a region's NATS server dies, or while its
 * gateways are reconnecting, can be lost; nothing would resend it. Delivery
 * knows, per room, the seq up to which every commit was delivered
 * (`through`, from a baseline read from history when the room is created
 * here), the seqs delivered beyond it, and the messages delivered on the
 * fast path still waiting for their commit (relay_deliver.h).
 *
 * A seq missing below a delivered one, or a message waiting, for
 * `commit_repair_ms` makes the relay ask meridian.history.<room> for
 * everything after `through` and deliver what it gets exactly as if the
 * commits had come; delivery drops what was delivered already. Commits of
 * one room come from several control planes (one per region stream), so
 * they often arrive out of seq order for a moment: a gap is only read from
 * history once it has lasted. One request per room is in flight at a time,
 * a room asks at most once per `commit_repair_ms`, and a room whose oldest
 * waiting message history does not hold (a publish that failed and was
 * never retried, a region whose stream is away) asks less and less often.
 *
 * The baseline can be read after messages delivered here were already
 * stored (a slow or restarting control plane): their seqs are then at or
 * below `through`, where a forward request never looks. So once, for
 * messages that were waiting before the baseline arrived, the relay reads
 * the newest page below `through` instead; delivery turns the awaited ones
 * into commits and drops the rest.
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

/* Most messages asked for in one history page (the control plane's own cap). */
#define PAGE_MAX 1000
/* Extra messages read behind the baseline beyond those awaited (others' messages). */
#define BEHIND_SLACK 100
/* `after` for "nothing after the newest": the reply carries only last_seq. */
#define AFTER_NEWEST (INT64_MAX - 1)
/* A room whose repairs find nothing waits up to 2^BACKOFF_MAX times commit_repair_ms. */
#define BACKOFF_MAX 6

typedef struct repair_room {
    bool seq_known, inflight;
    bool backward;       /* the request in flight reads the newest page below `through` */
    int64_t baseline_ms; /* when `through` came from the baseline reply; 0 once looked behind it */
    int64_t deadline_us, last_us;
    int64_t gap_since_us; /* when a missing seq was first seen, 0 when none is missing */
    int64_t oldest_asked; /* the oldest waiting message (ms) when the last repair was asked */
    int backoff;          /* repairs in a row that left the oldest waiting message waiting */
} repair_room;

static void repair_room_free(void *p)
{
    free(p);
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

static void ask_baseline(relay *r, relay_room *room, repair_room *rr)
{
    /* Ask for nothing after the largest seq: the reply carries last_seq. */
    request_page(r, room, rr, false, AFTER_NEWEST, 1);
}

void relay_repair_room_created(relay *r, relay_room *room)
{
    if (!r->cfg->jetstream || r->cfg->commit_repair_ms == 0)
        return;
    repair_room *rr = mr_calloc(1, sizeof *rr);
    room->state[r->repair_slot] = rr;
    ask_baseline(r, room, rr);
}

static void ask_missing(relay *r, relay_room *room, repair_room *rr)
{
    if (rr->inflight)
        return;
    mr_metric_inc(&relay_m.commit_repairs);
    if (rr->seq_known)
        request_page(r, room, rr, false, relay_deliver_through(room), PAGE_MAX);
    else
        ask_baseline(r, room, rr);
}

void relay_repair_commit(relay *r, relay_room *room)
{
    repair_room *rr = state_of(r, room);
    if (!rr || !rr->seq_known)
        return;
    if (relay_deliver_gap_end(room) == 0)
        rr->gap_since_us = 0;
    else if (rr->gap_since_us == 0)
        rr->gap_since_us = mr_now_us();
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
        relay_deliver_baseline(room, json_integer_value(last));
        rr->baseline_ms = mr_now_us() / 1000;
        relay_repair_commit(r, room);
        json_decref(j);
        return;
    }
    int64_t through = relay_deliver_through(room);
    size_t fresh = 0;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *seq = json_object_get(m, "seq");
        json_t *id = json_object_get(m, "msg_id");
        if (!json_is_integer(seq) || !json_is_string(id) ||
            !mr_msg_id_valid(json_string_value(id), json_string_length(id)))
            continue;
        /* Delivery drops what was delivered already, and behind `through` all but the awaited. */
        if (relay_deliver_commit(r, room, json_string_value(id), json_integer_value(seq), m))
            fresh++;
    }
    mr_metric_add(&relay_m.commits_repaired, (int64_t)fresh);
    if (!rr->seq_known && relay_deliver_through(room) > 0)
        rr->seq_known = true;
    relay_repair_commit(r, room);
    /* A full page that moved things on: the rest at once. */
    if (!rr->backward && json_is_true(json_object_get(j, "more")) &&
        relay_deliver_through(room) > through)
        ask_missing(r, room, rr);
    json_decref(j);
}

/* Whether the oldest message waiting for its commit has waited long enough to read history. */
static bool awaiting_due(relay *r, repair_room *rr, int64_t oldest_ms, int64_t now_ms)
{
    if (oldest_ms == INT64_MAX)
        return false;
    if (oldest_ms != rr->oldest_asked)
        rr->backoff = 0; /* another message is the oldest now: back to the normal pace */
    int64_t wait = r->cfg->commit_repair_ms << rr->backoff;
    return now_ms - oldest_ms >= r->cfg->commit_repair_ms && now_ms - rr->last_us / 1000 >= wait;
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
            ask_baseline(r, room, rr);
            continue;
        }
        if (rr->gap_since_us && now - rr->gap_since_us >= wait_us) {
            mr_log_debug("room %s: seqs after %lld missing for %lld ms; repairing", room->name,
                         (long long)relay_deliver_through(room),
                         (long long)(now - rr->gap_since_us) / 1000);
            ask_missing(r, room, rr);
            continue;
        }
        int64_t oldest_ms = relay_deliver_oldest_awaiting_ms(room);
        if (!awaiting_due(r, rr, oldest_ms, now / 1000))
            continue;
        if (oldest_ms == rr->oldest_asked && rr->backoff < BACKOFF_MAX)
            rr->backoff++;
        rr->oldest_asked = oldest_ms;
        if (rr->baseline_ms && oldest_ms <= rr->baseline_ms && relay_deliver_through(room) > 0) {
            /*
             * Delivered before the baseline reply came: it may be stored
             * at or below `through` already, where a forward request cannot
             * see it. Look once at the newest page below it.
             */
            rr->baseline_ms = 0;
            mr_metric_inc(&relay_m.commit_repairs);
            size_t want = relay_deliver_awaiting_count(room) + BEHIND_SLACK;
            request_page(r, room, rr, true, relay_deliver_through(room) + 1,
                         want > PAGE_MAX ? PAGE_MAX : (int)want);
        } else {
            ask_missing(r, room, rr);
        }
    }
}
