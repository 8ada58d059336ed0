#!/usr/bin/env bash
# The demo behind `make run`: a local InfluxDB and Alertmanager, rtusim
# serving the demo fleet, and feederd polling it. Everything listens on
# 127.0.0.1 and keeps its data under ./var. Ctrl-C stops every process this
# script started.
set -euo pipefail
# Job control: every process started below gets its own process group, so
# Ctrl-C reaches this script only and cleanup stops them in order.
set -m
cd "$(dirname "$0")/.."
. scripts/influxd.sh
top=$PWD
bin=$top/bin
var=$top/var
INFLUX_PORT=${INFLUX_PORT:-8086}
AM_PORT=${AM_PORT:-9093}
FEEDERD_HTTP=${FEEDERD_HTTP:-127.0.0.1:9108}
SIM_HTTP=${SIM_HTTP:-127.0.0.1:9201}
mkdir -p "$var/influxdb" "$var/alertmanager" "$var/log"
command -v curl >/dev/null || { echo "the demo needs curl: apt-get install curl" >&2; exit 1; }

pids=()
# Stop in the reverse order of start, each before the next, so feederd
# flushes to an InfluxDB and an Alertmanager that still run.
cleanup() {
  trap - INT TERM EXIT
  echo
  local i p
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "stopped"
}
trap cleanup EXIT
trap "cleanup; exit 130" INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_free "$INFLUX_PORT"; then
  echo "port $INFLUX_PORT is in use: stop what listens there or set INFLUX_PORT" >&2
  exit 1
fi
if ! port_free "$AM_PORT"; then
  echo "port $AM_PORT is in use: stop what listens there or set AM_PORT" >&2
  exit 1
fi

echo "starting InfluxDB 1.8 on 127.0.0.1:$INFLUX_PORT (log: var/log/influxd.log)"
start_influxd "$bin/influxd" "$var/influxdb" "$INFLUX_PORT" "$var/log/influxd.log" || { pids+=(${INFLUXD_PID:-}); exit 1; }
pids+=("$INFLUXD_PID")

echo "starting Alertmanager on 127.0.0.1:$AM_PORT with configs/alertmanager.yml (log: var/log/alertmanager.log)"
# No cluster (an empty --cluster.listen-address): a single local server.
"$bin/alertmanager" --config.file=configs/alertmanager.yml --storage.path="$var/alertmanager" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$var/log/alertmanager.log" 2>&1 &
ampid=$!
pids+=($ampid)
for i in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$AM_PORT/-/ready" 2>/dev/null && break
  kill -0 "$ampid" 2>/dev/null || { echo "alertmanager exited; see var/log/alertmanager.log" >&2; tail -20 "$var/log/alertmanager.log" >&2; exit 1; }
  if [ "$i" = 100 ]; then echo "alertmanager not ready in 10 s; see var/log/alertmanager.log" >&2; exit 1; fi
  sleep 0.1
done

echo "starting rtusim with configs/sim/demo.yaml (log: var/log/rtusim.log)"
# SCENARIO=testdata/scenarios/lockout.yaml make run plays a scenario.
"$bin/rtusim" -config configs/sim/demo.yaml -http "$SIM_HTTP" ${SCENARIO:+-scenario "$SCENARIO"} >"$var/log/rtusim.log" 2>&1 &
simpid=$!
pids+=($simpid)
sleep 1
kill -0 "$simpid" 2>/dev/null || { echo "rtusim exited; see var/log/rtusim.log" >&2; tail -20 "$var/log/rtusim.log" >&2; exit 1; }

# configs/demo.yaml names the default InfluxDB and Alertmanager ports;
# follow INFLUX_PORT and AM_PORT.
sed -e "s#127.0.0.1:8086#127.0.0.1:$INFLUX_PORT#" -e "s#127.0.0.1:9093#127.0.0.1:$AM_PORT#" \
  -e "s#^  - profiles/#  - $top/configs/profiles/#" configs/demo.yaml > "$var/demo.yaml"
echo "starting feederd with configs/demo.yaml (InfluxDB port $INFLUX_PORT, Alertmanager port $AM_PORT: var/demo.yaml)"
"$bin/feederd" run -config "$var/demo.yaml" -data.dir "$var/feederd" -http.listen "$FEEDERD_HTTP" &
fpid=$!
pids+=($fpid)

ready=
for _ in $(seq 100); do
  kill -0 "$fpid" 2>/dev/null || { echo "feederd exited; see its log above" >&2; exit 1; }
  if curl -fsS -o /dev/null "http://$FEEDERD_HTTP/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || echo "warning: feederd is not ready after 20 s: curl -s http://$FEEDERD_HTTP/readyz says why" >&2
cat <<MSG

feederd is polling the demo fleet.
  metrics:    curl -s http://$FEEDERD_HTTP/metrics | grep ^feederd_
  readiness:  curl -s http://$FEEDERD_HTTP/readyz
  simulator:  curl -s http://$SIM_HTTP/api/devices
  InfluxDB:   curl -sG http://127.0.0.1:$INFLUX_PORT/query --data-urlencode db=feederd \\
                --data-urlencode "q=SELECT last(voltage_a), last(ok) FROM feeder_point WHERE time > now() - 1m GROUP BY device"
  alerts:     bin/amtool --alertmanager.url=http://127.0.0.1:$AM_PORT alert query
              (or curl -s http://127.0.0.1:$AM_PORT/api/v2/alerts; web UI: http://127.0.0.1:$AM_PORT)
  an alert:   curl -X POST -H 'Content-Type: application/json' -d '{"action":"comms_loss","target":"F101-MTR"}' http://$SIM_HTTP/api/events
              (RTUCommsLost within a few seconds; "comms_restore" resolves it)
Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "a process of the demo ended; stopping the rest" >&2
