#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages), then runs
# `cargo test` inside a private D-Bus session with an unlocked gnome-keyring
# (the Secret Service) and a session keyring of its own (kernel keyutils).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(dbus gnome-keyring libsecret-tools keyutils tinyproxy curl openssl zsh fish man-db)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The OAuth tests' authorization server: panva's oidc-provider, pinned by
# tests/oidc/package-lock.json (needs Node.js 20 or later).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test.sh: installing nodejs npm" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ]; then
    echo "test.sh: npm ci --prefix tests/oidc (oidc-provider)" >&2
    npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >&2
fi

exec dbus-run-session -- bash scripts/test-in-session.sh "$@"
