//! The tags teal writes on AWS resources, in one place: their names are part
//! of the contract with anything that reads them (IAM conditions, people,
//! another teal process).

/// What revision an ECS service or an Auto Scaling group runs (teal's own
/// label; without it the revision is unknown, never guessed).
pub const REVISION: &str = "teal:revision";
/// Which slot a group is, kept once it is detached from its target group for removal.
pub const SLOT: &str = "teal:slot";
/// On an ECS service updated in place: the task definition to go back to.
pub const PREVIOUS_TASK_DEFINITION: &str = "teal:previous-task-definition";
/// On a group refreshed in place: the revision being rolled out.
pub const ROLLOUT_REVISION: &str = "teal:rollout-revision";
/// On a group refreshed in place: when the deployment that rolls it out began.
pub const ROLLOUT_STARTED: &str = "teal:rollout-started";
/// On a group refreshed in place: the launch template version it came from.
pub const ROLLOUT_FROM: &str = "teal:rollout-from";
/// On a group refreshed in place: the launch template version it goes to.
pub const ROLLOUT_TO: &str = "teal:rollout-to";
