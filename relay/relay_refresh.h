/*
 * Token refresh within a session (docs/protocol.md, "Token refresh"): a
 * `refresh` frame replaces the session's token without reconnecting, and
 * the relay hints with `refresh_due` before the token expires.
 */
#ifndef RELAY_REFRESH_H
#define RELAY_REFRESH_H

#include "mr_proto.h"
#include "relay.h"
#include "relay_conn.h"

#include <stdint.h>

/**
 * Handle a `refresh` frame of authenticated `c`. The new token must be valid
 * and name the session's user: then the session takes its expiry and rooms
 * claim, the hint is re-armed, `refreshed` is sent and 0 is returned (the
 * caller then ends the memberships the new claim no longer allows, and
 * re-arms the session timer). Otherwise an error frame answers it
 * (`auth_failed`, or `user_mismatch` for another user), the session keeps
 * its current token, and -1 is returned.
 */
int relay_refresh(relay *r, relay_conn *c, const mr_frame *f);
/**
 * When (seconds since the epoch) `c` is due its `refresh_due` hint: auth.
 * refresh_hint_s before the expiry, or half the token's remaining life when
 * that is shorter; INT64_MAX when the hint was sent or hints are off.
 */
int64_t relay_refresh_due_at(const relay *r, const relay_conn *c);
/** Send `refresh_due` to `c` (once per token). */
void relay_refresh_hint(relay *r, relay_conn *c);

#endif
