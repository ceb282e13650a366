/*
 * Presence across relays and regions: who is in a room, wherever they are
 * connected, with heartbeats so that a dead relay's members expire.
 */
#ifndef RELAY_PRESENCE_H
#define RELAY_PRESENCE_H

#include "mr_buf.h"
#include "relay.h"
#include "relay_conn.h"

#include <stddef.h>

/** Choose this process's instance id and register presence's per-room state. */
void relay_presence_init(relay *r);
void relay_presence_free(relay *r);
/**
 * The local session count of `user` in `room` just changed by `delta` (+1 or
 * -1): announce it to other relays and tell local members (except `except`)
 * when the user's total presence appears or disappears.
 */
void relay_presence_local(relay *r, relay_room *room, const char *user, int delta,
                          relay_conn *except);
/** The room is about to be destroyed after `user`, its last local member, left. */
void relay_presence_room_gone(relay *r, relay_room *room, const char *user);
/** The room was just created here: ask the other relays for their members. */
void relay_presence_room_created(relay *r, relay_room *room);
/*
 * The handlers of what arrives from NATS return false when the message is
 * malformed (and was ignored), for the dispatcher to count and log.
 */
/** A delta or snapshot request on meridian.presence.<room>; `reply` is NULL or empty for deltas. */
bool relay_presence_on_message(relay *r, const char *room, const char *reply, const char *data,
                               size_t len);
/** A heartbeat or bye on meridian.relay.hb. */
bool relay_presence_on_heartbeat(relay *r, const char *data, size_t len);
/** A snapshot reply for `room` arrived on the inbox. */
bool relay_presence_snapshot_reply(relay *r, const char *room, const char *data, size_t len);
/** Answer a `presence` frame of `c` about `m`'s room: its members across relays. */
void relay_presence_answer(relay_conn *c, relay_member *m, json_t *id);
/** Append the room's members across relays as a JSON array. */
void relay_presence_members(relay *r, relay_room *room, mr_buf *b);
/** Heartbeat and expiry; call every RELAY_TICK_MS. */
void relay_presence_tick(relay *r);
/** After a NATS reconnect: announce every local member again and re-read snapshots. */
void relay_presence_reannounce(relay *r);
/** Leaving for good: others drop this relay's members at once. */
void relay_presence_bye(relay *r);

#endif
