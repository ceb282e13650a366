/*
 * PowerDNS provider: the authoritative server's HTTP API.
 *
 * The client name (dns.ws_name in the regions file) becomes one LUA record
 * whose snippet picks the answer by the client's address, or its EDNS client
 * subnet when a resolver sends one: netmask() tests `bestwho` against each
 * geography's CIDRs, in file order, and the default region's answer covers
 * everyone else. One PATCH replaces the whole rrset, so every geography
 * switches in the same instant and a half-applied plan cannot be served.
 *
 * PowerDNS's own view() helper was not used: it returns one address of the
 * matching set at random, and a region's answer is the whole set.
 *
 * The zone is created (kind Native) if the API says it does not exist, so a
 * fresh pdns_server needs nothing but the API key and enable-lua-records.
 *
 * Fencing. The API has no conditional write (no ETag, If-Match or serial
 * precondition on PATCH), so the writer's lease term goes into a TXT record
 * (_meridian-lease.<zone>) in the same PATCH, and before each PATCH the
 * zone is read and the write refused when a higher term is stored: a writer
 * whose lease was taken over stops at its first write after the new holder
 * wrote. The gap between that read and the PATCH is covered by time alone:
 * the agent starts a write only while its lease outlasts the whole write
 * (timeout_ms bounds every request of it together).
 */
#include "hc_dns.h"
#include "hc_http.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct pdns {
    hc_dns_provider base;
    char *api_url; /* "http://127.0.0.1:8081" */
    char *api_key;
    char *server_id;
} pdns;

typedef struct pdns_write {
    pdns *p;
    char *body;
    hc_dns_done_cb cb;
    void *ud;
    int attempt;         /* 0: PATCH; 1: zone created, PATCH again */
    uint64_t term;       /* our fencing token */
    int64_t deadline_us; /* the whole write ends by then (monotonic) */
} pdns_write;

/* What is left of the write's time for its next request; 0 when none. */
static int left_ms(const pdns_write *w)
{
    int64_t left = (w->deadline_us - mr_now_us()) / 1000;
    return left > 0 ? (int)left : 0;
}

void hc_dns_pdns_lua(const hc_dns_plan *p, mr_buf *out)
{
    const mr_regions *r = p->regions;
    mr_buf_puts(out, "A \";");
    for (size_t g = 0; g < p->n; g++) {
        const mr_region *reg = &r->regions[g];
        if (reg->n_cidrs == 0)
            continue;
        mr_buf_puts(out, "if netmask({");
        for (size_t i = 0; i < reg->n_cidrs; i++)
            mr_buf_printf(out, "%s'%s'", i ? "," : "", reg->cidr_text[i]);
        mr_buf_puts(out, "}) then return {");
        for (size_t i = 0; i < p->n_addrs[g]; i++)
            mr_buf_printf(out, "%s'%s'", i ? "," : "", p->addrs[g][i]);
        mr_buf_puts(out, "} end ");
    }
    size_t d = r->default_region;
    mr_buf_puts(out, "return {");
    for (size_t i = 0; i < p->n_addrs[d]; i++)
        mr_buf_printf(out, "%s'%s'", i ? "," : "", p->addrs[d][i]);
    mr_buf_puts(out, "}\"");
}

static void zone_url(pdns *p, const char *zone, char *out, size_t n)
{
    if (zone)
        snprintf(out, n, "%s/api/v1/servers/%s/zones/%s", p->api_url, p->server_id, zone);
    else
        snprintf(out, n, "%s/api/v1/servers/%s/zones", p->api_url, p->server_id);
}

static void finish(pdns_write *w, int rc, const char *err)
{
    w->cb(rc, err, w->ud);
    free(w->body);
    free(w);
}

static int send_patch(pdns_write *w, char *err, size_t errlen);

/* The write failed with this reply (status < 0: no reply, `err` says why). */
static void fail_reply(pdns_write *w, int status, const char *body, const char *err)
{
    char msg[512];
    if (status < 0)
        snprintf(msg, sizeof msg, "PowerDNS API %s: %s", w->p->api_url, err);
    else
        snprintf(msg, sizeof msg, "PowerDNS API %s: HTTP %d %.200s", w->p->api_url, status,
                 body ? body : "");
    finish(w, -1, msg);
}

static void on_create(int status, const char *body, size_t len, const char *err, void *ud)
{
    pdns_write *w = ud;
    char msg[512];
    if (status != 201 && status != 409) {
        snprintf(msg, sizeof msg, "PowerDNS: creating zone %s failed: %s%d %.200s",
                 w->p->base.regions->zone, status < 0 ? err : "HTTP ", status < 0 ? 0 : status,
                 body ? body : "");
        finish(w, -1, msg);
        return;
    }
    w->attempt = 1;
    if (send_patch(w, msg, sizeof msg) != 0)
        finish(w, -1, msg);
}

static void on_patch(int status, const char *body, size_t len, const char *err, void *ud)
{
    pdns_write *w = ud;
    char msg[512];
    if (status == 204 || status == 200) {
        finish(w, 0, NULL);
        return;
    }
    if ((status == 404 || (status == 422 && body && strstr(body, "Could not find"))) &&
        w->attempt == 0) {
        mr_log_info("PowerDNS: zone %s does not exist; creating it", w->p->base.regions->zone);
        json_t *z = json_pack("{s:s, s:s, s:[]}", "name", w->p->base.regions->zone, "kind",
                              "Native", "nameservers");
        json_t *ns = json_object_get(z, "nameservers");
        for (size_t i = 0; i < w->p->base.regions->n_nameservers; i++)
            json_array_append_new(ns, json_string(w->p->base.regions->nameservers[i].name));
        char *zbody = json_dumps(z, JSON_COMPACT);
        json_decref(z);
        char url[1024];
        zone_url(w->p, NULL, url, sizeof url);
        const char *hdrs[] = {"X-API-Key", w->p->api_key, "Content-Type", "application/json", NULL};
        int rc = left_ms(w)
                     ? hc_http_request(w->p->base.base, "POST", url, hdrs, zbody, strlen(zbody),
                                       left_ms(w), on_create, w, msg, sizeof msg)
                     : (snprintf(msg, sizeof msg, "PowerDNS: out of time"), -1);
        free(zbody);
        if (rc != 0)
            finish(w, -1, msg);
        return;
    }
    fail_reply(w, status, body, err);
}

static int send_patch(pdns_write *w, char *err, size_t errlen)
{
    char url[1024];
    zone_url(w->p, w->p->base.regions->zone, url, sizeof url);
    const char *hdrs[] = {"X-API-Key", w->p->api_key, "Content-Type", "application/json", NULL};
    if (!left_ms(w)) {
        snprintf(err, errlen, "PowerDNS: the write ran out of its %d ms", w->p->base.timeout_ms);
        return -1;
    }
    return hc_http_request(w->p->base.base, "PATCH", url, hdrs, w->body, strlen(w->body),
                           left_ms(w), on_patch, w, err, errlen);
}

/* The term stored in the zone's fence record, 0 when there is none. */
static uint64_t stored_term(const pdns *p, const char *body, size_t len)
{
    char name[600];
    hc_dns_fence_name(p->base.regions, name, sizeof name);
    json_t *z = json_loadb(body, len, 0, NULL);
    uint64_t best = 0;
    size_t i, k;
    json_t *rr, *rec;
    json_array_foreach(json_object_get(z, "rrsets"), i, rr)
    {
        const char *n = json_string_value(json_object_get(rr, "name"));
        const char *t = json_string_value(json_object_get(rr, "type"));
        if (!n || !t || strcmp(t, "TXT") != 0 || strcasecmp(n, name) != 0)
            continue;
        json_array_foreach(json_object_get(rr, "records"), k, rec)
        {
            uint64_t v = hc_dns_fence_term(json_string_value(json_object_get(rec, "content")));
            if (v > best)
                best = v;
        }
    }
    json_decref(z);
    return best;
}

static void on_fence_read(int status, const char *body, size_t len, const char *err, void *ud)
{
    pdns_write *w = ud;
    char msg[512];
    if (status == 200) {
        uint64_t t = stored_term(w->p, body, len);
        if (t > w->term) {
            snprintf(msg, sizeof msg,
                     "PowerDNS: fenced: the zone was written in lease term %llu, ours is %llu "
                     "(another agent took the lease over)",
                     (unsigned long long)t, (unsigned long long)w->term);
            finish(w, -1, msg);
            return;
        }
    } else if (status != 404 && !(status == 422 && body && strstr(body, "Could not find"))) {
        /* A zone that does not exist yet has no fence: PATCH creates it. */
        fail_reply(w, status, body, err);
        return;
    }
    if (send_patch(w, msg, sizeof msg) != 0)
        finish(w, -1, msg);
}

static int pdns_write_plan(hc_dns_provider *base, const hc_dns_plan *plan,
                           const hc_dns_fence *fence, hc_dns_done_cb cb, void *ud, char *err,
                           size_t errlen)
{
    pdns *p = (pdns *)base;
    mr_buf lua = MR_BUF_INIT;
    hc_dns_pdns_lua(plan, &lua);
    json_t *rrset =
        json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:b}]}", "name", base->regions->ws_fqdn, "type",
                  "LUA", "ttl", base->regions->ttl, "changetype", "REPLACE", "records", "content",
                  lua.data, "disabled", 0);
    json_t *root = json_pack("{s:[o]}", "rrsets", rrset);
    /* Each region's own name: plain A records of its relays (regions/README.md). */
    json_t *rrsets = json_object_get(root, "rrsets");
    for (size_t g = 0; g < plan->n; g++) {
        json_t *recs = json_array();
        for (size_t i = 0; i < plan->n_own[g]; i++)
            json_array_append_new(
                recs, json_pack("{s:s, s:b}", "content", plan->own[g][i], "disabled", 0));
        json_array_append_new(rrsets, json_pack("{s:s, s:s, s:i, s:s, s:o}", "name",
                                                base->regions->regions[g].fqdn, "type", "A", "ttl",
                                                base->regions->ttl, "changetype", "REPLACE",
                                                "records", recs));
    }
    if (fence) {
        char name[600], txt[200];
        hc_dns_fence_name(base->regions, name, sizeof name);
        hc_dns_fence_txt(fence, txt, sizeof txt);
        json_array_append_new(rrsets,
                              json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:b}]}", "name", name,
                                        "type", "TXT", "ttl", base->regions->ttl, "changetype",
                                        "REPLACE", "records", "content", txt, "disabled", 0));
    }
    pdns_write *w = mr_calloc(1, sizeof *w);
    w->p = p;
    w->body = json_dumps(root, JSON_COMPACT);
    w->cb = cb;
    w->ud = ud;
    w->term = fence ? fence->term : 0;
    w->deadline_us = mr_now_us() + (int64_t)base->timeout_ms * 1000;
    json_decref(root);
    mr_buf_free(&lua);
    char url[1024];
    zone_url(p, base->regions->zone, url, sizeof url);
    const char *hdrs[] = {"X-API-Key", p->api_key, NULL};
    int rc = fence ? hc_http_request(base->base, "GET", url, hdrs, NULL, 0, base->timeout_ms,
                                     on_fence_read, w, err, errlen)
                   : send_patch(w, err, errlen);
    if (rc != 0) {
        free(w->body);
        free(w);
        return -1;
    }
    return 0;
}

static void pdns_destroy(hc_dns_provider *base)
{
    pdns *p = (pdns *)base;
    free(p->api_url);
    free(p->api_key);
    free(p->server_id);
    free(p);
}

static const hc_dns_ops pdns_ops = {"powerdns", pdns_write_plan, pdns_destroy};

hc_dns_provider *hc_dns_pdns_new(struct event_base *base, const mr_regions *r, mr_cfg *c,
                                 json_t *conf)
{
    static const char *const keys[] = {"type",      "api_url",    "api_key", "api_key_file",
                                       "server_id", "timeout_ms", NULL};
    mr_cfg_check_keys(c, conf, "dns", keys);
    const char *url = mr_cfg_str(c, conf, "dns", "api_url", NULL);
    const char *key = mr_cfg_str(c, conf, "dns", "api_key", NULL);
    const char *key_file = mr_cfg_str(c, conf, "dns", "api_key_file", NULL);
    const char *server = mr_cfg_str(c, conf, "dns", "server_id", "localhost");
    int timeout = (int)mr_cfg_int(c, conf, "dns", "timeout_ms", 1500, 100, 60000);
    if (!url)
        mr_cfg_error(c, "dns.api_url", "is required for the powerdns provider");
    char keybuf[512] = "";
    if (!key && key_file) {
        FILE *f = fopen(key_file, "r");
        if (!f || !fgets(keybuf, sizeof keybuf, f))
            mr_cfg_error(c, "dns.api_key_file", "cannot read %s", key_file);
        if (f)
            (void)fclose(f); /* opened to read only */
        keybuf[strcspn(keybuf, "\r\n")] = '\0';
        key = keybuf;
    }
    if (!key)
        mr_cfg_error(c, "dns.api_key", "is required for the powerdns provider");
    int tls, port;
    char host[256], path[256];
    if (url && hc_http_parse_url(url, &tls, host, sizeof host, &port, path, sizeof path) != 0)
        mr_cfg_error(c, "dns.api_url", "must be an http:// or https:// URL");
    if (mr_cfg_failed(c))
        return NULL;
    pdns *p = mr_calloc(1, sizeof *p);
    p->base = (hc_dns_provider){&pdns_ops, base, r, timeout};
    p->api_url = mr_strdup(url);
    size_t n = strlen(p->api_url);
    while (n && p->api_url[n - 1] == '/')
        p->api_url[--n] = '\0';
    p->api_key = mr_strdup(key);
    p->server_id = mr_strdup(server);
    return &p->base;
}
