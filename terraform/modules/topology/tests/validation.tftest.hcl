# Validation: a good fixture passes; each broken copy of it (made with
# replace()) reports the problem with the wording of `meridian-regions check`.
# enforce = false turns problems into output.problems so that the message can
# be asserted; the last runs show that the default (enforce = true) fails.

# Any valid public keys for the fixture's regions (eu, us): the plan only renders them.
variables {
  nats_nkeys = {
    "relay-eu"       = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "control-eu"     = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "healthcheck-eu" = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "relay-us"       = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "control-us"     = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
    "healthcheck-us" = "UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR"
  }
}

run "fixture_is_valid" {
  command = plan
  variables {
    regions_file = "tests/fixtures/two-regions.json"
  }
  assert {
    condition     = output.problems == []
    error_message = "fixture has problems: ${join("; ", output.problems)}"
  }
  assert {
    condition     = output.regions["eu"].fqdn == "europe.chat.example.com." && output.regions["us"].fqdn == "us.edge.chat.example.com."
    error_message = "dns_name must override region_name"
  }
  assert {
    condition     = output.regions["us"].min_healthy_relays == 1 && output.regions["us"].control == null && output.regions["us"].healthcheck == null
    error_message = "optional fields must get their defaults"
  }
  assert {
    condition     = output.nats_servers["eu-n1"].cluster.routes == ["nats-route://10.1.0.11:6222", "nats-route://10.1.0.12:6222"] && output.nats_servers["eu-n1"].monitor_port == null
    error_message = "a two-node region must route to both servers"
  }
  assert {
    condition     = !strcontains(output.nats_conf["eu-n1"], "http:") && strcontains(output.nats_conf["eu-n2"], "http: \"10.1.0.12:8222\"")
    error_message = "monitor port must be rendered only when given"
  }
  assert {
    condition     = output.nameservers[0].port == 53 && output.nameservers[1].port == 5353
    error_message = "name server port defaults to 53"
  }
  assert {
    condition     = output.dns.lua["A"] == "A \";if netmask({'10.1.0.0/16','fd00:1::/32'}) then return {'198.51.100.1','198.51.100.2','2001:db8:1::1'} end if netmask({'10.2.0.0/16'}) then return {'203.0.113.1'} end return {'203.0.113.1'}\""
    error_message = "LUA record: ${output.dns.lua["A"]}"
  }
  assert {
    condition     = output.dns.route53["eu-EU"].records == ["198.51.100.1", "198.51.100.2"] && output.dns.route53["eu-EU-AAAA"].records == ["2001:db8:1::1"] && output.dns.route53["eu-EU-AAAA"].type == "AAAA" && !contains(keys(output.dns.route53), "default-AAAA")
    error_message = "Route 53 sets must split address families: ${jsonencode(output.dns.route53)}"
  }
  assert {
    condition     = output.regions["eu"].relays[0].tls && output.regions["eu"].relays[1].ws_path == "/ws" && output.regions["eu"].relays[0].admin_port == 9443
    error_message = "relay URL parts are wrong"
  }
  assert {
    condition     = output.relay_config["eu"].stream == { placement = "eu", replicas = 2 } && output.relay_config["us"].stream.replicas == 1
    error_message = "relay stream placement/replicas: ${jsonencode(output.relay_config["eu"].stream)}"
  }
  assert {
    condition     = keys(output.control_config) == ["eu"] && keys(output.healthcheck_config) == ["eu"]
    error_message = "only regions with a control/healthcheck section get their configs"
  }
}

run "unknown_failover_region" {
  command = plan
  variables {
    enforce      = false
    regions_json = replace(file("tests/fixtures/two-regions.json"), "\"failover\": [\"us\"]", "\"failover\": [\"usa\", \"eu\"]")
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[0].failover[0]: unknown region \"usa\"")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[0].failover[1]: a region cannot fail over to itself")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = output.regions == {} && output.nats_servers == {}
    error_message = "nothing may be derived from an invalid file"
  }
}

run "duplicates_and_overlaps" {
  command = plan
  variables {
    enforce = false
    regions_json = replace(replace(replace(replace(file("tests/fixtures/two-regions.json"),
      "\"continents\": [\"NA\"]", "\"continents\": [\"NA\", \"EU\"]"),
      "\"10.2.0.0/16\"", "\"10.1.128.0/17\""),
      "\"id\": \"us-a\"", "\"id\": \"eu-a\""),
    "\"name\": \"us-n1\", \"host\": \"10.2.0.11\"", "\"name\": \"us-n1\", \"host\": \"10.1.0.11\"")
  }
  assert {
    condition     = contains(output.problems, "regions_json: geo: continent \"EU\" belongs to two regions")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].geo.cidrs[0]: 10.1.128.0/17 overlaps 10.1.0.0/16 (regions[0].geo.cidrs[0])")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].relays[0].id: duplicate relay id \"eu-a\"")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].nats.servers[0]: listener 10.1.0.11:4222 is used twice")
    error_message = "got: ${join("; ", output.problems)}"
  }
}

run "field_formats" {
  command = plan
  variables {
    enforce = false
    regions_json = replace(replace(replace(replace(replace(replace(file("tests/fixtures/two-regions.json"),
      "\"zone\": \"chat.example.com.\"", "\"zone\": \"chat.example.com\""),
      "\"ttl\": 30", "\"ttl\": 0"),
      "\"10.2.0.0/16\"", "\"10.2.0.1/16\""),
      "\"countries\": [\"GB\"]", "\"countries\": [\"gb\"]"),
      "\"ws_url\": \"wss://us-a.chat.example.com/\"", "\"ws_url\": \"wss://us-a.chat.example.com:8443/\""),
    "\"min_healthy_relays\": 2", "\"min_healthy_relays\": 4")
  }
  assert {
    condition     = contains(output.problems, "regions_json: dns.zone: \"chat.example.com\" must be a fully qualified name with a trailing dot, e.g. \"meridian.example.com.\"")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: dns.ttl: must be an integer between 1 and 86400")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].geo.cidrs[0]: \"10.2.0.1/16\" is not a network address with a prefix length (no host bits set)")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].geo.countries[0]: \"gb\" is not an upper-case ISO 3166-1 alpha-2 code")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[1].relays[0].ws_url: port 8443 differs from port 443")
    error_message = "got: ${join("; ", output.problems)}"
  }
  assert {
    condition     = contains(output.problems, "regions_json: regions[0].min_healthy_relays: must be between 1 and the number of relays (3)")
    error_message = "got: ${join("; ", output.problems)}"
  }
}

run "missing_fields" {
  command = plan
  variables {
    enforce      = false
    regions_json = jsonencode({ version = 2, dns = { zone = "x." }, regions = [{ name = "Bad_Name", geo = {}, relays = [], nats = {} }] })
  }
  assert {
    condition = alltrue([for p in [
      "regions_json: version: must be 1",
      "regions_json: dns.ws_name: \"\" must be a name relative to the zone, without a trailing dot",
      "regions_json: dns.default_region: unknown region \"\"",
      "regions_json: dns.nameservers: at least one name server is required",
      "regions_json: regions[0].name: \"Bad_Name\" must be 1..32 characters of a-z 0-9 -",
      "regions_json: regions[0].geo: at least one of continents, countries, cidrs must be non-empty",
      "regions_json: regions[0].failover: required (may be empty)",
      "regions_json: regions[0].relays: at least one relay is required",
      "regions_json: regions[0].nats.servers: at least one NATS server is required",
    ] : contains(output.problems, p)])
    error_message = "got: ${join("; ", output.problems)}"
  }
}

run "invalid_file_fails_the_plan" {
  command = plan
  variables {
    regions_json = replace(file("tests/fixtures/two-regions.json"), "\"failover\": [\"us\"]", "\"failover\": [\"usa\"]")
  }
  expect_failures = [output.regions]
}

run "missing_file" {
  command = plan
  variables {
    regions_file = "tests/fixtures/no-such-file.json"
  }
  expect_failures = [var.regions_file]
}

run "not_json" {
  command = plan
  variables {
    regions_json = "{\"version\": 1,"
  }
  expect_failures = [var.regions_json]
}

run "both_sources" {
  command = plan
  variables {
    regions_file = "tests/fixtures/two-regions.json"
    regions_json = "{}"
  }
  expect_failures = [var.regions_file]
}
