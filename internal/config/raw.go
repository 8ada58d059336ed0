package config

// rawConfig is the configuration file as written. Every key is below; any
// other key is an error. Durations are Go durations ("1s", "250ms", "1m30s").
// Relative paths (profiles, token_file, tls files) are relative to the
// directory of the configuration file. Defaults are listed in defaults().
//
//	# Every file read (this one, profiles, token, secret and tls files)
//	# must be a regular file of at most 16 MiB. Numbers must be finite
//	# (.nan and .inf are errors).
//
//	# Profile files (register maps), relative to this file. Devices name a
//	# profile by the `name` inside the file, not by the file name.
//	profiles:
//	  - profiles/sel751a.yaml
//
//	# Defaults for every link and device.
//	poll:
//	  interval: 1s          # time between polls of a device; >= 10ms. Default 1s.
//	  timeout: 1s           # request timeout of a link and poll deadline of a
//	                        # device; > 0 and <= interval. Default 1s.
//	  backoff_initial: 500ms  # first reconnect delay; >= 10ms. Default 500ms.
//	  backoff_max: 30s      # longest reconnect delay; >= backoff_initial. Default 30s.
//	  max_gap: 10           # registers of gap read and thrown away to merge two
//	                        # requests into one; 0..124, 0 = never read a gap.
//	                        # Default 10.
//	  stale_after: 3        # intervals after which a value is stale; >= 1. Default 3.
//	  slot_time: false      # stamp a poll's samples with its schedule slot
//	                        # instead of the read time; slots are then fixed
//	                        # to the wall clock (Unix time multiple of the
//	                        # interval, plus the device's offset on its
//	                        # link), so two instances polling the same
//	                        # devices (an HA pair) write the same series and
//	                        # times and InfluxDB keeps one point. Default false.
//
//	# InfluxDB sink (InfluxDB 1.8 through its v2 API, or 2.x/3.x). Omit the
//	# whole block to disable the sink.
//	influx:
//	  url: http://127.0.0.1:8086   # required; http or https, no user:password@.
//	  bucket: feederd/autogen      # required; "db/rp" for InfluxDB 1.8.
//	  org: ""                      # "" for InfluxDB 1.8.
//	  token_env: FEEDERD_INFLUX_TOKEN  # environment variable holding the token
//	                                   # ("user:password" for 1.8); must be set
//	                                   # and non-empty when given.
//	  token_file: influx.token     # or a file holding it (surrounding white
//	                               # space cut); not both. Neither: no token.
//	                               # A `token:` key is an error: secrets never
//	                               # live in this file.
//	  batch_size: 5000             # lines per write; > 0. Default 5000.
//	  flush_interval: 1s           # longest wait before a partial batch is
//	                               # written; > 0. Default 1s.
//	  queue_size: 200000           # lines held while InfluxDB is slow or down;
//	                               # >= batch_size, <= 5000000. Default: 30 s
//	                               # of the fleet's poll lines, at least
//	                               # batch_size, at most 200000 (about 200
//	                               # bytes a line; the spool takes the rest).
//	  timeout: 10s                 # per write; > 0. Default 10s.
//	  measurement: feeder_point    # of the line of each device poll (see
//	                               # InfluxDB schema); [A-Za-z0-9_.-]+.
//	                               # Default feeder_point.
//	  gzip: false                  # compress write requests. Default false.
//	  spool_budget_mb: 1024        # disk for the spool in <data.dir>/spool
//	                               # (batches InfluxDB could not take yet);
//	                               # past it the oldest go. >= 1. Default 1024.
//	                               # No spool when -data.dir is "".
//	  spool_fsync: batch           # "batch": fsync the spool after every
//	                               # batch; or a duration > 0: at most that
//	                               # long after. Default batch.
//
//	# feederd's own HTTP server: /metrics, /healthz, /readyz (README, "HTTP endpoints").
//	http:
//	  listen: 127.0.0.1:9108       # host:port. Default 127.0.0.1:9108.
//	  # The service desk's bearer token (README, "Service desk security"):
//	  # required when listen is not a loopback address, and for every
//	  # change (ETR, acknowledgement). A `token:` key is an error.
//	  token_env: FEEDERD_HTTP_TOKEN  # environment variable holding it; must
//	                               # be set and non-empty when given.
//	  token_file: desk.token       # or a file holding it; not both.
//	  tls_cert_file: desk.crt      # PEM certificate and key: serve HTTPS.
//	  tls_key_file: desk.key       # Both or neither; files must exist.
//
//	# Detection thresholds. Voltages are per-unit of a device's
//	# nominal_voltage. Every key may be left out; the values shown are the
//	# defaults (ANSI C84.1, IEEE 1159, IEC 61000-4-30, IEEE 1366).
//	detect:
//	  range_a: {low: 0.95, high: 1.05}      # ANSI C84.1 Range A, outside it a
//	                               # warning; low < 1 < high. Either end may be
//	                               # left out (it keeps its default).
//	  range_b: {low: 0.9167, high: 1.0583}  # Range B, outside it critical;
//	                               # low > 0, contains range_a.
//	  band_persistence: 60s        # time outside a range before a band event
//	                               # starts; 1s..10m.
//	  band_hysteresis: 0.005       # a band event ends this far back inside the
//	                               # range; >= 0, range_a.low + band_hysteresis
//	                               # < 1 < range_a.high - band_hysteresis.
//	  sag_threshold: 0.9           # a sag starts below it; < 1.
//	  swell_threshold: 1.1         # a swell starts above it; > 1.
//	  interruption_threshold: 0.1  # an interruption starts with all phases
//	                               # below it; > 0 and < sag_threshold.
//	  hysteresis: 0.02             # sags, swells and interruptions end this far
//	                               # back across their threshold; >= 0,
//	                               # sag_threshold + hysteresis < 1,
//	                               # swell_threshold - hysteresis > 1,
//	                               # interruption_threshold + hysteresis
//	                               # <= sag_threshold.
//	  undervoltage_min: 0.8        # IEEE 1159 long-duration undervoltage is
//	                               # undervoltage_min..sag_threshold;
//	                               # >= interruption_threshold, < sag_threshold.
//	  overvoltage_max: 1.2         # and overvoltage swell_threshold..
//	                               # overvoltage_max; > swell_threshold.
//	  instantaneous_max: 500ms     # IEEE 1159 durations: instantaneous below
//	  momentary_max: 3s            # instantaneous_max, momentary up to
//	  temporary_max: 1m            # momentary_max, temporary up to temporary_max,
//	                               # long beyond; 0 < instantaneous_max
//	                               # <= momentary_max < temporary_max.
//	  reclose_window: 5m           # trips and recloses this long after a first
//	                               # trip are one reclose sequence; > 0.
//	  lockout_after: 1m            # a device without a lockout point still open
//	                               # this long after a trip is taken as locked
//	                               # out; > 0, <= reclose_window.
//	  comm_loss_polls: 3           # failed polls in a row that make a device
//	                               # comm_lost; >= 1.
//	  comm_loss_after: 10s         # or no good sample for this long; > 0.
//	  sustained_after: 5m          # IEEE 1366 boundary between momentary and
//	                               # sustained interruptions; > 0.
//
//	# The path from the pollers to detection and the sinks.
//	pipeline:
//	  shards: 0                    # shard workers, each owning whole feeders
//	                               # and an ingest ring; 0..1024. Default 0:
//	                               # one per GOMAXPROCS.
//	  ring_size: 65536             # samples per ingest ring; a power of two,
//	                               # 1024..4194304. Default: a second of a
//	                               # shard's samples (points + 1 per poll),
//	                               # 16384..1048576; 65536 at 10,000 devices
//	                               # of 12 points on 2 shards. All rings
//	                               # (min(shards, feeders), 40 bytes a sample)
//	                               # may take at most 1 GiB.
//	  drop_policy: oldest          # what a full ring loses: oldest | newest.
//	                               # Default oldest.
//
//	# Where alerts go: Prometheus Alertmanager (API v2) and JSON webhooks
//	# (README, "Alerts"). Omit the block to send none; a block needs at
//	# least one receiver.
//	alerting:
//	  alertmanagers:               # each one gets every alert (list both of
//	    - url: http://127.0.0.1:9093  # an HA pair). url: required, unique,
//	      name: am-a               # http or https, no user:password@;
//	                               # alerts go to url/api/v2/alerts. name:
//	                               # the receiver label of the metrics,
//	                               # [A-Za-z0-9_.-]+, unique among all
//	                               # receivers. Default alertmanager-<index>.
//	  webhooks:                    # a JSON POST of every change, no re-sends
//	    - url: https://desk.example.net/feederd  # as for alertmanagers; the
//	      name: desk               # POST goes to url. Default webhook-<index>.
//	      secret_env: FEEDERD_WEBHOOK_SECRET  # environment variable holding
//	                               # the key of the X-Feederd-Signature
//	                               # HMAC-SHA256; must be set and non-empty
//	                               # when given.
//	      secret_file: webhook.key # or a file holding it (surrounding white
//	                               # space cut); not both. Neither: unsigned.
//	                               # A `secret:` key is an error.
//	  resend_interval: 60s         # how often Alertmanagers get every active
//	                               # and recently resolved alert again; > 0.
//	                               # Default 60s.
//	  active_for: 4m               # an active alert's endsAt, from each send;
//	                               # >= 2 x resend_interval. Default 4m.
//	  resolved_for: 15m            # how long a resolved alert is still
//	                               # re-sent; >= 0. Default 15m.
//	  timeout: 10s                 # per request; > 0. Default 10s.
//	  queue_size: 10000            # changes held for receivers that are down
//	                               # or behind; 1..1000000. Default 10000.
//
//	# Links: one connection each (a TCP endpoint, a serial bus, a gateway),
//	# polled by one goroutine.
//	links:
//	  - id: sub1-gw                # required, unique, [A-Za-z0-9_.-]+
//	    url: tcp://10.1.2.3:502    # required, unique. tcp://host:port,
//	                               # tcp+tls://host:port, rtu:///dev/ttyS0,
//	                               # rtuovertcp://host:port
//	    timeout: 1s                # request timeout; > 0. Default poll.timeout.
//	    pause_after_connect: 0s    # wait after connecting (slow gateways); >= 0.
//	    backoff_initial: 500ms     # >= 10ms. Default poll.backoff_initial.
//	    backoff_max: 30s           # default poll.backoff_max; >= backoff_initial
//	    serial:                    # required for rtu:// (all four keys);
//	      baud: 19200              # baud required for rtuovertcp:// (it sets the
//	      data_bits: 8             # inter-frame timing); an error for tcp:// and
//	      parity: N                # tcp+tls://. data_bits 7|8, parity N|E|O,
//	      stop_bits: 1             # stop_bits 1|2, baud > 0.
//	    tls:                       # required for tcp+tls:// (all three keys),
//	      cert: client.crt         # an error for any other scheme.
//	      key: client.key
//	      ca: ca.crt
//
//	# Devices: one Modbus unit each, in poll order. A device's position in
//	# this list is its index in samples.
//	devices:
//	  - id: F101-BRK               # required, unique, [A-Za-z0-9_.-]+
//	    link: sub1-gw              # required; a link id
//	    unit: 1                    # required; 0..247, 0 only on tcp:// and
//	                               # tcp+tls:// links; unique on its link.
//	    profile: sel751a           # required; a profile's name
//	    feeder: F101               # required, [A-Za-z0-9_.-]+
//	    upstream: ""               # the device upstream on the same feeder, ""
//	                               # at the source; no cycles. Exactly one
//	                               # device of each feeder has none.
//	    kind: breaker              # breaker | recloser | sectionalizer | switch |
//	                               # sensor | meter. Default inferred from the
//	                               # roles of the device's points (profile's and
//	                               # own): recloser with lockout or shot_count,
//	                               # else breaker with breaker_closed, else meter.
//	    nominal_voltage: 7200      # 1 pu in volts as reported after scale and
//	                               # pt_ratio; > 0. Required when the device has
//	                               # a voltage_a/b/c point.
//	    pt_ratio: 1                # > 0. Default 1.
//	    interval: 1s               # >= 10ms. Default poll.interval.
//	    timeout: 1s                # > 0 and < interval. Default poll.timeout
//	                               # (which may equal the interval). Ends the
//	                               # device's poll; a request on a shared link
//	                               # waits the link's longest timeout (one per
//	                               # connection; check-config notes it).
//	    labels: {substation: north}  # extra InfluxDB tags: at most 8, keys
//	                               # [a-z_]+ other than feeder, device, point,
//	                               # unit and role; values non-empty.
//	    quirks:                    # workarounds for real equipment
//	      one_request_per_point: false  # never coalesce. Default false.
//	      pause_between_requests: 0s    # >= 0. Default 0s.
//	      max_registers: 125       # per request, 1..125. Default 125.
//	      max_bits: 2000           # per request, 1..2000. Default 2000.
//	      max_gap: 10              # 0..124, 0 = never read a gap. Default
//	                               # poll.max_gap.
//	    points: []                 # extra points after the profile's, same
//	                               # schema as a profile's points; their names,
//	                               # roles and registers must not repeat the
//	                               # profile's. A point needing more registers
//	                               # than quirks.max_registers is an error.
//
//	# Feeders: the customers behind each device and the ties between
//	# feeders, for outages, customer impact and IEEE 1366 indices. Optional:
//	# a feeder that devices name and this list does not has no customers.
//	feeders:
//	  - id: F101                   # required; a feeder that devices name; once.
//	    sections:                  # the load served through one device
//	      - id: F101-S2            # required, unique among all sections,
//	                               # [A-Za-z0-9_.-]+
//	        fed_by: F101-REC       # required; a device of this feeder: the
//	                               # section is out while that device is
//	                               # de-energized or open.
//	        customers: 600         # customers served; >= 0.
//	        critical:              # customers among them who need priority
//	                               # restoration; at most `customers`.
//	          - name: St Mary's Hospital  # required; in one section only.
//	            kind: hospital     # hospital | life_support | water |
//	                               # emergency | other
//	    ties:                      # normally open switches from other feeders
//	      - device: TIE-12         # required; a device of another feeder.
//	        to: F101-SW            # required; the device of this feeder whose
//	                               # input the tie feeds when it is closed and
//	                               # energized. Tied feeders share a shard.
//
// At most 65535 points per device (profile and own together).
type rawConfig struct {
	Profiles []string    `yaml:"profiles"`
	Poll     rawPoll     `yaml:"poll"`
	Influx   *rawInflux  `yaml:"influx"`
	HTTP     rawHTTP     `yaml:"http"`
	Detect   rawDetect   `yaml:"detect"`
	Pipeline rawPipeline `yaml:"pipeline"`
	Alerting *rawAlerts  `yaml:"alerting"`
	Links    []rawLink   `yaml:"links"`
	Devices  []rawDevice `yaml:"devices"`
	Feeders  []rawFeeder `yaml:"feeders"`
}

// rawProfile is a profile file as written: the register map of one device
// model. Every key is below; any other key is an error.
//
//	name: sel751a          # required, unique among loaded profiles, [A-Za-z0-9_.-]+
//	vendor: SEL            # free text
//	model: SEL-751A        # free text
//	line_to_line: false    # true when the voltage roles are phase-to-phase. Default false.
//	points:                # at least one
//	  - name: va           # required, [a-z0-9_]+, unique in the profile
//	    table: holding     # required: coil | discrete_input | holding | input
//	    address: 674       # 0-based wire address, 0..65535, or
//	    register: 675      # the 1-based register number of manuals (address + 1);
//	                       # exactly one of the two. The point's last register
//	                       # (address + words - 1) must be <= 65535.
//	    type: int16        # required: bool (coil, discrete_input only) | bit |
//	                       # int16 | uint16 | int32 | uint32 | int64 | uint64 |
//	                       # float32 | float64 | string (holding, input only)
//	    bit: 0             # type bit only, required there: 0..15 (0 = least significant)
//	    length: 8          # type string only, required there: registers, 1..125
//	    order: ABCD        # ABCD | CDAB | BADC | DCBA. Default ABCD.
//	    scale: 1           # value = raw * scale + offset; != 0. Default 1.
//	    offset: 0          # Default 0.
//	    unit: V            # free text, e.g. V, A, kW, Hz
//	    role: voltage_a    # what detection reads it as, at most one point per
//	                       # role: voltage_a|b|c, current_a|b|c|n, active_power,
//	                       # reactive_power, power_factor, frequency, energy,
//	                       # breaker_closed, lockout, shot_count, trip_count.
//	                       # Not on string points.
//	                       # In InfluxDB a point is the field named by its
//	                       # role, else by its name, and <field>_q when not
//	                       # good: a name that is another point's field or
//	                       # <field>_q, or ok or seq, is an error.
//
// Points of one table may not share registers, except bit points, which may
// share a register with each other (different bits) and with integer points.
type rawProfile struct {
	Name       string     `yaml:"name"`
	Vendor     string     `yaml:"vendor"`
	Model      string     `yaml:"model"`
	LineToLine bool       `yaml:"line_to_line"`
	Points     []rawPoint `yaml:"points"`
}

type rawPoint struct {
	Name     string   `yaml:"name"`
	Table    string   `yaml:"table"`
	Address  *int     `yaml:"address"`
	Register *int     `yaml:"register"`
	Type     string   `yaml:"type"`
	Bit      *int     `yaml:"bit"`
	Length   *int     `yaml:"length"`
	Order    string   `yaml:"order"`
	Scale    *float64 `yaml:"scale"`
	Offset   float64  `yaml:"offset"`
	Unit     string   `yaml:"unit"`
	Role     string   `yaml:"role"`
}

// The type of each block (rawPoll, rawLink, rawDevice, ...) lives in the
// file of its block, next to the code that checks it. The profile file's
// types stay above, under their reference.
