//! Shell completion through real shells (bash, zsh, fish) loading the
//! checked-in scripts, the freshness of completions/ and man/, and man pages
//! rendering without warnings.

use std::path::{Path, PathBuf};
use std::process::Command;

use connctl::cli::generate::{REGENERATE, check_generated};

use crate::support::{TestEnv, write};

const ENVIRONMENTS: [&str; 5] = [
    "production",
    "pre-production",
    "test",
    "development",
    "sandbox",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script(file: &str) -> PathBuf {
    repo().join("completions").join(file)
}

/// A program run like TestEnv runs connctl (cleared environment, the test's
/// HOME and store), with the connctl under test first on PATH: the
/// completion scripts call `connctl` back by name.
fn program(env: &TestEnv, name: &str) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_connctl"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let mut path = vec![bin_dir];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut cmd = Command::new(name);
    cmd.env_clear()
        .env("PATH", std::env::join_paths(path).expect("PATH"))
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", env.home.join(".config"))
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path());
    if let Ok(lang) = std::env::var("LANG") {
        cmd.env("LANG", lang);
    }
    cmd
}

/// Runs a shell and returns its stdout lines; any stderr or a failure fails
/// the test (completion must never be noisy).
#[track_caller]
fn lines(mut cmd: Command) -> Vec<String> {
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (is it installed? see scripts/test.sh): {e}")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "{cmd:?} failed ({})\nstderr:\n{stderr}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// What bash offers for `line` with the cursor at its end: sources
/// completions/connctl.bash, finds the function it registered for connctl,
/// and calls it as readline does. COMP_WORDS is split as bash splits it: at
/// blanks, and around runs of the COMP_WORDBREAKS characters `=` and `:`
/// (`--store=/x` is `--store` `=` `/x`); `$2` is the text after the last break.
fn bash(env: &TestEnv, line: &str) -> Vec<String> {
    const DRIVER: &str = r#"
source "$1" || exit 1
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
cur=$3
shift 3
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
COMP_KEY=9
spec=$(complete -p connctl) || exit 1
fn=${spec##* -F }
fn=${fn%% *}
"$fn" connctl "$cur" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut words: Vec<String> = Vec::new();
    for blank_word in line.split(' ') {
        let mut piece = String::new();
        let mut in_breaks = false;
        let mut first = true;
        for c in blank_word.chars() {
            let is_break = c == '=' || c == ':';
            if !first && is_break != in_breaks {
                words.push(std::mem::take(&mut piece));
            }
            piece.push(c);
            in_breaks = is_break;
            first = false;
        }
        words.push(piece);
    }
    let last = words.last().cloned().unwrap_or_default();
    let cur = if !last.is_empty() && last.chars().all(|c| c == '=' || c == ':') {
        String::new()
    } else {
        last
    };
    let mut cmd = program(env, "bash");
    cmd.args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
        .arg(script("connctl.bash"))
        .arg(line)
        .arg(cur)
        .args(&words);
    lines(cmd).into_iter().filter(|l| !l.is_empty()).collect()
}

/// What zsh's completion system offers for `line`<TAB> with
/// completions/_connctl loaded: tests/cli/zsh_capture.zsh runs an
/// interactive zsh on a pseudo-terminal with compinit and records the
/// matches. `timeout` only keeps a broken script from hanging the suite.
fn zsh(env: &TestEnv, line: &str) -> Vec<String> {
    zsh_loading(env, &script("_connctl"), line)
}

/// The same with `load` (a script to source, or a folder to put on fpath).
fn zsh_loading(env: &TestEnv, load: &Path, line: &str) -> Vec<String> {
    let mut cmd = program(env, "timeout");
    cmd.args(["120", "zsh", "-f"])
        .arg(repo().join("tests/cli/zsh_capture.zsh"))
        .arg(load)
        .arg(line);
    lines(cmd)
}

/// What fish offers: sources completions/connctl.fish and asks fish itself
/// (`complete --do-complete`).
fn fish(env: &TestEnv, line: &str) -> Vec<String> {
    let mut cmd = program(env, "fish");
    cmd.args([
        "--no-config",
        "-c",
        "source $argv[1]; and complete --do-complete $argv[2]",
    ])
    .arg(script("connctl.fish"))
    .arg(line);
    lines(cmd)
        .into_iter()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

/// A store with one integration and two connections.
fn store_with_connections() -> TestEnv {
    let env = TestEnv::new();
    env.ok(&[
        "integration",
        "add",
        "incident-sync",
        "--application",
        "ITSM",
    ]);
    for (name, environment) in [
        ("incident-sync.test", "test"),
        ("incident-sync.prod", "production"),
    ] {
        env.ok(&[
            "connection",
            "add",
            name,
            "--integration",
            "incident-sync",
            "--env",
            environment,
            "--url",
            "https://api.example.com/incident",
        ]);
    }
    env
}

fn add_connection(env: &TestEnv, name: &str) {
    env.ok(&[
        "connection",
        "add",
        name,
        "--integration",
        "incident-sync",
        "--env",
        "sandbox",
        "--url",
        "https://sandbox.example.com/incident",
    ]);
}

#[track_caller]
fn assert_offers(offered: &[String], expected: &[&str]) {
    for name in expected {
        assert!(
            offered.iter().any(|o| o == name),
            "{name} is not offered; offered: {offered:?}"
        );
    }
}

fn without_flags(offered: Vec<String>) -> Vec<String> {
    offered
        .into_iter()
        .filter(|o| !o.starts_with('-'))
        .collect()
}

// ----- bash --------------------------------------------------------------

#[test]
fn bash_completes_subcommands() {
    let env = TestEnv::new();
    assert_eq!(bash(&env, "connctl conn"), ["connection"]);
    assert_offers(
        &bash(&env, "connctl "),
        &["integration", "connection", "oauth-profile", "completions"],
    );
    assert_eq!(
        bash(&env, "connctl connection a"),
        ["add", "activate"],
        "subcommands of connection starting with a"
    );
}

#[test]
fn bash_completes_flags_everywhere() {
    let env = TestEnv::new();
    assert_eq!(bash(&env, "connctl connection add --mid"), ["--mid-server"]);
    assert_offers(
        &bash(&env, "connctl connection send --"),
        &["--integration", "--data", "--store", "--yes", "--help"],
    );
    assert_offers(
        &bash(&env, "connctl oauth-profile add --client-secret-"),
        &["--client-secret-stdin", "--client-secret-env"],
    );
}

#[test]
fn bash_completes_connection_names_from_the_store_including_a_new_one() {
    let env = store_with_connections();
    let offered = without_flags(bash(&env, "connctl connection activate "));
    assert_eq!(offered, ["incident-sync.prod", "incident-sync.test"]);

    add_connection(&env, "incident-sync.sandbox");
    let offered = without_flags(bash(&env, "connctl connection activate "));
    assert_eq!(
        offered,
        [
            "incident-sync.prod",
            "incident-sync.sandbox",
            "incident-sync.test"
        ],
        "a connection added a moment ago completes"
    );
    assert_eq!(
        bash(&env, "connctl connection activate incident-sync.s"),
        ["incident-sync.sandbox"]
    );
}

#[test]
fn bash_completes_environments() {
    let env = TestEnv::new();
    assert_eq!(bash(&env, "connctl connection list --env "), ENVIRONMENTS);
    assert_eq!(
        bash(&env, "connctl connection add x --env pre"),
        ["pre-production"]
    );
    // bash hands `--env=` over in pieces; candidates replace only what follows `=`.
    assert_eq!(bash(&env, "connctl connection list --env="), ENVIRONMENTS);
    assert_eq!(bash(&env, "connctl connection list --env=sa"), ["sandbox"]);
}

#[test]
fn bash_completes_every_kind_of_record_name() {
    let env = store_with_connections();
    env.ok(&[
        "mid-server",
        "add",
        "dmz-mid",
        "--url",
        "http://127.0.0.1:3128",
    ]);
    env.ok(&[
        "oauth-profile",
        "add",
        "corp-idp",
        "--token-url",
        "https://idp.example.com/token",
        "--client-id",
        "connctl",
        "--client-secret-env",
        "IDP_SECRET",
    ]);
    env.ok(&[
        "inbound-user",
        "add",
        "remote.incident",
        "--password-env",
        "REMOTE_PW",
    ]);
    // The records that need no keyring and no readable PEM go in through the CLI;
    // a protocol profile is written straight into the store.
    let mut store = env.store_text();
    store.push_str(
        "\n[protocol_profile.corp-mtls]\nclient_cert = \"/nonexistent/c.pem\"\nclient_key = \"/nonexistent/k.pem\"\n",
    );
    write(&env.store, &store);

    assert_eq!(
        bash(&env, "connctl connection add x --integration "),
        ["incident-sync"]
    );
    assert_eq!(
        bash(&env, "connctl connection edit x --mid-server "),
        ["dmz-mid"]
    );
    assert_eq!(
        bash(&env, "connctl connection add x --oauth-profile "),
        ["corp-idp"]
    );
    assert_eq!(
        bash(&env, "connctl connection add x --protocol-profile "),
        ["corp-mtls"]
    );
    assert_eq!(
        bash(&env, "connctl connection add x --inbound-user "),
        ["remote.incident"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl inbound-user set-password ")),
        ["remote.incident"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl inbound check ")),
        ["remote.incident"]
    );
    assert_eq!(
        bash(
            &env,
            "connctl integration activate incident-sync --connection incident-sync.t"
        ),
        ["incident-sync.test"]
    );
    env.ok(&["integration", "add", "other-sync"]);
    env.ok(&[
        "connection",
        "add",
        "other-sync.test",
        "--integration",
        "other-sync",
        "--env",
        "test",
        "--url",
        "https://other.example.com/",
    ]);
    assert_eq!(
        bash(
            &env,
            "connctl integration activate other-sync --connection "
        ),
        ["other-sync.test"],
        "only the connections of the integration being activated"
    );
    assert_eq!(
        bash(&env, "connctl integration activate --connection "),
        [
            "incident-sync.prod",
            "incident-sync.test",
            "other-sync.test"
        ]
    );
    assert_eq!(
        bash(&env, "connctl connection send --integration "),
        ["incident-sync", "other-sync"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl connection test ")),
        [
            "incident-sync.prod",
            "incident-sync.test",
            "other-sync.test"
        ]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl oauth-profile token ")),
        ["corp-idp"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl protocol-profile show ")),
        ["corp-mtls"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl mid-server remove ")),
        ["dmz-mid"]
    );
    assert_eq!(
        without_flags(bash(&env, "connctl integration show ")),
        ["incident-sync", "other-sync"]
    );
    // Names are only offered where a record is named, not for a new one.
    assert_eq!(
        without_flags(bash(&env, "connctl connection add ")),
        Vec::<String>::new()
    );
}

#[test]
fn bash_reads_the_store_named_on_the_command_line() {
    let env = store_with_connections();
    let other = TestEnv::new();
    other.ok(&["integration", "add", "other-sync"]);
    let other_store = other.store.to_string_lossy().into_owned();

    for line in [
        format!("connctl --store {other_store} integration show "),
        format!("connctl integration show --store={other_store} "),
        format!("connctl --store={other_store} integration show other"),
    ] {
        assert_eq!(without_flags(bash(&env, &line)), ["other-sync"], "{line}");
    }
    assert_eq!(
        without_flags(bash(&env, "connctl integration show ")),
        ["incident-sync"],
        "without --store, CONNCTL_STORE"
    );
}

#[test]
fn bash_files_complete_as_files() {
    let env = TestEnv::new();
    write(&env.path("event.json"), "{}");
    let offered = bash(&env, "connctl import ev");
    assert_eq!(offered, ["event.json"]);
    assert_eq!(
        bash(&env, "connctl connection send x -d @ev"),
        ["@event.json"]
    );
}

#[test]
fn a_broken_store_offers_no_names_and_stays_quiet() {
    let env = TestEnv::new();
    write(&env.store, "version = 1\n[connection.broken\n");
    // `lines` fails the test on any stderr output or failure.
    let offered = bash(&env, "connctl connection activate ");
    assert_eq!(without_flags(offered.clone()), Vec::<String>::new());
    assert_offers(&offered, &["--help"]);
    assert_eq!(bash(&env, "connctl conn"), ["connection"]);

    // A folder where the store should be, and a missing store: the same.
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.store).expect("mkdir");
    assert_eq!(
        without_flags(bash(&env, "connctl connection show ")),
        Vec::<String>::new()
    );
}

// ----- zsh and fish ------------------------------------------------------

#[test]
fn zsh_completes_subcommands_names_and_environments() {
    let env = store_with_connections();
    assert_eq!(zsh(&env, "connctl conn"), ["connection"]);
    assert_eq!(zsh(&env, "connctl connection list --env "), ENVIRONMENTS);
    assert_eq!(
        zsh(&env, "connctl connection list --env=s"),
        ["--env=sandbox"]
    );
    add_connection(&env, "incident-sync.sandbox");
    assert_eq!(
        without_flags(zsh(&env, "connctl connection activate ")),
        [
            "incident-sync.prod",
            "incident-sync.sandbox",
            "incident-sync.test"
        ]
    );
}

#[test]
fn zsh_completes_from_the_first_tab_when_installed_on_fpath() {
    let env = store_with_connections();
    let folder = repo().join("completions");
    assert_eq!(zsh_loading(&env, &folder, "connctl conn"), ["connection"]);
    assert_eq!(
        without_flags(zsh_loading(&env, &folder, "connctl connection show ")),
        ["incident-sync.prod", "incident-sync.test"]
    );
}

#[test]
fn fish_completes_subcommands_names_and_environments() {
    let env = store_with_connections();
    assert_eq!(fish(&env, "connctl conn"), ["connection"]);
    assert_eq!(fish(&env, "connctl connection list --env "), ENVIRONMENTS);
    add_connection(&env, "incident-sync.sandbox");
    assert_eq!(
        without_flags(fish(&env, "connctl connection activate ")),
        [
            "incident-sync.prod",
            "incident-sync.sandbox",
            "incident-sync.test"
        ]
    );
    assert_eq!(
        fish(&env, "connctl connection add x --mid"),
        ["--mid-server"]
    );
}

// ----- the scripts and the generated files ---------------------------------

#[test]
fn completions_command_prints_the_checked_in_scripts() {
    let env = TestEnv::new();
    for (shell, file) in [
        ("bash", "connctl.bash"),
        ("zsh", "_connctl"),
        ("fish", "connctl.fish"),
        ("powershell", "connctl.ps1"),
        ("elvish", "connctl.elv"),
    ] {
        let checked_in = std::fs::read_to_string(script(file)).expect("checked-in script");
        assert_eq!(env.ok(&["completions", shell]), checked_in, "{shell}");

        // `COMPLETE=SHELL connctl`, run from PATH, prints the same registration.
        let mut cmd = program(&env, "connctl");
        cmd.env("COMPLETE", shell);
        let output = cmd.output().expect("run connctl");
        assert!(output.status.success(), "COMPLETE={shell} connctl failed");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            checked_in,
            "COMPLETE={shell}"
        );
    }
    env.fails(&["completions", "tcsh"], 2);
}

#[test]
fn generated_files_are_fresh() {
    let problems = check_generated(repo()).expect("generate");
    assert!(
        problems.is_empty(),
        "completions/ and man/ do not match the command definitions:\n  {}\n\
         Regenerate them with `{REGENERATE}` and commit the result.",
        problems.join("\n  ")
    );
}

#[test]
fn man_pages_exist_for_every_command_and_render_without_warnings() {
    let man_dir = repo().join("man");
    for page in [
        "connctl.1",
        "connctl-connection.1",
        "connctl-connection-send.1",
        "connctl-inbound-user-set-password.1",
        "connctl-completions.1",
    ] {
        assert!(man_dir.join(page).is_file(), "man/{page} is missing");
    }
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&man_dir)
        .expect("man/")
        .map(|e| e.expect("entry").path())
        .collect();
    pages.sort();
    assert!(pages.len() > 40, "only {} man pages", pages.len());
    for page in &pages {
        let output = Command::new("man")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MANWIDTH", "80")
            .env("LANG", "C.UTF-8")
            .args(["--warnings", "-l"])
            .arg(page)
            .output()
            .expect("run man (man-db, see scripts/test.sh)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty(),
            "man --warnings -l {}: {}\n{stderr}",
            page.display(),
            output.status
        );
        assert!(
            !output.stdout.is_empty(),
            "{} renders empty",
            page.display()
        );
    }
}

#[test]
fn top_man_page_has_exit_status_and_environment() {
    let output = Command::new("man")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MANWIDTH", "80")
        .env("LANG", "C.UTF-8")
        .args(["-l"])
        .arg(repo().join("man/connctl.1"))
        .output()
        .expect("run man");
    // man justifies lines: which gaps get a second space depends on the lines
    // above, so the words are compared with single spaces.
    let text = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "EXIT STATUS",
        "not found: a named record does not exist",
        "authentication: 401/403",
        "ENVIRONMENT",
        "CONNCTL_STORE",
        "CONNCTL_OUTPUT",
        "NO_COLOR",
        "connctl-connection(1)",
    ] {
        assert!(
            text.contains(expected),
            "man connctl lacks {expected:?}:\n{text}"
        );
    }
}

/// Every command path (`["connection", "add"]`, ...), from the clap definitions.
fn command_paths() -> Vec<Vec<String>> {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            walk(sub, &path, out);
            out.push(path);
        }
    }
    let mut out = vec![Vec::new()];
    walk(&connctl::cli::Cli::command(), &[], &mut out);
    out
}

#[test]
fn help_examples_are_whole_commands_that_fit_100_columns() {
    let env = TestEnv::new();
    for path in command_paths() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = env.ok(&args);
        let mut in_examples = false;
        let mut continued = false;
        for line in help.lines() {
            if line.starts_with("Example") || line.starts_with("Getting started") {
                in_examples = true;
                continue;
            }
            if !line.starts_with(' ') {
                in_examples = false;
            }
            if in_examples && !line.is_empty() {
                // A line is a new command or continues one that ended in `\`;
                // clap wrapping a long example would break copy and paste.
                let starts_command = line.starts_with("  ") && !line.starts_with("   ");
                assert!(
                    starts_command || continued,
                    "connctl {args:?}: example line wrapped or not a command:\n{line}\n\n{help}"
                );
                continued = line.ends_with('\\');
            }
            assert!(
                line.chars().count() <= 100,
                "connctl {args:?}: line over 100 columns:\n{line}"
            );
        }
    }
}
