//! `teal deploy --report` and `teal report --svg`, on the simulated provider
//! (the report is the same whatever the provider): the JSON holds the run,
//! and the SVG, parsed back, holds green's weight series and the end marker.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn teal() -> Command {
    let mut c = Command::cargo_bin("teal").expect("the teal binary");
    c.env_remove("TEAL_CONFIG").env_remove("CODEBUILD_BUILD_ID");
    c
}

/// Deploy on the sim provider with `extra` flags, writing a report; then draw it.
fn deploy_and_draw(dir: &Path, extra: &[&str], code: i32) -> (Value, String) {
    let json = dir.join("report.json");
    let svg = dir.join("timeline.svg");
    teal()
        .args(["deploy", "--config", "examples/sim/teal.toml", "--report"])
        .arg(&json)
        .args(extra)
        .assert()
        .code(code);
    let out = teal()
        .arg("report")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .assert()
        .code(0);
    let said = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(said.contains("timeline drawn to"), "{said}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (report, std::fs::read_to_string(&svg).unwrap())
}

/// The y of each level the polyline drawn in `stroke` holds, left to right,
/// consecutive repeats merged.
fn levels(svg: &str, stroke: &str) -> Vec<f64> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let line = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("polyline")
                && n.attribute("stroke")
                    .is_some_and(|s| s.eq_ignore_ascii_case(stroke))
        })
        .unwrap_or_else(|| panic!("no polyline stroked {stroke}:\n{svg}"));
    let mut ys: Vec<f64> = Vec::new();
    for pair in line.attribute("points").unwrap().split_whitespace() {
        let (_, y) = pair.split_once(',').unwrap();
        let y: f64 = y.parse().unwrap();
        if ys.last() != Some(&y) {
            ys.push(y);
        }
    }
    ys
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

fn weights(report: &Value) -> Vec<u64> {
    report["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["green"].as_u64().unwrap())
        .collect()
}

/// Each weight drawn where it belongs: as many levels as the series has,
/// and a higher weight always higher up (a smaller y).
fn assert_drawn(series: &[u64], ys: &[f64]) {
    let mut merged = series.to_vec();
    merged.dedup();
    assert_eq!(
        ys.len(),
        merged.len(),
        "levels {ys:?} for weights {merged:?}"
    );
    for i in 0..merged.len() {
        for j in 0..merged.len() {
            if merged[i] < merged[j] {
                assert!(
                    ys[i] > ys[j],
                    "{}% drawn above {}%: {ys:?}",
                    merged[i],
                    merged[j]
                );
            }
            if merged[i] == merged[j] {
                assert_eq!(ys[i], ys[j], "{}% drawn at two heights: {ys:?}", merged[i]);
            }
        }
    }
}

#[test]
fn a_successful_deployment_draws_its_steps_and_the_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let (report, svg) = deploy_and_draw(dir.path(), &[], 0);
    assert_eq!(report["schema"], 1);
    assert_eq!(report["outcome"]["outcome"], "succeeded");
    // canary-10-5m: 0 → 10 → 100.
    let series = weights(&report);
    assert_eq!(series, vec![0, 10, 100]);
    assert!(report["calls"]["router.set_weights"].as_u64().unwrap() >= 2);
    let steps = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"] == "shifting")
        .count();
    assert_eq!(steps, 2);
    assert!(report["events"].as_array().unwrap().len() > 5);

    assert_drawn(&series, &levels(&svg, "#00FF00"));
    let texts = texts(&svg);
    assert!(texts.iter().any(|t| t == "blue retired"), "{texts:?}");
    assert!(
        !texts.iter().any(|t| t.contains("rolled back:")),
        "{texts:?}"
    );
}

#[test]
fn a_rolled_back_deployment_draws_the_way_back_and_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (report, svg) = deploy_and_draw(dir.path(), &["--sim-fail-gate", "web-5xx@3m"], 3);
    assert_eq!(report["outcome"]["outcome"], "rolled_back");
    let series = weights(&report);
    assert_eq!(series, vec![0, 10, 0], "to the canary and back");
    let gates = report["gates"].as_array().unwrap();
    assert!(
        gates
            .iter()
            .any(|g| g["gate"] == "web-5xx" && g["state"] == "ALARM"),
        "{gates:?}"
    );

    assert_drawn(&series, &levels(&svg, "#00FF00"));
    let texts = texts(&svg);
    let marker = texts
        .iter()
        .find(|t| t.starts_with("rolled back: gate \"web-5xx\""))
        .unwrap_or_else(|| panic!("no rollback marker in {texts:?}"));
    assert!(marker.contains("ALARM"), "{marker}");
    assert!(texts.iter().any(|t| t == "gate web-5xx"), "{texts:?}");
}

#[test]
fn report_refuses_a_file_that_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let out = teal().arg("report").arg(&bad).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("is not a teal report"), "{stderr}");
    teal()
        .args(["report", "/nonexistent/report.json"])
        .assert()
        .code(2);
}

#[test]
fn a_judged_deployment_reports_and_draws_green_against_blue_per_metric() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("teal.toml");
    let mut text = std::fs::read_to_string("examples/sim/teal.toml").unwrap();
    text.push_str(
        "\n[analysis]\nperiod = \"10s\"\nmin_points = 10\n\n[[analysis.metric]]\npreset = \"alb-5xx-share\"\n\n[[analysis.metric]]\npreset = \"alb-latency\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let (json, svg) = (dir.path().join("r.json"), dir.path().join("r.svg"));
    teal()
        .args(["deploy", "--config", cfg.to_str().unwrap(), "--report"])
        .arg(&json)
        .assert()
        .code(0);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let judgments = report["judgments"].as_array().unwrap();
    assert_eq!(
        judgments.len(),
        1,
        "the 10% step, not the 100% one: {judgments:?}"
    );
    assert_eq!(judgments[0]["step"], 1);
    assert_eq!(judgments[0]["outcome"], "pass");
    let metrics = judgments[0]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2);
    assert!(metrics
        .iter()
        .all(|m| m["green_points"].as_u64().unwrap() >= 10));

    let out = teal()
        .arg("report")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .assert()
        .code(0);
    let said = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        said.contains("analysis of step 1: PASS (score 100; alb-5xx-share green 0.0"),
        "{said}"
    );
    let texts = texts(&std::fs::read_to_string(&svg).unwrap());
    for want in [
        "alb-5xx-share: green vs blue, mean over each judged bake",
        "alb-latency: green vs blue, mean over each judged bake",
        "step 1: pass (pass)",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want:?} in {texts:?}");
    }
}

#[test]
fn the_report_says_who_approved_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("teal.toml");
    let text = std::fs::read_to_string("examples/sim/teal.toml")
        .unwrap()
        .replace(
            "name = \"canary-10-5m\"",
            "steps = [{ weight = 10, bake = \"1m\", approve = { timeout = \"5m\", on_timeout = \"promote\" } }, { weight = 100, bake = \"1m\" }]",
        );
    assert!(
        text.contains("approve"),
        "the example's strategy was replaced"
    );
    std::fs::write(&cfg, text).unwrap();
    let json = dir.path().join("report.json");
    teal()
        .args(["deploy", "--config"])
        .arg(&cfg)
        .arg("--report")
        .arg(&json)
        .assert()
        .code(0);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["people"][0]["what"], "approve step 1");
    assert_eq!(report["people"][0]["by"], "on_timeout = \"promote\"");
    let out = teal().arg("report").arg(&json).assert().code(0);
    let said = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        said.contains("approve step 1 by on_timeout = \"promote\""),
        "{said}"
    );
}
