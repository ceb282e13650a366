/*
 * Renderers for meridian-regions.
 *
 * nats-server: every region is one NATS cluster named after the region and
 * one gateway of the same name; each server lists every region's gateway
 * URLs (its own included: nats-server ignores the self entry, so all
 * servers of a region get the same list). A one-server region still gets a
 * cluster block with a route to itself, because nats-server 2.9 only runs
 * JetStream in a supercluster when each gateway is a named cluster.
 * JetStream is always on, so each region's stream can be placed in its own
 * cluster and read from every other region.
 *
 * Clients: with nkeys, one user per role and region in account MERIDIAN
 * (JetStream enabled), each with the subject permissions of
 * mr_nats_perms.c; the server config then holds public keys only. Routes
 * and gateways authenticate with mutual TLS and the cluster user+password.
 *
 * Strings are written double-quoted with JSON escapes, which the nats-server
 * config parser reads; credentials inside URLs are percent-encoded.
 */
#include "regions_render.h"

#include "mr_alloc.h"
#include "mr_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_str(mr_buf *b, const char *s)
{
    mr_buf_json_str(b, s, strlen(s));
}

static void put_url_part(mr_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            mr_buf_putc(b, (char)c);
        else
            mr_buf_printf(b, "%%%02X", c);
    }
}

/* "scheme://[user:pass@]host:port", with IPv6 hosts bracketed. */
static void put_url(mr_buf *b, const char *scheme, const regions_nats_opts *o, const char *host,
                    int port)
{
    mr_buf_printf(b, "%s://", scheme);
    if (o->user) {
        put_url_part(b, o->user);
        mr_buf_putc(b, ':');
        put_url_part(b, o->password);
        mr_buf_putc(b, '@');
    }
    mr_buf_printf(b, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static void put_hostport(mr_buf *b, const char *indent, const char *host, int port)
{
    mr_buf_printf(b, "%shost: ", indent);
    put_str(b, host);
    mr_buf_printf(b, "\n%sport: %d\n", indent, port);
}

/* Under --listen, tell peers the file's address rather than the bound one. */
static void put_advertise(mr_buf *b, const char *indent, const char *key,
                          const regions_nats_opts *o, const char *host, int port)
{
    if (!o->listen)
        return;
    mr_buf_printf(b, "%s%s: ", indent, key);
    mr_buf_printf(b, strchr(host, ':') ? "\"[%s]:%d\"\n" : "\"%s:%d\"\n", host, port);
}

static void put_tls(mr_buf *b, const char *indent, const regions_nats_opts *o, bool verify,
                    const char *ca)
{
    mr_buf_printf(b, "%stls {\n%s  cert_file: ", indent, indent);
    put_str(b, o->tls_cert);
    mr_buf_printf(b, "\n%s  key_file: ", indent);
    put_str(b, o->tls_key);
    mr_buf_printf(b, "\n%s  ca_file: ", indent);
    put_str(b, ca);
    /*
     * The default handshake timeout (0.5 s) is tight for a loaded machine
     * and for gateways that cross continents.
     */
    mr_buf_printf(b, "\n%s  timeout: 5\n", indent);
    if (verify)
        mr_buf_printf(b, "%s  verify: true\n", indent);
    mr_buf_printf(b, "%s}\n", indent);
}

static void put_server_auth(mr_buf *b, const char *indent, const regions_nats_opts *o)
{
    if (!o->user)
        return;
    mr_buf_printf(b, "%sauthorization {\n%s  user: ", indent, indent);
    put_str(b, o->user);
    mr_buf_printf(b, "\n%s  password: ", indent);
    put_str(b, o->password);
    mr_buf_printf(b, "\n%s}\n", indent);
}

int regions_render_nats(const mr_regions *r, const regions_nats_opts *o, mr_buf *out, char *err,
                        size_t errlen)
{
    int ntls = !!o->tls_cert + !!o->tls_key + !!o->tls_ca;
    if (ntls != 0 && ntls != 3) {
        snprintf(err, errlen, "--tls-cert, --tls-key and --tls-ca go together");
        return -1;
    }
    if (o->client_tls && !ntls) {
        snprintf(err, errlen, "--client-tls needs --tls-cert, --tls-key and --tls-ca");
        return -1;
    }
    if (!o->user != !o->password) {
        snprintf(err, errlen, "--user and --password go together");
        return -1;
    }
    if (o->user && o->token) {
        snprintf(err, errlen, "use either --user/--password or --token, not both");
        return -1;
    }
    if (o->nkeys && o->token) {
        snprintf(err, errlen, "use either --nkeys-dir or --token, not both");
        return -1;
    }
    if (o->client_verify && !o->client_tls) {
        snprintf(err, errlen, "--client-verify needs --client-tls");
        return -1;
    }
    if (o->client_ca && !o->client_verify) {
        snprintf(err, errlen, "--client-ca needs --client-verify");
        return -1;
    }
    if (!o->store_dir || !*o->store_dir) {
        snprintf(err, errlen, "--store-dir is required");
        return -1;
    }
    if (o->region >= r->n_regions || o->server >= r->regions[o->region].n_nats) {
        snprintf(err, errlen, "no such region or server");
        return -1;
    }
    const mr_region *g = &r->regions[o->region];
    const mr_nats_server *s = &g->nats[o->server];

    mr_buf_printf(out,
                  "# nats-server configuration for %s (region %s), generated by meridian-regions\n"
                  "# from %s. Do not edit: change the regions file and render again.\n\n",
                  s->name, g->name, r->file);
    mr_buf_puts(out, "server_name: ");
    put_str(out, s->name);
    mr_buf_putc(out, '\n');
    const char *bind = o->listen ? o->listen : s->host;
    put_hostport(out, "", bind, s->client_port);
    put_advertise(out, "", "client_advertise", o, s->host, s->client_port);
    if (s->monitor_port)
        mr_buf_printf(out, "http_port: %d\n", s->monitor_port);
    if (o->nkeys) {
        const char **names = mr_calloc(r->n_regions, sizeof *names);
        for (size_t i = 0; i < r->n_regions; i++)
            names[i] = r->regions[i].name;
        mr_nats_accounts_render(out, names, r->n_regions, o->nkeys);
        free(names);
    } else if (o->user) {
        put_server_auth(out, "", o);
    } else if (o->token) {
        mr_buf_puts(out, "authorization {\n  token: ");
        put_str(out, o->token);
        mr_buf_puts(out, "\n}\n");
    }
    if (o->client_tls)
        put_tls(out, "", o, o->client_verify, o->client_ca ? o->client_ca : o->tls_ca);

    mr_buf_puts(out, "\ncluster {\n  name: ");
    put_str(out, g->name);
    mr_buf_putc(out, '\n');
    put_hostport(out, "  ", bind, s->cluster_port);
    put_advertise(out, "  ", "advertise", o, s->host, s->cluster_port);
    put_server_auth(out, "  ", o);
    if (ntls)
        put_tls(out, "  ", o, false, o->tls_ca); /* verify is always on for routes */
    mr_buf_puts(out, "  routes: [\n");
    for (size_t i = 0; i < g->n_nats; i++) {
        mr_buf_puts(out, "    \"");
        put_url(out, "nats-route", o, g->nats[i].host, g->nats[i].cluster_port);
        mr_buf_puts(out, "\"\n");
    }
    mr_buf_puts(out, "  ]\n}\n");

    mr_buf_puts(out, "\ngateway {\n  name: ");
    put_str(out, g->name);
    mr_buf_putc(out, '\n');
    put_hostport(out, "  ", bind, s->gateway_port);
    put_advertise(out, "  ", "advertise", o, s->host, s->gateway_port);
    put_server_auth(out, "  ", o);
    if (ntls)
        put_tls(out, "  ", o, true, o->tls_ca);
    mr_buf_puts(out, "  gateways: [\n");
    for (size_t i = 0; i < r->n_regions; i++) {
        const mr_region *h = &r->regions[i];
        mr_buf_puts(out, "    {name: ");
        put_str(out, h->name);
        mr_buf_puts(out, ", urls: [");
        for (size_t k = 0; k < h->n_nats; k++) {
            mr_buf_puts(out, k ? ", \"" : "\"");
            put_url(out, "nats", o, h->nats[k].host, h->nats[k].gateway_port);
            mr_buf_putc(out, '"');
        }
        mr_buf_puts(out, "]}\n");
    }
    mr_buf_puts(out, "  ]\n}\n");

    mr_buf_puts(out, "\njetstream {\n  store_dir: ");
    put_str(out, o->store_dir);
    mr_buf_puts(out, "\n}\n");
    return 0;
}

static void put_kv(mr_buf *b, const char *key, const char *val, bool comma)
{
    mr_buf_printf(b, "%s\"%s\": ", comma ? ", " : "", key);
    if (val)
        put_str(b, val);
    else
        mr_buf_puts(b, "null");
}

void regions_render_endpoints(const mr_regions *r, mr_buf *b)
{
    mr_buf_puts(b, "{");
    put_kv(b, "file", r->file, false);
    put_kv(b, "zone", r->zone, true);
    put_kv(b, "ws_fqdn", r->ws_fqdn, true);
    put_kv(b, "api_fqdn", r->api_fqdn, true);
    mr_buf_printf(b, ", \"ttl\": %d", r->ttl);
    put_kv(b, "default_region", r->regions[r->default_region].name, true);
    mr_buf_puts(b, ",\n \"nameservers\": [");
    for (size_t i = 0; i < r->n_nameservers; i++) {
        mr_buf_puts(b, i ? ", {" : "{");
        put_kv(b, "name", r->nameservers[i].name, false);
        put_kv(b, "address", r->nameservers[i].address, true);
        mr_buf_printf(b, ", \"port\": %d}", r->nameservers[i].port);
    }
    mr_buf_puts(b, "],\n");
    mr_buf_puts(b, " \"local\": {");
    put_kv(b, "postgres", r->local_postgres, false);
    put_kv(b, "pdns_api", r->local_pdns_api, true);
    mr_buf_puts(b, "},\n \"regions\": {");
    for (size_t i = 0; i < r->n_regions; i++) {
        const mr_region *g = &r->regions[i];
        mr_buf_puts(b, i ? ",\n  " : "\n  ");
        put_str(b, g->name);
        mr_buf_puts(b, ": {");
        put_kv(b, "fqdn", g->fqdn, false);
        mr_buf_puts(b, ", \"failover\": [");
        for (size_t k = 0; k < g->n_failover; k++) {
            mr_buf_puts(b, k ? ", " : "");
            put_str(b, r->regions[g->failover[k]].name);
        }
        mr_buf_puts(b, "],\n   \"nats_servers\": [");
        for (size_t k = 0; k < g->n_nats; k++)
            put_str(b, g->nats[k].name), mr_buf_puts(b, k + 1 < g->n_nats ? ", " : "");
        mr_buf_puts(b, "], \"nats_client_urls\": [");
        for (size_t k = 0; k < g->n_nats; k++)
            put_str(b, g->nats[k].client_url), mr_buf_puts(b, k + 1 < g->n_nats ? ", " : "");
        mr_buf_puts(b, "], \"nats_gateway_urls\": [");
        for (size_t k = 0; k < g->n_nats; k++)
            put_str(b, g->nats[k].gateway_url), mr_buf_puts(b, k + 1 < g->n_nats ? ", " : "");
        mr_buf_puts(b, "], \"nats_monitor_urls\": [");
        bool first = true;
        for (size_t k = 0; k < g->n_nats; k++) {
            if (!g->nats[k].monitor_port)
                continue;
            const char *h = g->nats[k].host;
            mr_buf_printf(b, strchr(h, ':') ? "%s\"http://[%s]:%d\"" : "%s\"http://%s:%d\"",
                          first ? "" : ", ", h, g->nats[k].monitor_port);
            first = false;
        }
        mr_buf_puts(b, "],\n   \"relays\": [");
        for (size_t k = 0; k < g->n_relays; k++) {
            const mr_relay_ep *e = &g->relays[k];
            mr_buf_puts(b, k ? ", {" : "{");
            put_kv(b, "id", e->id, false);
            put_kv(b, "address", e->address, true);
            mr_buf_printf(b, ", \"port\": %d", e->port);
            put_kv(b, "ws_url", e->ws_url, true);
            put_kv(b, "admin_url", e->admin_url, true);
            mr_buf_puts(b, "}");
        }
        mr_buf_puts(b, "],\n   ");
        put_kv(b, "control_api_url", g->has_control ? g->control_api_url : NULL, false);
        put_kv(b, "control_admin_url", g->has_control ? g->control_admin_url : NULL, true);
        put_kv(b, "healthcheck_url", g->healthcheck_url, true);
        mr_buf_puts(b, "}");
    }
    mr_buf_puts(b, "\n }\n}\n");
}

static void put_listener(mr_buf *b, const char *kind, const char *region, const char *id,
                         const char *host, int port)
{
    mr_buf_printf(b, "%s\t%s\t%s\t%s\t%d\n", kind, region, id, host, port);
}

static void put_url_listener(mr_buf *b, const char *kind, const char *region, const char *id,
                             const char *url)
{
    char host[256];
    int port;
    /* URLs were validated on load, so this cannot fail; skip rather than print garbage. */
    if (url && mr_regions_url_hostport(url, host, sizeof host, &port) == 0)
        put_listener(b, kind, region, id, host, port);
}

static void put_hostport_listener(mr_buf *b, const char *kind, const char *hostport)
{
    char host[256];
    int port;
    if (hostport && mr_parse_hostport(hostport, host, sizeof host, &port) == 0)
        put_listener(b, kind, "-", "-", host, port);
}

void regions_render_listeners(const mr_regions *r, mr_buf *b)
{
    for (size_t i = 0; i < r->n_regions; i++) {
        const mr_region *g = &r->regions[i];
        for (size_t k = 0; k < g->n_relays; k++) {
            const mr_relay_ep *e = &g->relays[k];
            put_listener(b, "relay", g->name, e->id, e->address, e->port);
            put_url_listener(b, "relay-admin", g->name, e->id, e->admin_url);
        }
        for (size_t k = 0; k < g->n_nats; k++) {
            const mr_nats_server *s = &g->nats[k];
            put_listener(b, "nats-client", g->name, s->name, s->host, s->client_port);
            put_listener(b, "nats-cluster", g->name, s->name, s->host, s->cluster_port);
            put_listener(b, "nats-gateway", g->name, s->name, s->host, s->gateway_port);
            if (s->monitor_port)
                put_listener(b, "nats-monitor", g->name, s->name, s->host, s->monitor_port);
        }
        if (g->has_control) {
            put_url_listener(b, "control-api", g->name, "-", g->control_api_url);
            put_url_listener(b, "control-admin", g->name, "-", g->control_admin_url);
        }
        put_url_listener(b, "healthcheck", g->name, "-", g->healthcheck_url);
    }
    for (size_t i = 0; i < r->n_nameservers; i++)
        put_listener(b, "dns", "-", r->nameservers[i].name, r->nameservers[i].address,
                     r->nameservers[i].port);
    put_hostport_listener(b, "postgres", r->local_postgres);
    put_hostport_listener(b, "pdns-api", r->local_pdns_api);
}

static void put_json_list(mr_buf *b, char *const *list, size_t n)
{
    mr_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        mr_buf_puts(b, i ? ", " : "");
        put_str(b, list[i]);
    }
    mr_buf_putc(b, ']');
}

void regions_render_permissions(const mr_regions *r, mr_buf *b)
{
    const char **names = mr_calloc(r->n_regions, sizeof *names);
    for (size_t i = 0; i < r->n_regions; i++)
        names[i] = r->regions[i].name;
    mr_buf_puts(b, "{\"account\": \"" MR_NATS_ACCOUNT "\", \"users\": {");
    for (int role = 0; role < MR_NATS_NROLES; role++) {
        mr_buf_puts(b, role ? ",\n " : "\n ");
        put_str(b, mr_nats_role_name((mr_nats_role)role));
        mr_buf_puts(b, ": {");
        for (size_t i = 0; i < r->n_regions; i++) {
            mr_nats_perms p;
            mr_nats_perms_build(&p, (mr_nats_role)role, names[i], names, r->n_regions);
            mr_buf_puts(b, i ? ",\n  " : "\n  ");
            put_str(b, names[i]);
            mr_buf_puts(b, ": {\"publish\": ");
            put_json_list(b, p.pub, p.npub);
            mr_buf_puts(b, ", \"subscribe\": ");
            put_json_list(b, p.sub, p.nsub);
            mr_buf_printf(b, ", \"allow_responses\": %s}", p.responses ? "true" : "false");
            mr_nats_perms_free(&p);
        }
        mr_buf_puts(b, "}");
    }
    mr_buf_puts(b, "\n}}\n");
    free(names);
}
