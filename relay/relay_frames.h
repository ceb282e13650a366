/*
 * Every frame the relay sends to a client, in the order docs/protocol.md
 * lists them. Each appends one frame to an mr_buf; nothing here sends, so
 * callers choose between one connection (relay_conn_send_buf) and a shared
 * frame for many members (relay_out_new). `id` is the request id to echo, or
 * NULL.
 */
#ifndef RELAY_FRAMES_H
#define RELAY_FRAMES_H

#include "mr_buf.h"
#include "mr_proto.h"
#include "relay.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/** `welcome`: the session's identity, limits and fallback URLs (relay_frame_urls). */
void relay_frame_welcome(mr_buf *b, const relay *r, json_t *id, const char *sid, const char *user);
/** `joined` for a join without `since`. */
void relay_frame_joined(mr_buf *b, json_t *id, const char *room);

/** What a resume found: the fields of `joined` after a join with `since`. */
typedef struct relay_resume_result {
    bool ok;        /* history answered; else `reason` says why not */
    bool recovered; /* everything after `since` is in the history sent */
    size_t count;   /* history messages sent after `joined` */
    int64_t since, through;
    bool has_last_seq;
    int64_t last_seq;
    const char *reason;
} relay_resume_result;
/** `joined` after a join with `since`: recovered, history count and range, or the reason. */
void relay_frame_joined_resume(mr_buf *b, json_t *id, const char *room,
                               const relay_resume_result *res);
/** `left`. */
void relay_frame_left(mr_buf *b, json_t *id, const char *room);
/** `ack` of a publish. */
void relay_frame_ack(mr_buf *b, json_t *id, const char *room, const char *msg_id, const char *mid,
                     size_t mid_len);
/** `message`, as built by the publisher's relay (also its NATS payload). */
void relay_frame_message(mr_buf *b, const mr_envelope *env);
/** `message` with its seq, as the control plane stored it (history, commits). */
void relay_frame_stored_message(mr_buf *b, json_t *message);
/** `commit`: the seq of a message already delivered. */
void relay_frame_commit(mr_buf *b, const char *room, size_t room_len, const char *msg_id,
                        int64_t seq);
/** `presence` answer: `members` is the JSON array of {user, sessions}. */
void relay_frame_presence_members(mr_buf *b, json_t *id, const char *room, size_t room_len,
                                  const mr_buf *members);
/** `presence` event: `event` is "join", "leave" or "update". */
void relay_frame_presence_event(mr_buf *b, const char *room, size_t room_len, const char *event,
                                const char *user, long sessions);
/** `pong`. */
void relay_frame_pong(mr_buf *b, json_t *id, int64_t now_ms);
/** `reconnect` during a drain, with the URLs to move to. */
void relay_frame_reconnect(mr_buf *b, const relay *r);
/** `error`. */
void relay_frame_error(mr_buf *b, json_t *id, mr_error_code code, const char *message);
/** `refreshed`: the answer to a `refresh`, with the new token's expiry. */
void relay_frame_refreshed(mr_buf *b, json_t *id, int64_t exp);
/** `refresh_due`: the token expires at `exp`; send `refresh` before then. */
void relay_frame_refresh_due(mr_buf *b, int64_t exp);
/** `left` sent unasked: the membership ended for `reason` (a refreshed token's rooms claim). */
void relay_frame_left_because(mr_buf *b, const char *room, const char *reason);
/** `signal`: `data` is the payload's JSON text (`data_len` bytes); `node` this relay's instance. */
void relay_frame_signal(mr_buf *b, const char *room, const char *from, const char *region,
                        const char *node, const char *data, size_t data_len);
/**
 * The URLs clients should move to, as a JSON array: those of an admin drain
 * when it named some, else the configured fallback_urls.
 */
void relay_frame_urls(mr_buf *b, const relay *r);

#endif
