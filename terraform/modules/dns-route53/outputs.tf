output "zone_id" {
  description = "The Route 53 hosted zone id the records are in (given, or looked up by the zone name)."
  value       = local.zone_id
}

output "region_health_check_ids" {
  description = "Calculated Route 53 health check per region (empty when health_checks is false)."
  value       = { for name, h in aws_route53_health_check.region : name => h.id }
}

output "ws_record_ids" {
  description = "Geolocation record sets of the ws name, by set identifier (\"<region>-<code>\", \"default\")."
  value       = { for k, r in aws_route53_record.ws_geo : k => r.id }
}
