# The daemon configs derived for the hosts: the relays' admin key (a
# placeholder filled in on the host) on both sides of the drain API, TLS
# for an https:// control API, the same stream replicas for relay and
# control, and no key sent in clear text to a public address.

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

run "keys_tls_and_replicas" {
  command = plan
  variables {
    regions_file = "tests/fixtures/two-regions.json"
  }
  assert {
    condition     = alltrue([for r, c in output.relay_config : c.admin_api_key_file == "/etc/meridian/relay_admin.key"])
    error_message = "every relay config reads the admin key from its file"
  }
  assert {
    condition     = output.healthcheck_config["eu"].drain.relay_api_key == "__RELAY_ADMIN_KEY__"
    error_message = "the health agent calls the relays' drain API with the same key"
  }
  assert {
    condition     = output.control_config["eu"].tls.cert == "/etc/meridian/tls/control.crt" && output.control_config["eu"].tls.key == "/etc/meridian/tls/control.key"
    error_message = "an https:// control API gets TLS in control's config"
  }
  # eu has two NATS servers, us one: the streams' replicas differ, so control
  # checks none (one value would refuse one of the streams).
  assert {
    condition     = output.relay_config["eu"].stream.replicas == 2 && output.relay_config["us"].stream.replicas == 1 && !contains(keys(output.control_config["eu"]), "stream")
    error_message = "relay replicas per region; control checks replicas only when they agree"
  }
  assert {
    condition     = output.regions["eu"].healthcheck.key_safe
    error_message = "a private agent address may carry the drain API key"
  }
}

run "same_replicas_for_relay_and_control" {
  command = plan
  variables {
    regions_file = "../../../regions/local.json"
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
  assert {
    condition     = alltrue([for r, c in output.control_config : c.stream.replicas == output.relay_config[r].stream.replicas])
    error_message = "control expects the replicas the relays create the stream with"
  }
  assert {
    condition     = alltrue([for r, c in output.control_config : !contains(keys(c), "tls")])
    error_message = "an http:// control API on loopback gets no TLS"
  }
}

run "relay_admin_key_in_clear_text_refused" {
  command = plan
  variables {
    regions_json = replace(file("tests/fixtures/two-regions.json"), "https://198.51.100.1:9443", "http://198.51.100.1:9443")
  }
  expect_failures = [output.healthcheck_config]
}

run "control_api_keys_in_clear_text_refused" {
  command = plan
  variables {
    regions_json = replace(file("tests/fixtures/two-regions.json"), "https://198.51.100.20/", "http://198.51.100.20/")
  }
  expect_failures = [output.control_config]
}
