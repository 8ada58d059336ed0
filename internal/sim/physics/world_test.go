package physics

import (
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/simtest"
	"github.com/feederd/feederd/internal/topology"
)

// worldT0 is noon.
var worldT0 = time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)

// newTestWorld builds, without any configuration file,
//
//	F1  BRK ─ S1 ─ REC ─ S2
//
// with the breaker and the recloser on devices 0 and 1, and a meter
// (device 2) on no feeder, driven by a Steady driver.
func newTestWorld(t *testing.T) (*World, []*devsrv.Device) {
	t.Helper()
	top, err := topology.New(topology.Spec{Nodes: []topology.NodeSpec{
		{ID: "BRK", Feeder: "F1", Kind: topology.KindBreaker},
		{ID: "S1", Feeder: "F1", Kind: topology.KindSection, Upstream: "BRK"},
		{ID: "REC", Feeder: "F1", Kind: topology.KindRecloser, Upstream: "S1"},
		{ID: "S2", Feeder: "F1", Kind: topology.KindSection, Upstream: "REC"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	none := NodeRef{Feeder: -1, Node: -1}
	fc := FeederConfig{
		Topology: top.Feeders[0], NominalVoltage: 7200, SourcePU: 1, PowerFactor: 0.95, Frequency: 60, DropPerMW: 0.002,
		Nodes: []NodeConfig{
			{Device: 0, Tie: none},
			{Device: -1, Tie: none, Section: Section{LoadKW: 600}},
			{Device: 1, Tie: none, Reclose: DefaultReclose()},
			{Device: -1, Tie: none, Section: Section{LoadKW: 900}},
		},
	}
	devs := []*devsrv.Device{
		newTestDevice(t, "BRK", 1, simtest.SEL751A()),
		newTestDevice(t, "REC", 1, simtest.FeederRTU()),
		newTestDevice(t, "MTR", 1, simtest.PM5100()),
	}
	spec := Spec{Tick: time.Second, Seed: 3, Feeders: []FeederConfig{fc}}
	for _, d := range devs {
		spec.Devices = append(spec.Devices, DeviceSpec{Device: d, NominalVoltage: 7200})
	}
	w, err := New(spec, worldT0)
	if err != nil {
		t.Fatal(err)
	}
	return w, devs
}

func nodeState(t *testing.T, w *World, id string) NodeState {
	t.Helper()
	for _, f := range w.Feeders() {
		for _, n := range f.Nodes {
			if n.ID == id {
				return n
			}
		}
	}
	t.Fatalf("no node %s", id)
	return NodeState{}
}

func lookup(t *testing.T, w *World, name string) Target {
	t.Helper()
	tg, ok := w.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%s) found nothing", name)
	}
	return tg
}

// TestWorldTargets: names resolve to feeders, nodes and devices, and say
// what they are.
func TestWorldTargets(t *testing.T) {
	w, _ := newTestWorld(t)
	tests := []struct {
		name      string
		want      Target
		switching bool
		describe  string
	}{
		{"F1", Target{Feeder: 0, Node: -1, Dev: -1}, false, "a feeder"},
		{"BRK", Target{Feeder: 0, Node: 0, Dev: 0}, true, "a breaker on feeder F1"},
		{"S1", Target{Feeder: 0, Node: 1, Dev: -1}, false, "a section on feeder F1"},
		{"REC", Target{Feeder: 0, Node: 2, Dev: 1}, true, "a recloser on feeder F1"},
		{"MTR", Target{Feeder: -1, Node: -1, Dev: 2}, false, "a device on no feeder"},
	}
	for _, tt := range tests {
		got := lookup(t, w, tt.name)
		if got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
		if s := w.Switching(got); s != tt.switching {
			t.Errorf("Switching(%s) = %v, want %v", tt.name, s, tt.switching)
		}
		if d := w.Describe(got); d != tt.describe {
			t.Errorf("Describe(%s) = %q, want %q", tt.name, d, tt.describe)
		}
	}
	if _, ok := w.Lookup("S9"); ok {
		t.Error("Lookup(S9) found a target")
	}
}

// TestWorldRecloseToLockout drives protect.go's rule through the World:
// a permanent fault below a recloser with intervals 2, 5 and 15 s trips it
// at 0, 2, 7 and 22 s after the fault, and the fourth trip locks out; the
// breaker above stays closed. A close command ends the lockout.
func TestWorldRecloseToLockout(t *testing.T) {
	w, devs := newTestWorld(t)
	rec, s2 := lookup(t, w, "REC"), lookup(t, w, "S2")
	fault := worldT0.Add(10 * time.Second)
	if err := w.AdvanceTo(fault); err != nil {
		t.Fatal(err)
	}
	w.Fault(s2.Node, allPhases, true, 0, DefaultFaultAmps, w.Now())
	// The recloser after each trip, before the next reclose: its trips so
	// far, whether it is closed, whether it locked out.
	steps := []struct {
		at      time.Duration
		trips   uint64
		closed  bool
		lockout bool
	}{
		{1 * time.Second, 1, false, false},
		{3 * time.Second, 2, false, false},
		{8 * time.Second, 3, false, false},
		{21 * time.Second, 3, false, false},
		{23 * time.Second, 4, false, true},
		{60 * time.Second, 4, false, true},
	}
	for _, st := range steps {
		if err := w.AdvanceTo(fault.Add(st.at)); err != nil {
			t.Fatal(err)
		}
		n := nodeState(t, w, "REC")
		if n.Trips != st.trips || *n.Closed != st.closed || n.Lockout != st.lockout {
			t.Errorf("%s after the fault: REC trips %d closed %v lockout %v, want %d %v %v",
				st.at, n.Trips, *n.Closed, n.Lockout, st.trips, st.closed, st.lockout)
		}
		if s := nodeState(t, w, "S2"); s.Energized || s.Faults != 1 {
			t.Errorf("%s after the fault: S2 energized %v with %d faults, want dead with 1", st.at, s.Energized, s.Faults)
		}
		if b := nodeState(t, w, "BRK"); !*b.Closed || b.Trips != 0 {
			t.Errorf("%s after the fault: BRK closed %v trips %d, want closed, 0", st.at, *b.Closed, b.Trips)
		}
	}
	// The device shows what the node state says, from the step after.
	for point, want := range map[string]float64{"trips": 4, "lockout": 1, "closed": 0, "ia": 0} {
		if got := simtest.Value(t, devs[1], point); got != want {
			t.Errorf("REC %s = %v, want %v", point, got, want)
		}
	}

	w.ClearFaults(s2.Node)
	if err := w.Operate(rec.Node, true, w.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.AdvanceTo(w.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	n, s := nodeState(t, w, "REC"), nodeState(t, w, "S2")
	if !*n.Closed || n.Lockout || n.Trips != 4 || !s.Energized || s.Faults != 0 || s.LoadKW == 0 {
		t.Errorf("after clear and close: REC closed %v lockout %v trips %d, S2 energized %v faults %d load %d kW; want closed, no lockout, 4 trips, S2 live without faults and loaded",
			*n.Closed, n.Lockout, n.Trips, s.Energized, s.Faults, s.LoadKW)
	}
	if err := w.Operate(lookup(t, w, "S1").Node, false, w.Now()); err == nil {
		t.Error("Operate on a section succeeded")
	}
}

// TestWorldPinRelease: a pinned point keeps its value through steps on a
// feeder and on a Steady driver, and Place lists it; Release hands it back.
func TestWorldPinRelease(t *testing.T) {
	w, devs := newTestWorld(t)
	for _, dev := range []int{1, 2} {
		d := devs[dev]
		point := "freq"
		got, err := w.Pin(dev, point, 59.5)
		if err != nil || got != 59.5 {
			t.Fatalf("Pin(%s, %s) = %v, %v; want 59.5", d.ID, point, got, err)
		}
		if err := w.AdvanceTo(w.Now().Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if v := simtest.Value(t, d, point); v != 59.5 {
			t.Errorf("%s %s = %v three steps after Pin, want 59.5", d.ID, point, v)
		}
		if p := w.Place(dev); !slices.Equal(p.Pinned, []string{point}) {
			t.Errorf("Place(%s).Pinned = %v, want [%s]", d.ID, p.Pinned, point)
		}
		if err := w.Release(dev, point); err != nil {
			t.Fatal(err)
		}
		if err := w.AdvanceTo(w.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if v := simtest.Value(t, d, point); v == 59.5 {
			t.Errorf("%s %s still 59.5 a step after Release", d.ID, point)
		}
		if p := w.Place(dev); len(p.Pinned) != 0 {
			t.Errorf("Place(%s).Pinned = %v after Release, want none", d.ID, p.Pinned)
		}
	}
	if p := w.Place(1); p.Feeder != "F1" || p.Node != "REC" || p.Kind != "recloser" || p.Energized == nil || !*p.Energized {
		t.Errorf("Place(REC) = %+v, want on F1 at REC, a live recloser", p)
	}
	if p := w.Place(2); p.Feeder != "" || p.Energized != nil {
		t.Errorf("Place(MTR) = %+v, want on no feeder", p)
	}
	if err := w.Release(2, "vx"); err == nil || err.Error() != `device MTR has no point "vx"` {
		t.Errorf("Release(MTR, vx) = %v", err)
	}
}
