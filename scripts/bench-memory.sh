#!/usr/bin/env bash
# Memory benchmark, rerunnable: peak RSS of `connctl connection send` while it
# streams a large body to stdout, from real nginx over HTTP/1.1 (plain) and
# HTTP/2 (TLS), next to the same send of a 1 MiB body. Target: under 30 MB
# for 1 GiB, i.e. memory independent of the body's size.
#   SIZE_MB=1024 (default) sets the large body; RUNS=3 repeats each send.
# Peak RSS is the kernel's ru_maxrss of the finished process (what
# `/usr/bin/time -v` prints as "Maximum resident set size").
# Needs: a release build (made here unless CONNCTL names a binary), nginx,
# openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nginx openssl)
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

# CONNCTL=target/debug/connctl measures another build (then nothing is built).
if [ -n "${CONNCTL:-}" ]; then
    connctl="$(realpath "$CONNCTL")"
else
    cargo build --release --quiet
    connctl="$PWD/target/release/connctl"
fi
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}

work=$(mktemp -d)
chmod 755 "$work"
nginx_pid=""
cleanup() {
    [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export CONNCTL_STORE="$work/store.toml" NO_COLOR=1 HOME="$work/home"
mkdir -p "$HOME"
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy

# --- a private CA and a server certificate for localhost ----------------
cd "$work"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 7 -subj "/CN=bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
    -extfile server.ext -out server.pem 2>/dev/null

# --- nginx serving a sparse file of SIZE_MB and one of 1 MiB --------------
mkdir -p www
truncate -s "${SIZE_MB}M" www/large.bin
truncate -s 1M www/small.bin
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
h1_port=$(free_port)
h2_port=$(free_port)
user=""; [ "$(id -u)" -ne 0 ] || user="user root;"
cat > nginx.conf <<EOF
$user
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/t-body; proxy_temp_path $work/t-proxy;
    fastcgi_temp_path $work/t-fcgi; uwsgi_temp_path $work/t-uwsgi; scgi_temp_path $work/t-scgi;
    default_type application/octet-stream;
    sendfile on;
    server { listen 127.0.0.1:$h1_port; root $work/www; }
    server {
        listen 127.0.0.1:$h2_port ssl http2;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        root $work/www;
    }
}
EOF
nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf" & nginx_pid=$!
for port in "$h1_port" "$h2_port"; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

cat > store.toml <<EOF
version = 1
store_id = "6e2c5b3a-0000-4000-8000-0000000be4c4"

[integration.bench]

[connection.h1-large]
integration = "bench"
environment = "test"
endpoint_url = "http://127.0.0.1:$h1_port/large.bin"

[connection.h1-small]
integration = "bench"
environment = "test"
endpoint_url = "http://127.0.0.1:$h1_port/small.bin"

[connection.h2-large]
integration = "bench"
environment = "test"
endpoint_url = "https://localhost:$h2_port/large.bin"
ca_bundle = "$work/ca.pem"

[connection.h2-small]
integration = "bench"
environment = "test"
endpoint_url = "https://localhost:$h2_port/small.bin"
ca_bundle = "$work/ca.pem"
EOF

# One send with stdout to /dev/null: prints peak RSS (MB), seconds, bytes.
cat > measure.py <<'PY'
import os, resource, subprocess, sys, time
connctl, name = sys.argv[1:3]
started = time.monotonic()
with open(os.devnull, "wb") as null:
    proc = subprocess.run([connctl, "connection", "send", name, "--timeout", "600"],
                          stdout=null, stderr=subprocess.PIPE)
took = time.monotonic() - started
if proc.returncode != 0:
    sys.exit("connctl failed (%d): %s" % (proc.returncode, proc.stderr.decode()))
# "GET ... → 200 OK in N ms (BYTES bytes)"
written = proc.stderr.decode().rsplit("(", 1)[-1].split()[0]
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("%.1f %.2f %s" % (peak_kb / 1024, took, written))
PY

printf '%-10s %-10s %12s %14s %10s %12s\n' transport body bytes "peak RSS (MB)" seconds "MB/s"
for transport in h1 h2; do
    for size in small large; do
        peak_max=0; best=""
        for _ in $(seq "$RUNS"); do
            read -r peak secs bytes < <(python3 measure.py "$connctl" "$transport-$size")
            # Highest peak over the runs (the honest figure), fastest time.
            peak_max=$(python3 -c "print(max($peak_max, $peak))")
            if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $secs < $best else 1)"; then best=$secs; fi
        done
        label=$([ "$transport" = h1 ] && echo "HTTP/1.1" || echo "HTTP/2+TLS")
        mbs=$(python3 -c "print(round($bytes / 1048576 / $best, 1))")
        printf '%-10s %-10s %12s %14s %10s %12s\n' "$label" "$size" "$bytes" "$peak_max" "$best" "$mbs"
    done
done
