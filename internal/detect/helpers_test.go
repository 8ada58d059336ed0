package detect

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// base is the synthetic time origin of the tests: event times print as
// offsets from it.
const base = int64(1_735_689_600_000_000_000) // 2025-01-01T00:00:00Z

func at(d time.Duration) int64 { return base + int64(d) }

// missing in a poll's values makes that point a timeout.
var missing = math.NaN()

// Device layouts used by the tests. Nominal 120 V, so 1 pu = 120 V.
var (
	rolesMeter1 = []profile.Role{profile.RoleVoltageA, profile.RoleCurrentA}
	rolesMeter3 = []profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC, profile.RoleCurrentA}
	// rolesRecloser: breaker, lockout, trip count, then the voltages.
	rolesRecloser = []profile.Role{profile.RoleBreakerClosed, profile.RoleLockout, profile.RoleTripCount,
		profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC}
	rolesBreaker = []profile.Role{profile.RoleBreakerClosed}
)

func devInfo(index uint32, upstream int, interval time.Duration, roles []profile.Role) DeviceInfo {
	return DeviceInfo{
		Index: index, ID: fmt.Sprintf("D%d", index), Feeder: "F1", Upstream: upstream,
		Nominal: 120, PTRatio: 1, Interval: interval, PointRoles: roles,
	}
}

// rig drives a Detector with synthetic polls and records its events.
type rig struct {
	t      testing.TB
	d      *Detector
	events []Event
	infos  []DeviceInfo
	buf    []sample.Sample
}

func newRig(t testing.TB, p Params, infos ...DeviceInfo) *rig {
	t.Helper()
	r := &rig{t: t, infos: infos}
	d, err := New(p, infos, func(e *Event) { r.events = append(r.events, *e) })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.d = d
	return r
}

func (r *rig) info(dev uint32) DeviceInfo {
	for _, di := range r.infos {
		if di.Index == dev {
			return di
		}
	}
	r.t.Fatalf("no device %d", dev)
	return DeviceInfo{}
}

// poll feeds one poll of dev at time when: vals[i] is point i's value
// (voltages in pu, converted to volts), missing makes it a timeout; points
// beyond vals time out too. The device-status sample says ok when at least
// one point was good.
func (r *rig) poll(dev uint32, when time.Duration, vals ...float64) {
	di := r.info(dev)
	r.buf = r.buf[:0]
	ok := false
	for i, role := range di.PointRoles {
		s := sample.Sample{Time: at(when), Device: dev, Point: uint16(i), Quality: sample.Timeout}
		if i < len(vals) && !math.IsNaN(vals[i]) {
			s.Quality, s.Value, ok = sample.Good, vals[i], true
			if roleCode(role) >= roleVA && roleCode(role) <= roleVC {
				s.Value = vals[i] * di.Nominal / di.PTRatio
			}
		}
		r.buf = append(r.buf, s)
	}
	st := sample.Sample{Time: at(when), Device: dev, Point: sample.NoPoint, Quality: sample.Good,
		Flags: sample.DeviceStatus | sample.EndOfPoll}
	if ok {
		st.Value = 1
	}
	r.buf = append(r.buf, st)
	for i := range r.buf {
		r.d.Process(&r.buf[i])
	}
}

// fail feeds one failed poll of dev.
func (r *rig) fail(dev uint32, when time.Duration) { r.poll(dev, when) }

// hold polls dev every interval in [from, to) with the same values and
// returns to.
func (r *rig) hold(dev uint32, from, to time.Duration, vals ...float64) time.Duration {
	iv := r.info(dev).Interval
	for t := from; t < to; t += iv {
		r.poll(dev, t, vals...)
	}
	return to
}

// seg is a stretch of constant per-unit voltage on every phase.
type seg struct {
	dur time.Duration
	pu  float64
}

// run feeds segments to dev from time 0 and returns the end time.
func (r *rig) run(dev uint32, segs ...seg) time.Duration {
	n := 0
	for _, role := range r.info(dev).PointRoles {
		if c := roleCode(role); c >= roleVA && c <= roleVC {
			n++
		}
	}
	var t time.Duration
	for _, s := range segs {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = s.pu
		}
		t = r.hold(dev, t, t+s.dur, vals...)
	}
	return t
}

// lines renders the recorded events and clears them.
func (r *rig) lines() []string {
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = fmtEvent(e)
	}
	r.events = r.events[:0]
	return out
}

func rel(t int64) string { return time.Duration(t - base).String() }

// fmtEvent renders every field of an event that is set.
func fmtEvent(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "d%d#%d %s %s @%s", e.Device, uint32(e.ID), e.Kind, e.Stage, rel(e.Start))
	if e.Stage == StageEnd {
		fmt.Fprintf(&b, "..%s", rel(e.End))
	}
	if e.Worst != 0 || e.WorstVolts != 0 {
		fmt.Fprintf(&b, " worst=%.4g(%.4gV)", e.Worst, e.WorstVolts)
	}
	if e.Phases != 0 {
		fmt.Fprintf(&b, " %s", e.Phases)
	}
	if e.Category != CategoryNone {
		fmt.Fprintf(&b, " %s", e.Category)
	}
	fmt.Fprintf(&b, " %s", e.Severity)
	if e.Shots != 0 {
		fmt.Fprintf(&b, " shots=%d", e.Shots)
	}
	if e.Outcome != OutcomeNone {
		fmt.Fprintf(&b, " outcome=%s", e.Outcome)
	}
	if e.Cause != CauseNone {
		fmt.Fprintf(&b, " cause=%s", e.Cause)
		if e.Cause.Upstream() {
			fmt.Fprintf(&b, " from=d%d", e.CauseDevice)
		}
	}
	fmt.Fprintf(&b, " prec=%s", e.DurationPrecision)
	if e.Flags != 0 {
		fmt.Fprintf(&b, " flags=%s", e.Flags)
	}
	return b.String()
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
