# Route 53 records for the regions file (regions/README.md, "Routing policy"):
#   - the ws name: one geolocation record per continent and per country of
#     each region's geography, answering that region's relays, plus the
#     default location ("*") answering the default region's relays;
#   - each region's own name: its relays;
#   - the api name: every region's control address.
# This is the healthy case. The health agent owns the ws records afterwards
# (it rewrites their values), so terraform ignores changes to them.
#
# Second line: each region has a calculated health check (healthy when at
# least min_healthy_relays of its relay endpoints answer GET /readyz on the
# admin port). A geolocation record whose check fails is skipped and Route 53
# answers the next broader location (country -> continent -> default), so
# clients still get an answer when no agent is running. The default record
# has no health check: it is the fail-open floor.

locals {
  t        = var.topology
  zone_id  = var.zone_id != null ? var.zone_id : data.aws_route53_zone.this[0].zone_id
  is_v6    = { for a in local.t.dns.all : a => strcontains(a, ":") }
  families = { A = false, AAAA = true }

  relays = { for x in flatten([for name, r in local.t.regions : [for x in r.relays : merge(x, { region = name })]]) : x.id => x }

  # (region, location kind, code, record type) for every geolocation record.
  geo_records = merge([for g in local.t.dns.geo : merge(
    { for pair in setproduct(g.continents, keys(local.families)) : "${g.region}/continent/${pair[0]}/${pair[1]}" => {
      region  = g.region, continent = pair[0], country = null, type = pair[1]
      records = [for a in g.addresses : a if local.is_v6[a] == local.families[pair[1]]]
    } },
    { for pair in setproduct(g.countries, keys(local.families)) : "${g.region}/country/${pair[0]}/${pair[1]}" => {
      region  = g.region, continent = null, country = pair[0], type = pair[1]
      records = [for a in g.addresses : a if local.is_v6[a] == local.families[pair[1]]]
    } },
  )]...)
  default_records = { for type, v6 in local.families : type => [for a in local.t.dns.default : a if local.is_v6[a] == v6] }
}

data "aws_route53_zone" "this" {
  count        = var.zone_id == null ? 1 : 0
  name         = local.t.zone_name
  private_zone = false
}

resource "aws_route53_health_check" "relay" {
  for_each          = var.health_checks ? local.relays : {}
  type              = each.value.admin_tls ? "HTTPS" : "HTTP"
  ip_address        = each.value.address
  port              = each.value.admin_port
  resource_path     = "/readyz"
  request_interval  = var.health_check_interval
  failure_threshold = var.health_check_failure_threshold
  tags              = merge(var.tags, { Name = "meridian-relay-${each.key}", "meridian:region" = each.value.region })
}

resource "aws_route53_health_check" "region" {
  for_each               = var.health_checks ? local.t.regions : {}
  type                   = "CALCULATED"
  child_health_threshold = each.value.min_healthy_relays
  child_healthchecks     = [for x in each.value.relays : aws_route53_health_check.relay[x.id].id]
  tags                   = merge(var.tags, { Name = "meridian-region-${each.key}", "meridian:region" = each.key })
}

resource "aws_route53_record" "ws_geo" {
  for_each       = { for k, v in local.geo_records : k => v if length(v.records) > 0 }
  zone_id        = local.zone_id
  name           = local.t.ws_fqdn
  type           = each.value.type
  ttl            = local.t.ttl
  records        = each.value.records
  set_identifier = replace(each.key, "/", "-")

  geolocation_routing_policy {
    continent = each.value.continent
    country   = each.value.country
  }

  health_check_id = var.health_checks ? aws_route53_health_check.region[each.value.region].id : null

  lifecycle {
    # The health agent rewrites the answers.
    ignore_changes = [records]
  }
}

resource "aws_route53_record" "ws_default" {
  for_each       = { for type, recs in local.default_records : type => recs if length(recs) > 0 }
  zone_id        = local.zone_id
  name           = local.t.ws_fqdn
  type           = each.key
  ttl            = local.t.ttl
  records        = each.value
  set_identifier = "default-${each.key}"

  geolocation_routing_policy {
    country = "*"
  }

  lifecycle {
    ignore_changes = [records]
  }
}

resource "aws_route53_record" "region" {
  for_each = merge([for name, r in local.t.regions : {
    for type, v6 in local.families : "${name}/${type}" => {
      fqdn    = r.fqdn
      type    = type
      records = [for a in r.relay_addresses : a if local.is_v6[a] == v6]
    } if length([for a in r.relay_addresses : a if local.is_v6[a] == v6]) > 0
  }]...)
  zone_id = local.zone_id
  name    = each.value.fqdn
  type    = each.value.type
  ttl     = local.t.ttl
  records = each.value.records

  lifecycle {
    # The health agent answers only the relays that are up.
    ignore_changes = [records]
  }
}

resource "aws_route53_record" "api" {
  for_each = { for type, v6 in local.families : type => [for a in local.t.dns.api : a if strcontains(a, ":") == v6] if length([for a in local.t.dns.api : a if strcontains(a, ":") == v6]) > 0 }
  zone_id  = local.zone_id
  name     = local.t.api_fqdn
  type     = each.key
  ttl      = local.t.ttl
  records  = each.value
}
