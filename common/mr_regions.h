/*
 * The regions file (regions/NAME.json, documented field by field in
 * regions/README.md): the single source of truth for DNS names, region
 * geography, failover order, relay endpoints and NATS topology. It is read
 * here, validated completely on load, and exposed as read-only structs owned
 * by one `mr_regions` value. The DNS routing policy shared by the health
 * agent and terraform (mr_regions_route/mr_regions_answer) is built on it in
 * mr_regions_route.h, which this header includes so that callers need one.
 */
#ifndef MR_REGIONS_H
#define MR_REGIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Region names: lower-case DNS label, [a-z0-9-], 1..MR_REGION_NAME_MAX bytes. */
#define MR_REGION_NAME_MAX 32

/** The only format version this code reads. */
#define MR_REGIONS_VERSION 1

/** A parsed CIDR: `family` is 4 or 6, `addr` holds 4 or 16 bytes in network order. */
typedef struct mr_cidr {
    int family;
    uint8_t addr[16];
    int prefix;
} mr_cidr;

typedef struct mr_relay_ep {
    const char *id;        /* unique across the file */
    const char *address;   /* IP literal: the A/AAAA record and the probe target */
    int port;              /* WebSocket port; the same for every relay in the file */
    const char *ws_url;    /* ws:// or wss:// URL; its host is the TLS SNI / Host */
    const char *admin_url; /* http(s) base URL of /healthz, /readyz, /metrics */
    size_t region;         /* index of the owning region */
} mr_relay_ep;

typedef struct mr_nats_server {
    const char *name; /* nats server_name, unique across the file */
    const char *host; /* address it listens on and that others dial */
    int client_port;
    int cluster_port;
    int gateway_port;
    int monitor_port;        /* 0 when absent: no HTTP monitoring */
    const char *client_url;  /* "nats://host:client_port" (derived) */
    const char *gateway_url; /* "nats://host:gateway_port" (derived) */
} mr_nats_server;

typedef struct mr_region {
    const char *name;
    const char *dns_name; /* relative to the zone, e.g. "eu-west.ws" */
    const char *fqdn;     /* dns_name + "." + zone, e.g. "eu-west.ws.meridian.test." */

    const char *const *continents; /* two-letter continent codes (AF AN AS EU NA OC SA) */
    size_t n_continents;
    const char *const *countries; /* ISO 3166-1 alpha-2 codes, upper case */
    size_t n_countries;
    const char *const *cidr_text; /* as written in the file */
    const mr_cidr *cidrs;
    size_t n_cidrs;

    /* Failover order after the region itself, as indexes into regions[]. */
    const size_t *failover;
    size_t n_failover;
    int min_healthy_relays;

    const mr_relay_ep *relays;
    size_t n_relays;
    const mr_nats_server *nats;
    size_t n_nats;

    /* Control plane (optional: has_control false when the section is absent). */
    bool has_control;
    const char *control_address; /* IP literal for the api name's records */
    const char *control_api_url;
    const char *control_admin_url;

    /* Health agent (optional: NULL when absent). */
    const char *healthcheck_url;
} mr_region;

typedef struct mr_nameserver {
    const char *name;    /* FQDN with trailing dot */
    const char *address; /* IP literal */
    int port;            /* default 53 */
} mr_nameserver;

typedef struct mr_regions {
    const char *file; /* path given to mr_regions_load */
    int version;

    const char *zone;     /* FQDN with trailing dot, e.g. "meridian.test." */
    const char *ws_name;  /* relative, e.g. "ws" */
    const char *ws_fqdn;  /* "ws.meridian.test." */
    const char *api_name; /* relative, e.g. "api" */
    const char *api_fqdn;
    int ttl;
    size_t default_region; /* index: answers clients outside every geography */
    const mr_nameserver *nameservers;
    size_t n_nameservers;

    const mr_region *regions;
    size_t n_regions;
    size_t n_relays_total;

    /* "local" section: optional, used by scripts/up only (NULL when absent). */
    const char *local_postgres; /* "host:port" */
    const char *local_pdns_api; /* "host:port" */
} mr_regions;

/**
 * Load and validate a regions file. Returns NULL and writes to `err` a
 * message naming the file, the field and the problem, for example
 * "regions/local.json: regions[1].failover[0]: unknown region \"us-wst\"".
 * Unknown keys are errors, so typos do not pass silently.
 */
mr_regions *mr_regions_load(const char *path, char *err, size_t errlen);

/** Same, from JSON text in memory; `name` stands for the file in messages. */
mr_regions *mr_regions_parse(const char *json, const char *name, char *err, size_t errlen);

void mr_regions_free(mr_regions *r);

/** Index of the region called `name`, or -1. */
int mr_regions_find(const mr_regions *r, const char *name);

/** The relay with this id, or NULL. */
const mr_relay_ep *mr_regions_find_relay(const mr_regions *r, const char *id);

/** Global index (file order across regions) of a relay, for relay_up arrays. */
size_t mr_regions_relay_index(const mr_regions *r, const mr_relay_ep *ep);

/**
 * Host (brackets removed from IPv6) and port of a ws://, wss://, http:// or
 * https:// URL from a loaded file (default ports 80/443). Returns 0, or -1
 * when the URL is malformed. Daemons use it to find their listen address.
 */
int mr_regions_url_hostport(const char *url, char *host, size_t hostlen, int *port);

/** Parse an IP literal into 16 bytes in network order (IPv4 in the first 4). Returns 4, 6 or 0. */
int mr_regions_parse_ip(const char *s, uint8_t out[16]);

/** True when `c` contains the network addr/prefix of `family` (4 or 6). */
bool mr_regions_cidr_contains(const mr_cidr *c, int family, const uint8_t *addr, int prefix);

#endif

/* After the guard: mr_regions_route.h includes this header in turn. */
#include "mr_regions_route.h"
