# Values derived from a valid file. When the file has problems these are
# computed from no regions at all (and the plan fails on the outputs'
# preconditions unless enforce = false), so a bad file never surfaces as a
# confusing type error here.

locals {
  ok_regions = [for r in local.regions_norm : r if local.valid]
  zone_name  = trimsuffix(local.zone, ".")

  region_fqdn = { for r in local.ok_regions : r.name => "${r.dns_name}.${local.zone}" }

  nats_client_urls  = { for r in local.ok_regions : r.name => [for s in r.nats_servers : "nats://${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.client_port}"] }
  nats_gateway_urls = { for r in local.ok_regions : r.name => [for s in r.nats_servers : "nats://${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.gateway_port}"] }
  nats_route_urls   = { for r in local.ok_regions : r.name => [for s in r.nats_servers : "nats-route://${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.cluster_port}"] }

  relay_addresses = { for r in local.ok_regions : r.name => [for x in r.relays : x.address] }
  relay_port      = try(local.relay_ports[0], null)

  regions = { for r in local.ok_regions : r.name => {
    name               = r.name
    index              = r.index
    fqdn               = local.region_fqdn[r.name]
    geo                = { continents = r.continents, countries = r.countries, cidrs = r.cidrs }
    failover           = r.failover
    failover_order     = concat([r.name], r.failover)
    min_healthy_relays = r.min_healthy_relays
    stream             = "MERIDIAN_${upper(replace(r.name, "-", "_"))}"
    relays = [for x in r.relays : merge(x, {
      tls        = local.url_parts[x.ws_url].scheme == "wss"
      admin_port = local.url_parts[x.admin_url].port
      admin_tls  = local.url_parts[x.admin_url].scheme == "https"
      ws_path    = local.url_parts[x.ws_url].path
    })]
    relay_addresses   = local.relay_addresses[r.name]
    relay_port        = local.relay_port
    nats_servers      = r.nats_servers
    nats_client_urls  = local.nats_client_urls[r.name]
    nats_gateway_urls = local.nats_gateway_urls[r.name]
    control = r.control == null ? null : merge(r.control, {
      api_port   = local.url_parts[r.control.api_url].port
      admin_port = local.url_parts[r.control.admin_url].port
    })
    healthcheck = r.healthcheck == null ? null : merge(r.healthcheck, {
      port = local.url_parts[r.healthcheck.url].port
    })
  } }

  # nats-server settings per server: the region is one cluster (a one-node
  # region routes to itself) and one gateway; every server lists every
  # region's gateway URLs; JetStream is on.
  nats_servers = { for s in local.all_nats_servers : s.name => {
    server_name  = s.name
    region       = s.region
    host         = s.host
    client_port  = s.client_port
    cluster_port = s.cluster_port
    gateway_port = s.gateway_port
    monitor_port = s.monitor_port
    cluster = {
      name   = s.region
      port   = s.cluster_port
      routes = local.nats_route_urls[s.region]
    }
    gateway = {
      name     = s.region
      port     = s.gateway_port
      gateways = [for r in local.ok_regions : { name = r.name, urls = local.nats_gateway_urls[r.name] }]
    }
    jetstream = { store_dir = var.nats_store_dir }
  } if local.valid }

  nats_conf = { for name, s in local.nats_servers : name => join("\n", concat(
    [
      "# nats-server config for ${name} (region ${s.region}), rendered by terraform from ${basename(local.source)}.",
      "server_name: \"${name}\"",
      "listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.client_port}\"",
    ],
    s.monitor_port == null ? [] : ["http: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.monitor_port}\""],
    [
      "cluster {",
      "  name: \"${s.cluster.name}\"",
      "  listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.cluster_port}\"",
      "  routes: [",
    ],
    [for u in s.cluster.routes : "    \"${u}\""],
    [
      "  ]",
      "}",
      "gateway {",
      "  name: \"${s.gateway.name}\"",
      "  listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.gateway_port}\"",
      "  gateways: [",
    ],
    [for g in s.gateway.gateways : "    { name: \"${g.name}\", urls: [${join(", ", [for u in g.urls : "\"${u}\""])}] }"],
    [
      "  ]",
      "}",
      "jetstream {",
      "  store_dir: \"${s.jetstream.store_dir}\"",
      "}",
    ],
    var.nats_include == null ? [] : ["include \"${var.nats_include}\""],
    [""],
  )) }

  # DNS with every region healthy (what terraform creates; the health agent
  # rewrites the geo answers afterwards). Region G's geography answers G's
  # relays; clients outside every geography get default_region's answer.
  dns_geo = [for r in local.ok_regions : {
    region     = r.name
    continents = r.continents
    countries  = r.countries
    cidrs      = r.cidrs
    addresses  = local.relay_addresses[r.name]
  }]
  dns_default   = try(local.relay_addresses[local.default_region], [])
  dns_all       = flatten([for r in local.ok_regions : local.relay_addresses[r.name]])
  api_addresses = flatten([for r in local.ok_regions : r.control == null ? [] : [r.control.address]])

  # The same policy as the PowerDNS LUA record the health agent writes
  # (healthcheck/hc_dns_pdns.c, hc_dns_pdns_lua): netmask() tests the client
  # address or its ECS subnet against each geography's CIDRs in file order;
  # everyone else gets the default region; addresses sorted (strcmp order,
  # as the agent's plan). Byte for byte the agent's healthy case, so the agent's first write changes nothing. (view() is not used: it
  # answers one random address of the set.)
  lua_record = join("", concat(
    ["A \";"],
    [for g in local.dns_geo :
      "if netmask({${join(",", [for c in g.cidrs : "'${c}'"])}}) then return {${join(",", [for a in sort(g.addresses) : "'${a}'"])}} end "
      if length(g.cidrs) > 0
    ],
    ["return {${join(",", [for a in sort(local.dns_default) : "'${a}'"])}}\""],
  ))
  lua_records = local.valid ? { A = local.lua_record } : {}

  # The same healthy case as Route 53 geolocation record sets, with the set
  # identifiers the health agent UPSERTs (healthcheck/hc_dns_route53.c):
  # "<region>-<code>" per continent and country, "default" for the default
  # location ("*"); A records. AAAA sets (IPv6 relays) get a "-AAAA" suffix
  # and are terraform's only.
  r53_families = { A = false, AAAA = true }
  route53_geo = merge(concat(
    [for g in local.dns_geo : {
      for pair in setproduct(concat([for c in g.continents : ["continent", c]], [for c in g.countries : ["country", c]]), keys(local.r53_families)) :
      (pair[1] == "A" ? "${g.region}-${pair[0][1]}" : "${g.region}-${pair[0][1]}-AAAA") => {
        region    = g.region
        continent = pair[0][0] == "continent" ? pair[0][1] : null
        country   = pair[0][0] == "country" ? pair[0][1] : null
        type      = pair[1]
        records   = [for a in g.addresses : a if strcontains(a, ":") == local.r53_families[pair[1]]]
      } if length([for a in g.addresses : a if strcontains(a, ":") == local.r53_families[pair[1]]]) > 0
    }],
    [{ for type, v6 in local.r53_families : (type == "A" ? "default" : "default-AAAA") => {
      region    = local.default_region
      continent = null
      country   = "*"
      type      = type
      records   = [for a in local.dns_default : a if strcontains(a, ":") == v6]
    } if length([for a in local.dns_default : a if strcontains(a, ":") == v6]) > 0 }],
  )...)

  # Daemon configs per region. Host-specific keys (node ids) and secrets are
  # added on the host; secrets are referenced by file, never inlined.
  relay_config = { for r in local.ok_regions : r.name => {
    region       = r.name
    listen       = "0.0.0.0:${coalesce(var.relay_listen_port, local.relay_port)}"
    admin_listen = "0.0.0.0:${local.url_parts[r.relays[0].admin_url].port}"
    nats         = local.nats_client_urls[r.name]
    auth         = { secret_file = "${var.config_dir}/token.secret" }
    # Drain and undrain need this key; the region's health agent sends it.
    admin_api_key_file = "${var.config_dir}/relay_admin.key"
    # The region's stream lives in the region's NATS cluster, replicated on
    # up to three of its servers.
    stream    = { placement = r.name, replicas = min(3, length(r.nats_servers)) }
    log_level = "info"
  } }
  control_config = { for r in local.ok_regions : r.name => {
    region        = r.name
    regions       = [for x in local.ok_regions : x.name]
    nats          = local.nats_client_urls[r.name]
    http_listen   = "0.0.0.0:${local.url_parts[r.control.api_url].port}"
    admin_listen  = "0.0.0.0:${local.url_parts[r.control.admin_url].port}"
    api_keys_file = "${var.config_dir}/api_keys"
    log_level     = "info"
  } if r.control != null }
  # probe.secret must be the relays' token secret and drain.relay_api_key
  # their admin key: the agent reads neither from a file yet, so hosts
  # substitute __TOKEN_SECRET__ and __RELAY_ADMIN_KEY__ from the files.
  healthcheck_config = { for r in local.ok_regions : r.name => {
    region       = r.name
    regions_file = "${var.config_dir}/regions.json"
    listen       = "0.0.0.0:${local.url_parts[r.healthcheck.url].port}"
    nats         = local.nats_client_urls[r.name]
    probe        = { secret = "__TOKEN_SECRET__" }
    drain        = { relay_api_key = "__RELAY_ADMIN_KEY__" }
    dns          = { type = "dry-run" }
    log_level    = "info"
  } if r.healthcheck != null }
}
