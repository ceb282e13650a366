# NATS: one instance per nats.servers[] entry of the region, on the private
# address the regions file gives it. Debian's nats-server package runs it;
# its config (/etc/nats-server.conf) is rendered by the topology module:
# cluster named after the region, gateways to every region, JetStream on the
# instance's volume. Stopping it (upgrade, replacement) uses lame duck mode so
# clients move to the region's other servers first.

locals {
  nats_dropin = <<-EOT
    # Installed by Meridian's cloud-init.
    [Service]
    LimitNOFILE=65536
    Restart=on-failure
    RestartSec=2s
    # Lame duck mode: stop accepting, move clients away, then exit.
    ExecStop=
    KillSignal=SIGUSR2
    TimeoutStopSec=150
    NoNewPrivileges=yes
    ProtectSystem=strict
    ReadWritePaths=/var/lib/nats
    ProtectHome=yes
  EOT

  nats_user_data = { for name, s in local.nats : name => "#cloud-config\n${yamlencode({
    write_files = [
      { path = "/etc/nats-server.conf", permissions = "0640", content = var.topology.nats_conf[name] },
      { path = "/etc/systemd/system/nats-server.service.d/meridian.conf", permissions = "0644", content = local.nats_dropin },
      { path = "/usr/local/sbin/meridian-bootstrap", permissions = "0755", content = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
        role              = "NATS server ${name}"
        region            = var.region
        meridian_packages = []
        other_packages    = ["nats-server"]
        apt_line          = null
        apt_key           = null
        deb_urls          = []
        version           = null
        secrets           = local.nats_server_secrets[name]
        node_id_files     = []
        extra_commands    = "install -d -o nats -g nats -m 0750 ${s.jetstream.store_dir}\nchgrp nats /etc/nats-server.conf && chgrp -R nats /etc/nats/tls && chmod 0750 /etc/nats/tls && chmod 0640 /etc/nats/tls/*"
        units             = ["nats-server.service"]
      }) },
    ]
    runcmd = [["/usr/local/sbin/meridian-bootstrap"]]
  })}" }
}

resource "aws_instance" "nats" {
  for_each = local.nats

  ami                    = local.ami_id
  instance_type          = var.nats_instance_type
  subnet_id              = lookup(var.nats_subnet_ids, each.key, null)
  private_ip             = each.value.host
  key_name               = var.ssh_key_name
  vpc_security_group_ids = [aws_security_group.nats.id]
  iam_instance_profile   = aws_iam_instance_profile.node["nats"].name
  user_data_base64       = base64encode(local.nats_user_data[each.key])

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = var.nats_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(local.tags, { Name = "${local.name}-${each.key}", "meridian:role" = "nats" })

  lifecycle {
    precondition {
      condition     = contains(keys(var.nats_subnet_ids), each.key)
      error_message = "Region ${var.region}: nats_subnet_ids has no subnet for NATS server ${each.key} (${each.value.host})."
    }
    # A new config is applied by hand (reload), never by replacing a JetStream node.
    ignore_changes = [ami, user_data_base64]
  }
}
