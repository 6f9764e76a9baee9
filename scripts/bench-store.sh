#!/usr/bin/env bash
# Store benchmark: builds connctl in release mode, generates stores of 1,000
# and 10,000 connections (2,000 integrations), and measures with hyperfine
# the median of `connection list -o json`, `connection show NAME` and
# `connection activate NAME`, and the peak memory (max RSS, /usr/bin/time -v)
# of each. Prints a Markdown table; docs/bench-store.md holds the last figures.
#
# usage: scripts/bench-store.sh [RUNS]     (default 20 timed runs per command)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench-store.sh: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --quiet
bin="$PWD/target/release/connctl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

median_ms() { # hyperfine JSON -> "median ms | mean user+sys CPU ms"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ms | %.1f ms" % (r["median"]*1000, (r["user"]+r["system"])*1000))' "$1"
}
max_rss_mb() { # runs the command once under /usr/bin/time -v -> max RSS in MB
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {printf "%.1f", $2/1024}'
}

echo "connctl $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| connections | store size | command | median (wall) | CPU user+sys | max RSS |"
echo "|---:|---:|---|---:|---:|---:|"
for n in 1000 10000; do
    store="$work/store-$n.toml"
    python3 scripts/gen-store.py "$n" 2000 "$store"
    size="$(du -k "$store" | cut -f1) KiB"
    # conn-000001 is already the active connection of int-00001: each
    # activation still rewrites the whole store (a new last_activated stamp).
    name="conn-000001"
    declare -A cmds=(
        ["connection list -o json"]="$bin --store $store connection list -o json"
        ["connection show $name"]="$bin --store $store connection show $name"
        ["connection activate $name"]="$bin --store $store -q connection activate $name"
    )
    for label in "connection list -o json" "connection show $name" "connection activate $name"; do
        hyperfine -N --warmup 3 --runs "$runs" --style none --export-json "$work/h.json" \
            --output null "${cmds[$label]}" >/dev/null 2>&1
        # shellcheck disable=SC2086
        rss="$(max_rss_mb ${cmds[$label]})"
        printf '| %s | %s | `%s` | %s | %s MB |\n' "$n" "$size" "$label" "$(median_ms "$work/h.json")" "$rss"
    done
    unset cmds
done
