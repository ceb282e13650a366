# Relays: a network load balancer with one Elastic IP per AZ (the region's
# relay endpoints in the regions file) in front of an auto scaling group.
#
# TLS (var.tls_mode):
#   "balancer": the ws port listener is TLS with the ACM certificate; relays
#               get plain TCP on relay_listen_port. Simple certificate
#               rotation (ACM renews), TLS work off the relays.
#   "relay":    the listener is plain TCP pass-through; each relay terminates
#               TLS with the certificate from SSM (tls_ssm_parameters). Use it
#               when traffic must stay encrypted up to the relay process.
# Either way the health agents see TLS and the certificate on address:port.
#
# Cross-zone load balancing is off: relays[i].address only reaches relays in
# public_subnet_ids[i]'s zone, so a probe of one endpoint tests one zone.

locals {
  relay_config = merge(var.topology.relay_config[var.region], {
    node_id        = "__NODE_ID__"
    listen         = "0.0.0.0:${var.relay_listen_port}"
    drain_grace_ms = var.drain_seconds * 1000
    }, var.tls_mode == "relay" ? {
    tls = { cert = "/etc/meridian/tls/relay.crt", key = "/etc/meridian/tls/relay.key" }
  } : {})

  relay_secrets = merge(
    {
      "/etc/meridian/token.secret"    = var.token_secret_parameter
      "/etc/meridian/relay_admin.key" = var.relay_admin_key_parameter
    },
    local.nats_daemon_secrets["relay"],
    var.tls_mode == "relay" ? {
      "/etc/meridian/tls/relay.crt" = var.tls_ssm_parameters.cert
      "/etc/meridian/tls/relay.key" = var.tls_ssm_parameters.key
    } : {},
  )

  relay_bootstrap = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
    role              = "relay"
    region            = var.region
    meridian_packages = ["meridian-common", "meridian-relay"]
    other_packages    = []
    apt_line          = var.package_source.apt_line
    apt_key           = var.package_source.apt_key
    deb_urls          = var.package_source.deb_urls
    version           = var.meridian_version
    secrets           = local.relay_secrets
    node_id_files     = ["/etc/meridian/relay.json"]
    extra_commands    = ""
    units             = ["meridian-relay.service"]
  })

  relay_user_data = "#cloud-config\n${yamlencode({
    write_files = [
      { path = "/etc/meridian/regions.json", permissions = "0640", content = var.regions_file_content },
      { path = "/etc/meridian/relay.json", permissions = "0640", content = jsonencode(local.relay_config) },
      { path = "/usr/local/sbin/meridian-bootstrap", permissions = "0755", content = local.relay_bootstrap },
    ]
    runcmd = [["/usr/local/sbin/meridian-bootstrap"]]
  })}"
}

resource "aws_lb" "relay" {
  name_prefix                      = substr(replace(var.region, "-", ""), 0, 6)
  load_balancer_type               = "network"
  internal                         = false
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = false
  ip_address_type                  = "ipv4"

  dynamic "subnet_mapping" {
    for_each = { for i, x in local.relays : x.id => i }
    content {
      subnet_id     = var.public_subnet_ids[subnet_mapping.value]
      allocation_id = data.aws_eip.relay[subnet_mapping.key].id
    }
  }

  tags = merge(local.tags, { Name = "${local.name}-relays" })

  lifecycle {
    precondition {
      condition     = length(var.public_subnet_ids) == length(local.relays)
      error_message = "Region ${var.region}: public_subnet_ids must hold one subnet per relay endpoint of the regions file (${length(local.relays)}), in the same order."
    }
    precondition {
      condition     = alltrue([for x in local.relays : x.tls])
      error_message = "Region ${var.region}: relays' ws_url must be wss:// (TLS ends on the balancer or the relay)."
    }
  }
}

resource "aws_lb_target_group" "ws" {
  name_prefix          = "ws"
  port                 = var.relay_listen_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = var.drain_seconds
  # Existing WebSockets stay up while a draining relay moves its clients.
  connection_termination = false
  preserve_client_ip     = "true"

  # The relays' admin port is plain HTTP on the instance; with an https://
  # admin_url the balancer terminates TLS in front of it.
  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port)
    path                = "/readyz"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
  }

  tags = local.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_target_group" "admin" {
  name_prefix          = "adm"
  port                 = local.admin_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 10

  health_check {
    protocol = "HTTP"
    port     = "traffic-port"
    path     = "/healthz"
    interval = 10
  }

  tags = local.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "ws" {
  load_balancer_arn = aws_lb.relay.arn
  port              = local.ws_port
  protocol          = var.tls_mode == "balancer" ? "TLS" : "TCP"
  certificate_arn   = var.tls_mode == "balancer" ? var.certificate_arn : null
  ssl_policy        = var.tls_mode == "balancer" ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ws.arn
  }
  tags = local.tags
}

# With an https:// admin_url (the health agents call the drain API with the
# relays' admin key) the listener is TLS, so the key never crosses public
# networks in clear text; the topology module refuses plain http to a public
# address.
resource "aws_lb_listener" "admin" {
  load_balancer_arn = aws_lb.relay.arn
  port              = local.admin_port
  protocol          = local.relays[0].admin_tls ? "TLS" : "TCP"
  certificate_arn   = local.relays[0].admin_tls ? coalesce(var.admin_certificate_arn, var.certificate_arn) : null
  ssl_policy        = local.relays[0].admin_tls ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.admin.arn
  }
  tags = local.tags

  lifecycle {
    precondition {
      condition     = !local.relays[0].admin_tls || coalesce(var.admin_certificate_arn, var.certificate_arn, "none") != "none"
      error_message = "Region ${var.region}: the relays' admin_url is https://: set admin_certificate_arn (or certificate_arn) for the balancer's admin listener."
    }
    precondition {
      condition     = length(distinct([for x in local.relays : x.admin_tls])) == 1
      error_message = "Region ${var.region}: the relays' admin_url must all be https:// or all http:// (one balancer listener)."
    }
  }
}

resource "aws_launch_template" "relay" {
  name_prefix            = "${local.name}-relay-"
  image_id               = local.ami_id
  instance_type          = var.relay_instance_type
  key_name               = var.ssh_key_name
  vpc_security_group_ids = [aws_security_group.relay.id]
  user_data              = base64encode(local.relay_user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.node["relay"].arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 20
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${local.name}-relay", "meridian:role" = "relay" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "relay" {
  name_prefix               = "${local.name}-relay-"
  min_size                  = var.relay_count.min
  desired_capacity          = var.relay_count.desired
  max_size                  = var.relay_count.max
  vpc_zone_identifier       = var.relay_subnet_ids
  target_group_arns         = [aws_lb_target_group.ws.arn, aws_lb_target_group.admin.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 300
  # A relay being replaced gets SIGTERM only after the balancer drained it.
  default_instance_warmup = 120

  launch_template {
    id      = aws_launch_template.relay.id
    version = aws_launch_template.relay.latest_version
  }

  # Upgrades (a new package version or config changes the launch template)
  # replace relays one at a time: a new one is launched and healthy before an
  # old one is drained and terminated (min 100 %, max 100 % + one instance).
  # Refresh is triggered by launch template changes only; start one by hand
  # with `aws autoscaling start-instance-refresh` (docs/operations.md).
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 100 + ceil(100 / var.relay_count.desired)
      instance_warmup        = 120
      skip_matching          = true
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${local.name}-relay" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [desired_capacity]
  }
}
