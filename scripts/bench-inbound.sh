#!/usr/bin/env bash
# Messages per second `connctl inbound serve` accepts on loopback with TLS,
# client certificates and an fsynced spool, with p50/p99 latency, measured by
# examples/inbound_load.rs (one keep-alive connection per sender).
#
#   scripts/bench-inbound.sh [SENDERS] [MESSAGES_PER_SENDER]    (defaults: 50 200)
#
# The spool lives under target/ (the disk the repository is on), not /tmp,
# which may be a tmpfs where fsync costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
senders=${1:-50}
messages=${2:-200}

cargo build --release --quiet --bin connctl --example inbound_load
bin=target/release/connctl
load=target/release/examples/inbound_load

work=$(mktemp -d "$PWD/target/bench-inbound.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

export CONNCTL_STORE="$work/store.toml"
export BENCH_INBOUND_PW="bench-$RANDOM-$RANDOM"
"$load" --make-pki "$work/pki"
"$bin" -q inbound-user add bench --password-env BENCH_INBOUND_PW
"$bin" -q integration add bench
"$bin" -q connection add bench.test --integration bench --env test \
    --url https://localhost:9/ --inbound-user bench
"$bin" -q connection activate bench.test

"$bin" -q inbound serve --listen 127.0.0.1:0 \
    --tls-cert "$work/pki/server.pem" --tls-key "$work/pki/server-key.pem" \
    --client-ca "$work/pki/ca.pem" --spool "$work/spool" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on' "$work/serve.log" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's|^listening on https://||p' "$work/serve.log" | head -n 1)
[ -n "$addr" ] || { cat "$work/serve.log" >&2; exit 1; }

fs=$(stat -f -c %T "$work")
echo "inbound serve on $addr (TLS 1.3, client certificates, spool fsync on $fs), $(nproc) cores"
for proto in "" "--http2"; do
    INBOUND_PASSWORD="$BENCH_INBOUND_PW" "$load" --addr "$addr" --ca "$work/pki/ca.pem" \
        --cert "$work/pki/client.pem" --key "$work/pki/client-key.pem" --user bench \
        --senders "$senders" --messages "$messages" $proto
done
echo "spool lines: $(wc -l < "$work/spool/messages.jsonl") (expected $((2 * senders * messages)))"
