# Three Meridian regions on AWS plus geo-DNS, from one regions file.
#
# Terraform providers are static, so each region is one module block with its
# own aws provider alias. To add a region: add it to regions.json, then a
# provider alias, a module block and an entry in local.deployed below (the
# output "regions" refuses a plan where the file and the blocks disagree).

module "topology" {
  source       = "../../modules/topology"
  regions_file = var.regions_file
  nats_nkeys   = var.nats_nkeys
}

locals {
  regions_file_content = file(var.regions_file)

  # Region name => module, for every region module block below.
  deployed = {
    "eu-west"  = module.region_eu_west
    "us-east"  = module.region_us_east
    "ap-south" = module.region_ap_south
  }
}

provider "aws" {
  alias  = "eu_west"
  region = var.aws_regions["eu-west"]
  default_tags {
    tags = var.tags
  }
}

provider "aws" {
  alias  = "us_east"
  region = var.aws_regions["us-east"]
  default_tags {
    tags = var.tags
  }
}

provider "aws" {
  alias  = "ap_south"
  region = var.aws_regions["ap-south"]
  default_tags {
    tags = var.tags
  }
}

# Route 53 is global; its API is reached through any region.
provider "aws" {
  alias  = "dns"
  region = "us-east-1"
}

provider "powerdns" {
  server_url = var.powerdns_api_url
  api_key    = var.powerdns_api_key
}

module "region_eu_west" {
  source    = "../../modules/region-aws"
  providers = { aws = aws.eu_west }

  region                    = "eu-west"
  topology                  = module.topology
  regions_file_content      = local.regions_file_content
  vpc_id                    = var.networks["eu-west"].vpc_id
  public_subnet_ids         = var.networks["eu-west"].public_subnet_ids
  relay_subnet_ids          = var.networks["eu-west"].relay_subnet_ids
  nats_subnet_ids           = var.networks["eu-west"].nats_subnet_ids
  service_subnet_id         = var.networks["eu-west"].service_subnet_id
  relay_count               = var.relay_count
  tls_mode                  = var.tls_mode
  certificate_arn           = lookup(var.certificate_arns, "eu-west", null)
  tls_ssm_parameters        = var.tls_ssm_parameters
  package_source            = var.package_source
  meridian_version          = var.meridian_version
  token_secret_parameter    = var.token_secret_parameter
  nats_ssm_prefix           = var.nats_ssm_prefix
  api_keys_parameter        = var.api_keys_parameter
  postgres_parameter        = var.postgres_parameter
  relay_admin_key_parameter = var.relay_admin_key_parameter
  control_tls_parameters    = lookup(var.control_tls_parameters, "eu-west", null)
  service_rollout           = lookup(var.service_rollouts, "eu-west", "1")
  admin_cidrs               = var.admin_cidrs
  control_api_cidrs         = var.control_api_cidrs
  healthcheck_dns           = var.healthcheck_dns
  tags                      = var.tags
}

module "region_us_east" {
  source    = "../../modules/region-aws"
  providers = { aws = aws.us_east }

  region                    = "us-east"
  topology                  = module.topology
  regions_file_content      = local.regions_file_content
  vpc_id                    = var.networks["us-east"].vpc_id
  public_subnet_ids         = var.networks["us-east"].public_subnet_ids
  relay_subnet_ids          = var.networks["us-east"].relay_subnet_ids
  nats_subnet_ids           = var.networks["us-east"].nats_subnet_ids
  service_subnet_id         = var.networks["us-east"].service_subnet_id
  relay_count               = var.relay_count
  tls_mode                  = var.tls_mode
  certificate_arn           = lookup(var.certificate_arns, "us-east", null)
  tls_ssm_parameters        = var.tls_ssm_parameters
  package_source            = var.package_source
  meridian_version          = var.meridian_version
  token_secret_parameter    = var.token_secret_parameter
  nats_ssm_prefix           = var.nats_ssm_prefix
  api_keys_parameter        = var.api_keys_parameter
  postgres_parameter        = var.postgres_parameter
  relay_admin_key_parameter = var.relay_admin_key_parameter
  control_tls_parameters    = lookup(var.control_tls_parameters, "us-east", null)
  service_rollout           = lookup(var.service_rollouts, "us-east", "1")
  admin_cidrs               = var.admin_cidrs
  control_api_cidrs         = var.control_api_cidrs
  healthcheck_dns           = var.healthcheck_dns
  tags                      = var.tags
}

module "region_ap_south" {
  source    = "../../modules/region-aws"
  providers = { aws = aws.ap_south }

  region                    = "ap-south"
  topology                  = module.topology
  regions_file_content      = local.regions_file_content
  vpc_id                    = var.networks["ap-south"].vpc_id
  public_subnet_ids         = var.networks["ap-south"].public_subnet_ids
  relay_subnet_ids          = var.networks["ap-south"].relay_subnet_ids
  nats_subnet_ids           = var.networks["ap-south"].nats_subnet_ids
  service_subnet_id         = var.networks["ap-south"].service_subnet_id
  relay_count               = var.relay_count
  tls_mode                  = var.tls_mode
  certificate_arn           = lookup(var.certificate_arns, "ap-south", null)
  tls_ssm_parameters        = var.tls_ssm_parameters
  package_source            = var.package_source
  meridian_version          = var.meridian_version
  token_secret_parameter    = var.token_secret_parameter
  nats_ssm_prefix           = var.nats_ssm_prefix
  api_keys_parameter        = var.api_keys_parameter
  postgres_parameter        = var.postgres_parameter
  relay_admin_key_parameter = var.relay_admin_key_parameter
  control_tls_parameters    = lookup(var.control_tls_parameters, "ap-south", null)
  service_rollout           = lookup(var.service_rollouts, "ap-south", "1")
  admin_cidrs               = var.admin_cidrs
  control_api_cidrs         = var.control_api_cidrs
  healthcheck_dns           = var.healthcheck_dns
  tags                      = var.tags
}

module "dns_route53" {
  count     = var.dns_provider == "route53" ? 1 : 0
  source    = "../../modules/dns-route53"
  providers = { aws = aws.dns }

  topology = module.topology
  zone_id  = var.route53_zone_id
  tags     = var.tags

  # Records point at the balancers' Elastic IPs: create them after the balancers.
  depends_on = [module.region_eu_west, module.region_us_east, module.region_ap_south]
}

module "dns_powerdns" {
  count     = var.dns_provider == "powerdns" ? 1 : 0
  source    = "../../modules/dns-powerdns"
  providers = { powerdns = powerdns }

  topology = module.topology

  depends_on = [module.region_eu_west, module.region_us_east, module.region_ap_south]
}
