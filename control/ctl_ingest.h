/*
 * Persistence of one region's stream: a durable pull consumer whose batches
 * are written to PostgreSQL in one transaction (sequencing happens there),
 * then announced on meridian.commit.<room>, then acknowledged.
 */
#ifndef CTL_INGEST_H
#define CTL_INGEST_H

#include "ctl_config.h"
#include "mr_buf.h"
#include "mr_stream.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

/** Durable consumer name shared by every control instance on each region stream. */
#define CTL_INGEST_DURABLE MR_STREAM_CONSUMER

typedef struct ctl_ingest ctl_ingest;

/**
 * Start the ingest thread for `region`. `maintain` makes this thread also
 * run partition maintenance (one thread per process does). `cfg` and `nc`
 * must outlive the ingest.
 */
ctl_ingest *ctl_ingest_start(const ctl_config *cfg, natsConnection *nc, const char *region,
                             bool maintain);

/** Ask the thread to finish its current batch, join it and free everything. */
void ctl_ingest_stop(ctl_ingest *in);

/** True once the stream is ensured, the consumer bound and the database connected. */
bool ctl_ingest_ready(ctl_ingest *in);

/** True while every lane of this ingest has a PostgreSQL session. */
bool ctl_ingest_db_connected(ctl_ingest *in);

/** Append "\"<region>\":{...}" describing the state (for /readyz). Thread-safe. */
void ctl_ingest_describe(ctl_ingest *in, mr_buf *out);

/** Register the ingest metrics (once per process, before starting). */
void ctl_ingest_metrics_register(void);

/**
 * Register the per-region consumer lag and stream gauges of `ingest[0..n)`
 * (once, right after starting them; the fetchers fill them in every few
 * seconds). The gauges live as long as the process.
 */
void ctl_ingest_lag_metrics_register(ctl_ingest *const *ingest, size_t n);

#endif
