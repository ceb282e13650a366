/*
 * The relay process state shared by its modules. Everything here belongs to
 * the lws service thread, except the fields marked atomic, which the admin
 * and signal threads read or set.
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
#include <stdatomic.h>
#include <jansson.h>
#include <stdbool.h>

struct relay_session;

#define RELAY_NODE_ID_MAX 160

typedef struct relay {
    relay_config *cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    relay_nats *nats;
    relay_rooms rooms;
    mr_map ip_counts;               /* client IP -> (intptr_t) open WebSocket sessions */
    struct relay_session *sessions; /* every open session, for drain */
    size_t session_count;
    mr_jwt_params jwt;
    lws_retry_bo_t retry;
    uint64_t next_session_id;
    mr_map sessions_by_id; /* decimal session id -> relay_session* (for late replies) */
    mr_map pending_pubs;   /* "%p" of the natsMsg -> relay_pending* (JetStream acks) */
    mr_map resumes;        /* decimal request id -> relay_resume* (history fetches) */
    uint64_t next_request_id;
    lws_sorted_usec_list_t housekeeping_sul;
    char instance[RELAY_NODE_ID_MAX]; /* region/node/random: this process in presence */
    mr_map presence_nodes;            /* other relays' instance -> last heartbeat */
    int64_t presence_next_hb_us;
    bool nats_was_connected; /* to notice reconnects on the lws thread */
    mr_buf write_batch;      /* scratch for coalesced writes (lws thread) */

    _Atomic bool draining; /* set by the signal thread on SIGTERM */
    _Atomic bool stopping; /* set when the process should exit now */
    _Atomic bool sigterm;  /* the drain came from SIGTERM: exit when done */
    bool drain_exit;       /* lws thread: stop the process once drained */
    json_t *drain_urls;    /* where to send clients (admin drain), or NULL for the config's */
    bool drain_started;    /* lws thread: reconnect frames sent */
    int64_t drain_deadline_us;
    bool closing_all;
    lws_sorted_usec_list_t drain_sul;
} relay;

#endif
