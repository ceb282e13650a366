output "problems" {
  description = "Problems found in the regions file, as \"FILE: FIELD: PROBLEM\" (empty when valid)."
  value       = local.problems
}

output "regions" {
  description = "Per region (by name): fqdn, geo, failover order, relays (with tls/admin_port), NATS servers and URLs, stream name, control and healthcheck (null when absent)."
  value       = local.regions

  precondition {
    condition     = !var.enforce || local.valid
    error_message = "The regions file is invalid:\n  ${join("\n  ", local.problems)}"
  }
}

output "region_names" {
  description = "Region names in file order."
  value       = [for r in local.ok_regions : r.name]
}

output "zone" {
  description = "DNS zone with its trailing dot, as in the file."
  value       = local.zone
}

output "zone_name" {
  description = "DNS zone without the trailing dot (as cloud providers name zones)."
  value       = local.zone_name
}

output "ttl" {
  description = "TTL of every Meridian record."
  value       = local.ttl
}

output "ws_fqdn" {
  description = "The geo-routed WebSocket name."
  value       = "${local.ws_name}.${local.zone}"
}

output "api_fqdn" {
  description = "The control plane API name."
  value       = "${local.api_name}.${local.zone}"
}

output "default_region" {
  description = "Region whose answer clients outside every geography get."
  value       = local.default_region
}

output "nameservers" {
  description = "Authoritative servers of the zone: name, address, port."
  value       = [for ns in local.nameservers : { name = ns.name, address = ns.address, port = try(ns.port, 53) } if local.valid]
}

output "relay_port" {
  description = "The one public WebSocket port of every relay endpoint."
  value       = local.relay_port
}

output "nats_servers" {
  description = "Per NATS server name: region, host, ports, cluster (name, port, routes), gateway (name, port, gateways), jetstream."
  value       = local.nats_servers
}

output "nats_conf" {
  description = "Per NATS server name: the rendered nats-server config file (locked: mutual TLS, the per-role nkey users of nats_nkeys with their permissions)."
  value       = local.nats_conf
  # It holds nats_cluster_password when one is set.
  sensitive = true

  precondition {
    condition     = !var.enforce || length(local.nats_missing_nkeys) == 0
    error_message = "nats_nkeys has no public key for: ${join(", ", local.nats_missing_nkeys)}. Make them with `meridian-regions nkeys REGIONS_FILE --dir DIR` and pass the .pub files (docs/operations.md, \"NATS credentials\")."
  }
}

output "nats_permissions" {
  description = "Per role (relay, control, healthcheck) and region: the subjects its NATS user may publish and subscribe to, and allow_responses; the same JSON as `meridian-regions nats-permissions` prints under \"users\"."
  value       = local.nats_permissions
}

output "dns" {
  description = "DNS answers with every region healthy: geo (per region: continents, countries, cidrs, addresses), default (clients outside every geography), all (fail-open), regions (fqdn => addresses), api (control addresses), lua (PowerDNS LUA record content per type), route53 (geolocation record sets by set identifier: region, continent or country, type, records)."
  value = {
    zone    = local.zone
    ttl     = local.ttl
    ws_fqdn = "${local.ws_name}.${local.zone}"
    geo     = local.dns_geo
    default = local.dns_default
    all     = local.dns_all
    regions = { for name, fqdn in local.region_fqdn : fqdn => local.relay_addresses[name] }
    api     = local.api_addresses
    lua     = local.lua_records
    route53 = local.route53_geo
  }
}

output "relay_config" {
  description = "Per region: meridian-relay config (node_id is added per host; admin_api_key_file names config_dir/relay_admin.key)."
  value       = local.relay_config
}

output "control_config" {
  description = "Per region with a control section: meridian-control config without postgres (added by the caller); tls (config_dir/tls/control.crt and .key) when the region's control.api_url is https://, and stream.replicas when every region's stream has the same number (the relays' value)."
  value       = local.control_config
  precondition {
    condition     = !var.enforce || length(local.unsafe_control_urls) == 0
    error_message = "control.api_url ${join(", ", local.unsafe_control_urls)}: plain http to a public address would carry the backends' API keys in clear text; use https:// (control then terminates TLS with config_dir/tls/control.crt and .key)."
  }
}

output "healthcheck_config" {
  description = "Per region with a healthcheck section: meridian-healthcheck config (dns provider dry-run until the caller sets one; probe.secret and drain.relay_api_key are the placeholders __TOKEN_SECRET__ and __RELAY_ADMIN_KEY__, filled in on the host)."
  value       = local.healthcheck_config
  precondition {
    condition     = !var.enforce || length(local.healthcheck_config) == 0 || length(local.unsafe_admin_urls) == 0
    error_message = "Relay admin_url ${join(", ", local.unsafe_admin_urls)}: the health agents call it with the relays' admin key, which plain http to a public address would carry in clear text; use https:// (modules/region-aws terminates TLS on the balancer's admin listener) or a private address."
  }
}
