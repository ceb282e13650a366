variable "regions_file" {
  description = "Path of the regions file (regions/*.json, format in regions/README.md). Set this or regions_json."
  type        = string
  default     = null

  validation {
    condition     = var.regions_file == null ? true : fileexists(var.regions_file)
    error_message = "regions_file: the file does not exist (give a path relative to the root module, e.g. \"$${path.root}/../../regions/prod.json\")."
  }
  validation {
    condition     = var.regions_file == null ? true : can(jsondecode(file(var.regions_file)))
    error_message = "regions_file: the file is not valid JSON."
  }
  validation {
    condition     = (var.regions_file == null) != (var.regions_json == null)
    error_message = "Set exactly one of regions_file and regions_json."
  }
}

variable "regions_json" {
  description = "The regions file's contents as a JSON string, instead of regions_file."
  type        = string
  default     = null

  validation {
    condition     = var.regions_json == null ? true : can(jsondecode(var.regions_json))
    error_message = "regions_json: not valid JSON."
  }
}

variable "enforce" {
  description = "Fail the plan when the regions file has problems (the default). When false the problems are only reported in output.problems (for tests and `terraform console`)."
  type        = bool
  default     = true
}

variable "config_dir" {
  description = "Directory the daemons' config files and secrets live in on the hosts."
  type        = string
  default     = "/etc/meridian"
}

variable "relay_listen_port" {
  description = "Port meridian-relay listens on for WebSockets on its host (the balancer forwards the regions file's relay port to it). null: the regions file's relay port."
  type        = number
  default     = null

  validation {
    condition     = var.relay_listen_port == null ? true : (var.relay_listen_port >= 1 && var.relay_listen_port <= 65535 && floor(var.relay_listen_port) == var.relay_listen_port)
    error_message = "relay_listen_port must be an integer port, 1..65535."
  }
}

variable "nats_store_dir" {
  description = "JetStream store_dir in the rendered nats-server configs."
  type        = string
  default     = "/var/lib/nats/jetstream"
}

variable "nats_include" {
  description = "Optional file the rendered nats-server configs include at the end (authorization, TLS for clients, routes and gateways); null: none."
  type        = string
  default     = null
}

# NATS is locked (docs/architecture.md, "NATS permissions"): clients are the
# per-role nkey users below, with mutual TLS; routes and gateways use mutual
# TLS against the servers' CA, plus the cluster password when one is given.

variable "nats_nkeys" {
  description = "Public NATS user nkey of every role in every region, keyed \"ROLE-REGION\" (relay-eu-west, control-eu-west, healthcheck-eu-west, ...): the .pub files `meridian-regions nkeys REGIONS_FILE --dir DIR` writes (the seeds stay with the daemons). The rendered nats-server configs hold these public keys only."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.nats_nkeys : can(regex("^U[A-Z2-7]{55}$", v))])
    error_message = "nats_nkeys: every value must be a NATS user public key (\"U\" and 55 base32 characters), as in the .pub files of meridian-regions nkeys."
  }
  validation {
    condition     = alltrue([for k, v in var.nats_nkeys : can(regex("^(relay|control|healthcheck)-[a-z0-9-]+$", k))])
    error_message = "nats_nkeys: keys are ROLE-REGION with ROLE relay, control or healthcheck."
  }
}

variable "nats_tls" {
  description = "Files on the NATS hosts: ca_file (the CA of the servers' certificates; routes, gateways and every client verify servers with it), cert_file/key_file (the server's certificate, serverAuth and clientAuth, the host address as an IP SAN), client_ca_file (the CA of the daemons' client certificates). With no cluster password the two CAs must differ, so that a daemon's certificate cannot open a route or a gateway."
  type = object({
    ca_file        = optional(string, "/etc/nats/tls/ca.pem")
    cert_file      = optional(string, "/etc/nats/tls/server.pem")
    key_file       = optional(string, "/etc/nats/tls/server.key")
    client_ca_file = optional(string, "/etc/nats/tls/client-ca.pem")
  })
  default = {}

  validation {
    condition     = var.nats_cluster_password != null || var.nats_tls.client_ca_file != var.nats_tls.ca_file
    error_message = "nats_tls: client_ca_file must differ from ca_file unless nats_cluster_password is set (a client certificate must not authenticate a route or a gateway)."
  }
}

variable "nats_cluster_password" {
  description = "Optional password routes and gateways must present as user meridian-cluster, on top of mutual TLS. It is written into the rendered configs (route and gateway URLs), so it is in the state and the NATS hosts' user data: null (the default) relies on mutual TLS with separate server and client CAs instead."
  type        = string
  default     = null
  sensitive   = true
}
