package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAlertmanager starts the real Alertmanager, posts an alert with plain
// HTTP, reads it back, sees it notified, and restarts the server on the
// same port, where the alert is gone (Alertmanager keeps alerts in memory).
func TestAlertmanager(t *testing.T) {
	am := StartAlertmanager(t)
	post := func() {
		t.Helper()
		body := `[{"labels":{"alertname":"TestenvProbe","n":"1"},"annotations":{"summary":"probe"},"endsAt":"` +
			time.Now().Add(time.Minute).UTC().Format(time.RFC3339) + `"}]`
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
		}
	}
	post()
	got := am.Alerts(t, `alertname="TestenvProbe"`)
	if len(got) != 1 || got[0].Labels["n"] != "1" || got[0].Annotations["summary"] != "probe" || got[0].Status.State != "active" {
		t.Fatalf("alerts after POST: %+v", got)
	}
	if other := am.Alerts(t, `alertname="Other"`); len(other) != 0 {
		t.Fatalf("filter ignored: %+v", other)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(am.Notifications()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no notification from alertmanager within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := am.Notifications()[0]; n.Status != "firing" || len(n.Alerts) != 1 || n.Alerts[0].Labels["alertname"] != "TestenvProbe" {
		t.Fatalf("notification %+v", n)
	}
	url := am.URL
	am.Restart()
	if am.URL != url {
		t.Fatalf("restarted on %s, was %s", am.URL, url)
	}
	if got := am.Alerts(t); len(got) != 0 {
		t.Fatalf("alerts survived a restart: %+v", got)
	}
	am.Stop()
	if _, err := http.Get(am.URL + "/-/ready"); err == nil {
		t.Fatal("alertmanager still answers after Stop")
	}
}
