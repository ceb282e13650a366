/*
 * DNS answers and the providers that publish them. A plan holds, for each
 * region's geography, the relay addresses DNS should answer; a provider
 * (PowerDNS, Route 53, dry-run: one file each behind hc_dns_ops) writes a
 * plan asynchronously on the agent's loop.
 */
#ifndef HC_DNS_H
#define HC_DNS_H

#include "mr_buf.h"
#include "mr_config.h"
#include "mr_regions.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct hc_dns_plan {
    const mr_regions *regions;
    size_t n;        /* = regions->n_regions */
    int *route;      /* per geography: index of the answering region, or MR_REGIONS_FAIL_OPEN */
    char ***addrs;   /* per geography: sorted addresses (owned) */
    size_t *n_addrs; /* per geography */
    char *text;      /* canonical one-line form: "eu-west=127.1.0.1,127.1.0.2 us-east=..." */
    /* Region names (regions[].fqdn): per region, its own relays that are up,
     * all of them when none is (sorted, owned). */
    char ***own;
    size_t *n_own;
    char *own_text; /* "eu-west.ws.meridian.test.=127.1.0.1 ..." */
} hc_dns_plan;

/**
 * Build the plan for region health `healthy` and relay health `relay_up`
 * (either may be NULL for "all up"), following mr_regions_answer().
 */
void hc_dns_plan_build(hc_dns_plan *p, const mr_regions *r, const bool *healthy,
                       const bool *relay_up);
void hc_dns_plan_free(hc_dns_plan *p);
/** True when both the geo answers and the region names' answers are the same. */
bool hc_dns_plan_equal(const hc_dns_plan *a, const hc_dns_plan *b);
/**
 * True when an address `from` answers to some geography is answered to no
 * geography by `to`: a relay is being taken out of service (it died, its
 * region was drained), which is urgent. Moving clients between relays that
 * both stay in service (a region coming back) is not.
 */
bool hc_dns_plan_drops(const hc_dns_plan *from, const hc_dns_plan *to);
/** True when `addr` is in the answer of some geography. */
bool hc_dns_plan_answers(const hc_dns_plan *p, const char *addr);
/** Deep copy. */
void hc_dns_plan_copy(hc_dns_plan *dst, const hc_dns_plan *src);
/** Append the plan as a JSON object {"eu-west":["127.1.0.1",...],...}. */
void hc_dns_plan_json(const hc_dns_plan *p, mr_buf *out);

/**
 * The fencing token a write carries: the lease term of the writer. Providers
 * store it beside the answers (TXT record HC_DNS_FENCE_LABEL.<zone>,
 * "term=<term> holder=<id>") in the same atomic change, and refuse to write
 * over a higher term (docs/healthcheck.md, "Fencing").
 */
typedef struct hc_dns_fence {
    uint64_t term;
    const char *holder;
} hc_dns_fence;

#define HC_DNS_FENCE_LABEL "_meridian-lease"

/** The fence record's name for `zone` ("_meridian-lease.meridian.test."). */
void hc_dns_fence_name(const mr_regions *r, char *out, size_t n);
/** The fence record's TXT content, quoted: "\"term=5 holder=hc-eu-west\"". */
void hc_dns_fence_txt(const hc_dns_fence *f, char *out, size_t n);
/** The term in a fence TXT content (quoted or not); 0 when there is none. */
uint64_t hc_dns_fence_term(const char *txt);

/** Completion of a write: rc 0 on success, else -1 with a message. */
typedef void (*hc_dns_done_cb)(int rc, const char *err, void *ud);

typedef struct hc_dns_provider hc_dns_provider;

typedef struct hc_dns_ops {
    const char *name;
    /**
     * Publish `plan`. Returns 0 and calls `cb` exactly once later, or returns
     * -1 with `err` filled and never calls `cb`.
     */
    int (*write)(hc_dns_provider *p, const hc_dns_plan *plan, const hc_dns_fence *fence,
                 hc_dns_done_cb cb, void *ud, char *err, size_t errlen);
    void (*destroy)(hc_dns_provider *p);
} hc_dns_ops;

struct hc_dns_provider {
    const hc_dns_ops *ops;
    struct event_base *base;
    const mr_regions *regions;
    int timeout_ms; /* the longest one write can take (its requests' time-outs together) */
    bool cas;       /* the provider refuses a write over a newer fence by itself */
};

/**
 * Create the provider named by conf.type ("powerdns", "route53", "dry-run"),
 * reading its settings from `conf` (config path "dns"). Returns NULL with the
 * error recorded in `c`.
 */
hc_dns_provider *hc_dns_new(struct event_base *base, const mr_regions *r, mr_cfg *c, json_t *conf);
void hc_dns_free(hc_dns_provider *p);

/* Backends, one file each. */
hc_dns_provider *hc_dns_pdns_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                 json_t *conf);
hc_dns_provider *hc_dns_route53_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                    json_t *conf);
hc_dns_provider *hc_dns_dryrun_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                   json_t *conf);

/** The PowerDNS LUA record content for a plan (exposed for tests). */
void hc_dns_pdns_lua(const hc_dns_plan *p, mr_buf *out);
/**
 * The Route 53 ChangeResourceRecordSets body for a plan's geolocation record
 * sets (exposed for tests and terraform's cross-check).
 */
void hc_dns_route53_body(const hc_dns_plan *p, const char *comment, mr_buf *out);
/** The body the provider sends: the geolocation sets plus each region name's A record. */
void hc_dns_route53_request(const hc_dns_plan *p, const char *comment, mr_buf *out);
/**
 * What the provider sends: the request above with, first in the batch, the
 * fence record's compare-and-set: DELETE `old_fence` (its exact value and
 * `old_ttl`; skipped when NULL or "") and CREATE the new fence.
 */
void hc_dns_route53_fenced_request(const hc_dns_plan *p, const char *old_fence, int old_ttl,
                                   const hc_dns_fence *fence, const char *comment, mr_buf *out);
/**
 * The fence record's value (quotes included) and TTL from a
 * ListResourceRecordSets response; "" when the zone has none.
 */
void hc_dns_route53_fence_parse(const mr_regions *r, const char *xml, char *value, size_t vlen,
                                int *ttl);

#endif
