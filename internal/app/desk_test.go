package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// lockoutScenario: a permanent fault below F1's recloser at `at` seconds
// locks it out (350 customers out, Mercy Hospital among them); the crew
// opens the sectionalizing switch and closes the tie (100 back), then
// clears the fault and closes the recloser: everyone is back.
func lockoutScenario(at int) string {
	return fmt.Sprintf(`
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: %ds, action: fault, target: F1-S2, permanent: true}
  - {at: %ds, action: open, target: F1-SW}
  - {at: %ds, action: close, target: TIE-12}
  - {at: %ds, action: clear_fault, target: F1-S2}
  - {at: %ds, action: close, target: F1-REC}
`, at, at+5, at+6, at+11, at+12)
}

// deskToken writes a token file and returns the http block that uses it.
func deskToken(t *testing.T, token string) string {
	path := filepath.Join(t.TempDir(), "desk.token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "http: {token_file: " + path + "}"
}

type deskOutage struct {
	ID           string `json:"id"`
	Device       string `json:"device"`
	Status       string `json:"status"`
	CustomersOut int    `json:"customers_out"`
	ETR          string `json:"etr"`
}

func deskBoard(t *testing.T, base string) (active, recent []deskOutage) {
	t.Helper()
	_, body := get(t, base+"/api/v1/outages")
	var b struct{ Active, Recent []deskOutage }
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("outages: %v: %s", err, body)
	}
	return b.Active, b.Recent
}

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDeskETRInOutageAlert: an agent sets the estimated restoration of
// the lockout outage through the API; the FeederOutage alert in the real
// Alertmanager carries it at once, with the acknowledgement, and the
// outage moves to the recent list when the recloser closes again.
func TestDeskETRInOutageAlert(t *testing.T) {
	influx := testenv.StartInflux(t)
	am := testenv.StartAlertmanager(t)
	d, _ := outageFleet(t, influx, lockoutScenario(3), am.URL, deskToken(t, "desk-s3cr3t"))
	var id string
	eventually(t, 30*time.Second, "the lockout outage on the desk", func() error {
		active, _ := deskBoard(t, d.base)
		if len(active) != 1 || active[0].Device != "F1-REC" || active[0].Status != "confirmed" {
			return fmt.Errorf("active %+v", active)
		}
		id = active[0].ID
		return nil
	})
	u := d.base + "/api/v1/outages/" + url.PathEscape(id)
	if code, body := post(t, u+"/etr", "desk-s3cr3t", `{"etr":"2025-01-15T14:30:00Z"}`); code != 200 || !strings.Contains(body, `"etr": "2025-01-15T14:30:00Z"`) {
		t.Fatalf("set ETR: %d %s", code, body)
	}
	if code, body := post(t, u+"/ack", "desk-s3cr3t", `{"by":"ana"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, _ := post(t, u+"/ack", "wrong", `{"by":"eve"}`); code != 401 {
		t.Fatalf("ack with a wrong token: %d", code)
	}
	eventually(t, 10*time.Second, "the ETR in the FeederOutage alert", func() error {
		fo := am.Alerts(t, `alertname="FeederOutage"`)
		if len(fo) != 1 {
			return fmt.Errorf("%d FeederOutage alerts", len(fo))
		}
		a := fo[0].Annotations
		if got := a["estimated_restoration"] + " " + a["acknowledged_by"]; got != "2025-01-15T14:30:00Z ana" {
			return fmt.Errorf("annotations %v", a)
		}
		return nil
	})
	eventually(t, 30*time.Second, "the outage moves to recent", func() error {
		active, recent := deskBoard(t, d.base)
		// A predicted outage at the meter merged into the recloser's (when
		// the meter's 0 V was polled before the trip) is in recent too.
		for _, o := range recent {
			if o.ID == id && len(active) == 0 && o.Status == "restored" && o.ETR == "2025-01-15T14:30:00Z" {
				return nil
			}
		}
		return fmt.Errorf("active %+v recent %+v", active, recent)
	})
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}
