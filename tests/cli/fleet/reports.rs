//! `connection test --report junit:F --report json:F` read by junitparser (PyPI),
//! and the RENEW verdict of `--warn-days`.

use std::process::Command;

use serde_json::Value;

use base64::Engine;

use super::FleetPki;

const SECRET: &str = "fleet-pw-8c1d9e";
use crate::outbound::{Fixture, conn};
use crate::outbound_servers::{ok_handler, refused_port, status_handler};

/// What junitparser reads from a JUnit file, as JSON: suites with their counts
/// and cases (name, classname, result type, message, system-out).
fn junitparser(path: &std::path::Path) -> Value {
    let script = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        results = [{"tag": r._tag, "type": r.type, "message": r.message} for r in case.result]
        cases.append({"name": case.name, "classname": case.classname, "time": case.time,
                      "results": results, "system_out": case.system_out})
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                   "errors": suite.errors, "cases": cases})
print(json.dumps(suites))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 with junitparser is needed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "junitparser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("junitparser JSON")
}

#[test]
fn junit_and_json_reports_of_test_all_are_read_by_junitparser() {
    let f = Fixture::new();
    let pki = FleetPki::new(&f.env.path("fleet"));
    let good = pki.leaf("good-server", false, 90);
    let expired = pki.leaf("expired-server", false, -3);
    let ok = pki.server(&f, &good, false, ok_handler());
    let broken = pki.server(&f, &good, false, status_handler(500));
    let old = pki.server(&f, &expired, false, ok_handler());
    let down = refused_port();
    let ca = format!("ca_bundle = \"{}\"", pki.ca.display());
    f.store(&format!(
        "[integration.billing]\n\n{}{}{}{}{}",
        conn("inc.ok", &ok.url("/"), &ca),
        conn("inc.down", &format!("https://127.0.0.1:{down}/"), &ca),
        conn("inc.expired", &old.url("/"), &ca),
        conn(
            "inc.basic",
            &ok.url("/"),
            &format!(
                "{ca}\nauthentication = \"basic\"\nuser = \"svc\"\npassword = \"env:FLEET_PW\""
            )
        ),
        conn("billing.broken", &broken.url("/"), &ca).replace("\"inc\"", "\"billing\""),
    ));
    let junit = f.env.path("out/connctl.xml");
    let json = f.env.path("out/connctl.json");
    std::fs::create_dir_all(junit.parent().unwrap()).unwrap();
    let run = f.expect(
        &[
            "connection",
            "test",
            "--all",
            "--report",
            &format!("junit:{}", junit.display()),
            "--report",
            &format!("json:{}", json.display()),
        ],
        &[("FLEET_PW", SECRET)],
        1,
    );
    // The normal output is still there.
    assert!(run.stdout.contains("inc.ok"), "{}", run.stdout);
    assert!(
        run.stderr.contains("3 of 5 connections failed"),
        "{}",
        run.stderr
    );

    let suites = junitparser(&junit);
    let suites = suites.as_array().unwrap();
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["billing", "inc"]);
    let (billing, inc) = (&suites[0], &suites[1]);
    assert_eq!(
        (billing["tests"].as_i64(), billing["failures"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (inc["tests"].as_i64(), inc["failures"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(inc["errors"].as_i64(), Some(0));
    let case = |suite: &Value, name: &str| -> Value {
        suite["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name} in {suite:#}"))
            .clone()
    };
    let failure = |c: &Value| -> (String, String) {
        let r = &c["results"][0];
        assert_eq!(r["tag"], "failure", "{c:#}");
        (
            r["type"].as_str().unwrap().to_string(),
            r["message"].as_str().unwrap().to_string(),
        )
    };
    let passed = case(inc, "inc.ok");
    assert_eq!(passed["classname"], "inc");
    assert_eq!(passed["results"], Value::Array(vec![]));
    let out = passed["system_out"].as_str().unwrap();
    for stage in ["secrets", "dns", "tcp", "tls", "http"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(stage) && l.contains(" ms ")),
            "{out}"
        );
    }
    assert!(
        out.contains("server certificate expires in 90 days"),
        "{out}"
    );
    assert_eq!(
        failure(&case(inc, "inc.down")),
        (
            "tcp".to_string(),
            format!("connection refused by 127.0.0.1:{down}: nothing is listening there")
        )
    );
    assert_eq!(
        failure(&case(inc, "inc.expired")),
        (
            "tls".to_string(),
            "server certificate expired 3 days ago".to_string()
        )
    );
    assert_eq!(
        failure(&case(billing, "billing.broken")),
        (
            "http".to_string(),
            "the endpoint answered 500 Internal Server Error".to_string()
        )
    );

    // The JSON report is the -o json array.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let stdout_json = f
        .expect(
            &["-o", "json", "connection", "test", "--all"],
            &[("FLEET_PW", SECRET)],
            1,
        )
        .json();
    let strip = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["connection"].clone(),
                    o["verdict"].clone(),
                    o["failed_stage"].clone(),
                    o["exit_code"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&report), strip(&stdout_json));
    assert_eq!(report.as_array().unwrap().len(), 5);
    let expired_obj = report
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["connection"] == "inc.expired")
        .unwrap();
    assert_eq!(expired_obj["server_cert_days_left"], -3);
    assert_eq!(expired_obj["verdict"], "FAILED");

    // Secrets never reach a report, in clear or Base64 (the Basic header), and
    // no temporary files are left behind.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{SECRET}"));
    for file in [&junit, &json] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("inc.basic"), "{text}");
        assert!(!text.contains(SECRET) && !text.contains(&basic), "{text}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(junit.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn warn_days_turns_an_expiring_certificate_into_renew_exit_9() {
    let f = Fixture::new();
    let pki = FleetPki::new(&f.env.path("fleet"));
    let server_cert = pki.leaf("server", false, 90);
    let client = pki.leaf("client", true, 5);
    let mtls = pki.server(&f, &server_cert, true, ok_handler());
    let ca = format!("ca_bundle = \"{}\"", pki.ca.display());
    f.store(&format!(
        "{}[protocol_profile.short]\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\n",
        conn(
            "inc.mtls",
            &mtls.url("/"),
            &format!("{ca}\nmutual_auth = true\nprotocol_profile = \"short\"")
        ),
        client.cert.display(),
        client.key.display()
    ));
    let (json, run) = f.test_json("inc.mtls", &[], &[], 9);
    assert_eq!(json["ok"], true);
    assert_eq!(json["verdict"], "RENEW");
    assert_eq!(json["exit_code"], 9);
    assert_eq!(json["client_cert_days_left"], 5);
    assert_eq!(json["server_cert_days_left"], 90);
    assert_eq!(json["renew"][0], "client certificate expires in 5 days");
    assert!(
        json["client_cert_not_after"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{json:#}"
    );
    assert!(run.stderr.contains("RENEW"), "{}", run.stderr);

    // Inside the window of --warn-days 5 no longer: a plain pass.
    let (json, _) = f.test_json("inc.mtls", &["--warn-days", "5"], &[], 0);
    assert_eq!(json["verdict"], "OK");
    assert_eq!(json["exit_code"], 0);

    // Text: the lifetimes and the verdict.
    let run = f.expect(&["connection", "test", "inc.mtls"], &[], 9);
    assert!(
        run.stderr
            .contains("client certificate expires in 5 days ("),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("inc.mtls: RENEW ("), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("RENEW: certificates expire within 30 days (inc.mtls: client certificate expires in 5 days)"),
        "{}",
        run.stderr
    );

    // --all: RENEW in the table and in JUnit as a failure of type renew.
    let junit = f.env.path("renew.xml");
    let run = f.expect(
        &[
            "connection",
            "test",
            "--all",
            "--report",
            &format!("junit:{}", junit.display()),
        ],
        &[],
        9,
    );
    assert!(run.stdout.contains("RENEW"), "{}", run.stdout);
    let suites = junitparser(&junit);
    let result = &suites[0]["cases"][0]["results"][0];
    assert_eq!(result["type"], "renew");
    assert_eq!(
        result["message"],
        "client certificate expires in 5 days (--warn-days 30)"
    );
}

#[test]
fn a_bad_report_argument_is_a_usage_error() {
    let f = Fixture::new();
    f.store("");
    let run = f.expect(
        &["connection", "test", "--all", "--report", "xml:r.xml"],
        &[],
        2,
    );
    assert!(
        run.stderr.contains("unknown report kind 'xml'"),
        "{}",
        run.stderr
    );
}
