/*
 * Route 53 provider: ChangeResourceRecordSets with geolocation records,
 * signed with AWS Signature Version 4 (hc_sigv4.c).
 *
 * Every continent and country of a region's geography gets one geolocation
 * record set (SetIdentifier "<region>-<code>") whose value is the answer the
 * plan computed for that geography, and a default location record ("*")
 * carries the default region's answer. Failover is done by the agent
 * rewriting values, not by Route 53 health checks, so one policy decides on
 * every provider. One UPSERT batch carries every set: Route 53 applies a
 * batch atomically.
 *
 * Route 53 cannot be reached from the build machines: the signer is tested
 * against AWS's published SigV4 examples and this body against a golden file.
 */
#include "hc_dns.h"
#include "hc_http.h"
#include "hc_sigv4.h"
#include "mr_alloc.h"
#include "mr_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct r53 {
    hc_dns_provider base;
    char *endpoint; /* "https://route53.amazonaws.com" */
    char *zone_id;
    char *access_key;
    char *secret_key;
} r53;

typedef struct r53_write {
    hc_dns_done_cb cb;
    void *ud;
} r53_write;

static void record_set(mr_buf *out, const hc_dns_plan *p, size_t g, const char *set_id,
                       const char *loc_kind, const char *code)
{
    const mr_regions *r = p->regions;
    mr_buf_printf(out,
                  "<Change><Action>UPSERT</Action><ResourceRecordSet><Name>%s</Name><Type>A</Type>"
                  "<SetIdentifier>%s</SetIdentifier><GeoLocation><%s>%s</%s></GeoLocation>"
                  "<TTL>%d</TTL><ResourceRecords>",
                  r->ws_fqdn, set_id, loc_kind, code, loc_kind, r->ttl);
    for (size_t i = 0; i < p->n_addrs[g]; i++)
        mr_buf_printf(out, "<ResourceRecord><Value>%s</Value></ResourceRecord>", p->addrs[g][i]);
    mr_buf_puts(out, "</ResourceRecords></ResourceRecordSet></Change>");
}

static void route53_body(const hc_dns_plan *p, const char *comment, bool region_names, mr_buf *out);

void hc_dns_route53_body(const hc_dns_plan *p, const char *comment, mr_buf *out)
{
    route53_body(p, comment, false, out);
}

void hc_dns_route53_request(const hc_dns_plan *p, const char *comment, mr_buf *out)
{
    route53_body(p, comment, true, out);
}

static void route53_body(const hc_dns_plan *p, const char *comment, bool region_names, mr_buf *out)
{
    const mr_regions *r = p->regions;
    mr_buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<ChangeResourceRecordSetsRequest "
                     "xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
                     "<ChangeBatch>");
    /* The comment is ours (a fixed prefix and a plan summary of names and IP
     * literals), so it holds no XML metacharacters. */
    mr_buf_printf(out, "<Comment>%s</Comment><Changes>", comment);
    char id[128];
    for (size_t g = 0; g < p->n; g++) {
        const mr_region *reg = &r->regions[g];
        for (size_t i = 0; i < reg->n_continents; i++) {
            snprintf(id, sizeof id, "%s-%s", reg->name, reg->continents[i]);
            record_set(out, p, g, id, "ContinentCode", reg->continents[i]);
        }
        for (size_t i = 0; i < reg->n_countries; i++) {
            snprintf(id, sizeof id, "%s-%s", reg->name, reg->countries[i]);
            record_set(out, p, g, id, "CountryCode", reg->countries[i]);
        }
    }
    record_set(out, p, r->default_region, "default", "CountryCode", "*");
    for (size_t g = 0; region_names && g < p->n; g++) {
        /* A region's own name: a simple record of its relays. */
        mr_buf_printf(out,
                      "<Change><Action>UPSERT</Action><ResourceRecordSet><Name>%s</Name>"
                      "<Type>A</Type><TTL>%d</TTL><ResourceRecords>",
                      r->regions[g].fqdn, r->ttl);
        for (size_t i = 0; i < p->n_own[g]; i++)
            mr_buf_printf(out, "<ResourceRecord><Value>%s</Value></ResourceRecord>", p->own[g][i]);
        mr_buf_puts(out, "</ResourceRecords></ResourceRecordSet></Change>");
    }
    mr_buf_puts(out, "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
}

static void on_done(int status, const char *body, size_t len, const char *err, void *ud)
{
    r53_write *w = ud;
    char msg[512];
    if (status == 200) {
        w->cb(0, NULL, w->ud);
    } else {
        if (status < 0)
            snprintf(msg, sizeof msg, "Route 53: %s", err);
        else
            snprintf(msg, sizeof msg, "Route 53: HTTP %d %.300s", status, body ? body : "");
        w->cb(-1, msg, w->ud);
    }
    free(w);
}

/* The fencing token rides in the same change batch (all or nothing), as an
 * UPSERT of the fence TXT record. Route 53 could make this a true
 * compare-and-set (DELETE the exact fence last read + CREATE the new one:
 * the batch fails if anyone changed it in between); that needs a
 * ListResourceRecordSets read first and is not done yet (docs/healthcheck.md,
 * "Fencing"). */
static void fence_change(const hc_dns_plan *plan, const hc_dns_fence *f, mr_buf *out)
{
    char name[600], txt[200];
    hc_dns_fence_name(plan->regions, name, sizeof name);
    hc_dns_fence_txt(f, txt, sizeof txt);
    mr_buf_printf(out,
                  "<Change><Action>UPSERT</Action><ResourceRecordSet><Name>%s</Name>"
                  "<Type>TXT</Type><TTL>%d</TTL><ResourceRecords><ResourceRecord><Value>"
                  "&quot;%.*s&quot;</Value></ResourceRecord></ResourceRecords>"
                  "</ResourceRecordSet></Change>",
                  name, plan->regions->ttl, (int)strlen(txt) - 2, txt + 1);
}

void hc_dns_route53_fenced_request(const hc_dns_plan *plan, const hc_dns_fence *fence,
                                   const char *comment, mr_buf *out)
{
    mr_buf changes = MR_BUF_INIT;
    hc_dns_route53_request(plan, comment, &changes);
    const char *end = strstr(changes.data, "</Changes>");
    mr_buf_printf(out, "%.*s", (int)(end - changes.data), changes.data);
    if (fence)
        fence_change(plan, fence, out);
    mr_buf_puts(out, end);
    mr_buf_free(&changes);
}

static int r53_write_plan(hc_dns_provider *base, const hc_dns_plan *plan, const hc_dns_fence *fence,
                          hc_dns_done_cb cb, void *ud, char *err, size_t errlen)
{
    r53 *p = (r53 *)base;
    mr_buf body = MR_BUF_INIT, auth = MR_BUF_INIT;
    hc_dns_route53_fenced_request(plan, fence, "meridian-healthcheck", &body);
    int tls, port;
    char host[256], path[1024], url[1400];
    hc_http_parse_url(p->endpoint, &tls, host, sizeof host, &port, path, sizeof path);
    char signed_host[300];
    if (port == (tls ? 443 : 80))
        snprintf(signed_host, sizeof signed_host, "%s", host);
    else
        snprintf(signed_host, sizeof signed_host, "%s:%d", host, port);
    snprintf(path, sizeof path, "/2013-04-01/hostedzone/%s/rrset/", p->zone_id);
    snprintf(url, sizeof url, "%s%s", p->endpoint, path);
    char date[17];
    hc_sigv4_amz_date((long long)time(NULL), date);
    hc_sigv4_header extra[] = {{"content-type", "text/xml"}};
    hc_sigv4_req req = {.method = "POST",
                        .path = path,
                        .host = signed_host,
                        .headers = extra,
                        .n_headers = 1,
                        .body = body.data,
                        .body_len = body.len,
                        .amz_date = date,
                        .region = "us-east-1",
                        .service = "route53",
                        .access_key = p->access_key,
                        .secret_key = p->secret_key};
    hc_sigv4_sign(&req, &auth, NULL, NULL);
    /* Signed exactly as hc_http sends Host: without the port when it is the
     * scheme's default. */
    const char *hdrs[] = {"Content-Type",  "text/xml", "X-Amz-Date", date,
                          "Authorization", auth.data,  NULL};
    r53_write *w = mr_calloc(1, sizeof *w);
    w->cb = cb;
    w->ud = ud;
    int rc = hc_http_request(base->base, "POST", url, hdrs, body.data, body.len, base->timeout_ms,
                             on_done, w, err, errlen);
    if (rc != 0)
        free(w);
    mr_buf_free(&body);
    mr_buf_free(&auth);
    return rc;
}

static void r53_destroy(hc_dns_provider *base)
{
    r53 *p = (r53 *)base;
    free(p->endpoint);
    free(p->zone_id);
    free(p->access_key);
    free(p->secret_key);
    free(p);
}

static const hc_dns_ops r53_ops = {"route53", r53_write_plan, r53_destroy};

hc_dns_provider *hc_dns_route53_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                    json_t *conf)
{
    static const char *const keys[] = {
        "type", "hosted_zone_id", "access_key_id", "secret_access_key", "endpoint", "timeout_ms",
        NULL};
    mr_cfg_check_keys(c, conf, "dns", keys);
    const char *zone = mr_cfg_str(c, conf, "dns", "hosted_zone_id", NULL);
    const char *ak = mr_cfg_str(c, conf, "dns", "access_key_id", getenv("AWS_ACCESS_KEY_ID"));
    const char *sk =
        mr_cfg_str(c, conf, "dns", "secret_access_key", getenv("AWS_SECRET_ACCESS_KEY"));
    const char *ep = mr_cfg_str(c, conf, "dns", "endpoint", "https://route53.amazonaws.com");
    int timeout = (int)mr_cfg_int(c, conf, "dns", "timeout_ms", 5000, 100, 60000);
    if (!zone)
        mr_cfg_error(c, "dns.hosted_zone_id", "is required for the route53 provider");
    if (!ak || !sk)
        mr_cfg_error(c, "dns.access_key_id",
                     "credentials are required (access_key_id/secret_access_key or "
                     "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
    if (mr_cfg_failed(c))
        return NULL;
    r53 *p = mr_calloc(1, sizeof *p);
    p->base = (hc_dns_provider){&r53_ops, base, r, timeout};
    p->endpoint = mr_strdup(ep);
    p->zone_id = mr_strdup(zone);
    p->access_key = mr_strdup(ak);
    p->secret_key = mr_strdup(sk);
    return &p->base;
}
