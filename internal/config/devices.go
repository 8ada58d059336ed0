package config

import (
	"maps"
	"slices"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

// The devices block: the polled devices, their points, labels and quirks.

type rawDevice struct {
	ID             string            `yaml:"id"`
	Link           string            `yaml:"link"`
	Unit           *int              `yaml:"unit"`
	Profile        string            `yaml:"profile"`
	Feeder         string            `yaml:"feeder"`
	Upstream       string            `yaml:"upstream"`
	Kind           string            `yaml:"kind"`
	NominalVoltage *float64          `yaml:"nominal_voltage"`
	PTRatio        *float64          `yaml:"pt_ratio"`
	Interval       *time.Duration    `yaml:"interval"`
	Timeout        *time.Duration    `yaml:"timeout"`
	Labels         map[string]string `yaml:"labels"`
	Quirks         rawQuirks         `yaml:"quirks"`
	Points         []rawPoint        `yaml:"points"`
}

type rawQuirks struct {
	OneRequestPerPoint   bool           `yaml:"one_request_per_point"`
	PauseBetweenRequests *time.Duration `yaml:"pause_between_requests"`
	MaxRegisters         *int           `yaml:"max_registers"`
	MaxBits              *int           `yaml:"max_bits"`
	MaxGap               *int           `yaml:"max_gap"`
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
