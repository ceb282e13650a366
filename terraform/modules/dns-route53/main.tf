# Route 53 records for the regions file (regions/README.md, "Routing policy"):
#   - the ws name: one geolocation record per continent and per country of
#     each region's geography, answering that region's relays, plus the
#     default location ("*") answering the default region's relays;
#   - each region's own name: its relays;
#   - the api name: every region's control address.
# This is the healthy case. The health agent owns the ws records afterwards
# (it UPSERTs their values), so terraform ignores changes to them. The set
# identifiers are the agent's ("<region>-<code>", "default"; A records, see
# healthcheck/hc_dns_route53.c): the agent must find and replace these sets,
# a second set for the same location would make its writes fail. AAAA sets
# (IPv6 relays) are terraform's only: the agent writes A records.
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
  families = { A = false, AAAA = true }

  relays = { for x in flatten([for name, r in local.t.regions : [for x in r.relays : merge(x, { region = name })]]) : x.id => x }
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

# Geolocation record sets from the topology module (dns.route53), keyed by
# the set identifiers the health agent uses; country "*" is the default.
resource "aws_route53_record" "ws_geo" {
  for_each       = local.t.dns.route53
  zone_id        = local.zone_id
  name           = local.t.ws_fqdn
  type           = each.value.type
  ttl            = local.t.ttl
  records        = each.value.records
  set_identifier = each.key

  geolocation_routing_policy {
    continent = each.value.continent
    country   = each.value.country
  }

  # The default location is the fail-open floor: no health check.
  health_check_id = var.health_checks && each.value.country != "*" ? aws_route53_health_check.region[each.value.region].id : null

  lifecycle {
    # The health agent rewrites the answers. Its UPSERTs carry no
    # HealthCheckId, so they detach the health check; the next apply puts it
    # back (with the agent's current answer, records being ignored).
    ignore_changes = [records]
  }
}

resource "aws_route53_record" "region" {
  for_each = merge([for name, r in local.t.regions : {
    for type, v6 in local.families : "${name}/${type}" => {
      fqdn    = r.fqdn
      type    = type
      records = [for a in r.relay_addresses : a if strcontains(a, ":") == v6]
    } if length([for a in r.relay_addresses : a if strcontains(a, ":") == v6]) > 0
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
