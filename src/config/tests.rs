use super::*;

const GOOD: &str = r#"
[service]
name = "web"

[fleet]
kind = "sim"
instances = 3

[router]
kind = "sim"

[gates]
alarms = ["web-5xx", "web-p99"]

[strategy]
steps = [
  { weight = 5, bake = "1m" },
  { weight = 50, bake = "90s" },
  { weight = 100 },
]
keep_alive = "1h30m"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        &SourceFile::new("teal.toml", text.to_string()),
        Path::new("teal.toml"),
        None,
    )
}

fn err(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn a_good_config_validates() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.service, "web");
    assert_eq!(c.gates.alarms, vec!["web-5xx", "web-p99"]);
    let steps = c.strategy.steps().unwrap();
    assert_eq!(
        steps.iter().map(|s| s.weight).collect::<Vec<_>>(),
        vec![5, 50, 100]
    );
    assert_eq!(steps[1].bake_ms, 90_000);
    assert_eq!(c.strategy.keep_alive_ms, 5_400_000);
    assert!(matches!(c.fleet, FleetConfig::Sim { instances: 3, .. }));
}

#[test]
fn unknown_top_level_key_is_refused_with_its_line() {
    let e = err(&format!("{GOOD}\n[extra]\nx = 1\n"));
    assert!(e.starts_with("teal.toml:23:2:"), "{e}");
    assert!(e.contains("unknown field `extra`"), "{e}");
}

#[test]
fn unknown_key_in_a_kinded_section_lists_that_kinds_keys() {
    let e = err(&GOOD.replace("instances = 3", "instances = 3\ngroup = \"x\""));
    assert!(e.starts_with("teal.toml:8:1:"), "{e}");
    assert!(
        e.contains("unknown field `group`") && e.contains("healthy_after"),
        "{e}"
    );
}

#[test]
fn weight_above_100_names_field_and_range() {
    let e = err(&GOOD.replace("weight = 50", "weight = 120"));
    assert_eq!(
        e,
        "teal.toml:18:14: strategy.steps[1].weight: weight must be 0..=100, got 120"
    );
}

#[test]
fn empty_step_list_is_refused() {
    let e = err(&GOOD.replace(
        "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
        "steps = []",
    ));
    assert!(
        e.starts_with("teal.toml:16:9: strategy.steps: steps must not be empty"),
        "{e}"
    );
}

#[test]
fn bad_duration_is_refused_with_an_example() {
    let e = err(&GOOD.replace("bake = \"90s\"", "bake = \"ninety\""));
    assert!(
        e.starts_with("teal.toml:18:25: strategy.steps[1].bake: bad duration \"ninety\""),
        "{e}"
    );
    assert!(e.contains("90s, 5m or 1h30m"), "{e}");
}

#[test]
fn weights_must_increase_and_end_at_100() {
    let e = err(&GOOD.replace("weight = 50", "weight = 5"));
    assert!(
        e.contains("weights must increase from step to step, but 5 follows 5"),
        "{e}"
    );
    let e = err(&GOOD.replace("{ weight = 100 }", "{ weight = 90 }"));
    assert!(
        e.contains("strategy.steps[2].weight: the last step must be weight = 100"),
        "{e}"
    );
}

#[test]
fn builtin_by_name_with_overrides_and_unknown_name() {
    let text = GOOD.replace(
        "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
        "name = \"linear-10-every-1m\"\npoll = \"2s\"",
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.strategy.name, "linear-10-every-1m");
    assert_eq!(c.strategy.poll_ms, 2_000);
    assert_eq!(c.strategy.keep_alive_ms, 5_400_000);
    let e = err(&text.replace("linear-10-every-1m", "linear-7"));
    assert!(
        e.contains("unknown built-in strategy \"linear-7\"") && e.contains("canary-10-5m"),
        "{e}"
    );
}

#[test]
fn strategy_override_wins_and_unknown_override_is_refused() {
    let f = SourceFile::new("teal.toml", GOOD.to_string());
    let c = Config::parse(&f, Path::new("teal.toml"), Some("all-at-once")).unwrap();
    assert_eq!(c.strategy.name, "all-at-once");
    let e = Config::parse(&f, Path::new("teal.toml"), Some("nope")).unwrap_err();
    assert!(matches!(e, ConfigError::UnknownStrategy { .. }));
}

#[test]
fn alb_router_checks_arns_and_slot_count() {
    let alb = GOOD.replace("kind = \"sim\"\ninstances = 3", "kind = \"asg\"\ngroup = \"web\"").replace(
        "[router]\nkind = \"sim\"",
        "[router]\nkind = \"alb\"\nlistener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123:listener/app/x/1/2\"\ntarget_groups = [\"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/a/1\", \"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/b/2\"]",
    );
    assert!(matches!(
        parse(&alb).unwrap().router,
        RouterConfig::Alb { .. }
    ));
    let e = err(&alb.replace("targetgroup/b/2", "loadbalancer/b/2"));
    assert!(
        e.contains("router.target_groups[1]: expected an ARN"),
        "{e}"
    );
    let one = alb.replace(
        ", \"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/b/2\"",
        "",
    );
    let e = err(&one);
    assert!(e.contains("only a rolling strategy is possible"), "{e}");
    let rolling = one.replace(
        "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
        "name = \"rolling\"",
    );
    assert!(parse(&rolling).is_ok());
}

#[test]
fn rolling_step_makes_checkpoints_and_is_a_percent() {
    let rolling = |step: &str| {
        GOOD.replace(
            "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
            &format!("rolling = {{ min_healthy_percent = 90, max_percent = 110, bake = \"1m\"{step} }}"),
        )
    };
    let checkpoints = |text: &str| match parse(text).unwrap().strategy.shape {
        crate::strategy::Shape::Rolling(r) => r.checkpoints(),
        other => panic!("{other:?}"),
    };
    assert_eq!(checkpoints(&rolling("")), Vec::<u8>::new());
    assert_eq!(checkpoints(&rolling(", step = 25")), vec![25, 50, 75, 100]);
    assert_eq!(checkpoints(&rolling(", step = 30")), vec![30, 60, 90, 100]);
    assert_eq!(checkpoints(&rolling(", step = 99")), vec![99, 100]);
    for bad in ["0", "100", "-5"] {
        let e = err(&rolling(&format!(", step = {bad}")));
        assert!(
            e.contains("strategy.rolling.step") && e.contains("step must be 1..=99"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn unknown_kind_and_bad_insufficient_data() {
    let e = err(&GOOD.replace("kind = \"sim\"\ninstances", "kind = \"lambda\"\ninstances"));
    assert!(e.contains("fleet.kind: unknown kind \"lambda\": expected one of \"sim\", \"ecs\", \"asg\", \"s3\", \"local\""), "{e}");
    let e = err(&GOOD.replace("alarms = [", "insufficient_data = \"maybe\"\nalarms = ["));
    assert!(
        e.contains("gates.insufficient_data: insufficient_data must be \"ok\" or \"alarm\""),
        "{e}"
    );
    let e = err(&GOOD.replace("\"web-p99\"", "\"web-5xx\""));
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn hooks_take_a_string_or_a_list_and_a_timeout() {
    let c = parse(&format!(
        "{GOOD}\n[hooks]\nbefore_traffic = \"./smoke.sh --fast\"\nbefore_retire = [\"./final.sh\", \"-v\"]\ntimeout = \"90s\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.hooks.commands.get(&HookPoint::BeforeTraffic),
        Some(&HookCommand::Shell("./smoke.sh --fast".into()))
    );
    assert_eq!(
        c.hooks.commands.get(&HookPoint::BeforeRetire),
        Some(&HookCommand::Argv(vec!["./final.sh".into(), "-v".into()]))
    );
    assert!(!c.hooks.commands.contains_key(&HookPoint::AfterStep));
    assert_eq!(c.hooks.timeout_ms, 90_000);
    assert_eq!(
        parse(GOOD).unwrap().hooks.timeout_ms,
        DEFAULT_HOOK_TIMEOUT_MS
    );
}

#[test]
fn bad_hooks_are_refused_with_their_field() {
    for (body, says) in [
        ("before_traffic = \"  \"", "hooks.before_traffic"),
        ("after_step = []", "hooks.after_step"),
        ("before_traffic = \"x\"\ntimeout = \"0s\"", "longer than 0s"),
        ("after_test_traffic = \"x\"", "set router.test_listener_arn"),
        ("before_trafic = \"x\"", "unknown field `before_trafic`"),
    ] {
        let e = err(&format!("{GOOD}\n[hooks]\n{body}\n"));
        assert!(e.contains(says), "{body}: {e}");
    }
}

#[test]
fn the_ledger_table_is_a_dynamodb_name_for_an_aws_router() {
    let alb = GOOD
        .replace(
            "kind = \"sim\"\ninstances = 3",
            "kind = \"ecs\"\ncluster = \"c\"\nservice = \"web\"\ncontainer = \"app\"\ncontainer_port = 80",
        )
        .replace(
            "[router]\nkind = \"sim\"",
            "[router]\nkind = \"alb\"\nlistener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/lb/1/2\"\ntarget_groups = [\"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/1\", \"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/b/2\"]",
        );
    let c = parse(&alb).unwrap();
    assert_eq!(
        c.ledger.table_for(&c.router).as_deref(),
        Some("teal-ledger"),
        "an ALB router's record goes to the default table"
    );
    let named = parse(&format!("{alb}\n[ledger]\ntable = \"deploys.prod\"\n")).unwrap();
    assert_eq!(
        named.ledger.table_for(&named.router).as_deref(),
        Some("deploys.prod")
    );

    let e = err(&format!("{alb}\n[ledger]\ntable = \"no spaces\"\n"));
    assert!(e.contains("ledger.table") && e.contains("3 to 255"), "{e}");
    assert!(e.starts_with("teal.toml:"), "located: {e}");
    let e = err(&format!("{alb}\n[ledger]\ntable = \"ab\"\n"));
    assert!(e.contains("ledger.table"), "{e}");
    let e = err(&format!("{GOOD}\n[ledger]\ntable = \"teal-ledger\"\n"));
    assert!(
        e.contains("for AWS routers"),
        "the sim keeps its own record: {e}"
    );
    let e = err(&format!("{alb}\n[ledger]\nbucket = \"x\"\n"));
    assert!(e.contains("unknown field `bucket`"), "{e}");
}

/// GOOD behind an ALB, with an ECS fleet, and `analysis` appended.
fn alb_ecs_with(analysis: &str) -> String {
    let text = GOOD
        .replace(
            "[router]\nkind = \"sim\"",
            "[router]\nkind = \"alb\"\nlistener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123:listener/app/x/1/2\"\ntarget_groups = [\"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/a/1\", \"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/b/2\"]",
        )
        .replace(
            "[fleet]\nkind = \"sim\"\ninstances = 3",
            "[fleet]\nkind = \"ecs\"\ncluster = \"main\"\nservice = \"web\"\ncontainer = \"app\"\ncontainer_port = 8080",
        );
    format!("{text}\n{analysis}")
}

const ANALYSIS: &str = r#"[analysis]
on_marginal = { timeout = "30m", action = "promote" }

[[analysis.metric]]
preset = "alb-5xx-share"
max = 0.05
critical = true
must_have_data = true

[[analysis.metric]]
preset = "alb-latency"
stat = "p95"

[[analysis.metric]]
preset = "ecs-cpu"
compare = false
max = 90

[[analysis.metric]]
name = "orders"
expression = "100 * FILL(failed, 0) / total"
queries.failed = { namespace = "Shop", metric = "Failed", stat = "Sum", dimensions = { Service = "{service}", Rev = "{revision}" } }
queries.total = { namespace = "Shop", metric = "Orders", stat = "Sum", dimensions = { Service = "{service}" } }
"#;

#[test]
fn analysis_validates_presets_queries_and_defaults() {
    let c = parse(&alb_ecs_with(ANALYSIS)).unwrap();
    let a = c.analysis.as_ref().unwrap();
    assert_eq!(a.metrics.len(), 4);
    assert_eq!((a.period_ms, a.late_ms), (60_000, 120_000));
    assert_eq!(a.metrics[0].check.confidence, DEFAULT_CONFIDENCE);
    assert_eq!(a.metrics[0].check.min_points, DEFAULT_MIN_POINTS);
    assert!(a.metrics[0].check.must_have_data && a.metrics[0].check.critical);
    assert!(!a.metrics[1].check.must_have_data);
    assert_eq!(a.metrics[1].source.describe(), "AWS/ApplicationELB TargetResponseTime p95 {LoadBalancer={load_balancer}, TargetGroup={target_group}}");
    // 5xx: 3 queries, latency 1, cpu 1, orders 3; both slots.
    assert_eq!(a.query_count(), 16);
    let plan = c.plan().unwrap();
    let judging = plan.analysis.unwrap();
    assert_eq!(judging.on_marginal.timeout_ms, Some(30 * 60_000));
}

#[test]
fn bad_analysis_is_refused_with_file_line_col_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("preset = \"alb-5xx-share\"", "preset = \"alb-5xx\"", "analysis.metric[0].preset: unknown preset \"alb-5xx\"; presets are: alb-5xx-share"),
        ("Rev = \"{revision}\"", "Rev = \"{revison}\"", "analysis.metric[3].queries.failed.dimensions.Rev: unknown placeholder {revison}"),
        ("stat = \"p95\"", "stat = \"p95th\"", "analysis.metric[1].stat: \"p95th\" is not a CloudWatch statistic"),
        ("[analysis]\n", "[analysis]\nconfidence = 1.0\n", "analysis.confidence: a confidence is between 0 and 1, exclusive"),
        ("[analysis]\n", "[analysis]\nconfidence = 0\n", "analysis.confidence: a confidence is between 0 and 1"),
        ("[analysis]\n", "[analysis]\npass = 70\nmarginal = 80\n", "analysis.marginal: marginal (80) must not be above pass (70)"),
        ("max = 0.05", "max = -0.05", "analysis.metric[0].max: a bound is a number, 0 or more, got -0.05"),
        ("[analysis]\n", "[analysis]\nallowed_effect = -1\n", "analysis.allowed_effect: must be 0 or more"),
        ("[analysis]\n", "[analysis]\npass = 101\n", "analysis.pass: a score threshold is 0 to 100"),
        ("[analysis]\n", "[analysis]\nmin_points = 2\n", "analysis.min_points: must be 3..=10000"),
        ("max = 0.05", "max = \"\"", "invalid type: string \"\", expected f64"),
        ("preset = \"ecs-cpu\"", "preset = \"ec2-cpu\"", "analysis.metric[2].preset: preset \"ec2-cpu\" is for fleet.kind = \"asg\", not \"ecs\""),
        ("{ timeout = \"30m\", action = \"promote\" }", "{ action = \"promote\" }", "analysis.on_marginal.timeout: on_marginal needs a timeout"),
        ("action = \"promote\"", "action = \"wait\"", "analysis.on_marginal.action: action is \"rollback\" or \"promote\""),
        ("100 * FILL(failed, 0) / total", "100 * FILL(failed, 0) / totl", "uses \"totl\", which is not one of its queries"),
        ("[analysis]\n", "[analysis]\nperiod = \"45s\"\n", "analysis.period: a CloudWatch period is 1s, 5s, 10s, 30s or a multiple of 60s"),
    ];
    for (from, to, expected) in cases {
        let text = alb_ecs_with(&ANALYSIS.replacen(from, to, 1));
        let e = err(&text);
        assert!(
            e.starts_with("teal.toml:") && e.contains(expected),
            "{to}: {e}"
        );
        // Located at the offending line: the line number points at text containing the change.
        let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
        let at = text.lines().nth(line - 1).unwrap();
        let changed = to.lines().last().unwrap().split('=').next().unwrap().trim();
        assert!(
            at.contains(changed)
                || at.starts_with("[[analysis")
                || at.starts_with("[analysis")
                || expected.contains("not one of its queries"),
            "{to}: line {line} is {at:?}"
        );
    }
}

#[test]
fn more_queries_than_one_call_takes_are_refused() {
    let mut many = String::from("[analysis]\n");
    for i in 0..84 {
        many.push_str(&format!(
            "[[analysis.metric]]\nname = \"m{i}\"\nexpression = \"a / b\"\nqueries.a = {{ namespace = \"N\", metric = \"A\", stat = \"Sum\" }}\nqueries.b = {{ namespace = \"N\", metric = \"B\", stat = \"Sum\" }}\n"
        ));
    }
    // 84 metrics × 3 queries × 2 slots = 504.
    let e = err(&alb_ecs_with(&many));
    assert!(
        e.contains("these metrics make 504 GetMetricData queries a poll")
            && e.contains("at most 500"),
        "{e}"
    );
    // 83 metrics: 498 queries, one call.
    let cut = many.rfind("[[analysis.metric]]").unwrap();
    assert!(parse(&alb_ecs_with(&many[..cut])).is_ok());
}

#[test]
fn analysis_is_refused_where_it_cannot_measure() {
    // A custom query on the local provider; an ALB preset behind Route 53 is
    // covered by the preset's own check, and a rolling update has one slot.
    let rolling = alb_ecs_with(ANALYSIS).replace(
        "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
        "name = \"rolling\"",
    );
    let c = parse(&rolling).unwrap();
    let e = c.plan().unwrap_err().to_string();
    assert!(
        e.contains("analysis: strategy \"rolling\" is a rolling update: canary analysis compares"),
        "{e}"
    );
}

#[test]
fn a_txt_ledger_has_room_for_so_many_analysis_metrics() {
    let route53 = GOOD
        .replace(
            "[router]\nkind = \"sim\"",
            "[router]\nkind = \"route53\"\nhosted_zone_id = \"Z1\"\nrecord_name = \"web.example.com\"\nrecord_type = \"A\"\nset_identifiers = [\"a\", \"b\"]",
        )
        .replace(
            "[fleet]\nkind = \"sim\"\ninstances = 3",
            "[fleet]\nkind = \"asg\"\ngroup = \"web\"\ntarget_groups = [\"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/a/1\", \"arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/b/2\"]",
        );
    let metrics = |n: usize| {
        let mut s = String::from("\n[analysis]\n");
        for i in 0..n {
            s.push_str(&format!(
                "[[analysis.metric]]\npreset = \"ec2-cpu\"\nname = \"cpu{i}\"\n"
            ));
        }
        s
    };
    let at_most = format!("{route53}{}", metrics(MAX_METRICS_IN_TXT));
    assert!(parse(&at_most).is_ok(), "{:?}", parse(&at_most).err());
    let e = err(&format!("{route53}{}", metrics(MAX_METRICS_IN_TXT + 1)));
    assert!(
        e.contains("analysis.metric: 17 metrics") && e.contains("[ledger] table"),
        "{e}"
    );
    let with_table = format!(
        "{route53}\n[ledger]\ntable = \"teal-ledger\"\n{}",
        metrics(MAX_METRICS_IN_TXT + 1)
    );
    assert!(parse(&with_table).is_ok(), "{:?}", parse(&with_table).err());
}

#[test]
fn approval_steps_validate_and_bad_ones_name_their_field() {
    let text = GOOD.replace(
        "{ weight = 50, bake = \"90s\" }",
        "{ weight = 50, bake = \"90s\", approve = { timeout = \"4h\", on_timeout = \"promote\" } }",
    );
    let c = parse(&text.replace(
        "{ weight = 5, bake = \"1m\" }",
        "{ weight = 5, bake = \"1m\", approve = true }",
    ))
    .unwrap();
    let steps = c.strategy.steps().unwrap();
    assert_eq!(
        steps[0].approve,
        Some(crate::strategy::Approval {
            timeout_ms: None,
            on_timeout: crate::strategy::OnTimeout::Rollback
        })
    );
    assert_eq!(
        steps[1].approve,
        Some(crate::strategy::Approval {
            timeout_ms: Some(4 * 3_600_000),
            on_timeout: crate::strategy::OnTimeout::Promote
        })
    );
    assert_eq!(steps[2].approve, None);
    assert!(c.strategy.describe_steps()[1].ends_with(", then wait for approval (4h, then promote)"));
    // A canary and a rolling update take one too.
    let canary = parse(&GOOD.replace(
        "steps = [\n  { weight = 5, bake = \"1m\" },\n  { weight = 50, bake = \"90s\" },\n  { weight = 100 },\n]",
        "canary = { percent = 10, bake = \"5m\", approve = true }",
    ))
    .unwrap();
    assert!(canary.strategy.steps().unwrap()[0].approve.is_some());

    // Shorter than the poll (10s by default): the gates would go unread.
    let e = err(&text.replace("timeout = \"4h\"", "timeout = \"5s\""));
    assert!(
        e.starts_with("teal.toml:18:42: strategy.steps[1].approve.timeout: the approval timeout (5s) is shorter than the poll interval (10s)"),
        "{e}"
    );
    let e = err(&text.replace("\"promote\"", "\"retry\""));
    assert!(e.contains("strategy.steps[1].approve.on_timeout: on_timeout is \"rollback\", \"promote\" or \"hold\", got \"retry\""), "{e}");
    let e = err(&text.replace("timeout = \"4h\"", "timeout = \"soon\""));
    assert!(
        e.contains("strategy.steps[1].approve.timeout: bad duration \"soon\""),
        "{e}"
    );
    let e = err(&text.replace("on_timeout", "after"));
    assert!(
        e.contains("strategy.steps[1].approve.after: unknown key `after`"),
        "{e}"
    );
    let e = err(&text.replace("timeout = \"4h\", ", ""));
    assert!(e.contains("on_timeout needs a timeout"), "{e}");
    let e = err(&GOOD.replace("{ weight = 100 }", "{ weight = 100, approve = \"yes\" }"));
    assert!(
        e.contains("strategy.steps[2].approve: approve is `true` or a table"),
        "{e}"
    );
}

#[test]
fn nlb_router_is_a_listener_without_rules_and_without_http_presets() {
    let nlb = alb_ecs_with("").replace("kind = \"alb\"", "kind = \"nlb\"");
    let c = parse(&nlb).unwrap();
    let l = c.router.listener().expect("an ELB listener router");
    assert_eq!(l.balancer, Balancer::Network);
    assert_eq!(c.router.kind(), "nlb");
    assert!(c.router.describe().starts_with("NLB listener"));
    let e = err(&nlb.replace(
        "listener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123:listener/app/x/1/2\"",
        "rule_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123:listener-rule/app/x/1/2/3\"",
    ));
    assert!(
        e.contains("router.rule_arn: a Network Load Balancer has no listener rules"),
        "{e}"
    );
    // HTTP metrics an NLB does not have are refused; a query with the
    // load balancer's placeholders is not.
    let e = err(&format!(
        "{nlb}\n[analysis]\n[[analysis.metric]]\npreset = \"alb-5xx-share\"\n"
    ));
    assert!(e.contains("an NLB has none"), "{e}");
    let q = "[analysis]\n[[analysis.metric]]\nname = \"resets\"\nmax = 5\ncompare = false\n\
             namespace = \"AWS/NetworkELB\"\nmetric = \"TCP_Target_Reset_Count\"\nstat = \"Sum\"\n\
             dimensions = { TargetGroup = \"{target_group}\", LoadBalancer = \"{load_balancer}\" }\n";
    assert!(
        parse(&format!("{nlb}\n{q}")).is_ok(),
        "{}",
        err(&format!("{nlb}\n{q}"))
    );
}

#[test]
fn fleet_slots_are_created_by_default_or_existing() {
    let ecs = alb_ecs_with("");
    assert_eq!(
        parse(&ecs).unwrap().fleet.slots(),
        crate::config::Slots::Created
    );
    let existing = ecs.replace(
        "container_port = 8080",
        "container_port = 8080\nslots = \"existing\"",
    );
    let c = parse(&existing).unwrap();
    assert_eq!(c.fleet.slots(), crate::config::Slots::Existing);
    assert!(
        c.fleet.describe().contains("web-a and web-b"),
        "{}",
        c.fleet.describe()
    );
    let e = err(&ecs.replace(
        "container_port = 8080",
        "container_port = 8080\nslots = \"terraform\"",
    ));
    assert!(e.contains("fleet.slots: slots must be \"created\""), "{e}");
    assert!(e.contains("got \"terraform\""), "{e}");
}

const SITE: &str = r#"
[service]
name = "web-front"

[fleet]
kind = "s3"
bucket = "my-front-end"
site = "dist"

[router]
kind = "cloudfront"
distribution_id = "E2QWRUHAPOMQZL"

[strategy]
canary = { percent = 15, bake = "1m" }
"#;

#[test]
fn a_static_site_behind_cloudfront_is_read_and_its_mistakes_named() {
    let c = parse(SITE).expect("a good config");
    assert!(matches!(&c.fleet, FleetConfig::S3 { prefix, .. } if prefix == "site"));
    assert_eq!(c.router.max_partial_weight(), Some(15));
    assert!(c.plan().is_ok(), "15% is CloudFront's largest share");
    for (from, to, field) in [
        ("\"my-front-end\"", "\"s3://my-front-end\"", "fleet.bucket"),
        ("\"my-front-end\"", "\"My_Site\"", "fleet.bucket"),
        (
            "\"E2QWRUHAPOMQZL\"",
            "\"d111111abcdef8.cloudfront.net\"",
            "router.distribution_id",
        ),
        (
            "site = \"dist\"",
            "site = \"dist\"\nprefix = \"a/../b\"",
            "fleet.prefix",
        ),
    ] {
        let e = err(&SITE.replace(from, to));
        assert!(e.contains(field), "{to}: {e}");
    }
    // A step between CloudFront's 15% and 100% is refused by the plan.
    let c = parse(&SITE.replace("percent = 15", "percent = 16")).expect("parses");
    let e = c
        .plan()
        .expect_err("16% is above CloudFront's cap")
        .to_string();
    assert!(e.contains("16%") && e.contains("15%"), "{e}");
    let rolling = SITE.replace(
        "canary = { percent = 15, bake = \"1m\" }",
        "rolling = { min_healthy_percent = 50, max_percent = 150, bake = \"1m\" }",
    );
    let e = parse(&rolling)
        .expect("parses")
        .plan()
        .expect_err("no instances")
        .to_string();
    assert!(e.contains("rolling update"), "{e}");
}

#[test]
fn a_fleet_and_router_that_do_not_go_together_are_refused_as_read() {
    // What `teal deploy` would refuse, `plan` and `verify` refuse too.
    let alb = SITE.replace(
        "kind = \"cloudfront\"\ndistribution_id = \"E2QWRUHAPOMQZL\"",
        "kind = \"route53\"\nhosted_zone_id = \"Z1\"\nrecord_name = \"www.example.com\"\n\
         record_type = \"A\"\nset_identifiers = [\"a\", \"b\"]",
    );
    let e = err(&alb);
    assert!(
        e.contains("router.kind") && e.contains("\"s3\"") && e.contains("s3 behind cloudfront"),
        "{e}"
    );
    let local = SITE.replace(
        "kind = \"cloudfront\"\ndistribution_id = \"E2QWRUHAPOMQZL\"",
        "kind = \"local\"\nlisten = \"127.0.0.1:8090\"",
    );
    assert!(err(&local).contains("router.kind"), "{}", err(&local));
    // Every AWS pair, and each provider's own, stays deployable.
    for (fleet, router) in crate::config::AWS_PAIRS
        .iter()
        .copied()
        .chain([("sim", "sim"), ("local", "local")])
    {
        assert!(
            super::deployable((fleet, router)),
            "{fleet} behind {router}"
        );
    }
    assert!(!super::deployable(("ecs", "cloudfront")));
}
