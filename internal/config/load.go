// Package config turns feederd's YAML configuration and device profiles into
// one validated, immutable Model. It exists so that every mistake an operator
// can make in a file is found before anything starts, all at once, each with
// the file, line and key path that caused it ("check-config" runs only this).
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// LoadOptions are Load's dependencies.
type LoadOptions struct {
	// Getenv reads the variable named by influx.token_env. nil means an
	// empty environment: main passes os.Getenv.
	Getenv func(string) string
	// ReadFile reads the configuration, profile and token files. nil means
	// ReadFile: regular files of at most MaxFileSize bytes.
	ReadFile func(string) ([]byte, error)
}

// Load reads, validates and resolves the configuration file at path and the
// profile and token files it names. Validation errors come back as *Errors,
// every one of them, with file names as given (relative names joined to the
// configuration file's directory).
func Load(path string, opts LoadOptions) (*Model, error) {
	l := &loader{
		path:     path,
		dir:      filepath.Dir(path),
		getenv:   opts.Getenv,
		readFile: opts.ReadFile,
		d:        defaults(),
		s:        newSink(path),
	}
	if l.getenv == nil {
		l.getenv = func(string) string { return "" }
	}
	if l.readFile == nil {
		l.readFile = ReadFile
	}
	data, err := l.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	m := l.load(data)
	errs := Errors(l.s.sorted())
	for _, ps := range l.profileSinks {
		errs = append(errs, ps.sorted()...)
	}
	if len(errs) > 0 {
		return nil, &errs
	}
	return m, nil
}

type loader struct {
	path, dir    string
	getenv       func(string) string
	readFile     func(string) ([]byte, error)
	d            defaultValues
	s            *sink
	profileSinks []*sink
}

func (l *loader) load(data []byte) *Model {
	var raw rawConfig
	if !decodeFile(data, &raw, l.s) {
		return nil
	}
	m := &Model{Source: l.path, Profiles: map[string]*profile.Profile{}}
	broken := l.loadProfiles(raw.Profiles, m)
	m.Poll = l.poll(&raw.Poll)
	m.Influx = l.influx(raw.Influx)
	m.HTTP = l.http(&raw.HTTP)
	m.Detect = l.detection(&raw.Detect)
	m.Pipeline = l.pipeline(&raw.Pipeline)
	m.Alerting = l.alerting(raw.Alerting)
	links := l.links(raw.Links, m)
	l.devices(raw.Devices, m, links, broken)
	l.topology(raw.Feeders, m)
	l.sizes(&raw, m)
	l.memory(m)
	return m
}

// Sizes the file may leave to the fleet (raw.go: pipeline.ring_size and
// influx.queue_size).
const (
	// A ring holds a second of its shard's samples, at least minDerivedRing.
	minDerivedRing = 1 << 14
	maxDerivedRing = 1 << 20
	// The queue holds queueSeconds of poll lines, at least one batch and at
	// most maxDerivedQueue lines; past that the spool takes the overflow.
	queueSeconds    = 30
	maxDerivedQueue = 200_000
)

// sizes derives the ring and queue sizes the file does not set from the
// fleet: its samples and poll lines a second.
func (l *loader) sizes(raw *rawConfig, m *Model) {
	var samples, lines float64
	feeders := map[string]bool{}
	for _, d := range m.Devices {
		if d.Interval <= 0 {
			continue
		}
		perSec := float64(time.Second) / float64(d.Interval)
		samples += float64(len(d.Points)+1) * perSec
		lines += perSec
		feeders[d.Feeder] = true
	}
	if raw.Pipeline.RingSize == nil {
		shards := m.Pipeline.Shards
		if shards == 0 {
			shards = runtime.GOMAXPROCS(0)
		}
		rings := float64(min(max(len(feeders), 1), shards))
		n := minDerivedRing
		for float64(n) < samples/rings && n < maxDerivedRing {
			n <<= 1
		}
		m.Pipeline.RingSize = n
	}
	if raw.Influx != nil && raw.Influx.QueueSize == nil {
		q := min(int(lines*queueSeconds), maxDerivedQueue)
		m.Influx.QueueSize = max(q, m.Influx.BatchSize)
	}
}

// Memory bounds. The pipeline makes min(shards, feeders) rings (shards 0:
// GOMAXPROCS of the machine that loads the file), each of ring_size slots of
// ringSlotBytes; together they may take at most MaxRingBytes. The influx
// queue holds at most MaxQueueSize lines of one device poll each (150 to 600
// bytes with the shipped profiles).
const (
	MaxRingBytes  = 1 << 30
	ringSlotBytes = int64(unsafe.Sizeof(sample.Sample{})) + 8 // the sample and its sequence number
	MaxQueueSize  = 5_000_000
)

// memory checks the memory the pipeline rings and the influx queue imply.
func (l *loader) memory(m *Model) {
	if m.Influx.QueueSize > MaxQueueSize {
		l.s.add("influx.queue_size", "queue_size %d is more than %d lines", m.Influx.QueueSize, MaxQueueSize)
	}
	p := m.Pipeline
	if p.RingSize < minRingSize || p.RingSize > MaxRingSize || p.Shards < 0 || p.Shards > maxShards {
		return // reported by pipeline
	}
	feeders := map[string]bool{}
	for _, d := range m.Devices {
		feeders[d.Feeder] = true
	}
	shards := p.Shards
	if shards == 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	rings := int64(min(max(len(feeders), 1), shards))
	if need := rings * int64(p.RingSize) * ringSlotBytes; need > MaxRingBytes {
		path := "pipeline.ring_size"
		if !l.s.Has(path) {
			path = "pipeline.shards"
		}
		l.s.add(path, "%d rings of %d samples need %d MiB, more than the %d MiB allowed: lower ring_size or shards",
			rings, p.RingSize, need>>20, MaxRingBytes>>20)
	}
}

// resolve makes a path from the file relative to the file's directory.
func (l *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// loadProfiles fills m.Profiles and returns the names of profiles whose
// files have errors, so that devices using them are not also told that the
// profile is unknown.
func (l *loader) loadProfiles(paths []string, m *Model) map[string]bool {
	broken := map[string]bool{}
	fileLine := map[string]int{}
	for i, rel := range paths {
		path := indexPath("profiles", i)
		if rel == "" {
			l.s.add(path, "empty path")
			continue
		}
		file := l.resolve(rel)
		if line, dup := fileLine[file]; dup {
			l.s.add(path, "profile file %q listed twice (first at line %d)", rel, line)
			continue
		}
		fileLine[file] = l.s.line(path)
		data, err := l.readFile(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				l.s.addErr(path, err, "profile file %q not found", rel)
			} else {
				l.s.addErr(path, err, "read profile file %q: %v", rel, err)
			}
			continue
		}
		p, ps := parseProfile(data, file, l.d)
		if ps.Len() > 0 {
			l.profileSinks = append(l.profileSinks, ps)
			if p != nil && p.Name != "" {
				broken[p.Name] = true
			}
			continue
		}
		if first, dup := m.Profiles[p.Name]; dup {
			l.s.add(path, "profile name %q is already used by %s", p.Name, first.Source)
			continue
		}
		m.Profiles[p.Name] = p
	}
	return broken
}

func (l *loader) positive(path string, d time.Duration) {
	if d <= 0 {
		l.s.add(path, "must be > 0, got %s", d)
	}
}

// minInterval and minBackoff are floors on poll intervals and reconnect
// delays: below them a link's goroutine would spin, burning a core on a
// typo such as "1ns" while achieving nothing a device could answer.
const (
	minInterval = 10 * time.Millisecond
	minBackoff  = 10 * time.Millisecond
)

// atLeast checks that d is positive and no shorter than floor.
func (l *loader) atLeast(path string, d, floor time.Duration) {
	switch {
	case d <= 0:
		l.s.add(path, "must be > 0, got %s", d)
	case d < floor:
		l.s.add(path, "must be at least %s, got %s", floor, d)
	}
}

func (l *loader) nonNegative(path string, d time.Duration) {
	if d < 0 {
		l.s.add(path, "must be >= 0, got %s", d)
	}
}

func (l *loader) poll(r *rawPoll) PollDefaults {
	p := l.d.Poll
	if r.Interval != nil {
		p.Interval = *r.Interval
		l.atLeast("poll.interval", p.Interval, minInterval)
	}
	if r.Timeout != nil {
		p.Timeout = *r.Timeout
		l.positive("poll.timeout", p.Timeout)
	}
	if p.Interval > 0 && p.Timeout > p.Interval {
		l.s.add("poll.timeout", "timeout %s must not exceed interval %s", p.Timeout, p.Interval)
	}
	if r.BackoffInitial != nil {
		p.BackoffInitial = *r.BackoffInitial
		l.atLeast("poll.backoff_initial", p.BackoffInitial, minBackoff)
	}
	if r.BackoffMax != nil {
		p.BackoffMax = *r.BackoffMax
	}
	if p.BackoffMax < p.BackoffInitial {
		l.s.add("poll.backoff_max", "backoff_max %s is shorter than backoff_initial %s", p.BackoffMax, p.BackoffInitial)
	}
	if r.MaxGap != nil {
		if g := *r.MaxGap; g < 0 || g > 124 {
			l.s.add("poll.max_gap", "max_gap %d out of range 0..124", g)
		} else {
			p.MaxGap = uint16(g)
		}
	}
	if r.SlotTime != nil {
		p.SlotTime = *r.SlotTime
	}
	if r.StaleAfter != nil {
		p.StaleAfter = *r.StaleAfter
		if p.StaleAfter < 1 {
			l.s.add("poll.stale_after", "stale_after %d must be at least 1", p.StaleAfter)
		}
	}
	return p
}

func (l *loader) influx(r *rawInflux) Influx {
	if r == nil {
		return Influx{Disabled: true}
	}
	in := l.d.Influx
	in.URL, in.Org, in.Bucket = r.URL, r.Org, r.Bucket
	if r.URL == "" {
		l.s.add("influx.url", "required (omit the influx block to disable the sink)")
	} else {
		l.httpURL("influx.url", r.URL, "credentials in the url: secrets must come from token_env or token_file")
	}
	if r.Bucket == "" {
		l.s.add("influx.bucket", `required ("db/rp" for InfluxDB 1.8)`)
	}
	if r.Token != nil {
		l.s.add("influx.token", "secrets must come from token_env or token_file")
	} else {
		in.Token = l.readSecret("influx", "token", r.TokenEnv, r.TokenFile)
	}
	if r.BatchSize != nil {
		in.BatchSize = *r.BatchSize
		if in.BatchSize <= 0 {
			l.s.add("influx.batch_size", "must be > 0, got %d", in.BatchSize)
		}
	}
	if r.QueueSize != nil {
		in.QueueSize = *r.QueueSize
	}
	if in.QueueSize < in.BatchSize {
		l.s.add("influx.queue_size", "queue_size %d is smaller than batch_size %d", in.QueueSize, in.BatchSize)
	}
	if r.FlushInterval != nil {
		in.FlushInterval = *r.FlushInterval
		l.positive("influx.flush_interval", in.FlushInterval)
	}
	if r.Timeout != nil {
		in.Timeout = *r.Timeout
		l.positive("influx.timeout", in.Timeout)
	}
	if r.Measurement != nil {
		in.Measurement = *r.Measurement
		if !validID(in.Measurement) {
			l.s.add("influx.measurement", "invalid measurement %q (want [A-Za-z0-9_.-]+)", in.Measurement)
		}
	}
	if r.Gzip != nil {
		in.Gzip = *r.Gzip
	}
	if r.SpoolBudgetMB != nil {
		// The upper bound keeps the byte count from overflowing.
		if mb := *r.SpoolBudgetMB; mb < 1 || mb > 1<<30 {
			l.s.add("influx.spool_budget_mb", "must be 1..%d, got %d", 1<<30, mb)
		} else {
			in.SpoolBudget = mb << 20
		}
	}
	if r.SpoolFsync != nil && *r.SpoolFsync != "batch" {
		d, err := time.ParseDuration(*r.SpoolFsync)
		if err != nil || d <= 0 {
			l.s.add("influx.spool_fsync", `want "batch" or a duration > 0, got %q`, *r.SpoolFsync)
		} else {
			in.SpoolFsync = d
		}
	}
	return in
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (l *loader) http(r *rawHTTP) HTTP {
	h := l.d.HTTP
	if r.Listen != nil {
		h.Listen = *r.Listen
		_, port, err := net.SplitHostPort(h.Listen)
		if err == nil {
			_, err = strconv.ParseUint(port, 10, 16)
		}
		if err != nil {
			l.s.add("http.listen", "invalid listen address %q (want host:port)", h.Listen)
		}
	}
	l.httpSecurity(r, &h)
	return h
}

func (l *loader) pipeline(r *rawPipeline) Pipeline {
	p := l.d.Pipeline
	if r.Shards != nil {
		p.Shards = *r.Shards
		if p.Shards < 0 || p.Shards > maxShards {
			l.s.add("pipeline.shards", "shards %d out of range 0..%d (0: one per GOMAXPROCS)", p.Shards, maxShards)
		}
	}
	if r.RingSize != nil {
		p.RingSize = *r.RingSize
		switch n := p.RingSize; {
		case n < minRingSize || n > MaxRingSize:
			l.s.add("pipeline.ring_size", "ring_size %d out of range %d..%d", n, minRingSize, MaxRingSize)
		case n&(n-1) != 0:
			up := minRingSize
			for up < n {
				up <<= 1
			}
			l.s.add("pipeline.ring_size", "ring_size %d is not a power of two (try %d)", n, up)
		}
	}
	if r.DropPolicy != nil {
		p.DropPolicy = *r.DropPolicy
		if p.DropPolicy != DropOldest && p.DropPolicy != DropNewest {
			l.s.add("pipeline.drop_policy", "unknown drop_policy %q (want oldest or newest)", p.DropPolicy)
		}
	}
	return p
}

const (
	maxShards   = 1024
	minRingSize = 1 << 10
	// MaxRingSize is the largest pipeline.ring_size accepted: the largest
	// ring internal/ring makes (a pipeline test checks that they agree).
	MaxRingSize = 1 << 22
)

func (l *loader) links(raws []rawLink, m *Model) map[string]*Link {
	byID := map[string]*Link{}
	idLine := map[string]int{}
	urlOwner := map[string]int{}
	for i := range raws {
		r := &raws[i]
		path := indexPath("links", i)
		lk := &Link{
			ID:             r.ID,
			URL:            r.URL,
			Timeout:        m.Poll.Timeout,
			BackoffInitial: m.Poll.BackoffInitial,
			BackoffMax:     m.Poll.BackoffMax,
		}
		m.Links = append(m.Links, lk)
		switch line, dup := idLine[r.ID]; {
		case r.ID == "":
			l.s.add(path+".id", "required")
		case !validID(r.ID):
			l.s.add(path+".id", "invalid link id %q (want [A-Za-z0-9_.-]+)", r.ID)
		case dup:
			l.s.add(path+".id", "duplicate link id %q (first at line %d)", r.ID, line)
		default:
			idLine[r.ID] = l.s.line(path + ".id")
			byID[r.ID] = lk
		}

		lk.Scheme = l.linkURL(r.URL, path+".url")
		if lk.Scheme != "" {
			if first, dup := urlOwner[r.URL]; dup {
				l.s.add(path+".url", "url already used by link %q (line %d): one link per endpoint", raws[first].ID, l.s.line(indexPath("links", first)))
			} else {
				urlOwner[r.URL] = i
			}
		}

		if r.Timeout != nil {
			lk.Timeout = *r.Timeout
			l.positive(path+".timeout", lk.Timeout)
		}
		if r.PauseAfterConnect != nil {
			lk.PauseAfterConnect = *r.PauseAfterConnect
			l.nonNegative(path+".pause_after_connect", lk.PauseAfterConnect)
		}
		if r.BackoffInitial != nil {
			lk.BackoffInitial = *r.BackoffInitial
			l.atLeast(path+".backoff_initial", lk.BackoffInitial, minBackoff)
		}
		if r.BackoffMax != nil {
			lk.BackoffMax = *r.BackoffMax
		}
		if (r.BackoffInitial != nil || r.BackoffMax != nil) && lk.BackoffMax < lk.BackoffInitial {
			l.s.add(path+".backoff_max", "backoff_max %s is shorter than backoff_initial %s", lk.BackoffMax, lk.BackoffInitial)
		}

		switch lk.Scheme {
		case SchemeRTU, SchemeRTUOverTCP:
			if r.Serial == nil {
				if lk.Scheme == SchemeRTU {
					l.s.add(path+".serial", "required for rtu:// links (baud, data_bits, parity, stop_bits)")
				} else {
					l.s.add(path+".serial", "required for rtuovertcp:// links (at least baud)")
				}
			} else {
				lk.Serial = l.serial(r.Serial, path+".serial", lk.Scheme)
			}
		case SchemeTCP, SchemeTLS:
			if r.Serial != nil {
				l.s.add(path+".serial", "only for rtu:// and rtuovertcp:// links")
			}
		}
		switch {
		case lk.Scheme == SchemeTLS && r.TLS == nil:
			l.s.add(path+".tls", "required for tcp+tls:// links (cert, key, ca)")
		case lk.Scheme == SchemeTLS:
			lk.TLS = &TLS{}
			for _, f := range []struct {
				key string
				in  string
				out *string
			}{{"cert", r.TLS.Cert, &lk.TLS.CertFile}, {"key", r.TLS.Key, &lk.TLS.KeyFile}, {"ca", r.TLS.CA, &lk.TLS.CAFile}} {
				if f.in == "" {
					l.s.add(path+".tls."+f.key, "required for tcp+tls:// links")
				} else {
					*f.out = l.resolve(f.in)
				}
			}
		case r.TLS != nil && lk.Scheme != "":
			l.s.add(path+".tls", "only for tcp+tls:// links")
		}
	}
	return byID
}

// linkURL checks a link URL and returns its scheme, or "" when it is bad.
func (l *loader) linkURL(raw, path string) Scheme {
	if raw == "" {
		l.s.add(path, "required")
		return ""
	}
	if !strings.Contains(raw, "://") {
		l.s.add(path, "url %q has no scheme (want tcp://host:port, tcp+tls://host:port, rtu:///dev/ttyX or rtuovertcp://host:port)", raw)
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		l.s.add(path, "invalid url %q: %v", raw, unwrapURLError(err))
		return ""
	}
	switch s := Scheme(u.Scheme); s {
	case SchemeTCP, SchemeTLS, SchemeRTUOverTCP:
		if u.Hostname() == "" || u.Port() == "" || u.Port() == "0" {
			l.s.add(path, "url %q needs host:port", raw)
			return ""
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			l.s.add(path, "url %q: want %s://host:port and nothing else", raw, s)
			return ""
		}
		return s
	case SchemeRTU:
		if u.Host != "" || u.Path == "" || u.Path == "/" || u.RawQuery != "" {
			l.s.add(path, "url %q: want rtu:///dev/ttyX (three slashes, then the device path)", raw)
			return ""
		}
		return s
	default:
		l.s.add(path, "unsupported scheme %q (want tcp, tcp+tls, rtu or rtuovertcp)", u.Scheme)
		return ""
	}
}

// serial checks serial settings: all four are required on rtu://, only baud
// on rtuovertcp:// (where the others do not exist on the wire we speak).
func (l *loader) serial(r *rawSerial, path string, scheme Scheme) *Serial {
	full := scheme == SchemeRTU
	sr := &Serial{}
	required := func(key string) {
		l.s.add(path+"."+key, "required for %s:// links", scheme)
	}
	switch {
	case r.Baud == nil:
		required("baud")
	case *r.Baud <= 0:
		l.s.add(path+".baud", "baud %d must be > 0", *r.Baud)
	default:
		sr.Baud = *r.Baud
	}
	switch {
	case r.DataBits == nil:
		if full {
			required("data_bits")
		}
	case *r.DataBits != 7 && *r.DataBits != 8:
		l.s.add(path+".data_bits", "data_bits %d: want 7 or 8", *r.DataBits)
	default:
		sr.DataBits = *r.DataBits
	}
	switch {
	case r.Parity == nil:
		if full {
			required("parity")
		}
	case *r.Parity != "N" && *r.Parity != "E" && *r.Parity != "O":
		l.s.add(path+".parity", "parity %q: want N, E or O", *r.Parity)
	default:
		sr.Parity = *r.Parity
	}
	switch {
	case r.StopBits == nil:
		if full {
			required("stop_bits")
		}
	case *r.StopBits != 1 && *r.StopBits != 2:
		l.s.add(path+".stop_bits", "stop_bits %d: want 1 or 2", *r.StopBits)
	default:
		sr.StopBits = *r.StopBits
	}
	return sr
}

func (l *loader) devices(raws []rawDevice, m *Model, links map[string]*Link, brokenProfiles map[string]bool) {
	type linkUnit struct {
		link *Link
		unit int
	}
	unitOwner := map[linkUnit]int{}
	for i := range raws {
		r := &raws[i]
		path := indexPath("devices", i)
		key := func(k string) string { return path + "." + k }
		dv := &Device{
			Index:    uint32(i),
			ID:       r.ID,
			Feeder:   r.Feeder,
			Upstream: r.Upstream,
			Interval: m.Poll.Interval,
			Timeout:  m.Poll.Timeout,
			PTRatio:  l.d.PTRatio,
		}
		m.Devices = append(m.Devices, dv)

		// Missing and duplicate IDs are the topology's to report.
		if r.ID != "" && !validID(r.ID) {
			l.s.add(key("id"), "invalid device id %q (want [A-Za-z0-9_.-]+)", r.ID)
		}

		switch lk := links[r.Link]; {
		case r.Link == "":
			l.s.add(key("link"), "required")
		case lk == nil:
			l.s.add(key("link"), "unknown link %q", r.Link)
		default:
			dv.Link = lk
			lk.Devices = append(lk.Devices, dv)
		}

		switch {
		case r.Unit == nil:
			l.s.add(key("unit"), "required (0..247)")
		case *r.Unit < 0 || *r.Unit > 247:
			l.s.add(key("unit"), "unit %d out of range 0..247", *r.Unit)
		case *r.Unit == 0 && dv.Link != nil && (dv.Link.Scheme == SchemeRTU || dv.Link.Scheme == SchemeRTUOverTCP):
			l.s.add(key("unit"), "unit 0 is broadcast on serial lines: only tcp:// and tcp+tls:// links may use it")
		default:
			dv.Unit = uint8(*r.Unit)
			if dv.Link == nil {
				break
			}
			lu := linkUnit{dv.Link, *r.Unit}
			if first, dup := unitOwner[lu]; dup {
				l.s.add(key("unit"), "unit %d on link %q is already device %q (line %d)", *r.Unit, dv.Link.ID, raws[first].ID, l.s.line(indexPath("devices", first)))
			} else {
				unitOwner[lu] = i
			}
		}

		switch {
		case r.Feeder == "": // the topology's to report
		case !validID(r.Feeder):
			l.s.add(key("feeder"), "invalid feeder %q (want [A-Za-z0-9_.-]+)", r.Feeder)
		}

		prof := m.Profiles[r.Profile]
		switch {
		case r.Profile == "":
			l.s.add(key("profile"), "required")
		case prof == nil && !brokenProfiles[r.Profile]:
			l.s.add(key("profile"), "unknown profile %q", r.Profile)
		}
		dv.Profile = prof

		if r.PTRatio != nil {
			dv.PTRatio = *r.PTRatio
			if dv.PTRatio <= 0 {
				l.s.add(key("pt_ratio"), "must be > 0, got %g", dv.PTRatio)
			}
		}
		if r.NominalVoltage != nil {
			dv.NominalVoltage = *r.NominalVoltage
			if dv.NominalVoltage <= 0 {
				l.s.add(key("nominal_voltage"), "must be > 0, got %g", dv.NominalVoltage)
			}
		}

		if r.Interval != nil {
			dv.Interval = *r.Interval
			l.atLeast(key("interval"), dv.Interval, minInterval)
		}
		if r.Timeout != nil {
			dv.Timeout = *r.Timeout
			l.positive(key("timeout"), dv.Timeout)
		}
		switch {
		case dv.Interval <= 0 || dv.Timeout <= 0:
		case r.Timeout != nil && dv.Timeout >= dv.Interval:
			l.s.add(key("timeout"), "timeout %s must be shorter than interval %s", dv.Timeout, dv.Interval)
		case r.Timeout == nil && r.Interval != nil && dv.Timeout > dv.Interval:
			// With neither key of its own, the device only inherits a
			// conflict of the poll block, reported there once.
			l.s.add(key("interval"), "interval %s is shorter than poll.timeout %s: set a shorter timeout for the device", dv.Interval, dv.Timeout)
		}

		dv.Labels = l.labels(r.Labels, key("labels"))
		dv.Quirks = l.quirks(&r.Quirks, key("quirks"), m.Poll.MaxGap)
		dv.Points = l.devicePoints(r, path, prof, dv)
		dv.Kind = l.kind(r.Kind, key("kind"), dv.Points)
	}
}

// kind checks a device's kind or infers it from the roles of its points.
func (l *loader) kind(raw, path string, points []profile.Point) DeviceKind {
	if raw != "" {
		k := DeviceKind(raw)
		if !k.Valid() {
			l.s.add(path, "unknown kind %q (want breaker, recloser, sectionalizer, switch, sensor or meter)", raw)
		}
		return k
	}
	var closed, recloser bool
	for i := range points {
		switch points[i].Role {
		case profile.RoleBreakerClosed:
			closed = true
		case profile.RoleLockout, profile.RoleShotCount:
			recloser = true
		}
	}
	switch {
	case recloser:
		return KindRecloser
	case closed:
		return KindBreaker
	}
	return KindMeter
}

// devicePoints returns the profile's points followed by the device's own,
// in a new slice, and checks what depends on them.
func (l *loader) devicePoints(r *rawDevice, path string, prof *profile.Profile, dv *Device) []profile.Point {
	var base []profile.Point
	profName := r.Profile
	if prof != nil {
		base = prof.Points
		profName = prof.Name
	}
	points := make([]profile.Point, len(base), len(base)+len(r.Points))
	copy(points, base)
	refs := make([]pointRef, 0, len(points)+len(r.Points))
	for i := range points {
		refs = append(refs, pointRef{pt: &points[i], decl: i})
	}
	for i := range r.Points {
		pp := indexPath(path+".points", i)
		pt, addrKey, ok := buildPoint(&r.Points[i], pp, l.s, l.d)
		points = append(points, pt)
		if ok {
			refs = append(refs, pointRef{pt: &points[len(points)-1], path: pp, addrKey: addrKey, decl: len(points) - 1})
		}
	}
	if len(r.Points) > 0 {
		checkPoints(refs, l.s, profName)
	}
	if len(points) > maxPoints {
		l.s.add(path+".points", "%d points with the profile's, at most %d allowed", len(points), maxPoints)
	}
	if hasVoltageRole(points) && r.NominalVoltage == nil {
		l.s.add(path+".nominal_voltage", "required: the device has voltage points")
	}
	for i := range points {
		if p := &points[i]; !p.RegType.IsBit() && p.Words() > int(dv.Quirks.MaxRegisters) && dv.Quirks.MaxRegisters > 0 {
			l.s.add(path+".quirks.max_registers", "max_registers %d is less than the %d registers of point %q", dv.Quirks.MaxRegisters, p.Words(), p.Name)
			break
		}
	}
	return points
}

// reservedLabel reports whether a label key is a tag feederd sets itself.
func reservedLabel(k string) bool {
	switch k {
	case "feeder", "device", "point", "unit", "role":
		return true
	}
	return false
}

const maxLabels = 8

func (l *loader) labels(r map[string]string, path string) map[string]string {
	if len(r) == 0 {
		return nil
	}
	if len(r) > maxLabels {
		l.s.add(path, "%d labels, at most %d allowed", len(r), maxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(r)) {
		p := path + "." + k
		switch {
		case !validLabelKey(k):
			l.s.add(p, "invalid label key %q (want [a-z_]+)", k)
		case reservedLabel(k):
			l.s.add(p, "label %q is reserved (feederd sets feeder, device, point, unit and role)", k)
		case r[k] == "":
			l.s.add(p, "label %q has an empty value", k)
		}
	}
	return maps.Clone(r)
}

func (l *loader) quirks(r *rawQuirks, path string, pollGap uint16) Quirks {
	q := l.d.Quirks
	q.MaxGap = pollGap
	q.OneRequestPerPoint = r.OneRequestPerPoint
	if r.PauseBetweenRequests != nil {
		q.PauseBetweenRequests = *r.PauseBetweenRequests
		l.nonNegative(path+".pause_between_requests", q.PauseBetweenRequests)
	}
	if r.MaxRegisters != nil {
		if v := *r.MaxRegisters; v < 1 || v > 125 {
			l.s.add(path+".max_registers", "max_registers %d out of range 1..125", v)
			q.MaxRegisters = 0
		} else {
			q.MaxRegisters = uint16(v)
		}
	}
	if r.MaxBits != nil {
		if v := *r.MaxBits; v < 1 || v > 2000 {
			l.s.add(path+".max_bits", "max_bits %d out of range 1..2000", v)
		} else {
			q.MaxBits = uint16(v)
		}
	}
	if r.MaxGap != nil {
		if v := *r.MaxGap; v < 0 || v > 124 {
			l.s.add(path+".max_gap", "max_gap %d out of range 0..124", v)
		} else {
			q.MaxGap = uint16(v)
		}
	}
	return q
}
