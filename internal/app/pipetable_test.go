package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

func TestDevicesFromModel(t *testing.T) {
	p := &profile.Profile{Name: "meter"}
	m := &config.Model{Devices: []*config.Device{
		{Index: 0, ID: "BRK", Feeder: "F1", Interval: time.Second, NominalVoltage: 7200, PTRatio: 60, Profile: p,
			Points: []profile.Point{{Name: "closed", Role: profile.RoleBreakerClosed}, {Name: "va", Role: profile.RoleVoltageA}}},
		{Index: 1, ID: "R2", Feeder: "F1", Upstream: "BRK", Interval: 2 * time.Second, NominalVoltage: 120, PTRatio: 1, Profile: p,
			Points: []profile.Point{{Name: "kw"}}},
	}}
	top, err := m.DeviceTopology()
	if err != nil {
		t.Fatal(err)
	}
	got := devicesFromModel(m, top)
	want := []detect.DeviceInfo{
		{Index: 0, ID: "BRK", Feeder: "F1", Upstream: -1, Nominal: 7200, PTRatio: 60, Interval: time.Second,
			PointRoles: []profile.Role{profile.RoleBreakerClosed, profile.RoleVoltageA}},
		{Index: 1, ID: "R2", Feeder: "F1", Upstream: 0, Nominal: 120, PTRatio: 1, Interval: 2 * time.Second,
			PointRoles: []profile.Role{profile.RoleNone}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("devicesFromModel =\n%+v\nwant\n%+v", got, want)
	}
}

// loadModel writes a feederd configuration of devices (YAML flow maps) on
// links of their own and loads it.
func loadModel(t *testing.T, name string, devices ...string) *config.Model {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "profiles: [%s/feeder-rtu.yaml]\nlinks:\n", profilesDir(t))
	for i := range devices {
		fmt.Fprintf(&b, "  - {id: l%d, url: \"tcp://127.0.0.1:%d\"}\n", i, 1000+i)
	}
	b.WriteString("devices:\n")
	for i, d := range devices {
		fmt.Fprintf(&b, "  - {link: l%d, unit: 1, profile: feeder-rtu, %s}\n", i, d)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := config.Load(path, config.LoadOptions{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rtuPoll is one poll of a feeder-rtu: its three voltages (points 0..2)
// and the device status.
func rtuPoll(dev uint32, at time.Time, seq uint32, va, vb, vc float64) []sample.Sample {
	ns := at.UnixNano()
	return []sample.Sample{
		{Time: ns, Device: dev, Point: 0, Value: va, Seq: seq},
		{Time: ns, Device: dev, Point: 1, Value: vb, Seq: seq},
		{Time: ns, Device: dev, Point: 2, Value: vc, Seq: seq},
		{Time: ns, Device: dev, Point: sample.NoPoint, Value: 1, Seq: seq, Flags: sample.DeviceStatus | sample.EndOfPoll},
	}
}

// linesOf keeps every line the pipeline hands on.
type linesOf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *linesOf) PutLines(b []byte, _ int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(b)
}

func (l *linesOf) grep(prefix, substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.b.String(), "\n") {
		if strings.HasPrefix(ln, prefix) && strings.Contains(ln, substr) {
			out = append(out, ln)
		}
	}
	return out
}

// TestApplyPipelineFollowsTheConfiguration: a pipeline built from a loaded
// configuration, with a sag in progress on three devices, follows an edited
// file that adds a device (first, so every index moves), removes one and
// changes another's nominal voltage: the kept device's sag goes on and ends
// with its first id and start, the removed and the changed device's end
// flagged reconfigured under their own tags, the added device's polls are
// encoded and detected under its index, and no sample is lost.
func TestApplyPipelineFollowsTheConfiguration(t *testing.T) {
	mA := loadModel(t, "a.yaml",
		"id: F1-A, feeder: F1, nominal_voltage: 7200",
		"id: F1-B, feeder: F1, upstream: F1-A, nominal_voltage: 7200",
		"id: F1-C, feeder: F1, upstream: F1-A, nominal_voltage: 7200",
		"id: F2-A, feeder: F2, nominal_voltage: 7200")
	mB := loadModel(t, "b.yaml",
		"id: F3-A, feeder: F3, nominal_voltage: 7200",
		"id: F1-A, feeder: F1, nominal_voltage: 7200",
		"id: F1-B, feeder: F1, upstream: F1-A, nominal_voltage: 12470",
		"id: F2-A, feeder: F2, nominal_voltage: 7200")
	tab, err := pipelineTable(mA)
	if err != nil {
		t.Fatal(err)
	}
	var lines linesOf
	reg := prometheus.NewRegistry()
	t0 := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	p, err := pipeline.New(pipeline.Options{Table: tab, Lines: &lines, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg, Shards: 2, RingSize: 1024, BatchLines: 1, TickEvery: 10 * time.Millisecond,
		Now: func() int64 { return now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		p.Quiesce()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	eventually(t, 10*time.Second, "pipeline running", func() error {
		if !(p.Ready() == nil) {
			return errors.New("not yet")
		}
		return nil
	})

	// All normal, then a sag on F1-B, F1-C and F2-A.
	for _, d := range mA.Devices {
		p.Put(rtuPoll(d.Index, t0, 1, 7200, 7200, 7200))
	}
	t1 := t0.Add(time.Second)
	now.Store(t1.UnixNano())
	for _, d := range mA.Devices {
		va := 7200.0
		if d.ID != "F1-A" {
			va = 3600
		}
		p.Put(rtuPoll(d.Index, t1, 2, va, 7200, 7200))
	}
	eventually(t, 10*time.Second, "three sag starts", func() error {
		if !(len(lines.grep("feeder_event,", `stage="start"`)) == 3) {
			return errors.New("not yet")
		}
		return nil
	})
	f2Start := lines.grep("feeder_event,device=F2-A,", `stage="start"`)

	ch, err := applyPipeline(context.Background(), p, mB)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ch), "{[F1-A F2-A] [F1-B F3-A] [F1-C]}"; got != want {
		t.Errorf("applyPipeline = %s, want %s", got, want)
	}
	t2 := t1.Add(time.Second)
	now.Store(t2.UnixNano())
	for _, d := range mB.Devices {
		va, vn := 7200.0, 7200.0
		switch d.ID {
		case "F3-A":
			va = 3600
		case "F1-B":
			va, vn = 12470, 12470
		}
		p.Put(rtuPoll(d.Index, t2, 3, va, vn, vn))
	}
	eventually(t, 10*time.Second, "three sag ends", func() error {
		if !(len(lines.grep("feeder_event,", `stage="end"`)) == 3) {
			return errors.New("not yet")
		}
		return nil
	})
	eventually(t, 10*time.Second, "F3-A's sag start", func() error {
		if !(len(lines.grep("feeder_event,device=F3-A,", `stage="start"`)) == 1) {
			return errors.New("not yet")
		}
		return nil
	})

	ends := lines.grep("feeder_event,", `stage="end"`)
	var got []string
	for _, l := range ends {
		tags, _, _ := strings.Cut(l, " ")
		got = append(got, tags+" reconfigured="+fmt.Sprint(strings.Contains(l, `flags="reconfigured"`)))
	}
	slices.Sort(got)
	want := []string{
		"feeder_event,device=F1-B,feeder=F1,kind=sag,severity=warning reconfigured=true",
		"feeder_event,device=F1-C,feeder=F1,kind=sag,severity=warning reconfigured=true",
		"feeder_event,device=F2-A,feeder=F2,kind=sag,severity=warning reconfigured=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("end lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The kept device's end overwrites its start line: same id, same time.
	f2End := lines.grep("feeder_event,device=F2-A,", `stage="end"`)
	if len(f2Start) != 1 || len(f2End) != 1 || idAndTime(f2Start[0]) != idAndTime(f2End[0]) {
		t.Errorf("F2-A's sag: start %q, end %q: not one event", f2Start, f2End)
	}
	// F3-A, first in the new file, has index 0: its event ID says so.
	if l := lines.grep("feeder_event,device=F3-A,", `stage="start"`); len(l) != 1 || !strings.Contains(l[0], " id=1i,") {
		t.Errorf("F3-A's sag start: %q, want id=1i (index 0, first event)", l)
	}
	if n := len(lines.grep("feeder_point,device=F3-A,feeder=F3 ", "voltage_a=3600")); n != 1 {
		t.Errorf("%d poll lines of F3-A with its sag, want 1", n)
	}
	for _, name := range []string{"feederd_pipeline_samples_lost_total", "feederd_pipeline_ring_dropped_total", "feederd_detect_samples_irregular_total"} {
		if n := sumCounters(t, reg, name); n != 0 {
			t.Errorf("%s = %v, want 0", name, n)
		}
	}
}

// idAndTime is an event line's id field and timestamp.
func idAndTime(line string) string {
	f := strings.Fields(line)
	id := f[1][strings.Index(f[1], "id="):]
	id, _, _ = strings.Cut(id, ",")
	return id + " " + f[len(f)-1]
}

func sumCounters(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
