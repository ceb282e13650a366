output "relay_endpoints" {
  description = "The balancer's Elastic IPs, by relay id of the regions file."
  value       = { for id, e in data.aws_eip.relay : id => e.public_ip }
}

output "nlb_arn" {
  description = "ARN of the relays' network load balancer."
  value       = aws_lb.relay.arn
}

output "nlb_dns_name" {
  description = "AWS DNS name of the relays' balancer (clients use the regions file's names and Elastic IPs instead)."
  value       = aws_lb.relay.dns_name
}

output "relay_asg_name" {
  description = "Auto scaling group of the relays (instance refresh, scaling, drain)."
  value       = aws_autoscaling_group.relay.name
}

output "relay_target_group_arn" {
  description = "ARN of the relays' WebSocket target group (deregistration delay = drain_seconds)."
  value       = aws_lb_target_group.ws.arn
}

output "nats_instance_ids" {
  description = "NATS instances by server name."
  value       = { for name, i in aws_instance.nats : name => i.id }
}

output "service_instance_ids" {
  description = "Control plane and health agent instances by role."
  value       = { for role, i in aws_instance.service : role => i.id }
}

output "security_group_ids" {
  description = "Security group ids by kind: nlb, relay, nats, service."
  value = {
    nlb     = aws_security_group.nlb.id
    relay   = aws_security_group.relay.id
    nats    = aws_security_group.nats.id
    service = aws_security_group.service.id
  }
}

output "node_role_names" {
  description = "IAM roles by kind of node: relay, nats, service (attach extra policies, e.g. for the health agent's DNS provider)."
  value       = { for k, r in aws_iam_role.node : k => r.name }
}
