#!/usr/bin/env bash
# make fleet-bench: the CPU cost of one device-poll. rtusim serves N devices
# (default 200) of 12 FLOAT32 registers each, one TCP port per device;
# feederd polls them every second and writes to a local InfluxDB; after a
# warm-up, feederd's CPU time (utime+stime from /proc/PID/stat) over DUR
# seconds (default 60) is divided by the polls it completed. Loopback only,
# bounded in time; everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/influxd.sh
top=$PWD
N=${N:-200}
DUR=${DUR:-60}
WARM=${WARM:-10}
BASE_PORT=${BASE_PORT:-16000}
# UPP=n puts n devices behind each port (a gateway, one connection polled
# by one link); 1, the default, gives every device its own port and link.
UPP=${UPP:-1}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
INFLUX_PORT=$(free_port)
HTTP_PORT=$(free_port)

start_influxd "$top/bin/influxd" "$tmp/influx" "$INFLUX_PORT" "$tmp/influxd.log" || exit 1
pids+=("$INFLUXD_PID")

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

{
  echo "profiles: [$top/testdata/bench/rtu12.yaml]"
  echo "poll: {interval: 1s, timeout: 500ms}"
  echo "influx: {url: http://127.0.0.1:$INFLUX_PORT, bucket: feederd/autogen}"
  echo "http: {listen: 127.0.0.1:$HTTP_PORT}"
  echo "links:"
  for i in $(seq 0 $(( (N + UPP - 1) / UPP - 1 ))); do echo "  - {id: l$i, url: tcp://127.0.0.1:$((BASE_PORT + i))}"; done
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
sleep 1
GOMAXPROCS=${FEEDERD_PROCS:-} "$top/bin/feederd" run -config "$tmp/feederd.yaml" -log.level warn ${FEEDERD_FLAGS:-} 2>"$tmp/feederd.log" &
fpid=$!
pids+=($fpid)
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null && break; sleep 0.2; done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
polls() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^feederd_polls_total/ {s += $2} END {printf "%d", s}'; }
failed() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^feederd_polls_total.*result="(failure|partial)"/ {s += $2} END {printf "%d", s}'; }
written() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^feederd_influx_points_written_total/ {printf "%d", $2}'; }

echo "fleet-bench: $N devices x 12 float32, $UPP per port, interval 1s; warm-up ${WARM}s, measuring ${DUR}s"
sleep "$WARM"
c0=$(cpu $fpid); s0=$(cpu $simpid); p0=$(polls); w0=$(written)
# PROFILE=file (with FEEDERD_FLAGS=-http.pprof) saves a CPU profile of the run.
if [ -n "${PROFILE:-}" ]; then
  curl -fsS -o "$PROFILE" "http://127.0.0.1:$HTTP_PORT/debug/pprof/profile?seconds=$((DUR - 2))" &
fi
sleep "$DUR"
c1=$(cpu $fpid); s1=$(cpu $simpid); p1=$(polls); w1=$(written)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$fpid/status")
awk -v c="$((c1 - c0))" -v s="$((s1 - s0))" -v p="$((p1 - p0))" -v w="$((w1 - w0))" -v hz="$hz" -v d="$DUR" -v rss="$rss" -v f="$(failed)" 'BEGIN {
  printf "polls:            %d (%.1f/s), failed or partial since start: %d\n", p, p / d, f
  printf "lines written:    %d (%.0f/s)\n", w, w / d
  printf "feederd CPU:      %.2f s in %d s (%.1f%% of one core)\n", c / hz, d, 100 * c / hz / d
  printf "feederd RSS:      %.1f MiB\n", rss / 1024
  printf "rtusim CPU:       %.2f s (not counted)\n", s / hz
  printf "CPU per device-poll: %.1f us\n", 1e6 * c / hz / p
}'
