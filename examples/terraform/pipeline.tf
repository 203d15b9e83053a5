# The role the pipeline's teal stage (CodeBuild) runs as: what teal calls
# for this service with existing slots, and nothing more. (With slots it
# creates, teal also needs ecs:CreateService, ecs:DeleteService and
# application-autoscaling:DeregisterScalableTarget: see
# examples/codepipeline/iam-ecs-alb.json.)
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [var.pipeline_principal]
    }
  }
}

data "aws_iam_policy_document" "teal" {
  statement {
    sid = "ReadEverythingTealWatches"
    actions = [
      "cloudwatch:DescribeAlarms",
      "cloudwatch:GetMetricData",
      "ecs:DescribeClusters",
      "ecs:DescribeServices",
      "ecs:DescribeTaskDefinition",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "application-autoscaling:DescribeScalableTargets",
      "application-autoscaling:DescribeScalingPolicies",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ShiftTraffic"
    actions   = ["elasticloadbalancing:ModifyListener"]
    resources = [aws_lb_listener.http.arn]
  }

  statement {
    sid       = "TheDeploymentRecordAndItsLock"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = ["arn:aws:dynamodb:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:table/teal-ledger"]
  }

  statement {
    sid     = "UpdateAndScaleTheSlots"
    actions = ["ecs:UpdateService", "ecs:TagResource"]
    resources = [
      for s in aws_ecs_service.slot : s.id
    ]
  }

  statement {
    sid       = "RegisterGreensTaskDefinition"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "GreenScalesLikeBlueAndParkedSlotsNotAtAll"
    actions   = ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy"]
    resources = ["*"]
  }

  statement {
    sid       = "PassTheTaskRolesGreenCopiesFromBlue"
    actions   = ["iam:PassRole"]
    resources = [var.task_role_arn, var.execution_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "teal" {
  name               = "${var.name}-teal"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "teal" {
  name   = "teal"
  role   = aws_iam_role.teal.id
  policy = data.aws_iam_policy_document.teal.json
}
