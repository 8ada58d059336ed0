package alert

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookServer is a webhook receiver: it verifies signatures with its secret
// (when it has one), answers with the status code that answer returns for
// the n-th request (from 1), and keeps the alerts of the bodies it accepted.
type hookServer struct {
	*httptest.Server
	secret []byte

	mu       sync.Mutex
	requests int
	accepted []WebhookAlert
	bodies   []WebhookBody
	errs     []string
	answer   func(n int) int
}

func startHook(t *testing.T, secret []byte, answer func(n int) int) *hookServer {
	t.Helper()
	h := &hookServer{secret: secret, answer: answer}
	if h.answer == nil {
		h.answer = func(int) int { return http.StatusOK }
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	fail := func(code int, format string, args ...any) {
		h.errs = append(h.errs, fmt.Sprintf(format, args...))
		w.WriteHeader(code)
	}
	if err != nil {
		fail(http.StatusBadRequest, "read body: %v", err)
		return
	}
	sig := r.Header.Get(SignatureHeader)
	switch {
	case h.secret == nil && sig != "":
		fail(http.StatusBadRequest, "unsigned receiver got signature %q", sig)
		return
	case h.secret != nil && !hmac.Equal([]byte(sig), []byte(Sign(h.secret, body))):
		fail(http.StatusUnauthorized, "bad signature %q", sig)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		fail(http.StatusBadRequest, "content type %q", ct)
		return
	}
	code := h.answer(h.requests)
	w.WriteHeader(code)
	if code != http.StatusOK {
		return
	}
	var b WebhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		h.errs = append(h.errs, fmt.Sprintf("decode %s: %v", body, err))
		return
	}
	h.bodies = append(h.bodies, b)
	h.accepted = append(h.accepted, b.Alerts...)
}

func (h *hookServer) snapshot() ([]WebhookAlert, []string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.accepted), slices.Clone(h.errs), h.requests
}

// hmacOf recomputes the signature by hand, so that the test does not only
// trust Sign.
func TestSignMatchesHandComputedHMAC(t *testing.T) {
	// RFC 4231 test case 2.
	got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// TestWebhookSignedBody: a signed webhook's receiver verifies the HMAC of
// the body with the shared secret and reads the documented schema; an
// unsigned webhook gets no signature header.
func TestWebhookSignedBody(t *testing.T) {
	secret := []byte("correct horse battery staple")
	signed := startHook(t, secret, nil)
	unsigned := startHook(t, nil, nil)
	d := startDispatcher(t, []Receiver{
		{Kind: Webhook, Name: "desk", URL: signed.URL + "/hook", Secret: secret},
		{Kind: Webhook, Name: "plain", URL: unsigned.URL},
	})
	labels := map[string]string{"alertname": "CriticalCustomerOutage", "feeder": "F101", "severity": "critical"}
	start := time.Date(2025, 1, 15, 14, 2, 0, 0, time.UTC)
	d.Set(Alert{Labels: labels, Annotations: map[string]string{"critical_customers": "St Mary's Hospital"}, StartsAt: start, GeneratorURL: "http://feederd:9108/"})
	at := start.Add(90 * time.Minute)
	d.Resolve(labels, at)
	for _, h := range []*hookServer{signed, unsigned} {
		eventually(t, 2*time.Second, "both changes at "+h.URL, func() error {
			got, errs, _ := h.snapshot()
			if len(errs) > 0 {
				return fmt.Errorf("receiver errors: %v", errs)
			}
			if len(got) != 2 {
				return fmt.Errorf("%d alerts", len(got))
			}
			return nil
		})
		got, _, _ := h.snapshot()
		fire, res := got[0], got[1]
		if fire.Status != "firing" || !fire.StartsAt.Equal(start) || !fire.EndsAt.IsZero() ||
			fire.Annotations["critical_customers"] != "St Mary's Hospital" || fire.GeneratorURL != "http://feederd:9108/" {
			t.Errorf("firing change %+v", fire)
		}
		if err := equalMaps(fire.Labels, labels); err != nil {
			t.Errorf("labels: %v", err)
		}
		if res.Status != "resolved" || !res.EndsAt.Equal(at) || !res.StartsAt.Equal(start) || res.Fingerprint != fire.Fingerprint ||
			len(fire.Fingerprint) != 16 || !res.UpdatedAt.After(fire.UpdatedAt) && !res.UpdatedAt.Equal(fire.UpdatedAt) {
			t.Errorf("resolved change %+v after %+v", res, fire)
		}
		h.mu.Lock()
		b := h.bodies[0]
		h.mu.Unlock()
		if b.Version != "1" || b.Sender != "feederd" {
			t.Errorf("body version %q sender %q", b.Version, b.Sender)
		}
	}
	// A wrong secret does not verify: the receiver's check can fail.
	body := []byte(`{"version":"1"}`)
	if hmac.Equal([]byte(Sign(secret, body)), []byte(Sign([]byte("wrong"), body))) {
		t.Fatal("signatures under two secrets agree")
	}
}

// TestWebhookRetryExactlyOnce: a receiver that answers 500, then 200, gets
// every change exactly once: the failed body again, nothing twice, and no
// periodic re-sends (those are for Alertmanager).
func TestWebhookRetryExactlyOnce(t *testing.T) {
	h := startHook(t, nil, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "desk", URL: h.URL}}, func(o *Options) {
		o.ResendInterval = 100 * time.Millisecond
		o.ActiveFor = time.Second
	})
	labels := map[string]string{"alertname": "FeederOutage", "feeder": "F1"}
	d.Set(Alert{Labels: labels, Annotations: map[string]string{"customers_affected": "300"}})
	d.Set(Alert{Labels: labels, Annotations: map[string]string{"customers_affected": "300"}}) // no change
	d.Set(Alert{Labels: labels, Annotations: map[string]string{"customers_affected": "120", "customers_restored": "180"}})
	d.Resolve(labels, time.Now())
	d.Resolve(labels, time.Now()) // already resolved
	eventually(t, 3*time.Second, "three changes", func() error {
		got, errs, _ := h.snapshot()
		if len(errs) > 0 {
			return fmt.Errorf("receiver errors: %v", errs)
		}
		if len(got) < 3 {
			return fmt.Errorf("%d alerts accepted", len(got))
		}
		return nil
	})
	time.Sleep(time.Second) // ten resend intervals
	got, _, requests := h.snapshot()
	var seen []string
	for _, a := range got {
		seen = append(seen, a.Status+" "+a.Annotations["customers_affected"])
	}
	if want := []string{"firing 300", "firing 120", "resolved 120"}; !slices.Equal(seen, want) {
		t.Fatalf("accepted %q, want each change once, in order: %q", seen, want)
	}
	if requests < 2 {
		t.Errorf("%d requests: the 500 was not retried", requests)
	}
	if v := d.metric(t, "feederd_alert_sends_total", "desk", "retry"); v != 1 {
		t.Errorf("retries counted: %v, want 1", v)
	}
}

// TestWebhookDownQueueInOrderAndBounded: a receiver that is down gets,
// when it is back, the changes it missed in the order they were made, as
// far as the queue holds them; the oldest beyond the bound are dropped,
// counted and logged once.
func TestWebhookDownQueueInOrderAndBounded(t *testing.T) {
	var mu sync.Mutex
	down := true
	h := startHook(t, nil, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "desk", URL: h.URL}}, func(o *Options) {
		o.QueueSize = 4
	})
	set := func(i int) {
		d.Set(Alert{Labels: map[string]string{"alertname": "Q", "n": fmt.Sprint(i)}})
	}
	set(1)
	eventually(t, 2*time.Second, "the first change in flight", func() error {
		if v := d.metric(t, "feederd_alert_sends_total", "desk", "retry"); v < 1 {
			return fmt.Errorf("no failed send yet")
		}
		return nil
	})
	for i := 2; i <= 10; i++ {
		set(i)
	}
	if v := d.metric(t, "feederd_alert_dropped_total", "desk"); v != 5 {
		t.Errorf("dropped %v, want 5 (2..6: the queue holds 4 behind the one in flight)", v)
	}
	if v := d.metric(t, "feederd_alert_queue_length", "desk"); v != 5 {
		t.Errorf("queue length %v, want 5", v)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	eventually(t, 3*time.Second, "the queue delivered", func() error {
		if got, _, _ := h.snapshot(); len(got) < 5 {
			return fmt.Errorf("%d accepted", len(got))
		}
		return nil
	})
	got, _, _ := h.snapshot()
	var ns []string
	for _, a := range got {
		ns = append(ns, a.Labels["n"])
	}
	if want := []string{"1", "7", "8", "9", "10"}; !slices.Equal(ns, want) {
		t.Errorf("delivered %v, want %v", ns, want)
	}
	if n := strings.Count(d.logs.String(), "alert queue full"); n != 1 {
		t.Errorf("the drop was logged %d times, want once", n)
	}
	if v := d.metric(t, "feederd_alert_queue_length", "desk"); v != 0 {
		t.Errorf("queue length %v after delivery", v)
	}
}

// TestWebhookOrderAcrossOutage: changes of several alerts made while the
// receiver is down arrive, when it is back, exactly in the order of the
// calls.
func TestWebhookOrderAcrossOutage(t *testing.T) {
	var mu sync.Mutex
	down := true
	h := startHook(t, nil, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "desk", URL: h.URL}}, func(o *Options) { o.MaxBatch = 2 })
	a := map[string]string{"alertname": "A"}
	b := map[string]string{"alertname": "B"}
	d.Set(Alert{Labels: a, Annotations: map[string]string{"v": "1"}})
	d.Set(Alert{Labels: b, Annotations: map[string]string{"v": "1"}})
	d.Set(Alert{Labels: a, Annotations: map[string]string{"v": "2"}})
	d.Resolve(b, time.Now())
	d.Set(Alert{Labels: b, Annotations: map[string]string{"v": "3"}})
	d.Resolve(a, time.Now())
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	down = false
	mu.Unlock()
	want := []string{"A firing 1", "B firing 1", "A firing 2", "B resolved 1", "B firing 3", "A resolved 2"}
	eventually(t, 3*time.Second, "every change", func() error {
		got, _, _ := h.snapshot()
		var seen []string
		for _, x := range got {
			seen = append(seen, x.Labels["alertname"]+" "+x.Status+" "+x.Annotations["v"])
		}
		if !slices.Equal(seen, want) {
			return fmt.Errorf("got %q, want %q", seen, want)
		}
		return nil
	})
}

// TestWebhookRejectedNotRetried: a 400 is final: logged, counted, not sent
// again; the next change goes through.
func TestWebhookRejectedNotRetried(t *testing.T) {
	h := startHook(t, nil, func(n int) int {
		if n == 1 {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	d := startDispatcher(t, []Receiver{{Kind: Webhook, Name: "desk", URL: h.URL}})
	d.Set(Alert{Labels: map[string]string{"alertname": "X"}})
	eventually(t, 2*time.Second, "rejection", func() error {
		if d.Ready() == nil {
			return fmt.Errorf("ready")
		}
		return nil
	})
	d.Set(Alert{Labels: map[string]string{"alertname": "Y"}})
	eventually(t, 2*time.Second, "next change", func() error {
		if got, _, _ := h.snapshot(); len(got) != 1 || got[0].Labels["alertname"] != "Y" {
			return fmt.Errorf("accepted %+v", got)
		}
		return d.Ready()
	})
	if _, _, n := h.snapshot(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if v := d.metric(t, "feederd_alert_sends_total", "desk", "rejected"); v != 1 {
		t.Errorf("rejected %v, want 1", v)
	}
}
