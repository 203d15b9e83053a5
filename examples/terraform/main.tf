data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

resource "aws_security_group" "lb" {
  name   = "${var.name}-lb"
  vpc_id = var.vpc_id

  ingress {
    protocol    = "tcp"
    from_port   = 80
    to_port     = 80
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "this" {
  name               = var.name
  load_balancer_type = "application"
  subnets            = var.subnets
  security_groups    = [aws_security_group.lb.id]
}

# The two slots, alike: either may hold blue.
resource "aws_lb_target_group" "slot" {
  for_each    = toset(["a", "b"])
  name        = "${var.name}-${each.key}"
  vpc_id      = var.vpc_id
  protocol    = "HTTP"
  port        = var.container_port
  target_type = "ip"

  # A short drain: teal bakes on the weights, not on the deregistration.
  deregistration_delay = 30

  health_check {
    path                = "/health"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

# The weighted forward teal shifts. Created at 100/0; after that the weights
# are teal's, so Terraform must not put them back.
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  protocol          = "HTTP"
  port              = 80

  default_action {
    type = "forward"
    forward {
      target_group {
        arn    = aws_lb_target_group.slot["a"].arn
        weight = 100
      }
      target_group {
        arn    = aws_lb_target_group.slot["b"].arn
        weight = 0
      }
    }
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}

# Where teal keeps each listener's deployment record; its conditional writes
# are the lock that keeps two deployments of one listener apart.
resource "aws_dynamodb_table" "ledger" {
  count        = var.create_ledger_table ? 1 : 0
  name         = "teal-ledger"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }
}
