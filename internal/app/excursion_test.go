package app

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// excursionSim is one feeder whose breaker reads the substation bus, so a
// scenario's sag or swell is exactly what it reads.
func excursionSim(t *testing.T, scenario string) (urls map[string]string, control string) {
	t.Helper()
	simCfg := breakerRecloserSim(t, "50ms")
	if scenario == "" {
		return startSimControl(t, simCfg)
	}
	return startSim(t, simCfg, scenario), ""
}

// breakerRecloserSim is the rtusim configuration of a feeder with a
// breaker (F1-BRK) and a recloser (F1-REC) below it, 300 and 250
// customers, each device on a free port, simulated every tick.
func breakerRecloserSim(t *testing.T, tick string) string {
	return fmt.Sprintf(`
seed: 1
tick: %[4]s
listen: 127.0.0.1
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml]
devices:
  - {id: F1-BRK, profile: sel751a, unit: 1, port: %[2]s, nominal_voltage: 7200}
  - {id: F1-REC, profile: feeder-rtu, unit: 1, port: %[3]s, nominal_voltage: 7200}
feeders:
  - id: F1
    nominal_voltage: 7200
    nodes:
      - {id: F1-BRK, kind: breaker, device: F1-BRK}
      - {id: F1-S1, kind: section, upstream: F1-BRK, section: {load_kw: 800, customers: 300}}
      - {id: F1-REC, kind: recloser, upstream: F1-S1, device: F1-REC}
      - {id: F1-S2, kind: section, upstream: F1-REC, section: {load_kw: 600, customers: 250}}
`, profilesDir(t), freePort(t), freePort(t), tick)
}

// excursionConfig polls the two devices every 100 ms with a band
// persistence of 1 s and sends alerts to am.
func excursionConfig(t *testing.T, urls map[string]string, am string) string {
	return breakerRecloserConfig(t, urls, am,
		"poll: {interval: 100ms, timeout: 90ms, backoff_initial: 100ms, backoff_max: 200ms}\ndetect: {band_persistence: 1s}")
}

// breakerRecloserConfig is feederd's configuration for breakerRecloserSim's
// two devices, with the given poll (and detect) blocks, alerting am.
func breakerRecloserConfig(t *testing.T, urls map[string]string, am, blocks string) string {
	return fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml]
%[5]s
alerting:
  alertmanagers: [{url: "%[2]s"}]
  resend_interval: 1s
  active_for: 3s
links:
  - {id: brk, url: %[3]s}
  - {id: rec, url: %[4]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
  - {id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
`, profilesDir(t), am, urls["F1-BRK"], urls["F1-REC"], blocks)
}

// TestVoltageExcursionAlertEndToEnd: rtusim holds the substation bus of F1
// at 0.93 pu on phase B for 3 s, then at 1.07 pu on phase C for 3 s.
// feederd (band persistence 1 s) raises in a real Alertmanager, for each of
// the breaker and the recloser below it, one warning VoltageExcursion for
// phase B (outside Range A), then a warning and a critical one for phase C
// (outside Range A and Range B), each with its event id, and resolves each
// with endsAt the first sample back inside: endsAt − startsAt is the
// excursion's 3 s within a poll or two.
func TestVoltageExcursionAlertEndToEnd(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	urls, _ := excursionSim(t, `
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: 2s, action: sag, target: F1, magnitude: 0.93, duration: 3s, phases: B}
  - {at: 8s, action: swell, target: F1, magnitude: 1.07, duration: 3s, phases: C}
`)
	d := startDaemon(t, excursionConfig(t, urls, am.URL))

	eventually(t, 15*time.Second, "the phase B excursion active in Alertmanager", func() error {
		got := am.Alerts(t, `alertname="VoltageExcursion"`, `device="F1-BRK"`)
		if len(got) != 1 || got[0].Labels["phase"] != "B" {
			return fmt.Errorf("%d active: %+v", len(got), got)
		}
		return nil
	})
	type fired struct {
		labels, ann    map[string]string
		starts, ends   time.Time
		firing, solved bool
	}
	byID := map[string]*fired{}
	eventually(t, 30*time.Second, "six VoltageExcursion alerts fired and resolved", func() error {
		for _, n := range am.Notifications() {
			for _, a := range n.Alerts {
				if a.Labels["alertname"] != "VoltageExcursion" {
					continue
				}
				f := byID[a.Labels["event_id"]]
				if f == nil {
					f = &fired{labels: a.Labels, ann: a.Annotations, starts: a.StartsAt}
					byID[a.Labels["event_id"]] = f
				}
				switch a.Status {
				case "firing":
					f.firing = true
				case "resolved":
					f.solved, f.ends = true, a.EndsAt
				}
			}
		}
		if len(byID) != 6 {
			return fmt.Errorf("%d VoltageExcursion alerts so far, want 6", len(byID))
		}
		for id, f := range byID {
			if !f.firing || !f.solved {
				return fmt.Errorf("alert %s: firing %v resolved %v", id, f.firing, f.solved)
			}
		}
		return nil
	})
	var got []string
	for id, f := range byID {
		if !mapsEqual(f.labels, map[string]string{"alertname": "VoltageExcursion", "feeder": "F1", "device": f.labels["device"],
			"event_id": id, "severity": f.labels["severity"], "phase": f.labels["phase"]}) {
			t.Errorf("labels %v", f.labels)
		}
		line := []string{f.labels["device"], f.labels["phase"], f.labels["severity"], f.ann["range"]}
		if f.labels["device"] == "F1-BRK" {
			// The breaker reads the bus itself: exactly the scenario's
			// magnitude.
			line = append(line, f.ann["worst_pu"], f.ann["worst_volts"])
		}
		got = append(got, strings.Join(line, " "))
		if d := f.ends.Sub(f.starts); d < 3*time.Second-250*time.Millisecond || d > 3*time.Second+250*time.Millisecond {
			t.Errorf("alert %s (phase %s range %s): endsAt − startsAt = %v, want 3 s ± 250 ms", id, f.labels["phase"], f.ann["range"], d)
		}
		if f.ann["started_at"] != f.starts.UTC().Format(time.RFC3339) {
			t.Errorf("started_at %q, startsAt %v", f.ann["started_at"], f.starts)
		}
	}
	sort.Strings(got)
	// The recloser, further out, reads the bus less its voltage drop
	// (about 0.7 %): 0.923 pu in the sag, 1.063 pu in the swell, so the
	// same ranges.
	want := []string{"F1-BRK B warning A 0.9300 6696.0", "F1-BRK C critical B 1.0700 7704.0", "F1-BRK C warning A 1.0700 7704.0",
		"F1-REC B warning A", "F1-REC C critical B", "F1-REC C warning A"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts (device phase severity range worst):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(am.Alerts(t, `alertname="VoltageExcursion"`)); n != 0 {
		t.Errorf("%d VoltageExcursion alerts still active", n)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestEventAlertsLiveAfterRestart: an RTUCommsLost and a VoltageExcursion
// still open when feederd stops lapse in Alertmanager while it is down
// (endsAt = last send + active_for, 3 s here); the next feederd, resuming
// detection from the same data directory, fires them again at once with
// the same labels (event_id) and start, keeps them alive, and resolves the
// excursion with endsAt − startsAt = the whole 20 s sag, counted from its
// start before the restart.
func TestEventAlertsLiveAfterRestart(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	urls, control := excursionSim(t, "")
	cfg := excursionConfig(t, urls, am.URL)
	dataDir := t.TempDir()
	withData := func(o *Options) { o.DataDir = dataDir }
	ready := func(d *daemon) {
		eventually(t, 20*time.Second, "readyz", func() error {
			if code, body := get(t, d.base+"/readyz"); code != 200 || !strings.Contains(body, "alert: ok") {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
	}
	first := startDaemon(t, cfg, withData)
	ready(first)

	simEvent(t, control, `{"action":"comms_loss","target":"F1-REC","mode":"silent"}`)
	var lost testenv.AMAlert
	eventually(t, 15*time.Second, "RTUCommsLost", func() error {
		got := am.Alerts(t, `alertname="RTUCommsLost"`)
		if len(got) != 1 {
			return fmt.Errorf("%d RTUCommsLost alerts", len(got))
		}
		lost = got[0]
		return nil
	})
	simEvent(t, control, `{"action":"sag","target":"F1","magnitude":0.93,"duration":"20s","phases":"B"}`)
	var exc testenv.AMAlert
	eventually(t, 15*time.Second, "VoltageExcursion", func() error {
		got := am.Alerts(t, `alertname="VoltageExcursion"`)
		if len(got) != 1 {
			return fmt.Errorf("%d VoltageExcursion alerts: %+v", len(got), got)
		}
		exc = got[0]
		return nil
	})
	if exc.Labels["device"] != "F1-BRK" || exc.Labels["phase"] != "B" || exc.Labels["severity"] != "warning" {
		t.Fatalf("VoltageExcursion labels %v", exc.Labels)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	// With nobody re-sending them, Alertmanager lets both lapse at their
	// endsAt.
	eventually(t, 10*time.Second, "both alerts lapse while feederd is down", func() error {
		if n := len(am.Alerts(t, `alertname=~"RTUCommsLost|VoltageExcursion"`)); n != 0 {
			return fmt.Errorf("%d still active", n)
		}
		return nil
	})

	restarted := time.Now()
	second := startDaemon(t, cfg, withData)
	ready(second)
	same := func(a testenv.AMAlert, want testenv.AMAlert) error {
		if !mapsEqual(a.Labels, want.Labels) || !a.StartsAt.Equal(want.StartsAt) {
			return fmt.Errorf("alert %v from %v, want %v from %v", a.Labels, a.StartsAt, want.Labels, want.StartsAt)
		}
		return nil
	}
	both := func() error {
		got := am.Alerts(t, `alertname=~"RTUCommsLost|VoltageExcursion"`)
		if len(got) != 2 {
			return fmt.Errorf("%d alerts active, want 2: %+v", len(got), got)
		}
		for _, a := range got {
			want := exc
			if a.Labels["alertname"] == "RTUCommsLost" {
				want = lost
			}
			if err := same(a, want); err != nil {
				return err
			}
		}
		return nil
	}
	eventually(t, 10*time.Second, "both alerts live again after the restart", both)
	// Re-sent by the new process: still there after another active_for.
	time.Sleep(4 * time.Second)
	if err := both(); err != nil {
		t.Fatalf("4 s after the restart: %v", err)
	}

	var ends time.Time
	eventually(t, 30*time.Second, "the excursion's resolved notification", func() error {
		for _, n := range am.Notifications() {
			for _, a := range n.Alerts {
				// Alertmanager also notified the lapse while feederd was
				// down: that one ended before the restart.
				if a.Labels["event_id"] == exc.Labels["event_id"] && a.Labels["alertname"] == "VoltageExcursion" &&
					a.Status == "resolved" && a.EndsAt.After(restarted) {
					ends = a.EndsAt
					return nil
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	if d := ends.Sub(exc.StartsAt); d < 20*time.Second-250*time.Millisecond || d > 20*time.Second+250*time.Millisecond {
		t.Errorf("VoltageExcursion resolved %v after its start, want the sag's 20 s ± 250 ms", d)
	}
	simEvent(t, control, `{"action":"comms_restore","target":"F1-REC"}`)
	eventually(t, 15*time.Second, "RTUCommsLost resolved", func() error {
		if got := am.Alerts(t, `alertname="RTUCommsLost"`); len(got) != 0 {
			return fmt.Errorf("still active: %+v", got)
		}
		return nil
	})
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
}
