# The repository's local three-region topology (regions/local.json) must be
# valid and give the answers regions/README.md describes.

variables {
  regions_file = "../../../regions/local.json"
  # Any valid public keys: the plan only renders them.
  nats_nkeys = {
    "relay-eu-west"        = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "control-eu-west"      = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "healthcheck-eu-west"  = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "relay-us-east"        = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "control-us-east"      = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "healthcheck-us-east"  = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "relay-ap-south"       = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "control-ap-south"     = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "healthcheck-ap-south" = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
  }
}

run "local_topology" {
  command = plan

  assert {
    condition     = output.problems == []
    error_message = "regions/local.json has problems: ${join("; ", output.problems)}"
  }
  assert {
    condition     = output.region_names == ["eu-west", "us-east", "ap-south"]
    error_message = "regions are not eu-west, us-east, ap-south in file order"
  }
  assert {
    condition     = output.ws_fqdn == "ws.meridian.test." && output.api_fqdn == "api.meridian.test." && output.zone_name == "meridian.test"
    error_message = "DNS names are wrong"
  }
  assert {
    condition     = output.regions["eu-west"].fqdn == "eu-west.ws.meridian.test."
    error_message = "region_name template was not applied"
  }
  assert {
    condition     = output.regions["us-east"].failover_order == ["us-east", "eu-west", "ap-south"]
    error_message = "failover order must start with the region itself"
  }
  assert {
    condition     = output.regions["ap-south"].stream == "MERIDIAN_AP_SOUTH"
    error_message = "stream name must be MERIDIAN_<REGION> upper-cased"
  }
  # Healthy case: each geography answers its own region's relays.
  assert {
    condition = alltrue([for g in output.dns.geo :
    g.addresses == output.regions[g.region].relay_addresses])
    error_message = "a geography does not answer its own region's relays"
  }
  assert {
    condition     = output.dns.default == ["127.1.0.1", "127.1.0.2"]
    error_message = "clients outside every geography must get default_region (eu-west)"
  }
  assert {
    condition     = length(output.dns.all) == 6 && output.dns.api == ["127.1.0.20", "127.2.0.20", "127.3.0.20"]
    error_message = "fail-open answer or api answer is wrong"
  }
  assert {
    condition     = output.dns.regions["us-east.ws.meridian.test."] == ["127.2.0.1", "127.2.0.2"]
    error_message = "region names must answer their own relays"
  }
  assert {
    condition     = output.dns.lua["A"] == "A \";if netmask({'127.1.0.0/16'}) then return {'127.1.0.1','127.1.0.2'} end if netmask({'127.2.0.0/16'}) then return {'127.2.0.1','127.2.0.2'} end if netmask({'127.3.0.0/16'}) then return {'127.3.0.1','127.3.0.2'} end return {'127.1.0.1','127.1.0.2'}\""
    error_message = "PowerDNS LUA record: ${output.dns.lua["A"]}"
  }
  # Route 53: the health agent's set identifiers, one set per continent and
  # country plus the default location.
  assert {
    condition     = sort(keys(output.dns.route53)) == sort(["eu-west-EU", "eu-west-AF", "eu-west-IL", "eu-west-AE", "us-east-NA", "us-east-SA", "ap-south-AS", "ap-south-OC", "default"])
    error_message = "Route 53 set identifiers: ${join(", ", keys(output.dns.route53))}"
  }
  assert {
    condition     = output.dns.route53["eu-west-IL"].country == "IL" && output.dns.route53["eu-west-IL"].continent == null && output.dns.route53["default"].country == "*" && output.dns.route53["default"].records == ["127.1.0.1", "127.1.0.2"]
    error_message = "Route 53 locations are wrong"
  }
  # NATS: one cluster per region, a one-node region routes to itself, every
  # server knows every region's gateway.
  assert {
    condition     = output.nats_servers["eu-west-nats-1"].cluster.routes == ["nats-route://127.1.0.10:17201"]
    error_message = "a one-node region must route to itself"
  }
  assert {
    condition = alltrue([for s in output.nats_servers :
    s.cluster.name == s.region && s.gateway.name == s.region && length(s.gateway.gateways) == 3])
    error_message = "cluster and gateway must be named after the region and list every region"
  }
  assert {
    condition     = strcontains(output.nats_conf["us-east-nats-1"], "{ name: \"ap-south\", urls: [\"nats://127.3.0.10:17202\"] }")
    error_message = "rendered nats-server config lacks the ap-south gateway"
  }
  assert {
    condition     = output.relay_config["eu-west"].nats.urls == ["nats://127.1.0.10:17200"] && output.relay_config["eu-west"].listen == "0.0.0.0:17100" && output.relay_config["eu-west"].admin_listen == "0.0.0.0:17110"
    error_message = "relay config is not derived from the regions file"
  }
  assert {
    condition     = output.relay_config["eu-west"].admin_api_key_file == "/etc/meridian/relay_admin.key" && output.healthcheck_config["eu-west"].drain.relay_api_key == "__RELAY_ADMIN_KEY__"
    error_message = "relays must require an admin key and the health agents must send it"
  }
  assert {
    condition     = output.control_config["ap-south"].http_listen == "0.0.0.0:17300" && length(output.control_config["ap-south"].regions) == 3
    error_message = "control config is not derived from the regions file"
  }
  assert {
    condition     = output.healthcheck_config["us-east"].listen == "0.0.0.0:17400" && output.healthcheck_config["us-east"].nats.urls == ["nats://127.2.0.10:17200"] && output.healthcheck_config["us-east"].regions_file == "/etc/meridian/regions.json"
    error_message = "healthcheck config is not derived from the regions file"
  }
}

run "relay_listen_port_override" {
  command = plan
  variables {
    relay_listen_port = 8080
  }
  assert {
    condition     = output.relay_config["us-east"].listen == "0.0.0.0:8080" && output.relay_port == 17100
    error_message = "relay_listen_port must change the relay's listen port, not the public port"
  }
}

# NATS is locked: TLS for clients (client certificates required), routes and
# gateways; one nkey user per role and region with its own subjects only.
run "nats_locked" {
  command = plan

  assert {
    condition     = strcontains(output.nats_conf["eu-west-nats-1"], "tls {\n  cert_file: \"/etc/nats/tls/server.pem\"\n  key_file: \"/etc/nats/tls/server.key\"\n  ca_file: \"/etc/nats/tls/client-ca.pem\"\n  verify: true")
    error_message = "client connections must require a certificate of the client CA"
  }
  assert {
    condition     = strcontains(output.nats_conf["eu-west-nats-1"], "  MERIDIAN {\n    jetstream: enabled") && length(regexall("\\{nkey: \"U", output.nats_conf["eu-west-nats-1"])) == 9
    error_message = "account MERIDIAN with JetStream and nine users (three roles, three regions)"
  }
  assert {
    condition     = !strcontains(output.nats_conf["eu-west-nats-1"], "password") && strcontains(output.nats_conf["eu-west-nats-1"], "    ca_file: \"/etc/nats/tls/ca.pem\"\n    timeout: 5\n    verify: true")
    error_message = "without a cluster password, gateways authenticate by mutual TLS against the servers' CA"
  }
  assert {
    condition     = contains(output.nats_permissions.relay["eu-west"].publish, "meridian.msg.eu-west.*") && length([for p in output.nats_permissions.relay["eu-west"].publish : p if startswith(p, "meridian.msg.") && p != "meridian.msg.eu-west.*"]) == 0
    error_message = "a relay publishes its own region's messages only"
  }
  assert {
    condition     = length([for p in output.nats_permissions.healthcheck["ap-south"].publish : p if startswith(p, "meridian.msg") || startswith(p, "meridian.commit") || startswith(p, "_INBOX")]) == 0
    error_message = "a health agent publishes no message, commit or reply"
  }
  assert {
    condition     = contains(output.nats_permissions.control["us-east"].publish, "$JS.API.CONSUMER.MSG.NEXT.MERIDIAN_AP_SOUTH.meridian-control") && contains(output.nats_permissions.control["us-east"].publish, "meridian.commit.*")
    error_message = "the control plane reads every region's stream and publishes commits"
  }
  assert {
    condition     = output.control_config["ap-south"].nats.nkey_seed_file == "/etc/meridian/nats/control.nk" && output.control_config["ap-south"].nats.tls == { ca = "/etc/meridian/nats/ca.pem", cert = "/etc/meridian/nats/control.pem", key = "/etc/meridian/nats/control.key" }
    error_message = "daemons get their role's seed and client certificate"
  }
}

run "nats_cluster_password" {
  command = plan
  variables {
    nats_cluster_password = "s3cret/:@"
  }
  assert {
    condition     = strcontains(output.nats_conf["us-east-nats-1"], "\"nats-route://meridian-cluster:s3cret%2F%3A%40@127.2.0.10:17201\"") && strcontains(output.nats_conf["us-east-nats-1"], "password: \"s3cret/:@\"")
    error_message = "the cluster password goes into route and gateway URLs, percent-encoded"
  }
}

run "nats_nkeys_required" {
  command = plan
  variables {
    nats_nkeys = {}
  }
  expect_failures = [output.nats_conf]
}
