# The region's control plane and health agent, each one instance, created
# when the regions file gives the region a control / healthcheck section.
# control.address and the host of healthcheck.url are Elastic IPs the
# operator allocated (like the relay endpoints); the instances get them.
# meridian-control reaches PostgreSQL with the connection string from SSM;
# meridian-healthcheck writes DNS with the provider settings in var.healthcheck_dns.

locals {
  has_control      = local.r.control != null
  has_healthcheck  = local.r.healthcheck != null
  healthcheck_host = local.has_healthcheck ? regex("^https?://\\[?([^\\]/:]+)", local.r.healthcheck.url)[0] : null

  control_config = local.has_control ? merge(var.topology.control_config[var.region], {
    node     = "__NODE_ID__"
    postgres = "__POSTGRES__"
  }) : null

  # The drain API is guarded by the first control plane API key, which is
  # set only where it cannot travel in clear text to a public address: an
  # https:// healthcheck.url (a TLS terminator in front of the agent) or a
  # private one. Elsewhere the agent's drain API stays disabled.
  healthcheck_key_safe = local.has_healthcheck ? var.topology.regions[var.region].healthcheck.key_safe : false
  healthcheck_config = local.has_healthcheck ? merge(var.topology.healthcheck_config[var.region], {
    dns = var.healthcheck_dns
  }, var.api_keys_parameter != null && local.healthcheck_key_safe ? { api_key = "__API_KEY__" } : {}) : null
  control_tls = local.has_control ? contains(keys(var.topology.control_config[var.region]), "tls") : false

  # Values the configs cannot carry in plain text: substituted on the host
  # from the files fetched from SSM (python3 is in Debian's cloud images).
  substitute = <<-EOT
    python3 - <<'PY'
    import json, pathlib
    def load(p):
        f = pathlib.Path(p)
        return f.read_text().strip() if f.exists() else None
    def first_key(p):
        keys = [l.strip() for l in (load(p) or "").splitlines() if l.strip() and not l.startswith("#")]
        return keys[0] if keys else None
    subst = {"__POSTGRES__": load("/etc/meridian/postgres.conninfo"),
             "__TOKEN_SECRET__": load("/etc/meridian/token.secret"),
             "__RELAY_ADMIN_KEY__": load("/etc/meridian/relay_admin.key"),
             "__API_KEY__": first_key("/etc/meridian/api_keys")}
    for name in ("control.json", "healthcheck.json"):
        p = pathlib.Path("/etc/meridian") / name
        if not p.exists():
            continue
        def walk(v):
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x) for x in v]
            return subst.get(v, v) if isinstance(v, str) and subst.get(v) is not None else v
        p.write_text(json.dumps(walk(json.loads(p.read_text())), indent=2) + "\n")
    PY
    rm -f /etc/meridian/postgres.conninfo
  EOT

  service_user_data = { for role, cfg in {
    control     = local.control_config
    healthcheck = local.healthcheck_config
    } : role => "#cloud-config\n${yamlencode({
      write_files = [
        { path = "/etc/meridian/regions.json", permissions = "0640", content = var.regions_file_content },
        { path = "/etc/meridian/${role}.json", permissions = "0640", content = jsonencode(cfg) },
        { path = "/usr/local/sbin/meridian-bootstrap", permissions = "0755", content = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
          role              = role
          region            = var.region
          meridian_packages = ["meridian-common", "meridian-${role}"]
          other_packages    = []
          apt_line          = var.package_source.apt_line
          apt_key           = var.package_source.apt_key
          deb_urls          = var.package_source.deb_urls
          version           = var.meridian_version
          secrets = merge(
            { "/etc/meridian/token.secret" = var.token_secret_parameter },
            role == "healthcheck" ? { "/etc/meridian/relay_admin.key" = var.relay_admin_key_parameter } : {},
            local.nats_daemon_secrets[role],
            role == "control" && var.postgres_parameter != null ? { "/etc/meridian/postgres.conninfo" = var.postgres_parameter } : {},
            role == "control" && local.control_tls ? {
              "/etc/meridian/tls/control.crt" = var.control_tls_parameters.cert
              "/etc/meridian/tls/control.key" = var.control_tls_parameters.key
            } : {},
            var.api_keys_parameter != null ? { "/etc/meridian/api_keys" = var.api_keys_parameter } : {},
          )
          node_id_files  = ["/etc/meridian/${role}.json"]
          extra_commands = local.substitute
          units          = ["meridian-${role}.service"]
        }) },
      ]
      runcmd = [["/usr/local/sbin/meridian-bootstrap"]]
  })}" if cfg != null }
}

data "aws_eip" "control" {
  count     = local.has_control ? 1 : 0
  public_ip = local.r.control.address
}

data "aws_eip" "healthcheck" {
  count     = local.has_healthcheck ? 1 : 0
  public_ip = local.healthcheck_host
}

# What replaces the control plane and health agent instances: a change of
# var.service_rollout, nothing else (see the lifecycle below).
resource "terraform_data" "service_rollout" {
  input = var.service_rollout
}

resource "aws_instance" "service" {
  for_each = local.service_user_data

  ami                    = local.ami_id
  instance_type          = var.service_instance_type
  subnet_id              = var.service_subnet_id
  key_name               = var.ssh_key_name
  vpc_security_group_ids = [aws_security_group.service.id]
  iam_instance_profile   = aws_iam_instance_profile.node["service"].name
  user_data_base64       = base64encode(each.value)

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = 20
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(local.tags, { Name = "${local.name}-${each.key}", "meridian:role" = each.key })

  # A new Debian AMI (the data source follows the latest) or a changed
  # config would otherwise replace the region's only control plane and
  # health agent at the next apply, unannounced. They are replaced when
  # var.service_rollout changes: deliberately, one region at a time
  # (docs/operations.md, section 7). Config changes in between: in place.
  lifecycle {
    ignore_changes       = [ami, user_data_base64]
    replace_triggered_by = [terraform_data.service_rollout]
    precondition {
      condition     = each.key != "control" || !local.control_tls || var.control_tls_parameters != null
      error_message = "Region ${var.region}: control.api_url is https://: set control_tls_parameters (SSM parameters of the control plane's certificate and key)."
    }
    precondition {
      condition     = var.service_subnet_id != null
      error_message = "Region ${var.region} has a ${each.key} section in the regions file: set service_subnet_id (a public subnet)."
    }
    precondition {
      condition     = each.key != "control" || var.postgres_parameter != null
      error_message = "Region ${var.region} runs meridian-control: set postgres_parameter (SSM parameter with the libpq connection string)."
    }
  }
}

resource "aws_eip_association" "control" {
  count         = local.has_control ? 1 : 0
  allocation_id = data.aws_eip.control[0].id
  instance_id   = aws_instance.service["control"].id
}

resource "aws_eip_association" "healthcheck" {
  count         = local.has_healthcheck ? 1 : 0
  allocation_id = data.aws_eip.healthcheck[0].id
  instance_id   = aws_instance.service["healthcheck"].id
}
