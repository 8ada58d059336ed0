#!/usr/bin/env bash
# make fleet-bench: what one device-poll costs the whole system. rtusim
# serves N devices (default 1000) of 12 FLOAT32 input registers each
# (testdata/bench/rtu12.yaml), UPP devices per TCP port (1: a port each;
# 10: gateways of ten); a collector polls them every second and, except the
# floor, writes to a local InfluxDB 1.8.10. After a warm-up, CPU time
# (utime+stime from /proc/PID/stat) of the collector and of InfluxDB over
# DUR seconds is divided by the device-polls completed.
#
#   COLLECTOR=feederd   feederd run (the default)
#   COLLECTOR=floor     internal/benchfloor: goroutines reading the same
#                       registers and doing nothing else (the yardstick)
#   COLLECTOR=telegraf  Telegraf's modbus input with the same points,
#                       writing to the same InfluxDB (TELEGRAF=path, default
#                       bin/telegraf; build it with `make telegraf`)
#
# The last line is machine-readable (RESULT key=value ...) for scripts/bench.sh.
# Loopback only, bounded in time; everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/influxd.sh
top=$PWD
COLLECTOR=${COLLECTOR:-feederd}
N=${N:-1000}
DUR=${DUR:-60}
WARM=${WARM:-15}
BASE_PORT=${BASE_PORT:-16000}
UPP=${UPP:-1}
TELEGRAF=${TELEGRAF:-$top/bin/telegraf}
tmp=$(mktemp -d)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # KEEP_LOGS=dir keeps the logs of the run.
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$tmp"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
ports=$(( (N + UPP - 1) / UPP ))
# A collector with thousands of connections needs the descriptors.
ulimit -n $(( ports * 2 + 4096 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
INFLUX_PORT=$(free_port)
HTTP_PORT=$(free_port)

cat > "$tmp/sim.yaml" <<SIM
seed: 1
listen: 127.0.0.1
profiles: [$top/testdata/bench/rtu12.yaml]
fleets:
  - {id_prefix: B-, count: $N, profile: bench-rtu12, nominal_voltage: 7200, base_port: $BASE_PORT, units_per_port: $UPP, transport: tcp}
SIM
"$top/bin/rtusim" -config "$tmp/sim.yaml" -http 127.0.0.1:0 >"$tmp/rtusim.log" 2>&1 &
simpid=$!
pids+=($simpid)
# rtusim is ready when its last port accepts.
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$((BASE_PORT + ports - 1))") 2>/dev/null && break
  sleep 0.1
done

if [ "$COLLECTOR" != floor ]; then
  start_influxd "$top/bin/influxd" "$tmp/influx" "$INFLUX_PORT" "$tmp/influxd.log" || exit 1
  pids+=("$INFLUXD_PID")
fi
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "fleet-bench: $COLLECTOR, $N devices x 12 float32, $UPP per port, interval 1s; warm-up ${WARM}s, measuring ${DUR}s" >&2

case "$COLLECTOR" in
floor)
  out=$("$top/bin/benchfloor" -n "$N" -units "$UPP" -port "$BASE_PORT" -warm "$WARM" -secs "$DUR")
  echo "$out" >&2
  polls=$(sed -n 's/.*polls=\([0-9]*\).*/\1/p' <<<"$out")
  us=$(sed -n 's/.*us_per_poll=\([0-9.]*\).*/\1/p' <<<"$out")
  echo "RESULT collector=floor n=$N upp=$UPP polls=$polls cpu_us=$us influx_us=- p50_ms=- p99_ms=- missed=- rss_mb=- produced=- written=-"
  exit 0 ;;
feederd)
  {
    echo "profiles: [$top/testdata/bench/rtu12.yaml]"
    echo "poll: {interval: 1s, timeout: 500ms}"
    echo "influx: {url: http://127.0.0.1:$INFLUX_PORT, bucket: feederd/autogen${INFLUX_OPTS:+, $INFLUX_OPTS}}"
    echo "http: {listen: 127.0.0.1:$HTTP_PORT}"
    echo "links:"
    for i in $(seq 0 $((ports - 1))); do echo "  - {id: l$i, url: tcp://127.0.0.1:$((BASE_PORT + i))}"; done
    echo "devices:"
    # Feeders of ten devices; the first of each is the source of the others.
    w=$(( ${#N} > 3 ? ${#N} : 3 ))
    for i in $(seq 0 $((N - 1))); do
      id=$(printf "B-%0${w}d" $((i + 1)))
      root=$(printf "B-%0${w}d" $((i / 10 * 10 + 1)))
      up=""; [ "$id" = "$root" ] || up=$root
      echo "  - {id: $id, link: l$((i / UPP)), unit: $((i % UPP + 1)), profile: bench-rtu12, feeder: F$((i / 10)), upstream: \"$up\", nominal_voltage: 7200}"
    done
  } > "$tmp/feederd.yaml"
  "$top/bin/feederd" check-config "$tmp/feederd.yaml" >/dev/null
  GOMAXPROCS=${FEEDERD_PROCS:-} "$top/bin/feederd" run -config "$tmp/feederd.yaml" -data.dir "$tmp/data" \
    -log.level warn ${FEEDERD_FLAGS:-} 2>"$tmp/feederd.log" &
  cpid=$!
  pids+=($cpid)
  for _ in $(seq 150); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null && break; sleep 0.2; done
  scrape() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" > "$1"; } ;;
telegraf)
  [ -x "$TELEGRAF" ] || { echo "fleet-bench: no Telegraf at $TELEGRAF (make telegraf)" >&2; exit 1; }
  curl -fsS -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE telegraf" >/dev/null
  {
    cat <<TOML
[agent]
  interval = "1s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 200000
  omit_hostname = true
[[outputs.influxdb_v2]]
  urls = ["http://127.0.0.1:$INFLUX_PORT"]
  token = "bench"
  organization = ""
  bucket = "telegraf/autogen"
TOML
    w=$(( ${#N} > 3 ? ${#N} : 3 ))
    for i in $(seq 0 $((N - 1))); do
      printf '[[inputs.modbus]]\n  name = "B-%0*d"\n  slave_id = %d\n  timeout = "500ms"\n  controller = "tcp://127.0.0.1:%d"\n  input_registers = [\n' \
        "$w" $((i + 1)) $((i % UPP + 1)) $((BASE_PORT + i / UPP))
      a=0
      for p in va vb vc ia ib ic in kw kvar kva pf freq; do
        printf '    { name = "%s", byte_order = "ABCD", data_type = "FLOAT32-IEEE", scale = 1.0, address = [%d, %d] },\n' "$p" $a $((a + 1))
        a=$((a + 2))
      done
      printf '  ]\n'
    done
  } > "$tmp/telegraf.conf"
  "$TELEGRAF" --config "$tmp/telegraf.conf" --quiet 2>"$tmp/telegraf.log" &
  cpid=$!
  pids+=($cpid) ;;
*) echo "fleet-bench: COLLECTOR must be feederd, floor or telegraf" >&2; exit 2 ;;
esac

# Device-polls of a Telegraf run are the rows it wrote; of feederd, its
# polls_total (and its written lines are checked against them).
rows() { curl -fsS -G "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "db=$1" --data-urlencode "q=SELECT count(${3:-va}) FROM $2" |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["series"][0]["values"][0][1] if "series" in r else 0)'; }
sleep "$WARM"
c0=$(cpu $cpid); i0=$(cpu "$INFLUXD_PID")
if [ "$COLLECTOR" = feederd ]; then scrape "$tmp/m0"; else r0=$(rows telegraf modbus); fi
if [ -n "${PROFILE:-}" ] && [ "$COLLECTOR" = feederd ]; then
  curl -fsS -o "$PROFILE" "http://127.0.0.1:$HTTP_PORT/debug/pprof/profile?seconds=$((DUR - 2))" &
fi
sleep "$DUR"
c1=$(cpu $cpid); i1=$(cpu "$INFLUXD_PID")
# HEAP=file (with FEEDERD_FLAGS=-http.pprof) saves feederd's heap profile.
if [ -n "${HEAP:-}" ] && [ "$COLLECTOR" = feederd ]; then
  curl -fsS -o "$HEAP" "http://127.0.0.1:$HTTP_PORT/debug/pprof/heap"
fi
rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$cpid/status")
if [ "$COLLECTOR" = feederd ]; then
  scrape "$tmp/m1"
  # Nothing lost: stop feederd gracefully (it delivers what it holds), then
  # the poll lines in InfluxDB must be at least the polls counted just
  # before the stop (polls after that scrape add lines, never remove them).
  kill -TERM "$cpid"
  for _ in $(seq 600); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  written=$(rows feederd feeder_point ok)
  python3 - "$tmp/m0" "$tmp/m1" "$written" <<'PY' > "$tmp/stats"
import re, sys
def load(path):
    m = {}
    for line in open(path):
        if line.startswith('#'): continue
        k, _, v = line.rpartition(' ')
        m[k] = float(v)
    return m
m0, m1, written = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
def total(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + '{'))
polls = total(m1, 'feederd_polls_total') - total(m0, 'feederd_polls_total')
missed = total(m1, 'feederd_poll_missed_total') - total(m0, 'feederd_poll_missed_total')
b = {}
for k, v in m1.items():
    mm = re.match(r'feederd_poll_lateness_seconds_bucket\{.*le="([^"]+)"', k)
    if mm:
        le = float(mm.group(1))
        b[le] = b.get(le, 0) + v - m0.get(k, 0)
les = sorted(b)
def q(p):
    n = b[les[-1]]
    for le in les:
        if b[le] >= p * n: return le
    return float('inf')
produced = total(m1, 'feederd_polls_total')
dropped = total(m1, 'feederd_influx_points_dropped_total')
print(f"polls={polls:.0f} missed={missed:.0f} p50_ms={q(0.5)*1000:g} p99_ms={q(0.99)*1000:g} produced={produced:.0f} written={written} lost={max(0, produced - written):.0f} dropped={dropped:.0f}")
PY
  read -r stats < "$tmp/stats"
  polls=$(sed -n 's/.*polls=\([0-9]*\).*/\1/p' <<<"$stats")
else
  r1=$(rows telegraf modbus)
  polls=$((r1 - r0))
  stats="polls=$polls missed=- p50_ms=- p99_ms=- produced=- written=$r1 dropped=-"
fi
[ "${polls:-0}" -gt 0 ] || { echo "fleet-bench: no polls measured" >&2; tail -20 "$tmp"/*.log >&2; exit 1; }
awk -v c="$((c1 - c0))" -v i="$((i1 - i0))" -v p="$polls" -v hz="$hz" -v d="$DUR" -v rss="$rss" -v coll="$COLLECTOR" -v n="$N" -v upp="$UPP" -v stats="$stats" 'BEGIN {
  printf "%s: %d device-polls in %d s (%.0f/s); CPU %.1f%% of a core, InfluxDB %.1f%%; RSS %d MiB\n", coll, p, d, p / d, 100 * c / hz / d, 100 * i / hz / d, rss > "/dev/stderr"
  printf "RESULT collector=%s n=%d upp=%d cpu_us=%.1f influx_us=%.1f rss_mb=%d %s\n", coll, n, upp, 1e6 * c / hz / p, 1e6 * i / hz / p, rss, stats
}'
