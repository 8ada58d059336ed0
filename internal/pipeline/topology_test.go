package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// topologyYAML is two feeders, devices listed out of tree order:
//
//	F1: F1-BRK ─ F1-R1 ─ F1-M1            sections S1 (F1-BRK 100), S2 (F1-R1 200),
//	         │        └─ F1-R2 ─ F1-M2    S3 (F1-R2 300), S4 (F1-M2 40), S5 (F1-M3 50)
//	         └─ F1-M3
//	F2: F2-BRK ─ F2-TIE                   F2-TIE can feed F1-R2
const topologyYAML = `
profiles: [%RTU%, %METER%, status.yaml]
links:
  - {id: l, url: tcp://127.0.0.1:1502}
devices:
  - {id: F1-M2, link: l, unit: 1, profile: pm5100, feeder: F1, upstream: F1-R2, nominal_voltage: 120}
  - {id: F2-TIE, link: l, unit: 2, profile: feeder-rtu, feeder: F2, upstream: F2-BRK, kind: switch, nominal_voltage: 7200}
  - {id: F1-R2, link: l, unit: 3, profile: status, feeder: F1, upstream: F1-R1, kind: recloser}
  - {id: F1-BRK, link: l, unit: 4, profile: feeder-rtu, feeder: F1, kind: breaker, nominal_voltage: 7200}
  - {id: F1-M3, link: l, unit: 5, profile: pm5100, feeder: F1, upstream: F1-BRK, nominal_voltage: 120}
  - {id: F1-R1, link: l, unit: 6, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
  - {id: F2-BRK, link: l, unit: 7, profile: feeder-rtu, feeder: F2, kind: breaker, nominal_voltage: 7200}
  - {id: F1-M1, link: l, unit: 8, profile: pm5100, feeder: F1, upstream: F1-R1, nominal_voltage: 120}
feeders:
  - id: F1
    sections:
      - {id: S1, fed_by: F1-BRK, customers: 100}
      - {id: S2, fed_by: F1-R1, customers: 200}
      - {id: S3, fed_by: F1-R2, customers: 300, critical: [{name: Clinic, kind: hospital}]}
      - {id: S4, fed_by: F1-M2, customers: 40}
      - {id: S5, fed_by: F1-M3, customers: 50}
    ties:
      - {device: F2-TIE, to: F1-R2}
`

// statusYAML is a switch that reports its state and no voltage: whether it
// is live only the tree and the ties can tell.
const statusYAML = `
name: status
points:
  - {name: breaker_closed, table: discrete_input, address: 0, type: bool, role: breaker_closed}
  - {name: lockout, table: discrete_input, address: 1, type: bool, role: lockout}
`

// TestDetectAndGridSeeConfigsTree: the tree and ties detection and the
// outage logic work on are the configuration's. The devices below F1-R1 by
// the file's upstream keys (walked here from the raw strings) are the ones
// detection de-energizes when F1-R1 locks out, with F1-R1 as the cause, and
// the ones (F1-R1 itself aside: the outage sits there) and the sections the
// outage at F1-R1 holds; closing the tie
// switch the file names brings back exactly the part it feeds.
func TestDetectAndGridSeeConfigsTree(t *testing.T) {
	dir := t.TempDir()
	prof, err := filepath.Abs("../../configs/profiles")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("%RTU%", filepath.Join(prof, "feeder-rtu.yaml"), "%METER%", filepath.Join(prof, "pm5100.yaml")).Replace(topologyYAML)
	path := filepath.Join(dir, "feederd.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status.yaml"), []byte(statusYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := config.Load(path, config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The configuration's own view, from the strings of the file.
	below := func(root string) []string {
		out := []string{root}
		for changed := true; changed; {
			changed = false
			for _, d := range m.Devices {
				if slices.Contains(out, d.Upstream) && !slices.Contains(out, d.ID) {
					out = append(out, d.ID)
					changed = true
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got := below("F1-R1"); !slices.Equal(got, []string{"F1-M1", "F1-M2", "F1-R1", "F1-R2"}) {
		t.Fatalf("below F1-R1 by the file: %v", got)
	}

	var infos []detect.DeviceInfo
	for _, d := range tableOf(t, m).Devices {
		infos = append(infos, d.DeviceInfo)
	}
	det, err := detect.New(m.Detect, infos, func(*detect.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	var changes []grid.Change
	eng, err := grid.NewEngine(m.Topology, []string{"F1", "F2"}, grid.Params{SustainedAfter: m.Detect.SustainedAfter}, nil,
		func(c *grid.Change) { changes = append(changes, *c) })
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*config.Device{}
	for _, d := range m.Devices {
		byID[d.ID] = d
	}
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC).UnixNano()
	// pollAll polls every device at t0+s seconds: switching devices closed
	// at 1 pu unless listed as "lockout" or "open", meters at 1 pu unless
	// listed as "dead".
	pollAll := func(s int, set map[string]string) {
		when := t0 + int64(s)*int64(time.Second)
		for _, d := range m.Devices {
			st := set[d.ID]
			for i, p := range d.Points {
				smp := sample.Sample{Time: when, Device: d.Index, Point: uint16(i), Quality: sample.Good}
				switch p.Role {
				case profile.RoleBreakerClosed:
					smp.Value = b2f(st != "lockout" && st != "open")
				case profile.RoleLockout:
					smp.Value = b2f(st == "lockout")
				case profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC:
					smp.Value = b2f(st != "dead") * d.NominalVoltage
				}
				det.Process(&smp)
			}
			end := sample.Sample{Time: when, Device: d.Index, Point: sample.NoPoint, Quality: sample.Good, Value: 1,
				Flags: sample.DeviceStatus | sample.EndOfPoll}
			det.Process(&end)
		}
		det.Tick(when)
		det.DrainChanged(eng.Mark)
		if err := eng.Flush(func(i uint32) detect.DeviceState { st, _ := det.State(i); return st }); err != nil {
			t.Fatal(err)
		}
	}

	pollAll(0, map[string]string{"F2-TIE": "open"})
	if a := eng.Active(); len(a) != 0 {
		t.Fatalf("outages with everything closed and live: %+v", a)
	}
	// F1-R1 locks out (its PTs on the source side still read 1 pu); the
	// voltages below it go to 0.
	lockout := map[string]string{"F2-TIE": "open", "F1-R1": "lockout", "F1-M1": "dead", "F1-M2": "dead"}
	for s := 1; s <= 3; s++ {
		pollAll(s, lockout)
	}
	var dark []string
	for _, d := range m.Devices {
		st, _ := det.State(d.Index)
		if st.Energy == detect.EnergyDeEnergized {
			dark = append(dark, d.ID)
			if d.ID != "F1-R1" && st.CauseDevice != byID["F1-R1"].Index {
				t.Errorf("%s: cause %s device %d, want F1-R1 (%d)", d.ID, st.Cause, st.CauseDevice, byID["F1-R1"].Index)
			}
		}
	}
	slices.Sort(dark)
	want := slices.DeleteFunc(below("F1-R1"), func(id string) bool { return id == "F1-R1" })
	if !slices.Equal(dark, want) {
		t.Fatalf("detection de-energized %v; the file puts %v below F1-R1", dark, below("F1-R1"))
	}
	active := eng.Active()
	if len(active) != 1 {
		t.Fatalf("active outages %+v, want one at F1-R1", active)
	}
	o := active[0]
	devs := slices.Sorted(slices.Values(o.Devices))
	secs := slices.Sorted(slices.Values(o.Sections))
	if o.Device != "F1-R1" || o.Feeder != "F1" || !slices.Equal(devs, want) ||
		!slices.Equal(secs, []string{"S2", "S3", "S4"}) || o.CustomersOut != 540 || len(o.Critical) != 1 || o.Critical[0].Name != "Clinic" {
		t.Fatalf("outage %+v: want at F1-R1 holding devices %v, sections S2 S3 S4, 540 customers out, Clinic", o, want)
	}

	// The tie switch closes: F1-R2 and below are fed again from F2. F1-R2
	// reads no voltage: only the tie the file names can say it is live.
	backfed := map[string]string{"F1-R1": "lockout", "F1-M1": "dead"}
	for s := 4; s <= 6; s++ {
		pollAll(s, backfed)
	}
	active = eng.Active()
	if len(active) != 1 {
		t.Fatalf("active outages after the tie closed %+v, want one at F1-R1", active)
	}
	o = active[0]
	secs = slices.Sorted(slices.Values(o.Sections))
	if !slices.Equal(secs, []string{"S2"}) || o.CustomersOut != 200 || o.CustomersRestored() != 340 || len(o.Critical) != 0 {
		t.Fatalf("outage after the tie closed %+v: want S2 out, 200 out, 340 restored", o)
	}
	for _, id := range []string{"F1-R2", "F1-M2"} {
		if st, _ := det.State(byID[id].Index); st.Energy != detect.EnergyEnergized {
			t.Errorf("%s after the tie closed: %s, want energized", id, st.Energy)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
