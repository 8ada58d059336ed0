package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
)

// runPipeline starts p and returns a function that stops it and returns
// Run's error.
func runPipeline(t *testing.T, p *Pipeline) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() error {
		p.Quiesce()
		cancel()
		return <-done
	}
}

// eventLines returns the feeder_event lines of c.
func eventLines(c *lineCollector) []string {
	text, _ := c.text()
	var out []string
	for _, ln := range strings.Split(text, "\n") {
		if strings.HasPrefix(ln, "feeder_event,") {
			out = append(out, ln)
		}
	}
	return out
}

// TestStateCarriesOpenEventsAcrossARestart: an interruption in progress at
// shutdown is saved; the next pipeline continues it and writes its end
// with the same id and start, so InfluxDB's start line is overwritten, not
// left open; a device no longer configured is skipped.
func TestStateCarriesOpenEventsAcrossARestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "detect-state.json")
	m := model(1, 2)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	newP := func(lines LineSink) *Pipeline {
		p, err := New(Options{
			Table: tableOf(t, m), Lines: lines, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registerer: prometheus.NewRegistry(), Shards: 1, RingSize: 1024, Policy: ring.DropNewest,
			TickEvery: time.Hour, StatePath: state, Now: func() int64 { return t0.UnixNano() },
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	var first lineCollector
	p := newP(&first)
	stop := runPipeline(t, p)
	for i := range 3 {
		p.Put(poll(0, t0.Add(time.Duration(i)*time.Second), uint32(i+1), 120, 120, 120))
	}
	for i := 3; i < 6; i++ {
		p.Put(poll(0, t0.Add(time.Duration(i)*time.Second), uint32(i+1), 0, 0, 0))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var f stateFile
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range f.Devices {
		for _, e := range d.Open {
			kinds = append(kinds, d.ID+" "+e.Kind.String())
		}
	}
	// F0-D1 was never polled: inferred de-energized below a dead meter.
	want := "F0-D0 de_energized,F0-D0 interruption,F0-D0 sag,F0-D1 de_energized"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("saved events in progress: %s\nwant %s\n%s", got, want, b)
	}
	var intrID uint64
	for _, ln := range eventLines(&first) {
		if strings.Contains(ln, "kind=interruption") {
			intrID = fieldInt(t, ln, "id")
		}
	}

	// A device that left the configuration is skipped, not fatal.
	f.Devices = append(f.Devices, stateDevice{ID: "GONE", Counter: 3, Open: []stateEvent{{ID: 1, Kind: detect.KindCommLost}}})
	b, _ = json.Marshal(&f)
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var second lineCollector
	p = newP(&second)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("state file still there after it was resumed: %v", err)
	}
	// Resumed lists what was continued, as reopened: the same ids and
	// starts, flagged gap; GONE's event is not among them.
	var resumed []string
	for _, ev := range p.Resumed() {
		resumed = append(resumed, fmt.Sprintf("%s %s %s %v", m.Devices[ev.Device].ID, ev.Kind, ev.Stage, ev.Flags))
		if ev.Kind == detect.KindInterruption && (ev.ID != intrID || ev.Start != t0.Add(3*time.Second).UnixNano()) {
			t.Errorf("resumed interruption: id %d start %d, want %d and t0+3s", ev.ID, ev.Start, intrID)
		}
	}
	if got, want := strings.Join(resumed, ","), "F0-D0 de_energized start gap,F0-D0 interruption start gap,F0-D0 sag start gap|interruption,F0-D1 de_energized start gap|inferred"; got != want {
		t.Errorf("Resumed: %s\nwant %s", got, want)
	}
	stop = runPipeline(t, p)
	for i := 60; i < 62; i++ {
		p.Put(poll(0, t0.Add(time.Duration(i)*time.Second), uint32(i+1), 120, 120, 120))
	}
	p.Put(poll(1, t0.Add(62*time.Second), 1, 120, 120, 48))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := eventLines(&second)
	var ends, newSag int
	for _, ln := range got {
		switch {
		case strings.Contains(ln, "kind=interruption") && strings.Contains(ln, `stage="end"`):
			ends++
			if id := fieldInt(t, ln, "id"); id != intrID {
				t.Errorf("interruption ends with id %d, started with %d", id, intrID)
			}
			if !strings.Contains(ln, fmt.Sprintf("start=%di", t0.Add(3*time.Second).UnixMilli())) || !strings.Contains(ln, `flags="gap"`) {
				t.Errorf("interruption end keeps its start (t0+3s) and says gap: %s", ln)
			}
		case strings.Contains(ln, "device=F0-D1") && strings.Contains(ln, "kind=sag"):
			newSag++
			// F0-D1's counter went on from the saved one (its
			// de_energized was #1).
			if id := fieldInt(t, ln, "id"); uint32(id) != 2 {
				t.Errorf("new event of F0-D1 has counter %d, want 2: %s", uint32(id), ln)
			}
		}
	}
	if ends != 1 || newSag != 1 {
		t.Fatalf("after the restart: %d interruption ends, %d new sags, want 1 and 1:\n%s", ends, newSag, strings.Join(got, "\n"))
	}
}

func fieldInt(t *testing.T, line, key string) uint64 {
	t.Helper()
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		i = strings.Index(line, ","+key+"=")
	}
	if i < 0 {
		t.Fatalf("no field %s in %s", key, line)
	}
	rest := line[i+len(key)+2:]
	var n uint64
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// TestEventMetricsHaveOnlyPossibleSeries: feederd_events_total has no
// kind="none" and no stage an event kind cannot have.
func TestEventMetricsHaveOnlyPossibleSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	newPipeline(t, model(1, 1), 1, nil, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		if mf.GetName() != "feederd_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			series = append(series, l["kind"]+"/"+l["stage"])
		}
	}
	want := []string{
		"breaker_close/instant", "breaker_open/instant",
		"comm_lost/end", "comm_lost/start", "de_energized/end", "de_energized/start",
		"interruption/end", "interruption/start", "lockout/end", "lockout/start",
		"band/end", "band/start",
		"recloser_sequence/end", "recloser_sequence/start", "reclose/instant",
		"sag/end", "sag/start", "swell/end", "swell/start", "trip/instant",
	}
	if len(series) != len(want) {
		t.Fatalf("series %v\nwant %v", series, want)
	}
	for _, w := range want {
		found := false
		for _, s := range series {
			found = found || s == w
		}
		if !found {
			t.Errorf("missing %s in %v", w, series)
		}
	}
}

// TestClockStep: the wall clock steps 30 s forward, then 30 s back, while
// a device answers every second. Samples and ticks are stamped by a
// sample.Clock, so detection sees one second a second: no comm_lost, no
// event with a negative duration.
func TestClockStep(t *testing.T) {
	var wall, mono atomic.Int64
	wall.Store(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).UnixNano())
	clock := sample.NewClockFrom(
		func() time.Time { return time.Unix(0, wall.Load()) },
		func() time.Duration { return time.Duration(mono.Load()) })
	advance := func(d time.Duration) { wall.Add(int64(d)); mono.Add(int64(d)) }

	var lines lineCollector
	p, err := New(Options{
		Table: tableOf(t, model(1, 1)), Lines: &lines, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(), Shards: 1, RingSize: 1024, Policy: ring.DropNewest,
		TickEvery: time.Millisecond, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := p.Events().Subscribe(64)
	stop := runPipeline(t, p)
	for i := range 60 {
		switch i {
		case 20:
			wall.Add(int64(30 * time.Second))
		case 40:
			wall.Add(-int64(60 * time.Second))
		}
		clock.Sync()
		advance(time.Second)
		v := 120.0
		if i >= 15 && i < 45 {
			v = 100 // a sag that spans both steps
		}
		ss := poll(0, time.Unix(0, clock.Now()), uint32(i+1), v, v, v)
		p.Put(ss)
		// Let the worker tick on the stepped clock between polls.
		time.Sleep(3 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				break
			}
			if ev.Kind == detect.KindCommLost {
				t.Errorf("comm_lost after a clock step: %+v", ev)
			}
			if ev.Stage == detect.StageEnd && ev.End < ev.Start {
				t.Errorf("negative duration: %+v", ev)
			}
			got = append(got, ev.Kind.String()+" "+ev.Stage.String()+" "+ev.Duration().Round(100*time.Millisecond).String())
			continue
		default:
		}
		break
	}
	// The sag lasted 30 polls: 30 s give or take the slew.
	if strings.Join(got, ",") != "sag start 0s,sag end 30s" {
		t.Fatalf("events %v, want one 30 s sag", got)
	}
}

// TestOutagesAnnouncedAfterARestart: an outage carried over a restart by
// the store is handed to OnOutage when the pipeline is built, so its alert
// is live again at once.
func TestOutagesAnnouncedAfterARestart(t *testing.T) {
	dir := t.TempDir()
	store := grid.FileStore{Dir: dir}
	m := model(1, 2)
	if err := store.Save(grid.State{Feeder: "F0", Active: []grid.Outage{{ID: "F0/F0-D0/1", Feeder: "F0", Device: "F0-D0",
		Status: grid.StatusPredicted, Start: 1e15, CustomersOut: 0, Devices: []string{"F0-D0"}}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	_, err := New(Options{
		Table: tableOf(t, m), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
		Shards: 1, RingSize: 1024, Outages: store,
		OnOutage: func(c *grid.Change) { got = append(got, c.Kind.String()+" "+c.Outage.ID) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "updated F0/F0-D0/1" {
		t.Fatalf("OnOutage at start: %v", got)
	}
}
