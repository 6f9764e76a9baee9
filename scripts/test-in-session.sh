#!/usr/bin/env bash
# Runs inside the private D-Bus session that scripts/test.sh starts.
set -euo pipefail
# gnome-keyring reads the login password on stdin and unlocks (creating) the
# default collection with it.
printf '%s' "connctl-test-login" | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
# A session keyring of our own, so keyutils tests can write.
exec keyctl session connctl-tests cargo test --locked "$@"
