# The topology module applied to one regions file, for run.sh crosscheck:
# its answers are compared with meridian-regions (the C loader and routing
# policy) and its rendered nats-server configs are checked by nats-server.

variable "regions_file" {
  type = string
}

variable "nats_nkeys" {
  type = map(string)
}

module "topology" {
  source       = "../../../terraform/modules/topology"
  regions_file = var.regions_file
  nats_nkeys   = var.nats_nkeys
}

output "geo" {
  value = { for g in module.topology.dns.geo : g.region => g.addresses }
}

output "default_region" {
  value = module.topology.default_region
}

output "nats_conf" {
  value     = module.topology.nats_conf
  sensitive = true
}

output "nats_permissions" {
  value = module.topology.nats_permissions
}

output "lua" {
  value = module.topology.dns.lua["A"]
}

output "route53" {
  value = module.topology.dns.route53
}

output "ttl" {
  value = module.topology.ttl
}

output "relay_config" {
  value = module.topology.relay_config
}

output "control_config" {
  value = module.topology.control_config
}

output "region_names" {
  value = module.topology.dns.regions
}

output "healthcheck_config" {
  value = module.topology.healthcheck_config
}
