variable "topology" {
  description = "The topology module's outputs (pass `module.topology`)."
  type        = any
}

variable "zone_id" {
  description = "Route 53 hosted zone of the regions file's dns.zone; null: look it up by name."
  type        = string
  default     = null
}

variable "health_checks" {
  description = "Create Route 53 health checks (one per relay endpoint, one calculated per region) and attach them to the geolocation records: a second line of failover while no health agent writes DNS."
  type        = bool
  default     = true
}

variable "health_check_interval" {
  description = "Route 53 health check request interval, 10 or 30 seconds."
  type        = number
  default     = 10

  validation {
    condition     = contains([10, 30], var.health_check_interval)
    error_message = "health_check_interval must be 10 or 30."
  }
}

variable "health_check_failure_threshold" {
  description = "Consecutive failures before Route 53 marks a relay endpoint unhealthy (1..10)."
  type        = number
  default     = 3

  validation {
    condition     = var.health_check_failure_threshold >= 1 && var.health_check_failure_threshold <= 10
    error_message = "health_check_failure_threshold must be 1..10."
  }
}

variable "tags" {
  description = "Tags of the hosted zone and health checks this module creates."
  type        = map(string)
  default     = {}
}
