//! Fixtures for the AWS tests, one file per fixture, all reached as
//! `support::...`:
//!
//! - [`moto`]: moto's address, SDK clients pointed at it, the ledger table,
//!   alarms, the default network;
//! - [`ecs_fixture`]: a load balancer with three target groups and a rule,
//!   an ECS service as blue, and a stand-in for what ECS does that moto does
//!   not (registering a service's tasks as targets); its configs;
//! - [`asg_fixture`]: an Auto Scaling group as blue behind weighted Route 53
//!   records; its config;
//! - [`run`]: the `teal` process pointed at moto, and reading what it printed;
//! - [`refresh_stand_in`]: the instance-refresh API moto lacks;
//! - [`cloudfront_stand_in`]: CloudFront's staging distributions and
//!   continuous deployment policies, which moto lacks;
//! - [`throttle`]: a proxy in front of moto with AWS's API token buckets.

// Each test binary includes this module and uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod asg_fixture;
pub mod cloudfront_stand_in;
pub mod ecs_fixture;
pub mod moto;
pub mod refresh_stand_in;
pub mod run;
pub mod throttle;

pub use asg_fixture::*;
pub use ecs_fixture::*;
pub use moto::*;
pub use run::*;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerDefinition, LaunchType, LoadBalancer,
    NetworkConfiguration, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription, TargetGroupTuple,
    TargetTypeEnum,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
