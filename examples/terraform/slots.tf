resource "aws_security_group" "tasks" {
  name   = "${var.name}-tasks"
  vpc_id = var.vpc_id

  ingress {
    protocol        = "tcp"
    from_port       = var.container_port
    to_port         = var.container_port
    security_groups = [aws_security_group.lb.id]
  }

  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# The first revision. teal registers every later one from the live slot's
# task definition with the new image, so this one is only ever a seed.
resource "aws_ecs_task_definition" "seed" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  task_role_arn            = var.task_role_arn
  execution_role_arn       = var.execution_role_arn
  container_definitions = jsonencode([{
    name         = "app"
    image        = var.image
    essential    = true
    portMappings = [{ containerPort = var.container_port }]
  }])
}

locals {
  # Slot a starts live, slot b parked (no tasks). teal swaps them on every
  # deployment; Terraform only creates them.
  slots = {
    a = { desired = var.desired_count, min = var.min_capacity, max = var.max_capacity }
    b = { desired = 0, min = 0, max = 0 }
  }
}

resource "aws_ecs_service" "slot" {
  for_each        = local.slots
  name            = "${var.name}-${each.key}"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.seed.arn
  desired_count   = each.value.desired
  launch_type     = "FARGATE"

  network_configuration {
    subnets         = var.subnets
    security_groups = [aws_security_group.tasks.id]
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.slot[each.key].arn
    container_name   = "app"
    container_port   = var.container_port
  }

  # teal sets both on every deployment: green's new task definition at
  # blue's count, and zero for the slot it retires.
  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.http]
}

resource "aws_appautoscaling_target" "slot" {
  for_each           = local.slots
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${element(split("/", var.cluster_arn), 1)}/${aws_ecs_service.slot[each.key].name}"
  min_capacity       = each.value.min
  max_capacity       = each.value.max

  # teal gives green blue's bounds and a parked slot 0/0, so that no policy
  # scales it back up.
  lifecycle {
    ignore_changes = [min_capacity, max_capacity]
  }
}

# The same policy on both slots: teal copies the live one's to green anyway.
resource "aws_appautoscaling_policy" "cpu" {
  for_each           = local.slots
  name               = "cpu60"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.slot[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.slot[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.slot[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
