/*
 * The agent's state, shared by the modules that make up the agent (one job
 * each, called only downwards):
 *
 *   hc_agent.c    life cycle: build, start the timers and the cluster, stop, free
 *   hc_config.c   the configuration file
 *   hc_tick.c     the tick: observations out and in, quorum, the DNS plan
 *   hc_writer.c   DNS writing (lease holder only) and verification
 *   hc_drain.c    drain flags and the calls to the relays' admin API
 *   hc_round.c    probe rounds against every endpoint, per-endpoint state
 *   hc_events.c   the timeline shown on the dashboard
 *
 * hc_status.c (HTTP) reads this state; hc_main.c attaches it. Everything here
 * runs on the agent's libevent loop except where a field says otherwise.
 */
#ifndef HC_AGENT_INTERNAL_H
#define HC_AGENT_INTERNAL_H

#include "hc_agent.h"
#include "hc_cluster.h"
#include "hc_dns.h"
#include "hc_events.h"
#include "hc_fsm.h"
#include "hc_probe.h"
#include "hc_quorum.h"
#include "mr_config.h"
#include "mr_regions.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HC_HIST_LEN 240 /* latency samples kept per endpoint (2 min at 500 ms) */
#define HC_N_KINDS  3   /* probe kinds per round: tcp, readyz, ws */
/* A write starts only with its time-out plus this much lease left. */
#define HC_WRITE_SLACK_MS 100

typedef struct hc_endpoint {
    hc_agent *agent;
    const mr_relay_ep *ep;
    size_t index; /* global relay index */
    char host[256];
    char path[256];
    hc_probe_target target;
    hc_fsm fsm;
    bool busy;
    int step;
    int64_t round_t0_us;
    double lat[HC_N_KINDS]; /* last latency per kind, ms; -1 unknown */
    char last_error[256];
    double cert_days_left;
    int64_t hist_ts[HC_HIST_LEN];
    float hist_ms[HC_HIST_LEN]; /* < 0: failed round */
    size_t hist_n, hist_head;
} hc_endpoint;

struct hc_agent {
    struct event_base *base;
    struct evhttp *http;
    int port;
    char *listen;
    char *agent_id;
    char *region_name;
    char *api_key;
    int log_level;  /* mr_log_level from log_level; applied by hc_main.c */
    int log_format; /* mr_log_format from log_format */
    char *probe_secret;
    char *token;
    int64_t token_renew_us;
    int interval_ms, timeout_ms, publish_ms, cert_warn_days;
    bool tls_verify;
    hc_fsm_conf fsm_conf;
    int return_settle_ms; /* a plan that only adds addresses waits this long unchanged */
    int live_ms, lease_ttl_ms, lease_renew_ms, lease_margin_ms;
    char *lease_id; /* this agent among the lease's members */
    char **members; /* the lease's members */
    size_t n_members;
    char *state_path; /* lease term, vote and drain flags */
    int verify_timeout_ms;
    bool verify_enabled;
    char *relay_api_key; /* relays' admin_api_key, "" when none */
    mr_nats_conf nats;   /* URLs, nkey or user+password, TLS (mr_nats_opts.h) */
    json_t *dns_conf;
    mr_cfg cfg;

    mr_regions *regions;
    size_t n_items; /* regions then relays */
    hc_endpoint *eps;
    char **verify_source; /* per region: IPv4 source for verification, or NULL */

    struct event *probe_timer, *tick_timer;
    hc_cluster *cluster;
    hc_dns_provider *provider;

    pthread_mutex_t mu; /* guards quorum and remote_write_* (NATS thread) */
    hc_quorum quorum;
    hc_state verdict[HC_QUORUM_MAX_ITEMS]; /* loop's copy */
    int64_t verdict_since[HC_QUORUM_MAX_ITEMS];

    char last_votes[HC_QUORUM_MAX_ITEMS + 1];
    int64_t last_publish_us;

    /* DNS writing. */
    bool have_desired, have_written, writing;
    hc_dns_plan desired, written, in_flight;
    int64_t decision_us; /* when `desired` last changed (monotonic) */
    int64_t decision_wall_ms;
    int64_t next_attempt_us;
    int backoff_ms;
    int64_t writes_ok, writes_failed;
    char last_write_error[300];
    int64_t last_write_wall_ms;
    int64_t last_write_ok_wall_ms; /* shared with the other agents in our view */
    char last_write_text[600];
    /* The latest write another agent told us about (under mu until the tick
     * moves it into the timeline). */
    int64_t remote_write_ts;
    bool remote_write_pending;
    char remote_write_agent[HC_AGENT_ID_MAX];
    char remote_write_text[600];
    bool was_holder;
    uint64_t written_term;   /* the lease term `written` was written in */
    uint64_t in_flight_term; /* the lease term of the write in flight */

    /* The lease as this agent knows it (under mu: observations update it). */
    char holder_id[HC_AGENT_ID_MAX]; /* "" when no holder is known */
    uint64_t holder_term;
    int64_t holder_since_wall_ms;
    int64_t holder_seen_us; /* when a holder was last known (monotonic) */
    int64_t started_us;
    bool force_publish; /* publish the view on the next tick (a drain changed) */
    /* Verification of the last write. */
    struct hc_verify_ctx *verifies;
    bool stopping;
    int verifies_pending;
    int verify_gen;
    double last_served_s;
    bool last_verify_ok;
    char last_verify_detail[300];

    /* Drain. */
    bool *drained;
    bool *drain_notified;
    int64_t *drain_next_us;
    int *drain_pending;
    bool *drain_refusal_shown;
    bool *relays_drained;    /* this agent asked the region's relays to drain */
    int relay_calls_pending; /* every drain/undrain call in flight (for shutdown) */

    hc_events events;
};

#endif
