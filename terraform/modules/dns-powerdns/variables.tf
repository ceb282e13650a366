variable "topology" {
  description = "The topology module's outputs (pass `module.topology`)."
  type        = any
}

variable "create_zone" {
  description = "Create the zone (kind Native, NS records from the regions file's dns.nameservers); false when it already exists."
  type        = bool
  default     = true
}

variable "zone_kind" {
  description = "PowerDNS zone kind when create_zone is true: Native (replication by the database backend), Master or Slave."
  type        = string
  default     = "Native"

  validation {
    condition     = contains(["Native", "Master", "Slave"], var.zone_kind)
    error_message = "zone_kind must be Native, Master or Slave."
  }
}
