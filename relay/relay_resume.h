/*
 * Joins: the `joined` reply once the room's subscriptions are confirmed,
 * and for a join with `since` (a resume) the history the member missed,
 * replayed as fast as the member reads it, then the live messages held
 * meanwhile.
 */
#ifndef RELAY_RESUME_H
#define RELAY_RESUME_H

#include "relay.h"
#include "relay_conn.h"

#include <jansson.h>
#include <stddef.h>

/** Register resume's per-member state with the rooms (once, after relay_rooms_init). */
void relay_resume_init(relay *r);
/**
 * Answer the join that made `m` a member: `joined` as soon as the room's
 * subscriptions are confirmed; with `since` >= 0, first fetch and replay the
 * history after it (live frames are held meanwhile). `id` is the join's
 * request id (may be NULL).
 */
void relay_resume_start(relay *r, relay_conn *c, relay_member *m, int64_t since, json_t *id);
/**
 * Answer a join with `rewind`: like a resume, from the seq before the
 * room's last `n` messages (at most resume.rewind_max; 0 is a plain join).
 */
void relay_resume_rewind(relay *r, relay_conn *c, relay_member *m, int64_t n, json_t *id);
/** The server confirmed `room`'s subscriptions: answer the joins that waited for it. */
void relay_resume_subscribed(relay *r, relay_room *room);
/**
 * The room's subscriptions cannot be confirmed: answer `m`'s join with the
 * error `unavailable` (the caller then removes the membership).
 */
void relay_resume_fail(relay *r, relay_member *m);
/**
 * `m` is leaving by request: a join it made that is not answered yet gets
 * its `joined` now (recovered=false for a resume), before the `left`.
 */
void relay_resume_leaving(relay *r, relay_member *m);
/** A history page `data` (`len` bytes) arrived for request `token`. */
void relay_resume_reply(relay *r, const char *token, const char *data, size_t len);
/** `c`'s queue drained: queue more of the history it is being sent (c->replays > 0). */
void relay_resume_pump(relay *r, relay_conn *c);
/** Handle page requests past their deadline (called periodically). */
void relay_resume_expire(relay *r);
/** Forget the request index (shutdown; resumes go with their memberships). */
void relay_resume_free_all(relay *r);

#endif
