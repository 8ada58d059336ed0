#!/usr/bin/env bash
# The demo behind `make run`: a local InfluxDB and Alertmanager, rtusim
# serving the demo fleet, and feederd polling it. Everything listens on
# 127.0.0.1 and keeps its data under ./var.
#
# Stopping: Ctrl-C (SIGINT) or SIGTERM, to the script or to its whole
# process group, stops every process this script started, in the reverse
# order of start, and exits 0. A second signal during that cleanup does not
# cut it short: it sends SIGTERM to all that still run at once and waits
# for them (SIGKILL after 15 s each), so nothing is left on the demo ports.
#
# Environment (the defaults are the demo's; tests move every port):
#   INFLUX_PORT=8086 AM_PORT=9093 FEEDERD_HTTP=127.0.0.1:9108
#   SIM_HTTP=127.0.0.1:9201 SIM_PORT_BASE=5020 (the seven devices take
#   SIM_PORT_BASE..SIM_PORT_BASE+6), DEMO_VAR=./var, DEMO_BIN=./bin (holds
#   feederd, rtusim, influxd, alertmanager).
set -euo pipefail
# Every process started below runs in a session and process group of its
# own (setsid), so that Ctrl-C and a signal to this script's group reach
# this script only, and cleanup stops them in order.
cd "$(dirname "$0")/.."
. scripts/influxd.sh
top=$PWD
bin=${DEMO_BIN:-$top/bin}
var=${DEMO_VAR:-$top/var}
INFLUX_PORT=${INFLUX_PORT:-8086}
AM_PORT=${AM_PORT:-9093}
FEEDERD_HTTP=${FEEDERD_HTTP:-127.0.0.1:9108}
SIM_HTTP=${SIM_HTTP:-127.0.0.1:9201}
SIM_PORT_BASE=${SIM_PORT_BASE:-5020}
mkdir -p "$var/influxdb" "$var/alertmanager" "$var/log"
command -v curl >/dev/null || { echo "the demo needs curl: apt-get install curl" >&2; exit 1; }
command -v flock >/dev/null && command -v setsid >/dev/null || { echo "the demo needs flock and setsid: apt-get install util-linux" >&2; exit 1; }

# The children's PIDs, each set the moment it is started, so that a signal
# at any point of the start-up finds every child that runs.
INFLUXD_PID= ampid= simpid= fpid=
stopping=
# stop_all stops the children in the reverse order of start, each before
# the next, so feederd flushes to an InfluxDB and an Alertmanager that still
# run. A signal while it runs (hurry) sends SIGTERM to all that are left.
hurry=
stop_all() {
  set +e
  local p left
  for p in "$fpid" "$simpid" "$ampid" "$INFLUXD_PID"; do
    [ -n "$p" ] || continue
    # Each child leads its own process group (setsid): stop the group.
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 150); do
      kill -0 "$p" 2>/dev/null || break
      if [ -n "$hurry" ]; then
        for left in "$fpid" "$simpid" "$ampid" "$INFLUXD_PID"; do
          [ -n "$left" ] && kill -TERM -- "-$left" 2>/dev/null
        done
      fi
      sleep 0.1
    done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  set -e
}
# on_signal: the first SIGINT or SIGTERM stops everything and exits 0 (a
# requested stop, so `make run` does not report "Error 130"); another one
# during the cleanup makes it hurry, never abandons it.
on_signal() {
  if [ -n "$stopping" ]; then
    hurry=1
    return
  fi
  stopping=1
  echo
  stop_all
  echo "stopped"
  trap - EXIT
  exit 0
}
on_exit() {
  local rc=$?
  trap '' INT TERM
  stopping=1
  stop_all
  exit "$rc"
}
trap on_exit EXIT
trap on_signal INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sim_ports=()
for i in $(seq 0 6); do sim_ports+=($((SIM_PORT_BASE + i))); done
busy=()
for pv in "INFLUX_PORT=$INFLUX_PORT" "AM_PORT=$AM_PORT" "FEEDERD_HTTP=${FEEDERD_HTTP##*:}" \
  "SIM_HTTP=${SIM_HTTP##*:}" $(for p in "${sim_ports[@]}"; do echo "SIM_PORT_BASE=$p"; done); do
  port_free "${pv#*=}" || busy+=("${pv#*=} (${pv%%=*})")
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "ports in use: ${busy[*]}: stop what listens there (an earlier demo?) or set the variable named" >&2
  exit 1
fi

# One InfluxDB per data folder: the lock is held by this script and, since
# it inherits the descriptor, by its influxd, for as long as either runs.
exec 9>"$var/influxdb/.lock"
if ! flock -n 9; then
  echo "another InfluxDB (or demo) uses $var/influxdb: stop it first (fuser -v $var/influxdb/.lock names it)" >&2
  exit 1
fi

echo "starting InfluxDB 1.8 on 127.0.0.1:$INFLUX_PORT (log: $var/log/influxd.log)"
start_influxd "$bin/influxd" "$var/influxdb" "$INFLUX_PORT" "$var/log/influxd.log" || exit 1

echo "starting Alertmanager on 127.0.0.1:$AM_PORT with configs/alertmanager.yml (log: $var/log/alertmanager.log)"
# No cluster (an empty --cluster.listen-address): a single local server.
setsid "$bin/alertmanager" --config.file=configs/alertmanager.yml --storage.path="$var/alertmanager" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$var/log/alertmanager.log" 2>&1 9>&- &
ampid=$!
for i in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$AM_PORT/-/ready" 2>/dev/null && break
  kill -0 "$ampid" 2>/dev/null || { echo "alertmanager exited; see $var/log/alertmanager.log" >&2; tail -20 "$var/log/alertmanager.log" >&2; exit 1; }
  if [ "$i" = 100 ]; then echo "alertmanager not ready in 10 s; see $var/log/alertmanager.log" >&2; exit 1; fi
  sleep 0.1
done

# The demo configs name the default ports and profiles relative to
# configs/: follow the variables above.
off=$((SIM_PORT_BASE - 5020))
awk -v off="$off" -v top="$top" '
  /^    port: [0-9]+$/ { print "    port: " ($2 + off); next }
  /^  - \.\.\/profiles\// { sub(/\.\.\/profiles\//, top "/configs/profiles/") }
  { print }' configs/sim/demo.yaml > "$var/sim-demo.yaml"
awk -v off="$off" -v top="$top" -v influx="$INFLUX_PORT" -v am="$AM_PORT" '
  { while (match($0, /tcp:\/\/127\.0\.0\.1:50[0-9][0-9]/)) {
      port = substr($0, RSTART + 16, 4) + off
      $0 = substr($0, 1, RSTART - 1) "tcp:\001//127.0.0.1:" port substr($0, RSTART + RLENGTH) }
    gsub(/\001/, "")
    gsub(/127\.0\.0\.1:8086/, "127.0.0.1:" influx)
    gsub(/127\.0\.0\.1:9093/, "127.0.0.1:" am)
    sub(/^  - profiles\//, "  - " top "/configs/profiles/")
    print }' configs/demo.yaml > "$var/demo.yaml"

echo "starting rtusim with configs/sim/demo.yaml on ports ${sim_ports[0]}..${sim_ports[6]} (log: $var/log/rtusim.log)"
# SCENARIO=testdata/scenarios/lockout.yaml make run plays a scenario.
setsid "$bin/rtusim" -config "$var/sim-demo.yaml" -http "$SIM_HTTP" ${SCENARIO:+-scenario "$SCENARIO"} >"$var/log/rtusim.log" 2>&1 9>&- &
simpid=$!
sleep 1
kill -0 "$simpid" 2>/dev/null || { echo "rtusim exited; see $var/log/rtusim.log" >&2; tail -20 "$var/log/rtusim.log" >&2; exit 1; }

echo "starting feederd with configs/demo.yaml (InfluxDB port $INFLUX_PORT, Alertmanager port $AM_PORT: $var/demo.yaml)"
setsid "$bin/feederd" run -config "$var/demo.yaml" -data.dir "$var/feederd" -http.listen "$FEEDERD_HTTP" 9>&- &
fpid=$!

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
wait -n "$INFLUXD_PID" "$ampid" "$simpid" "$fpid" || true
echo "a process of the demo ended; stopping the rest" >&2
exit 1
