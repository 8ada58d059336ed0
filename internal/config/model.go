package config

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/topology"
)

// Model is the validated, immutable configuration that every component
// shares. Nothing changes it after Load returns; a reload builds a new one.
type Model struct {
	// Source is the path of the file it was loaded from.
	Source string
	Poll   PollDefaults
	Influx Influx
	HTTP   HTTP
	// Detect holds the detection thresholds, detect.DefaultParams() with
	// the file's overrides; Load has checked them with Validate.
	Detect   detect.Params
	Pipeline Pipeline
	// Alerting is where alerts go; without receivers none are sent.
	Alerting Alerting
	Profiles map[string]*profile.Profile
	Links    []*Link
	// Devices in file order; a device's position is its Index and the
	// sample.Sample.Device of its samples.
	Devices []*Device
	// Topology is every feeder: its devices' upstream tree, and the
	// sections, customers and ties the feeders block gives it (a feeder the
	// block does not list has no customers). Its nodes are the devices:
	// Spec of a node is its device's Index.
	Topology *topology.Topology
}

// PollDefaults apply to every link and device that does not set its own.
type PollDefaults struct {
	Interval       time.Duration // default 1s
	Timeout        time.Duration // default 1s (RTU 300ms is the library's, we use ours)
	BackoffInitial time.Duration // default 500ms
	BackoffMax     time.Duration // default 30s
	// MaxGap: registers of gap read and thrown away to merge two requests,
	// default 10; 0 means never read a gap.
	MaxGap uint16
	// StaleAfter: a point whose last good value is older than this many
	// intervals is reported stale (default 3).
	StaleAfter int
	// SlotTime stamps a poll's samples with its schedule slot, the slots
	// aligned to the wall clock, instead of the read time: instances
	// polling the same devices write the same series and times.
	SlotTime bool
}

// Influx is where measurements go.
type Influx struct {
	URL    string // http(s)://host:port
	Org    string // "" for InfluxDB 1.8
	Bucket string // "db/rp" for InfluxDB 1.8
	// Token is read from TokenEnv or TokenFile, never from the YAML.
	Token         Secret
	BatchSize     int           // lines per write, default 5000
	FlushInterval time.Duration // default 1s
	QueueSize     int           // lines buffered while InfluxDB is slow or down, default 200000
	Timeout       time.Duration // per write, default 10s
	Measurement   string        // default "feeder_point"
	Gzip          bool          // compress write requests, default false
	// SpoolBudget is the spool's disk budget in bytes (default 1 GiB).
	SpoolBudget int64
	// SpoolFsync 0 syncs the spool after every batch; otherwise at most
	// this long after (default 0).
	SpoolFsync time.Duration
	// Disabled turns the sink off (no url in the file).
	Disabled bool
}

// HTTP is feederd's own server (metrics, health, API).
type HTTP struct {
	Listen string // default 127.0.0.1:9108
	// Token is the service desk's bearer token; empty: none.
	Token Secret
	// TLSCert and TLSKey are PEM files (resolved paths); empty: plain HTTP.
	TLSCert, TLSKey string
}

// Pipeline sizes the path from pollers to the sinks.
type Pipeline struct {
	// Shards is the number of shard workers, each with its own ingest ring
	// and whole feeders. 0, the default, means one per GOMAXPROCS: the app
	// resolves it, config keeps the 0.
	Shards int
	// RingSize is the capacity of each shard's ingest ring in samples, a
	// power of two in 1024..4194304; default 65536.
	RingSize int
	// DropPolicy says which sample a full ring loses: DropOldest (the
	// default) or DropNewest.
	DropPolicy string
}

// Alerting configures alert delivery (internal/alert).
type Alerting struct {
	// Alertmanagers each get every alert (an HA pair: both).
	Alertmanagers []AlertReceiver
	// Webhooks get a JSON POST of every change.
	Webhooks       []AlertReceiver
	ResendInterval time.Duration // default 60s
	ActiveFor      time.Duration // default 4m
	ResolvedFor    time.Duration // default 15m
	Timeout        time.Duration // per request, default 10s
	QueueSize      int           // changes held for receivers behind, default 10000
}

// Enabled reports whether any receiver is configured.
func (a *Alerting) Enabled() bool { return len(a.Alertmanagers)+len(a.Webhooks) > 0 }

// AlertReceiver is one Alertmanager or webhook.
type AlertReceiver struct {
	// Name labels its metrics: as configured, or alertmanager-<index>,
	// webhook-<index>.
	Name string
	URL  string
	// Secret signs webhook bodies (HMAC-SHA256); empty: unsigned.
	Secret Secret
}

// Values of Pipeline.DropPolicy.
const (
	DropOldest = "oldest"
	DropNewest = "newest"
)

// DeviceKind is what a device is on the feeder, which tells detection and
// outage localisation what its open or closed state means.
type DeviceKind string

const (
	KindBreaker       DeviceKind = "breaker"
	KindRecloser      DeviceKind = "recloser"
	KindSectionalizer DeviceKind = "sectionalizer"
	KindSwitch        DeviceKind = "switch"
	KindSensor        DeviceKind = "sensor"
	KindMeter         DeviceKind = "meter"
)

// Valid reports whether k is one of the kinds above.
func (k DeviceKind) Valid() bool {
	switch k {
	case KindBreaker, KindRecloser, KindSectionalizer, KindSwitch, KindSensor, KindMeter:
		return true
	}
	return false
}

// Scheme of a link URL.
type Scheme string

const (
	SchemeTCP        Scheme = "tcp"
	SchemeTLS        Scheme = "tcp+tls"
	SchemeRTU        Scheme = "rtu"
	SchemeRTUOverTCP Scheme = "rtuovertcp"
)

// Link is one connection: a TCP endpoint, a serial bus or a gateway. One
// goroutine owns it and polls its devices in turn.
type Link struct {
	ID      string
	URL     string // as given, e.g. tcp://10.1.2.3:502, rtu:///dev/ttyS0
	Scheme  Scheme
	Timeout time.Duration
	// Serial is set for rtu:// (all fields) and rtuovertcp:// (Baud, which
	// drives inter-frame timing there; the other fields only if given).
	Serial *Serial
	// TLS is set for tcp+tls:// only.
	TLS *TLS
	// BackoffInitial and BackoffMax bound reconnect delays.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// PauseAfterConnect is a quirk of some gateways.
	PauseAfterConnect time.Duration
	Devices           []*Device
}

// Serial line settings; all explicit, no library defaults.
type Serial struct {
	Baud     int    // e.g. 9600, 19200
	DataBits int    // 7 or 8
	Parity   string // "N", "E", "O"
	StopBits int    // 1 or 2
}

// TLS is Modbus/TCP Security: a client certificate and the CA that signed
// the server's. Relative file names in the configuration are resolved
// against its directory here; the files are read when the link connects.
type TLS struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Quirks are per-device workarounds for real equipment.
type Quirks struct {
	OneRequestPerPoint   bool
	PauseBetweenRequests time.Duration
	MaxRegisters         uint16 // per request, default 125 (bits: 2000)
	MaxBits              uint16
	MaxGap               uint16 // registers of gap filled when coalescing; 0: never
}

// Device is one Modbus unit on a link.
type Device struct {
	Index    uint32
	ID       string
	Feeder   string
	Upstream string // the device ID upstream on the feeder, "" at the source
	// Kind is as configured or, without a kind key, inferred from the
	// roles of the device's points (see rawConfig).
	Kind    DeviceKind
	Link    *Link
	Unit    uint8
	Profile *profile.Profile
	// Points are the profile's points followed by the device's own.
	Points   []profile.Point
	Interval time.Duration
	Timeout  time.Duration
	Quirks   Quirks
	// NominalVoltage is 1 pu in volts as the device reports them after
	// scaling, line-to-neutral unless the profile says line-to-line.
	NominalVoltage float64
	// PTRatio multiplies secondary volts reported by the device; 1 when it
	// reports primary volts.
	PTRatio float64
	// Labels are extra InfluxDB tags (substation, region), bounded by config.
	Labels map[string]string
}

// Secret holds a credential; it never prints or logs its value.
type Secret struct{ v string }

// NewSecret wraps a credential.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the credential, for the one call that needs it.
func (s Secret) Reveal() string { return s.v }

// String never shows the value.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Format keeps every fmt verb, %#v and %d included, from printing the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalText keeps encoders (JSON, YAML) from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
