/*
 * Region streams: every region has one JetStream stream, MERIDIAN_<REGION>,
 * capturing meridian.msg.<region>.>. One party owns its configuration: the
 * region's relays, which publish into it, create it and keep it at their
 * configured limits (mr_stream_ensure). Everyone else only reads it and
 * compares (mr_stream_check): the control plane refuses a stream that
 * differs from what its configuration expects instead of rewriting it.
 */
#ifndef MR_STREAM_H
#define MR_STREAM_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

/** Longest stream name mr_stream_name() produces, NUL included. */
#define MR_STREAM_NAME_MAX 160

/**
 * The durable consumer every control plane reads each region stream with
 * (the NATS permissions of mr_nats_perms.c name it).
 */
#define MR_STREAM_CONSUMER "meridian-control"

typedef struct mr_stream_config {
    int64_t max_age_s;          /* 0 = unlimited; messages older than this are removed */
    int64_t max_bytes;          /* 0 = unlimited (-1 for the server); oldest removed first */
    int64_t duplicate_window_s; /* Nats-Msg-Id de-duplication window */
    int replicas;               /* 1 on single servers */
    const char *placement;      /* cluster name, or NULL/"" for no placement */
} mr_stream_config;

/** Defaults: 7 days, 10 GiB, 2 minutes, 1 replica, no placement. */
void mr_stream_config_init(mr_stream_config *cfg);

/**
 * Expectations for mr_stream_check() with nothing expected: every member
 * "unset" (-1 for the sizes and durations, 0 replicas, no placement).
 */
void mr_stream_config_unset(mr_stream_config *cfg);

/** "MERIDIAN_" + region upper-cased with '-' replaced by '_' (eu-west -> MERIDIAN_EU_WEST). */
void mr_stream_name(const char *region, char *out, size_t n);

/** "meridian.msg.<region>.>" */
void mr_stream_subjects(const char *region, char *out, size_t n);

/**
 * For the owner of the stream (the region's relays). Create the region's
 * stream, or update it to `cfg` when it exists with other limits; an update
 * is logged (warn) with every value it changes. Idempotent and safe to call
 * from several processes at once (a lost creation race is followed by an
 * update). Returns 0, or -1 with `err` filled.
 */
int mr_stream_ensure(jsCtx *js, const char *region, const mr_stream_config *cfg, char *err,
                     size_t errlen);

typedef enum {
    MR_STREAM_ERROR = -1,   /* could not ask (NATS or JetStream unavailable); `err` says why */
    MR_STREAM_OK = 0,       /* exists, and agrees with every expectation */
    MR_STREAM_ABSENT = 1,   /* does not exist (yet) */
    MR_STREAM_MISMATCH = 2, /* exists, but differs: `err` lists each difference */
} mr_stream_state;

/**
 * For everyone but the owner: read the region's stream and compare it with
 * `want` without changing anything. Members of `want` left unset (see
 * mr_stream_config_unset) are not compared; the fixed parts of a region
 * stream (its subjects, file storage, limits retention) always are. On
 * MISMATCH `err` reads like "max_age 604800 s (configured 3600 s),
 * replicas 3 (configured 1)".
 */
mr_stream_state mr_stream_check(jsCtx *js, const char *region, const mr_stream_config *want,
                                char *err, size_t errlen);

#endif
