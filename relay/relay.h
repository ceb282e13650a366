/*
 * The relay process state shared by its modules. Everything here belongs to
 * the lws service thread, except the fields marked atomic, which the admin
 * and signal threads read or set, and the drain request, which the admin
 * thread sets under drain_lock.
 *
 * The relay keeps no state in module-level variables; the one exception is
 * the metrics registry (relay_metrics.c), which is the process's by nature.
 */
#ifndef RELAY_H
#define RELAY_H

#include "mr_buf.h"
#include "mr_jwt.h"
#include "mr_map.h"
#include "relay_config.h"
#include "relay_nats.h"
#include "relay_room.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include <stdbool.h>

struct relay_conn;
struct relay_pubs;

#define RELAY_NODE_ID_MAX 160

/* Period of the lws thread's housekeeping: timeouts, heartbeats, repair, drain batches. */
#define RELAY_TICK_MS 100
/*
 * /readyz says not ready when housekeeping has not run for this long: the
 * service loop is stuck and serves nobody (a tick is normally 100 ms late at
 * most; a join may block it up to 2 s waiting for NATS).
 */
#define RELAY_LOOP_STALL_MS 5000

typedef struct relay {
    relay_config *cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    relay_nats *nats;
    relay_rooms rooms;
    mr_map ip_counts;         /* client IP -> (intptr_t) open WebSocket connections */
    struct relay_conn *conns; /* every open connection, for drain */
    size_t conn_count;
    mr_map conns_by_id; /* connection id (raw uint64_t) -> relay_conn* (late replies) */
    uint64_t next_conn_id;
    mr_jwt_params jwt;
    struct relay_pubs *pubs;   /* JetStream publishes waiting for their PubAck (relay_publish.c) */
    mr_map resumes;            /* decimal request id -> relay_resume* (history fetches) */
    struct relay_hooks *hooks; /* backend hooks, or NULL when none is configured */
    mr_map hook_waits;         /* decimal request id -> relay_held* (relay_client.c) */
    uint64_t next_request_id;
    char instance[RELAY_NODE_ID_MAX]; /* region/node/random: this process in presence */
    mr_map presence_nodes;            /* other relays' instance -> last heartbeat */
    int64_t presence_next_hb_us;
    uint64_t presence_seq;     /* numbers this process's presence deltas (for the control plane) */
    int presence_slot;         /* relay_room.state[] slot of presence's per-room state */
    int repair_slot;           /* relay_room.state[] slot of repair's per-room state */
    int signal_slot;           /* relay_room.state[] slot of the room's signal subscription */
    bool nats_was_connected;   /* to notice reconnects on the lws thread */
    int64_t inbound_warned_us; /* last warning about malformed NATS input */
    uint64_t inbound_rejected; /* malformed NATS messages since that warning */
    mr_buf write_batch;        /* scratch for coalesced writes (lws thread) */
    struct relay_conn *flush;  /* connections with frames to write after this pass (relay_conn.c) */
    struct relay_senders *senders;    /* send_threads > 1: the threads sharing those writes */
    struct relay_send_job *send_jobs; /* their jobs (lws thread) */
    size_t send_jobs_cap;
    void *uv_loop;  /* event_loop libuv: the relay's uv_loop_t, which lws runs on; else NULL */
    void *uv_check; /* its uv_check_t: the end of each pass */
    void *uv_loops[1];

    /* The lws server's settings, which lws reads for the context's lifetime. */
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t housekeeping_sul;
    struct lws_protocols protocols[2];
    struct lws_http_mount mount;
    struct lws_protocol_vhost_options hsts_header;
    char hsts[64];
    char listen_host[256];

    /* Read by /readyz on the admin thread, written by the lws thread. */
    _Atomic int64_t loop_alive_us; /* the service loop's last housekeeping tick */
    _Atomic bool listening;        /* the WebSocket listener is bound (checked every second) */
    int listen_check_ticks;        /* lws thread: ticks until the next listener check */
    int trim_ticks;                /* lws thread: ticks until free heap is given back */

    /* Life cycle (relay_reload.c): SIGHUP asks, the lws thread reloads; systemd is told. */
    _Atomic bool reload_requested; /* set by the signal thread on SIGHUP */
    struct relay_reload *reload;   /* what a reload reads again; NULL: reloads are off */
    void *ssl_ctx;                 /* the TLS vhost's SSL_CTX (new certificates go in) */
    bool ready_notified;           /* lws thread: READY=1 sent to systemd */

    _Atomic bool draining; /* set by the signal thread on SIGTERM */
    _Atomic bool stopping; /* set when the process should exit now */
    _Atomic bool sigterm;  /* the drain came from SIGTERM: exit when done */
    pthread_mutex_t drain_lock;
    json_t *drain_requested_urls; /* under drain_lock: set by the admin thread */
    int drain_requested;          /* under drain_lock: 1 drain, -1 undrain, 0 nothing */
    bool drain_exit;              /* lws thread: stop the process once drained */
    json_t *drain_urls; /* where to send clients (admin drain), or NULL for the config's */
    bool drain_started; /* lws thread: reconnect frames sent */
    bool closing_all;
    bool destroying; /* lws thread: relay_server_stop is closing every session at once */
    lws_sorted_usec_list_t drain_sul;
} relay;

#endif
