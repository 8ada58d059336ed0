# Sourced by run-demo.sh and fleet-bench.sh: start the InfluxDB 1.8 built into
# ./bin on 127.0.0.1 with its data in a folder, wait until it answers, create
# the feederd database. Sets INFLUXD_PID as soon as influxd runs; influxd
# leads a session and process group of its own (setsid), so that Ctrl-C
# reaches the calling script, which stops it in its turn.
#
#   start_influxd BIN DIR PORT LOG
start_influxd() {
  local bin=$1 dir=$2 port=$3 log=$4
  mkdir -p "$dir"
  cat > "$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[logging]
  level = "warn"
CONF
  setsid "$bin" -config "$dir/influxdb.conf" >"$log" 2>&1 &
  INFLUXD_PID=$!
  local i
  for i in $(seq 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/ping" 2>/dev/null && break
    if ! kill -0 "$INFLUXD_PID" 2>/dev/null; then
      echo "influxd exited; its log ($log):" >&2
      tail -20 "$log" >&2
      return 1
    fi
    if [ "$i" = 300 ]; then echo "influxd did not answer /ping in 30 s" >&2; return 1; fi
    sleep 0.1
  done
  curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$port/query" --data-urlencode "q=CREATE DATABASE feederd"
}
