output "zone" {
  description = "The zone the records are in (with its trailing dot)."
  value       = local.t.zone
}

output "ws_record" {
  description = "The ws name's LUA record content as created (the agent may have changed it since)."
  value       = { for k, r in powerdns_record.ws : k => r.records }
}
