package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/influx"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/testenv"
)

// counterSum adds up every series of the counter name in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestPollCountInInfluxDB: a fixed number of polls of a small fleet goes
// through the rings, the workers and the InfluxDB sink into a real
// InfluxDB, which then holds exactly one point per poll, each with every
// field of its poll. The polls are put before the workers start, so each
// shard's ring holds 3000 samples that the workers take in batches of 1024:
// polls of 5 samples straddle the batch boundaries.
func TestPollCountInInfluxDB(t *testing.T) {
	const perDevice = 100
	ifx := testenv.StartInflux(t)
	m := model(4, 3) // 12 devices, 2 feeders (6 devices) per shard
	cfg := config.Influx{URL: ifx.URL, Bucket: ifx.Bucket, BatchSize: 500, QueueSize: 100000,
		FlushInterval: 20 * time.Millisecond, Timeout: 5 * time.Second}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := influx.NewSink(influx.SinkOptions{Config: cfg, Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// The last polls are recent, so the workers' final tick finds no
	// device silent; any event it does find is counted below anyway.
	t0 := time.Now().Add(-perDevice * time.Second)
	p, err := New(Options{Table: tableOf(t, m), Lines: sink, Logger: log, Registerer: reg, Shards: 2, RingSize: 4096,
		Policy: ring.DropNewest, BatchLines: 500})
	if err != nil {
		t.Fatal(err)
	}
	for i := range perDevice {
		for d := range m.Devices {
			p.Put(poll(uint32(d), t0.Add(time.Duration(i)*time.Second), uint32(i+1), 120, 120.5, 119.5))
		}
	}
	sinkCtx, stopSink := context.WithCancel(context.Background())
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(sinkCtx) }()
	defer func() {
		stopSink()
		if err := <-sinkDone; err != nil {
			t.Errorf("sink Run: %v", err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the workers drain the rings and stop
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}

	polls := float64(perDevice * len(m.Devices))
	if got := counterSum(t, reg, "feederd_pipeline_ring_dropped_total"); got != 0 {
		t.Fatalf("the rings dropped %v samples", got)
	}
	events := counterSum(t, reg, "feederd_events_total")
	deadline := time.Now().Add(30 * time.Second)
	for counterSum(t, reg, "feederd_influx_points_written_total") != polls+events {
		if time.Now().After(deadline) {
			t.Fatalf("written = %v, want %v polls + %v event lines",
				counterSum(t, reg, "feederd_influx_points_written_total"), polls, events)
		}
		time.Sleep(10 * time.Millisecond)
	}

	series := ifx.Query(t, `SELECT count("seq"), count("ok"), count("voltage_a"), count("voltage_b"), count("voltage_c"), count("current_a") FROM "feeder_point"`)
	if len(series) != 1 {
		t.Fatalf("counts: %+v", series)
	}
	for i, c := range series[0].Columns[1:] {
		if n, _ := series[0].Values[0][i+1].(json.Number).Int64(); n != int64(polls) {
			t.Errorf("%s = %d, want %v: one point per poll", c, n, polls)
		}
	}
	// Every point holds its poll's values, and every device has seq 1..100.
	for _, s := range ifx.Query(t, `SELECT "seq", "ok", "voltage_a", "voltage_b", "voltage_c", "current_a" FROM "feeder_point" GROUP BY "device"`) {
		if len(s.Values) != perDevice {
			t.Errorf("%s: %d points, want %d", s.Tags["device"], len(s.Values), perDevice)
		}
		for i, v := range s.Values {
			got := []any{v[s.Column("seq")], v[s.Column("ok")], v[s.Column("voltage_a")], v[s.Column("voltage_b")],
				v[s.Column("voltage_c")], v[s.Column("current_a")]}
			want := []any{json.Number(strconv.Itoa(i + 1)), json.Number("1"), json.Number("120"), json.Number("120.5"),
				json.Number("119.5"), json.Number("200")}
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("%s point %d: %v, want %v", s.Tags["device"], i, got, want)
					break
				}
			}
		}
	}
}
