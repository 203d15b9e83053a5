//! Tier 3: `teal deploy` of an Auto Scaling group behind weighted Route 53
//! records, against moto in server mode, with the real SDK.

#[path = "support/aws.rs"]
mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_deploy_moves_the_records_and_deletes_blue() {
    let Some(m) = moto() else { return };
    let f = asg_fixture(&m).await;
    let strategy = r#"linear = { step = 50, interval = "2s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;
    let (_dir, cfg) = asg_config(&f, strategy);
    let (stdout, _) = run_teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--ami",
            AMI_GREEN,
        ],
        0,
    )
    .await;

    assert!(
        stdout.contains("weights now blue 50% / green 50% (read back)"),
        "{stdout}"
    );
    assert_eq!(record_weights(&m, &f).await, (0, 255));

    let sdk = sdk(&m).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&f.name)
        .auto_scaling_group_names(format!("{}-b", f.name))
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = groups
        .auto_scaling_groups()
        .iter()
        .filter_map(|g| g.auto_scaling_group_name())
        .collect();
    assert_eq!(
        names,
        vec![format!("{}-b", f.name)],
        "blue deleted, green in slot b"
    );
    let green = &groups.auto_scaling_groups()[0];
    assert_eq!(
        green.desired_capacity(),
        Some(2),
        "green starts at blue's desired capacity"
    );
    assert_eq!(green.target_group_arns(), std::slice::from_ref(&f.tg_b));
    // Green runs a new version of blue's launch template, with the new AMI.
    let version = green
        .launch_template()
        .unwrap()
        .version()
        .unwrap()
        .to_string();
    let c = clients(&m).await;
    let v = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&f.template_id)
        .versions(&version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        v.launch_template_versions()[0]
            .launch_template_data()
            .unwrap()
            .image_id(),
        Some(AMI_GREEN)
    );
    // Blue's scaling policy came along.
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name(format!("{}-b", f.name))
        .send()
        .await
        .unwrap();
    assert_eq!(
        policies
            .scaling_policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .collect::<Vec<_>>(),
        vec!["cpu50"]
    );
    assert!(stdout.contains("ChangeResourceRecordSets="), "{stdout}");
    // Bakes of 2s against a 30s TTL: said, not refused.
    assert!(
        stdout.contains("warning: a bake of 2s is shorter than the TTL"),
        "{stdout}"
    );
}
