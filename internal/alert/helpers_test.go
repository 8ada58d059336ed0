package alert

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logBuffer collects log lines for assertions and mirrors them to the test
// log.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(p)))
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testDispatcher is a running Dispatcher with its own registry and log.
type testDispatcher struct {
	*Dispatcher
	reg  *prometheus.Registry
	logs *logBuffer
	stop func()
}

// startDispatcher builds a Dispatcher for the receivers with short
// backoffs, applies mods, runs it and stops it when the test ends.
func startDispatcher(t *testing.T, receivers []Receiver, mods ...func(*Options)) *testDispatcher {
	t.Helper()
	logs := &logBuffer{t: t}
	reg := prometheus.NewRegistry()
	opts := DefaultOptions()
	opts.Receivers = receivers
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.Registerer = reg
	opts.BackoffInitial = 20 * time.Millisecond
	opts.BackoffMax = 200 * time.Millisecond
	opts.Timeout = 2 * time.Second
	opts.FlushTimeout = 2 * time.Second
	for _, m := range mods {
		m(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10 s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &testDispatcher{Dispatcher: d, reg: reg, logs: logs, stop: stop}
}

// metric returns the value of a series of the dispatcher's registry.
func (td *testDispatcher) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	switch name {
	case "feederd_alert_sends_total":
		return testutil.ToFloat64(td.m.sends.WithLabelValues(labels...))
	case "feederd_alert_dropped_total":
		return testutil.ToFloat64(td.m.dropped.WithLabelValues(labels...))
	case "feederd_alert_queue_length":
		return testutil.ToFloat64(td.m.queue.WithLabelValues(labels...))
	case "feederd_alert_receiver_up":
		return testutil.ToFloat64(td.m.up.WithLabelValues(labels...))
	case "feederd_alerts_active":
		return testutil.ToFloat64(td.m.active)
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// eventually retries f every 20 ms until it returns nil or within passes;
// it returns how long that took.
func eventually(t *testing.T, within time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// always checks f every 50 ms for the duration and fails at the first error.
func always(t *testing.T, during time.Duration, what string, f func() error) {
	t.Helper()
	for end := time.Now().Add(during); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

func equalMaps(got, want map[string]string) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return fmt.Errorf("got %v, want %v", got, want)
		}
	}
	return nil
}
