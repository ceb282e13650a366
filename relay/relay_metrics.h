/* The relay's Prometheus metrics (names documented in docs/relay.md). */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include "mr_metrics.h"
#include "mr_proto.h"

typedef struct relay_metrics {
    mr_metric connections, rooms, members, nats_connected, draining;
    mr_metric joins;
    mr_metric connections_total, frames_in, frames_out, bytes_in, bytes_out;
    mr_metric publishes, acks, deliveries, duplicates_dropped, commits, recovered_from_commit;
    mr_metric commits_repeated, awaiting_forgotten;
    mr_metric publish_retries, publish_failures, resumes, resumes_incomplete;
    mr_metric commit_repairs, commits_repaired;
    mr_metric slow_consumer_closes, auth_failures, rejected_upgrades, nats_rejected;
    mr_metric errors[MR_ERR_COUNT];
    mr_metric publish_ack_latency;
    /* Issue 16: rewind on join, token refresh, ephemeral signals. */
    mr_metric rewinds, refreshes, refresh_failures, signals, signals_delivered;
    /* Backend hooks (relay_hook.c). */
    mr_metric hook_calls, hook_denials, hook_replacements, hook_failures, hook_cached;
    mr_metric hook_latency;
} relay_metrics;

extern relay_metrics relay_m;

/** Register every relay metric with the process registry (once). */
void relay_metrics_register(void);

#endif
