# Who may talk to whom:
#   clients          -> balancer   ws port (public)
#   admin_cidrs      -> balancer   relay admin port (health agents, monitoring)
#   balancer         -> relays     relay listen port, relay admin port
#   relays, control  -> NATS       client port
#   NATS             -> NATS       cluster port (this region), gateway port (all regions)
#   control_api_cidrs-> control    API port; admin_cidrs -> control admin port
#   admin_cidrs      -> health     agent port (peers and dashboard)
#   every node       -> internet   80/443 (packages, SSM) through the VPC's NAT
# Nothing else is open; there is no SSH rule (use Session Manager).

resource "aws_security_group" "nlb" {
  name_prefix = "${local.name}-nlb-"
  description = "Meridian ${var.region}: relay balancer"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-nlb" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "relay" {
  name_prefix = "${local.name}-relay-"
  description = "Meridian ${var.region}: relays"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-relay" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "nats" {
  name_prefix = "${local.name}-nats-"
  description = "Meridian ${var.region}: NATS servers"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-nats" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "service" {
  name_prefix = "${local.name}-svc-"
  description = "Meridian ${var.region}: control plane and health agent"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-svc" })
  lifecycle {
    create_before_destroy = true
  }
}

# Balancer.
resource "aws_vpc_security_group_ingress_rule" "nlb_ws_v4" {
  security_group_id = aws_security_group.nlb.id
  description       = "WebSocket clients"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = local.ws_port
  to_port           = local.ws_port
}

resource "aws_vpc_security_group_ingress_rule" "nlb_ws_v6" {
  security_group_id = aws_security_group.nlb.id
  description       = "WebSocket clients"
  cidr_ipv6         = "::/0"
  ip_protocol       = "tcp"
  from_port         = local.ws_port
  to_port           = local.ws_port
}

resource "aws_vpc_security_group_ingress_rule" "nlb_admin" {
  for_each          = toset(var.admin_cidrs)
  security_group_id = aws_security_group.nlb.id
  description       = "Relay admin HTTP (health probes, metrics)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.admin_port
  to_port           = local.admin_port
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_relay" {
  for_each                     = toset([tostring(var.relay_listen_port), tostring(local.admin_port)])
  security_group_id            = aws_security_group.nlb.id
  description                  = "To relays"
  referenced_security_group_id = aws_security_group.relay.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

# Relays.
resource "aws_vpc_security_group_ingress_rule" "relay_from_nlb" {
  for_each                     = toset([tostring(var.relay_listen_port), tostring(local.admin_port)])
  security_group_id            = aws_security_group.relay.id
  description                  = "From the balancer (traffic and health checks)"
  referenced_security_group_id = aws_security_group.nlb.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

# NATS.
resource "aws_vpc_security_group_ingress_rule" "nats_client" {
  for_each = { for pair in setproduct(["relay", "service"], local.nats_client_ports) : "${pair[0]}:${pair[1]}" => {
    sg   = pair[0] == "relay" ? aws_security_group.relay.id : aws_security_group.service.id
    port = tonumber(pair[1])
  } }
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS clients"
  referenced_security_group_id = each.value.sg
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "nats_cluster" {
  for_each                     = toset([for s in local.r.nats_servers : tostring(s.cluster_port)])
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS cluster routes inside the region"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_vpc_security_group_ingress_rule" "nats_gateway" {
  for_each = { for pair in setproduct(local.other_nats_hosts, distinct([for s in local.r.nats_servers : s.gateway_port])) :
  "${pair[0]}:${pair[1]}" => { host = pair[0], port = pair[1] } }
  security_group_id = aws_security_group.nats.id
  description       = "NATS gateway from another region"
  cidr_ipv4         = strcontains(each.value.host, ":") ? null : "${each.value.host}/32"
  cidr_ipv6         = strcontains(each.value.host, ":") ? "${each.value.host}/128" : null
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "nats_monitor" {
  for_each          = { for pair in setproduct(var.nats_monitor_cidrs, distinct(compact([for s in local.r.nats_servers : s.monitor_port == null ? "" : tostring(s.monitor_port)]))) : "${pair[0]}:${pair[1]}" => { cidr = pair[0], port = tonumber(pair[1]) } }
  security_group_id = aws_security_group.nats.id
  description       = "NATS monitoring"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "nats_routes" {
  for_each                     = toset([for s in local.r.nats_servers : tostring(s.cluster_port)])
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS cluster routes"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_vpc_security_group_egress_rule" "nats_gateways_out" {
  for_each          = { for pair in setproduct(local.other_nats_hosts, local.other_nats_gateway_ports) : "${pair[0]}:${pair[1]}" => { host = pair[0], port = pair[1] } }
  security_group_id = aws_security_group.nats.id
  description       = "NATS gateways of other regions"
  cidr_ipv4         = strcontains(each.value.host, ":") ? null : "${each.value.host}/32"
  cidr_ipv6         = strcontains(each.value.host, ":") ? "${each.value.host}/128" : null
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

# Relays and services dial NATS.
resource "aws_vpc_security_group_egress_rule" "to_nats" {
  for_each = { for pair in setproduct(["relay", "service"], local.nats_client_ports) : "${pair[0]}:${pair[1]}" => {
    sg   = pair[0] == "relay" ? aws_security_group.relay.id : aws_security_group.service.id
    port = tonumber(pair[1])
  } }
  security_group_id            = each.value.sg
  description                  = "To NATS"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# Control plane and health agent.
resource "aws_vpc_security_group_ingress_rule" "control_api" {
  for_each          = local.r.control == null ? toset([]) : toset(var.control_api_cidrs)
  security_group_id = aws_security_group.service.id
  description       = "Control plane API"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.r.control.api_port
  to_port           = local.r.control.api_port
}

resource "aws_vpc_security_group_ingress_rule" "service_admin" {
  for_each = { for pair in setproduct(var.admin_cidrs, compact([
    local.r.control == null ? "" : tostring(local.r.control.admin_port),
    local.r.healthcheck == null ? "" : tostring(local.r.healthcheck.port),
  ])) : "${pair[0]}:${pair[1]}" => { cidr = pair[0], port = tonumber(pair[1]) } }
  security_group_id = aws_security_group.service.id
  description       = "Control admin HTTP / health agent status and peers"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

# The health agent probes every region's relay endpoints and admin ports,
# talks to its peers, and writes DNS (Route 53 API or PowerDNS API over
# HTTPS); the control plane reaches PostgreSQL. Both over these ports only.
resource "aws_vpc_security_group_egress_rule" "service_out" {
  for_each = toset(distinct(concat([
    tostring(local.ws_port), tostring(local.admin_port), "5432", "53",
    local.r.healthcheck == null ? "443" : tostring(local.r.healthcheck.port),
  ], [for p in var.service_egress_ports : tostring(p)])))
  security_group_id = aws_security_group.service.id
  description       = "Probes, peers, PostgreSQL, DNS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
}

resource "aws_vpc_security_group_egress_rule" "service_dns_udp" {
  security_group_id = aws_security_group.service.id
  description       = "DNS checks of the authoritative servers"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "udp"
  from_port         = 53
  to_port           = 53
}

# Packages and SSM for every node (through the VPC's NAT gateway).
resource "aws_vpc_security_group_egress_rule" "web" {
  for_each = { for pair in setproduct(["relay", "nats", "service"], ["80", "443"]) : "${pair[0]}:${pair[1]}" => {
    sg   = pair[0] == "relay" ? aws_security_group.relay.id : pair[0] == "nats" ? aws_security_group.nats.id : aws_security_group.service.id
    port = tonumber(pair[1])
  } }
  security_group_id = each.value.sg
  description       = "Packages and AWS APIs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

data "aws_ec2_managed_prefix_list" "route53_health_checks" {
  count = var.allow_route53_health_checks ? 1 : 0
  name  = "com.amazonaws.${data.aws_region.current.name}.route53-healthchecks"
}

resource "aws_vpc_security_group_ingress_rule" "nlb_admin_route53" {
  count             = var.allow_route53_health_checks ? 1 : 0
  security_group_id = aws_security_group.nlb.id
  description       = "Route 53 health checkers (relay /readyz)"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.route53_health_checks[0].id
  ip_protocol       = "tcp"
  from_port         = local.admin_port
  to_port           = local.admin_port
}
