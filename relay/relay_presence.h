/*
 * Presence across relays and regions: who is in a room, wherever they are
 * connected, with heartbeats so that a dead relay's members expire.
 */
#ifndef RELAY_PRESENCE_H
#define RELAY_PRESENCE_H

#include "mr_buf.h"
#include "relay.h"

#include <nats/nats.h>

void relay_presence_init(relay *r);
void relay_presence_free(relay *r);
/**
 * The local session count of `user` in `room` just changed by `delta` (+1 or
 * -1): announce it to other relays and tell local members (except `except`)
 * when the user's total presence appears or disappears.
 */
void relay_presence_local(relay *r, relay_room *room, const char *user, int delta, void *except);
/** The room is about to be destroyed after `user`, its last local member, left. */
void relay_presence_room_gone(relay *r, relay_room *room, const char *user);
/** The room was just created here: ask the other relays for their members. */
void relay_presence_room_created(relay *r, relay_room *room);
/** A message on meridian.presence.<room> or meridian.presence.hb. */
void relay_presence_on_nats(relay *r, natsMsg *msg);
/** A snapshot reply for `room` arrived on the inbox. */
void relay_presence_snapshot_reply(relay *r, const char *room, natsMsg *msg);
/** Append the room's members across relays as a JSON array. */
void relay_presence_members(relay_room *room, mr_buf *b);
/** Heartbeat and expiry; call often (every 100 ms). */
void relay_presence_tick(relay *r);
/** After a NATS reconnect: announce every local member again and re-read snapshots. */
void relay_presence_reannounce(relay *r);
/** Leaving for good: others drop this relay's members at once. */
void relay_presence_bye(relay *r);

#endif
