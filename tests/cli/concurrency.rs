//! Many writers at once, and writers killed mid-write: the store always
//! loads, loses nothing, and keeps one active connection per integration.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestEnv, write};

/// A small xorshift generator: the tests need variety, not quality. The
/// seed is printed so a failure can be replayed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn seeded(label: &str) -> Self {
        let seed = std::env::var("CONNCTL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("{label}: seed {seed} (CONNCTL_TEST_SEED={seed} replays it)");
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// connctl as a plain process, for spawning and killing.
pub(crate) fn connctl(env: &TestEnv) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connctl"));
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// Connections of `connection list -o json`, by name, without the activation
/// time stamps (they differ between two runs of the same command).
pub(crate) fn connections(env: &TestEnv) -> BTreeMap<String, Value> {
    let run = env.run(&["connection", "list", "-o", "json"]);
    assert_eq!(run.code, 0, "the store does not load:\n{}", run.stderr);
    run.json()
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let map = c.as_object_mut().expect("object");
            map.remove("last_activated");
            (map["name"].as_str().expect("name").to_string(), c)
        })
        .collect()
}

/// Rule 1 on a listing: at most one active connection per integration.
#[track_caller]
pub(crate) fn assert_one_active_per_integration(list: &BTreeMap<String, Value>) {
    let mut active: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, c) in list {
        if c["active"] == Value::Bool(true) {
            active
                .entry(c["integration"].as_str().expect("integration"))
                .or_default()
                .push(name);
        }
    }
    for (integration, names) in active {
        assert!(
            names.len() == 1,
            "integration {integration} has {} active connections: {names:?}",
            names.len()
        );
    }
}

#[test]
fn eight_writers_at_once_lose_nothing() {
    const WRITERS: usize = 8;
    const OPS: usize = 50;
    const INTEGRATIONS: u64 = 4;
    let env = TestEnv::new();
    for i in 0..INTEGRATIONS {
        env.ok(&["integration", "add", &format!("shared-{i}")]);
    }
    let mut seeds = Rng::seeded("eight_writers_at_once_lose_nothing");
    let seeds: Vec<u64> = (0..WRITERS).map(|_| seeds.next() | 1).collect();

    // Each writer adds its own connections to the shared integrations and
    // activates random ones of them, interleaved with the others.
    let writing = std::sync::atomic::AtomicBool::new(true);
    let (added, reads) = std::thread::scope(|scope| {
        // A reader alongside: it takes no lock, and must never see a torn store.
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let out = connctl(&env)
                    .args(["connection", "list", "-o", "json"])
                    .output()
                    .expect("spawn connctl");
                assert!(
                    out.status.success(),
                    "a reader failed during the writes:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let _: Value = serde_json::from_slice(&out.stdout).expect("JSON");
                reads += 1;
            }
            reads
        });
        let handles: Vec<_> = seeds
            .iter()
            .enumerate()
            .map(|(writer, seed)| {
                let env = &env;
                scope.spawn(move || {
                    let mut rng = Rng(*seed);
                    let mut mine: Vec<(String, String)> = Vec::new();
                    for op in 0..OPS {
                        let args: Vec<String> = if op % 2 == 0 {
                            let name = format!("w{writer}-c{op}");
                            let integration = format!("shared-{}", rng.below(INTEGRATIONS));
                            let mut args: Vec<String> = [
                                "connection",
                                "add",
                                &name,
                                "--integration",
                                &integration,
                                "--env",
                                "test",
                                "--url",
                                &format!("https://w{writer}.example.com/{op}"),
                            ]
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                            if rng.below(3) == 0 {
                                args.push("--activate".into());
                            }
                            mine.push((name, integration));
                            args
                        } else {
                            let (name, _) = &mine[rng.below(mine.len() as u64) as usize];
                            vec!["connection".into(), "activate".into(), name.clone()]
                        };
                        let out = connctl(env).args(&args).output().expect("spawn connctl");
                        assert!(
                            out.status.success(),
                            "writer {writer}, op {op}: connctl {args:?} failed:\n{}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    mine
                })
            })
            .collect();
        let added: Vec<Vec<(String, String)>> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        (added, reader.join().expect("reader thread"))
    });
    eprintln!("{reads} reads during the writes, all of a whole store");

    let list = connections(&env);
    let expected: BTreeMap<String, String> = added.into_iter().flatten().collect();
    assert_eq!(expected.len(), WRITERS * OPS / 2);
    assert_eq!(
        list.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect::<BTreeSet<_>>(),
        "records were lost or invented"
    );
    for (name, integration) in &expected {
        assert_eq!(
            list[name]["integration"],
            Value::String(integration.clone())
        );
    }
    assert_one_active_per_integration(&list);
    // Each integration got activations, so each has exactly one active connection,
    // and `integration list` agrees with the connections.
    let integrations = env.run(&["integration", "list", "-o", "json"]).json();
    for i in integrations.as_array().expect("array") {
        let name = i["name"].as_str().expect("name");
        let active: Vec<&String> = list
            .iter()
            .filter(|(_, c)| c["integration"] == *name && c["active"] == Value::Bool(true))
            .map(|(n, _)| n)
            .collect();
        match active.as_slice() {
            [] => assert_eq!(i["active_connection"], Value::Null, "{name}"),
            [one] => assert_eq!(
                i["active_connection"].as_str(),
                Some(one.as_str()),
                "{name}"
            ),
            more => panic!("{name} has {} active connections", more.len()),
        }
    }
}

/// A valid store of `integrations` integrations with `per` connections
/// each; the first connection of each integration is active.
pub(crate) fn big_store(integrations: usize, per: usize) -> String {
    let mut text =
        String::from("version = 1\nstore_id = \"00000000-0000-4000-8000-00000000c0de\"\n");
    for i in 0..integrations {
        text.push_str(&format!(
            "\n[integration.int-{i:04}]\napplication = \"App {i}\"\ndescription = \"Generated\"\n"
        ));
    }
    for i in 0..integrations {
        for k in 0..per {
            text.push_str(&format!(
                "\n[connection.\"int-{i:04}.c{k}\"]\nintegration = \"int-{i:04}\"\nenvironment = \"test\"\n\
                 active = {}\nendpoint_url = \"https://h{i}.example.com/api/{k}\"\nauthentication = \"basic\"\n\
                 user = \"u{i}\"\npassword = \"env:PW_{i}_{k}\"\n",
                k == 0
            ));
        }
    }
    text
}

/// The temporary files beside the store.
fn temp_files(env: &TestEnv) -> BTreeSet<String> {
    std::fs::read_dir(env.store.parent().expect("folder"))
        .expect("read folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".tmp").then_some(name)
        })
        .collect()
}

#[test]
fn a_writer_killed_at_any_moment_leaves_the_old_or_the_new_store() {
    const KILLS: usize = 100;
    const INTEGRATIONS: usize = 200;
    const PER: usize = 5;
    let env = TestEnv::new();
    write(&env.store, &big_store(INTEGRATIONS, PER));
    let mut rng = Rng::seeded("a_writer_killed_at_any_moment");
    let mut current = connections(&env);
    assert_eq!(current.len(), INTEGRATIONS * PER);

    // How long one activation takes here (debug build, shared cores): the
    // kills spread over a whole run, write and rename included.
    let span_us = (0..3)
        .map(|_| {
            let started = Instant::now();
            let out = connctl(&env)
                .args(["-q", "connection", "activate", "int-0000.c0"])
                .output()
                .expect("spawn");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed().as_micros() as u64
        })
        .min()
        .unwrap_or(20_000)
        .max(20_000);
    let (mut old_states, mut new_states, mut inside_write) = (0, 0, 0);
    for kill in 0..KILLS {
        let target = format!(
            "int-{:04}.c{}",
            rng.below(INTEGRATIONS as u64),
            rng.below(PER as u64)
        );
        let integration = current[&target]["integration"].clone();
        let mut expected_new = current.clone();
        for (name, c) in expected_new.iter_mut() {
            if c["integration"] == integration {
                c["active"] = Value::Bool(*name == target);
            }
        }
        let before = env.store_bytes();
        let temps_before = temp_files(&env);

        let mut child = connctl(&env)
            .args(["-q", "connection", "activate", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        if kill % 2 == 0 {
            // Any moment of the run.
            std::thread::sleep(Duration::from_micros(rng.below(span_us)));
        } else {
            // Inside the write: once the temporary file exists, within 2 ms.
            let give_up = Instant::now() + Duration::from_secs(20);
            while child.try_wait().expect("try_wait").is_none() && Instant::now() < give_up {
                if !temp_files(&env).is_subset(&temps_before) {
                    std::thread::sleep(Duration::from_micros(rng.below(2_000)));
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let _ = child.kill(); // SIGKILL; it may have finished already
        let status = child.wait().expect("wait");
        // A temporary file left behind: killed between creating and renaming it.
        if !temp_files(&env).is_subset(&temps_before) {
            inside_write += 1;
        }

        if env.store_bytes() == before {
            // Byte-identical to a store that loaded: the old state.
            old_states += 1;
            continue;
        }
        let now = connections(&env);
        if now == expected_new {
            new_states += 1;
            current = now;
        } else {
            panic!(
                "kill {kill} ({status}) of `connection activate {target}` left a store that is \
                 neither the old nor the new state"
            );
        }
        assert_one_active_per_integration(&current);
    }
    eprintln!(
        "{KILLS} kills: {old_states} left the old store, {new_states} the new one; \
         {inside_write} landed inside a write (temporary file left behind)"
    );
    // The store still takes writes (the lock died with the killed writers),
    // and the next write clears what they left behind.
    let out = connctl(&env)
        .args(["connection", "activate", "int-0001.c1"])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(temp_files(&env), BTreeSet::new(), "stale temporary files");
}
