#!/usr/bin/env bash
# Outbound benchmark, rerunnable: prints the figures docs/bench-outbound.md and README.md quote.
#  1. `connctl connection send` vs `curl`, the same Basic-auth mTLS POST through
#     the same tinyproxy (MID server), side by side in one hyperfine run.
#     connctl reads its secrets from the keyring; target: median ratio <= 1.0.
#  2. `connctl connection test --all` over 200 connections to loopback TLS
#     endpoints vs a sequential loop of single tests; target: < 3 s and >= 10x.
# Needs: a release build (made here), tinyproxy, curl, openssl, python3,
# hyperfine, and for the keyring dbus + gnome-keyring (as scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tinyproxy curl openssl hyperfine dbus gnome-keyring)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -n "${BENCH_IN_SESSION:-}" ] || cargo build --release --quiet

# The keyring lives in a private session bus, as in the tests. gnome-keyring
# keeps its keyrings under HOME: a fresh one, so the login password below
# creates and unlocks it.
if [ -z "${BENCH_IN_SESSION:-}" ]; then
    export BENCH_IN_SESSION=1
    HOME=$(mktemp -d)
    export HOME XDG_DATA_HOME="$HOME/.local/share" BENCH_HOME="$HOME"
    exec dbus-run-session -- bash -c \
        'printf %s bench-login | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null; exec bash "$0" "$@"' \
        "$0" "$@"
fi

RUNS=${RUNS:-60}
CONNECTIONS=${CONNECTIONS:-200}
SERVERS=${SERVERS:-4}
connctl="$PWD/target/release/connctl"

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work" "${BENCH_HOME:-}"
}
trap cleanup EXIT
export CONNCTL_STORE="$work/store.toml" NO_COLOR=1
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy

# --- a private PKI ------------------------------------------------------
cd "$work"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 7 -subj "/CN=bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name cn extensions
    openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%b' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
issue client bench-client "extendedKeyUsage=clientAuth"

# --- servers: mTLS with Basic auth, and plain TLS, both thread-per-connection --
cat > server.py <<'PY'
import base64, http.server, socket, socketserver, ssl, sys
port_file, cert, key, ca, mode = sys.argv[1:6]
expected = "Basic " + base64.b64encode(b"svc:svcpass").decode()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
if mode == "mtls":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body):
        # One write: a status line and headers apart from the body would meet
        # Nagle and delayed ACKs (40 ms per request for any client).
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
            status, self.responses[status][0], len(body))
        self.wfile.write(head.encode() + body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = mode != "mtls" or self.headers.get("Authorization") == expected
        self.reply(201 if ok else 401, b'{"result":"created"}' if ok else b'{"error":"auth"}')
    def do_GET(self):
        self.reply(200, b'{"result":"ok"}')
    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    def process_request_thread(self, request, client_address):
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = ctx.wrap_socket(request, server_side=True)
        except Exception:
            self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)

server = Server(("127.0.0.1", 0), Handler)
with open(port_file, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
python3 server.py mtls.port server.pem server.key ca.pem mtls & pids+=($!)
# The many-connection figure spreads its endpoints over a few server processes,
# as real connections reach different remote systems.
for k in $(seq "$SERVERS"); do
    python3 server.py "tls$k.port" server.pem server.key ca.pem tls & pids+=($!)
done

mkdir -p proxy && chmod 777 proxy
proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > proxy/tinyproxy.conf <<EOF
Port $proxy_port
Listen 127.0.0.1
Timeout 30
LogFile "$work/proxy/tinyproxy.log"
LogLevel Connect
MaxClients 100
BasicAuth mid midpass
PidFile "$work/proxy/tinyproxy.pid"
EOF
tinyproxy -d -c proxy/tinyproxy.conf >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do
    [ -s mtls.port ] && [ -s "tls$SERVERS.port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
    sleep 0.05
done
mtls_port=$(cat mtls.port)
tls_ports=()
for k in $(seq "$SERVERS"); do tls_ports+=("$(cat "tls$k.port")"); done

# --- the store: secrets in the keyring ----------------------------------
"$connctl" -q integration add bench
source_note="keyring"
if ! printf '%s' midpass | "$connctl" -q mid-server add mid --url "http://127.0.0.1:$proxy_port" --user mid --password-stdin 2>err.txt; then
    echo "bench: the keyring is not usable here ($(head -1 err.txt)); using env sources instead" >&2
    source_note="env (keyring unavailable)"
    export BENCH_MID_PW=midpass BENCH_SVC_PW=svcpass
    "$connctl" -q mid-server add mid --url "http://127.0.0.1:$proxy_port" --user mid --password-env BENCH_MID_PW
fi
"$connctl" -q protocol-profile add mtls --client-cert client.pem --client-key client.key
conn_args=(connection add bench.send --integration bench --env test --url "https://localhost:$mtls_port/api/incident"
    --auth basic --user svc --mutual-auth --protocol-profile mtls --mid-server mid --ca-bundle ca.pem)
if [ "$source_note" = keyring ]; then
    printf '%s' svcpass | "$connctl" -q "${conn_args[@]}" --password-stdin
else
    "$connctl" -q "${conn_args[@]}" --password-env BENCH_SVC_PW
fi
printf '{"short_description":"benchmark event","urgency":2,"payload":"%s"}' "$(head -c 600 /dev/zero | tr '\0' x)" > body.json

# Both must succeed, through the proxy, before timing them.
"$connctl" connection send bench.send -d @body.json >/dev/null
curl_cmd="curl -sS --fail -o /dev/null --proxy http://127.0.0.1:$proxy_port --proxy-user mid:midpass --cacert ca.pem --cert client.pem --key client.key -u svc:svcpass -H Content-Type:application/json --data-binary @body.json https://localhost:$mtls_port/api/incident"
$curl_cmd
tunnels=$(grep -c "CONNECT localhost:$mtls_port" proxy/tinyproxy.log || true)
[ "$tunnels" -ge 2 ] || { echo "bench: the proxy log shows $tunnels tunnels, expected 2" >&2; exit 1; }

echo "== where a connctl exchange spends its time (one connection test)"
"$connctl" connection test bench.send
"$connctl" connection test bench.send

echo "== send: connctl vs curl (Basic auth + mTLS POST through tinyproxy; connctl secrets: $source_note)"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json send.json \
    -n connctl "$connctl connection send bench.send -d @body.json" \
    -n curl "$curl_cmd"
python3 - send.json <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c, k = r["connctl"]["median"], r["curl"]["median"]
print(f"send median: connctl {c*1000:.1f} ms, curl {k*1000:.1f} ms, ratio {c/k:.2f} (target <= 1.0)")
PY

# --- connection test --all over many loopback TLS endpoints ----------------
for i in $(seq -w 1 "$CONNECTIONS"); do
    "$connctl" -q connection add "t$i" --integration bench --env test \
        --url "https://localhost:${tls_ports[$((10#$i % SERVERS))]}/health/$i" --ca-bundle ca.pem
done
cat > loop.sh <<EOF
for i in \$(seq -w 1 $CONNECTIONS); do "$connctl" connection test "t\$i" >/dev/null || exit 1; done
EOF
# Only the t* connections: the mTLS one goes through the proxy and is not part of this figure.
"$connctl" -q connection remove bench.send
echo "== connection test --all over $CONNECTIONS connections ($SERVERS TLS servers) vs a sequential loop"
hyperfine -N --warmup 1 --runs 5 --export-json all.json \
    -n "test --all" "$connctl connection test --all" \
    -n "sequential loop" "bash loop.sh"
python3 - all.json <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
a, s = r["test --all"]["median"], r["sequential loop"]["median"]
print(f"test --all median: {a:.2f} s (target < 3 s); sequential loop {s:.2f} s; speed-up {s/a:.1f}x (target >= 10x)")
PY
