package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
)

// lineCollector is a LineSink that keeps every line.
type lineCollector struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines int
}

func (c *lineCollector) PutLines(b []byte, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(b)
	c.lines += n
}

func (c *lineCollector) text() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.lines
}

var meterProfile = &profile.Profile{Name: "meter", Points: []profile.Point{
	{Name: "va", Type: profile.Float32, Role: profile.RoleVoltageA, Unit: "V"},
	{Name: "vb", Type: profile.Float32, Role: profile.RoleVoltageB, Unit: "V", Address: 2},
	{Name: "vc", Type: profile.Float32, Role: profile.RoleVoltageC, Unit: "V", Address: 4},
	{Name: "ia", Type: profile.Float32, Role: profile.RoleCurrentA, Unit: "A", Address: 6},
}}

// model builds feeders × devicesPerFeeder meters, chained by upstream.
func model(feeders, perFeeder int) *config.Model {
	m := &config.Model{Detect: detect.DefaultParams()}
	link := &config.Link{ID: "l"}
	for f := range feeders {
		for d := range perFeeder {
			dev := &config.Device{
				Index: uint32(len(m.Devices)), ID: fmt.Sprintf("F%d-D%d", f, d), Feeder: fmt.Sprintf("F%d", f),
				Link: link, Unit: 1, Profile: meterProfile, Points: meterProfile.Points,
				Interval: time.Second, NominalVoltage: 120, PTRatio: 1,
			}
			if d > 0 {
				dev.Upstream = fmt.Sprintf("F%d-D%d", f, d-1)
			}
			m.Devices = append(m.Devices, dev)
			link.Devices = append(link.Devices, dev)
		}
	}
	m.Links = []*config.Link{link}
	return m
}

// poll returns one device poll: three voltages in volts, a current, and
// the device status last.
func poll(dev uint32, t time.Time, seq uint32, va, vb, vc float64) []sample.Sample {
	ns := t.UnixNano()
	out := []sample.Sample{
		{Time: ns, Device: dev, Point: 0, Value: va, Seq: seq},
		{Time: ns, Device: dev, Point: 1, Value: vb, Seq: seq},
		{Time: ns, Device: dev, Point: 2, Value: vc, Seq: seq},
		{Time: ns, Device: dev, Point: 3, Value: 200, Seq: seq},
		{Time: ns, Device: dev, Point: sample.NoPoint, Value: 1, Seq: seq, Flags: sample.DeviceStatus | sample.EndOfPoll},
	}
	return out
}

func newPipeline(t testing.TB, m *config.Model, shards int, lines LineSink, reg *prometheus.Registry) *Pipeline {
	t.Helper()
	p, err := New(Options{
		Table: tableOf(t, m), Lines: lines, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg, Shards: shards, RingSize: 1024, Policy: ring.DropNewest, TickEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFeedersStayInOneShard(t *testing.T) {
	m := model(5, 3)
	p := newPipeline(t, m, 2, nil, prometheus.NewRegistry())
	if p.Shards() != 2 {
		t.Fatalf("shards = %d", p.Shards())
	}
	want := []uint16{0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0}
	for i, s := range p.tab.Load().byDev {
		if s != want[i] {
			t.Errorf("device %s in shard %d, want %d", m.Devices[i].ID, s, want[i])
		}
	}
	// More shards than feeders: only as many as there are feeders.
	if p := newPipeline(t, model(2, 1), 8, nil, prometheus.NewRegistry()); p.Shards() != 2 {
		t.Errorf("8 shards for 2 feeders: got %d, want 2", p.Shards())
	}
}

// TestSagEndToEnd: a sag on one phase of one device goes through the ring
// and detection to one event on the stream and one feeder_event line per
// stage, while every poll is encoded as one measurement line.
func TestSagEndToEnd(t *testing.T) {
	m := model(3, 2)
	var lines lineCollector
	reg := prometheus.NewRegistry()
	p := newPipeline(t, m, 2, &lines, reg)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	// Time-based detection (comms loss by silence) runs on this clock.
	p.opts.Now = func() int64 { return t0.Add(6 * time.Second).UnixNano() }
	sub := p.Events().Subscribe(16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	volts := []float64{120, 120, 96, 100, 120, 120} // sag to 0.8 pu on phase B at t0+2s, worst 0.8
	for i, vb := range volts {
		p.Put(poll(3, t0.Add(time.Duration(i)*time.Second), uint32(i+1), 120, vb, 120))
	}
	var got []detect.Event
	for len(got) < 2 {
		select {
		case ev := <-sub.C:
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far: %+v", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, open := <-sub.C; open {
		t.Error("subscription not closed after Run")
	}
	start, end := got[0], got[1]
	if start.Kind != detect.KindSag || start.Stage != detect.StageStart || end.Stage != detect.StageEnd || end.ID != start.ID {
		t.Fatalf("events = %+v", got)
	}
	if end.Worst != 0.8 || end.Phases != detect.PhaseB || end.Duration() != 2*time.Second || end.Device != 3 {
		t.Errorf("end = worst %v phases %v duration %v device %d", end.Worst, end.Phases, end.Duration(), end.Device)
	}
	text, n := lines.text()
	// One line per poll (6) + 2 event lines.
	if n != 8 || strings.Count(text, "\n") != 8 {
		t.Errorf("lines = %d (%d newlines), want 8", n, strings.Count(text, "\n"))
	}
	wantPoll := fmt.Sprintf("feeder_point,device=F1-D1,feeder=F1 voltage_a=120,voltage_b=96,voltage_c=120,current_a=200,ok=1i,seq=3i %d\n",
		t0.Add(2*time.Second).UnixNano()/1e6)
	if !strings.Contains(text, wantPoll) {
		t.Errorf("no line\n%s\nin\n%s", wantPoll, text)
	}
	ms := t0.Add(2*time.Second).UnixNano() / 1e6
	wantEnd := fmt.Sprintf("feeder_event,device=F1-D1,feeder=F1,kind=sag,severity=warning id=%di,stage=\"end\",category=\"momentary_sag\",start=%di,end=%di,duration_s=2,precision_s=1,phases=\"B\",worst_pu=0.8,worst_v=96 %d\n",
		start.ID, ms, ms+2000, ms)
	if !strings.Contains(text, wantEnd) {
		t.Errorf("no line\n%s\nin\n%s", wantEnd, text)
	}
	if got := testutil.ToFloat64(p.metrics.samples.WithLabelValues("1")); got != 30 {
		t.Errorf("samples in shard 1 = %v, want 30", got)
	}
	if got := testutil.ToFloat64(p.metrics.events[detect.KindSag][detect.StageEnd]); got != 1 {
		t.Errorf("sag end events = %v", got)
	}
	snap := p.Snapshot()
	if len(snap) != 6 || snap[3].ID != "F1-D1" || snap[3].Voltage[1] != 1 {
		t.Errorf("snapshot = %+v", snap)
	}
}

// TestPollSplitAcrossBatches: the ring's batch boundary may fall inside a
// poll; the poll still makes one line, handed on only once complete.
func TestPollSplitAcrossBatches(t *testing.T) {
	m := model(1, 1)
	var lines lineCollector
	p := newPipeline(t, m, 1, &lines, prometheus.NewRegistry())
	sh := p.shards[0]
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	pl := poll(0, t0, 9, 120, 121.5, 119)
	sh.process(pl[:2])
	sh.process(pl[2:4])
	sh.flush()
	if text, n := lines.text(); n != 0 || text != "" || len(sh.lines) != 0 {
		t.Fatalf("before the end of the poll: %d lines %q, %d bytes pending", n, text, len(sh.lines))
	}
	sh.process(pl[4:])
	sh.flush()
	want := fmt.Sprintf("feeder_point,device=F0-D0,feeder=F0 voltage_a=120,voltage_b=121.5,voltage_c=119,current_a=200,ok=1i,seq=9i %d\n", t0.UnixNano()/1e6)
	if text, n := lines.text(); n != 1 || text != want {
		t.Errorf("lines = %d:\n%s\nwant 1:\n%s", n, text, want)
	}
}

// TestDrainOnStop: samples put before Run's context ends are all processed
// and handed on.
func TestDrainOnStop(t *testing.T) {
	m := model(4, 1)
	var lines lineCollector
	p := newPipeline(t, m, 2, &lines, prometheus.NewRegistry())
	t0 := time.Now()
	for i := range 100 {
		p.Put(poll(uint32(i%4), t0.Add(time.Duration(i)*time.Second), uint32(i), 120, 120, 120))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := lines.text(); n != 100 {
		t.Errorf("lines = %d, want 100 (one per poll)", n)
	}
}

// TestFullRingCounts: a full ring drops (DropNewest here) and counts.
func TestFullRingCounts(t *testing.T) {
	m := model(1, 1)
	reg := prometheus.NewRegistry()
	p := newPipeline(t, m, 1, nil, reg)
	t0 := time.Now()
	for i := range 300 { // 1500 samples into a ring of 1024
		p.Put(poll(0, t0.Add(time.Duration(i)*time.Second), uint32(i), 120, 120, 120))
	}
	want := `# HELP feederd_pipeline_ring_dropped_total Samples dropped because the shard's ring was full.
# TYPE feederd_pipeline_ring_dropped_total counter
feederd_pipeline_ring_dropped_total{shard="0"} 476
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "feederd_pipeline_ring_dropped_total"); err != nil {
		t.Error(err)
	}
}

func TestSubscriberThatLagsLosesOnlyItsOwnEvents(t *testing.T) {
	m := model(1, 1)
	reg := prometheus.NewRegistry()
	p := newPipeline(t, m, 1, nil, reg)
	slow := p.Events().Subscribe(1)
	fast := p.Events().Subscribe(64)
	sh := p.shards[0]
	for i := range 10 {
		sh.emit(&detect.Event{ID: uint64(i), Kind: detect.KindTrip, Stage: detect.StageInstant})
	}
	if len(fast.C) != 10 || len(slow.C) != 1 {
		t.Errorf("fast has %d, slow has %d", len(fast.C), len(slow.C))
	}
	if got := testutil.ToFloat64(p.metrics.streamDrops); got != 9 {
		t.Errorf("drops = %v, want 9", got)
	}
	slow.Cancel()
	slow.Cancel()
	sh.emit(&detect.Event{ID: 11, Kind: detect.KindTrip, Stage: detect.StageInstant})
	if len(fast.C) != 11 {
		t.Errorf("fast has %d after cancel of slow", len(fast.C))
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); err == nil || err.Error() != "pipeline: table with topology, logger and registerer are required" {
		t.Errorf("err = %v", err)
	}
	m := model(1, 1)
	m.Detect.SagThreshold = 2
	_, err := New(Options{Table: tableOf(t, m), Logger: slog.Default(), Registerer: prometheus.NewRegistry()})
	if err == nil || !strings.HasPrefix(err.Error(), "pipeline: shard 0 detection: ") {
		t.Errorf("err = %v", err)
	}
}

// TestQuiesceStopsTimeBasedDetection: once the producers are stopping,
// their silence is not comms loss.
func TestQuiesceStopsTimeBasedDetection(t *testing.T) {
	m := model(1, 1)
	p := newPipeline(t, m, 1, nil, prometheus.NewRegistry())
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	later := t0.Add(time.Hour)
	p.opts.Now = func() int64 { return later.UnixNano() }
	sub := p.Events().Subscribe(8)
	p.Put(poll(0, t0, 1, 120, 120, 120))
	sh := p.shards[0]
	buf := make([]sample.Sample, 16)
	sh.process(buf[:sh.ring.GetBatch(buf)])
	p.Quiesce()
	sh.tick()
	if len(sub.C) != 0 {
		t.Fatalf("events after Quiesce: %+v", <-sub.C)
	}
	// Without Quiesce an hour of silence is comms loss.
	p.quiet.Store(false)
	sh.tick()
	if len(sub.C) != 1 {
		t.Fatalf("events = %d, want one comm_lost", len(sub.C))
	}
	if ev := <-sub.C; ev.Kind != detect.KindCommLost {
		t.Errorf("event = %v", ev.Kind)
	}
}

// TestDeviceStateMetrics: /metrics shows each device's detection state
// from the workers' snapshots.
func TestDeviceStateMetrics(t *testing.T) {
	m := model(1, 2)
	reg := prometheus.NewRegistry()
	p := newPipeline(t, m, 1, nil, reg)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p.opts.Now = func() int64 { return t0.Add(time.Second).UnixNano() }
	p.Put(poll(0, t0, 1, 120, 114, 126.6)) // B at 0.95, C at 1.055
	p.Put(poll(1, t0, 1, 0, 0, 0))         // all phases out: de-energized
	sh := p.shards[0]
	buf := make([]sample.Sample, 16)
	sh.process(buf[:sh.ring.GetBatch(buf)])
	sh.tick()
	want := `# HELP feederd_device_comm_ok 1 while the device answers, 0 while it is comm_lost; absent before it was heard.
# TYPE feederd_device_comm_ok gauge
feederd_device_comm_ok{device="F0-D0",feeder="F0"} 1
feederd_device_comm_ok{device="F0-D1",feeder="F0"} 1
# HELP feederd_device_energized 1 when the device is energized, 0 when de-energized; absent while unknown.
# TYPE feederd_device_energized gauge
feederd_device_energized{device="F0-D0",feeder="F0"} 1
feederd_device_energized{device="F0-D1",feeder="F0"} 0
# HELP feederd_device_voltage_pu Last good phase voltage in per-unit of the device's nominal.
# TYPE feederd_device_voltage_pu gauge
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="A"} 1
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="B"} 0.95
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="C"} 1.055
feederd_device_voltage_pu{device="F0-D1",feeder="F0",phase="A"} 0
feederd_device_voltage_pu{device="F0-D1",feeder="F0",phase="B"} 0
feederd_device_voltage_pu{device="F0-D1",feeder="F0",phase="C"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"feederd_device_comm_ok", "feederd_device_energized", "feederd_device_voltage_pu"); err != nil {
		t.Error(err)
	}
}

// TestVoltageMetricFloat32: a per-unit voltage from a float32 register is
// exposed as the shortest decimal of its float32 precision, as InfluxDB and
// probe print it: 117.84 V of 120 is 0.982, not 0.9819999694824219.
func TestVoltageMetricFloat32(t *testing.T) {
	m := model(1, 1)
	reg := prometheus.NewRegistry()
	p := newPipeline(t, m, 1, nil, reg)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p.opts.Now = func() int64 { return t0.Add(time.Second).UnixNano() }
	v := float64(float32(117.84))
	if pu := v / 120; strconv.FormatFloat(pu, 'g', -1, 64) != "0.9819999694824219" {
		t.Fatalf("test premise: %v/120 = %v", v, pu)
	}
	p.Put(poll(0, t0, 1, v, float64(float32(120.6)), 120))
	sh := p.shards[0]
	buf := make([]sample.Sample, 16)
	sh.process(buf[:sh.ring.GetBatch(buf)])
	sh.tick()
	want := `# HELP feederd_device_voltage_pu Last good phase voltage in per-unit of the device's nominal.
# TYPE feederd_device_voltage_pu gauge
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="A"} 0.982
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="B"} 1.005
feederd_device_voltage_pu{device="F0-D0",feeder="F0",phase="C"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "feederd_device_voltage_pu"); err != nil {
		t.Error(err)
	}
}

// TestLossIsCounted makes every way a sample can be lost or bent before
// detection happen, and reads each one's count on /metrics: samples of a
// device outside the model, samples put after the pipeline stopped, a
// sample older than its device's last (taken at the newer time), a sample
// of another shard's device reaching a detector; and a ring smaller than a
// poll is refused at New.
func TestLossIsCounted(t *testing.T) {
	m := model(2, 1)
	reg := prometheus.NewRegistry()
	var lines lineCollector
	p := newPipeline(t, m, 2, &lines, reg)
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	p.Put(poll(0, t0, 1, 120, 120, 120))
	p.Put(poll(7, t0, 1, 120, 120, 120)) // 5 samples of no device
	late := poll(0, t0.Add(-time.Second), 2, 120, 120, 120)
	p.Put(late[:1]) // older than device 0's last sample
	// Device 1 is in the other shard: hand one of its samples to shard 0's
	// detector, as a mis-routed put would.
	p.shards[p.tab.Load().byDev[0]].det.Process(&poll(1, t0, 1, 120, 120, 120)[0])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // a few ticks publish detection's counts
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.Put(poll(1, t0.Add(time.Second), 2, 120, 120, 120)) // 5 samples after the stop
	sh := strconv.Itoa(int(p.tab.Load().byDev[0]))
	want := `# HELP feederd_pipeline_samples_lost_total Samples the pipeline could not queue, by reason: unknown_device (a device index outside the model), closed (put after the pipeline stopped). A full ring counts in feederd_pipeline_ring_dropped_total.
# TYPE feederd_pipeline_samples_lost_total counter
feederd_pipeline_samples_lost_total{reason="closed"} 5
feederd_pipeline_samples_lost_total{reason="unknown_device"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "feederd_pipeline_samples_lost_total"); err != nil {
		t.Error(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "feederd_detect_samples_irregular_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			got[l["shard"]+"/"+l["reason"]] = mt.GetCounter().GetValue()
		}
	}
	other := strconv.Itoa(1 - int(p.tab.Load().byDev[0]))
	wantIrr := map[string]float64{sh + "/foreign": 1, sh + "/late": 1, other + "/foreign": 0, other + "/late": 0}
	if !maps.Equal(got, wantIrr) {
		t.Errorf("feederd_detect_samples_irregular_total = %v, want %v", got, wantIrr)
	}

	// Ring smaller than a poll (4 points and the status).
	_, err = New(Options{Table: tableOf(t, model(1, 1)), Logger: slog.Default(), Registerer: prometheus.NewRegistry(), RingSize: 4})
	if want := "pipeline: device F0-D0 yields 5 samples a poll, more than a ring holds (4): raise pipeline.ring_size"; err == nil || err.Error() != want {
		t.Errorf("New with a 4-sample ring: %v, want %q", err, want)
	}
}

// TestRingSizeBoundsAgree: every ring_size the configuration accepts is one
// the ring can make (config does not import internal/ring for the bound).
func TestRingSizeBoundsAgree(t *testing.T) {
	if config.MaxRingSize != ring.MaxCapacity {
		t.Errorf("config.MaxRingSize = %d, ring.MaxCapacity = %d", config.MaxRingSize, ring.MaxCapacity)
	}
}
