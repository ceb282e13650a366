/*
 * Ephemeral signals (docs/protocol.md, "Signals"): typing indicators,
 * cursors, "seen" marks. A `signal` reaches the room's other members in
 * every region over core NATS only: no JetStream, no PostgreSQL, no seq, no
 * history, no ack.
 */
#ifndef RELAY_SIGNAL_H
#define RELAY_SIGNAL_H

#include "mr_proto.h"
#include "relay.h"
#include "relay_conn.h"

#include <stddef.h>

/** Register the per-room subscription slot (once, after relay_rooms_init). */
void relay_signal_init(relay *r);
/**
 * Subscribe `room` (new on this relay) to every region's signals,
 * meridian.sig.*.<room>, before its subscriptions are confirmed (the same
 * confirmation covers it). Returns 0, or -1 when NATS refuses.
 */
int relay_signal_room_created(relay *r, relay_room *room);
/**
 * A `signal` frame from member `c`: checked (membership, its own rate limit,
 * signals.max_bytes), delivered to the room's other members here and
 * published to meridian.sig.<region>.<room> for the other relays. Errors
 * answer the frame; success sends nothing back.
 */
void relay_signal(relay *r, relay_conn *c, const mr_frame *f);
/**
 * A signal from another relay, already checked (relay_inbound.c): `frame`
 * (`len` bytes) is the client frame, delivered to `room`'s members as it is.
 */
void relay_signal_deliver(relay *r, relay_room *room, const char *frame, size_t len);

#endif
