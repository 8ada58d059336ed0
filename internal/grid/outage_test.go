package grid

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/topology"
)

// The roles of the test devices: what each can report.
var (
	// A breaker or recloser whose PTs are on the source side.
	rolesSwitchV = []profile.Role{profile.RoleBreakerClosed, profile.RoleLockout,
		profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC}
	// A recloser or switch with no voltage points.
	rolesSwitch = []profile.Role{profile.RoleBreakerClosed, profile.RoleLockout}
	rolesMeter  = []profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC}
)

const t0 = int64(1_767_225_600_000_000_000) // 2026-01-01T00:00:00Z

// world is a detect.Detector and an Engine over hand-built feeders, driven
// by synthetic polls.
type world struct {
	t       *testing.T
	top     *topology.Topology
	ids     []string // the devices in model order
	roles   map[string][]profile.Role
	det     *detect.Detector
	eng     *Engine
	changes []Change
}

type dev struct {
	id, feeder, upstream string
	roles                []profile.Role
}

type sec struct {
	id, fedBy string
	customers int
	critical  []string
}

// newWorld builds the model: devices, sections per feeder, ties as
// [tie switch, device it feeds].
func newWorld(t *testing.T, devs []dev, secs map[string][]sec, ties [][2]string, store Store) *world {
	t.Helper()
	w := &world{t: t, roles: map[string][]profile.Role{}}
	spec := topology.Spec{Noun: "device"}
	var feeders []string
	for _, d := range devs {
		spec.Nodes = append(spec.Nodes, topology.NodeSpec{ID: d.id, Feeder: d.feeder, Upstream: d.upstream})
		w.roles[d.id] = d.roles
		w.ids = append(w.ids, d.id)
		if !contains(feeders, d.feeder) {
			feeders = append(feeders, d.feeder)
		}
	}
	feederOf := func(id string) string {
		for _, d := range devs {
			if d.id == id {
				return d.feeder
			}
		}
		return ""
	}
	for _, f := range feeders {
		fs := topology.FeederSpec{ID: f}
		for _, s := range secs[f] {
			ss := topology.SectionSpec{ID: s.id, FedBy: s.fedBy, Customers: &s.customers}
			for _, c := range s.critical {
				ss.Critical = append(ss.Critical, topology.CriticalCustomer{Name: c, Kind: topology.CriticalHospital})
			}
			fs.Sections = append(fs.Sections, ss)
		}
		for _, tie := range ties {
			if feederOf(tie[1]) == f {
				fs.Ties = append(fs.Ties, topology.TieSpec{Device: tie[0], To: tie[1]})
			}
		}
		spec.Feeders = append(spec.Feeders, fs)
	}
	var err error
	w.top, err = topology.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Detection sees the tree and the ties of the same topology.
	var infos []detect.DeviceInfo
	for i, d := range devs {
		ref, _ := w.top.Ref(i)
		f := w.top.Feeders[ref.Feeder]
		n := f.Nodes[ref.Node]
		up := -1
		if n.Parent >= 0 {
			up = f.Nodes[n.Parent].Spec
		}
		var tiesTo []int
		for _, r := range n.Ties {
			tiesTo = append(tiesTo, w.top.Node(r).Spec)
		}
		infos = append(infos, detect.DeviceInfo{Index: uint32(i), ID: d.id, Feeder: d.feeder, Upstream: up,
			Nominal: 120, PTRatio: 1, Interval: time.Second, PointRoles: d.roles, Ties: tiesTo})
	}
	w.det, err = detect.New(detect.DefaultParams(), infos, func(*detect.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	w.eng, err = NewEngine(w.top, feeders, Params{SustainedAfter: 5 * time.Minute}, store, func(c *Change) { w.changes = append(w.changes, *c) })
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// poll feeds one poll of a device at t0+at: for a switching device
// "closed"/"open"/"lockout" (and 1 pu on its voltages), for a meter a
// per-unit voltage, "silent" for a failed poll.
func (w *world) poll(id string, at time.Duration, what string) {
	w.t.Helper()
	ref, known := w.top.Lookup(id)
	if !known {
		w.t.Fatalf("no device %s", id)
	}
	d := struct{ Index uint32 }{uint32(w.top.Node(ref).Spec)}
	when := t0 + int64(at)
	var ss []sample.Sample
	ok := what != "silent"
	pu := "1"
	if st, v, found := strings.Cut(what, "@"); found {
		what, pu = st, v
	}
	for i, r := range w.roles[id] {
		s := sample.Sample{Time: when, Device: d.Index, Point: uint16(i), Quality: sample.Timeout}
		if ok {
			s.Quality = sample.Good
			switch r {
			case profile.RoleBreakerClosed:
				s.Value = b2f(what == "closed")
			case profile.RoleLockout:
				s.Value = b2f(what == "lockout")
			default:
				v, err := parsePU(pu)
				if w.roles[id][0] != profile.RoleBreakerClosed {
					v, err = parsePU(what)
				}
				if err != nil {
					w.t.Fatalf("poll %s: %q: %v", id, what, err)
				}
				s.Value = v * 120
			}
		}
		ss = append(ss, s)
	}
	ss = append(ss, sample.Sample{Time: when, Device: d.Index, Point: sample.NoPoint, Quality: sample.Good,
		Value: b2f(ok), Flags: sample.DeviceStatus | sample.EndOfPoll})
	for i := range ss {
		w.det.Process(&ss[i])
	}
}

// drain hands detection's changes to the engine, as a shard worker does
// after each batch of samples.
func (w *world) drain() {
	w.det.DrainChanged(w.eng.Mark)
	if err := w.eng.Flush(func(i uint32) detect.DeviceState { st, _ := w.det.State(i); return st }); err != nil {
		w.t.Fatal(err)
	}
}

func parsePU(s string) (float64, error) {
	var v float64
	_, err := fmt.Sscanf(s, "%g", &v)
	return v, err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pollAll polls every device at `at`, the ones in set as given, the rest
// closed or at 1 pu.
func (w *world) pollAll(at time.Duration, set map[string]string) {
	for _, id := range w.ids {
		what, ok := set[id]
		if !ok {
			what = "closed"
			if w.roles[id][0] != profile.RoleBreakerClosed {
				what = "1"
			}
		}
		w.poll(id, at, what)
	}
	w.drain()
}

// lines renders the changes so far and clears them.
func (w *world) lines() []string {
	var out []string
	for _, c := range w.changes {
		o := c.Outage
		s := fmt.Sprintf("%s %s@%s %s out=%d affected=%d", c.Kind, o.Feeder, o.Device, o.Status, o.CustomersOut, o.CustomersAffected)
		if len(o.Critical) > 0 {
			var names []string
			for _, cc := range o.Critical {
				names = append(names, cc.Name)
			}
			s += " critical=" + strings.Join(names, ",")
		}
		if len(o.CommLost) > 0 {
			s += " comm_lost=" + strings.Join(o.CommLost, ",")
		}
		s += fmt.Sprintf(" start=%s", time.Duration(o.Start-t0))
		if o.End != 0 {
			s += fmt.Sprintf(" end=%s", time.Duration(o.End-t0))
		}
		for _, st := range o.Steps {
			s += fmt.Sprintf(" step(%s,%d,sustained=%v)", time.Duration(st.Time-t0), st.Customers, st.Sustained)
		}
		out = append(out, s)
	}
	w.changes = nil
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// feederF1 is a breaker, two nested reclosers, a second branch, a meter
// and a switch below the inner recloser, and feeder F2 with a tie switch
// that can feed SW.
func feederF1(t *testing.T, store Store) *world {
	return newWorld(t, []dev{
		{"BRK", "F1", "", rolesSwitchV},
		{"REC1", "F1", "BRK", rolesSwitchV},
		{"REC2", "F1", "REC1", rolesSwitch},
		{"SW", "F1", "REC2", rolesSwitch},
		{"MTR", "F1", "SW", rolesMeter},
		{"REC3", "F1", "BRK", rolesSwitch},
		{"BRK2", "F2", "", rolesSwitchV},
		{"TIE", "F2", "BRK2", rolesSwitchV},
	}, map[string][]sec{
		"F1": {
			{"S1", "BRK", 300, nil},
			{"S2", "REC1", 250, []string{"St Mary's Hospital"}},
			{"S3", "REC2", 200, nil},
			{"S5", "SW", 100, nil},
			{"S4", "MTR", 1, nil},
			{"S6", "REC3", 80, nil},
		},
		"F2": {{"T1", "BRK2", 500, nil}},
	}, [][2]string{{"TIE", "SW"}}, store)
}

func TestOutageLocalisation(t *testing.T) {
	s := time.Second
	normal := map[string]string{"TIE": "open"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"TIE": "open"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	t.Run("nested reclosers: each outage keeps its customers", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, with("REC2", "lockout", "MTR", "0"))
		w.pollAll(20*s, with("REC2", "lockout", "MTR", "0", "REC1", "lockout@1"))
		w.pollAll(30*s, with("REC2", "lockout", "MTR", "0"))
		equal(t, w.lines(), []string{
			"started F1@REC2 confirmed out=301 affected=301 start=10s",
			"started F1@REC1 confirmed out=250 affected=250 critical=St Mary's Hospital start=20s",
			"restored F1@REC1 restored out=0 affected=250 start=20s end=30s step(30s,250,sustained=false)",
		})
		if a := w.eng.Active(); len(a) != 1 || a[0].Device != "REC2" || a[0].CustomersOut != 301 {
			t.Fatalf("active: %+v", a)
		}
	})
	t.Run("a fault between the breaker and the first recloser", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, with("BRK", "lockout", "REC1", "closed@0", "MTR", "0"))
		equal(t, w.lines(), []string{
			"started F1@BRK confirmed out=931 affected=931 critical=St Mary's Hospital start=10s",
		})
	})
	t.Run("partial restoration by a tie switch, then the rest", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, with("REC2", "lockout", "MTR", "0"))
		// The crew opens SW? No: SW stays closed; REC2 is locked out, so
		// closing the tie back-feeds SW and the meter below it.
		w.pollAll(7*time.Minute, with("REC2", "lockout", "TIE", "closed"))
		w.pollAll(9*time.Minute, with("TIE", "closed"))
		equal(t, w.lines(), []string{
			"started F1@REC2 confirmed out=301 affected=301 start=10s",
			"updated F1@REC2 confirmed out=200 affected=301 start=10s step(7m0s,101,sustained=true)",
			"restored F1@REC2 restored out=0 affected=301 start=10s end=9m0s step(7m0s,101,sustained=true) step(9m0s,200,sustained=true)",
		})
	})
	t.Run("comm-lost devices inside an outage", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, normal)
		for i := 1; i <= 4; i++ {
			w.pollAll(time.Duration(10+i)*s, with("REC2", "lockout", "MTR", "silent"))
		}
		// The meter's last reading (1 pu at 10 s) holds until it is
		// comm_lost (3 failed polls): then it is out too, inside REC2's
		// outage, not an outage of its own.
		equal(t, w.lines(), []string{
			"started F1@REC2 confirmed out=300 affected=300 start=11s",
			"updated F1@REC2 confirmed out=301 affected=301 comm_lost=MTR start=11s",
		})
	})
	t.Run("poll order does not split an outage", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		// The meter reads 0 V before the recloser's trip is seen: a
		// predicted outage at the meter, then REC2's trip places it.
		w.poll("MTR", 10*s, "0")
		w.drain()
		w.pollAll(11*s, with("REC2", "open", "MTR", "0"))
		equal(t, w.lines(), []string{
			"started F1@MTR predicted out=1 affected=1 start=10s",
			"merged F1@MTR merged out=0 affected=1 start=10s end=11s",
			"started F1@REC2 confirmed out=301 affected=301 start=10s",
		})
	})
	t.Run("two outages at once on one feeder", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, with("REC2", "lockout", "MTR", "0", "REC3", "open"))
		w.pollAll(20*s, with("REC2", "lockout", "MTR", "0"))
		equal(t, w.lines(), []string{
			"started F1@REC2 confirmed out=301 affected=301 start=10s",
			"started F1@REC3 confirmed out=80 affected=80 start=10s",
			"restored F1@REC3 restored out=0 affected=80 start=10s end=20s step(20s,80,sustained=false)",
		})
	})
	t.Run("a meter with voltage under an open and silent recloser is not out", func(t *testing.T) {
		w := feederF1(t, nil)
		w.pollAll(0, normal)
		w.pollAll(10*s, with("REC2", "open", "MTR", "0"))
		for i := 11; i < 15; i++ {
			w.pollAll(time.Duration(i)*s, with("REC2", "silent", "MTR", "0"))
		}
		// Closed in the field; the radio is still out. The meter's voltage
		// proves REC2 and SW closed.
		w.pollAll(20*s, with("REC2", "silent", "MTR", "1"))
		equal(t, w.lines(), []string{
			"started F1@REC2 confirmed out=301 affected=301 start=10s",
			"restored F1@REC2 restored out=0 affected=301 start=10s end=20s step(20s,301,sustained=false)",
		})
	})
}

// TestIEEE1366WorkedExample is DOMAIN.md's: 1,200 customers out at 10:00;
// 800 restored at 10:03 (momentary for them), 400 at 11:30: 400 sustained
// customers, CMI = 400 × 90 = 36,000.
func TestIEEE1366WorkedExample(t *testing.T) {
	w := newWorld(t, []dev{
		{"BRK", "F1", "", rolesSwitchV},
		{"SW", "F1", "BRK", rolesSwitch},
		{"MTR", "F1", "SW", rolesMeter},
	}, map[string][]sec{"F1": {{"A", "BRK", 800, nil}, {"B", "SW", 400, nil}, {"C", "MTR", 0, nil}}}, nil, nil)
	w.pollAll(0, nil)
	w.pollAll(10*time.Hour, map[string]string{"BRK": "open", "MTR": "0"})
	// A crew opens SW, then recloses the breaker at 10:03.
	w.pollAll(10*time.Hour+2*time.Minute, map[string]string{"BRK": "open", "SW": "open", "MTR": "0"})
	w.pollAll(10*time.Hour+3*time.Minute, map[string]string{"SW": "open", "MTR": "0"})
	w.pollAll(11*time.Hour+30*time.Minute, nil)
	acc := w.eng.Indices()["F1"]
	if acc.CI != 400 || acc.CMI != 36000 || acc.MCI != 800 || acc.MCIe != 800 || acc.NT != 1200 {
		t.Fatalf("accumulators %+v, want CI 400, CMI 36000, MCI 800, MCIe 800, NT 1200", acc)
	}
	ix := acc.Indices()
	// SAIFI 400/1200, SAIDI 36000/1200 = 30 min, CAIDI 90 min, MAIFI(e) 800/1200.
	want := Indices{SAIFI: 1.0 / 3, SAIDI: 30, CAIDI: 90, MAIFI: 2.0 / 3, MAIFIe: 2.0 / 3}
	if !close(ix, want) {
		t.Fatalf("indices %+v, want %+v", ix, want)
	}
}

// TestIEEE1366MultiEvent works a year by hand (NT = 1,000: sections of
// 600 below REC and 400 below BRK only):
//  1. REC trips and recloses twice within its window, no customer seen
//     dark: MAIFI += 2 × 600 (one per trip), MAIFIe += 600 (one event).
//  2. BRK opens for 10 min: 1,000 customers sustained, CMI 10,000.
//  3. REC opens for 1 min (seen dark): 600 momentary: MCI and MCIe += 600.
//  4. REC locks out for 20 min: 600 sustained, CMI 12,000.
//
// CI = 1,600, CMI = 22,000, MCI = 1,800, MCIe = 1,200:
// SAIFI 1.6, SAIDI 22 min, CAIDI 13.75 min, MAIFI 1.8, MAIFIe 1.2.
func TestIEEE1366MultiEvent(t *testing.T) {
	w := newWorld(t, []dev{
		{"BRK", "F1", "", rolesSwitchV},
		{"REC", "F1", "BRK", rolesSwitchV},
		{"MTR", "F1", "REC", rolesMeter},
	}, map[string][]sec{"F1": {{"A", "BRK", 400, nil}, {"B", "REC", 600, nil}}}, nil, nil)
	m := time.Minute
	w.pollAll(0, nil)
	seq := detect.Event{Kind: detect.KindRecloserSequence, Stage: detect.StageEnd, Device: 1, Outcome: detect.OutcomeReclosed,
		Category: detect.CategoryMomentary, Shots: 2, Start: t0 + int64(1*m), End: t0 + int64(1*m) + 3e9}
	if err := w.eng.Observe(&seq); err != nil {
		t.Fatal(err)
	}
	w.pollAll(10*m, map[string]string{"BRK": "open", "REC": "closed@0", "MTR": "0"})
	w.pollAll(20*m, nil)
	w.pollAll(30*m, map[string]string{"REC": "open", "MTR": "0"})
	w.pollAll(31*m, nil)
	w.pollAll(40*m, map[string]string{"REC": "lockout", "MTR": "0"})
	w.pollAll(60*m, nil)
	acc := w.eng.Indices()["F1"]
	if acc.CI != 1600 || acc.CMI != 22000 || acc.MCI != 1800 || acc.MCIe != 1200 {
		t.Fatalf("accumulators %+v", acc)
	}
	if ix := acc.Indices(); !close(ix, Indices{SAIFI: 1.6, SAIDI: 22, CAIDI: 13.75, MAIFI: 1.8, MAIFIe: 1.2}) {
		t.Fatalf("indices %+v", ix)
	}
	// The system is the sum of its feeders.
	if sys := (Accumulator{}).Add(acc).Add(Accumulator{NT: 1000}); sys.Indices().SAIFI != 0.8 {
		t.Fatalf("system SAIFI %v, want 0.8", sys.Indices().SAIFI)
	}
}

func close(a, b Indices) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return eq(a.SAIFI, b.SAIFI) && eq(a.SAIDI, b.SAIDI) && eq(a.CAIDI, b.CAIDI) && eq(a.MAIFI, b.MAIFI) && eq(a.MAIFIe, b.MAIFIe)
}

// TestRestartMidOutage: the process dies (nothing is saved at exit: the
// store is written on every change) in the middle of an outage; the next
// engine continues the same outage, and its restoration is counted once.
func TestRestartMidOutage(t *testing.T) {
	store := FileStore{Dir: t.TempDir()}
	w := feederF1(t, store)
	w.pollAll(0, map[string]string{"TIE": "open"})
	w.pollAll(10*time.Second, map[string]string{"TIE": "open", "REC2": "lockout", "MTR": "0"})
	before := w.eng.Active()
	if len(before) != 1 {
		t.Fatalf("active before: %+v", before)
	}

	// A new process: new detection (it knows nothing yet), same store.
	w2 := feederF1(t, store)
	after := w2.eng.Active()
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Start != before[0].Start || after[0].CustomersOut != 301 {
		t.Fatalf("after the restart: %+v, want %+v", after, before)
	}
	w2.pollAll(9*time.Minute, map[string]string{"TIE": "open", "REC2": "lockout", "MTR": "0"})
	w2.pollAll(10*time.Minute, map[string]string{"TIE": "open"})
	equal(t, w2.lines(), []string{
		// Past 5 minutes: now sustained (IEEE 1366).
		"updated F1@REC2 confirmed out=301 affected=301 start=10s",
		"restored F1@REC2 restored out=0 affected=301 start=10s end=10m0s step(10m0s,301,sustained=true)",
	})
	acc := w2.eng.Indices()["F1"]
	if want := 301.0 * (10*time.Minute - 10*time.Second).Minutes(); acc.CI != 301 || math.Abs(acc.CMI-want) > 1e-6 {
		t.Fatalf("accumulators %+v, want CI 301, CMI %v", acc, want)
	}
	// And a third start finds nothing active.
	if w3 := feederF1(t, store); len(w3.eng.Active()) != 0 || w3.eng.Indices()["F1"].CI != 301 {
		t.Fatalf("third start: %+v %+v", w3.eng.Active(), w3.eng.Indices())
	}
}

// TestRestartPollByPoll: after a restart the new detection hears the
// devices one poll at a time, each followed by a flush, as a shard worker
// runs. A device not heard from yet is no evidence: the carried outage
// keeps its sections (no restoration step, nothing counted twice) until
// the devices themselves say they are back.
func TestRestartPollByPoll(t *testing.T) {
	store := FileStore{Dir: t.TempDir()}
	w := feederF1(t, store)
	w.pollAll(0, map[string]string{"TIE": "open"})
	w.pollAll(10*time.Second, map[string]string{"TIE": "open", "REC2": "lockout", "MTR": "0"})
	before := w.eng.Active()
	if len(before) != 1 || before[0].CustomersAffected != 301 {
		t.Fatalf("active before: %+v", before)
	}
	w.lines()

	w2 := feederF1(t, store)
	state := map[string]string{"TIE": "open", "REC2": "lockout", "MTR": "0"}
	// Polled in reverse model order: the meter and the switch below the
	// recloser before it.
	for i := len(w2.ids) - 1; i >= 0; i-- {
		id := w2.ids[i]
		what, ok := state[id]
		if !ok {
			what = "closed"
			if w2.roles[id][0] != profile.RoleBreakerClosed {
				what = "1"
			}
		}
		w2.poll(id, 6*time.Minute, what)
		w2.drain()
		if a := w2.eng.Active(); len(a) != 1 || a[0].ID != before[0].ID || a[0].CustomersOut != 301 || a[0].CustomersAffected != 301 || len(a[0].Steps) != 0 {
			t.Fatalf("after polling %s: %+v", id, a)
		}
	}
	w2.pollAll(10*time.Minute, map[string]string{"TIE": "open"})
	got := w2.lines()
	if last := got[len(got)-1]; last != "restored F1@REC2 restored out=0 affected=301 start=10s end=10m0s step(10m0s,301,sustained=true)" {
		t.Fatalf("changes %v", got)
	}
	if acc := w2.eng.Indices()["F1"]; acc.CI != 301 {
		t.Fatalf("CI %d, want 301 once", acc.CI)
	}
}
