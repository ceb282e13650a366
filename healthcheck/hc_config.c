/*
 * The agent's configuration: every key, its default and its bounds. Unknown
 * keys are errors, so a typo never silently falls back to a default.
 */
#include "hc_config.h"
#include "hc_agent_internal.h"
#include "hc_http.h"
#include "hc_lease.h"
#include "mr_alloc.h"
#include "mr_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static char *default_source(const mr_region *g)
{
    /* Verify from an address inside the geography: the network address plus
     * 53, an unlikely relay address. Only loopback geographies get a default
     * (any 127.0.0.0/8 address can be bound on Linux); for real networks the
     * agent host rarely owns an address in each geography, so those need
     * verify.sources, and without one that geography is not verified. */
    for (size_t i = 0; i < g->n_cidrs; i++) {
        const mr_cidr *c = &g->cidrs[i];
        if (c->family != 4 || c->prefix > 26 || c->prefix < 8 || c->addr[0] != 127)
            continue;
        uint32_t v = (uint32_t)c->addr[0] << 24 | (uint32_t)c->addr[1] << 16 |
                     (uint32_t)c->addr[2] << 8 | c->addr[3];
        v = (v & (~0u << (32 - c->prefix))) + 53;
        struct in_addr in = {htonl(v)};
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in, buf, sizeof buf);
        return mr_strdup(buf);
    }
    return NULL;
}

int hc_config_load(hc_agent *a, const char *path, const char *listen_override, char *err,
                   size_t errlen)
{
    mr_cfg *c = &a->cfg;
    memset(c, 0, sizeof *c);
    c->file = path;
    json_t *root = mr_cfg_load(c, path);
    if (!root) {
        snprintf(err, errlen, "%s", c->err);
        return -1;
    }
    static const char *const keys[] = {
        "agent_id", "region",     "regions_file", "listen",     "nats", "api_key",
        "probe",    "thresholds", "quorum",       "lease",      "dns",  "verify",
        "drain",    "log_level",  "state_dir",    "log_format", NULL};
    mr_cfg_check_keys(c, root, "", keys);
    const char *regions_file = mr_cfg_str(c, root, "", "regions_file", NULL);
    const char *region = mr_cfg_str(c, root, "", "region", NULL);
    const char *id = mr_cfg_str(c, root, "", "agent_id", NULL);
    const char *listen = mr_cfg_str(c, root, "", "listen", NULL);
    const char *api_key = mr_cfg_str(c, root, "", "api_key", "");
    const char *level = mr_cfg_str(c, root, "", "log_level", "info");
    const char *format = mr_cfg_str(c, root, "", "log_format", "text");
    mr_nats_conf_init(&a->nats, NULL);
    mr_nats_conf_read(&a->nats, c, root, "nats");
    json_t *probe = mr_cfg_obj(c, root, "", "probe");
    static const char *const pkeys[] = {"interval_ms", "timeout_ms",     "secret",
                                        "tls_verify",  "cert_warn_days", NULL};
    mr_cfg_check_keys(c, probe, "probe", pkeys);
    a->interval_ms = (int)mr_cfg_int(c, probe, "probe", "interval_ms", 500, 50, 60000);
    a->timeout_ms = (int)mr_cfg_int(c, probe, "probe", "timeout_ms", 1000, 10, 60000);
    const char *secret = mr_cfg_str(c, probe, "probe", "secret", NULL);
    a->tls_verify = mr_cfg_bool(c, probe, "probe", "tls_verify", true);
    a->cert_warn_days = (int)mr_cfg_int(c, probe, "probe", "cert_warn_days", 14, 0, 3650);
    json_t *th = mr_cfg_obj(c, root, "", "thresholds");
    static const char *const tkeys[] = {"down_window", "down_failures", "up_successes",
                                        "return_settle_ms", NULL};
    mr_cfg_check_keys(c, th, "thresholds", tkeys);
    hc_fsm_conf fd = HC_FSM_CONF_DEFAULT;
    a->fsm_conf.down_window =
        (int)mr_cfg_int(c, th, "thresholds", "down_window", fd.down_window, 1, 32);
    a->fsm_conf.down_failures =
        (int)mr_cfg_int(c, th, "thresholds", "down_failures", fd.down_failures, 1, 32);
    a->fsm_conf.up_successes =
        (int)mr_cfg_int(c, th, "thresholds", "up_successes", fd.up_successes, 1, 1000);
    a->return_settle_ms = (int)mr_cfg_int(c, th, "thresholds", "return_settle_ms", 1000, 0, 600000);
    char ferr[128];
    if (!mr_cfg_failed(c) && hc_fsm_conf_check(&a->fsm_conf, ferr, sizeof ferr) != 0)
        mr_cfg_error(c, "thresholds", "%s", ferr);
    json_t *q = mr_cfg_obj(c, root, "", "quorum");
    static const char *const qkeys[] = {"agent_timeout_ms", "publish_ms", NULL};
    mr_cfg_check_keys(c, q, "quorum", qkeys);
    a->live_ms = (int)mr_cfg_int(c, q, "quorum", "agent_timeout_ms", 2000, 200, 600000);
    a->publish_ms = (int)mr_cfg_int(c, q, "quorum", "publish_ms", 500, 50, 60000);
    json_t *l = mr_cfg_obj(c, root, "", "lease");
    static const char *const lkeys[] = {"ttl_ms",  "renew_ms", "margin_ms",
                                        "members", "replicas", NULL};
    mr_cfg_check_keys(c, l, "lease", lkeys);
    a->lease_ttl_ms = (int)mr_cfg_int(c, l, "lease", "ttl_ms", 3000, 500, 600000);
    a->lease_renew_ms = (int)mr_cfg_int(c, l, "lease", "renew_ms", 1000, 100, 600000);
    a->lease_margin_ms =
        (int)mr_cfg_int(c, l, "lease", "margin_ms", a->lease_ttl_ms / 10, 0, 600000);
    json_t *members = mr_cfg_str_array(c, l, "lease", "members");
    if (json_object_get(l, "replicas"))
        mr_log_warn("%s: lease.replicas is no longer used (the lease is not stored in NATS)", path);
    if (!mr_cfg_failed(c) && a->lease_renew_ms * 2 > a->lease_ttl_ms)
        mr_cfg_error(c, "lease.renew_ms", "must be at most half of lease.ttl_ms");
    if (!mr_cfg_failed(c) && a->lease_margin_ms * 4 > a->lease_ttl_ms)
        mr_cfg_error(c, "lease.margin_ms", "must be at most a quarter of lease.ttl_ms");
    const char *state_dir = mr_cfg_str(c, root, "", "state_dir", NULL);
    json_t *v = mr_cfg_obj(c, root, "", "verify");
    static const char *const vkeys[] = {"enabled", "timeout_ms", "sources", NULL};
    mr_cfg_check_keys(c, v, "verify", vkeys);
    a->verify_enabled = mr_cfg_bool(c, v, "verify", "enabled", true);
    a->verify_timeout_ms = (int)mr_cfg_int(c, v, "verify", "timeout_ms", 30000, 100, 600000);
    json_t *sources = mr_cfg_obj(c, v, "verify", "sources");
    json_t *d = mr_cfg_obj(c, root, "", "drain");
    static const char *const dkeys[] = {"relay_api_key", NULL};
    mr_cfg_check_keys(c, d, "drain", dkeys);
    const char *relay_key = mr_cfg_str(c, d, "drain", "relay_api_key", "");
    json_t *dns = mr_cfg_obj(c, root, "", "dns");
    /* Owned from here on: it outlives the root for the provider's construction. */
    a->dns_conf = dns ? json_incref(dns) : json_object();
    if (!regions_file)
        mr_cfg_error(c, "regions_file", "is required");
    if (!region)
        mr_cfg_error(c, "region", "is required (the region this agent runs in)");
    if (!secret)
        mr_cfg_error(c, "probe.secret",
                     "is required (the relays' auth secret, for the probe token)");
    if (a->nats.n_urls == 0)
        mr_cfg_error(c, "nats", "is required: a list of NATS URLs, or the object form");
    int lvl = mr_log_level_parse(level);
    if (lvl < 0)
        mr_cfg_error(c, "log_level", "must be error, warn, info or debug");
    int fmt = mr_log_format_parse(format);
    if (fmt < 0)
        mr_cfg_error(c, "log_format", "must be text or json");
    if (mr_cfg_failed(c)) {
        snprintf(err, errlen, "%s", c->err);
        json_decref(root);
        return -1;
    }
    char nerr[512];
    if (mr_nats_conf_check(&a->nats, "nats", nerr, sizeof nerr) != 0) {
        snprintf(err, errlen, "%s: %s", path, nerr);
        json_decref(root);
        return -1;
    }
    /* At once, so that what the rest of the load says is in the configured form; a reload
     * (hc_main.c) puts the running settings back and applies only the level it accepts. */
    mr_log_set_level((mr_log_level)lvl);
    mr_log_set_format((mr_log_format)fmt);
    a->log_level = lvl;
    a->log_format = fmt;
    a->regions = mr_regions_load(regions_file, err, errlen);
    if (!a->regions) {
        json_decref(root);
        return -1;
    }
    if (mr_regions_find(a->regions, region) < 0) {
        snprintf(err, errlen, "%s: region: \"%s\" is not in %s", path, region, regions_file);
        json_decref(root);
        return -1;
    }
    a->region_name = mr_strdup(region);
    a->agent_id = mr_strdup(id ? id : region);
    /* Without "listen", the agent serves where the regions file says its
     * region's agent is (regions[].healthcheck.url), else on 127.0.0.1:17400. */
    char from_file[300] = "127.0.0.1:17400";
    const char *hc_url = a->regions->regions[mr_regions_find(a->regions, region)].healthcheck_url;
    if (!listen && hc_url) {
        int tls, port;
        char host[256], upath[64];
        if (hc_http_parse_url(hc_url, &tls, host, sizeof host, &port, upath, sizeof upath) == 0)
            snprintf(from_file, sizeof from_file, "%s:%d", host, port);
    }
    a->listen = mr_strdup(listen_override ? listen_override : listen ? listen : from_file);
    a->api_key = mr_strdup(api_key);
    a->relay_api_key = mr_strdup(relay_key);
    a->probe_secret = mr_strdup(secret);
    /* The lease's members: every agent's id when lease.members lists them,
     * else one member per region of the regions file, named after it (one
     * agent runs in each region). */
    size_t nm = members ? json_array_size(members) : a->regions->n_regions;
    if (nm == 0 || nm > HC_LEASE_MAX_MEMBERS) {
        snprintf(err, errlen, "%s: lease.members: between 1 and %d agent ids", path,
                 HC_LEASE_MAX_MEMBERS);
        json_decref(root);
        return -1;
    }
    a->members = mr_calloc(nm + 1, sizeof(char *));
    a->n_members = nm;
    for (size_t i = 0; i < nm; i++)
        a->members[i] = mr_strdup(members ? json_string_value(json_array_get(members, i))
                                          : a->regions->regions[i].name);
    a->lease_id = mr_strdup(members ? a->agent_id : a->region_name);
    bool member = false;
    for (size_t i = 0; i < nm; i++)
        member |= strcmp(a->members[i], a->lease_id) == 0;
    if (!member) {
        snprintf(err, errlen, "%s: lease.members: this agent (\"%s\") is not listed", path,
                 a->lease_id);
        json_decref(root);
        return -1;
    }
    /* The state file: in state_dir; else in the directory systemd made for
     * the service (StateDirectory= sets $STATE_DIRECTORY: /etc is read-only
     * under ProtectSystem=strict); else next to the configuration. */
    char dir[600];
    const char *sd = getenv("STATE_DIRECTORY");
    if (state_dir) {
        snprintf(dir, sizeof dir, "%s", state_dir);
    } else if (sd && sd[0]) {
        snprintf(dir, sizeof dir, "%.*s", (int)strcspn(sd, ":"), sd);
    } else {
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    size_t sl = strlen(dir) + strlen(a->lease_id) + 32;
    a->state_path = mr_malloc(sl);
    snprintf(a->state_path, sl, "%s/hc-state-%s.json", dir, a->lease_id);
    a->verify_source = mr_calloc(a->regions->n_regions, sizeof(char *));
    for (size_t r = 0; r < a->regions->n_regions; r++) {
        const char *s =
            sources ? json_string_value(json_object_get(sources, a->regions->regions[r].name))
                    : NULL;
        a->verify_source[r] = s ? mr_strdup(s) : default_source(&a->regions->regions[r]);
        if (!a->verify_source[r] && a->verify_enabled)
            mr_log_warn("verify: no source address inside %s's geography (set verify.sources); "
                        "its answers will not be checked after writes",
                        a->regions->regions[r].name);
    }
    json_decref(root);
    a->n_items = a->regions->n_regions + a->regions->n_relays_total;
    if (a->n_items > HC_QUORUM_MAX_ITEMS) {
        snprintf(err, errlen, "%s: too many regions and relays (at most %d items)", regions_file,
                 HC_QUORUM_MAX_ITEMS);
        return -1;
    }
    return 0;
}
