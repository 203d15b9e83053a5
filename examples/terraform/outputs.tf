output "teal_toml" {
  description = "teal.toml for this service: terraform output -raw teal_toml > teal.toml"
  value       = <<-TOML
    [service]
    name = "${var.name}"

    [fleet]
    kind = "ecs"
    cluster = "${var.cluster_arn}"
    service = "${var.name}"
    container = "app"
    container_port = ${var.container_port}
    slots = "existing"

    [router]
    kind = "alb"
    listener_arn = "${aws_lb_listener.http.arn}"
    target_groups = ["${aws_lb_target_group.slot["a"].arn}", "${aws_lb_target_group.slot["b"].arn}"]

    [gates]
    alarms = ["${aws_cloudwatch_metric_alarm.errors_5xx.alarm_name}", "${aws_cloudwatch_metric_alarm.latency_p99.alarm_name}"]

    [strategy]
    name = "canary-10-5m"
    keep_alive = "15m"
  TOML
}

output "pipeline_role_arn" {
  value = aws_iam_role.teal.arn
}
