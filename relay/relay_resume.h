/*
 * Resume: a member joining with `since` gets the history it missed from the
 * control plane, then the live messages held while history was fetched.
 */
#ifndef RELAY_RESUME_H
#define RELAY_RESUME_H

#include "relay.h"
#include "relay_conn.h"

#include <jansson.h>
#include <stddef.h>

/**
 * Start recovering `m` (already subscribed) from `since`: live frames are
 * held, history is requested, and `joined` is sent when it arrives (or when
 * the request times out, with recovered=false). `id` is the join's request id.
 */
void relay_resume_start(relay *r, relay_conn *c, relay_member *m, int64_t since, json_t *id);
/** The history reply `data` (`len` bytes) arrived for request `token`. */
void relay_resume_reply(relay *r, const char *token, const char *data, size_t len);
/** Finish requests past their deadline (called periodically). */
void relay_resume_expire(relay *r);
/** Forget every pending request (shutdown). */
void relay_resume_free_all(relay *r);

#endif
