# Self-hosted DNS on PowerDNS (pan-net/powerdns provider, HTTP API):
#   - the ws name: one LUA record that picks the answer by the client's
#     address or EDNS client subnet (netmask() over each region's CIDRs, in
#     file order; everyone else gets the default region). The content is the
#     topology module's dns.lua["A"], the same text the health agent writes
#     (healthcheck/hc_dns_pdns.c) in the healthy case, and the agent owns it
#     afterwards: terraform ignores changes to its records;
#   - each region's own name and the api name: plain A/AAAA records.
# pdns_server needs `enable-lua-records=yes` (and `edns-subnet-processing=yes`
# to use resolvers' client subnets).

locals {
  t        = var.topology
  families = { A = false, AAAA = true }

  region_records = merge([for name, r in local.t.regions : {
    for type, v6 in local.families : "${name}/${type}" => {
      fqdn    = r.fqdn
      type    = type
      records = [for a in r.relay_addresses : a if strcontains(a, ":") == v6]
    } if length([for a in r.relay_addresses : a if strcontains(a, ":") == v6]) > 0
  }]...)
  api_records = { for type, v6 in local.families : type => [for a in local.t.dns.api : a if strcontains(a, ":") == v6] if length([for a in local.t.dns.api : a if strcontains(a, ":") == v6]) > 0 }
}

resource "powerdns_zone" "this" {
  count       = var.create_zone ? 1 : 0
  name        = local.t.zone
  kind        = var.zone_kind
  nameservers = [for ns in local.t.nameservers : ns.name]
}

resource "powerdns_record" "ws" {
  for_each = local.t.dns.lua
  zone     = var.create_zone ? powerdns_zone.this[0].name : local.t.zone
  name     = local.t.ws_fqdn
  type     = "LUA"
  ttl      = local.t.ttl
  records  = [each.value]

  lifecycle {
    # The health agent rewrites this rrset.
    ignore_changes = [records]
  }
}

resource "powerdns_record" "region" {
  for_each = local.region_records
  zone     = var.create_zone ? powerdns_zone.this[0].name : local.t.zone
  name     = each.value.fqdn
  type     = each.value.type
  ttl      = local.t.ttl
  records  = each.value.records

  lifecycle {
    ignore_changes = [records]
  }
}

resource "powerdns_record" "api" {
  for_each = local.api_records
  zone     = var.create_zone ? powerdns_zone.this[0].name : local.t.zone
  name     = local.t.api_fqdn
  type     = each.key
  ttl      = local.t.ttl
  records  = each.value
}

# Glue for in-zone name servers.
resource "powerdns_record" "ns_glue" {
  for_each = { for ns in local.t.nameservers : ns.name => ns if endswith(ns.name, ".${local.t.zone}") }
  zone     = var.create_zone ? powerdns_zone.this[0].name : local.t.zone
  name     = each.key
  type     = strcontains(each.value.address, ":") ? "AAAA" : "A"
  ttl      = 3600
  records  = [each.value.address]
}
