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
