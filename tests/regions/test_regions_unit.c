/*
 * Unit tests of the regions file loader (common/mr_regions.c) and the DNS
 * routing policy (common/mr_regions_route.c): the shipped
 * regions/local.json loads, every validation error names the file, the field
 * and the problem, and the DNS routing policy picks the first healthy region
 * in failover order or fails open.
 *
 * Error cases start from regions/local.json, change one thing with jansson,
 * and parse the result under the name "t.json".
 */
#include "mr_regions.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MERIDIAN_SOURCE_DIR
#error "MERIDIAN_SOURCE_DIR must be defined by the build"
#endif
#define LOCAL_JSON MERIDIAN_SOURCE_DIR "/regions/local.json"

static json_t *base(void)
{
    json_error_t je;
    json_t *root = json_load_file(LOCAL_JSON, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", LOCAL_JSON, je.text);
    return root;
}

static json_t *region(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "regions"), i);
}

static json_t *relay(json_t *root, size_t r, size_t i)
{
    return json_array_get(json_object_get(region(root, r), "relays"), i);
}

static json_t *geo(json_t *root, size_t r)
{
    return json_object_get(region(root, r), "geo");
}

static json_t *dns(json_t *root)
{
    return json_object_get(root, "dns");
}

static json_t *nats0(json_t *root, size_t r)
{
    return json_array_get(json_object_get(json_object_get(region(root, r), "nats"), "servers"), 0);
}

static json_t *strs(const char *a, const char *b)
{
    json_t *v = json_array();
    if (a)
        json_array_append_new(v, json_string(a));
    if (b)
        json_array_append_new(v, json_string(b));
    return v;
}

/* ---- one mutation per validation error ---- */

typedef struct bad_case {
    const char *what;
    void (*mutate)(json_t *root);
    const char *field;   /* expected after "t.json: " */
    const char *problem; /* expected substring of the message */
} bad_case;

static void m_no_version(json_t *r)
{
    json_object_del(r, "version");
}
static void m_version2(json_t *r)
{
    json_object_set_new(r, "version", json_integer(2));
}
static void m_unknown_top(json_t *r)
{
    json_object_set_new(r, "regoins", json_array());
}
static void m_unknown_relay_key(json_t *r)
{
    json_object_set_new(relay(r, 0, 1), "wsurl", json_string("ws://127.1.0.2:17100/"));
}
static void m_no_dns(json_t *r)
{
    json_object_del(r, "dns");
}
static void m_zone_relative(json_t *r)
{
    json_object_set_new(dns(r), "zone", json_string("meridian.test"));
}
static void m_ws_name_absolute(json_t *r)
{
    json_object_set_new(dns(r), "ws_name", json_string("ws.meridian.test."));
}
static void m_api_name_bad(json_t *r)
{
    json_object_set_new(dns(r), "api_name", json_string("a_p_i"));
}
static void m_region_name_tmpl(json_t *r)
{
    json_object_set_new(dns(r), "region_name", json_string("direct.ws"));
}
static void m_ttl_zero(json_t *r)
{
    json_object_set_new(dns(r), "ttl", json_integer(0));
}
static void m_ttl_missing(json_t *r)
{
    json_object_del(dns(r), "ttl");
}
static void m_default_unknown(json_t *r)
{
    json_object_set_new(dns(r), "default_region", json_string("mars"));
}
static void m_ns_empty(json_t *r)
{
    json_object_set_new(dns(r), "nameservers", json_array());
}
static void m_ns_bad_addr(json_t *r)
{
    json_object_set_new(json_array_get(json_object_get(dns(r), "nameservers"), 0), "address",
                        json_string("localhost"));
}
static void m_same_host_names(json_t *r)
{
    json_object_set_new(dns(r), "api_name", json_string("ws"));
}
static void m_region_dns_clash(json_t *r)
{
    json_object_set_new(region(r, 1), "dns_name", json_string("eu-west.ws"));
}
static void m_derived_name_clash(json_t *r)
{
    json_object_set_new(dns(r), "api_name", json_string("eu-west.ws"));
}
static void m_derived_name_bad(json_t *r)
{
    json_object_set_new(dns(r), "region_name", json_string("{region}-.ws"));
}
static void m_no_regions(json_t *r)
{
    json_object_set_new(r, "regions", json_array());
}
static void m_region_name_bad(json_t *r)
{
    json_object_set_new(region(r, 1), "name", json_string("US_East"));
}
static void m_region_dup(json_t *r)
{
    json_object_set_new(region(r, 2), "name", json_string("eu-west"));
}
static void m_failover_unknown(json_t *r)
{
    json_object_set_new(region(r, 0), "failover", strs("us-wst", NULL));
}
static void m_failover_self(json_t *r)
{
    json_object_set_new(region(r, 0), "failover", strs("us-east", "eu-west"));
}
static void m_failover_twice(json_t *r)
{
    json_object_set_new(region(r, 0), "failover", strs("us-east", "us-east"));
}
static void m_failover_missing(json_t *r)
{
    json_object_del(region(r, 2), "failover");
}
static void m_min_healthy(json_t *r)
{
    json_object_set_new(region(r, 0), "min_healthy_relays", json_integer(3));
}
static void m_geo_missing(json_t *r)
{
    json_object_del(region(r, 1), "geo");
}
static void m_geo_empty(json_t *r)
{
    json_object_set_new(region(r, 1), "geo", json_object());
}
static void m_continent_bad(json_t *r)
{
    json_object_set_new(geo(r, 0), "continents", strs("EU", "Europe"));
}
static void m_continent_dup(json_t *r)
{
    json_object_set_new(geo(r, 2), "continents", strs("AS", "EU"));
}
static void m_country_bad(json_t *r)
{
    json_object_set_new(geo(r, 1), "countries", strs("usa", NULL));
}
static void m_country_dup(json_t *r)
{
    json_object_set_new(geo(r, 1), "countries", strs("US", "IL"));
}
static void m_cidr_garbage(json_t *r)
{
    json_object_set_new(geo(r, 0), "cidrs", strs("127.1.0.0", NULL));
}
static void m_cidr_prefix(json_t *r)
{
    json_object_set_new(geo(r, 0), "cidrs", strs("127.1.0.0/33", NULL));
}
static void m_cidr_hostbits(json_t *r)
{
    json_object_set_new(geo(r, 0), "cidrs", strs("127.1.0.1/16", NULL));
}
static void m_cidr_addr(json_t *r)
{
    json_object_set_new(geo(r, 0), "cidrs", strs("127.1.0.300/16", NULL));
}
static void m_cidr_overlap(json_t *r)
{
    json_object_set_new(geo(r, 2), "cidrs", strs("127.0.0.0/8", NULL));
}
static void m_cidr_v6_ok_overlap(json_t *r)
{
    json_object_set_new(geo(r, 0), "cidrs", strs("127.1.0.0/16", "fd00::/8"));
    json_object_set_new(geo(r, 1), "cidrs", strs("fd12:3456::/32", NULL));
}
static void m_relays_empty(json_t *r)
{
    json_object_set_new(region(r, 1), "relays", json_array());
}
static void m_relays_missing(json_t *r)
{
    json_object_del(region(r, 1), "relays");
}
static void m_relay_no_ws_url(json_t *r)
{
    json_object_del(relay(r, 1, 0), "ws_url");
}
static void m_relay_no_admin(json_t *r)
{
    json_object_del(relay(r, 1, 1), "admin_url");
}
static void m_relay_id_dup(json_t *r)
{
    json_object_set_new(relay(r, 2, 1), "id", json_string("eu-west-1"));
}
static void m_relay_id_bad(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "id", json_string("eu west"));
}
static void m_relay_addr(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "address", json_string("relay1.local"));
}
static void m_relay_scheme(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "ws_url", json_string("http://127.1.0.1:17100/"));
}
static void m_relay_url_port(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "ws_url", json_string("ws://127.1.0.1:17101/"));
}
static void m_relay_url_default_port(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "ws_url", json_string("wss://eu-west.ws.meridian.test/"));
}
static void m_relay_port_differs(json_t *r)
{
    json_object_set_new(relay(r, 1, 1), "port", json_integer(17105));
    json_object_set_new(relay(r, 1, 1), "ws_url", json_string("ws://127.2.0.2:17105/"));
}
static void m_relay_port_type(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "port", json_string("17100"));
}
static void m_admin_scheme(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "admin_url", json_string("127.1.0.1:17110"));
}
static void m_listen_clash(json_t *r)
{
    /* The relay admin port on the NATS server's address and client port. */
    json_object_set_new(relay(r, 0, 1), "admin_url", json_string("http://127.1.0.10:17200"));
}
static void m_nats_missing(json_t *r)
{
    json_object_del(region(r, 0), "nats");
}
static void m_nats_servers_empty(json_t *r)
{
    json_object_set_new(json_object_get(region(r, 0), "nats"), "servers", json_array());
}
static void m_nats_name_dup(json_t *r)
{
    json_object_set_new(nats0(r, 2), "name", json_string("eu-west-nats-1"));
}
static void m_nats_port_range(json_t *r)
{
    json_object_set_new(nats0(r, 1), "gateway_port", json_integer(70000));
}
static void m_nats_no_gateway(json_t *r)
{
    json_object_del(nats0(r, 1), "gateway_port");
}
static void m_nats_same_port(json_t *r)
{
    json_object_set_new(nats0(r, 1), "cluster_port", json_integer(17200));
}
static void m_control_addr(json_t *r)
{
    json_object_del(json_object_get(region(r, 0), "control"), "address");
}
static void m_control_url(json_t *r)
{
    json_object_set_new(json_object_get(region(r, 0), "control"), "api_url",
                        json_string("ftp://127.1.0.20/"));
}
static void m_health_url(json_t *r)
{
    json_object_set_new(json_object_get(region(r, 2), "healthcheck"), "url",
                        json_string("http://:17400"));
}
static void m_admin_bare_v6(json_t *r)
{
    json_object_set_new(relay(r, 0, 0), "admin_url", json_string("http://fd00::1:17110"));
}
static void m_local_bad(json_t *r)
{
    json_object_set_new(json_object_get(r, "local"), "postgres", json_string("17432"));
}

static const bad_case bad_cases[] = {
    {"no version", m_no_version, "version", "required"},
    {"version 2", m_version2, "version", "2 is not supported"},
    {"unknown top-level key", m_unknown_top, "regoins", "unknown key"},
    {"unknown relay key", m_unknown_relay_key, "regions[0].relays[1].wsurl", "unknown key"},
    {"no dns", m_no_dns, "(top level)", "\"dns\" is required"},
    {"relative zone", m_zone_relative, "dns.zone", "trailing dot"},
    {"absolute ws_name", m_ws_name_absolute, "dns.ws_name", "not a relative DNS name"},
    {"bad api_name", m_api_name_bad, "dns.api_name", "not a relative DNS name"},
    {"region_name without {region}", m_region_name_tmpl, "dns.region_name", "{region}"},
    {"ttl 0", m_ttl_zero, "dns.ttl", "between 1 and 86400"},
    {"ttl missing", m_ttl_missing, "dns", "\"ttl\" is required"},
    {"unknown default region", m_default_unknown, "dns.default_region", "unknown region \"mars\""},
    {"no nameservers", m_ns_empty, "dns.nameservers", "must not be empty"},
    {"nameserver address", m_ns_bad_addr, "dns.nameservers[0].address", "not an IPv4 or IPv6"},
    {"api name = ws name", m_same_host_names, "dns.api_name", "already used by dns.ws_name"},
    {"region dns_name clash", m_region_dns_clash, "regions[1].dns_name",
     "already used by regions[0]"},
    {"derived name clash", m_derived_name_clash, "regions[0] (dns.region_name)",
     "hostname \"eu-west.ws\" is already used by dns.api_name"},
    {"template gives a bad name", m_derived_name_bad, "dns.region_name",
     "gives the bad DNS name \"eu-west-.ws\" for eu-west"},
    {"no regions", m_no_regions, "regions", "must not be empty"},
    {"bad region name", m_region_name_bad, "regions[1].name", "[a-z0-9-]"},
    {"duplicate region", m_region_dup, "regions[2].name", "duplicate region name \"eu-west\""},
    {"unknown failover", m_failover_unknown, "regions[0].failover[0]", "unknown region \"us-wst\""},
    {"failover to self", m_failover_self, "regions[0].failover[1]", "the region itself"},
    {"failover twice", m_failover_twice, "regions[0].failover[1]", "listed twice"},
    {"failover missing", m_failover_missing, "regions[2]", "\"failover\" is required"},
    {"min_healthy_relays", m_min_healthy, "regions[0].min_healthy_relays", "between 1 and 2"},
    {"geo missing", m_geo_missing, "regions[1]", "\"geo\" is required"},
    {"geo empty", m_geo_empty, "regions[1].geo", "at least one continent"},
    {"bad continent", m_continent_bad, "regions[0].geo.continents[1]",
     "unknown continent \"Europe\""},
    {"continent twice", m_continent_dup, "regions[2].geo.continents[1]",
     "\"EU\" is already in region \"eu-west\""},
    {"bad country", m_country_bad, "regions[1].geo.countries[0]", "ISO 3166-1"},
    {"country twice", m_country_dup, "regions[1].geo.countries[1]",
     "\"IL\" is already in region \"eu-west\""},
    {"CIDR without prefix", m_cidr_garbage, "regions[0].geo.cidrs[0]",
     "bad CIDR \"127.1.0.0\": must be ADDRESS/PREFIX"},
    {"CIDR prefix 33", m_cidr_prefix, "regions[0].geo.cidrs[0]", "prefix must be 0..32"},
    {"CIDR host bits", m_cidr_hostbits, "regions[0].geo.cidrs[0]", "host bits"},
    {"CIDR address", m_cidr_addr, "regions[0].geo.cidrs[0]", "bad address"},
    {"CIDR overlap", m_cidr_overlap, "regions[2].geo.cidrs[0]",
     "127.0.0.0/8 overlaps 127.1.0.0/16 of region \"eu-west\""},
    {"IPv6 CIDR overlap", m_cidr_v6_ok_overlap, "regions[1].geo.cidrs[0]", "overlaps fd00::/8"},
    {"no relays", m_relays_empty, "regions[1].relays", "must not be empty"},
    {"relays missing", m_relays_missing, "regions[1]", "\"relays\" is required"},
    {"relay without ws_url", m_relay_no_ws_url, "regions[1].relays[0]", "\"ws_url\" is required"},
    {"relay without admin_url", m_relay_no_admin, "regions[1].relays[1]",
     "\"admin_url\" is required"},
    {"duplicate relay id", m_relay_id_dup, "regions[2].relays[1].id",
     "duplicate relay id \"eu-west-1\""},
    {"bad relay id", m_relay_id_bad, "regions[0].relays[0].id", "[A-Za-z0-9_-]"},
    {"relay address", m_relay_addr, "regions[0].relays[0].address", "not an IPv4 or IPv6"},
    {"ws_url scheme", m_relay_scheme, "regions[0].relays[0].ws_url", "unsupported scheme"},
    {"ws_url port", m_relay_url_port, "regions[0].relays[0].ws_url",
     "port 17101 differs from \"port\": 17100"},
    {"ws_url default port", m_relay_url_default_port, "regions[0].relays[0].ws_url",
     "port 443 differs"},
    {"relay port differs", m_relay_port_differs, "regions[1].relays[1].port", "same port"},
    {"relay port type", m_relay_port_type, "regions[0].relays[0].port", "must be an integer"},
    {"admin_url scheme", m_admin_scheme, "regions[0].relays[0].admin_url", "must be a URL"},
    {"listener clash", m_listen_clash, "regions[0].nats.servers[0].client_port",
     "already used by regions[0].relays[1].admin_url"},
    {"nats missing", m_nats_missing, "regions[0]", "\"nats\" is required"},
    {"nats servers empty", m_nats_servers_empty, "regions[0].nats.servers", "must not be empty"},
    {"nats name twice", m_nats_name_dup, "regions[2].nats.servers[0].name",
     "duplicate NATS server name"},
    {"nats port range", m_nats_port_range, "regions[1].nats.servers[0].gateway_port",
     "between 1 and 65535"},
    {"nats gateway port missing", m_nats_no_gateway, "regions[1].nats.servers[0]",
     "\"gateway_port\" is required"},
    {"nats same port twice", m_nats_same_port, "regions[1].nats.servers[0].cluster_port",
     "already used by regions[1].nats.servers[0].client_port"},
    {"control address", m_control_addr, "regions[0].control", "\"address\" is required"},
    {"control url", m_control_url, "regions[0].control.api_url", "unsupported scheme"},
    {"healthcheck url", m_health_url, "regions[2].healthcheck.url", "bad host or port"},
    {"IPv6 URL without brackets", m_admin_bare_v6, "regions[0].relays[0].admin_url",
     "IPv6 host in brackets"},
    {"local postgres", m_local_bad, "local.postgres", "HOST:PORT"},
};

START_TEST(test_bad)
{
    const bad_case *bc = &bad_cases[_i];
    json_t *root = base();
    bc->mutate(root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    char err[512] = "";
    mr_regions *r = mr_regions_parse(text, "t.json", err, sizeof err);
    free(text);
    ck_assert_msg(r == NULL, "%s: accepted", bc->what);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "t.json: %s: ", bc->field);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: message \"%s\" should start %s",
                  bc->what, err, prefix);
    ck_assert_msg(strstr(err, bc->problem) != NULL, "%s: message \"%s\" should contain \"%s\"",
                  bc->what, err, bc->problem);
}
END_TEST

START_TEST(test_syntax_errors)
{
    char err[512];
    ck_assert_ptr_null(
        mr_regions_parse("{\"version\": 1,\n  \"dns\": }", "s.json", err, sizeof err));
    ck_assert_msg(strncmp(err, "s.json:2:", 9) == 0, "%s", err);
    ck_assert_ptr_null(mr_regions_parse("[1]", "s.json", err, sizeof err));
    ck_assert_msg(strstr(err, "s.json: the top level must be a JSON object"), "%s", err);
    ck_assert_ptr_null(
        mr_regions_parse("{\"version\": 1, \"version\": 1}", "s.json", err, sizeof err));
    ck_assert_msg(strstr(err, "duplicate"), "%s", err);
    ck_assert_ptr_null(mr_regions_load("/nonexistent/regions.json", err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/regions.json"), "%s", err);
}
END_TEST

START_TEST(test_local_file)
{
    char err[512] = "";
    mr_regions *r = mr_regions_load(LOCAL_JSON, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_int_eq(r->version, 1);
    ck_assert_str_eq(r->zone, "meridian.test.");
    ck_assert_str_eq(r->ws_fqdn, "ws.meridian.test.");
    ck_assert_str_eq(r->api_fqdn, "api.meridian.test.");
    ck_assert_int_eq(r->ttl, 5);
    ck_assert_uint_eq(r->n_regions, 3);
    ck_assert_uint_eq(r->n_relays_total, 6);
    ck_assert_uint_eq(r->default_region, 0);
    ck_assert_uint_eq(r->n_nameservers, 1);
    ck_assert_int_eq(r->nameservers[0].port, 17053);
    static const char *const names[] = {"eu-west", "us-east", "ap-south"};
    for (size_t i = 0; i < 3; i++) {
        const mr_region *g = &r->regions[i];
        ck_assert_str_eq(g->name, names[i]);
        char want[128];
        snprintf(want, sizeof want, "%s.ws.meridian.test.", names[i]);
        ck_assert_str_eq(g->fqdn, want);
        ck_assert_uint_eq(g->n_relays, 2);
        ck_assert_uint_eq(g->n_failover, 2);
        ck_assert_uint_eq(g->n_nats, 1);
        ck_assert_uint_eq(g->n_cidrs, 1);
        ck_assert_int_eq(g->cidrs[0].family, 4);
        ck_assert_int_eq(g->cidrs[0].prefix, 16);
        ck_assert_int_eq(g->cidrs[0].addr[1], (int)i + 1);
        snprintf(want, sizeof want, "nats://127.%zu.0.10:17200", i + 1);
        ck_assert_str_eq(g->nats[0].client_url, want);
        snprintf(want, sizeof want, "nats://127.%zu.0.10:17202", i + 1);
        ck_assert_str_eq(g->nats[0].gateway_url, want);
        ck_assert(g->has_control);
        ck_assert_ptr_nonnull(g->healthcheck_url);
        ck_assert_int_eq(mr_regions_find(r, names[i]), (int)i);
        for (size_t k = 0; k < g->n_relays; k++) {
            ck_assert_uint_eq(g->relays[k].region, i);
            ck_assert_ptr_eq(mr_regions_find_relay(r, g->relays[k].id), &g->relays[k]);
            ck_assert_uint_eq(mr_regions_relay_index(r, &g->relays[k]), i * 2 + k);
        }
    }
    ck_assert_int_eq(mr_regions_find(r, "mars"), -1);
    ck_assert_ptr_null(mr_regions_find_relay(r, "nope"));
    ck_assert_int_eq(mr_regions_region_for_addr(r, "127.1.200.7"), 0);
    ck_assert_int_eq(mr_regions_region_for_addr(r, "127.3.0.1"), 2);
    ck_assert_int_eq(mr_regions_region_for_addr(r, "127.0.0.1"), -1);
    ck_assert_int_eq(mr_regions_region_for_addr(r, "not-an-ip"), -1);
    ck_assert_str_eq(r->local_postgres, "127.0.0.1:17432");
    mr_regions_free(r);
}
END_TEST

/* Optional sections absent, explicit dns_name, default nameserver port, IPv6. */
START_TEST(test_minimal_file)
{
    const char *text =
        "{\"version\":1,\"dns\":{\"zone\":\"example.com.\",\"ws_name\":\"rt\",\"api_name\":"
        "\"api\",\"region_name\":\"{region}.rt\",\"ttl\":30,\"default_region\":\"one\","
        "\"nameservers\":[{\"name\":\"ns1.example.com.\",\"address\":\"2001:db8::53\"}]},"
        "\"regions\":[{\"name\":\"one\",\"dns_name\":\"first\",\"geo\":{\"countries\":[\"FR\"]},"
        "\"failover\":[],\"relays\":[{\"id\":\"r1\",\"address\":\"2001:db8::1\",\"port\":443,"
        "\"ws_url\":\"wss://one.rt.example.com/\",\"admin_url\":\"https://[2001:db8::1]:8443\"}],"
        "\"nats\":{\"servers\":[{\"name\":\"n1\",\"host\":\"2001:db8::2\",\"client_port\":4222,"
        "\"cluster_port\":6222,\"gateway_port\":7222}]}}]}";
    char err[512] = "";
    mr_regions *r = mr_regions_parse(text, "m.json", err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_str_eq(r->regions[0].fqdn, "first.example.com.");
    ck_assert_int_eq(r->nameservers[0].port, 53);
    ck_assert_int_eq(r->regions[0].min_healthy_relays, 1);
    ck_assert(!r->regions[0].has_control);
    ck_assert_ptr_null(r->regions[0].healthcheck_url);
    ck_assert_ptr_null(r->local_postgres);
    ck_assert_int_eq(r->regions[0].nats[0].monitor_port, 0);
    ck_assert_str_eq(r->regions[0].nats[0].client_url, "nats://[2001:db8::2]:4222");
    mr_regions_free(r);
}
END_TEST

START_TEST(test_url_hostport)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(mr_regions_url_hostport("ws://127.1.0.1:17100/", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.1.0.1");
    ck_assert_int_eq(port, 17100);
    ck_assert_int_eq(mr_regions_url_hostport("wss://eu.example.com/x", host, sizeof host, &port),
                     0);
    ck_assert_str_eq(host, "eu.example.com");
    ck_assert_int_eq(port, 443);
    ck_assert_int_eq(mr_regions_url_hostport("http://[::1]", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 80);
    ck_assert_int_eq(mr_regions_url_hostport("https://[::1]:8443/", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 8443);
    ck_assert_int_eq(mr_regions_url_hostport("ftp://x/", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_regions_url_hostport("http://x:0/", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_regions_url_hostport("http://x:99999/", host, sizeof host, &port), -1);
    ck_assert_int_eq(mr_regions_url_hostport("http://u:p@x/", host, sizeof host, &port), -1);
}
END_TEST

/* ---- routing policy ---- */

static mr_regions *local(void)
{
    char err[512] = "";
    mr_regions *r = mr_regions_load(LOCAL_JSON, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static void expect_answer(const mr_regions *r, size_t geo, const bool *healthy,
                          const bool *relay_up, const char *want)
{
    const char *out[16];
    size_t n = mr_regions_answer(r, geo, healthy, relay_up, out, 16);
    char got[512] = "";
    for (size_t i = 0; i < n && i < 16; i++) {
        strcat(got, i ? " " : "");
        strcat(got, out[i]);
    }
    ck_assert_msg(strcmp(got, want) == 0, "geo %s: answer \"%s\", want \"%s\"",
                  r->regions[geo].name, got, want);
}

START_TEST(test_route_all_healthy)
{
    mr_regions *r = local();
    bool h[3] = {true, true, true};
    for (size_t g = 0; g < 3; g++)
        ck_assert_int_eq(mr_regions_route(r, g, h), (int)g);
    expect_answer(r, 0, h, NULL, "127.1.0.1 127.1.0.2");
    expect_answer(r, 1, h, NULL, "127.2.0.1 127.2.0.2");
    expect_answer(r, 2, h, NULL, "127.3.0.1 127.3.0.2");
    mr_regions_free(r);
}
END_TEST

START_TEST(test_route_failover_order)
{
    mr_regions *r = local();
    /* eu-west down: its clients go to us-east (first in its list), others stay. */
    bool h1[3] = {false, true, true};
    ck_assert_int_eq(mr_regions_route(r, 0, h1), 1);
    ck_assert_int_eq(mr_regions_route(r, 1, h1), 1);
    ck_assert_int_eq(mr_regions_route(r, 2, h1), 2);
    expect_answer(r, 0, h1, NULL, "127.2.0.1 127.2.0.2");
    /* eu-west and us-east down: everyone to ap-south. */
    bool h2[3] = {false, false, true};
    for (size_t g = 0; g < 3; g++)
        ck_assert_int_eq(mr_regions_route(r, g, h2), 2);
    /* ap-south down: its list says eu-west first. */
    bool h3[3] = {true, true, false};
    ck_assert_int_eq(mr_regions_route(r, 2, h3), 0);
    /* Only us-east up: ap-south's clients skip dead eu-west. */
    bool h4[3] = {false, true, false};
    ck_assert_int_eq(mr_regions_route(r, 2, h4), 1);
    mr_regions_free(r);
}
END_TEST

START_TEST(test_route_fail_open)
{
    mr_regions *r = local();
    bool none[3] = {false, false, false};
    for (size_t g = 0; g < 3; g++)
        ck_assert_int_eq(mr_regions_route(r, g, none), MR_REGIONS_FAIL_OPEN);
    expect_answer(r, 1, none, NULL, "127.1.0.1 127.1.0.2 127.2.0.1 127.2.0.2 127.3.0.1 127.3.0.2");
    /* The count is the full answer even when `out` is smaller. */
    const char *out[2];
    ck_assert_uint_eq(mr_regions_answer(r, 0, none, NULL, out, 2), 6);
    ck_assert_str_eq(out[1], "127.1.0.2");
    /* A failover list that omits a healthy region fails open rather than use it. */
    char err[512];
    json_t *root = base();
    json_object_set_new(region(root, 0), "failover", strs("us-east", NULL));
    char *text = json_dumps(root, 0);
    json_decref(root);
    mr_regions *r2 = mr_regions_parse(text, "t.json", err, sizeof err);
    free(text);
    ck_assert_msg(r2 != NULL, "%s", err);
    bool only_ap[3] = {false, false, true};
    ck_assert_int_eq(mr_regions_route(r2, 0, only_ap), MR_REGIONS_FAIL_OPEN);
    ck_assert_int_eq(mr_regions_route(r2, 1, only_ap), 2);
    mr_regions_free(r2);
    mr_regions_free(r);
}
END_TEST

START_TEST(test_answer_relay_up)
{
    mr_regions *r = local();
    bool h[3] = {true, true, true};
    bool up[6] = {true, false, true, true, false, false};
    expect_answer(r, 0, h, up, "127.1.0.1");
    expect_answer(r, 1, h, up, "127.2.0.1 127.2.0.2");
    /* No relay of the chosen region is up: answer all of them rather than nothing. */
    expect_answer(r, 2, h, up, "127.3.0.1 127.3.0.2");
    bool h2[3] = {false, true, true};
    expect_answer(r, 0, h2, up, "127.2.0.1 127.2.0.2");
    ck_assert(mr_regions_region_healthy(&r->regions[0], 1));
    ck_assert(!mr_regions_region_healthy(&r->regions[0], 0));
    mr_regions_free(r);
}
END_TEST

static Suite *regions_suite(void)
{
    Suite *s = suite_create("regions_unit");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, test_local_file);
    tcase_add_test(tc, test_minimal_file);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_url_hostport);
    tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("policy");
    tcase_add_test(tp, test_route_all_healthy);
    tcase_add_test(tp, test_route_failover_order);
    tcase_add_test(tp, test_route_fail_open);
    tcase_add_test(tp, test_answer_relay_up);
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(regions_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
