//! The change journal through the binary: `history`, `integration rollback`,
//! concurrent writers and writers killed mid-commit.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::concurrency::{Rng, assert_one_active_per_integration, big_store, connctl, connections};
use crate::support::TestEnv;

fn journal_path(env: &TestEnv) -> std::path::PathBuf {
    env.store.with_file_name("store.toml.journal")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal's complete lines, parsed (a test fails on any that is not JSON).
fn raw_entries(env: &TestEnv) -> Vec<Value> {
    let text = std::fs::read_to_string(journal_path(env)).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}")))
        .collect()
}

fn history(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["-o", "json", "history"];
    all.extend_from_slice(args);
    let run = env.run(&all);
    assert_eq!(run.code, 0, "history {args:?}: {}", run.stderr);
    run.json().as_array().expect("array").clone()
}

/// A row without the parts that differ between runs (time, user, host), for comparing.
fn row(
    kind: &str,
    name: &str,
    action: &str,
    integration: Value,
    env: Value,
    previous: Value,
) -> Value {
    json!({"kind": kind, "name": name, "action": action, "fields": [],
           "integration": integration, "environment": env, "previous": previous})
}

fn strip(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            let map = r.as_object_mut().expect("object");
            for key in ["time", "user", "host", "command"] {
                map.remove(key);
            }
            r
        })
        .collect()
}

fn words(row: &Value) -> String {
    row["command"]
        .as_array()
        .expect("command words")
        .iter()
        .map(|w| w.as_str().expect("word"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn two_integrations(env: &TestEnv) {
    env.ok(&["integration", "add", "a"]);
    env.ok(&["integration", "add", "b"]);
    for (name, integration, environment) in [
        ("a.t", "a", "test"),
        ("a.p", "a", "production"),
        ("b.d", "b", "development"),
        ("b.s", "b", "sandbox"),
    ] {
        env.ok(&[
            "connection",
            "add",
            name,
            "--integration",
            integration,
            "--env",
            environment,
            "--url",
            &format!("https://{name}.example.com/api"),
        ]);
    }
}

#[test]
fn activations_across_integrations_are_journaled_field_by_field() {
    let env = TestEnv::new();
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    two_integrations(&env);
    env.ok(&["connection", "activate", "a.t"]);
    env.ok(&["integration", "activate", "b", "--connection", "b.d"]);
    env.ok(&["integration", "activate", "a", "--env", "production"]);
    env.ok(&["connection", "activate", "b.s"]);
    env.ok(&["integration", "deactivate", "a"]);
    env.ok(&["connection", "deactivate", "b.s"]);
    env.ok(&[
        "connection",
        "edit",
        "a.t",
        "--url",
        "https://a.t.example.com/v2",
        "--var",
        "table=x",
    ]);

    let rows = history(&env, &[]);
    let s = |v: &str| Value::String(v.to_string());
    let mut edited = row(
        "connection",
        "a.t",
        "edited",
        s("a"),
        s("test"),
        Value::Null,
    );
    edited["fields"] = json!(["endpoint_url", "variables"]);
    let expected = vec![
        edited,
        row(
            "connection",
            "b.s",
            "deactivated",
            s("b"),
            s("sandbox"),
            s("b.s"),
        ),
        row(
            "connection",
            "a.p",
            "deactivated",
            s("a"),
            s("production"),
            s("a.p"),
        ),
        row(
            "connection",
            "b.s",
            "activated",
            s("b"),
            s("sandbox"),
            s("b.d"),
        ),
        row(
            "connection",
            "b.d",
            "deactivated",
            s("b"),
            s("development"),
            s("b.d"),
        ),
        row(
            "connection",
            "a.p",
            "activated",
            s("a"),
            s("production"),
            s("a.t"),
        ),
        row(
            "connection",
            "a.t",
            "deactivated",
            s("a"),
            s("test"),
            s("a.t"),
        ),
        row(
            "connection",
            "b.d",
            "activated",
            s("b"),
            s("development"),
            Value::Null,
        ),
        row(
            "connection",
            "a.t",
            "activated",
            s("a"),
            s("test"),
            Value::Null,
        ),
        row(
            "connection",
            "b.s",
            "added",
            s("b"),
            s("sandbox"),
            Value::Null,
        ),
        row(
            "connection",
            "b.d",
            "added",
            s("b"),
            s("development"),
            Value::Null,
        ),
        row(
            "connection",
            "a.p",
            "added",
            s("a"),
            s("production"),
            Value::Null,
        ),
        row("connection", "a.t", "added", s("a"), s("test"), Value::Null),
        row(
            "integration",
            "b",
            "added",
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        row(
            "integration",
            "a",
            "added",
            Value::Null,
            Value::Null,
            Value::Null,
        ),
    ];
    assert_eq!(strip(&rows), expected);

    // Who, where, when and with what command.
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut last = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    for r in &rows {
        assert_eq!(r["user"], user.trim(), "{r}");
        assert_eq!(r["host"], host.trim(), "{r}");
        let at = time::OffsetDateTime::parse(
            r["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339 time");
        assert!(r["time"].as_str().unwrap().ends_with('Z'), "UTC: {r}");
        assert!(
            at >= started && at <= last,
            "newest first, within the test: {r}"
        );
        last = at;
    }
    assert_eq!(
        words(&rows[0]),
        "connctl connection edit a.t --url https://a.t.example.com/v2 --var table=x"
    );
    assert_eq!(words(&rows[3]), "connctl connection activate b.s");
    assert_eq!(
        words(&rows[5]),
        "connctl integration activate a --env production"
    );
    assert_eq!(rows[3]["time"], rows[4]["time"], "one entry, two records");

    // Filters.
    let b = history(&env, &["--integration", "b"]);
    assert_eq!(b.len(), 7, "{b:#?}");
    assert!(
        b.iter()
            .all(|r| r["integration"] == "b" || (r["kind"] == "integration" && r["name"] == "b"))
    );
    let at = history(&env, &["--connection", "a.t"]);
    let names: Vec<(&str, &str)> = at
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("a.t", "edited"),
            ("a.p", "activated"),
            ("a.t", "deactivated"),
            ("a.t", "activated"),
            ("a.t", "added")
        ]
    );
    assert_eq!(strip(&history(&env, &["--limit", "2"])), expected[..2]);
    assert_eq!(history(&env, &["--since", "1h"]).len(), expected.len());
    assert_eq!(
        history(&env, &["--since", "2020-01-01T00:00:00Z"]).len(),
        expected.len()
    );
    assert_eq!(history(&env, &["--since", "2999-01-01T00:00:00Z"]).len(), 0);
    let bad = env.fails(&["history", "--since", "yesterday"], 2);
    assert!(bad.stderr.contains("--since 'yesterday'"), "{}", bad.stderr);

    // The table: newest first, the activation's detail.
    let table = env.ok(&["history", "--integration", "a", "--limit", "3"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{table}");
    assert!(
        lines[1].contains("edited") && lines[1].contains("endpoint_url, variables"),
        "{table}"
    );
    assert!(
        lines[2].contains("deactivated") && lines[2].contains("connection a.p"),
        "{table}"
    );
    assert!(
        lines[3].contains("activated")
            && lines[3].contains("integration a (production), before: a.t"),
        "{table}"
    );

    // Owner-only, beside the store, one JSON object per line.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(journal_path(&env)).expect("journal beside the store");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(raw_entries(&env).len(), 13);
}

#[test]
fn rollback_twice_returns_to_where_it_started() {
    let env = TestEnv::new();
    two_integrations(&env);
    env.ok(&["connection", "activate", "a.t"]);
    env.ok(&["connection", "activate", "a.p"]);

    env.ok(&["integration", "rollback", "a"]);
    let list = connections(&env);
    assert_eq!(list["a.t"]["active"], true);
    assert_eq!(list["a.p"]["active"], false);
    let rows = history(&env, &["--limit", "2"]);
    assert_eq!(words(&rows[0]), "connctl integration rollback a");
    assert_eq!(
        (rows[0]["action"].as_str(), rows[0]["name"].as_str()),
        (Some("activated"), Some("a.t"))
    );
    assert_eq!(rows[0]["previous"], "a.p");

    // Back to production: it needs the confirmation a production send needs.
    let before = env.store_bytes();
    let journal_before = std::fs::read(journal_path(&env)).unwrap();
    let declined = env.fails(&["integration", "rollback", "a"], 4);
    assert!(
        declined.stderr.contains("production connection"),
        "{}",
        declined.stderr
    );
    assert!(declined.stderr.contains("--yes"), "{}", declined.stderr);
    assert_eq!(env.store_bytes(), before, "declined: store unchanged");
    assert_eq!(
        std::fs::read(journal_path(&env)).unwrap(),
        journal_before,
        "declined: journal unchanged"
    );
    env.ok(&["integration", "rollback", "a", "--yes"]);
    let list = connections(&env);
    assert_eq!(list["a.p"]["active"], true);
    assert_eq!(list["a.t"]["active"], false);

    // From nothing active: a rollback deactivates, the next one re-activates.
    env.ok(&["connection", "activate", "b.d"]);
    env.ok(&["integration", "rollback", "b"]);
    let shown = env.run(&["-o", "json", "integration", "show", "b"]).json();
    assert_eq!(shown["active"], false);
    let top = &history(&env, &["--limit", "1"])[0];
    assert_eq!(
        (top["action"].as_str(), top["name"].as_str()),
        (Some("deactivated"), Some("b.d"))
    );
    env.ok(&["integration", "rollback", "b"]);
    assert_eq!(connections(&env)["b.d"]["active"], true);

    // --to: a connection the journal shows active for the integration before.
    env.ok(&["connection", "activate", "b.s"]);
    env.ok(&["integration", "rollback", "b", "--to", "b.d"]);
    assert_eq!(connections(&env)["b.d"]["active"], true);
}

#[test]
fn rollback_without_an_earlier_activation_changes_nothing() {
    let env = TestEnv::new();
    two_integrations(&env);
    let before = env.store_bytes();
    let journal_before = std::fs::read(journal_path(&env)).unwrap();

    let none = env.fails(&["integration", "rollback", "a"], 4);
    assert!(
        none.stderr
            .contains("integration 'a' has no activation change in the journal"),
        "{}",
        none.stderr
    );
    assert!(
        none.stderr.contains("store.toml.journal"),
        "{}",
        none.stderr
    );
    env.ok(&["connection", "activate", "b.d"]);
    let before_b = env.store_bytes();
    let journal_b = std::fs::read(journal_path(&env)).unwrap();
    let never = env.fails(&["integration", "rollback", "b", "--to", "b.s"], 4);
    assert!(
        never.stderr.contains("never shows connection 'b.s' active"),
        "{}",
        never.stderr
    );
    let other = env.fails(&["integration", "rollback", "b", "--to", "a.t"], 4);
    assert!(
        other.stderr.contains("belongs to integration 'a'"),
        "{}",
        other.stderr
    );
    env.fails(&["integration", "rollback", "b", "--to", "b.nope"], 3);
    env.fails(&["integration", "rollback", "nope"], 3);
    assert_eq!(env.store_bytes(), before_b);
    assert_eq!(std::fs::read(journal_path(&env)).unwrap(), journal_b);
    assert_ne!(before, before_b);
    assert_ne!(journal_before, journal_b);
}

#[test]
fn a_garbage_journal_line_is_reported_and_skipped_and_writes_go_on() {
    let env = TestEnv::new();
    two_integrations(&env);
    env.ok(&["connection", "activate", "a.t"]);
    let path = journal_path(&env);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    text.push_str("this line was typed by hand {\n");
    text.push_str("{\"json\": \"but not an entry\"}\n");
    std::fs::write(&path, text).unwrap();

    let run = env.run(&["-o", "json", "history"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "store.toml.journal:{}: not JSON; skipped",
            lines + 1
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "store.toml.journal:{}: not a journal entry",
            lines + 2
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.json().as_array().unwrap().len(),
        7,
        "the good entries are all there"
    );

    env.ok(&["connection", "activate", "a.p"]);
    let rows = history(&env, &["--limit", "1"]);
    assert_eq!(
        (rows[0]["name"].as_str(), rows[0]["action"].as_str()),
        (Some("a.p"), Some("activated"))
    );
    env.ok(&["integration", "rollback", "a"]);
    assert_eq!(connections(&env)["a.t"]["active"], true);
}

/// Replays the journal's activations against the final store: each entry's
/// digests chain from the one before, each activation's `previous` is the
/// connection the replay has active, and the replay ends where the store is.
fn check_journal_against_store(env: &TestEnv, entries: &[Value], replay: bool) {
    let mut digest: Option<String> = entries
        .first()
        .and_then(|e| e["store_before"].as_str().map(str::to_string));
    let mut active: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e["store_before"].as_str().map(str::to_string),
            digest,
            "entry {i} does not follow entry {}",
            i.max(1) - 1
        );
        digest = e["store_after"].as_str().map(str::to_string);
        let changes = e["changes"].as_array().unwrap();
        for c in changes
            .iter()
            .filter(|c| replay && c["action"] == "activated")
        {
            let integration = c["integration"].as_str().unwrap().to_string();
            assert_eq!(
                c["previous"].as_str(),
                active.get(&integration).map(String::as_str),
                "entry {i}: {c}"
            );
        }
        for c in changes.iter().filter(|c| c["action"] == "deactivated") {
            active.remove(c["integration"].as_str().unwrap());
        }
        for c in changes.iter().filter(|c| c["action"] == "activated") {
            active.insert(
                c["integration"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            );
        }
    }
    assert_eq!(
        digest,
        Some(sha256_hex(&env.store_bytes().unwrap())),
        "the last entry is the store's state"
    );
    if !replay {
        return;
    }
    let list = connections(env);
    let in_store: BTreeMap<String, String> = list
        .iter()
        .filter(|(_, c)| c["active"] == true)
        .map(|(n, c)| (c["integration"].as_str().unwrap().to_string(), n.clone()))
        .collect();
    assert_eq!(active, in_store);
}

#[test]
fn eight_concurrent_activators_leave_one_entry_per_change() {
    const WRITERS: u64 = 8;
    const OPS: usize = 15;
    let env = TestEnv::new();
    for i in 0..3 {
        env.ok(&["integration", "add", &format!("i{i}")]);
        for k in 0..4 {
            env.ok(&[
                "connection",
                "add",
                &format!("i{i}.c{k}"),
                "--integration",
                &format!("i{i}"),
                "--env",
                "test",
                "--url",
                "https://h.example.com/x",
            ]);
        }
    }
    let setup = raw_entries(&env).len();
    assert_eq!(setup, 15);
    let mut seeds = Rng::seeded("eight_concurrent_activators");
    let seeds: Vec<u64> = (0..WRITERS).map(|_| seeds.next() | 1).collect();
    std::thread::scope(|scope| {
        for seed in &seeds {
            let env = &env;
            scope.spawn(move || {
                let mut rng = Rng(*seed);
                for _ in 0..OPS {
                    let target = format!("i{}.c{}", rng.below(3), rng.below(4));
                    let args: Vec<&str> = if rng.below(2) == 0 {
                        vec!["connection", "activate", &target]
                    } else {
                        let integration = &target[..2];
                        vec![
                            "integration",
                            "activate",
                            integration,
                            "--connection",
                            &target,
                        ]
                    };
                    let out = connctl(env).args(&args).output().expect("spawn");
                    assert!(
                        out.status.success(),
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let entries = raw_entries(&env);
    // Every activation stamps last_activated, so each of them is a committed change.
    assert_eq!(entries.len(), setup + WRITERS as usize * OPS);
    check_journal_against_store(&env, &entries, true);
    assert_one_active_per_integration(&connections(&env));
    let rows = history(&env, &[]);
    assert_eq!(
        rows.iter().filter(|r| r["action"] == "activated").count(),
        WRITERS as usize * OPS,
        "one activated row per activation"
    );
}

#[test]
fn a_writer_killed_at_random_moments_never_commits_without_its_entry() {
    const KILLS: usize = 60;
    let env = TestEnv::new();
    crate::support::write(&env.store, &big_store(100, 5));
    // The first write starts the journal.
    env.ok(&["-q", "connection", "activate", "int-0000.c1"]);
    let mut rng = Rng::seeded("a_writer_killed_at_random_moments");
    let span_us = (0..3)
        .map(|_| {
            let started = Instant::now();
            env.ok(&["-q", "connection", "activate", "int-0000.c0"]);
            started.elapsed().as_micros() as u64
        })
        .min()
        .unwrap_or(20_000)
        .max(20_000);
    let (mut landed, mut not_landed, mut pending) = (0, 0, 0);
    for kill in 0..KILLS {
        let target = format!("int-{:04}.c{}", rng.below(100), rng.below(5));
        let store_before = env.store_bytes();
        let journal = journal_path(&env);
        let journal_len = std::fs::metadata(&journal).unwrap().len();
        let shown_before = history(&env, &[]).len();
        let mut child = connctl(&env)
            .args(["-q", "connection", "activate", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        match kill % 3 {
            0 => std::thread::sleep(Duration::from_micros(rng.below(span_us))),
            1 => {
                // Right after the journal grew: between its fsync and the store's rename.
                let give_up = Instant::now() + Duration::from_secs(20);
                while child.try_wait().expect("try_wait").is_none() && Instant::now() < give_up {
                    if std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) != journal_len {
                        std::thread::sleep(Duration::from_micros(rng.below(500)));
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
            _ => {
                // Right after the rename (a new inode), before the writer is done.
                use std::os::unix::fs::MetadataExt;
                let inode = std::fs::metadata(&env.store).unwrap().ino();
                let give_up = Instant::now() + Duration::from_secs(20);
                while child.try_wait().expect("try_wait").is_none() && Instant::now() < give_up {
                    if std::fs::metadata(&env.store)
                        .map(|m| m.ino())
                        .unwrap_or(inode)
                        != inode
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();

        let store_now = env.store_bytes();
        let digest = sha256_hex(store_now.as_deref().unwrap());
        let shown = history(&env, &[]);
        if store_now != store_before {
            landed += 1;
            assert!(
                raw_entries(&env)
                    .iter()
                    .any(|e| e["store_after"] == digest.as_str()),
                "kill {kill}: a committed change without its journal entry"
            );
            assert_eq!(
                shown[0]["name"],
                target.as_str(),
                "kill {kill}: {:#?}",
                &shown[..2]
            );
            assert_eq!(shown[0]["action"], "activated");
        } else {
            not_landed += 1;
            assert_eq!(
                shown.len(),
                shown_before,
                "kill {kill}: history shows a change that did not land"
            );
            // Killed between the journal's fsync and the rename: its entry is there, unshown.
            if raw_entries(&env)
                .last()
                .is_some_and(|e| e["store_before"] == digest.as_str())
            {
                pending += 1;
            }
        }
    }
    eprintln!(
        "{KILLS} kills: {landed} changes landed, {not_landed} did not ({pending} of them \
         after their journal entry was written)"
    );
    assert!(
        pending > 0,
        "no kill landed between the journal append and the rename"
    );
    // The next writer cuts off what the killed ones left; the journal chains again.
    env.ok(&["-q", "connection", "activate", "int-0001.c1"]);
    check_journal_against_store(&env, &raw_entries(&env), false);
}

#[test]
fn escapes_in_a_hand_edited_journal_are_shown_escaped_and_kept_exact_in_json() {
    let env = TestEnv::new();
    two_integrations(&env);
    env.ok(&["connection", "activate", "a.t"]);
    let path = journal_path(&env);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let hostile = "ops\x1b[2J\nerror: forged\u{202e}";
    last["user"] = json!(hostile);
    last["command"] = json!(["connctl", "connection", "activate", "\x1b]0;title\x07a.t"]);
    let mut edited = text.lines().collect::<Vec<_>>();
    edited.pop();
    let mut out = edited.join("\n");
    out.push('\n');
    out.push_str(&serde_json::to_string(&last).unwrap());
    out.push('\n');
    std::fs::write(&path, out).unwrap();

    let table = env.run(&["history", "--limit", "1"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    for raw in ['\x1b', '\x07', '\u{202e}'] {
        assert!(
            !table.stdout.contains(raw),
            "raw {raw:?} in {:?}",
            table.stdout
        );
    }
    assert!(
        table.stdout.contains(r"ops\x1b[2J\nerror: forged\u{202e}"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains(r"\x1b]0;title\x07a.t"),
        "{}",
        table.stdout
    );
    assert!(
        !table.stdout.lines().any(|l| l.starts_with("error: forged")),
        "a forged line: {}",
        table.stdout
    );

    let rows = history(&env, &["--limit", "1"]);
    assert_eq!(rows[0]["user"], json!(hostile), "JSON keeps the exact text");
}
