/*
 * mr_client: a small C client for the Meridian relay protocol
 * (docs/protocol.md) over libwebsockets.
 *
 * Threading: every client owns one lws context and one service thread of its
 * own. All functions below are thread-safe and may be called from any
 * thread, callbacks included, except mrc_client_free(), which must not be
 * called from a callback. Callbacks run on the client's service thread, one
 * at a time, in the order frames arrive; they should return quickly because
 * the connection is not serviced while they run. Pointers handed to a
 * callback are valid only until it returns.
 *
 * Errors follow one rule: a function that returns a negative MRC_E* code did
 * nothing, and no callback will be called for it.
 */
#ifndef MRC_CLIENT_H
#define MRC_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes returned by the functions below (always negative). */
enum {
    MRC_OK = 0,
    MRC_EINVAL = -1,  /* bad argument: URL, room name, mid, JSON */
    MRC_ECLOSED = -2, /* the connection is closed or closing */
    MRC_ETLS = -3,    /* TLS setup failed (CA file unreadable...) */
    MRC_ESYS = -4     /* the lws context or the service thread could not be created */
};

/*
 * Close codes the client reports through close_cb besides the relay's own
 * (docs/protocol.md). Like browsers, it reports 1006 when the connection
 * ended without a close frame, and 1015 when the TLS handshake failed.
 */
#define MRC_CLOSE_ABNORMAL   1006
#define MRC_CLOSE_TLS_FAILED 1015

typedef struct mrc_client mrc_client;

/** A `message` frame. Strings are NUL-terminated; absent ones are "" (never NULL). */
typedef struct mrc_message {
    const char *room;
    const char *msg_id;
    const char *from;
    const char *mid;
    const char *region;
    const char *node;
    int64_t ts_ms;
    int64_t seq;       /* the history sequence when the frame carries one, else -1 */
    json_t *data;      /* the payload (borrowed) */
    const char *frame; /* the whole frame as received */
    size_t frame_len;
} mrc_message;

/** A `presence` frame: either a reply (members set, event NULL) or an event. */
typedef struct mrc_presence {
    int64_t id; /* request id of a reply, or -1 for an event */
    const char *room;
    const char *event; /* "join" / "leave" for events, NULL for replies */
    const char *user;  /* the user of an event, NULL for replies */
    json_t *members;   /* reply: array of {"user","sessions"} (borrowed), NULL for events */
} mrc_presence;

/**
 * Callbacks; any may be NULL. `ud` is mrc_options.user_data. Request ids are
 * the values returned by mrc_join() and friends; frames without an id (or
 * with one this client did not send) report -1.
 */
typedef struct mrc_callbacks {
    /** The relay accepted the hello. `welcome` is the whole frame (borrowed). */
    void (*welcome_cb)(mrc_client *c, const char *user, json_t *welcome, void *ud);
    void (*joined_cb)(mrc_client *c, int64_t id, const char *room, void *ud);
    void (*left_cb)(mrc_client *c, int64_t id, const char *room, void *ud);
    void (*message_cb)(mrc_client *c, const mrc_message *m, void *ud);
    void (*ack_cb)(mrc_client *c, int64_t id, const char *room, const char *mid, const char *msg_id,
                   void *ud);
    /** An `error` frame. `code` is the protocol's code ("rate_limited"...). */
    void (*error_cb)(mrc_client *c, int64_t id, const char *code, const char *message,
                     bool retryable, void *ud);
    void (*presence_cb)(mrc_client *c, const mrc_presence *p, void *ud);
    /** The relay is draining: `urls` (borrowed array, may be empty) says where to go. */
    void (*reconnect_cb)(mrc_client *c, const char *reason, json_t *urls, void *ud);
    /** Every frame whose type has no callback above (pong, commit, future types). */
    void (*frame_cb)(mrc_client *c, const char *type, json_t *frame, void *ud);
    /**
     * Called exactly once per successful mrc_client_new(), last of all: the
     * connection failed or closed. Requests still queued are dropped. `code` is the WebSocket close
     * code (1000 normal, 4001 auth failed... or MRC_CLOSE_*); `reason` a readable text, never NULL.
     */
    void (*close_cb)(mrc_client *c, int code, const char *reason, void *ud);
} mrc_callbacks;

typedef struct mrc_options {
    const char *url;       /* ws://host:port/path or wss://... (required) */
    const char *token;     /* JWT sent in hello (required) */
    const char *ca_file;   /* wss: PEM file of trusted CAs instead of the system store */
    bool insecure;         /* wss: accept any certificate (self-signed test certs) */
    int connect_timeout_s; /* TCP + TLS + upgrade; 0 means 10 */
    bool no_echo;          /* hello "echo":false: the relay does not send back our own messages */
    mrc_callbacks cb;
    void *user_data;
} mrc_options;

/**
 * Start connecting. On success returns MRC_OK with *out set, and the client
 * sends hello by itself as soon as the socket is open; frames requested
 * before `welcome` are queued and sent after it, in order. Returns MRC_EINVAL
 * for a bad URL or missing token (with a description in `err` when given),
 * MRC_ETLS or MRC_ESYS otherwise. A refused connection is reported through
 * close_cb, not here.
 */
int mrc_client_new(const mrc_options *opts, mrc_client **out, char *err, size_t errlen);

/* Requests. Each returns the request id (> 0) it put in the frame, or a negative MRC_E*. */

/** Join `room`; `since` >= 0 asks for history after that seq, -1 for none. */
int64_t mrc_join(mrc_client *c, const char *room, int64_t since);
/**
 * Join `room` asking for its last `n` messages (`rewind`, n >= 0; the relay
 * caps n at its resume.rewind_max): they follow `joined` as messages with seq.
 */
int64_t mrc_join_rewind(mrc_client *c, const char *room, int64_t n);
int64_t mrc_leave(mrc_client *c, const char *room);
/**
 * Publish `data` (any JSON value; the client takes no reference) to a joined
 * room. `mid` is the client message id (1..64 printable ASCII bytes, no
 * spaces); pass NULL to let the relay choose one. Reuse the mid when retrying.
 */
int64_t mrc_publish(mrc_client *c, const char *room, const char *mid, json_t *data);
/** Like mrc_publish() with the payload given as JSON text. */
int64_t mrc_publish_text(mrc_client *c, const char *room, const char *mid, const char *json_text);
int64_t mrc_presence_query(mrc_client *c, const char *room);
/**
 * Send an ephemeral signal (typing, cursor...) with `data` (any JSON value;
 * the client takes no reference) to a joined room. Nothing answers it on
 * success (no ack); errors come to error_cb with the returned id. The room's
 * other members get a `signal` frame (frame_cb).
 */
int64_t mrc_signal(mrc_client *c, const char *room, json_t *data);
/**
 * Hand the session a new token (same user): the relay answers `refreshed`
 * (frame_cb), or an error (`auth_failed`, `user_mismatch`) after which the
 * session keeps its current token. The relay sends `refresh_due` (frame_cb)
 * before the current one expires.
 */
int64_t mrc_refresh(mrc_client *c, const char *token);
int64_t mrc_ping(mrc_client *c);

/** Begin a normal close (1000). close_cb follows. Safe to call more than once. */
void mrc_close(mrc_client *c);
/**
 * Close if still open, wait (bounded) for the service thread to finish, and
 * free everything. close_cb has been called when this returns.
 */
void mrc_client_free(mrc_client *c);

/** A short English text for an MRC_E* code. */
const char *mrc_strerror(int err);
/** A short English text for a WebSocket close code (docs/protocol.md). */
const char *mrc_close_reason(int code);
/** True when `mid` is a valid client message id. */
bool mrc_mid_valid(const char *mid);

#endif
