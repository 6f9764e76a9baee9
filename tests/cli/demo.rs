//! `connctl demo` from a clean HOME: it passes and leaves nothing behind.

use crate::support::TestEnv;

#[test]
fn demo_runs_the_main_job_and_cleans_up() {
    let env = TestEnv::new();
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = env.cmd().arg("demo").env("TMPDIR", &tmp).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // It teaches the commands it runs, secrets never on the command line.
    for command in [
        "$ connctl inbound serve --listen 127.0.0.1:0",
        "$ connctl connection activate orders.test",
        "$ connctl connection test orders.test",
        "$ connctl connection send orders.test",
        "$ connctl inbound check partner.orders",
        "$ connctl connection activate orders.prod",
    ] {
        assert!(
            stdout.contains(command),
            "missing `{command}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("keyring works") || stdout.contains("keyring is not usable"),
        "{stdout}"
    );
    // The staged test, the message as received, and the switch to production.
    assert!(
        stdout.contains("tls") && stdout.contains("client certificate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"body\": \"{\\\"order\\\":\\\"A-1001\\\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"environment\": \"production\""),
        "{stdout}"
    );
    assert!(stdout.contains("connection=orders.prod"), "{stdout}");
    // The diff of the two connections: only expected differences.
    assert!(
        stdout.contains("'orders.test' and 'orders.prod': nothing differs unexpectedly"),
        "{stdout}"
    );

    // Nothing left behind: the temp folder is empty, the user's store untouched.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!env.store.exists());
}
