# One ECS service deployed blue/green by teal, with both slots declared here
# (teal.toml: [fleet] slots = "existing"). teal changes a few attributes of
# what this module creates; every one of them is in an ignore_changes below,
# so `terraform apply` and teal never undo each other:
#
#   listener            default_action (the forward's weights)
#   ECS services a, b   task_definition, desired_count
#   scalable targets    min_capacity, max_capacity (a parked slot has 0/0)
#   tags "teal:*"       provider ignore_tags (which revision a slot runs)
#
# tests/iac_examples.rs parses these files (python-hcl2) and fails if any of
# them is not ignored; CI runs `terraform fmt -check` here. `terraform
# validate` needs the AWS provider, which the CI machine cannot download.
#
#   terraform apply -var name=checkout -var vpc_id=vpc-... -var 'subnets=["subnet-a","subnet-b"]' ...
#   terraform output -raw teal_toml > teal.toml
#   teal deploy --image registry.example/checkout:2

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  # teal tags the slot it deploys with teal:revision; those tags are teal's.
  ignore_tags {
    key_prefixes = ["teal:"]
  }
}
