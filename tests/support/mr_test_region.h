/*
 * Test support: a three-region deployment on loopback for integration
 * suites. The regions file is a copy of regions/local.json with free NATS
 * ports; meridian-regions renders each region's nats-server config (one
 * server per region, a cluster named after the region, gateways to the
 * others, JetStream), so the suite runs the same supercluster topology as
 * scripts/up (locked, as scripts/up runs it, with mr_test_deploy_nats_locked).
 * Each region gets two relays (on 127.0.0.1, free ports) whose
 * region stream is placed in the region's own cluster.
 */
#ifndef MR_TEST_REGION_H
#define MR_TEST_REGION_H

#include "mr_test_pki.h"
#include "mr_test_relay.h"

#include <stdbool.h>
#include <sys/types.h>

#define MR_TEST_NREGIONS          3
#define MR_TEST_RELAYS_PER_REGION 2
/* Presence settings of the test relays: the production defaults. */
#define MR_TEST_PRESENCE_HEARTBEAT_MS 1000
#define MR_TEST_PRESENCE_EXPIRE       3

typedef struct mr_test_region {
    char name[32];
    char host[32]; /* the nats-server's address, 127.N.0.10 */
    int client_port, monitor_port;
    char nats_url[96];
    char conf[700], log[700];
    pid_t nats_pid;
    mr_test_relay relays[MR_TEST_RELAYS_PER_REGION];
} mr_test_region;

typedef struct mr_test_deploy {
    char *dir;
    char regions_file[600];
    const char *relay_bin;
    mr_test_region r[MR_TEST_NREGIONS];
    /* Locked (mr_test_deploy_nats_locked): certificates, nkeys, the cluster password. */
    bool locked;
    mr_test_pki pki;
    char keys[600], cluster_password[600];
} mr_test_deploy;

/**
 * Write the regions file (from `source_dir`/regions/local.json), render and
 * start the three nats-servers, and wait (with a deadline) until every
 * gateway is connected both ways. Aborts the test on failure.
 */
void mr_test_deploy_nats(mr_test_deploy *d, const char *source_dir, const char *regions_bin);
/**
 * The same, locked as scripts/up runs it: keys made by `meridian-regions
 * nkeys`, the servers rendered with mutual TLS for clients, routes and
 * gateways, the per-role nkey users and a cluster password. Relays started
 * by mr_test_deploy_relays() then connect with their region's relay key.
 */
void mr_test_deploy_nats_locked(mr_test_deploy *d, const char *source_dir, const char *regions_bin);
/**
 * The `nats` value (JSON, malloc'd) for a daemon of `role` ("relay",
 * "control", "healthcheck") of region `i`: its region's server URL, and on a
 * locked deployment the role's key of that region and the test certificates.
 */
char *mr_test_deploy_nats_json(const mr_test_deploy *d, const char *role, int i);
/** Start region `i`'s nats-server again (same config and store) and wait for its gateways. */
void mr_test_deploy_nats_restart(mr_test_deploy *d, int i);
/** Poll /gatewayz of every running server until all gateways are up, or abort after `timeout_ms`.
 */
void mr_test_deploy_wait_gateways(mr_test_deploy *d, int timeout_ms);
/**
 * Write the configs of every relay and start them (each waits for /readyz).
 * `extra` is spliced into each config's top level (may be ""); the stream
 * placement and the presence settings are always set.
 */
void mr_test_deploy_relays(mr_test_deploy *d, const char *relay_bin, const char *extra);
/** Start relay `k` of region `i` again with its config (after it was killed or drained). */
void mr_test_deploy_relay_restart(mr_test_deploy *d, int i, int k);
/** SIGKILL region `i`'s nats-server and relays at once (a region outage). */
void mr_test_deploy_kill_region(mr_test_deploy *d, int i);
/** Stop every relay (SIGINT) and nats-server that still runs. */
void mr_test_deploy_stop(mr_test_deploy *d);

#endif
