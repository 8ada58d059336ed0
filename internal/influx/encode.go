// Package influx turns samples into InfluxDB line protocol and delivers them
// in batches, through outages, without ever blocking the pollers.
//
// Schema (write precision ms):
//
//	<measurement>,device=<id>,feeder=<id>,point=<name>[,role=<role>][,unit=<unit>][,<label>=<value>...]
//	    value=<float>,quality="good" <ms>       a good sample
//	    quality="<quality>" <ms>                any other quality: no value field
//	feeder_poll,device=<id>,feeder=<id>[,<label>=<value>...] ok=1i|0i,seq=<n>i <ms>
//	                                            the result of one device poll
//
// The measurement defaults to "feeder_point". Tags are sorted by key; a tag
// whose value is empty is left out; a label named like a built-in tag is
// ignored. ok is an integer so that mean(ok) is the poll success ratio.
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

const (
	// DefaultMeasurement holds point samples when the config names none.
	DefaultMeasurement = "feeder_point"
	// PollMeasurement holds device-status samples.
	PollMeasurement = "feeder_poll"
)

// Encoder appends samples as line protocol. Everything that depends only on
// the configuration (escaped measurement and tags) is built once by
// NewEncoder, so Append copies a prefix and formats two numbers. An Encoder
// is immutable and safe for concurrent use.
type Encoder struct {
	// points[device][point] is the line prefix up to and including the
	// space before the fields, or nil for a point that has no line (text).
	points [][]pointPrefix
	// polls[device] is the feeder_poll prefix.
	polls [][]byte
	// qualities[q] is `quality="<name>"`; the last one is "unknown".
	qualities [][]byte
}

type pointPrefix struct {
	prefix []byte
	// bits is 32 for unscaled float32 points: their shortest float32 form
	// ("230.1", not "230.10000610351562") reads back as the same value.
	bits int
}

// NewEncoder builds the prefixes of every point of every device of m.
func NewEncoder(m *config.Model) *Encoder {
	meas := m.Influx.Measurement
	if meas == "" {
		meas = DefaultMeasurement
	}
	e := &Encoder{
		points: make([][]pointPrefix, len(m.Devices)),
		polls:  make([][]byte, len(m.Devices)),
	}
	for q := sample.Good; q <= sample.Invalid+1; q++ {
		e.qualities = append(e.qualities, AppendStringField(nil, "quality", q.String()))
	}
	for di, d := range m.Devices {
		labels := make([]tag, 0, len(d.Labels))
		for k, v := range d.Labels {
			switch k {
			case "device", "feeder", "point", "role", "unit":
				continue
			}
			labels = append(labels, tag{k, v})
		}
		poll := append([]tag{{"device", d.ID}, {"feeder", d.Feeder}}, labels...)
		e.polls[di] = appendPrefix(nil, PollMeasurement, poll)

		e.points[di] = make([]pointPrefix, len(d.Points))
		for pi := range d.Points {
			p := &d.Points[pi]
			if p.Type == profile.String {
				continue
			}
			tags := append([]tag{
				{"device", d.ID}, {"feeder", d.Feeder}, {"point", p.Name},
				{"role", string(p.Role)}, {"unit", p.Unit},
			}, labels...)
			pp := pointPrefix{prefix: appendPrefix(nil, meas, tags), bits: 64}
			if p.Type == profile.Float32 && (p.Scale == 0 || p.Scale == 1) && p.Offset == 0 {
				pp.bits = 32
			}
			e.points[di][pi] = pp
		}
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

// Append appends the line of s, ending in '\n', to dst. A sample whose device
// or point is not in the model, or whose point is text, appends nothing. A
// good sample whose value is NaN or infinite is written as quality
// "invalid": InfluxDB rejects such numbers.
func (e *Encoder) Append(dst []byte, s *sample.Sample) []byte {
	if int(s.Device) >= len(e.points) {
		return dst
	}
	if s.Flags&sample.DeviceStatus != 0 {
		dst = append(dst, e.polls[s.Device]...)
		if s.Value != 0 {
			dst = append(dst, "ok=1i,seq="...)
		} else {
			dst = append(dst, "ok=0i,seq="...)
		}
		dst = strconv.AppendUint(dst, uint64(s.Seq), 10)
		dst = append(dst, 'i', ' ')
		return appendTime(dst, s.Time)
	}
	pts := e.points[s.Device]
	if int(s.Point) >= len(pts) || pts[s.Point].prefix == nil {
		return dst
	}
	p := &pts[s.Point]
	dst = append(dst, p.prefix...)
	q := s.Quality
	if q == sample.Good && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) {
		q = sample.Invalid
	}
	if q == sample.Good {
		dst = append(dst, "value="...)
		dst = strconv.AppendFloat(dst, s.Value, 'g', -1, p.bits)
		dst = append(dst, ',')
	}
	if int(q) >= len(e.qualities) {
		q = sample.Quality(len(e.qualities) - 1) // "unknown"
	}
	dst = append(dst, e.qualities[q]...)
	dst = append(dst, ' ')
	return appendTime(dst, s.Time)
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
// Two things cannot be written in line protocol and are changed: a newline
// (or carriage return) becomes a space, and trailing backslashes are dropped,
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
		case c == '\n' || c == '\r':
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
