#!/usr/bin/env bash
# Runs inside the private D-Bus session that scripts/test.sh starts.
set -euo pipefail
# gnome-keyring reads the login password on stdin and unlocks (creating) the
# default collection with it.
# Its keyring files go to a folder of this run's own: runs at the same time
# (other worktrees) must not share and rewrite one login keyring file.
keyring_data="$(mktemp -d "${TMPDIR:-/tmp}/connctl-test-keyring.XXXXXX")"
printf '%s' "connctl-test-login" |
    XDG_DATA_HOME="$keyring_data" gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
# A session keyring of our own, so keyutils tests can write.
exec keyctl session connctl-tests cargo test --locked "$@"
