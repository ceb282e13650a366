# The checks of the C loader, written as "FIELD: PROBLEM" strings (the same
# wording as `meridian-regions check`). An empty list means the file is valid.

locals {
  ip_ok = { for a in distinct(concat(
    [for x in local.all_relays : x.address],
    [for s in local.all_nats_servers : s.host],
    [for ns in local.nameservers : try(tostring(ns.address), "")],
    flatten([for r in local.regions_norm : r.control == null ? [] : [r.control.address]]),
    )) : a => can(cidrhost(strcontains(a, ":") ? "${a}/128" : "${a}/32", 0))
  }

  top_problems = concat(
    try(local.raw.version == 1, false) ? [] : ["version: must be 1"],
    can(local.raw.dns.zone) ? [] : ["dns: required object with zone, ws_name, api_name, region_name, ttl, default_region, nameservers"],
    can(regex(local.fqdn_re, local.zone)) ? [] : ["dns.zone: \"${local.zone}\" must be a fully qualified name with a trailing dot, e.g. \"meridian.example.com.\""],
    can(regex(local.relative_re, local.ws_name)) ? [] : ["dns.ws_name: \"${local.ws_name}\" must be a name relative to the zone, without a trailing dot"],
    can(regex(local.relative_re, local.api_name)) ? [] : ["dns.api_name: \"${local.api_name}\" must be a name relative to the zone, without a trailing dot"],
    length(split("{region}", local.region_name_tpl)) == 2 && can(regex(local.relative_re, replace(local.region_name_tpl, "{region}", "x"))) ? [] : ["dns.region_name: \"${local.region_name_tpl}\" must be a relative name containing {region} exactly once"],
    local.ttl >= 1 && local.ttl <= 86400 && floor(local.ttl) == local.ttl ? [] : ["dns.ttl: must be an integer between 1 and 86400"],
    contains(local.names, local.default_region) ? [] : ["dns.default_region: unknown region \"${local.default_region}\""],
    length(local.nameservers) > 0 ? [] : ["dns.nameservers: at least one name server is required"],
    flatten([for i, ns in local.nameservers : concat(
      can(regex(local.fqdn_re, ns.name)) ? [] : ["dns.nameservers[${i}].name: must be fully qualified with a trailing dot"],
      lookup(local.ip_ok, try(tostring(ns.address), ""), false) ? [] : ["dns.nameservers[${i}].address: must be an IP literal"],
      try(ns.port >= 1 && ns.port <= 65535, !can(ns.port)) ? [] : ["dns.nameservers[${i}].port: must be 1..65535"],
    )]),
    length(local.raw_regions) > 0 ? [] : ["regions: at least one region is required"],
    length(local.relay_ports) <= 1 ? [] : ["regions: every relay must use the same port (a DNS answer carries addresses only); found ${join(", ", [for p in local.relay_ports : tostring(p)])}"],
  )

  # Names that must be unique: report the second occurrence.
  hostnames = concat(
    [{ name = local.ws_name, where = "dns.ws_name" }, { name = local.api_name, where = "dns.api_name" }],
    [for r in local.regions_norm : { name = r.dns_name, where = "regions[${r.index}].dns_name" }],
  )
  relay_ids    = [for x in local.all_relays : x.id]
  nats_names   = [for s in local.all_nats_servers : s.name]
  listener_hps = [for l in local.listeners : l.hp]

  unique_problems = concat(
    flatten([for i, n in local.names : index(local.names, n) == i ? [] : ["regions[${i}].name: duplicate region \"${n}\""]]),
    flatten([for i, h in local.hostnames : index([for x in local.hostnames : lower(x.name)], lower(h.name)) == i ? [] : ["${h.where}: \"${h.name}\" is used twice (ws, api and region names must differ)"]]),
    flatten([for i, x in local.all_relays : index(local.relay_ids, x.id) == i ? [] : ["${x.where}.id: duplicate relay id \"${x.id}\""]]),
    flatten([for i, s in local.all_nats_servers : index(local.nats_names, s.name) == i ? [] : ["${s.where}.name: duplicate NATS server name \"${s.name}\""]]),
    flatten([for i, l in local.listeners : index(local.listener_hps, l.hp) == i ? [] : ["${l.where}: listener ${l.hp} is used twice"]]),
    flatten([for i, c in local.all_continents : index(local.all_continents, c) == i ? [] : ["geo: continent \"${c}\" belongs to two regions"]]),
    flatten([for i, c in local.all_countries : index(local.all_countries, c) == i ? [] : ["geo: country \"${c}\" belongs to two regions"]]),
    # Two networks overlap when they agree on the shorter prefix of the two.
    flatten([for i, a in local.all_cidrs : [for j, b in local.all_cidrs :
      "${b.where}: ${b.cidr} overlaps ${a.cidr} (${a.where})"
      if j > i && try(
        strcontains(a.cidr, ":") == strcontains(b.cidr, ":") &&
        cidrhost("${split("/", a.cidr)[0]}/${min(tonumber(split("/", a.cidr)[1]), tonumber(split("/", b.cidr)[1]))}", 0) ==
        cidrhost("${split("/", b.cidr)[0]}/${min(tonumber(split("/", a.cidr)[1]), tonumber(split("/", b.cidr)[1]))}", 0)
      , false)
    ]]),
  )

  region_problems = flatten([for r in local.regions_norm : concat(
    can(regex("^[a-z0-9-]{1,32}$", r.name)) ? [] : ["regions[${r.index}].name: \"${r.name}\" must be 1..32 characters of a-z 0-9 -"],
    can(regex(local.relative_re, r.dns_name)) ? [] : ["regions[${r.index}].dns_name: \"${r.dns_name}\" must be a relative name"],
    length(r.continents) + length(r.countries) + length(r.cidrs) > 0 ? [] : ["regions[${r.index}].geo: at least one of continents, countries, cidrs must be non-empty"],
    [for j, c in r.continents : "regions[${r.index}].geo.continents[${j}]: \"${c}\" is not one of ${join(" ", local.continents)}" if !contains(local.continents, c)],
    [for j, c in r.countries : "regions[${r.index}].geo.countries[${j}]: \"${c}\" is not an upper-case ISO 3166-1 alpha-2 code" if !can(regex("^[A-Z]{2}$", c))],
    [for j, c in r.cidrs : "regions[${r.index}].geo.cidrs[${j}]: \"${c}\" is not a network address with a prefix length (no host bits set)" if !try(cidrhost(c, 0) == split("/", c)[0], false)],
    r.failover == null ? ["regions[${r.index}].failover: required (may be empty)"] : flatten([for j, f in r.failover : concat(
      contains(local.names, f) ? [] : ["regions[${r.index}].failover[${j}]: unknown region \"${f}\""],
      f != r.name ? [] : ["regions[${r.index}].failover[${j}]: a region cannot fail over to itself"],
      index(r.failover, f) == j ? [] : ["regions[${r.index}].failover[${j}]: \"${f}\" is listed twice"],
    )]),
    length(r.relays) > 0 ? [] : ["regions[${r.index}].relays: at least one relay is required"],
    r.min_healthy_relays >= 1 && r.min_healthy_relays <= max(length(r.relays), 1) && floor(r.min_healthy_relays) == r.min_healthy_relays ? [] : ["regions[${r.index}].min_healthy_relays: must be between 1 and the number of relays (${length(r.relays)})"],
    flatten([for j, x in r.relays : concat(
      can(regex("^[A-Za-z0-9_-]{1,64}$", x.id)) ? [] : ["regions[${r.index}].relays[${j}].id: \"${x.id}\" must be characters of A-Z a-z 0-9 _ -"],
      local.ip_ok[x.address] ? [] : ["regions[${r.index}].relays[${j}].address: \"${x.address}\" is not an IP literal"],
      x.port >= 1 && x.port <= 65535 ? [] : ["regions[${r.index}].relays[${j}].port: must be 1..65535"],
      try(contains(["ws", "wss"], local.url_parts[x.ws_url].scheme), false) ? [] : ["regions[${r.index}].relays[${j}].ws_url: \"${x.ws_url}\" must be a ws:// or wss:// URL"],
      try(local.url_parts[x.ws_url].port == x.port, true) ? [] : ["regions[${r.index}].relays[${j}].ws_url: port ${try(local.url_parts[x.ws_url].port, "?")} differs from port ${x.port}"],
      try(contains(["http", "https"], local.url_parts[x.admin_url].scheme), false) ? [] : ["regions[${r.index}].relays[${j}].admin_url: \"${x.admin_url}\" must be an http:// or https:// URL"],
    )]),
    length(r.nats_servers) > 0 ? [] : ["regions[${r.index}].nats.servers: at least one NATS server is required"],
    flatten([for j, s in r.nats_servers : concat(
      length(s.name) > 0 ? [] : ["regions[${r.index}].nats.servers[${j}].name: required"],
      local.ip_ok[s.host] ? [] : ["regions[${r.index}].nats.servers[${j}].host: \"${s.host}\" is not an IP literal"],
      alltrue([for p in [s.client_port, s.cluster_port, s.gateway_port, coalesce(s.monitor_port, 1)] : p >= 1 && p <= 65535]) ? [] : ["regions[${r.index}].nats.servers[${j}]: ports must be 1..65535"],
      length(distinct(compact([tostring(s.client_port), tostring(s.cluster_port), tostring(s.gateway_port), s.monitor_port == null ? "" : tostring(s.monitor_port)]))) == (s.monitor_port == null ? 3 : 4) ? [] : ["regions[${r.index}].nats.servers[${j}]: the ports of one server must differ"],
    )]),
    r.control == null ? [] : concat(
      local.ip_ok[r.control.address] ? [] : ["regions[${r.index}].control.address: \"${r.control.address}\" is not an IP literal"],
      try(contains(["http", "https"], local.url_parts[r.control.api_url].scheme), false) ? [] : ["regions[${r.index}].control.api_url: must be an http:// or https:// URL"],
      try(contains(["http", "https"], local.url_parts[r.control.admin_url].scheme), false) ? [] : ["regions[${r.index}].control.admin_url: must be an http:// or https:// URL"],
    ),
    r.healthcheck == null ? [] : (
      try(contains(["http", "https"], local.url_parts[r.healthcheck.url].scheme), false) ? [] : ["regions[${r.index}].healthcheck.url: must be an http:// or https:// URL"]
    ),
  )])

  problems = [for p in concat(local.top_problems, local.region_problems, local.unique_problems) : "${local.source}: ${p}"]
  valid    = length(local.problems) == 0
}
