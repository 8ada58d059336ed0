// Package influx turns samples into InfluxDB line protocol and delivers them
// in batches, through outages, without ever blocking the pollers.
//
// Schema (write precision ms): one line per device poll, so that a fleet of
// 10,000 devices polled every second writes 10,000 lines a second, not one
// per point.
//
//	<measurement>,device=<id>,feeder=<id>[,<label>=<value>...] <field>=<float>,...,<field>_q=<code>i,...,ok=1i|0i,seq=<n>i <ms>
//
// The measurement defaults to "feeder_point". Tags are the device, its
// feeder and its labels, sorted by key; a tag whose value is empty is left
// out; a label named device or feeder is ignored. A point's field is named
// by its role, else by its name (profile.Point.Field), so that one query
// reads phase-A voltage (voltage_a) on every device model; the config
// rejects a device whose field names would clash. A good value is a float
// field. A point that is not good in that poll has no number at all:
// instead <field>_q carries its quality code (1 exception, 2 timeout,
// 3 stale, 4 invalid, the sample.Quality values). A good NaN or infinity is
// written as invalid, since InfluxDB rejects such numbers. Text points are
// not written. ok is 1 when the device answered the poll (an integer, so
// that mean(ok) is the poll success ratio) and seq is the poll's schedule
// slot (a gap means missed polls). The time is that of the poll's last
// sample, the device-status sample: when the poll ended.
//
// Events (feeder_event) have a line each; see EventEncoder.
package influx

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// DefaultMeasurement holds the poll lines when the config names none.
const DefaultMeasurement = "feeder_point"

// Encoder turns the samples of device polls into one line per poll.
// Everything that depends only on the configuration (escaped measurement,
// tags and field keys) is built once by NewEncoder, so encoding copies
// prefixes and formats numbers. An Encoder is immutable and safe for
// concurrent use; the line being built belongs to a PollState that each
// caller owns.
type Encoder struct {
	devices []deviceKeys
}

type deviceKeys struct {
	// prefix is the line up to and including the space before the fields.
	prefix []byte
	// points[point] are the point's field keys; value is nil for a point
	// that is not written (text).
	points []fieldKeys
}

type fieldKeys struct {
	value   []byte // ",<field>="
	quality []byte // ",<field>_q="
	// bits is profile.Point.FloatBits: 32 for unscaled float32 points, whose
	// shortest float32 form ("230.1", not "230.10000610351562") reads back
	// as the same value.
	bits int
}

const (
	okField  = "," + profile.OKField + "="
	seqField = "," + profile.SeqField + "="
)

// NewEncoder builds the prefixes and field keys of every device of m.
func NewEncoder(m *config.Model) *Encoder {
	meas := m.Influx.Measurement
	if meas == "" {
		meas = DefaultMeasurement
	}
	e := &Encoder{devices: make([]deviceKeys, len(m.Devices))}
	for di, d := range m.Devices {
		tags := []tag{{"device", d.ID}, {"feeder", d.Feeder}}
		for k, v := range d.Labels {
			if k == "device" || k == "feeder" {
				continue
			}
			tags = append(tags, tag{k, v})
		}
		dk := deviceKeys{prefix: appendPrefix(nil, meas, tags), points: make([]fieldKeys, len(d.Points))}
		for pi := range d.Points {
			p := &d.Points[pi]
			if p.Type == profile.String {
				continue
			}
			fk := fieldKeys{bits: p.FloatBits()}
			fk.value = append(AppendTag(append(fk.value, ','), p.Field()), '=')
			fk.quality = append(AppendTag(append(fk.quality, ','), p.QualityField()), '=')
			dk.points[pi] = fk
		}
		e.devices[di] = dk
	}
	return e
}

type tag struct{ k, v string }

// appendPrefix appends `measurement,k=v,... ` with tags sorted by key and
// empty ones left out.
func appendPrefix(dst []byte, meas string, tags []tag) []byte {
	slices.SortFunc(tags, func(a, b tag) int { return strings.Compare(a.k, b.k) })
	dst = AppendMeasurement(dst, meas)
	for _, t := range tags {
		k := strings.TrimRight(t.k, `\`)
		v := strings.TrimRight(t.v, `\`)
		if k == "" || v == "" {
			continue
		}
		dst = append(dst, ',')
		dst = AppendTag(dst, k)
		dst = append(dst, '=')
		dst = AppendTag(dst, v)
	}
	return append(dst, ' ')
}

// PollState holds the line of the device poll being encoded, between the
// samples of that poll. Its zero value is ready to use. One goroutine owns
// it; once the line has grown to the size of a device's poll, encoding
// allocates nothing.
type PollState struct {
	open bool
	dev  uint32
	seq  uint32
	time int64
	// fields are the fields so far, each with a leading comma.
	fields []byte
}

// Append encodes samples and appends to dst each line that they complete,
// ending in '\n'. It returns dst and the number of lines appended.
//
// It relies on the samples of one device poll coming in a row, as the
// poller hands a poll over (poll.Sink) and the pipeline puts it into its
// shard's ring (one ring.PutBatch per poll). A poll may be split across
// calls: st carries the line, and dst gets it only once the poll's last
// sample (flagged sample.EndOfPoll) has been encoded. A sample of another
// poll (another device or Seq) before that completes the open line without
// it: a full ring dropped the rest of the poll, or put another producer's
// samples inside it. Then the part that came is written as it is (with no
// ok field when the device-status sample was lost), and any later part of
// that poll makes a line of its own. Samples of devices not in the model
// are skipped.
func (e *Encoder) Append(dst []byte, st *PollState, samples []sample.Sample) ([]byte, int) {
	n := 0
	for i := range samples {
		s := &samples[i]
		if int(s.Device) >= len(e.devices) {
			continue
		}
		if st.open && (s.Device != st.dev || s.Seq != st.seq) {
			dst = e.complete(dst, st)
			n++
		}
		if !st.open {
			st.open, st.dev, st.seq = true, s.Device, s.Seq
			st.fields = st.fields[:0]
		}
		st.time = s.Time
		d := &e.devices[s.Device]
		switch {
		case s.Flags&sample.DeviceStatus != 0 || s.Point == sample.NoPoint:
			st.fields = append(st.fields, okField...)
			if s.Value != 0 {
				st.fields = append(st.fields, '1', 'i')
			} else {
				st.fields = append(st.fields, '0', 'i')
			}
		case int(s.Point) < len(d.points) && d.points[s.Point].value != nil:
			fk := &d.points[s.Point]
			q := s.Quality
			if q == sample.Good && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) {
				q = sample.Invalid
			}
			if q == sample.Good {
				st.fields = append(st.fields, fk.value...)
				st.fields = strconv.AppendFloat(st.fields, s.Value, 'g', -1, fk.bits)
			} else {
				st.fields = append(st.fields, fk.quality...)
				st.fields = strconv.AppendUint(st.fields, uint64(q), 10)
				st.fields = append(st.fields, 'i')
			}
		}
		if s.Flags&sample.EndOfPoll != 0 {
			dst = e.complete(dst, st)
			n++
		}
	}
	return dst, n
}

// complete appends the open line of st, with its seq field, and closes it.
func (e *Encoder) complete(dst []byte, st *PollState) []byte {
	st.fields = append(st.fields, seqField...)
	st.fields = strconv.AppendUint(st.fields, uint64(st.seq), 10)
	st.fields = append(st.fields, 'i')
	dst = append(dst, e.devices[st.dev].prefix...)
	dst = append(dst, st.fields[1:]...) // without the first field's comma
	dst = append(dst, ' ')
	st.open = false
	return appendTime(dst, st.time)
}

// appendTime appends a Unix-nanosecond time in milliseconds and the newline.
func appendTime(dst []byte, ns int64) []byte {
	ms := ns / 1e6
	if ns < 0 && ns%1e6 != 0 {
		ms-- // floor, so that a time before 1970 does not round up
	}
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n')
}

// AppendMeasurement appends a measurement name with commas and spaces
// escaped.
//
// Two things cannot be written in line protocol and are changed: a control
// character (newline, tab, ... DEL) becomes a space, and trailing
// backslashes are dropped,
// because InfluxDB takes a backslash before the separator that follows a
// name for an escape. The same holds for AppendTag.
func AppendMeasurement(dst []byte, s string) []byte {
	return appendEscaped(dst, s, false)
}

// AppendTag appends a tag key, tag value or field key with commas, equals
// signs and spaces escaped (see AppendMeasurement for what is changed).
func AppendTag(dst []byte, s string) []byte {
	return appendEscaped(dst, s, true)
}

func appendEscaped(dst []byte, s string, equals bool) []byte {
	s = strings.TrimRight(s, `\`)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == ' ' || (equals && c == '='):
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// EscapeMeasurement returns s escaped as a measurement name.
func EscapeMeasurement(s string) string { return string(AppendMeasurement(nil, s)) }

// EscapeTag returns s escaped as a tag key, tag value or field key.
func EscapeTag(s string) string { return string(AppendTag(nil, s)) }

// AppendStringField appends key="value" with the key escaped as a field key
// and the value's double quotes and backslashes escaped.
func AppendStringField(dst []byte, key, value string) []byte {
	dst = AppendTag(dst, key)
	dst = append(dst, '=', '"')
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
