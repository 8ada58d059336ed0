#!/usr/bin/env bash
# InfluxDB 1.8 disk per feeder_point line and the cost of the README's
# one-minute rollup: writes DEVICES x POLLS poll lines shaped like feederd's
# (16 fields of a feeder-rtu device, one poll a second, values with noise)
# into a fresh influxd, waits for its compaction, prints the TSM bytes,
# then runs the rollup continuous query's SELECT ... INTO over them.
# Usage: DEVICES=20 POLLS=21600 bash scripts/influx-disk-bench.sh
set -euo pipefail
DEVICES=${DEVICES:-20}
POLLS=${POLLS:-21600}
PORT=${PORT:-18086}
INFLUXD=${FEEDERD_INFLUXD:-bin/influxd}
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
cat >"$dir/influxd.toml" <<TOML
reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "10s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$PORT"
  log-enabled = false
[logging]
  level = "warn"
TOML
"$INFLUXD" run -config "$dir/influxd.toml" >"$dir/influxd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/ping" && break; sleep 0.1; done
q() { curl -sf -XPOST "127.0.0.1:$PORT/query?db=feederd" --data-urlencode "q=$1"; echo; }
q 'CREATE DATABASE feederd'
python3 - "$DEVICES" "$POLLS" >"$dir/lines.txt" <<'PY'
import math, random, sys
random.seed(1)
devs, polls, t0 = int(sys.argv[1]), int(sys.argv[2]), 1795800000000
r = lambda x, n=1: repr(float(round(x, n)))
for k in range(polls):
    for d in range(devs):
        load = 0.6 + 0.3 * math.sin(k / 7200.0 + d)
        va = 7200 * (1 - 0.02 * load) + random.gauss(0, 3); vb = va + random.gauss(0, 4); vc = va + random.gauss(0, 4)
        ia = 300 * load + random.gauss(0, 2); ib = ia + random.gauss(0, 3); ic = ia + random.gauss(0, 3)
        kw = 3 * 7.2 * ia * 0.97; kvar = kw * 0.25; kva = math.hypot(kw, kvar)
        print("feeder_point,device=F%03d-REC,feeder=F%03d voltage_a=%s,voltage_b=%s,voltage_c=%s,current_a=%s,current_b=%s,"
              "current_c=%s,current_n=%s,active_power=%s,reactive_power=%s,kva=%s,power_factor=%s,frequency=%s,"
              "breaker_closed=1,lockout=0,ok=1i,seq=%di %d" % (d, d // 4, r(va), r(vb), r(vc), r(ia), r(ib), r(ic),
              r(abs(random.gauss(0, 1))), r(kw), r(kvar), r(kva), r(kw / kva, 3), r(60 + random.gauss(0, 0.01), 2), k + 1, t0 + k * 1000))
PY
lines=$(wc -l <"$dir/lines.txt")
split -l 5000 "$dir/lines.txt" "$dir/chunk_"
for f in "$dir"/chunk_*; do curl -sf -XPOST "127.0.0.1:$PORT/write?db=feederd&precision=ms" --data-binary @"$f"; done
sleep 30
tsm=$(find "$dir/data/feederd/autogen" -name '*.tsm' -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "raw: $lines lines, $tsm TSM bytes, $((tsm / lines)) bytes per line"
q 'CREATE RETENTION POLICY "rollup" ON "feederd" DURATION 1825d REPLICATION 1 SHARD DURATION 30d'
end=$((1795800000000 + POLLS * 1000))
start_ns=$(date +%s%N)
q "SELECT mean(/^(voltage|current)_[abcn]\$|^(active_power|reactive_power|power_factor|frequency)\$/), min(/^voltage_[abc]\$/), max(/^voltage_[abc]\$/), mean(\"ok\") AS \"ok\", count(\"ok\") AS \"polls\" INTO \"feederd\".\"rollup\".\"feeder_point_1m\" FROM \"feederd\".\"autogen\".\"feeder_point\" WHERE time >= 1795800000000ms AND time < ${end}ms GROUP BY time(1m), *"
ms=$((($(date +%s%N) - start_ns) / 1000000))
echo "rollup: $lines lines in $ms ms ($((lines * 1000 / (ms + 1))) lines/s)"
sleep 30
rtsm=$(find "$dir/data/feederd/rollup" -name '*.tsm' -printf '%s\n' | awk '{s+=$1} END {print s}')
points=$((DEVICES * POLLS / 60))
echo "rollup: $points points, $rtsm TSM bytes, $((rtsm / points)) bytes per point"
