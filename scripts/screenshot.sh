#!/usr/bin/env bash
# Renders docs/img/prometheus-kdb-p99.png: Prometheus' graph page showing the p99 of
# kdb_request_duration_seconds by handler, scraped from `make demo`'s synthetic load.
# Needs Debian's chromium (apt-get install chromium) and prometheus. ~90 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "screenshot: apt-get install chromium first" >&2; exit 1; }
tmp=$(mktemp -d)
free_port() { target/venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
demo_port=$(free_port); prom_port=$(free_port)
cleanup() { kill "${demo_pid:-}" "${prom_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
DEMO_PORT=$demo_port DEMO_BIND=127.0.0.1 DEMO_SECONDS=120 target/venv/bin/python tests/host/demo.py >"$tmp/demo.log" 2>&1 &
demo_pid=$!
cat >"$tmp/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: kdb
    static_configs: [{targets: ["127.0.0.1:$demo_port"], labels: {role: demo}}]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prom.log" 2>&1 &
prom_pid=$!
expr='histogram_quantile(0.99, sum by (le, handler) (rate(kdb_request_duration_seconds_bucket[15s])))'
enc=$(target/venv/bin/python -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$expr")
# wait (bounded) until the query has a minute of data
for _ in $(seq 1 120); do
  n=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query_range?query=$enc&start=$(($(date +%s)-60))&end=$(date +%s)&step=1" \
      | target/venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print(min((len(r["values"]) for r in d["data"]["result"]), default=0))' 2>/dev/null || echo 0)
  [ "$n" -ge 50 ] && break
  sleep 1
done
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/chrome" --hide-scrollbars --window-size=1400,800 \
  --virtual-time-budget=8000 --screenshot="$PWD/docs/img/prometheus-kdb-p99.png" \
  "http://127.0.0.1:$prom_port/graph?g0.expr=$enc&g0.tab=0&g0.range_input=2m" 2>"$tmp/chrome.log"
echo "screenshot: docs/img/prometheus-kdb-p99.png"
