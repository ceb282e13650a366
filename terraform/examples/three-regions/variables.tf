variable "regions_file" {
  description = "The regions file (single source of truth); every region in it must have a module block in main.tf."
  type        = string
  default     = "regions.json"
}

variable "aws_regions" {
  description = "AWS region of each Meridian region."
  type        = map(string)
  default = {
    "eu-west"  = "eu-west-1"
    "us-east"  = "us-east-1"
    "ap-south" = "ap-south-1"
  }
}

variable "networks" {
  description = "Per Meridian region: the VPC and subnets (see modules/region-aws). The VPCs must route to each other's NATS subnets (peering or Transit Gateway)."
  type = map(object({
    vpc_id            = string
    public_subnet_ids = list(string)
    relay_subnet_ids  = list(string)
    nats_subnet_ids   = map(string)
    service_subnet_id = optional(string)
  }))
}

variable "tls_mode" {
  description = "Where client TLS ends: \"balancer\" or \"relay\" (see modules/region-aws)."
  type        = string
  default     = "balancer"
}

variable "certificate_arns" {
  description = "Per Meridian region: ACM certificate (in that AWS region) for ws.ZONE and *.ws.ZONE, when tls_mode is \"balancer\"."
  type        = map(string)
  default     = {}
}

variable "tls_ssm_parameters" {
  description = "SSM parameters of the relays' certificate and key, when tls_mode is \"relay\" (same names in every AWS region)."
  type        = object({ cert = string, key = string })
  default     = null
}

variable "package_source" {
  description = "Where instances get the Meridian packages: {apt_line, apt_key} or {deb_urls}."
  type = object({
    apt_line = optional(string)
    apt_key  = optional(string)
    deb_urls = optional(list(string), [])
  })
}

variable "meridian_version" {
  description = "Package version to install; changing it rolls the relays one at a time."
  type        = string
  default     = null
}

variable "relay_admin_key_parameter" {
  description = "SSM SecureString with the relays' admin API key (drain/undrain; the health agents send it, over TLS: the relays' admin_url is https://), same name and value in every AWS region."
  type        = string
  default     = "/meridian/relay-admin-key"
}

variable "token_secret_parameter" {
  description = "SSM SecureString with the client token secret (same name and value in every AWS region)."
  type        = string
  default     = "/meridian/token-secret"
}

variable "api_keys_parameter" {
  description = "SSM SecureString with the control plane API keys."
  type        = string
  default     = "/meridian/api-keys"
}

variable "control_tls_parameters" {
  description = "Per region: SSM SecureString parameter names of the control plane's PEM certificate chain and key ({cert, key}); required for every region whose control.api_url is https:// (all of them in regions.json)."
  type        = map(object({ cert = string, key = string }))
  default     = {}
}

variable "service_rollouts" {
  description = "Per region: change the value to replace that region's control plane and health agent instances with the current AMI and config (modules/region-aws, service_rollout). Nothing else replaces them."
  type        = map(string)
  default     = {}
}

variable "postgres_parameter" {
  description = "SSM SecureString with the control plane's libpq connection string."
  type        = string
  default     = "/meridian/postgres"
}

variable "admin_cidrs" {
  description = "Networks allowed to the admin ports: the health agents' addresses of every region and your monitoring."
  type        = list(string)
}

variable "control_api_cidrs" {
  description = "Networks allowed to the control plane API (your application servers)."
  type        = list(string)
  default     = []
}

variable "relay_count" {
  description = "Relay instances per region."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 2, max = 6 }
}

variable "dns_provider" {
  description = "\"route53\" or \"powerdns\"."
  type        = string
  default     = "route53"

  validation {
    condition     = contains(["route53", "powerdns"], var.dns_provider)
    error_message = "dns_provider must be \"route53\" or \"powerdns\"."
  }
}

variable "route53_zone_id" {
  description = "Hosted zone of the regions file's zone; null: looked up by name."
  type        = string
  default     = null
}

variable "powerdns_api_url" {
  description = "PowerDNS HTTP API (dns_provider = \"powerdns\")."
  type        = string
  default     = null
}

variable "powerdns_api_key" {
  description = "PowerDNS API key (dns_provider = \"powerdns\"); prefer TF_VAR_powerdns_api_key over a file."
  type        = string
  default     = null
  sensitive   = true
}

variable "healthcheck_dns" {
  description = "The health agents' dns provider object (see docs/operations.md); dry-run until set."
  type        = any
  default     = { type = "dry-run" }
}

variable "tags" {
  description = "Tags of every resource (the aws providers' default_tags)."
  type        = map(string)
  default     = {}
}

variable "nats_nkeys" {
  description = "Public NATS user nkey per ROLE-REGION (relay-eu-west, control-eu-west, healthcheck-eu-west, ...): the .pub files of `meridian-regions nkeys regions.json --dir DIR` (docs/operations.md, \"NATS credentials\")."
  type        = map(string)
}

variable "nats_ssm_prefix" {
  description = "SSM parameter path of the NATS TLS material and nkey seeds (see modules/region-aws, nats_ssm_prefix)."
  type        = string
}
