package alert

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

func amReceiver(name string, am *testenv.Alertmanager) Receiver {
	return Receiver{Kind: Alertmanager, Name: name, URL: am.URL}
}

// findAlert returns the alert of am with the label test=id, if it lists
// one.
func findAlert(t *testing.T, am *testenv.Alertmanager, id string) (testenv.AMAlert, bool) {
	t.Helper()
	got := am.Alerts(t, fmt.Sprintf("test=%q", id))
	if len(got) > 1 {
		t.Fatalf("Alertmanager lists %d alerts with test=%s, want at most 1: %+v", len(got), id, got)
	}
	if len(got) == 0 {
		return testenv.AMAlert{}, false
	}
	return got[0], true
}

// wantAlert waits until am lists the alert with labels and annotations
// exactly as given, and returns how long that took.
func wantAlert(t *testing.T, am *testenv.Alertmanager, within time.Duration, labels, annotations map[string]string) time.Duration {
	t.Helper()
	return eventually(t, within, "alert "+labels["test"]+" in Alertmanager", func() error {
		a, ok := findAlert(t, am, labels["test"])
		if !ok {
			return fmt.Errorf("not listed")
		}
		if err := equalMaps(a.Labels, labels); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
		if err := equalMaps(a.Annotations, annotations); err != nil {
			return fmt.Errorf("annotations: %w", err)
		}
		if a.Status.State != "active" {
			return fmt.Errorf("state %q", a.Status.State)
		}
		return nil
	})
}

// resolvedNotification waits for Alertmanager's resolved notification of
// the alert with test=id and returns its endsAt.
func resolvedNotification(t *testing.T, am *testenv.Alertmanager, id string, within time.Duration) time.Time {
	t.Helper()
	var ends time.Time
	eventually(t, within, "resolved notification of "+id, func() error {
		for _, n := range am.Notifications() {
			for _, a := range n.Alerts {
				if a.Labels["test"] == id && a.Status == "resolved" {
					ends = a.EndsAt
					return nil
				}
			}
		}
		return fmt.Errorf("none among %d notifications", len(am.Notifications()))
	})
	return ends
}

func notified(am *testenv.Alertmanager, id, status string) error {
	for _, n := range am.Notifications() {
		for _, a := range n.Alerts {
			if a.Labels["test"] == id && a.Status == status {
				return nil
			}
		}
	}
	return fmt.Errorf("no %s notification of %s yet", status, id)
}

// TestAlertmanagerFireUpdateResolve: with a real Alertmanager, a Set shows
// within a second with exactly its labels and annotations; a second Set
// with new annotations updates the same alert and keeps its start; Resolve
// takes it off the active list, and Alertmanager's own resolved
// notification carries endsAt = the restoration time given.
func TestAlertmanagerFireUpdateResolve(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	d := startDispatcher(t, []Receiver{amReceiver("am", am)})
	start := time.Now().Add(-30 * time.Second).Truncate(time.Millisecond)
	labels := map[string]string{"alertname": "FeederOutage", "feeder": "F101", "device": "F101-REC", "severity": "critical", "test": "fur"}
	first := map[string]string{"summary": "F101 at F101-REC: 1,184 customers out", "customers_affected": "1184"}
	d.Set(Alert{Labels: labels, Annotations: first, StartsAt: start})
	took := wantAlert(t, am, time.Second, labels, first)
	t.Logf("Set visible in Alertmanager after %v", took)
	a, _ := findAlert(t, am, "fur")
	if !a.StartsAt.Equal(start) {
		t.Errorf("startsAt %v, want %v", a.StartsAt, start)
	}
	if v := d.metric(t, "feederd_alerts_active"); v != 1 {
		t.Errorf("feederd_alerts_active = %v, want 1", v)
	}

	second := map[string]string{"summary": "F101 at F101-REC: 400 customers out", "customers_affected": "400", "customers_restored": "784"}
	d.Set(Alert{Labels: labels, Annotations: second, StartsAt: time.Now()})
	wantAlert(t, am, time.Second, labels, second)
	if got := am.Alerts(t, `test="fur"`); len(got) != 1 || !got[0].StartsAt.Equal(start) {
		t.Fatalf("after the update: %+v, want one alert starting at %v", got, start)
	}

	// Alertmanager notifies a resolved alert only when it notified it
	// firing before.
	eventually(t, 5*time.Second, "firing notification", func() error { return notified(am, "fur", "firing") })
	at := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	d.Resolve(labels, at)
	eventually(t, time.Second, "the alert leaves the active list", func() error {
		if a, ok := findAlert(t, am, "fur"); ok {
			return fmt.Errorf("still listed: %+v", a)
		}
		return nil
	})
	if ends := resolvedNotification(t, am, "fur", 5*time.Second); !ends.Equal(at) {
		t.Errorf("resolved with endsAt %v, want the restoration time %v", ends, at)
	}
	if v := d.metric(t, "feederd_alerts_active"); v != 0 {
		t.Errorf("feederd_alerts_active = %v, want 0", v)
	}
	if v := d.metric(t, "feederd_alert_sends_total", "am", "success"); v != 3 {
		t.Errorf("sends success = %v, want 3 (fire, update, resolve)", v)
	}
	if err := d.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestAlertmanagerResendKeepsAlive: an active alert outlives its first
// endsAt because it is re-sent with a later one.
func TestAlertmanagerResendKeepsAlive(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	d := startDispatcher(t, []Receiver{amReceiver("am", am)}, func(o *Options) {
		o.ResendInterval = 300 * time.Millisecond
		o.ActiveFor = time.Second
	})
	labels := map[string]string{"alertname": "RTUCommsLost", "device": "F1-REC", "test": "resend"}
	d.Set(Alert{Labels: labels, Annotations: map[string]string{"summary": "silent"}})
	wantAlert(t, am, time.Second, labels, map[string]string{"summary": "silent"})
	a, _ := findAlert(t, am, "resend")
	firstEnd := a.EndsAt
	if d := time.Until(firstEnd); d <= 0 || d > time.Second {
		t.Fatalf("first endsAt %v is %v from now, want within active_for (1s)", firstEnd, d)
	}
	time.Sleep(time.Until(firstEnd) + 2*time.Second)
	a, ok := findAlert(t, am, "resend")
	if !ok {
		t.Fatalf("the alert expired: not re-sent past its first endsAt %v", firstEnd)
	}
	if !a.EndsAt.After(firstEnd.Add(time.Second)) {
		t.Errorf("endsAt %v not moved on from %v", a.EndsAt, firstEnd)
	}
	if v := d.metric(t, "feederd_alert_sends_total", "am", "success"); v < 5 {
		t.Errorf("%v successful sends in 3 s at a 300 ms resend interval", v)
	}
}

// TestAlertmanagerDownAndBack: Alertmanager stops after it has one alert;
// while it is down an alert is updated twice, the first is resolved, and a
// third fires and resolves; after its restart (in-memory alerts lost) it
// holds exactly the current state, which only in-order delivery of every
// change gives: the update's last annotations, the brief alert resolved
// (fired after its resolution it would be listed), the first alert
// resolved with its true endsAt in Alertmanager's resolved notification.
func TestAlertmanagerDownAndBack(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	d := startDispatcher(t, []Receiver{amReceiver("am", am)}, func(o *Options) {
		o.ResendInterval, o.ActiveFor = time.Hour, 2*time.Hour // what arrives is the queue's doing
	})
	lA := map[string]string{"alertname": "FeederOutage", "feeder": "F1", "test": "a"}
	lB := map[string]string{"alertname": "FeederOutage", "feeder": "F2", "test": "b"}
	lC := map[string]string{"alertname": "MomentaryInterruption", "feeder": "F3", "test": "c"}
	d.Set(Alert{Labels: lA, Annotations: map[string]string{"summary": "a"}})
	wantAlert(t, am, time.Second, lA, map[string]string{"summary": "a"})
	eventually(t, 5*time.Second, "firing notification of a", func() error { return notified(am, "a", "firing") })

	am.Stop()
	d.Set(Alert{Labels: lB, Annotations: map[string]string{"summary": "b1", "customers_affected": "100"}})
	eventually(t, 5*time.Second, "a failed delivery", func() error {
		if d.Ready() == nil {
			return fmt.Errorf("still ready")
		}
		return nil
	})
	d.Set(Alert{Labels: lB, Annotations: map[string]string{"summary": "b2", "customers_affected": "40"}})
	atA := time.Now().Add(-50 * time.Millisecond).Truncate(time.Millisecond)
	d.Resolve(lA, atA)
	d.Set(Alert{Labels: lC, Annotations: map[string]string{"summary": "c"}})
	d.Resolve(lC, time.Now())
	if v := d.metric(t, "feederd_alert_queue_length", "am"); v != 5 {
		t.Errorf("queue length %v while down, want 5 changes", v)
	}

	am.Restart()
	wantAlert(t, am, 5*time.Second, lB, map[string]string{"summary": "b2", "customers_affected": "40"})
	eventually(t, 5*time.Second, "the queue drained", func() error {
		if v := d.metric(t, "feederd_alert_queue_length", "am"); v != 0 {
			return fmt.Errorf("queue length %v", v)
		}
		return d.Ready()
	})
	always(t, 2*time.Second, "after the restart", func() error {
		got := am.Alerts(t)
		var ids []string
		for _, a := range got {
			ids = append(ids, a.Labels["test"])
		}
		if !slices.Equal(ids, []string{"b"}) {
			return fmt.Errorf("Alertmanager lists %v, want only b", ids)
		}
		return equalMaps(got[0].Annotations, map[string]string{"summary": "b2", "customers_affected": "40"})
	})
	if ends := resolvedNotification(t, am, "a", 5*time.Second); !ends.Equal(atA) {
		t.Errorf("a resolved with endsAt %v, want %v", ends, atA)
	}
	if v := d.metric(t, "feederd_alert_dropped_total", "am"); v != 0 {
		t.Errorf("%v changes dropped", v)
	}
	if v := d.metric(t, "feederd_alert_sends_total", "am", "retry"); v < 1 {
		t.Errorf("no failed send counted while Alertmanager was down")
	}
}

// TestAlertmanagerHAPair: both Alertmanagers of a pair get every alert; one
// down does not delay the other, and gets the alerts when it is back.
func TestAlertmanagerHAPair(t *testing.T) {
	am1 := testenv.StartAlertmanager(t)
	am2 := testenv.StartAlertmanager(t)
	d := startDispatcher(t, []Receiver{amReceiver("am-a", am1), amReceiver("am-b", am2)}, func(o *Options) {
		o.BackoffMax = time.Second
	})
	l1 := map[string]string{"alertname": "FeederOutage", "test": "ha1"}
	ann := map[string]string{"summary": "x"}
	d.Set(Alert{Labels: l1, Annotations: ann})
	wantAlert(t, am1, time.Second, l1, ann)
	wantAlert(t, am2, time.Second, l1, ann)

	am2.Stop()
	l2 := map[string]string{"alertname": "FeederOutage", "test": "ha2"}
	d.Set(Alert{Labels: l2, Annotations: ann})
	took := wantAlert(t, am1, time.Second, l2, ann)
	t.Logf("with its peer down, am-a listed the alert after %v", took)
	eventually(t, 5*time.Second, "am-b reported down", func() error {
		if v := d.metric(t, "feederd_alert_receiver_up", "am-b"); v != 0 {
			return fmt.Errorf("feederd_alert_receiver_up{receiver=am-b} = %v", v)
		}
		if v := d.metric(t, "feederd_alert_receiver_up", "am-a"); v != 1 {
			return fmt.Errorf("feederd_alert_receiver_up{receiver=am-a} = %v", v)
		}
		return nil
	})
	am2.Restart()
	// am-b lost ha1 with its restart: the re-send after recovery restores it.
	wantAlert(t, am2, 5*time.Second, l2, ann)
	wantAlert(t, am2, 5*time.Second, l1, ann)
}

// TestAlertmanagerSetLatency measures the time from Set to the alert being
// listed by the real Alertmanager's API, over 50 alerts, for BENCHMARKS.md;
// it fails if the slowest takes a second or more.
func TestAlertmanagerSetLatency(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	d := startDispatcher(t, []Receiver{amReceiver("am", am)})
	const n = 50
	lat := make([]time.Duration, 0, n)
	for i := range n {
		id := fmt.Sprintf("lat%d", i)
		start := time.Now()
		d.Set(Alert{Labels: map[string]string{"alertname": "Latency", "test": id}})
		for {
			if _, ok := findAlert(t, am, id); ok {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("alert %d not listed after 2 s", i)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p50, p98, top := lat[n/2], lat[n*98/100], lat[n-1]
	t.Logf("Set -> listed by GET /api/v2/alerts over %d alerts: p50 %v, p98 %v, max %v", n, p50, p98, top)
	if top >= time.Second {
		t.Errorf("slowest %v, want under a second", top)
	}
}
