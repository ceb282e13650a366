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
 * batch atomically. The same batch carries the lease's fence record as a
 * compare-and-set (below, "fencing").
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
#include <strings.h>
#include <time.h>

typedef struct r53 {
    hc_dns_provider base;
    char *endpoint; /* "https://route53.amazonaws.com" */
    char *zone_id;
    char *access_key;
    char *secret_key;
    bool fence_known; /* `fence` is the fence record as last read or written */
    char fence[200];  /* its value, quotes included ("" when there is none) */
    int fence_ttl;
} r53;

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

/* ---------- fencing: the fence TXT record as a compare-and-set ---------- */

/* Route 53 applies a change batch all or nothing, and a DELETE must match the
 * existing record exactly (value and TTL). So a batch that DELETEs the fence
 * as it was read and CREATEs ours succeeds only if nobody changed the fence
 * in between: a writer whose lease was taken over (its term is below the
 * stored one, or the fence moved under it) cannot write, however late its
 * request arrives. The fence as last read or written is kept; a failed batch
 * forgets it, and the next write reads it again (ListResourceRecordSets). */

static void xml_text(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        static const struct {
            const char *ent;
            char c;
        } ents[] = {
            {"&quot;", '"'}, {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}};
        size_t k;
        for (k = 0; k < sizeof ents / sizeof *ents; k++) {
            size_t el = strlen(ents[k].ent);
            if (i + el <= n && strncmp(in + i, ents[k].ent, el) == 0) {
                out[o++] = ents[k].c;
                i += el - 1;
                break;
            }
        }
        if (k == sizeof ents / sizeof *ents)
            out[o++] = in[i];
    }
    out[o] = '\0';
}

/* The text of the first <tag>...</tag> in [from, end), or false. */
static bool xml_field(const char *from, const char *end, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(from, open);
    if (!a || a >= end)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || b > end)
        return false;
    xml_text(a, (size_t)(b - a), out, n);
    return true;
}

void hc_dns_route53_fence_parse(const mr_regions *r, const char *xml, char *value, size_t vlen,
                                int *ttl)
{
    value[0] = '\0';
    *ttl = 0;
    char name[600], got[600], type[16], t[16];
    hc_dns_fence_name(r, name, sizeof name);
    const char *set = xml ? strstr(xml, "<ResourceRecordSet>") : NULL;
    const char *end = set ? strstr(set, "</ResourceRecordSet>") : NULL;
    if (!set || !end)
        return;
    /* ListResourceRecordSets starts at the name asked for, or at the next
     * one when it does not exist: only a TXT set of exactly our name counts. */
    if (!xml_field(set, end, "Name", got, sizeof got) || strcasecmp(got, name) != 0 ||
        !xml_field(set, end, "Type", type, sizeof type) || strcmp(type, "TXT") != 0 ||
        !xml_field(set, end, "TTL", t, sizeof t) || !xml_field(set, end, "Value", value, vlen)) {
        value[0] = '\0';
        return;
    }
    *ttl = atoi(t);
}

static void txt_change(mr_buf *out, const char *action, const char *name, int ttl,
                       const char *value)
{
    /* Fence values are ours: "term=N holder=ID" with ID restricted to
     * [A-Za-z0-9._-] (hc_dns_fence_txt), so only the quotes need escaping. */
    mr_buf_printf(out,
                  "<Change><Action>%s</Action><ResourceRecordSet><Name>%s</Name><Type>TXT</Type>"
                  "<TTL>%d</TTL><ResourceRecords><ResourceRecord><Value>",
                  action, name, ttl);
    for (const char *c = value; *c; c++)
        mr_buf_puts(out, *c == '"' ? "&quot;" : (char[2]){*c, 0});
    mr_buf_puts(out, "</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change>");
}

void hc_dns_route53_fenced_request(const hc_dns_plan *plan, const char *old_fence, int old_ttl,
                                   const hc_dns_fence *fence, const char *comment, mr_buf *out)
{
    mr_buf changes = MR_BUF_INIT;
    hc_dns_route53_request(plan, comment, &changes);
    const char *at = strstr(changes.data, "<Changes>") + strlen("<Changes>");
    mr_buf_printf(out, "%.*s", (int)(at - changes.data), changes.data);
    if (fence) {
        char name[600], txt[200];
        hc_dns_fence_name(plan->regions, name, sizeof name);
        hc_dns_fence_txt(fence, txt, sizeof txt);
        if (old_fence && old_fence[0])
            txt_change(out, "DELETE", name, old_ttl, old_fence);
        txt_change(out, "CREATE", name, plan->regions->ttl, txt);
    }
    mr_buf_puts(out, at);
    mr_buf_free(&changes);
}

typedef struct r53_write {
    r53 *p;
    hc_dns_plan plan;
    hc_dns_fence fence;
    char holder[64];
    char new_fence[200];
    hc_dns_done_cb cb;
    void *ud;
} r53_write;

static void finish(r53_write *w, int rc, const char *err)
{
    w->cb(rc, err, w->ud);
    hc_dns_plan_free(&w->plan);
    free(w);
}

/* Sign and send one request (GET without a body, or POST with one). */
static int r53_request(r53 *p, const char *method, const char *query, const mr_buf *body,
                       hc_http_cb cb, void *ud, char *err, size_t errlen)
{
    mr_buf auth = MR_BUF_INIT;
    int tls, port;
    char host[256], path[1024], url[1600];
    hc_http_parse_url(p->endpoint, &tls, host, sizeof host, &port, path, sizeof path);
    char signed_host[300];
    if (port == (tls ? 443 : 80))
        snprintf(signed_host, sizeof signed_host, "%s", host);
    else
        snprintf(signed_host, sizeof signed_host, "%s:%d", host, port);
    snprintf(path, sizeof path, "/2013-04-01/hostedzone/%s/rrset%s", p->zone_id, body ? "/" : "");
    snprintf(url, sizeof url, "%s%s%s%s", p->endpoint, path, query ? "?" : "", query ? query : "");
    char date[17];
    hc_sigv4_amz_date((long long)time(NULL), date);
    hc_sigv4_header extra[] = {{"content-type", "text/xml"}};
    hc_sigv4_req req = {.method = method,
                        .path = path,
                        .query = query,
                        .host = signed_host,
                        .headers = body ? extra : NULL,
                        .n_headers = body ? 1 : 0,
                        .body = body ? body->data : "",
                        .body_len = body ? body->len : 0,
                        .amz_date = date,
                        .region = "us-east-1",
                        .service = "route53",
                        .access_key = p->access_key,
                        .secret_key = p->secret_key};
    hc_sigv4_sign(&req, &auth, NULL, NULL);
    /* Signed exactly as hc_http sends Host: without the port when it is the
     * scheme's default. */
    const char *post_hdrs[] = {"Content-Type",  "text/xml", "X-Amz-Date", date,
                               "Authorization", auth.data,  NULL};
    const char *get_hdrs[] = {"X-Amz-Date", date, "Authorization", auth.data, NULL};
    int rc = hc_http_request(p->base.base, method, url, body ? post_hdrs : get_hdrs,
                             body ? body->data : NULL, body ? body->len : 0, p->base.timeout_ms, cb,
                             ud, err, errlen);
    mr_buf_free(&auth);
    return rc;
}

static void http_error(char *msg, size_t n, const char *what, int status, const char *body,
                       const char *err)
{
    if (status < 0)
        snprintf(msg, n, "Route 53 %s: %s", what, err);
    else
        snprintf(msg, n, "Route 53 %s: HTTP %d %.300s", what, status, body ? body : "");
}

static void on_change(int status, const char *body, size_t len, const char *err, void *ud)
{
    r53_write *w = ud;
    char msg[512];
    if (status == 200) {
        snprintf(w->p->fence, sizeof w->p->fence, "%s", w->new_fence);
        w->p->fence_ttl = w->p->base.regions->ttl;
        w->p->fence_known = true;
        finish(w, 0, NULL);
        return;
    }
    /* Whatever happened, the fence may have moved: read it before the next
     * write. A rejected batch (InvalidChangeBatch) changed nothing. */
    w->p->fence_known = false;
    http_error(msg, sizeof msg, "ChangeResourceRecordSets", status, body, err);
    finish(w, -1, msg);
}

static void send_change(r53_write *w)
{
    char err[300];
    mr_buf body = MR_BUF_INIT;
    hc_dns_route53_fenced_request(&w->plan, w->p->fence, w->p->fence_ttl, &w->fence,
                                  "meridian-healthcheck", &body);
    if (r53_request(w->p, "POST", NULL, &body, on_change, w, err, sizeof err) != 0)
        finish(w, -1, err);
    mr_buf_free(&body);
}

static void on_list(int status, const char *body, size_t len, const char *err, void *ud)
{
    r53_write *w = ud;
    char msg[512];
    if (status != 200) {
        http_error(msg, sizeof msg, "ListResourceRecordSets", status, body, err);
        finish(w, -1, msg);
        return;
    }
    hc_dns_route53_fence_parse(w->p->base.regions, body, w->p->fence, sizeof w->p->fence,
                               &w->p->fence_ttl);
    w->p->fence_known = true;
    uint64_t stored = hc_dns_fence_term(w->p->fence);
    if (stored > w->fence.term) {
        snprintf(msg, sizeof msg,
                 "Route 53: fenced: the zone was written in lease term %llu, ours is %llu "
                 "(another agent took the lease over)",
                 (unsigned long long)stored, (unsigned long long)w->fence.term);
        finish(w, -1, msg);
        return;
    }
    send_change(w);
}

static int r53_write_plan(hc_dns_provider *base, const hc_dns_plan *plan, const hc_dns_fence *fence,
                          hc_dns_done_cb cb, void *ud, char *err, size_t errlen)
{
    r53 *p = (r53 *)base;
    r53_write *w = mr_calloc(1, sizeof *w);
    w->p = p;
    hc_dns_plan_copy(&w->plan, plan);
    w->fence.term = fence ? fence->term : 0;
    snprintf(w->holder, sizeof w->holder, "%s", fence && fence->holder ? fence->holder : "");
    w->fence.holder = w->holder;
    hc_dns_fence_txt(&w->fence, w->new_fence, sizeof w->new_fence);
    w->cb = cb;
    w->ud = ud;
    if (p->fence_known) {
        /* The DELETE of the fence as we last saw it is the compare. */
        if (hc_dns_fence_term(p->fence) > w->fence.term) {
            snprintf(err, errlen, "Route 53: fenced: lease term %llu was written, ours is %llu",
                     (unsigned long long)hc_dns_fence_term(p->fence),
                     (unsigned long long)w->fence.term);
            hc_dns_plan_free(&w->plan);
            free(w);
            return -1;
        }
        send_change(w);
        return 0;
    }
    char name[600], query[700];
    hc_dns_fence_name(base->regions, name, sizeof name);
    snprintf(query, sizeof query, "maxitems=1&name=%s&type=TXT", name);
    if (r53_request(p, "GET", query, NULL, on_list, w, err, errlen) != 0) {
        hc_dns_plan_free(&w->plan);
        free(w);
        return -1;
    }
    return 0;
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
    p->base = (hc_dns_provider){&r53_ops, base, r, timeout, true};
    p->endpoint = mr_strdup(ep);
    p->zone_id = mr_strdup(zone);
    p->access_key = mr_strdup(ak);
    p->secret_key = mr_strdup(sk);
    return &p->base;
}
