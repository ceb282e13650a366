output "regions" {
  description = "Per region: relay endpoints, balancer, auto scaling group, NATS instances."
  value = { for name, m in local.deployed : name => {
    relay_endpoints = m.relay_endpoints
    nlb_dns_name    = m.nlb_dns_name
    relay_asg_name  = m.relay_asg_name
    nats_instances  = m.nats_instance_ids
    services        = m.service_instance_ids
  } }

  precondition {
    condition     = toset(module.topology.region_names) == toset(keys(local.deployed))
    error_message = "The regions file and main.tf disagree: regions in the file without a module block: [${join(", ", setsubtract(module.topology.region_names, keys(local.deployed)))}]; module blocks without a region in the file: [${join(", ", setsubtract(keys(local.deployed), module.topology.region_names))}]."
  }
}

output "ws_fqdn" {
  description = "The name clients connect to."
  value       = module.topology.ws_fqdn
}

output "dns_answers" {
  description = "DNS answers with every region healthy."
  value       = module.topology.dns
}
