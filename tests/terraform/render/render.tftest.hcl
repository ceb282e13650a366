run "render" {
  command = apply

  assert {
    condition     = strcontains(output.scripts.relay_apt, "apt-get install \"$${apt_opts[@]}\" meridian-common=0.1.0-1 meridian-relay=0.1.0-1")
    error_message = "apt install line: ${output.scripts.relay_apt}"
  }
  assert {
    condition     = strcontains(output.scripts.relay_debs, "curl -fsSL --retry 5 -o /tmp/meridian-1.deb 'https://bucket.s3.amazonaws.com/meridian-relay_0.1.0-1_amd64.deb'") && !strcontains(output.scripts.relay_debs, "sources.list.d")
    error_message = "deb URLs: ${output.scripts.relay_debs}"
  }
  assert {
    condition     = strcontains(output.scripts.relay_apt, "fetch_secret '/meridian/tls-key' '/etc/meridian/tls/relay.key'") && strcontains(output.scripts.relay_apt, "sed -i \"s/__NODE_ID__/$instance_id/g\" '/etc/meridian/relay.json'")
    error_message = "secrets and node id: ${output.scripts.relay_apt}"
  }
  assert {
    condition     = !strcontains(output.scripts.nats, "meridian") || !strcontains(output.scripts.nats, "chown -R root:meridian")
    error_message = "NATS servers must not touch /etc/meridian"
  }
  assert {
    condition     = strcontains(output.scripts.nats, "apt-get install \"$${apt_opts[@]}\" nats-server") && strcontains(output.scripts.nats, "systemctl enable --now nats-server.service")
    error_message = "NATS install: ${output.scripts.nats}"
  }
}
