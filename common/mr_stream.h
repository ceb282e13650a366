/*
 * Region streams: every region has one JetStream stream, MERIDIAN_<REGION>,
 * capturing meridian.msg.<region>.>. The relay and the control plane both
 * ensure it exists with the configured limits before using it.
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

/** "MERIDIAN_" + region upper-cased with '-' replaced by '_' (eu-west -> MERIDIAN_EU_WEST). */
void mr_stream_name(const char *region, char *out, size_t n);

/** "meridian.msg.<region>.>" */
void mr_stream_subjects(const char *region, char *out, size_t n);

/**
 * Create the region's stream, or update it to `cfg` when it exists with other
 * limits. Idempotent and safe to call from several processes at once (a lost
 * creation race is followed by an update). Returns 0, or -1 with `err` filled.
 */
int mr_stream_ensure(jsCtx *js, const char *region, const mr_stream_config *cfg, char *err,
                     size_t errlen);

#endif
