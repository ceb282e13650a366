/*
 * History: reading a room's messages by seq, shared by the NATS
 * request-reply service (meridian.history.<room>, used by relays on resume)
 * and the HTTP API.
 */
#ifndef CTL_HISTORY_H
#define CTL_HISTORY_H

#include "ctl_pool.h"
#include "mr_buf.h"
#include "mr_proto.h"

#include <nats/nats.h>
#include <stdint.h>

#define CTL_HISTORY_LIMIT_MAX     1000
#define CTL_HISTORY_LIMIT_DEFAULT 100
/*
 * The largest page in bytes, whatever the limit: 1,000 messages of up to
 * 64 KiB would be 64 MB in one reply. NATS replies are bounded further by
 * the connection's max_payload.
 */
#define CTL_HISTORY_PAGE_MAX_BYTES (4u << 20)

typedef struct ctl_history_query {
    char room[MR_ROOM_MAX + 1];
    int64_t after;    /* seq > after */
    int64_t before;   /* seq < before, or 0 for no upper bound */
    int limit;        /* 1..CTL_HISTORY_LIMIT_MAX */
    size_t max_bytes; /* the whole reply; 0 or above CTL_HISTORY_PAGE_MAX_BYTES means that cap */
} ctl_history_query;

typedef enum {
    CTL_HIST_OK = 0,
    CTL_HIST_BAD_REQUEST,
    CTL_HIST_UNAVAILABLE,
    CTL_HIST_INTERNAL
} ctl_history_status;

/** The error code string of the JSON error body ("bad_request"...). */
const char *ctl_history_status_code(ctl_history_status s);

/**
 * The message clients get for CTL_HIST_UNAVAILABLE and CTL_HIST_INTERNAL:
 * fixed text, because the detail (PostgreSQL's own error) is for the
 * control log, not for clients.
 */
const char *ctl_history_status_message(ctl_history_status s);

/** Append {"error":{"code":...,"message":...}}. */
void ctl_history_error_json(mr_buf *out, const char *code, const char *message);

/**
 * Parse a NATS request body {"after":N,"limit":N,"before":N} (every member
 * optional). Returns 0, or -1 with `err` set.
 */
int ctl_history_parse_request(const char *data, size_t len, ctl_history_query *q, char *err,
                              size_t errlen);

/**
 * Run the query on `db` (NULL means unavailable) and append the reply
 * {"room":...,"messages":[...],"more":...,"last_seq":N}. The page holds at
 * most q->limit messages and fits in q->max_bytes, but always holds at
 * least one message when there is one; "more" is true when messages were
 * left out for either reason. On failure appends nothing and returns the
 * status, with the detail in `err` (logged here; not for clients).
 * CTL_HIST_UNAVAILABLE with ctl_db_lost(db) means the session died.
 */
ctl_history_status ctl_history_run(PGconn *db, const ctl_history_query *q, mr_buf *out, char *err,
                                   size_t errlen);

typedef struct ctl_history_service ctl_history_service;

/** Subscribe to meridian.history.* (queue group "meridian-control"), answering through `pool`. */
ctl_history_service *ctl_history_service_start(natsConnection *nc, ctl_pool *pool, char *err,
                                               size_t errlen);
void ctl_history_service_stop(ctl_history_service *s);

void ctl_history_metrics_register(void);

#endif
