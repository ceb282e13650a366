/*
 * Renderers for meridian-regions: what each region's servers need, derived
 * from a loaded regions file. First the nats-server configuration (one
 * cluster per region, gateways between all regions, JetStream), then a JSON
 * summary of every URL that scripts need.
 */
#ifndef REGIONS_RENDER_H
#define REGIONS_RENDER_H

#include "mr_buf.h"
#include "mr_nats_perms.h"
#include "mr_regions.h"

#include <stdbool.h>

/* Options for one nats-server configuration. Strings may be NULL. */
typedef struct regions_nats_opts {
    size_t region;         /* index into r->regions */
    size_t server;         /* index into that region's nats servers */
    const char *store_dir; /* JetStream store directory (required) */
    /*
     * Address to bind instead of the server's `host` (for example 0.0.0.0
     * behind cloud NAT); `host` is then advertised to clients, routes and
     * gateways.
     */
    const char *listen;
    /*
     * TLS between servers (routes and gateways, mutual: every server presents
     * cert_file and verifies its peers against ca_file). All three or none.
     */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
    bool client_tls;    /* also require TLS from clients */
    bool client_verify; /* ... and a client certificate the CA signed (mutual TLS) */
    /*
     * The CA of client certificates, when it is not tls_ca: with a separate
     * client CA a daemon's certificate cannot open a route or a gateway.
     */
    const char *client_ca;
    /*
     * Per-role client users: public nkeys, `nkeys[i * MR_NATS_NROLES + role]`
     * for region i (mr_nats_perms.h), or NULL for none. With them, clients
     * connect as these users only (account MERIDIAN, with the permissions
     * of docs/architecture.md) and user+password authenticate routes and
     * gateways only.
     */
    const char *const *nkeys;
    /*
     * Credentials. user+password are required from routes and gateways,
     * and written into their URLs; without nkeys they are also the one
     * client user. A token applies to clients only: nats-server accepts no
     * token on routes, so servers then authenticate each other by TLS alone.
     */
    const char *user;
    const char *password;
    const char *token;
} regions_nats_opts;

/**
 * Append the nats-server configuration for one server to `out`. Returns 0,
 * or -1 with `err` set when the options are inconsistent (TLS files given
 * partly, both a token and a user, a password without a user...).
 */
int regions_render_nats(const mr_regions *r, const regions_nats_opts *o, mr_buf *out, char *err,
                        size_t errlen);

/**
 * Append, as JSON, the NATS permissions of every role in every region:
 * {"account": "MERIDIAN", "users": {"relay": {"eu-west": {"publish": [...],
 * "subscribe": [...], "allow_responses": false}, ...}, ...}}.
 */
void regions_render_permissions(const mr_regions *r, mr_buf *out);

/** Append the endpoints JSON (see regions/README.md, "Endpoints") to `out`. */
void regions_render_endpoints(const mr_regions *r, mr_buf *out);

/**
 * Append one line per listening socket the file describes, tab-separated:
 * KIND REGION ID HOST PORT. KIND is relay, relay-admin, nats-client,
 * nats-cluster, nats-gateway, nats-monitor, control-api, control-admin,
 * healthcheck, dns, postgres or pdns-api; REGION and ID are "-" when they do
 * not apply. For shell scripts, which then need no JSON parser.
 */
void regions_render_listeners(const mr_regions *r, mr_buf *out);

#endif
