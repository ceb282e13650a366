# One Meridian region on AWS:
#   - relays: launch template + auto scaling group behind a network load
#     balancer whose per-AZ Elastic IPs are the region's relay endpoints in the
#     regions file (relays[i].address), so DNS answers stable addresses while
#     instances come and go;
#   - NATS: one instance per nats.servers[] entry, on the fixed private
#     address the regions file gives it (cluster routes and gateways dial it);
#   - control plane and health agent: one instance each when the regions file
#     gives the region a control / healthcheck section;
#   - security groups that open only what each part needs.
# cloud-init installs the Meridian packages and writes the configs the
# topology module derives from the regions file; secrets come from SSM.

locals {
  r      = var.topology.regions[var.region]
  relays = local.r.relays
  # One admin port per region (the relays' admin_url port; the balancer maps it).
  admin_port        = local.relays[0].admin_port
  ws_port           = local.r.relay_port
  nats              = { for s in local.r.nats_servers : s.name => var.topology.nats_servers[s.name] }
  nats_client_ports = distinct([for s in local.r.nats_servers : tostring(s.client_port)])

  other_nats_hosts = distinct(flatten([for name, reg in var.topology.regions :
  [for s in reg.nats_servers : s.host] if name != var.region]))
  other_nats_gateway_ports = distinct(flatten([for name, reg in var.topology.regions :
  [for s in reg.nats_servers : s.gateway_port] if name != var.region]))

  name = "${var.name_prefix}-${var.region}"
  tags = merge(var.tags, { "meridian:region" = var.region })
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_ami" "debian12" {
  count       = var.ami_id == null ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian cloud team
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.debian12[0].id
}

# The relay endpoints of the regions file are Elastic IPs allocated by the
# operator beforehand (they are in the regions file, which is written first).
data "aws_eip" "relay" {
  for_each  = { for x in local.relays : x.id => x }
  public_ip = each.value.address
}

# ---------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# One role per kind of node, each reading only the secrets it needs:
# relays the token secret and their admin key (and their TLS pair), NATS
# servers their TLS material, the control plane and health agent the token
# secret, the relays' admin key (the agent drains relays), API keys and
# (control) the PostgreSQL connection string; every daemon its NATS nkey
# seed and client certificate.
locals {
  # NATS credentials (var.nats_ssm_prefix): the servers' TLS material on
  # NATS hosts, each daemon's nkey seed and client certificate on its host.
  nats_server_secrets = { for name, s in local.nats : name => {
    "/etc/nats/tls/ca.pem"        = "${var.nats_ssm_prefix}/ca.pem"
    "/etc/nats/tls/client-ca.pem" = "${var.nats_ssm_prefix}/client-ca.pem"
    "/etc/nats/tls/server.pem"    = "${var.nats_ssm_prefix}/servers/${name}.pem"
    "/etc/nats/tls/server.key"    = "${var.nats_ssm_prefix}/servers/${name}.key"
  } }
  nats_daemon_secrets = { for role in ["relay", "control", "healthcheck"] : role => merge(
    { "/etc/meridian/nats/ca.pem" = "${var.nats_ssm_prefix}/ca.pem" },
    { for ext in ["nk", "pem", "key"] : "/etc/meridian/nats/${role}.${ext}" => "${var.nats_ssm_prefix}/${var.region}/${role}.${ext}" },
  ) }

  role_parameters = {
    relay = compact(concat([
      var.token_secret_parameter,
      var.relay_admin_key_parameter,
      try(var.tls_ssm_parameters.cert, null),
      try(var.tls_ssm_parameters.key, null),
    ], values(local.nats_daemon_secrets["relay"])))
    nats = distinct(flatten([for m in values(local.nats_server_secrets) : values(m)]))
    service = distinct(compact(concat([var.token_secret_parameter, var.api_keys_parameter, var.postgres_parameter,
      var.relay_admin_key_parameter, try(var.control_tls_parameters.cert, null), try(var.control_tls_parameters.key, null)],
    values(local.nats_daemon_secrets["control"]), values(local.nats_daemon_secrets["healthcheck"]))))
  }
  parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter"
}

data "aws_iam_policy_document" "read_secrets" {
  for_each = { for role, params in local.role_parameters : role => params if length(params) > 0 }
  statement {
    sid       = "ReadMeridianSecrets"
    actions   = ["ssm:GetParameter"]
    resources = [for p in each.value : "${local.parameter_arn}/${trimprefix(p, "/")}"]
  }
  # Parameters encrypted with the AWS managed key (aws/ssm) need no KMS grant;
  # a customer managed key does.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptMeridianSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each           = toset(keys(local.role_parameters))
  name_prefix        = "${local.name}-${each.key}-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "read_secrets" {
  for_each = data.aws_iam_policy_document.read_secrets
  name     = "meridian-secrets"
  role     = aws_iam_role.node[each.key].id
  policy   = each.value.json
}

# Session Manager instead of SSH.
resource "aws_iam_role_policy_attachment" "ssm_core" {
  for_each   = aws_iam_role.node
  role       = each.value.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  for_each    = aws_iam_role.node
  name_prefix = "${local.name}-${each.key}-"
  role        = each.value.name
  tags        = local.tags
}
