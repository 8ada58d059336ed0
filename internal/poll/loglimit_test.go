package poll

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Split(strings.TrimSuffix(w.b.String(), "\n"), "\n")
}

func TestLogLimit(t *testing.T) {
	var buf lockedBuffer
	now := time.Unix(0, 0)
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	log := limitLogger(base, func() time.Time { return now }).With("device", "D")
	for i := range 100 {
		log.Debug("modbus exception", "i", i)
	}
	now = now.Add(1500 * time.Millisecond) // one and a half tokens
	log.Warn("device down")
	log.Warn("device down again")
	log.Info("dropped")
	now = now.Add(time.Hour) // the bucket fills up to the burst
	for range logBurst + 1 {
		log.Info("burst")
	}
	now = now.Add(time.Second)
	log.Info("device up")
	got := buf.lines()
	want := []string{}
	for i := range logBurst {
		want = append(want, "level=DEBUG msg=\"modbus exception\" device=D i="+strconv.Itoa(i))
	}
	want = append(want,
		`level=WARN msg="device down" device=D suppressed=80`,
		// Half a token is left: "device down again" and "dropped" wait.
	)
	for range logBurst {
		want = append(want, `level=INFO msg=burst device=D`)
	}
	want[len(want)-logBurst] += " suppressed=2"
	want = append(want, `level=INFO msg="device up" device=D suppressed=1`)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestDeviceLogBounded: a device answering every request of its 10 ms
// polls with an exception, at debug level, writes at most the burst and one
// line a second.
func TestDeviceLogBounded(t *testing.T) {
	url, _ := exceptionServer(t, 0x07)
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	dev := testDevice("D", 1, 10*time.Millisecond, pt)
	var buf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sink := newCollector()
	p, err := New(Options{Model: testModel(testLink("L", url, time.Second, dev)), Sink: sink, Logger: logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	sink.waitFor(t, 0, "60 polls", func(p [][]sample.Sample) bool { return len(p) >= 60 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	polls := len(sink.of(0))
	var exc int
	for _, ln := range buf.lines() {
		if strings.Contains(ln, `msg="modbus exception"`) {
			exc++
		}
	}
	// The 60 polls take at least 0.6 s: at most one token comes back.
	if exc < logBurst || exc > logBurst+2 {
		t.Errorf("%d polls wrote %d exception lines, want %d..%d", polls, exc, logBurst, logBurst+2)
	}
}
