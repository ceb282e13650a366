# Renders modules/region-aws/templates/bootstrap.sh.tftpl with the argument
# sets the module uses (apt source or .deb URLs, relay / NATS / service
# roles), so that tests/terraform/run.sh render can check the scripts with
# `bash -n`. No provider: runs offline. The argument names are checked
# against the module's calls by check_hcl.test.mjs.

locals {
  template = "${path.module}/../../../terraform/modules/region-aws/templates/bootstrap.sh.tftpl"
  base = {
    role              = "relay"
    region            = "eu-west"
    meridian_packages = ["meridian-common", "meridian-relay"]
    other_packages    = []
    apt_line          = "deb [signed-by=/etc/apt/keyrings/meridian.asc] https://apt.example.com/meridian bookworm main"
    apt_key           = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n-----END PGP PUBLIC KEY BLOCK-----"
    deb_urls          = []
    version           = "0.1.0-1"
    secrets           = { "/etc/meridian/token.secret" = "/meridian/token-secret", "/etc/meridian/tls/relay.key" = "/meridian/tls-key" }
    node_id_files     = ["/etc/meridian/relay.json"]
    extra_commands    = ""
    units             = ["meridian-relay.service"]
  }
  cases = {
    relay_apt = local.base
    relay_debs = merge(local.base, {
      apt_line = null, apt_key = null, version = null
      deb_urls = ["https://bucket.s3.amazonaws.com/meridian-common_0.1.0-1_amd64.deb?X-Amz-Signature=abc", "https://bucket.s3.amazonaws.com/meridian-relay_0.1.0-1_amd64.deb"]
    })
    nats = merge(local.base, {
      role           = "NATS server eu-west-nats-1", meridian_packages = [], other_packages = ["nats-server"]
      apt_line       = null, apt_key = null, version = null, secrets = {}, node_id_files = []
      extra_commands = "install -d -o nats -g nats -m 0750 /var/lib/nats/jetstream"
      units          = ["nats-server.service"]
    })
    control = merge(local.base, {
      role           = "control", meridian_packages = ["meridian-common", "meridian-control"]
      secrets        = { "/etc/meridian/token.secret" = "/meridian/token-secret", "/etc/meridian/postgres.conninfo" = "/meridian/postgres" }
      node_id_files  = ["/etc/meridian/control.json"]
      extra_commands = "python3 - <<'PY'\nprint('substitute')\nPY"
      units          = ["meridian-control.service"]
    })
  }
}

output "scripts" {
  value = { for name, args in local.cases : name => templatefile(local.template, args) }
}
