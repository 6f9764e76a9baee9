#!/usr/bin/env bash
# Monitor benchmark, rerunnable: `connctl monitor` over N connections (default
# 1,000) to loopback TLS endpoints (nginx) at a 15 s interval. Prints the wall
# time of a probe cycle (connctl_cycle_duration_seconds), the CPU time per
# cycle (utime+stime from /proc over CYCLES cycles) and the steady RSS.
# Targets: a cycle under 2 s of wall time, RSS under 100 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
N=${CONNECTIONS:-1000}; CYCLES=${CYCLES:-4}; INTERVAL=${INTERVAL:-15}
connctl="$PWD/target/release/connctl"
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
# A CA and a leaf (webpki refuses a self-signed certificate as its own root).
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj "/CN=bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.pem 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > nginx.conf <<NGX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    location / { return 200 '{"result":"ok"}'; }
  }
}
NGX
nginx -c "$work/nginx.conf" -p "$work"
python3 - "$N" "$port" "$work" > store.toml <<'PY'
import sys, uuid
n, port, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f'version = 1\nstore_id = "{uuid.uuid4()}"\n')
m = max(1, n // 5)
for j in range(m):
    print(f"[integration.int-{j:05}]\n")
for i in sorted(range(n), key=lambda i: f"conn-{i:06}"):
    print(f'[connection."conn-{i:06}"]\nintegration = "int-{i % m:05}"\nenvironment = "test"\n'
          f'active = {"true" if i < m else "false"}\nendpoint_url = "https://localhost:{port}/health/{i}"\n'
          f'ca_bundle = "{work}/ca.pem"\nauthentication = "none"\n')
PY
export CONNCTL_STORE="$work/store.toml" NO_COLOR=1
"$connctl" monitor --listen 127.0.0.1:0 --interval "${INTERVAL}s" --jobs 32 2> monitor.err & pids+=($!)
mpid=$!
until grep -q "listening on" monitor.err; do sleep 0.1; done
mport=$(sed -n 's|listening on http://127.0.0.1:\([0-9]*\)/metrics|\1|p' monitor.err)
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1==m {print $2}'; }
cycles() { curl -s "http://127.0.0.1:$mport/healthz" | awk '{print $2}'; }
ticks() { awk '{print $14+$15}' "/proc/$mpid/stat"; }
# Warm-up: the first cycle (the store load and the first handshakes).
until [ "$(cycles)" -ge 1 ]; do sleep 0.2; done
start_cycles=$(cycles); start_ticks=$(ticks)
until [ "$(cycles)" -ge $((start_cycles + CYCLES)) ]; do sleep 0.5; done
end_ticks=$(ticks); hz=$(getconf CLK_TCK)
echo "connections: $N, interval ${INTERVAL}s, cycles measured: $CYCLES, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "passing: $(curl -s "http://127.0.0.1:$mport/metrics" | grep -c '^connctl_probe_success{.*} 1')"
echo "last cycle wall time: $(metric connctl_cycle_duration_seconds) s (target < 2 s)"
python3 -c "print(f'CPU per cycle: {($end_ticks-$start_ticks)/$hz/$CYCLES:.2f} s')"
echo "steady RSS: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$mpid/status), peak $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$mpid/status) (target < 100 MB)"
