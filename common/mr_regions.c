/*
 * Regions file loader (the DNS routing policy built on it is in
 * mr_regions_route.c).
 *
 * Loading works in two passes over the jansson tree. The first pass reads
 * every region with the typed getters of mr_config (which keep the first
 * error with its key path) and checks what can be checked locally: syntax of
 * names, addresses, CIDRs and URLs. The second pass checks what needs the
 * whole file: failover lists naming existing regions, uniqueness of names,
 * ids, hostnames, continents and countries, overlapping CIDRs, colliding
 * listeners and the shared relay port.
 *
 * Strings point into the jansson tree, which lives as long as the
 * mr_regions value; derived strings and arrays are recorded in a small
 * allocation list so mr_regions_free releases everything in one place.
 */
#include "mr_regions.h"

#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct regions_impl {
    mr_regions pub; /* first, so the public pointer converts back */
    json_t *root;
    char *file;
    void **allocs;
    size_t n_allocs, cap_allocs;
    mr_relay_ep *all_relays; /* every relay in file order; regions point into it */
} regions_impl;

static void *track(regions_impl *ri, void *p)
{
    if (ri->n_allocs == ri->cap_allocs) {
        ri->cap_allocs = ri->cap_allocs ? ri->cap_allocs * 2 : 32;
        ri->allocs = mr_realloc(ri->allocs, ri->cap_allocs * sizeof *ri->allocs);
    }
    ri->allocs[ri->n_allocs++] = p;
    return p;
}

static void *tcalloc(regions_impl *ri, size_t n, size_t size)
{
    /* Zero-length arrays still get a valid pointer, so callers never test for NULL. */
    return track(ri, mr_calloc(n ? n : 1, size));
}

static char *tprintf(regions_impl *ri, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *tprintf(regions_impl *ri, const char *fmt, ...)
{
    mr_buf b = MR_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    mr_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return track(ri, b.data ? b.data : mr_strdup(""));
}

/* ---- syntax checks ---- */

static bool is_label(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Dot-separated labels; `absolute` demands (and strips) one trailing dot. */
static bool is_dns_name(const char *s, bool absolute)
{
    size_t len = strlen(s);
    if (absolute) {
        if (len < 2 || s[len - 1] != '.')
            return false;
        len--;
    }
    if (len == 0 || len > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!is_label(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool is_region_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MR_REGION_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

static bool is_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

int mr_regions_parse_ip(const char *s, uint8_t out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 6;
    return 0;
}

/* Returns NULL on success or a description of the problem. */
static const char *parse_cidr(const char *s, mr_cidr *c)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return "must be ADDRESS/PREFIX";
    char addr[64];
    size_t al = (size_t)(slash - s);
    if (al == 0 || al >= sizeof addr)
        return "bad address";
    memcpy(addr, s, al);
    addr[al] = '\0';
    c->family = mr_regions_parse_ip(addr, c->addr);
    if (!c->family)
        return "bad address";
    char *end;
    long p = strtol(slash + 1, &end, 10);
    int max = c->family == 4 ? 32 : 128;
    if (end == slash + 1 || *end || !isdigit((unsigned char)slash[1]) || p < 0 || p > max)
        return c->family == 4 ? "prefix must be 0..32" : "prefix must be 0..128";
    c->prefix = (int)p;
    int bytes = max / 8;
    for (int bit = c->prefix; bit < bytes * 8; bit++)
        if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
            return "host bits are set after the prefix";
    return NULL;
}

bool mr_regions_cidr_contains(const mr_cidr *c, int family, const uint8_t *addr, int prefix)
{
    if (c->family != family || prefix < c->prefix)
        return false;
    for (int bit = 0; bit < c->prefix; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        if ((c->addr[bit / 8] & m) != (addr[bit / 8] & m))
            return false;
    }
    return true;
}

static bool cidr_overlap(const mr_cidr *a, const mr_cidr *b)
{
    return mr_regions_cidr_contains(a, b->family, b->addr, b->prefix) ||
           mr_regions_cidr_contains(b, a->family, a->addr, a->prefix);
}

/*
 * Split "scheme://host[:port][/path]" with scheme one of `s1`/`s2` (default
 * ports d1/d2). Returns NULL on success or a description of the problem.
 */
static const char *parse_url(const char *url, const char *s1, int d1, const char *s2, int d2,
                             char *host, size_t hostlen, int *port)
{
    const char *p = strstr(url, "://");
    if (!p)
        return "must be a URL (scheme://host:port/)";
    size_t sl = (size_t)(p - url);
    int defport;
    if (sl == strlen(s1) && strncmp(url, s1, sl) == 0)
        defport = d1;
    else if (sl == strlen(s2) && strncmp(url, s2, sl) == 0)
        defport = d2;
    else
        return "has an unsupported scheme";
    const char *h = p + 3;
    const char *end = h + strcspn(h, "/?#");
    char hp[300];
    size_t hl = (size_t)(end - h);
    if (hl == 0 || hl >= sizeof hp)
        return "has no host";
    memcpy(hp, h, hl);
    hp[hl] = '\0';
    if (strchr(hp, '@'))
        return "must not contain credentials";
    if (hp[0] != '[' && strchr(hp, ':') != strrchr(hp, ':'))
        return "must write an IPv6 host in brackets";
    bool has_port = hp[0] == '[' ? strstr(hp, "]:") != NULL : strchr(hp, ':') != NULL;
    if (has_port) {
        if (mr_parse_hostport(hp, host, hostlen, port) != 0 || *port == 0 || host[0] == '\0')
            return "has a bad host or port";
    } else {
        size_t n = strlen(hp);
        if (hp[0] == '[') {
            if (hp[n - 1] != ']')
                return "has a bad host";
            hp[n - 1] = '\0';
            memmove(hp, hp + 1, n - 1);
            n -= 2;
        }
        if (n >= hostlen)
            return "has a bad host";
        memcpy(host, hp, n + 1);
        *port = defport;
    }
    return NULL;
}

/* ---- typed getters on top of mr_config ---- */

static const char *req_str(mr_cfg *c, json_t *obj, const char *path, const char *key)
{
    const char *s = mr_cfg_str(c, obj, path, key, NULL);
    if (!s || !*s) {
        if (!mr_cfg_failed(c))
            mr_cfg_error(c, *path ? path : "(top level)", "\"%s\" is required (non-empty string)",
                         key);
        return "";
    }
    return s;
}

static int64_t req_int(mr_cfg *c, json_t *obj, const char *path, const char *key, int64_t min,
                       int64_t max)
{
    if (obj && !json_object_get(obj, key))
        mr_cfg_error(c, *path ? path : "(top level)", "\"%s\" is required", key);
    return mr_cfg_int(c, obj, path, key, min, min, max);
}

static json_t *req_obj(mr_cfg *c, json_t *obj, const char *path, const char *key)
{
    json_t *o = mr_cfg_obj(c, obj, path, key);
    if (!o && !mr_cfg_failed(c))
        mr_cfg_error(c, *path ? path : "(top level)", "\"%s\" is required (object)", key);
    return o;
}

/* Array of objects; an error when absent (if required) or of the wrong type. */
static json_t *obj_array(mr_cfg *c, json_t *obj, const char *path, const char *key, bool required,
                         bool nonempty)
{
    json_t *a = obj ? json_object_get(obj, key) : NULL;
    char kp[256];
    snprintf(kp, sizeof kp, "%s%s%s", path, *path ? "." : "", key);
    if (!a) {
        if (required)
            mr_cfg_error(c, *path ? path : "(top level)", "\"%s\" is required (array)", key);
        return NULL;
    }
    if (!json_is_array(a)) {
        mr_cfg_error(c, kp, "must be an array of objects");
        return NULL;
    }
    if (nonempty && json_array_size(a) == 0) {
        mr_cfg_error(c, kp, "must not be empty");
        return NULL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        if (!json_is_object(e)) {
            mr_cfg_error(c, kp, "element %zu must be an object", i);
            return NULL;
        }
    }
    return a;
}

/* A string array (possibly absent = empty) copied into a tracked pointer array. */
static const char *const *str_list(regions_impl *ri, mr_cfg *c, json_t *obj, const char *path,
                                   const char *key, bool required, size_t *n)
{
    if (required && obj && !json_object_get(obj, key))
        mr_cfg_error(c, path, "\"%s\" is required (array of strings, may be empty)", key);
    json_t *a = mr_cfg_str_array(c, obj, path, key);
    *n = a ? json_array_size(a) : 0;
    const char **v = tcalloc(ri, *n, sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = json_string_value(json_array_get(a, i));
    return v;
}

static const char *req_ip(mr_cfg *c, json_t *obj, const char *path, const char *key)
{
    const char *s = req_str(c, obj, path, key);
    uint8_t b[16];
    if (*s && !mr_regions_parse_ip(s, b)) {
        char kp[256];
        snprintf(kp, sizeof kp, "%s.%s", path, key);
        mr_cfg_error(c, kp, "\"%s\" is not an IPv4 or IPv6 address literal", s);
    }
    return s;
}

/* ---- listeners (address, port) that must not collide ---- */

typedef struct listener {
    int family;
    uint8_t addr[16];
    int port;
    char what[160];
} listener;

typedef struct listeners {
    listener *v;
    size_t n, cap;
} listeners;

static void listen_add(listeners *l, mr_cfg *c, const char *host, int port, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void listen_add(listeners *l, mr_cfg *c, const char *host, int port, const char *fmt, ...)
{
    listener x = {.port = port};
    /* Host names cannot be compared without resolving them: only literals are checked. */
    x.family = mr_regions_parse_ip(host, x.addr);
    if (!x.family || port <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(x.what, sizeof x.what, fmt, ap); /* a label for messages: cut if long */
    va_end(ap);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].family == x.family && l->v[i].port == port &&
            memcmp(l->v[i].addr, x.addr, 16) == 0) {
            mr_cfg_error(c, x.what, "listens on %s port %d, already used by %s", host, port,
                         l->v[i].what);
            return;
        }
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->v = mr_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = x;
}

/* ---- loading ---- */

static const char *const continent_codes[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA", NULL};

static void load_geo(regions_impl *ri, mr_cfg *c, json_t *ro, const char *rp, mr_region *g)
{
    char gp[128];
    snprintf(gp, sizeof gp, "%s.geo", rp);
    json_t *geo = req_obj(c, ro, rp, "geo");
    static const char *const keys[] = {"continents", "countries", "cidrs", NULL};
    mr_cfg_check_keys(c, geo, gp, keys);
    if (!geo)
        return;
    g->continents = str_list(ri, c, geo, gp, "continents", false, &g->n_continents);
    g->countries = str_list(ri, c, geo, gp, "countries", false, &g->n_countries);
    g->cidr_text = str_list(ri, c, geo, gp, "cidrs", false, &g->n_cidrs);
    if (!mr_cfg_failed(c) && g->n_continents + g->n_countries + g->n_cidrs == 0)
        mr_cfg_error(c, gp, "needs at least one continent, country or CIDR");
    for (size_t i = 0; i < g->n_continents; i++) {
        bool ok = false;
        for (const char *const *k = continent_codes; *k; k++)
            ok |= strcmp(*k, g->continents[i]) == 0;
        if (!ok) {
            char p[192];
            snprintf(p, sizeof p, "%s.continents[%zu]", gp, i);
            mr_cfg_error(c, p, "unknown continent \"%s\" (one of AF AN AS EU NA OC SA)",
                         g->continents[i]);
        }
    }
    for (size_t i = 0; i < g->n_countries; i++) {
        const char *s = g->countries[i];
        if (strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1])) {
            char p[192];
            snprintf(p, sizeof p, "%s.countries[%zu]", gp, i);
            mr_cfg_error(c, p, "\"%s\" is not an ISO 3166-1 alpha-2 code (two upper-case letters)",
                         s);
        }
    }
    mr_cidr *cidrs = tcalloc(ri, g->n_cidrs, sizeof *cidrs);
    for (size_t i = 0; i < g->n_cidrs; i++) {
        const char *why = parse_cidr(g->cidr_text[i], &cidrs[i]);
        if (why) {
            char p[192];
            snprintf(p, sizeof p, "%s.cidrs[%zu]", gp, i);
            mr_cfg_error(c, p, "bad CIDR \"%s\": %s", g->cidr_text[i], why);
        }
    }
    g->cidrs = cidrs;
}

static void load_relay(mr_cfg *c, json_t *o, const char *p, mr_relay_ep *ep, listeners *ls)
{
    static const char *const keys[] = {"id", "address", "port", "ws_url", "admin_url", NULL};
    mr_cfg_check_keys(c, o, p, keys);
    ep->id = req_str(c, o, p, "id");
    if (*ep->id && !is_token(ep->id)) {
        char kp[256];
        snprintf(kp, sizeof kp, "%s.id", p);
        mr_cfg_error(c, kp, "\"%s\" must be 1..128 characters of [A-Za-z0-9_-]", ep->id);
    }
    ep->address = req_ip(c, o, p, "address");
    ep->port = (int)req_int(c, o, p, "port", 1, 65535);
    ep->ws_url = req_str(c, o, p, "ws_url");
    ep->admin_url = req_str(c, o, p, "admin_url");
    if (mr_cfg_failed(c))
        return;
    char host[256], kp[256];
    int port;
    const char *why = parse_url(ep->ws_url, "ws", 80, "wss", 443, host, sizeof host, &port);
    snprintf(kp, sizeof kp, "%s.ws_url", p);
    if (why)
        mr_cfg_error(c, kp, "\"%s\" %s (ws:// or wss://)", ep->ws_url, why);
    else if (port != ep->port)
        mr_cfg_error(c, kp, "port %d differs from \"port\": %d", port, ep->port);
    listen_add(ls, c, ep->address, ep->port, "%s.port", p);
    snprintf(kp, sizeof kp, "%s.admin_url", p);
    why = parse_url(ep->admin_url, "http", 80, "https", 443, host, sizeof host, &port);
    if (why)
        mr_cfg_error(c, kp, "\"%s\" %s (http:// or https://)", ep->admin_url, why);
    else
        listen_add(ls, c, host, port, "%s", kp);
}

static void load_nats(regions_impl *ri, mr_cfg *c, json_t *ro, const char *rp, mr_region *g,
                      listeners *ls)
{
    char np[128];
    snprintf(np, sizeof np, "%s.nats", rp);
    json_t *nats = req_obj(c, ro, rp, "nats");
    static const char *const keys[] = {"servers", NULL};
    mr_cfg_check_keys(c, nats, np, keys);
    json_t *servers = obj_array(c, nats, np, "servers", nats != NULL, true);
    g->n_nats = servers ? json_array_size(servers) : 0;
    mr_nats_server *v = tcalloc(ri, g->n_nats, sizeof *v);
    g->nats = v;
    for (size_t i = 0; i < g->n_nats; i++) {
        json_t *o = json_array_get(servers, i);
        char p[192];
        snprintf(p, sizeof p, "%s.servers[%zu]", np, i);
        static const char *const skeys[] = {
            "name", "host", "client_port", "cluster_port", "gateway_port", "monitor_port", NULL};
        mr_cfg_check_keys(c, o, p, skeys);
        mr_nats_server *s = &v[i];
        s->name = req_str(c, o, p, "name");
        if (*s->name && !is_token(s->name)) {
            char kp[256];
            snprintf(kp, sizeof kp, "%s.name", p);
            mr_cfg_error(c, kp, "\"%s\" must be 1..128 characters of [A-Za-z0-9_-]", s->name);
        }
        s->host = req_ip(c, o, p, "host");
        s->client_port = (int)req_int(c, o, p, "client_port", 1, 65535);
        s->cluster_port = (int)req_int(c, o, p, "cluster_port", 1, 65535);
        s->gateway_port = (int)req_int(c, o, p, "gateway_port", 1, 65535);
        s->monitor_port = (int)mr_cfg_int(c, o, p, "monitor_port", 0, 1, 65535);
        bool v6 = strchr(s->host, ':') != NULL;
        s->client_url =
            tprintf(ri, v6 ? "nats://[%s]:%d" : "nats://%s:%d", s->host, s->client_port);
        s->gateway_url =
            tprintf(ri, v6 ? "nats://[%s]:%d" : "nats://%s:%d", s->host, s->gateway_port);
        listen_add(ls, c, s->host, s->client_port, "%s.client_port", p);
        listen_add(ls, c, s->host, s->cluster_port, "%s.cluster_port", p);
        listen_add(ls, c, s->host, s->gateway_port, "%s.gateway_port", p);
        if (s->monitor_port)
            listen_add(ls, c, s->host, s->monitor_port, "%s.monitor_port", p);
    }
}

static const char *http_url(mr_cfg *c, json_t *o, const char *p, const char *key, listeners *ls)
{
    const char *u = req_str(c, o, p, key);
    if (!*u)
        return u;
    char host[256], kp[200];
    int port;
    snprintf(kp, sizeof kp, "%s.%s", p, key);
    const char *why = parse_url(u, "http", 80, "https", 443, host, sizeof host, &port);
    if (why)
        mr_cfg_error(c, kp, "\"%s\" %s (http:// or https://)", u, why);
    else
        listen_add(ls, c, host, port, "%s", kp);
    return u;
}

static void load_region(regions_impl *ri, mr_cfg *c, json_t *ro, size_t idx, mr_region *g,
                        json_t **failover_json, listeners *ls, size_t *relay_base)
{
    char rp[64];
    snprintf(rp, sizeof rp, "regions[%zu]", idx);
    static const char *const keys[] = {
        "name",   "dns_name", "geo",     "failover",    "min_healthy_relays",
        "relays", "nats",     "control", "healthcheck", NULL};
    mr_cfg_check_keys(c, ro, rp, keys);
    g->name = req_str(c, ro, rp, "name");
    if (*g->name && !is_region_name(g->name)) {
        char kp[256];
        snprintf(kp, sizeof kp, "%s.name", rp);
        mr_cfg_error(c, kp,
                     "\"%s\" must be 1..%d characters of [a-z0-9-], not starting or "
                     "ending with '-'",
                     g->name, MR_REGION_NAME_MAX);
    }
    g->dns_name = mr_cfg_str(c, ro, rp, "dns_name", NULL);
    if (g->dns_name && !is_dns_name(g->dns_name, false)) {
        char kp[256];
        snprintf(kp, sizeof kp, "%s.dns_name", rp);
        mr_cfg_error(c, kp,
                     "\"%s\" is not a relative DNS name (labels of [A-Za-z0-9-], no "
                     "trailing dot)",
                     g->dns_name);
    }
    load_geo(ri, c, ro, rp, g);

    char fp[128];
    snprintf(fp, sizeof fp, "%s.failover", rp);
    if (!json_object_get(ro, "failover"))
        mr_cfg_error(c, rp, "\"failover\" is required (array of region names, may be empty)");
    *failover_json = mr_cfg_str_array(c, ro, rp, "failover");

    json_t *relays = obj_array(c, ro, rp, "relays", true, true);
    g->n_relays = relays ? json_array_size(relays) : 0;
    g->relays = ri->all_relays + *relay_base;
    for (size_t i = 0; i < g->n_relays; i++) {
        char p[192];
        snprintf(p, sizeof p, "%s.relays[%zu]", rp, i);
        mr_relay_ep *ep = &ri->all_relays[*relay_base + i];
        ep->region = idx;
        load_relay(c, json_array_get(relays, i), p, ep, ls);
    }
    *relay_base += g->n_relays;

    g->min_healthy_relays = 1;
    if (g->n_relays > 0)
        g->min_healthy_relays =
            (int)mr_cfg_int(c, ro, rp, "min_healthy_relays", 1, 1, (int64_t)g->n_relays);

    load_nats(ri, c, ro, rp, g, ls);

    char cp[128];
    snprintf(cp, sizeof cp, "%s.control", rp);
    json_t *ctl = mr_cfg_obj(c, ro, rp, "control");
    if (ctl) {
        static const char *const ckeys[] = {"address", "api_url", "admin_url", NULL};
        mr_cfg_check_keys(c, ctl, cp, ckeys);
        g->has_control = true;
        g->control_address = req_ip(c, ctl, cp, "address");
        g->control_api_url = http_url(c, ctl, cp, "api_url", ls);
        g->control_admin_url = http_url(c, ctl, cp, "admin_url", ls);
    }
    char hp[128];
    snprintf(hp, sizeof hp, "%s.healthcheck", rp);
    json_t *hc = mr_cfg_obj(c, ro, rp, "healthcheck");
    if (hc) {
        static const char *const hkeys[] = {"url", NULL};
        mr_cfg_check_keys(c, hc, hp, hkeys);
        g->healthcheck_url = http_url(c, hc, hp, "url", ls);
    }
}

static void load_dns(regions_impl *ri, mr_cfg *c, json_t *dns, const char **region_tmpl,
                     const char **default_region)
{
    mr_regions *r = &ri->pub;
    static const char *const keys[] = {"zone", "ws_name",        "api_name",    "region_name",
                                       "ttl",  "default_region", "nameservers", NULL};
    mr_cfg_check_keys(c, dns, "dns", keys);
    r->zone = req_str(c, dns, "dns", "zone");
    if (*r->zone && !is_dns_name(r->zone, true))
        mr_cfg_error(c, "dns.zone",
                     "\"%s\" must be a fully qualified name with a trailing dot (\"example.com.\")",
                     r->zone);
    r->ws_name = req_str(c, dns, "dns", "ws_name");
    if (*r->ws_name && !is_dns_name(r->ws_name, false))
        mr_cfg_error(c, "dns.ws_name", "\"%s\" is not a relative DNS name (no trailing dot)",
                     r->ws_name);
    r->api_name = req_str(c, dns, "dns", "api_name");
    if (*r->api_name && !is_dns_name(r->api_name, false))
        mr_cfg_error(c, "dns.api_name", "\"%s\" is not a relative DNS name (no trailing dot)",
                     r->api_name);
    *region_tmpl = req_str(c, dns, "dns", "region_name");
    const char *ph = strstr(*region_tmpl, "{region}");
    if (**region_tmpl && (!ph || strstr(ph + 1, "{region}")))
        mr_cfg_error(c, "dns.region_name", "\"%s\" must contain \"{region}\" exactly once",
                     *region_tmpl);
    r->ttl = (int)req_int(c, dns, "dns", "ttl", 1, 86400);
    *default_region = req_str(c, dns, "dns", "default_region");
    r->ws_fqdn = tprintf(ri, "%s.%s", r->ws_name, r->zone);
    r->api_fqdn = tprintf(ri, "%s.%s", r->api_name, r->zone);

    json_t *ns = obj_array(c, dns, "dns", "nameservers", true, true);
    r->n_nameservers = ns ? json_array_size(ns) : 0;
    mr_nameserver *v = tcalloc(ri, r->n_nameservers, sizeof *v);
    r->nameservers = v;
    for (size_t i = 0; i < r->n_nameservers; i++) {
        char p[192];
        snprintf(p, sizeof p, "dns.nameservers[%zu]", i);
        json_t *o = json_array_get(ns, i);
        static const char *const nkeys[] = {"name", "address", "port", NULL};
        mr_cfg_check_keys(c, o, p, nkeys);
        v[i].name = req_str(c, o, p, "name");
        if (*v[i].name && !is_dns_name(v[i].name, true)) {
            char kp[256];
            snprintf(kp, sizeof kp, "%s.name", p);
            mr_cfg_error(c, kp, "\"%s\" must be a fully qualified name with a trailing dot",
                         v[i].name);
        }
        v[i].address = req_ip(c, o, p, "address");
        v[i].port = (int)mr_cfg_int(c, o, p, "port", 53, 1, 65535);
    }
}

static void check_hostport(mr_cfg *c, json_t *local, const char *key, const char **out,
                           listeners *ls)
{
    *out = mr_cfg_str(c, local, "local", key, NULL);
    if (!*out)
        return;
    char host[128], kp[64];
    int port;
    snprintf(kp, sizeof kp, "local.%s", key);
    if (mr_parse_hostport(*out, host, sizeof host, &port) != 0 || port == 0 || !host[0])
        mr_cfg_error(c, kp, "\"%s\" must be HOST:PORT", *out);
    else
        listen_add(ls, c, host, port, "%s", kp);
}

/*
 * ---- whole-file checks ----
 *
 * One function per rule, run in this order by cross_check(); the first
 * error is the one reported (mr_cfg keeps it), so a check may return as
 * soon as the file has failed.
 */

/* Region names are unique. */
static void check_region_names_unique(const mr_regions *r, mr_cfg *c)
{
    for (size_t i = 0; i < r->n_regions && !mr_cfg_failed(c); i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->regions[i].name, r->regions[j].name) == 0) {
                char p[192];
                snprintf(p, sizeof p, "regions[%zu].name", i);
                mr_cfg_error(c, p, "duplicate region name \"%s\" (also regions[%zu])",
                             r->regions[i].name, j);
            }
}

/* dns.default_region names a region of the file. */
static void resolve_default_region(mr_regions *r, mr_cfg *c, const char *default_region)
{
    int def = mr_regions_find(r, default_region);
    if (def < 0 && !mr_cfg_failed(c))
        mr_cfg_error(c, "dns.default_region", "unknown region \"%s\"", default_region);
    r->default_region = def < 0 ? 0 : (size_t)def;
}

/*
 * Every region gets its direct DNS name (its own dns_name, or the
 * dns.region_name template with {region} replaced) and its FQDN; a
 * template that yields a bad name is an error. `derived[i]` tells which
 * names came from the template (for error messages).
 */
static void derive_region_names(regions_impl *ri, mr_cfg *c, const char *region_tmpl, bool *derived)
{
    mr_regions *r = &ri->pub;
    mr_region *regs = (mr_region *)r->regions;
    for (size_t i = 0; i < r->n_regions; i++) {
        mr_region *g = &regs[i];
        derived[i] = !g->dns_name;
        if (!g->dns_name) {
            const char *ph = strstr(region_tmpl, "{region}");
            if (ph) {
                g->dns_name = tprintf(ri, "%.*s%s%s", (int)(ph - region_tmpl), region_tmpl, g->name,
                                      ph + strlen("{region}"));
                if (!is_dns_name(g->dns_name, false) && !mr_cfg_failed(c))
                    mr_cfg_error(c, "dns.region_name", "gives the bad DNS name \"%s\" for %s",
                                 g->dns_name, g->name);
            } else {
                g->dns_name = "";
            }
        }
        g->fqdn = tprintf(ri, "%s.%s", g->dns_name, r->zone);
    }
}

/* The client name, the API name and every region's direct name are distinct (case-insensitive). */
static void check_hostnames_unique(const mr_regions *r, mr_cfg *c, const bool *derived)
{
    size_t nh = r->n_regions + 2;
    const char **hosts = mr_calloc(nh, sizeof *hosts);
    char(*fields)[64] = mr_calloc(nh, sizeof *fields);
    hosts[0] = r->ws_name;
    snprintf(fields[0], sizeof fields[0], "dns.ws_name");
    hosts[1] = r->api_name;
    snprintf(fields[1], sizeof fields[1], "dns.api_name");
    for (size_t i = 0; i < r->n_regions; i++) {
        hosts[i + 2] = r->regions[i].dns_name;
        if (derived[i])
            snprintf(fields[i + 2], sizeof fields[i + 2], "regions[%zu] (dns.region_name)", i);
        else
            snprintf(fields[i + 2], sizeof fields[i + 2], "regions[%zu].dns_name", i);
    }
    for (size_t i = 0; i < nh && !mr_cfg_failed(c); i++)
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(hosts[i], hosts[j]) == 0)
                mr_cfg_error(c, fields[i], "hostname \"%s\" is already used by %s", hosts[i],
                             fields[j]);
    free(hosts);
    free(fields);
}

/*
 * Geography: every continent, country and network belongs to one region
 * only, so the routing policy never has to choose between two. Items are
 * compared with every earlier item, in this region and in the ones before.
 */
static void check_geography_disjoint(const mr_regions *r, mr_cfg *c)
{
    const mr_region *regs = r->regions;
    for (size_t i = 0; i < r->n_regions && !mr_cfg_failed(c); i++) {
        const mr_region *g = &regs[i];
        for (size_t j = 0; j <= i; j++) {
            const mr_region *h = &regs[j];
            char p[192];
            for (size_t a = 0; a < g->n_continents; a++)
                for (size_t b = 0; b < h->n_continents && (j < i || b < a); b++)
                    if (strcmp(g->continents[a], h->continents[b]) == 0) {
                        snprintf(p, sizeof p, "regions[%zu].geo.continents[%zu]", i, a);
                        mr_cfg_error(c, p, "continent \"%s\" is already in region \"%s\"",
                                     g->continents[a], h->name);
                    }
            for (size_t a = 0; a < g->n_countries; a++)
                for (size_t b = 0; b < h->n_countries && (j < i || b < a); b++)
                    if (strcmp(g->countries[a], h->countries[b]) == 0) {
                        snprintf(p, sizeof p, "regions[%zu].geo.countries[%zu]", i, a);
                        mr_cfg_error(c, p, "country \"%s\" is already in region \"%s\"",
                                     g->countries[a], h->name);
                    }
            for (size_t a = 0; a < g->n_cidrs; a++)
                for (size_t b = 0; b < h->n_cidrs && (j < i || b < a); b++)
                    if (cidr_overlap(&g->cidrs[a], &h->cidrs[b])) {
                        snprintf(p, sizeof p, "regions[%zu].geo.cidrs[%zu]", i, a);
                        mr_cfg_error(c, p, "%s overlaps %s of region \"%s\"", g->cidr_text[a],
                                     h->cidr_text[b], h->name);
                    }
        }
    }
}

/*
 * Failover lists name other regions of the file, each once, never the
 * region itself (it always comes first); resolved to region indexes.
 */
static void resolve_failover(regions_impl *ri, mr_cfg *c, json_t **failover_json)
{
    mr_regions *r = &ri->pub;
    mr_region *regs = (mr_region *)r->regions;
    for (size_t i = 0; i < r->n_regions && !mr_cfg_failed(c); i++) {
        mr_region *g = &regs[i];
        json_t *a = failover_json[i];
        g->n_failover = a ? json_array_size(a) : 0;
        size_t *fo = tcalloc(ri, g->n_failover, sizeof *fo);
        g->failover = fo;
        for (size_t k = 0; k < g->n_failover; k++) {
            const char *name = json_string_value(json_array_get(a, k));
            char p[192];
            snprintf(p, sizeof p, "regions[%zu].failover[%zu]", i, k);
            int x = mr_regions_find(r, name);
            if (x < 0) {
                mr_cfg_error(c, p, "unknown region \"%s\"", name);
                break;
            }
            if ((size_t)x == i) {
                mr_cfg_error(c, p, "\"%s\" is the region itself (it always comes first)", name);
                break;
            }
            for (size_t m = 0; m < k; m++)
                if (fo[m] == (size_t)x)
                    mr_cfg_error(c, p, "region \"%s\" is listed twice", name);
            fo[k] = (size_t)x;
        }
    }
}

/* The key path of relay `ep` (one of the file-order array), for messages. */
static void relay_path(const mr_regions *r, const mr_relay_ep *ep, const char *field, char *p,
                       size_t n)
{
    size_t k = (size_t)(ep - r->regions[ep->region].relays);
    snprintf(p, n, "regions[%zu].relays[%zu].%s", ep->region, k, field);
}

/* Relay ids are unique across the file. */
static void check_relay_ids_unique(const regions_impl *ri, mr_cfg *c)
{
    const mr_relay_ep *all = ri->all_relays;
    for (size_t i = 0; i < ri->pub.n_relays_total && !mr_cfg_failed(c); i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(all[i].id, all[j].id) == 0) {
                char p[192];
                relay_path(&ri->pub, &all[i], "id", p, sizeof p);
                mr_cfg_error(c, p, "duplicate relay id \"%s\"", all[i].id);
                break;
            }
}

/* Every relay listens on the same WebSocket port: DNS answers carry addresses only. */
static void check_relay_ports_equal(const regions_impl *ri, mr_cfg *c)
{
    const mr_relay_ep *all = ri->all_relays;
    for (size_t i = 1; i < ri->pub.n_relays_total && !mr_cfg_failed(c); i++)
        if (all[i].port != all[0].port) {
            char p[192];
            relay_path(&ri->pub, &all[i], "port", p, sizeof p);
            mr_cfg_error(c, p,
                         "%d differs from the first relay's port %d: DNS answers carry addresses "
                         "only, so every relay must listen on the same port",
                         all[i].port, all[0].port);
        }
}

/* NATS server names are unique across the file (they name servers in routes and gateways). */
static void check_nats_names_unique(const mr_regions *r, mr_cfg *c)
{
    const mr_region *regs = r->regions;
    for (size_t i = 0; i < r->n_regions && !mr_cfg_failed(c); i++)
        for (size_t k = 0; k < regs[i].n_nats; k++)
            for (size_t j = 0; j <= i; j++)
                for (size_t m = 0; m < regs[j].n_nats && (j < i || m < k); m++)
                    if (strcmp(regs[i].nats[k].name, regs[j].nats[m].name) == 0) {
                        char p[192];
                        snprintf(p, sizeof p, "regions[%zu].nats.servers[%zu].name", i, k);
                        mr_cfg_error(c, p, "duplicate NATS server name \"%s\"",
                                     regs[i].nats[k].name);
                    }
}

/* Whole-file checks, in the order their errors are reported. */
static void cross_check(regions_impl *ri, mr_cfg *c, json_t **failover_json,
                        const char *region_tmpl, const char *default_region)
{
    mr_regions *r = &ri->pub;
    check_region_names_unique(r, c);
    resolve_default_region(r, c, default_region);
    bool *derived = mr_calloc(r->n_regions + 1, sizeof *derived);
    derive_region_names(ri, c, region_tmpl, derived);
    check_hostnames_unique(r, c, derived);
    free(derived);
    check_geography_disjoint(r, c);
    resolve_failover(ri, c, failover_json);
    check_relay_ids_unique(ri, c);
    check_relay_ports_equal(ri, c);
    check_nats_names_unique(r, c);
}

static mr_regions *load_root(json_t *root, const char *name, char *err, size_t errlen)
{
    regions_impl *ri = mr_calloc(1, sizeof *ri);
    mr_regions *r = &ri->pub;
    ri->root = root;
    ri->file = mr_strdup(name);
    r->file = ri->file;
    mr_cfg c = {.file = ri->file};
    listeners ls = {0};
    json_t **failover_json = NULL;

    static const char *const keys[] = {"version", "dns", "regions", "local", NULL};
    mr_cfg_check_keys(&c, root, "", keys);
    if (!json_object_get(root, "version"))
        mr_cfg_error(&c, "version", "is required (1)");
    r->version = (int)mr_cfg_int(&c, root, "", "version", 0, 0, INT32_MAX);
    if (!mr_cfg_failed(&c) && r->version != MR_REGIONS_VERSION)
        mr_cfg_error(&c, "version", "%d is not supported (this build reads version %d)", r->version,
                     MR_REGIONS_VERSION);
    if (mr_cfg_failed(&c))
        goto err;

    const char *region_tmpl = "", *default_region = "";
    json_t *dns = req_obj(&c, root, "", "dns");
    if (dns)
        load_dns(ri, &c, dns, &region_tmpl, &default_region);

    json_t *regions = obj_array(&c, root, "", "regions", true, true);
    if (mr_cfg_failed(&c))
        goto err;
    r->n_regions = json_array_size(regions);
    mr_region *regs = tcalloc(ri, r->n_regions, sizeof *regs);
    r->regions = regs;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, so sizeof a pointer */
    failover_json = mr_calloc(r->n_regions, sizeof *failover_json);
    /* Count relays first so they can live in one array indexed in file order. */
    size_t i;
    json_t *ro;
    json_array_foreach(regions, i, ro)
    {
        json_t *a = json_object_get(ro, "relays");
        r->n_relays_total += json_is_array(a) ? json_array_size(a) : 0;
    }
    ri->all_relays = tcalloc(ri, r->n_relays_total, sizeof *ri->all_relays);
    size_t relay_base = 0;
    json_array_foreach(regions, i, ro)
    {
        load_region(ri, &c, ro, i, &regs[i], &failover_json[i], &ls, &relay_base);
        if (mr_cfg_failed(&c))
            goto err;
    }
    json_t *local = mr_cfg_obj(&c, root, "", "local");
    if (local) {
        static const char *const lkeys[] = {"postgres", "pdns_api", NULL};
        mr_cfg_check_keys(&c, local, "local", lkeys);
        check_hostport(&c, local, "postgres", &r->local_postgres, &ls);
        check_hostport(&c, local, "pdns_api", &r->local_pdns_api, &ls);
    }
    for (size_t k = 0; k < r->n_nameservers; k++)
        listen_add(&ls, &c, r->nameservers[k].address, r->nameservers[k].port,
                   "dns.nameservers[%zu]", k);
    if (mr_cfg_failed(&c))
        goto err;
    cross_check(ri, &c, failover_json, region_tmpl, default_region);
    if (mr_cfg_failed(&c))
        goto err;
    free(failover_json);
    free(ls.v);
    return r;

err:
    snprintf(err, errlen, "%s", c.err);
    free(failover_json);
    free(ls.v);
    mr_regions_free(r);
    return NULL;
}

mr_regions *mr_regions_load(const char *path, char *err, size_t errlen)
{
    mr_cfg c = {.file = path};
    json_t *root = mr_cfg_load(&c, path);
    if (!root) {
        snprintf(err, errlen, "%s", c.err);
        return NULL;
    }
    return load_root(root, path, err, errlen);
}

mr_regions *mr_regions_parse(const char *text, const char *name, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the top level must be a JSON object", name);
        json_decref(root);
        return NULL;
    }
    return load_root(root, name, err, errlen);
}

void mr_regions_free(mr_regions *r)
{
    if (!r)
        return;
    regions_impl *ri = (regions_impl *)r;
    for (size_t i = 0; i < ri->n_allocs; i++)
        free(ri->allocs[i]);
    free(ri->allocs);
    json_decref(ri->root);
    free(ri->file);
    free(ri);
}

/* ---- queries ---- */

int mr_regions_find(const mr_regions *r, const char *name)
{
    for (size_t i = 0; i < r->n_regions; i++)
        if (r->regions[i].name && strcmp(r->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}

const mr_relay_ep *mr_regions_find_relay(const mr_regions *r, const char *id)
{
    const regions_impl *ri = (const regions_impl *)r;
    for (size_t i = 0; i < r->n_relays_total; i++)
        if (strcmp(ri->all_relays[i].id, id) == 0)
            return &ri->all_relays[i];
    return NULL;
}

size_t mr_regions_relay_index(const mr_regions *r, const mr_relay_ep *ep)
{
    return (size_t)(ep - ((const regions_impl *)r)->all_relays);
}

int mr_regions_url_hostport(const char *url, char *host, size_t hostlen, int *port)
{
    bool ws = strncmp(url, "ws", 2) == 0;
    const char *why = ws ? parse_url(url, "ws", 80, "wss", 443, host, hostlen, port)
                         : parse_url(url, "http", 80, "https", 443, host, hostlen, port);
    return why ? -1 : 0;
}
