# Reads a regions file (regions/README.md, format version 1), checks it with
# the same rules as the C loader (common/mr_regions.c) as far as terraform can
# express them, and derives what the other modules need: NATS cluster and
# gateway settings per server, the DNS answers of the healthy case, and the
# daemons' configs. No provider: `terraform test` runs offline.
#
# Every field access goes through try() so that a malformed file produces a
# list of readable problems (local.problems) instead of a type error; the
# derived values are computed only from a file without problems.

locals {
  source = var.regions_file != null ? var.regions_file : "regions_json"
  raw    = var.regions_json != null ? jsondecode(var.regions_json) : jsondecode(file(var.regions_file))

  dns         = try(local.raw.dns, {})
  raw_regions = try([for r in local.raw.regions : r], [])
  names       = [for r in local.raw_regions : try(tostring(r.name), "")]

  zone            = try(tostring(local.dns.zone), "")
  ws_name         = try(tostring(local.dns.ws_name), "")
  api_name        = try(tostring(local.dns.api_name), "")
  region_name_tpl = try(tostring(local.dns.region_name), "")
  ttl             = try(tonumber(local.dns.ttl), -1)
  default_region  = try(tostring(local.dns.default_region), "")
  nameservers     = try([for ns in local.dns.nameservers : ns], [])

  # A DNS label: letters, digits, '-', 1..63, not starting or ending with '-'.
  label_re    = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
  relative_re = "^${local.label_re}(?:\\.${local.label_re})*$"
  fqdn_re     = "^(?:${local.label_re}\\.)+$"
  url_re      = "^(wss?|https?)://(\\[[0-9A-Fa-f:.]+\\]|[^/:\\[\\]]+)(?::([0-9]{1,5}))?(/.*)?$"
  continents  = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"]

  # Parsed URLs: [scheme, host, port-or-null, path]. Port defaults per scheme.
  default_ports = { ws = 80, http = 80, wss = 443, https = 443 }

  # One normalised view of every region, with defaults applied (absent
  # optional fields, not null, in the file).
  regions_norm = [for i, r in local.raw_regions : {
    index              = i
    name               = try(tostring(r.name), "")
    dns_name           = try(tostring(r.dns_name), replace(local.region_name_tpl, "{region}", try(tostring(r.name), "")))
    continents         = try([for c in r.geo.continents : tostring(c)], [])
    countries          = try([for c in r.geo.countries : tostring(c)], [])
    cidrs              = try([for c in r.geo.cidrs : tostring(c)], [])
    failover           = try([for f in r.failover : tostring(f)], null)
    min_healthy_relays = try(tonumber(r.min_healthy_relays), 1)
    relays = try([for x in r.relays : {
      id        = try(tostring(x.id), "")
      address   = try(tostring(x.address), "")
      port      = try(tonumber(x.port), -1)
      ws_url    = try(tostring(x.ws_url), "")
      admin_url = try(tostring(x.admin_url), "")
    }], [])
    nats_servers = try([for s in r.nats.servers : {
      name         = try(tostring(s.name), "")
      host         = try(tostring(s.host), "")
      client_port  = try(tonumber(s.client_port), -1)
      cluster_port = try(tonumber(s.cluster_port), -1)
      gateway_port = try(tonumber(s.gateway_port), -1)
      monitor_port = try(tonumber(s.monitor_port), null)
    }], [])
    control = can(r.control) ? {
      address   = try(tostring(r.control.address), "")
      api_url   = try(tostring(r.control.api_url), "")
      admin_url = try(tostring(r.control.admin_url), "")
    } : null
    healthcheck = can(r.healthcheck) ? {
      url = try(tostring(r.healthcheck.url), "")
    } : null
  }]

  all_relays       = flatten([for r in local.regions_norm : [for j, x in r.relays : merge(x, { region = r.name, where = "regions[${r.index}].relays[${j}]" })]])
  all_nats_servers = flatten([for r in local.regions_norm : [for j, s in r.nats_servers : merge(s, { region = r.name, where = "regions[${r.index}].nats.servers[${j}]" })]])
  all_continents   = flatten([for r in local.regions_norm : r.continents])
  all_countries    = flatten([for r in local.regions_norm : r.countries])
  all_cidrs        = flatten([for r in local.regions_norm : [for j, c in r.cidrs : { cidr = c, region = r.name, where = "regions[${r.index}].geo.cidrs[${j}]" }]])

  # host:port of every listener in the file: no two may be equal.
  listeners = concat(
    [for x in local.all_relays : { hp = "${x.address}:${x.port}", where = "${x.where}.port" }],
    [for x in local.all_relays : { hp = try("${local.url_parts[x.admin_url].host}:${local.url_parts[x.admin_url].port}", "?"), where = "${x.where}.admin_url" }],
    flatten([for s in local.all_nats_servers : [for p in compact([tostring(s.client_port), tostring(s.cluster_port), tostring(s.gateway_port), s.monitor_port == null ? "" : tostring(s.monitor_port)]) : { hp = "${s.host}:${p}", where = s.where }]]),
    flatten([for r in local.regions_norm : r.control == null ? [] : [
      { hp = try("${local.url_parts[r.control.api_url].host}:${local.url_parts[r.control.api_url].port}", "?"), where = "regions[${r.index}].control.api_url" },
      { hp = try("${local.url_parts[r.control.admin_url].host}:${local.url_parts[r.control.admin_url].port}", "?"), where = "regions[${r.index}].control.admin_url" },
    ]]),
    flatten([for r in local.regions_norm : r.healthcheck == null ? [] : [
      { hp = try("${local.url_parts[r.healthcheck.url].host}:${local.url_parts[r.healthcheck.url].port}", "?"), where = "regions[${r.index}].healthcheck.url" },
    ]]),
  )

  # Every URL in the file, parsed once.
  all_urls = distinct(concat(
    [for x in local.all_relays : x.ws_url],
    [for x in local.all_relays : x.admin_url],
    flatten([for r in local.regions_norm : r.control == null ? [] : [r.control.api_url, r.control.admin_url]]),
    flatten([for r in local.regions_norm : r.healthcheck == null ? [] : [r.healthcheck.url]]),
  ))
  url_parts = { for u in local.all_urls : u => {
    scheme = regex(local.url_re, u)[0]
    host   = trimsuffix(trimprefix(regex(local.url_re, u)[1], "["), "]")
    port   = regex(local.url_re, u)[2] != null ? tonumber(regex(local.url_re, u)[2]) : local.default_ports[regex(local.url_re, u)[0]]
    path   = coalesce(regex(local.url_re, u)[3], "/")
  } if can(regex(local.url_re, u)) }

  relay_ports = distinct([for x in local.all_relays : x.port])
}
