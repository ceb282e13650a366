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

  # Where a key may travel in a request: over TLS, or to a loopback or
  # private address (RFC 1918, fc00::/7). Anything else crosses networks
  # nobody here controls, and an API key sent there in clear text is a key
  # given away.
  url_private = { for u, p in local.url_parts : u => p.host == "localhost" || try(
    cidrhost("${p.host}/8", 0) == "10.0.0.0" || cidrhost("${p.host}/8", 0) == "127.0.0.0" ||
    cidrhost("${p.host}/12", 0) == "172.16.0.0" || cidrhost("${p.host}/16", 0) == "192.168.0.0" ||
  p.host == "::1" || can(regex("^f[cd][0-9a-f]{0,2}:", lower(p.host))), false) }
  url_safe = { for u, p in local.url_parts : u => p.scheme == "https" || local.url_private[u] }
  # The relays' admin API (drain) is called by every region's health agent with the relays'
  # admin key; the control API gets the backends' API keys.
  unsafe_admin_urls   = [for x in local.all_relays : x.admin_url if !try(local.url_safe[x.admin_url], true)]
  unsafe_control_urls = [for r in local.ok_regions : r.control.api_url if r.control != null && !try(local.url_safe[r.control.api_url], true)]
  # Stream replicas: the relays create each region's stream with up to three
  # replicas in the region's cluster; control checks the same number when
  # every region has the same, so that relay and control never disagree.
  stream_replicas  = { for r in local.ok_regions : r.name => min(3, length(r.nats_servers)) }
  control_replicas = length(distinct(values(local.stream_replicas))) == 1 ? values(local.stream_replicas)[0] : null
  relay_port       = try(local.relay_ports[0], null)

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
      # May the agent's drain API key be sent to this URL (TLS, or a private address)?
      key_safe = local.url_safe[r.healthcheck.url]
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

  # The permission table of common/mr_nats_perms.c, subject for subject (the
  # crosscheck compares it with `meridian-regions nats-permissions`): one
  # user per role and region. Room names are one subject token; replies are
  # allowed direct and as gateway-mapped "_GR_.<cluster>.<server>.<reply>".
  nats_stream_names = [for r in local.ok_regions : "MERIDIAN_${upper(replace(r.name, "-", "_"))}"]
  nats_permissions = {
    relay = { for r in local.ok_regions : r.name => {
      publish = concat(
        ["meridian.msg.${r.name}.*", "meridian.sig.${r.name}.*", "meridian.presence.*", "meridian.relay.hb", "meridian.history.*"],
        [for op in ["INFO", "CREATE", "UPDATE"] : "$JS.API.STREAM.${op}.${local.regions[r.name].stream}"],
        ["_INBOX.*.p.*", "_GR_.*.*._INBOX.*.p.*"],
      )
      subscribe       = ["meridian.msg.*.*", "meridian.sig.*.*", "meridian.commit.*", "meridian.presence.*", "meridian.relay.hb", "_INBOX.>"]
      allow_responses = false
    } }
    control = { for r in local.ok_regions : r.name => {
      publish = concat(
        ["meridian.commit.*", "meridian.msg.${r.name}.*"],
        flatten([for st in local.nats_stream_names : [
          "$JS.API.STREAM.INFO.${st}",
          "$JS.API.CONSUMER.INFO.${st}.meridian-control",
          "$JS.API.CONSUMER.DURABLE.CREATE.${st}.meridian-control",
          "$JS.API.CONSUMER.MSG.NEXT.${st}.meridian-control",
          "$JS.ACK.${st}.meridian-control.>",
          "_GR_.*.*.$JS.ACK.${st}.meridian-control.>",
        ]]),
        ["_INBOX.>", "_GR_.*.*._INBOX.>"],
      )
      subscribe       = ["meridian.history.*", "meridian.presence.*", "meridian.relay.hb", "_INBOX.>"]
      allow_responses = false
    } }
    healthcheck = { for r in local.ok_regions : r.name => {
      publish         = ["meridian.hc.>"]
      subscribe       = ["meridian.hc.>"]
      allow_responses = false
    } }
  }
  nats_roles          = ["relay", "control", "healthcheck"]
  nats_missing_nkeys  = flatten([for r in local.ok_regions : [for role in local.nats_roles : "${role}-${r.name}" if !contains(keys(var.nats_nkeys), "${role}-${r.name}")]])
  nats_cluster_userpw = var.nats_cluster_password == null ? "" : "meridian-cluster:${urlencode(var.nats_cluster_password)}@"
  nats_accounts = concat(
    ["accounts {", "  MERIDIAN {", "    jetstream: enabled", "    users: ["],
    flatten([for r in local.ok_regions : [for role in local.nats_roles : concat(
      ["      # ${role} of ${r.name}", "      {nkey: \"${lookup(var.nats_nkeys, "${role}-${r.name}", "")}\", permissions: {", "        publish: {allow: ["],
      [for subj in local.nats_permissions[role][r.name].publish : "          \"${subj}\""],
      ["        ]}", "        subscribe: {allow: ["],
      [for subj in local.nats_permissions[role][r.name].subscribe : "          \"${subj}\""],
      ["        ]}"],
      local.nats_permissions[role][r.name].allow_responses ? ["        allow_responses: true"] : [],
      ["      }}"],
    )]]),
    ["    ]", "  }", "}"],
  )
  # Routes and gateways: the servers' certificate, verified against the
  # servers' CA (nats-server always verifies routes; gateways add verify).
  nats_peer_tls = [
    "  tls {",
    "    cert_file: \"${var.nats_tls.cert_file}\"",
    "    key_file: \"${var.nats_tls.key_file}\"",
    "    ca_file: \"${var.nats_tls.ca_file}\"",
    "    timeout: 5",
  ]
  nats_peer_auth = var.nats_cluster_password == null ? [] : [
    "  authorization {",
    "    user: \"meridian-cluster\"",
    "    password: \"${var.nats_cluster_password}\"",
    "  }",
  ]

  nats_conf = { for name, s in local.nats_servers : name => join("\n", concat(
    [
      "# nats-server config for ${name} (region ${s.region}), rendered by terraform from ${basename(local.source)}.",
      "server_name: \"${name}\"",
      "listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.client_port}\"",
    ],
    s.monitor_port == null ? [] : ["http: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.monitor_port}\""],
    [
      "# Clients: mutual TLS, then one of the per-role nkey users.",
      "tls {",
      "  cert_file: \"${var.nats_tls.cert_file}\"",
      "  key_file: \"${var.nats_tls.key_file}\"",
      "  ca_file: \"${var.nats_tls.client_ca_file}\"",
      "  verify: true",
      "  timeout: 5",
      "}",
    ],
    local.nats_accounts,
    [
      "cluster {",
      "  name: \"${s.cluster.name}\"",
      "  listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.cluster_port}\"",
    ],
    local.nats_peer_auth,
    local.nats_peer_tls,
    ["  }", "  routes: ["],
    [for u in s.cluster.routes : "    \"${replace(u, "nats-route://", "nats-route://${local.nats_cluster_userpw}")}\""],
    [
      "  ]",
      "}",
      "gateway {",
      "  name: \"${s.gateway.name}\"",
      "  listen: \"${strcontains(s.host, ":") ? "[${s.host}]" : s.host}:${s.gateway_port}\"",
    ],
    local.nats_peer_auth,
    local.nats_peer_tls,
    ["    verify: true", "  }", "  gateways: ["],
    [for g in s.gateway.gateways : "    { name: \"${g.name}\", urls: [${join(", ", [for u in g.urls : "\"${replace(u, "nats://", "nats://${local.nats_cluster_userpw}")}\""])}] }"],
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

  # Each daemon's `nats` section: its region's servers, its role's nkey
  # seed of that region and its client certificate, all in config_dir/nats
  # on the host (docs/operations.md, "NATS credentials").
  daemon_nats = { for r in local.ok_regions : r.name => { for role in local.nats_roles : role => {
    urls           = local.nats_client_urls[r.name]
    nkey_seed_file = "${var.config_dir}/nats/${role}.nk"
    tls = {
      ca   = "${var.config_dir}/nats/ca.pem"
      cert = "${var.config_dir}/nats/${role}.pem"
      key  = "${var.config_dir}/nats/${role}.key"
    }
  } } }

  # Daemon configs per region. Host-specific keys (node ids) and secrets are
  # added on the host; secrets are referenced by file, never inlined.
  relay_config = { for r in local.ok_regions : r.name => {
    region       = r.name
    listen       = "0.0.0.0:${coalesce(var.relay_listen_port, local.relay_port)}"
    admin_listen = "0.0.0.0:${local.url_parts[r.relays[0].admin_url].port}"
    nats         = local.daemon_nats[r.name]["relay"]
    auth         = { secret_file = "${var.config_dir}/token.secret" }
    # Drain and undrain need this key; the region's health agent sends it.
    admin_api_key_file = "${var.config_dir}/relay_admin.key"
    # The region's stream lives in the region's NATS cluster, replicated on
    # up to three of its servers.
    stream    = { placement = r.name, replicas = local.stream_replicas[r.name] }
    log_level = "info"
  } }
  control_config = { for r in local.ok_regions : r.name => merge({
    region        = r.name
    regions       = [for x in local.ok_regions : x.name]
    nats          = local.daemon_nats[r.name]["control"]
    http_listen   = "0.0.0.0:${local.url_parts[r.control.api_url].port}"
    admin_listen  = "0.0.0.0:${local.url_parts[r.control.admin_url].port}"
    api_keys_file = "${var.config_dir}/api_keys"
    log_level     = "info"
    }, local.url_parts[r.control.api_url].scheme == "https" ? {
    # The API is https:// in the regions file: control terminates TLS itself.
    tls = { cert = "${var.config_dir}/tls/control.crt", key = "${var.config_dir}/tls/control.key" }
    } : {}, local.control_replicas == null ? {} : {
    stream = { replicas = local.control_replicas }
  }) if r.control != null }
  # probe.secret must be the relays' token secret and drain.relay_api_key
  # their admin key: the agent reads neither from a file yet, so hosts
  # substitute __TOKEN_SECRET__ and __RELAY_ADMIN_KEY__ from the files.
  healthcheck_config = { for r in local.ok_regions : r.name => {
    region       = r.name
    regions_file = "${var.config_dir}/regions.json"
    listen       = "0.0.0.0:${local.url_parts[r.healthcheck.url].port}"
    nats         = local.daemon_nats[r.name]["healthcheck"]
    probe        = { secret = "__TOKEN_SECRET__" }
    drain        = { relay_api_key = "__RELAY_ADMIN_KEY__" }
    dns          = { type = "dry-run" }
    log_level    = "info"
  } if r.healthcheck != null }
}
