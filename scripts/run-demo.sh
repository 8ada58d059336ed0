#!/usr/bin/env bash
# The demo behind `make run`: a local InfluxDB, rtusim serving the demo fleet,
# and feederd polling it. Everything listens on 127.0.0.1 and keeps its data
# under ./var. Ctrl-C stops every process this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=$top/bin
var=$top/var
INFLUX_PORT=${INFLUX_PORT:-8086}
FEEDERD_HTTP=${FEEDERD_HTTP:-127.0.0.1:9108}
SIM_HTTP=${SIM_HTTP:-127.0.0.1:9201}
mkdir -p "$var/influxdb" "$var/log"
command -v curl >/dev/null || { echo "the demo needs curl: apt-get install curl" >&2; exit 1; }

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]:-nothing}"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_free "$INFLUX_PORT"; then
  echo "port $INFLUX_PORT is in use: stop what listens there or set INFLUX_PORT" >&2
  exit 1
fi

cat > "$var/influxdb/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$var/influxdb/meta"
[data]
  dir = "$var/influxdb/data"
  wal-dir = "$var/influxdb/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
[logging]
  level = "warn"
CONF

echo "starting InfluxDB 1.8 on 127.0.0.1:$INFLUX_PORT (log: var/log/influxd.log)"
"$bin/influxd" -config "$var/influxdb/influxdb.conf" >"$var/log/influxd.log" 2>&1 &
pids+=($!)
for i in $(seq 300); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$INFLUX_PORT/ping"; then break; fi
  kill -0 "${pids[0]}" 2>/dev/null || { echo "influxd exited; see var/log/influxd.log" >&2; tail -20 "$var/log/influxd.log" >&2; exit 1; }
  [ "$i" = 300 ] && { echo "influxd did not answer /ping in 30 s" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE feederd"

echo "starting rtusim with configs/sim/demo.yaml (log: var/log/rtusim.log)"
"$bin/rtusim" -config configs/sim/demo.yaml -http "$SIM_HTTP" >"$var/log/rtusim.log" 2>&1 &
pids+=($!)
sleep 1
kill -0 "${pids[1]}" 2>/dev/null || { echo "rtusim exited; see var/log/rtusim.log" >&2; tail -20 "$var/log/rtusim.log" >&2; exit 1; }

echo "starting feederd with configs/demo.yaml"
"$bin/feederd" run -config configs/demo.yaml -http.listen "$FEEDERD_HTTP" &
pids+=($!)

for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://$FEEDERD_HTTP/readyz" 2>/dev/null && break
  sleep 0.2
done
cat <<MSG

feederd is polling the demo fleet.
  metrics:    curl -s http://$FEEDERD_HTTP/metrics | grep ^feederd_
  readiness:  curl -s http://$FEEDERD_HTTP/readyz
  simulator:  curl -s http://$SIM_HTTP/api/devices
  InfluxDB:   curl -sG http://127.0.0.1:$INFLUX_PORT/query --data-urlencode db=feederd \\
                --data-urlencode "q=SELECT last(value) FROM feeder_point WHERE time > now() - 1m GROUP BY device, point"
Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "a process of the demo ended; stopping the rest" >&2
