package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/ring"
)

// reindex sets every device's Index to its position and rebuilds the
// link's list, as config does for a loaded file.
func reindex(m *config.Model) *config.Model {
	link := &config.Link{ID: "l"}
	for i, d := range m.Devices {
		d.Index = uint32(i)
		d.Link = link
		link.Devices = append(link.Devices, d)
	}
	m.Links = []*config.Link{link}
	m.Topology = nil
	return m
}

// reloaded is model(2, 3) after an edit: F2-D0 on a new feeder comes first
// (every index moves), F0-D2's nominal voltage changed, F1-D2 is gone.
func reloaded() *config.Model {
	old := model(2, 3)
	m := &config.Model{Detect: old.Detect}
	add := *old.Devices[0]
	add.ID, add.Feeder, add.Upstream = "F2-D0", "F2", ""
	m.Devices = append(m.Devices, &add)
	for _, d := range old.Devices {
		c := *d
		switch c.ID {
		case "F1-D2":
			continue
		case "F0-D2":
			c.NominalVoltage = 240
		}
		m.Devices = append(m.Devices, &c)
	}
	return reindex(m)
}

// eventText renders an event of a table by device ID, for comparison.
func eventText(devs []Device, ev detect.Event) string {
	s := fmt.Sprintf("%s#%d/%d %s %s", devs[ev.Device].ID, ev.ID>>32, uint32(ev.ID), ev.Kind, ev.Stage)
	if ev.Flags != 0 {
		s += " " + ev.Flags.String()
	}
	return s
}

func takeEvents(t *testing.T, sub *Subscription, n int) []detect.Event {
	t.Helper()
	var out []detect.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev := <-sub.C:
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("%d events in 10s, want %d: %v", len(out), n, out)
		}
	}
	return out
}

// TestApplyAddsRemovesAndChangesDevices: a running pipeline with a sag in
// progress on three devices takes a table that adds a device (on a new
// feeder, moving every index), removes one and changes another. The kept
// device's sag goes on under its new index and ends with its first ID;
// the removed and the changed device's sags end at once, flagged
// reconfigured and written under their own tags, and nothing else comes
// at the reload; the added device's samples are detected and encoded under its index; the
// changed one starts fresh; no sample is lost.
func TestApplyAddsRemovesAndChangesDevices(t *testing.T) {
	mA, mB := model(2, 3), reloaded()
	tA, tB := tableOf(t, mA), tableOf(t, mB)
	var lines lineCollector
	reg := prometheus.NewRegistry()
	t0 := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	p, err := New(Options{Table: tA, Lines: &lines, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg, Shards: 2, RingSize: 1024, Policy: ring.DropNewest, TickEvery: 20 * time.Millisecond,
		Now: func() int64 { return now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Events().Subscribe(64)
	stop := runPipeline(t, p)
	waitFor(t, func() bool { return p.Ready() == nil })
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()

	// Everything normal, then a sag on F0-D1 (kept), F0-D2 (changed) and
	// F1-D2 (removed).
	for _, d := range mA.Devices {
		p.Put(poll(d.Index, t0, 1, 120, 120, 120))
	}
	t1 := t0.Add(time.Second)
	now.Store(t1.UnixNano())
	for _, d := range mA.Devices {
		va := 120.0
		if d.ID == "F0-D1" || d.ID == "F0-D2" || d.ID == "F1-D2" {
			va = 60
		}
		p.Put(poll(d.Index, t1, 2, va, 120, 120))
	}
	var got []string
	for _, ev := range takeEvents(t, sub, 3) {
		got = append(got, eventText(tA.Devices, ev))
	}
	slices.Sort(got)
	if want := []string{"F0-D1#1/1 sag start", "F0-D2#2/1 sag start", "F1-D2#5/1 sag start"}; !slices.Equal(got, want) {
		t.Fatalf("before the reload: %q, want %q", got, want)
	}
	genBefore := p.Generation()

	applied, err := p.Apply(context.Background(), tB)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Applied{Kept: []string{"F0-D0", "F0-D1", "F1-D0", "F1-D1"}, Changed: []string{"F0-D2"}, Added: []string{"F2-D0"},
		Removed: []string{"F1-D2"}}); fmt.Sprint(applied) != fmt.Sprint(want) {
		t.Errorf("Apply = %+v, want %+v", applied, want)
	}
	if p.Generation() == genBefore {
		t.Error("Generation did not change: readers would not see the new table")
	}
	// The ends of the changed and the removed device's sags, under the old
	// table, in shard order, and nothing else.
	got = got[:0]
	for _, ev := range takeEvents(t, sub, 2) {
		got = append(got, eventText(tA.Devices, ev))
	}
	slices.Sort(got)
	if len(sub.C) != 0 {
		t.Errorf("%d more events at the reload, want none", len(sub.C))
	}
	if want := []string{"F0-D2#2/1 sag end reconfigured", "F1-D2#5/1 sag end reconfigured"}; !slices.Equal(got, want) {
		t.Fatalf("at the reload: %q, want %q", got, want)
	}

	// Polls under the new indexes: the kept device recovers, the changed
	// one reads normal (at its new nominal), the added one sags.
	t2 := t1.Add(time.Second)
	now.Store(t2.UnixNano())
	for _, d := range mB.Devices {
		va, vn := 120.0, 120.0
		switch d.ID {
		case "F2-D0":
			va = 60
		case "F0-D2":
			va, vn = 240, 240
		}
		p.Put(poll(d.Index, t2, 3, va, vn, vn))
	}
	got = got[:0]
	for _, ev := range takeEvents(t, sub, 2) {
		got = append(got, eventText(tB.Devices, ev))
	}
	slices.Sort(got)
	// F0-D1's sag ends with the ID it started with (index 1 of the old
	// table); F2-D0's first event carries its own index, 0.
	if want := []string{"F0-D1#1/1 sag end", "F2-D0#0/1 sag start"}; !slices.Equal(got, want) {
		t.Fatalf("after the reload: %q, want %q", got, want)
	}

	// The lines: the reconfigured ends carry their devices' tags; the
	// added device's poll is encoded under its own.
	waitFor(t, func() bool {
		text, _ := lines.text()
		return strings.Contains(text, "feeder_point,device=F2-D0,feeder=F2 ")
	})
	var ends []string
	for _, l := range eventLines(&lines) {
		if strings.Contains(l, `stage="end"`) {
			ends = append(ends, l[:strings.Index(l, " ")]+" "+fieldText(l, "id")+" "+fieldText(l, "flags"))
		}
	}
	slices.Sort(ends)
	want := []string{
		"feeder_event,device=F0-D1,feeder=F0,kind=sag,severity=warning 4294967297i ",
		`feeder_event,device=F0-D2,feeder=F0,kind=sag,severity=warning 8589934593i "reconfigured"`,
		`feeder_event,device=F1-D2,feeder=F1,kind=sag,severity=warning 21474836481i "reconfigured"`,
	}
	if !slices.Equal(ends, want) {
		t.Errorf("end lines:\n%s\nwant\n%s", strings.Join(ends, "\n"), strings.Join(want, "\n"))
	}
	snap := p.Snapshot()
	if len(snap) != len(mB.Devices) || snap[0].ID != "F2-D0" || snap[2].ID != "F0-D1" || snap[2].Sag {
		t.Errorf("snapshot after the reload: %d devices, [0] %q, [2] %+v", len(snap), snap[0].ID, snap[2])
	}
	for _, name := range []string{"feederd_pipeline_samples_lost_total", "feederd_pipeline_ring_dropped_total", "feederd_detect_samples_irregular_total"} {
		if n := counterSum(t, reg, name); n != 0 {
			t.Errorf("%s = %v, want 0", name, n)
		}
	}
}

// fieldText is the raw value of field key in a line ("" when absent).
func fieldText(line, key string) string {
	fields := strings.Split(line, " ")[1]
	for _, f := range strings.Split(fields, ",") {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestApplyRefusesBadTable: a table the pipeline cannot run, or an Apply
// before Run, changes nothing.
func TestApplyRefusesBadTable(t *testing.T) {
	m := model(1, 2)
	p := newPipeline(t, m, 1, nil, prometheus.NewRegistry())
	if _, err := p.Apply(context.Background(), tableOf(t, m)); err == nil || err.Error() != "apply table: pipeline not running" {
		t.Errorf("Apply before Run: %v", err)
	}
	stop := runPipeline(t, p)
	defer stop()
	waitFor(t, func() bool { return p.Ready() == nil })
	bad := tableOf(t, m)
	bad.Detect.SagThreshold = 2
	if _, err := p.Apply(context.Background(), bad); err == nil || !strings.HasPrefix(err.Error(), "apply table: pipeline: shard 0 detection: ") {
		t.Errorf("Apply of bad parameters: %v", err)
	}
	bad = tableOf(t, m)
	bad.Devices[1].Index = 7
	if _, err := p.Apply(context.Background(), bad); err == nil || err.Error() != "apply table: pipeline: device F0-D1 has index 7 at position 1" {
		t.Errorf("Apply of a bad index: %v", err)
	}
	if got := p.tab.Load().gen; got != 1 {
		t.Errorf("table generation after refused applies: %d, want 1", got)
	}
}

// TestApplyKeepsOutagesInProgress: an outage in progress (F0-D0 reads no
// voltage, F0-D1 below it with it) goes on through a reload that moves
// every index: same ID and start, not restored by the reload; the
// restoration that follows ends that outage.
func TestApplyKeepsOutagesInProgress(t *testing.T) {
	mA := model(2, 2)
	mB := &config.Model{Detect: mA.Detect}
	add := *mA.Devices[0]
	add.ID, add.Feeder = "F9-D0", "F9"
	mB.Devices = append(mB.Devices, &add)
	for _, d := range mA.Devices {
		c := *d
		mB.Devices = append(mB.Devices, &c)
	}
	reindex(mB)
	t0 := time.Date(2026, 11, 28, 3, 30, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	var mu sync.Mutex
	var changes []string
	p, err := New(Options{Table: tableOf(t, mA), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(), Shards: 2, RingSize: 1024, TickEvery: 10 * time.Millisecond,
		Now: func() int64 { return now.Load() },
		OnOutage: func(c *grid.Change) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, c.Kind.String()+" "+c.Outage.ID)
		}})
	if err != nil {
		t.Fatal(err)
	}
	stop := runPipeline(t, p)
	defer stop()
	waitFor(t, func() bool { return p.Ready() == nil })
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(changes)
		changes = changes[:0]
		return out
	}
	for _, d := range mA.Devices {
		p.Put(poll(d.Index, t0, 1, 120, 120, 120))
	}
	t1 := t0.Add(time.Second)
	now.Store(t1.UnixNano())
	p.Put(poll(0, t1, 2, 0, 0, 0))
	p.Put(poll(1, t1, 2, 0, 0, 0))
	waitFor(t, func() bool { return len(p.Outages()) == 1 })
	before := p.Outages()[0]
	taken()

	// The reload comes later than the outage's start.
	now.Store(t1.Add(500 * time.Millisecond).UnixNano())
	if _, err := p.Apply(context.Background(), tableOf(t, mB)); err != nil {
		t.Fatal(err)
	}
	after := p.Outages()
	if len(after) != 1 || after[0].ID != before.ID || after[0].Start != before.Start || after[0].Status != before.Status {
		t.Fatalf("outages after the reload: %+v, want %+v", after, before)
	}
	for _, c := range taken() {
		if strings.HasPrefix(c, "restored") || strings.HasPrefix(c, "started") {
			t.Errorf("the reload restored or started an outage: %s", c)
		}
	}
	// F0-D0 is index 1 now; its voltage comes back.
	t2 := t1.Add(time.Second)
	now.Store(t2.UnixNano())
	p.Put(poll(1, t2, 3, 120, 120, 120))
	p.Put(poll(2, t2, 3, 120, 120, 120))
	waitFor(t, func() bool { return len(p.Outages()) == 0 })
	if got := taken(); !slices.Contains(got, "restored "+before.ID) {
		t.Errorf("changes after the restoration: %q, want restored %s", got, before.ID)
	}
}

// TestApplyHoldsTimeBasedDetectionUntilPut: between Apply and the next Put
// (the producers resuming), the workers tick but detect nothing by time,
// so that no event of the new table reaches the stream before consumers
// took the new table; the first Put releases it.
func TestApplyHoldsTimeBasedDetectionUntilPut(t *testing.T) {
	m := model(2, 1)
	t0 := time.Date(2026, 11, 28, 3, 40, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	p, err := New(Options{Table: tableOf(t, m), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(), Shards: 2, RingSize: 1024, TickEvery: 5 * time.Millisecond,
		Now: func() int64 { return now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Events().Subscribe(64)
	stop := runPipeline(t, p)
	defer stop()
	waitFor(t, func() bool { return p.Ready() == nil })
	for _, d := range m.Devices {
		p.Put(poll(d.Index, t0, 1, 120, 120, 120))
	}
	if _, err := p.Apply(context.Background(), tableOf(t, m)); err != nil {
		t.Fatal(err)
	}
	// An hour later by the detection clock: every device is silent far
	// past comm_loss_after, yet ticks (each publishes a generation) find
	// nothing while held.
	now.Store(t0.Add(time.Hour).UnixNano())
	g := p.Generation()
	waitFor(t, func() bool { return p.Generation() >= g+6 })
	if n := len(sub.C); n != 0 {
		t.Fatalf("%d events while time-based detection is held: %v", n, <-sub.C)
	}
	// The producers resume: device 0 answers, device 1 stays silent and
	// is found comm_lost by time (device 0's shard may tick before its
	// sample: a comm_lost of its own, then, comes first).
	p.Put(poll(0, t0.Add(time.Hour), 2, 120, 120, 120))
	for i := 0; ; i++ {
		ev := takeEvents(t, sub, 1)[0]
		if ev.Device == 1 && ev.Kind == detect.KindCommLost && ev.Cause == detect.CauseNoData && ev.Stage == detect.StageStart {
			break
		}
		if ev.Device != 0 || i == 2 {
			t.Fatalf("event %d after the Put: %+v, want device 1's comm_lost by no_data", i, ev)
		}
	}
}
