terraform {
  required_version = ">= 1.9.0, < 2.0.0"
  required_providers {
    powerdns = {
      source  = "pan-net/powerdns"
      version = ">= 1.5, < 2.0"
    }
  }
}
