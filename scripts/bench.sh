#!/usr/bin/env bash
# make bench: one table of what feederd costs on this machine.
#   1. micro-benchmarks (go test -bench) of the hot path's parts;
#   2. the floor: internal/benchfloor, a bare Go poller on the same fleet;
#   3. the fleet: scripts/fleet-bench.sh at 1,000, 5,000 and 10,000 devices
#      (10,000 as gateways of ten), feederd, and Telegraf's modbus input when
#      bin/telegraf exists (make telegraf), one run after the other.
# The table (Markdown) is printed and written to bench.out; raw output goes
# to bench.log. FLEET="1000 5000" picks sizes, DUR/WARM the seconds per run,
# MICRO=0 skips the micro-benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FLEET=${FLEET:-1000 5000 10000}
DUR=${DUR:-60}
WARM=${WARM:-15}
MICRO=${MICRO:-1}
log=bench.log
: > "$log"
rows=()
row() { rows+=("| $1 | $2 | $3 |"); }

if [ "$MICRO" = 1 ]; then
  echo "bench: micro-benchmarks" >&2
  $GO test -run '^$' -bench 'DecodeFloat32$|DecodeAppend|EncodePoll|SinkPutLines' -benchmem -count 3 ./internal/profile ./internal/influx | tee -a "$log" >&2
  $GO test -run '^$' -bench 'HotPath' -benchmem -cpu 1 -count 3 ./internal/pipeline | tee -a "$log" >&2
  $GO test -run '^$' -bench 'Process$' -benchmem -count 3 ./internal/detect | tee -a "$log" >&2
  # the median of the three runs of each benchmark, ns/op and allocs/op
  while read -r name ns allocs; do
    row "\`$name\`" "$ns ns/op, $allocs allocs/op (median of 3)" "go test -bench"
  done < <(python3 - "$log" <<'PY'
import re, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r'Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op.*?(\d+) allocs/op', line)
    if m:
        runs.setdefault(m.group(1), []).append((float(m.group(3)), m.group(4)))
for name, v in runs.items():
    v.sort()
    ns, allocs = v[(len(v) - 1) // 2]
    print(name, f"{ns:g}", allocs)
PY
)
fi

result() { sed -n 's/.*RESULT //p' | tail -1; }
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
make -s build >/dev/null
$GO build -o bin/benchfloor ./internal/benchfloor
for n in $FLEET; do
  upp=1; [ "$n" -ge 10000 ] && upp=10
  echo "bench: fleet of $n devices ($upp per port)" >&2
  f=$(N=$n UPP=$upp DUR=$DUR WARM=$WARM COLLECTOR=floor bash scripts/fleet-bench.sh 2>>"$log" | result)
  d=$(N=$n UPP=$upp DUR=$DUR WARM=$WARM COLLECTOR=feederd bash scripts/fleet-bench.sh 2>>"$log" | result)
  echo "floor    $f" >> "$log"; echo "feederd  $d" >> "$log"
  fl=$(get "$f" cpu_us)
  fc=$(get "$d" cpu_us)
  ratio=$(awk -v a="$fc" -v b="$fl" 'BEGIN { printf "%.2f", a / b }')
  tag="$n devices"; [ "$upp" -gt 1 ] && tag="$n devices (gateways of $upp)"
  row "floor, $tag" "$fl µs CPU per device-poll" "internal/benchfloor"
  row "feederd, $tag" "$fc µs CPU per device-poll (${ratio}x the floor); InfluxDB $(get "$d" influx_us) µs; whole system $(awk -v a="$fc" -v b="$(get "$d" influx_us)" 'BEGIN { printf "%.1f", a + b }') µs" "fleet-bench.sh"
  row "feederd, $tag: delivery" "lateness p50 $(get "$d" p50_ms) ms, p99 $(get "$d" p99_ms) ms (bucket bounds); missed $(get "$d" missed); RSS $(get "$d" rss_mb) MiB; poll lines produced $(get "$d" produced), in InfluxDB after a graceful stop $(get "$d" written), lost $(get "$d" lost), dropped by the queue $(get "$d" dropped)" "fleet-bench.sh"
  if [ -x bin/telegraf ] && [ "$upp" = 1 ]; then
    tg=$(N=$n UPP=$upp DUR=$DUR WARM=$WARM COLLECTOR=telegraf bash scripts/fleet-bench.sh 2>>"$log" | result)
    echo "telegraf $tg" >> "$log"
    row "Telegraf, $tag" "$(get "$tg" cpu_us) µs CPU per device-poll; InfluxDB $(get "$tg" influx_us) µs; whole system $(awk -v a="$(get "$tg" cpu_us)" -v b="$(get "$tg" influx_us)" 'BEGIN { printf "%.1f", a + b }') µs; RSS $(get "$tg" rss_mb) MiB" "fleet-bench.sh"
  fi
done

{
  echo "feederd bench, $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $($GO version | cut -d' ' -f3), $(uname -r)"
  echo "fleet runs: ${WARM}s warm-up, ${DUR}s measured, 12 float32 input registers per device, 1 s interval"
  echo
  echo "| what | figure | from |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee bench.out
