/*
 * The agents' shared plane over core NATS: observations published to and
 * received from every agent, the DNS-writer lease (hc_lease: a majority of
 * the agents, over NATS messages, nothing stored in any one region), and the
 * drain flags (replicated in every observation, last writer by version wins,
 * kept in each agent's state file).
 *
 * Core NATS messages cross the gateways between the regions' clusters, so
 * the agents of two surviving regions still reach each other when a third
 * region's NATS is dead: the lease survives the loss of any one region.
 */
#ifndef HC_CLUSTER_H
#define HC_CLUSTER_H

#include "hc_wire.h"
#include "mr_buf.h"
#include "mr_nats_opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hc_cluster hc_cluster;

typedef struct hc_cluster_conf {
    const mr_nats_conf *nats;   /* URLs, credentials, TLS; must outlive the cluster */
    const char *agent_id;       /* shown to operators, and the NATS client name */
    const char *lease_id;       /* this agent's id among the lease's members */
    const char *const *members; /* every member's id (this one included) */
    size_t n_members;
    int lease_ttl_ms;           /* a vote's promise lasts this long */
    int lease_renew_ms;         /* the holder renews this often */
    int lease_margin_ms;        /* the holder's lease ends this much before the promises */
    const char *state_path;     /* term, vote and drain flags survive restarts here */
    const char *const *regions; /* region names, for drain flags */
    size_t n_regions;
} hc_cluster_conf;

/** Subjects the observations and the lease protocol travel on. */
#define HC_CLUSTER_OBS_SUBJECT   "meridian.hc.obs"
#define HC_CLUSTER_LEASE_SUBJECT "meridian.hc.lease"

/**
 * An observation from some agent (this one included), called on a NATS
 * thread: copy what is needed and return. `c` is the cluster that received it:
 * the first observation can arrive before hc_cluster_start has returned it.
 */
typedef void (*hc_cluster_obs_cb)(hc_cluster *c, const char *data, size_t len, void *ud);

/**
 * Read the state file, connect (retrying in the background when no server
 * answers yet) and start the lease thread. Returns NULL with `err` filled on
 * a configuration error or an unreadable state file.
 */
hc_cluster *hc_cluster_start(const hc_cluster_conf *conf, hc_cluster_obs_cb cb, void *ud, char *err,
                             size_t errlen);
/** Release the lease (if held) so another agent takes over at once, and disconnect. */
void hc_cluster_stop(hc_cluster *c);

/** Publish an observation; returns 0 or -1 when not connected. */
int hc_cluster_publish(hc_cluster *c, const char *data, size_t len);
bool hc_cluster_connected(hc_cluster *c);
/** Append `"nats":"connected"` or `"nats":"disconnected"` and why (mr_nats_watch_describe). */
void hc_cluster_describe(hc_cluster *c, mr_buf *json);

typedef struct hc_cluster_lease_info {
    bool held;             /* this agent holds the lease now */
    uint64_t term;         /* the term held (fencing token), 0 when not holding */
    int64_t left_us;       /* how long it still holds without a renewal */
    int64_t since_wall_ms; /* when it took this term */
    char promised[64];     /* the member this agent's vote is promised to, "" when none */
    uint64_t voted_term;   /* the highest term this agent voted in */
} hc_cluster_lease_info;

/** The lease as this agent sees it. Held only while connected to NATS. */
void hc_cluster_lease(hc_cluster *c, hc_cluster_lease_info *out);
/** Shorthand: this agent holds the lease now. */
bool hc_cluster_lease_held(hc_cluster *c);

/**
 * Set or clear the drain flag of a region on this agent (a new version,
 * persisted); every agent adopts it from this agent's next observation.
 * Returns -1 with err when not connected (the change could not spread).
 */
int hc_cluster_set_drain(hc_cluster *c, const char *region, bool drained, char *err, size_t errlen);
/** Copy the drain flags (n_regions entries). */
void hc_cluster_drains(hc_cluster *c, bool *out);
/** Copy the versioned drain flags (n_regions entries) for an observation. */
void hc_cluster_drain_flags(hc_cluster *c, hc_drain_flag *out);
/** Adopt the flags another agent sent where they are newer (n entries; others ignored). */
void hc_cluster_merge_drains(hc_cluster *c, const hc_drain_flag *flags, size_t n);

#endif
