/*
 * The agents' shared plane over NATS: observations published to and received
 * from every agent, the DNS-writer lease (a NATS KV key with a TTL), and the
 * drain flags operators set through any agent.
 */
#ifndef HC_CLUSTER_H
#define HC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hc_cluster hc_cluster;

typedef struct hc_cluster_conf {
    const char *const *urls; /* NATS URLs */
    size_t n_urls;
    const char *agent_id;
    const char *bucket;         /* KV bucket, default "meridian_hc" */
    int lease_ttl_ms;           /* the lease expires this long after its last renewal */
    int lease_renew_ms;         /* renewal (and drain flag refresh) period */
    int replicas;               /* JetStream replicas of the buckets (1 = default) */
    const char *const *regions; /* region names, for drain flags */
    size_t n_regions;
} hc_cluster_conf;

/** Subject the observations travel on. */
#define HC_CLUSTER_OBS_SUBJECT "meridian.hc.obs"

/**
 * An observation from some agent (this one included), called on a NATS
 * thread: copy what is needed and return.
 */
typedef void (*hc_cluster_obs_cb)(const char *data, size_t len, void *ud);

/**
 * Connect (retrying in the background when no server answers yet) and start
 * the lease thread. Returns NULL with `err` filled on a configuration error.
 */
hc_cluster *hc_cluster_start(const hc_cluster_conf *conf, hc_cluster_obs_cb cb, void *ud, char *err,
                             size_t errlen);
void hc_cluster_stop(hc_cluster *c);

/** Publish an observation; returns 0 or -1 when not connected. */
int hc_cluster_publish(hc_cluster *c, const char *data, size_t len);
bool hc_cluster_connected(hc_cluster *c);
/**
 * True only while this agent holds the lease and is connected, and the
 * lease's local deadline (last renewal + 3/4 of the TTL) has not passed: an
 * agent that cannot renew stops writing before anyone else can acquire.
 */
bool hc_cluster_lease_held(hc_cluster *c);
/** The last known holder ("" when none or unknown). */
void hc_cluster_lease_holder(hc_cluster *c, char *out, size_t n);
/** Set or clear the drain flag of a region (blocks for at most about a second). */
int hc_cluster_set_drain(hc_cluster *c, const char *region, bool drained, char *err, size_t errlen);
/** Copy the drain flags (n_regions entries) as last read from the bucket. */
void hc_cluster_drains(hc_cluster *c, bool *out);

#endif
