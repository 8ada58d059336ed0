package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStagesStopInOrderWithDeadlines: a component that ignores its stop (a
// poller stuck in a dial) holds up the shutdown for its deadline only; the
// ones after it still stop, in order, and the daemon reports which one
// was late.
func TestStagesStopInOrderWithDeadlines(t *testing.T) {
	var logs lockedBuf
	st := newStages(slog.New(slog.NewTextHandler(&logs, nil)))
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	var order []string
	record := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return nil
		}
	}
	parent, stop := context.WithCancel(context.Background())
	st.add("stuck", parent, func(context.Context) error { <-release; return nil })
	st.add("pipeline", nil, record("pipeline"))
	st.add("sink", nil, record("sink"))
	st.start()
	stop()
	st.waitFirst(parent)
	start := time.Now()
	if st.stop(100*time.Millisecond, "stuck") {
		t.Error("stop reported the stuck component as stopped")
	}
	if !st.stop(time.Second, "pipeline") || !st.stop(time.Second, "sink") {
		t.Error("the components after the stuck one did not stop")
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the shutdown took %v; the stuck component should cost its 100 ms deadline only", d)
	}
	if got := strings.Join(order, ","); got != "pipeline,sink" {
		t.Errorf("stop order %s, want pipeline,sink", got)
	}
	if st.failed == nil || st.failed.Error() != "[stuck] did not stop within 100ms" {
		t.Errorf("failed = %v", st.failed)
	}
	if l := logs.String(); !strings.Contains(l, `msg="components did not stop in time; going on with the shutdown without them" components=[stuck] waited=100ms`) {
		t.Errorf("log:\n%s", l)
	}
}

// TestRunGuardsItsResources: a second daemon on the same registry gets an
// error (not a panic); a second daemon on the same data directory is
// refused with the holder's PID; a daemon whose setup fails releases the
// data directory; and once the first stops, its directory can be used.
func TestRunGuardsItsResources(t *testing.T) {
	dataDir := t.TempDir()
	cfg := "profiles: [" + profilesDir(t) + "/feeder-rtu.yaml]\n" + `
links:
  - {id: l1, url: "tcp://127.0.0.1:1"}
devices:
  - {id: F1-REC, link: l1, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}
`
	a := startDaemon(t, cfg, func(o *Options) { o.DataDir = dataDir })
	path := filepath.Join(t.TempDir(), "feederd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(reg *prometheus.Registry, dir, listen string) error {
		opts := DefaultOptions()
		opts.ConfigPath = path
		opts.Logger = slog.New(slog.DiscardHandler)
		opts.Registry = reg
		opts.Listen = listen
		opts.DataDir = dir
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a Run that starts stops at once
		return Run(ctx, opts)
	}
	if err := run(a.reg, t.TempDir(), "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "duplicate metrics collector registration attempted") {
		t.Errorf("second daemon on the same registry: %v, want a duplicate registration error", err)
	}
	want := "data directory " + dataDir + " is in use by feederd pid " + itoa(os.Getpid()) + ": give each instance its own -data.dir"
	if err := run(prometheus.NewRegistry(), dataDir, "127.0.0.1:0"); err == nil || err.Error() != want {
		t.Errorf("second daemon on the same data directory: %v, want %q", err, want)
	}
	other := t.TempDir()
	if err := run(prometheus.NewRegistry(), other, "256.0.0.1:0"); err == nil {
		t.Error("a daemon with an impossible listen address started")
	}
	// Its setup failed after it took the directory: it gave it back.
	if err := run(prometheus.NewRegistry(), other, "127.0.0.1:0"); err != nil {
		t.Errorf("the data directory of a failed setup stays taken: %v", err)
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if err := run(prometheus.NewRegistry(), dataDir, "127.0.0.1:0"); err != nil {
		t.Errorf("after the first daemon stopped: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
