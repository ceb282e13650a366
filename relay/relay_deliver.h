/*
 * Delivery: a message or a commit to every member of a room on this relay,
 * once per message, held back from members still recovering history.
 * Called by the dispatchers (NATS fast path and commits) and by features
 * (publish, repair, resume); it calls only the connection queue below it.
 */
#ifndef RELAY_DELIVER_H
#define RELAY_DELIVER_H

#include "mr_map.h"
#include "relay.h"
#include "relay_out.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/** Register delivery's per-member state with the rooms (once, after relay_rooms_init). */
void relay_deliver_init(relay *r);
/**
 * Deliver a `message` frame (`frame`, `len` bytes) with id `msg_id` to the
 * room's members. Returns true when it was delivered; false for a message
 * the members already got (a retried publish, the NATS copy of a local
 * publish, a copy slower than its commit).
 */
bool relay_deliver_message(relay *r, relay_room *room, const char *msg_id, const void *frame,
                           size_t len);
/**
 * relay_deliver_message, `except` left out (a publisher that said "echo":
 * false; NULL: nobody). Its commit still reaches it as a `commit`.
 */
bool relay_deliver_message_except(relay *r, relay_room *room, const char *msg_id, const void *frame,
                                  size_t len, const struct relay_conn *except);
/**
 * Deliver the commit of (msg_id, seq): a `commit` frame to members that got
 * the message on the fast path, the message itself (`message`: the stored
 * envelope, seq included) to the others; nothing at all for a seq delivered
 * before (a repeated commit, a repair page). Members whose resume already
 * sent `seq`, or who said they have it (`since`), skip it. Returns false
 * for a repeat.
 */
bool relay_deliver_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq,
                          json_t *message);
/**
 * A resume sent (msg_id, seq) from history to a member: a fast-path copy of
 * it arriving later (a publisher's retry through another relay) skips every
 * member that has `seq`, though this relay never saw the commit.
 */
void relay_deliver_replayed(relay *r, relay_room *room, const char *msg_id, int64_t seq);
/** Every seq up to `seq` was stored before the room had members here (repair's baseline). */
void relay_deliver_baseline(relay_room *room, int64_t seq);
/** The highest seq up to which every commit was delivered here. */
int64_t relay_deliver_through(const relay_room *room);
/** The lowest seq delivered beyond a missing one, or 0 when no seq is missing. */
int64_t relay_deliver_gap_end(const relay_room *room);
/** When the oldest message still waiting for its commit was delivered (ms), or INT64_MAX. */
int64_t relay_deliver_oldest_awaiting_ms(const relay_room *room);
/** How many messages delivered on the fast path wait for their commit. */
size_t relay_deliver_awaiting_count(const relay_room *room);
/**
 * Queue a frame for one member, or hold it while the member is recovering;
 * `seq` is the message's seq when the frame comes from its commit, else 0.
 */
void relay_deliver_to(relay_member *m, relay_out *o, const char *msg_id, int64_t seq);
/**
 * The member's join said it got these msg_ids (a JSON array, validated by
 * mr_proto) without their seq: each reaches it only as a `commit`, from
 * history or live, never as a `message` again. At most MR_HAVE_MAX.
 */
void relay_deliver_have(relay_member *m, json_t *ids);
/**
 * Whether the member said it has `msg_id` (relay_deliver_have); the id is
 * forgotten then, since the caller sends its `commit`.
 */
bool relay_deliver_take_have(relay_member *m, const char *msg_id);
/** From now on hold the member's live frames (a resume is fetching its history). */
void relay_deliver_hold(relay_member *m);
/**
 * The member's history covers every seq up to `through`: drop the held
 * commits it covers, and from now on bound what is held by
 * limits.max_outbound_bytes (a member over it is closed as a slow consumer).
 */
void relay_deliver_plan(relay_member *m, int64_t through);
/**
 * Stop holding: queue the held frames in arrival order, except those whose
 * msg_id is a key of `skip` (history already sent them; may be NULL).
 */
void relay_deliver_release(relay_member *m, const mr_map *skip);

#endif
