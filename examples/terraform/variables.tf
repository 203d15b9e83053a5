variable "name" {
  description = "The service's name: its slots are NAME-a and NAME-b."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnets" {
  description = "Subnets for the load balancer and the tasks."
  type        = list(string)
}

variable "cluster_arn" {
  description = "The ECS cluster the two slot services run in."
  type        = string
}

variable "image" {
  description = "The image of the first revision; teal deploys every later one."
  type        = string
}

variable "container_port" {
  type    = number
  default = 8080
}

variable "desired_count" {
  description = "Tasks of the live slot when first created; teal keeps blue's count after that."
  type        = number
  default     = 2
}

variable "min_capacity" {
  type    = number
  default = 2
}

variable "max_capacity" {
  type    = number
  default = 10
}

variable "task_role_arn" {
  type = string
}

variable "execution_role_arn" {
  type = string
}

variable "create_ledger_table" {
  description = "Create the teal-ledger table (once per account and region)."
  type        = bool
  default     = true
}

variable "pipeline_principal" {
  description = "Who runs teal: the CodeBuild service role's trust, by default."
  type        = string
  default     = "codebuild.amazonaws.com"
}
