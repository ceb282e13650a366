variable "region" {
  description = "Name of the Meridian region (regions[].name in the regions file) this module creates."
  type        = string
}

variable "topology" {
  description = "The topology module's outputs (pass `module.topology`)."
  type        = any
}

variable "regions_file_content" {
  description = "The regions file's contents, written to /etc/meridian/regions.json on every host."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every AWS resource name."
  type        = string
  default     = "meridian"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# Network: the VPC is the operator's. Regions reach each other's NATS
# gateways over private addresses, so the VPCs must be connected (peering or
# Transit Gateway) with routes between the NATS subnets.
variable "vpc_id" {
  description = "VPC of the region."
  type        = string
}

variable "public_subnet_ids" {
  description = "One public subnet per relay endpoint, in the order of the region's relays[] in the regions file: the balancer gets relays[i].address (an Elastic IP) in public_subnet_ids[i]."
  type        = list(string)
}

variable "relay_subnet_ids" {
  description = "Private subnets of the relay auto scaling group (with a route to the internet through NAT for packages and SSM)."
  type        = list(string)
}

variable "nats_subnet_ids" {
  description = "Per NATS server name of this region: the subnet whose CIDR contains its host address."
  type        = map(string)
}

variable "service_subnet_id" {
  description = "Subnet of the control plane and health agent instances (when the regions file gives the region a control or healthcheck section); it must contain their addresses."
  type        = string
  default     = null
}

variable "ami_id" {
  description = "Debian 12 AMI for every instance; null: the newest official Debian 12 amd64 image."
  type        = string
  default     = null
}

variable "relay_instance_type" {
  description = "EC2 instance type of the relays (CPU bound: TLS off-loaded to the balancer by default)."
  type        = string
  default     = "c6i.large"
}

variable "relay_count" {
  description = "Relay instances: min, desired and max of the auto scaling group."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 2, max = 6 }

  validation {
    condition     = var.relay_count.min >= 1 && var.relay_count.min <= var.relay_count.desired && var.relay_count.desired <= var.relay_count.max
    error_message = "relay_count must satisfy 1 <= min <= desired <= max."
  }
}

variable "relay_listen_port" {
  description = "Port meridian-relay listens on, on the instances; the balancer forwards the regions file's relay port to it."
  type        = number
  default     = 8080
}

variable "nats_instance_type" {
  description = "EC2 instance type of the NATS servers (JetStream: memory and disk I/O)."
  type        = string
  default     = "m6i.large"
}

variable "nats_volume_gb" {
  description = "Size of each NATS server's root volume (JetStream store)."
  type        = number
  default     = 100
}

variable "service_instance_type" {
  description = "Instance type of the control plane and health agent."
  type        = string
  default     = "t3.medium"
}

# TLS: "balancer" terminates TLS on the network load balancer with an ACM
# certificate and forwards plain WebSocket traffic to the relays; "relay"
# passes TCP through and the relays terminate TLS with a certificate fetched
# from SSM at boot (end-to-end encryption, relays see client TLS directly).
variable "tls_mode" {
  description = "Where client TLS ends: \"balancer\" (ACM certificate on the NLB) or \"relay\" (TCP pass-through; relays hold the certificate)."
  type        = string
  default     = "balancer"

  validation {
    condition     = contains(["balancer", "relay"], var.tls_mode)
    error_message = "tls_mode must be \"balancer\" or \"relay\"."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the balancer's TLS listener (tls_mode = \"balancer\"); it must cover the ws name and the region's name."
  type        = string
  default     = null

  validation {
    condition     = var.tls_mode != "balancer" || var.certificate_arn != null
    error_message = "certificate_arn is required when tls_mode is \"balancer\"."
  }
}

variable "tls_ssm_parameters" {
  description = "SSM SecureString parameter names of the relays' PEM certificate chain and key (tls_mode = \"relay\")."
  type        = object({ cert = string, key = string })
  default     = null

  validation {
    condition     = var.tls_mode != "relay" || var.tls_ssm_parameters != null
    error_message = "tls_ssm_parameters is required when tls_mode is \"relay\"."
  }
}

variable "nats_ssm_prefix" {
  description = "SSM parameter path (e.g. \"/meridian/prod/nats\") of the locked NATS material (docs/operations.md, \"NATS credentials\"): ca.pem (the servers' CA) and client-ca.pem; servers/<NATS server name>.pem and .key; <region>/<role>.nk (the nkey seed), <region>/<role>.pem and .key (the client certificate) for relay, control and healthcheck."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$", var.nats_ssm_prefix))
    error_message = "nats_ssm_prefix must be an SSM parameter path starting with / and not ending with /."
  }
}

variable "token_secret_parameter" {
  description = "SSM SecureString parameter holding the client token (JWT) secret shared by every relay of every region."
  type        = string
}

variable "relay_admin_key_parameter" {
  description = "SSM SecureString parameter holding the relays' admin API key (at least 16 characters): drain and undrain on their admin port, which the health agents call. Relays refuse every drain without it."
  type        = string
  nullable    = false
}

variable "control_tls_parameters" {
  description = "SSM SecureString parameter names of the control plane's PEM certificate chain and key, for a control.api_url that is https:// (control terminates TLS; the certificate must cover the api_url host). Required then."
  type        = object({ cert = string, key = string })
  default     = null
}

variable "admin_certificate_arn" {
  description = "ACM certificate of the balancer's TLS listener on the relays' admin port, used when the relays' admin_url is https:// (it must cover the admin_url hosts); null: certificate_arn."
  type        = string
  default     = null
}

variable "service_rollout" {
  description = "Any string; changing it replaces the control plane and health agent instances (with the current AMI and user data). A new AMI or config alone never replaces them (lifecycle ignore_changes): roll them deliberately, one region at a time (docs/operations.md)."
  type        = string
  default     = "1"
}

variable "api_keys_parameter" {
  description = "SSM SecureString parameter holding the control plane API keys (one per line)."
  type        = string
  default     = null
}

variable "postgres_parameter" {
  description = "SSM SecureString parameter holding the control plane's libpq connection string (with its password)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the SSM parameters (the role gets kms:Decrypt on it); null: the AWS managed key aws/ssm, which needs no grant."
  type        = string
  default     = null
}

variable "package_source" {
  description = "Where cloud-init gets the Meridian packages: an apt source line and its signing key (ASCII armour), or a list of .deb URLs (S3 pre-signed or HTTPS)."
  type = object({
    apt_line = optional(string)
    apt_key  = optional(string)
    deb_urls = optional(list(string), [])
  })

  validation {
    condition     = (var.package_source.apt_line != null) != (length(var.package_source.deb_urls) > 0)
    error_message = "package_source: set either apt_line (with apt_key) or deb_urls."
  }
}

variable "meridian_version" {
  description = "Version of the Meridian packages to install from the apt source (\"0.1.0-1\"); null: the newest. Changing it starts a rolling replacement of the relays."
  type        = string
  default     = null
}

variable "admin_cidrs" {
  description = "Networks allowed to reach the relays' admin port through the balancer (health agents of every region, monitoring). Keep it narrow: /metrics is not public."
  type        = list(string)
}

variable "nats_monitor_cidrs" {
  description = "Networks allowed to reach the NATS monitoring ports."
  type        = list(string)
  default     = []
}

variable "control_api_cidrs" {
  description = "Networks allowed to reach the control plane's HTTP API."
  type        = list(string)
  default     = []
}

variable "ssh_key_name" {
  description = "EC2 key pair for break-glass SSH; null: none (use SSM Session Manager)."
  type        = string
  default     = null
}

variable "drain_seconds" {
  description = "How long the balancer keeps a deregistered relay's connections while the relay moves its clients elsewhere (also the relay's drain grace)."
  type        = number
  default     = 60
}

variable "healthcheck_dns" {
  description = "The health agent's dns provider settings (its config's \"dns\" object): {type = \"route53\", hosted_zone_id = ...} or {type = \"powerdns\", api_url = ..., api_key_file = ...}; dry-run by default (it logs what it would write)."
  type        = any
  default     = { type = "dry-run" }
}

variable "allow_route53_health_checks" {
  description = "Open the relay admin port on the balancer to Route 53's health checkers (the AWS managed prefix list), for modules/dns-route53's second line."
  type        = bool
  default     = true
}

variable "service_egress_ports" {
  description = "Extra TCP ports the control plane and health agent may reach (e.g. the PowerDNS API port of the health agents' DNS provider)."
  type        = list(number)
  default     = []
}
