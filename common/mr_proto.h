/*
 * The client protocol: JSON text frames over WebSocket (docs/protocol.md).
 * Parsing turns one frame into a typed mr_frame; serialisers build the
 * server's frames into an mr_buf.
 */
#ifndef MR_PROTO_H
#define MR_PROTO_H

#include "mr_buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MR_ROOM_MAX   128
#define MR_MID_MAX    64
#define MR_REQ_ID_MAX 64
#define MR_MSG_ID_LEN 32 /* hex characters */
/* Most msg_ids a join's `have` may name (each 35 bytes of JSON: 36 KB at most). */
#define MR_HAVE_MAX 1024

/* WebSocket close codes used by the relay (see docs/protocol.md). */
enum {
    MR_CLOSE_NORMAL = 1000,
    MR_CLOSE_GOING_AWAY = 1001,
    MR_CLOSE_UNSUPPORTED = 1003, /* binary frame */
    MR_CLOSE_POLICY = 1008,
    MR_CLOSE_TOO_BIG = 1009,
    MR_CLOSE_INTERNAL = 1011,
    MR_CLOSE_RESTART = 1012, /* drain: reconnect elsewhere */
    MR_CLOSE_AUTH_FAILED = 4001,
    MR_CLOSE_HELLO_TIMEOUT = 4002,
    MR_CLOSE_SLOW_CONSUMER = 4008,
    MR_CLOSE_PROTOCOL = 4009, /* too many invalid frames */
    MR_CLOSE_TOKEN_EXPIRED = 4010,
    MR_CLOSE_RATE_LIMIT = 4029
};

/* Error codes carried by error frames. Keep in step with mr_proto_error_name(). */
typedef enum {
    MR_ERR_BAD_JSON = 0,
    MR_ERR_BAD_FRAME,
    MR_ERR_UNKNOWN_TYPE,
    MR_ERR_NOT_AUTHENTICATED,
    MR_ERR_ALREADY_AUTHENTICATED,
    MR_ERR_AUTH_FAILED,
    MR_ERR_INVALID_ROOM,
    MR_ERR_FORBIDDEN,
    MR_ERR_NOT_JOINED,
    MR_ERR_TOO_MANY_ROOMS,
    MR_ERR_RATE_LIMITED,
    MR_ERR_UNAVAILABLE,
    MR_ERR_INTERNAL,
    MR_ERR_USER_MISMATCH, /* refresh: the token is for another user */
    MR_ERR_COUNT
} mr_error_code;

const char *mr_proto_error_name(mr_error_code code);
/** True when retrying the same request later may succeed. */
bool mr_proto_error_retryable(mr_error_code code);

typedef enum {
    MR_FRAME_HELLO,
    MR_FRAME_JOIN,
    MR_FRAME_LEAVE,
    MR_FRAME_PUBLISH,
    MR_FRAME_PRESENCE,
    MR_FRAME_PING,
    MR_FRAME_REFRESH, /* a new token for the session (issue 16) */
    MR_FRAME_SIGNAL   /* an ephemeral signal to a room (issue 16) */
} mr_frame_type;

/* Frames up to this size are copied into the frame itself rather than the heap. */
#define MR_FRAME_INLINE 512

/*
 * A parsed frame. Its strings are NUL-terminated and live in the frame (or
 * in `root`): they are valid until mr_frame_free.
 */
typedef struct mr_frame {
    mr_frame_type type;
    json_t *root;     /* the full parser's tree, or NULL (see mr_proto_parse) */
    json_t *id;       /* request id (string or integer) or NULL; owned by the frame */
    const char *room; /* join, leave, publish, presence, signal */
    size_t room_len;
    const char *token; /* hello, refresh */
    size_t token_len;
    const char *mid; /* publish: client message id, or NULL */
    size_t mid_len;
    const char *data; /* publish, signal payload: one JSON value, as text (not NUL-terminated) */
    size_t data_len;
    bool presence; /* join: receive presence events (default true) */
    bool no_echo;  /* hello: "echo":false, the connection's own publishes are not sent back */
    bool has_since;
    int64_t since; /* join: last seq seen */
    json_t *have;  /* join: msg_ids it got after `since` without their seq (array), or NULL */
    bool has_rewind;
    int64_t rewind;   /* join: the last N messages of the room (not with since) */
    char *text;       /* what the strings above point into: inline_text or the heap */
    size_t text_size; /* bytes of `text` (its NULs included), 0 when NULL */
    char inline_text[MR_FRAME_INLINE];
} mr_frame;

typedef struct mr_proto_err {
    mr_error_code code;
    char message[160];
    json_t *id; /* the request id when it could be read (borrowed from the frame), else NULL */
} mr_proto_err;

/**
 * Parse one text frame. Returns 0 and fills `f` (release with
 * mr_frame_free) or -1 and fills `err` (release with mr_proto_err_free).
 *
 * A frame that is plainly valid (mr_json_scan.h) is taken apart without a
 * tree and its payload kept as the client wrote it; anything else goes
 * through jansson, which decides and explains, and the payload is written
 * back compact. Both accept and refuse the same frames.
 */
int mr_proto_parse(const char *buf, size_t len, mr_frame *f, mr_proto_err *err);
void mr_frame_free(mr_frame *f);
/**
 * Copy `src` into `dst` for keeping beyond src's life (a publish held for a
 * backend hook): the text is copied and the strings in it point into the
 * copy; the tree and the id are shared by reference. Release with
 * mr_frame_free; `src` is unchanged.
 */
void mr_frame_copy(mr_frame *dst, const mr_frame *src);
void mr_proto_err_free(mr_proto_err *err);

/** A msg_id: MR_MSG_ID_LEN lowercase hex digits. */
bool mr_msg_id_valid(const char *s, size_t len);
/** Room names: 1..128 bytes of [A-Za-z0-9_-] (safe as a NATS subject token). */
bool mr_room_valid(const char *room, size_t len);
/** Bytes of a relay process's presence id, its NUL included (relay_presence.c). */
#define MR_INSTANCE_MAX 160
/**
 * A relay process's presence id as relay_presence_init makes it (region,
 * node id, 12 hex digits, joined by slashes): 1..MR_INSTANCE_MAX-1 bytes of
 * [A-Za-z0-9_/-], no NUL among the `len` bytes. Relays and control planes
 * both read these ids from NATS.
 */
bool mr_instance_valid(const char *s, size_t len);

/** Message identity: hex of the first 16 bytes of SHA-256(room NUL sender NUL mid). */
void mr_msg_id(const char *room, size_t room_len, const char *sender, const char *mid,
               size_t mid_len, char out[MR_MSG_ID_LEN + 1]);

/* Serialisers. `id` is the request id to echo (may be NULL). Each appends one frame. */
void mr_proto_error_frame(mr_buf *b, json_t *id, mr_error_code code, const char *message);
void mr_proto_pong(mr_buf *b, json_t *id, int64_t now_ms);
void mr_proto_joined(mr_buf *b, json_t *id, const char *room);
void mr_proto_left(mr_buf *b, json_t *id, const char *room);
void mr_proto_ack(mr_buf *b, json_t *id, const char *room, const char *msg_id, const char *mid,
                  size_t mid_len);

/** Fields of a `message` frame (also the envelope sent over NATS). */
typedef struct mr_envelope {
    const char *room;
    size_t room_len;
    const char *msg_id;
    const char *from;
    const char *mid;
    size_t mid_len;
    const char *region;
    const char *node;
    int64_t ts_ms;
    json_t *data;          /* the payload, or NULL for data_json */
    const char *data_json; /* ... the payload as JSON text (mr_frame's data) */
    size_t data_json_len;
} mr_envelope;

void mr_proto_message(mr_buf *b, const mr_envelope *e);

#endif
