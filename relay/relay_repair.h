/*
 * Commit repair: commits travel on core NATS and can be lost (a region's
 * NATS dying right after its control plane published them). Relays notice
 * gaps in a room's seqs and messages left without a commit, and fetch the
 * missing commits from history.
 */
#ifndef RELAY_REPAIR_H
#define RELAY_REPAIR_H

#include "relay.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Register repair's per-room state (once, after relay_rooms_init). */
void relay_repair_init(relay *r);
/** The room was just created (and subscribed) on this relay: learn its current last seq. */
void relay_repair_room_created(relay *r, relay_room *room);
/**
 * A commit was delivered (relay_deliver_commit): note when a seq is missing
 * below it, to read history if it stays missing (commits may arrive out of
 * seq order, so not at once).
 */
void relay_repair_commit(relay *r, relay_room *room);
/** A history reply `data` (`len` bytes) for a repair or a baseline arrived for room `room`. */
void relay_repair_reply(relay *r, const char *room, const char *data, size_t len);
/** Periodic: repair rooms whose messages have waited too long for their commits. */
void relay_repair_tick(relay *r);

#endif
