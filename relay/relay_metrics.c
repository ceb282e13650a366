/* Relay metric definitions. Error counters carry the protocol error code as a label. */
#include "relay_metrics.h"

#include <stdio.h>

relay_metrics relay_m = {
    .connections = MR_GAUGE("meridian_relay_connections", "Open client WebSocket connections."),
    .rooms = MR_GAUGE("meridian_relay_rooms", "Rooms with at least one member on this relay."),
    .members = MR_GAUGE("meridian_relay_members",
                        "Room memberships of this relay's connections (its share of presence)."),
    .joins = MR_COUNTER("meridian_relay_joins_total", "Room joins accepted (memberships created)."),
    .nats_connected =
        MR_GAUGE("meridian_relay_nats_connected", "1 when the NATS connection is up."),
    .draining = MR_GAUGE("meridian_relay_draining", "1 while the relay drains."),
    .connections_total =
        MR_COUNTER("meridian_relay_connections_total", "Client connections accepted."),
    .frames_in = MR_COUNTER("meridian_relay_frames_in_total", "Frames received from clients."),
    .frames_out = MR_COUNTER("meridian_relay_frames_out_total", "Frames written to clients."),
    .bytes_in = MR_COUNTER("meridian_relay_bytes_in_total", "Payload bytes received from clients."),
    .bytes_out = MR_COUNTER("meridian_relay_bytes_out_total", "Payload bytes written to clients."),
    .publishes = MR_COUNTER("meridian_relay_publishes_total", "Publishes accepted from clients."),
    .acks = MR_COUNTER("meridian_relay_acks_total", "Publish acks sent to clients."),
    .deliveries = MR_COUNTER("meridian_relay_deliveries_total", "Messages queued to members."),
    .duplicates_dropped = MR_COUNTER("meridian_relay_duplicates_dropped_total",
                                     "Fast-path messages dropped as duplicates by identity."),
    .commits = MR_COUNTER("meridian_relay_commits_total", "Commit frames fanned out."),
    .recovered_from_commit =
        MR_COUNTER("meridian_relay_delivered_from_commit_total",
                   "Messages first delivered from their commit (fast path missed)."),
    .commits_repeated =
        MR_COUNTER("meridian_relay_commits_repeated_total",
                   "Commits of a seq already delivered here (republished, repair pages), dropped."),
    .awaiting_forgotten = MR_COUNTER(
        "meridian_relay_awaiting_forgotten_total",
        "Fast-path messages left to their commit: the room waited for too many commits."),
    .publish_retries = MR_COUNTER("meridian_relay_publish_retries_total",
                                  "JetStream publishes retried after a timeout."),
    .publish_failures = MR_COUNTER("meridian_relay_publish_failures_total",
                                   "Publishes answered with unavailable after the retry budget."),
    .resumes = MR_COUNTER("meridian_relay_resumes_total", "Joins with since (history fetched)."),
    .resumes_incomplete = MR_COUNTER("meridian_relay_resumes_incomplete_total",
                                     "Resumes answered with recovered=false."),
    .commit_repairs = MR_COUNTER("meridian_relay_commit_repairs_total",
                                 "History fetches for commits that never arrived."),
    .commits_repaired = MR_COUNTER("meridian_relay_commits_repaired_total",
                                   "Commits delivered from history after being lost."),
    .slow_consumer_closes = MR_COUNTER("meridian_relay_slow_consumer_closes_total",
                                       "Connections closed because their outbound queue was full."),
    .auth_failures =
        MR_COUNTER("meridian_relay_auth_failures_total", "Hello frames with a bad token."),
    .rejected_upgrades = MR_COUNTER("meridian_relay_rejected_upgrades_total",
                                    "WebSocket upgrades refused (origin, per-IP limit, draining)."),
    .nats_rejected =
        MR_COUNTER("meridian_relay_nats_rejected_total",
                   "Messages from NATS dropped as malformed (bad subject, id or payload)."),
    .publish_ack_latency =
        MR_HISTOGRAM("meridian_relay_publish_ack_seconds", "Time from a publish frame to its ack.",
                     mr_latency_buckets, 16),
    .rewinds = MR_COUNTER("meridian_relay_rewinds_total",
                          "Joins with rewind (also counted in meridian_relay_resumes_total)."),
    .refreshes = MR_COUNTER("meridian_relay_refreshes_total", "Tokens refreshed in a session."),
    .refresh_failures = MR_COUNTER("meridian_relay_refresh_failures_total",
                                   "Refresh frames refused (bad token, other user)."),
    .signals = MR_COUNTER("meridian_relay_signals_total", "Signals accepted from clients."),
    .signals_delivered = MR_COUNTER("meridian_relay_signals_delivered_total",
                                    "Signals queued to members (one per member)."),
    .hook_calls = MR_COUNTER("meridian_relay_hook_calls_total",
                             "Requests sent to the app's backend by join and publish hooks."),
    .hook_denials =
        MR_COUNTER("meridian_relay_hook_denials_total", "Joins and publishes the backend refused."),
    .hook_replacements = MR_COUNTER("meridian_relay_hook_replacements_total",
                                    "Publishes whose data the backend replaced."),
    .hook_failures = MR_COUNTER(
        "meridian_relay_hook_failures_total",
        "Hook requests without a usable answer (time-out, connection, status, bad or large "
        "answer); the rule's on_failure decided."),
    .hook_cached = MR_COUNTER("meridian_relay_hook_cached_total",
                              "Publishes decided by the remembered answer for their msg_id."),
    .hook_latency = MR_HISTOGRAM("meridian_relay_hook_seconds",
                                 "Time from a hook request to the backend's answer (or failure).",
                                 mr_latency_buckets, 16),
};

void relay_metrics_register(void)
{
    static char labels[MR_ERR_COUNT][48];
    mr_metric *plain[] = {&relay_m.connections,
                          &relay_m.rooms,
                          &relay_m.members,
                          &relay_m.joins,
                          &relay_m.nats_connected,
                          &relay_m.draining,
                          &relay_m.connections_total,
                          &relay_m.frames_in,
                          &relay_m.frames_out,
                          &relay_m.bytes_in,
                          &relay_m.bytes_out,
                          &relay_m.publishes,
                          &relay_m.acks,
                          &relay_m.deliveries,
                          &relay_m.duplicates_dropped,
                          &relay_m.commits,
                          &relay_m.recovered_from_commit,
                          &relay_m.commits_repeated,
                          &relay_m.awaiting_forgotten,
                          &relay_m.publish_retries,
                          &relay_m.publish_failures,
                          &relay_m.resumes,
                          &relay_m.resumes_incomplete,
                          &relay_m.commit_repairs,
                          &relay_m.commits_repaired,
                          &relay_m.slow_consumer_closes,
                          &relay_m.auth_failures,
                          &relay_m.rejected_upgrades,
                          &relay_m.nats_rejected,
                          &relay_m.hook_calls,
                          &relay_m.hook_denials,
                          &relay_m.hook_replacements,
                          &relay_m.hook_failures,
                          &relay_m.hook_cached};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        mr_metric_register(plain[i]);
    for (int i = 0; i < MR_ERR_COUNT; i++) {
        snprintf(labels[i], sizeof labels[i], "code=\"%s\"", mr_proto_error_name((mr_error_code)i));
        relay_m.errors[i].name = "meridian_relay_errors_total";
        relay_m.errors[i].help = "Error frames sent, by code.";
        relay_m.errors[i].labels = labels[i];
        relay_m.errors[i].kind = MR_METRIC_COUNTER;
        mr_metric_register(&relay_m.errors[i]);
    }
    mr_metric_register(&relay_m.publish_ack_latency);
    mr_metric *app[] = {&relay_m.rewinds, &relay_m.refreshes, &relay_m.refresh_failures,
                        &relay_m.signals, &relay_m.signals_delivered};
    for (size_t i = 0; i < sizeof app / sizeof app[0]; i++)
        mr_metric_register(app[i]);
    mr_metric_register(&relay_m.hook_latency);
}
