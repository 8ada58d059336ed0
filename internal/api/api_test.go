package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

func start(t *testing.T, checks map[string]Check) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Options{
		Listen:   "127.0.0.1:0",
		Gatherer: reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Checks:   checks,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return "http://" + s.Addr(), reg
}

func get(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if len(hdr) == 2 {
		req.Header.Set(hdr[0], hdr[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyz(t *testing.T) {
	sinkErr := errors.New("influxdb unreachable: dial tcp 127.0.0.1:8086: connection refused")
	var failing atomic.Pointer[error]
	failing.Store(&sinkErr)
	base, _ := start(t, map[string]Check{
		"poll":   func() error { return nil },
		"influx": func() error { return *failing.Load() },
	})
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", code)
	}
	want := "influx: " + sinkErr.Error() + "\npoll: ok\n"
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	code, body = get(t, base+"/readyz", "Accept", "application/json")
	if code != 503 || !strings.Contains(body, `"ready":false`) {
		t.Errorf("json: %d %s", code, body)
	}
	var ok error
	failing.Store(&ok)
	code, body = get(t, base+"/readyz")
	if code != http.StatusOK || body != "influx: ok\npoll: ok\n" {
		t.Errorf("after recovery: %d %q", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
}

func TestMetrics(t *testing.T) {
	base, reg := start(t, nil)
	c := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "feederd_test_total", Help: "test"}, []string{"device"})
	c.WithLabelValues("F101-R1").Add(3)
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(body, `feederd_test_total{device="F101-R1"} 3`) {
		t.Errorf("metrics body lacks the counter:\n%s", body)
	}
	if code, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

func TestListenError(t *testing.T) {
	_, err := New(Options{Listen: "127.0.0.1:-1", Gatherer: prometheus.NewRegistry(), Logger: slog.Default()})
	if err == nil || !strings.Contains(err.Error(), "http server: listen tcp: address -1: invalid port") {
		t.Fatalf("err = %v", err)
	}
}
