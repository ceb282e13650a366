/*
 * Delivery: a message or a commit to every member of a room on this relay,
 * once per message id, held back from members still recovering history.
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
 * room's members, unless the id is among the room's recent ones. Returns true
 * when it was new (and is now delivered), false for a duplicate.
 */
bool relay_deliver_message(relay *r, relay_room *room, const char *msg_id, const void *frame,
                           size_t len);
/**
 * Deliver the commit of (msg_id, seq): a `commit` frame when the message was
 * delivered here already, else the message itself (`message`: the stored
 * envelope, seq included). Members whose resume already sent `seq` skip it.
 */
void relay_deliver_commit(relay *r, relay_room *room, const char *msg_id, int64_t seq,
                          json_t *message);
/** Queue a frame for one member, or hold it while the member is recovering. */
void relay_deliver_to(relay_member *m, relay_out *o, const char *msg_id);
/** From now on hold the member's live frames (a resume is fetching its history). */
void relay_deliver_hold(relay_member *m);
/**
 * Stop holding: queue the held frames in arrival order, except those whose
 * msg_id is a key of `skip` (history already sent them; may be NULL).
 */
void relay_deliver_release(relay_member *m, const mr_map *skip);

#endif
