package alert

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is a settable clock for the dispatcher's stamps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestResendBodies checks what an Alertmanager receiver is sent, byte for
// byte in meaning, against an injected clock: an active alert's endsAt is
// the send time plus active_for; a resolved alert keeps being re-sent with
// its restoration time as endsAt for resolved_for after Resolve, then is
// forgotten. (Alertmanager's handling of these is tested against the real
// server in alertmanager_test.go; this test records the requests.)
func TestResendBodies(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 15, 14, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	var posts [][]amAlert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/api/v2/alerts" || r.Method != http.MethodPost {
			http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var got []amAlert
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts = append(posts, got)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	// A resend every 50 ms of real time; the stamps come from clock.
	d := startDispatcher(t, []Receiver{{Kind: Alertmanager, Name: "am", URL: srv.URL + "/prefix/"}}, func(o *Options) {
		o.Now = clock.Now
		o.ResendInterval = 50 * time.Millisecond
		o.ActiveFor = 4 * time.Minute
		o.ResolvedFor = 15 * time.Minute
	})
	last := func() []amAlert {
		mu.Lock()
		defer mu.Unlock()
		if len(posts) == 0 {
			return nil
		}
		return posts[len(posts)-1]
	}
	active := map[string]string{"alertname": "A"}
	gone := map[string]string{"alertname": "G"}
	d.Set(Alert{Labels: active})
	d.Set(Alert{Labels: gone, StartsAt: clock.Now().Add(-time.Hour)})
	restored := clock.Now().Add(-10 * time.Second)
	d.Resolve(gone, restored)
	clock.Add(time.Minute)
	t0 := clock.Now()
	check := func(wantGone bool) func() error {
		return func() error {
			got := last()
			byName := map[string]amAlert{}
			for _, a := range got {
				byName[a.Labels["alertname"]] = a
			}
			a, ok := byName["A"]
			if !ok || !a.EndsAt.Equal(clock.Now().Add(4*time.Minute)) {
				return fmt.Errorf("last post %+v: want A with endsAt now+4m", got)
			}
			g, ok := byName["G"]
			if wantGone != ok {
				return fmt.Errorf("last post %+v: G listed %v, want %v", got, ok, wantGone)
			}
			if ok && !g.EndsAt.Equal(restored) {
				return fmt.Errorf("G endsAt %v, want %v", g.EndsAt, restored)
			}
			return nil
		}
	}
	eventually(t, 2*time.Second, "re-send with G resolved", check(true))
	clock.Add(14*time.Minute - time.Second)
	eventually(t, 2*time.Second, "re-send 15 min less 1 s after Resolve, G still there", check(true))
	clock.Add(time.Second)
	eventually(t, 2*time.Second, "G forgotten", check(false))
	if clock.Now().Sub(t0) != 14*time.Minute {
		t.Fatal("clock did not advance")
	}
	if v := d.metric(t, "feederd_alerts_active"); v != 1 {
		t.Errorf("active %v, want 1", v)
	}
}

func TestOptionsValidate(t *testing.T) {
	base := func() Options {
		o := DefaultOptions()
		o.Receivers = []Receiver{{Kind: Alertmanager, Name: "am", URL: "http://127.0.0.1:9093"}}
		o.Logger = slog.New(slog.DiscardHandler)
		o.Registerer = prometheus.NewRegistry()
		return o
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"ok", func(*Options) {}, ""},
		{"no receivers", func(o *Options) { o.Receivers = nil }, "no receivers"},
		{"duplicate name", func(o *Options) { o.Receivers = append(o.Receivers, o.Receivers[0]) }, `duplicate name "am"`},
		{"bad name", func(o *Options) { o.Receivers[0].Name = "http://x" }, `invalid name "http://x"`},
		{"bad url", func(o *Options) { o.Receivers[0].URL = "udp://x" }, "url is not http(s)"},
		{"active_for", func(o *Options) { o.ActiveFor = o.ResendInterval }, "must exceed the resend interval"},
		{"timeout", func(o *Options) { o.Timeout = 0 }, "timeout 0s is not positive"},
		{"queue", func(o *Options) { o.QueueSize = 0 }, "queue size 0"},
		{"logger", func(o *Options) { o.Logger = nil }, "logger, registerer and clock are required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(&o)
			_, err := New(o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestInvalidLabelsIgnored: an alert without alertname is logged and never
// sent (Alertmanager would reject the whole request).
func TestInvalidLabelsIgnored(t *testing.T) {
	h := startHook(t, nil, nil)
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "w", URL: h.URL}})
	d.Set(Alert{Labels: map[string]string{"device": "x"}})
	d.Resolve(map[string]string{"alertname": "A", "empty": ""}, time.Now())
	d.Set(Alert{Labels: map[string]string{"alertname": "OK"}})
	eventually(t, 2*time.Second, "the valid alert", func() error {
		got, _, _ := h.snapshot()
		if len(got) != 1 || got[0].Labels["alertname"] != "OK" {
			return fmt.Errorf("accepted %+v", got)
		}
		return nil
	})
	if !strings.Contains(d.logs.String(), "have no alertname") {
		t.Error("the alert without alertname was not logged")
	}
}

// TestFlushAtShutdown: changes made just before Run's context ends are
// still delivered.
func TestFlushAtShutdown(t *testing.T) {
	h := startHook(t, nil, nil)
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "w", URL: h.URL}}, func(o *Options) { o.MaxBatch = 1 })
	for i := range 20 {
		d.Set(Alert{Labels: map[string]string{"alertname": "S", "n": fmt.Sprint(i)}})
	}
	d.stop()
	if got, _, _ := h.snapshot(); len(got) != 20 {
		t.Fatalf("%d of 20 changes delivered by the end of Run", len(got))
	}
}
