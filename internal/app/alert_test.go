package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/testenv"
)

// startSimControl runs rtusim on a config text with its control API on a
// free port and returns the URL of each device and the API's base URL.
func startSimControl(t *testing.T, cfgText string) (map[string]string, string) {
	t.Helper()
	return runSim(t, cfgText, "", true)
}

// simEvent injects one scenario event now through rtusim's control API.
func simEvent(t *testing.T, control, event string) {
	t.Helper()
	resp, err := http.Post(control+"/api/events", "application/json", strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("POST /api/events %s: %s: %s", event, resp.Status, e.Error)
	}
}

// TestRTUCommsLostAlertEndToEnd runs the whole daemon against rtusim and a
// real Alertmanager: when the recloser's RTU goes silent, Alertmanager gets
// one RTUCommsLost alert with the documented labels and annotations; when
// its comms come back, the alert resolves with endsAt = the time of the
// device's first answer (Alertmanager's resolved notification says so).
func TestRTUCommsLostAlertEndToEnd(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	urls, control := startSimControl(t, breakerRecloserSim(t, "100ms"))
	cfg := breakerRecloserConfig(t, urls, am.URL, "poll: {interval: 200ms, timeout: 150ms, backoff_initial: 100ms, backoff_max: 200ms}")
	d := startDaemon(t, cfg)
	eventually(t, 20*time.Second, "readyz", func() error {
		if code, body := get(t, d.base+"/readyz"); code != 200 || !strings.Contains(body, "alert: ok") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})

	lost := time.Now()
	simEvent(t, control, `{"action":"comms_loss","target":"F1-REC","mode":"silent"}`)
	var fired testenv.AMAlert
	eventually(t, 15*time.Second, "RTUCommsLost in Alertmanager", func() error {
		got := am.Alerts(t, `alertname="RTUCommsLost"`)
		if len(got) != 1 {
			return fmt.Errorf("%d RTUCommsLost alerts: %+v", len(got), got)
		}
		fired = got[0]
		return nil
	})
	t.Logf("RTUCommsLost visible in Alertmanager %v after the RTU went silent (3 polls of 200 ms must fail first)", time.Since(lost))
	id := fired.Labels["event_id"]
	if n, err := strconv.ParseUint(id, 10, 64); err != nil || n>>32 != 1 {
		t.Errorf("event_id %q: want the comm_lost event's id, device index 1 in its high 32 bits", id)
	}
	wantLabels := map[string]string{"alertname": "RTUCommsLost", "severity": "warning", "feeder": "F1", "device": "F1-REC", "event_id": id}
	if !mapsEqual(fired.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", fired.Labels, wantLabels)
	}
	ann := fired.Annotations
	if ann["summary"] != "RTU F1-REC on feeder F1 stopped answering: 3 polls in a row failed" || ann["cause"] != "poll_failures" ||
		ann["link"] != "rec" || ann["started_at"] != fired.StartsAt.UTC().Format(time.RFC3339) || len(ann) != 4 {
		t.Errorf("annotations %v", ann)
	}
	if !fired.StartsAt.After(lost.Add(-time.Second)) || fired.StartsAt.After(time.Now()) {
		t.Errorf("startsAt %v, the RTU went silent at %v", fired.StartsAt, lost)
	}
	// The daemon's re-sends keep it active past its first endsAt (3 s).
	time.Sleep(4 * time.Second)
	if got := am.Alerts(t, `alertname="RTUCommsLost"`); len(got) != 1 {
		t.Fatalf("after 4 s of silence: %d RTUCommsLost alerts, want 1 (re-sent)", len(got))
	}

	restored := time.Now()
	simEvent(t, control, `{"action":"comms_restore","target":"F1-REC"}`)
	eventually(t, 15*time.Second, "RTUCommsLost resolved", func() error {
		if got := am.Alerts(t, `alertname="RTUCommsLost"`); len(got) != 0 {
			return fmt.Errorf("still active: %+v", got)
		}
		return nil
	})
	var ends time.Time
	eventually(t, 10*time.Second, "Alertmanager's resolved notification", func() error {
		for _, n := range am.Notifications() {
			for _, a := range n.Alerts {
				if a.Labels["event_id"] == id && a.Status == "resolved" {
					ends = a.EndsAt
					return nil
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	// The end is the first good sample: after the restore, within the
	// reconnect backoff and a poll or two.
	if ends.Before(restored) || ends.After(restored.Add(2*time.Second)) {
		t.Errorf("resolved with endsAt %v; comms were restored at %v", ends, restored)
	}
	if v := metricValue(t, d.base, `feederd_alerts_active`); v != "0" {
		t.Errorf("feederd_alerts_active = %q, want 0", v)
	}
	if v := metricValue(t, d.base, `feederd_alert_sends_total{receiver="alertmanager-0",result="success"}`); v == "" || v == "0" {
		t.Errorf("successful sends: %q", v)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// recordingSink keeps what the comms bridge calls.
type recordingSink struct {
	set      []alert.Alert
	resolved []map[string]string
	at       []time.Time
}

func (r *recordingSink) Set(a alert.Alert) { r.set = append(r.set, a) }
func (r *recordingSink) Resolve(l map[string]string, at time.Time) {
	r.resolved = append(r.resolved, l)
	r.at = append(r.at, at)
}

// TestCommsAlertsMapping: comm_lost start fires RTUCommsLost with the
// event's start, its end resolves it at the event's end, and nothing else
// raises it.
func TestCommsAlertsMapping(t *testing.T) {
	m := &config.Model{
		Detect:  detect.DefaultParams(),
		Devices: []*config.Device{{ID: "F9-BRK", Feeder: "F9"}, {ID: "F9-REC", Feeder: "F9", Link: &config.Link{ID: "radio"}}},
	}
	sink := &recordingSink{}
	c := newEventAlerts(m, nil, sink)
	start := time.Date(2025, 1, 15, 14, 2, 3, 4e8, time.UTC)
	end := start.Add(95 * time.Second)
	id := uint64(1)<<32 | 7
	for _, ev := range []detect.Event{
		{ID: id, Device: 1, Kind: detect.KindCommLost, Stage: detect.StageStart, Start: start.UnixNano(), Cause: detect.CauseNoData},
		{ID: id + 1, Device: 1, Kind: detect.KindSag, Stage: detect.StageStart, Start: start.UnixNano()},
		{ID: id, Device: 9, Kind: detect.KindCommLost, Stage: detect.StageStart, Start: start.UnixNano()},
		{ID: id, Device: 1, Kind: detect.KindCommLost, Stage: detect.StageEnd, Start: start.UnixNano(), End: end.UnixNano()},
	} {
		c.handle(&ev)
	}
	labels := map[string]string{"alertname": "RTUCommsLost", "severity": "warning", "feeder": "F9", "device": "F9-REC", "event_id": "4294967303"}
	if len(sink.set) != 1 || len(sink.resolved) != 1 {
		t.Fatalf("%d Set, %d Resolve calls, want one each", len(sink.set), len(sink.resolved))
	}
	a := sink.set[0]
	if !mapsEqual(a.Labels, labels) || !a.StartsAt.Equal(start) {
		t.Errorf("Set %+v", a)
	}
	wantAnn := map[string]string{"summary": "RTU F9-REC on feeder F9 stopped answering: no good answer for 10s",
		"cause": "no_data", "started_at": "2025-01-15T14:02:03Z", "link": "radio"}
	if !mapsEqual(a.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", a.Annotations, wantAnn)
	}
	if !mapsEqual(sink.resolved[0], labels) || !sink.at[0].Equal(end) {
		t.Errorf("Resolve(%v, %v), want the labels and %v", sink.resolved[0], sink.at[0], end)
	}
}

// TestVoltageExcursionAlerts: a band event fires VoltageExcursion at its
// start, warning for Range A and critical for Range B, one alert per event
// and phase; its end resolves it at the event's end with the same labels.
// Events continued over a restart fire again before the stream is read, so
// the alert is live again with its first start; other kinds raise nothing.
func TestVoltageExcursionAlerts(t *testing.T) {
	p := detect.DefaultParams()
	m := &config.Model{Detect: p, Devices: []*config.Device{{ID: "F9-BRK", Feeder: "F9"}, {ID: "F9-MTR", Feeder: "F9"}}}
	start := time.Date(2025, 1, 15, 14, 2, 3, 4e8, time.UTC)
	end := start.Add(3 * time.Minute)
	idA, idB, idC := uint64(1)<<32|4, uint64(1)<<32|5, uint64(1)<<32|6
	rangeA := detect.Event{ID: idA, Device: 1, Kind: detect.KindBand, Stage: detect.StageStart, Start: start.UnixNano(),
		Worst: 0.93, WorstVolts: 111.6, Phases: detect.PhaseB, Category: detect.CategoryRangeA, Severity: detect.SeverityWarning}
	rangeB := detect.Event{ID: idB, Device: 1, Kind: detect.KindBand, Stage: detect.StageStart, Start: start.Add(time.Minute).UnixNano(),
		Worst: 1.07, WorstVolts: 7704, Phases: detect.PhaseC, Category: detect.CategoryRangeB, Severity: detect.SeverityCritical}
	resumed := detect.Event{ID: idC, Device: 0, Kind: detect.KindBand, Stage: detect.StageStart, Start: start.Add(-time.Hour).UnixNano(),
		Worst: 1.055, WorstVolts: 7596, Phases: detect.PhaseA, Category: detect.CategoryRangeA, Severity: detect.SeverityWarning, Flags: detect.FlagGap}
	endOf := func(ev detect.Event, at time.Time) detect.Event {
		ev.Stage, ev.End = detect.StageEnd, at.UnixNano()
		return ev
	}
	ch := make(chan detect.Event, 8)
	for _, ev := range []detect.Event{
		rangeA, rangeB,
		{ID: idC + 1, Device: 1, Kind: detect.KindSag, Stage: detect.StageStart, Start: start.UnixNano(), Worst: 0.7},
		endOf(rangeB, end.Add(-time.Minute)), endOf(rangeA, end), endOf(resumed, end),
	} {
		ch <- ev
	}
	close(ch)
	sink := &recordingSink{}
	if err := newEventAlerts(m, &pipeline.Subscription{C: ch}, sink).run([]detect.Event{resumed}); err != nil {
		t.Fatal(err)
	}
	labels := func(dev, id, sev, phase string) map[string]string {
		return map[string]string{"alertname": "VoltageExcursion", "severity": sev, "feeder": "F9", "device": dev, "event_id": id, "phase": phase}
	}
	wantSet := []struct {
		labels map[string]string
		start  time.Time
		ann    map[string]string
	}{
		{labels("F9-BRK", "4294967302", "warning", "A"), start.Add(-time.Hour), map[string]string{
			"summary": "VoltageExcursion F9-BRK on feeder F9: phase A above ANSI C84.1 Range A (0.95–1.05 pu) for 1m0s or more, at 1.055 pu (7,596 V), since 13:02:03 UTC",
			"range":   "A", "worst_pu": "1.0550", "worst_volts": "7596.0", "started_at": "2025-01-15T13:02:03Z"}},
		{labels("F9-MTR", "4294967300", "warning", "B"), start, map[string]string{
			"summary": "VoltageExcursion F9-MTR on feeder F9: phase B below ANSI C84.1 Range A (0.95–1.05 pu) for 1m0s or more, at 0.930 pu (112 V), since 14:02:03 UTC",
			"range":   "A", "worst_pu": "0.9300", "worst_volts": "111.6", "started_at": "2025-01-15T14:02:03Z"}},
		{labels("F9-MTR", "4294967301", "critical", "C"), start.Add(time.Minute), map[string]string{
			"summary": "VoltageExcursion F9-MTR on feeder F9: phase C above ANSI C84.1 Range B (0.9167–1.0583 pu) for 1m0s or more, at 1.070 pu (7,704 V), since 14:03:03 UTC",
			"range":   "B", "worst_pu": "1.0700", "worst_volts": "7704.0", "started_at": "2025-01-15T14:03:03Z"}},
	}
	if len(sink.set) != len(wantSet) {
		t.Fatalf("%d Set calls, want %d: %+v", len(sink.set), len(wantSet), sink.set)
	}
	for i, w := range wantSet {
		a := sink.set[i]
		if !mapsEqual(a.Labels, w.labels) || !a.StartsAt.Equal(w.start) || !mapsEqual(a.Annotations, w.ann) {
			t.Errorf("Set %d:\n got %v %v %v\nwant %v %v %v", i, a.Labels, a.StartsAt, a.Annotations, w.labels, w.start, w.ann)
		}
	}
	wantResolved := []struct {
		labels map[string]string
		at     time.Time
	}{
		{labels("F9-MTR", "4294967301", "critical", "C"), end.Add(-time.Minute)},
		{labels("F9-MTR", "4294967300", "warning", "B"), end},
		{labels("F9-BRK", "4294967302", "warning", "A"), end},
	}
	if len(sink.resolved) != len(wantResolved) {
		t.Fatalf("%d Resolve calls, want %d", len(sink.resolved), len(wantResolved))
	}
	for i, w := range wantResolved {
		if !mapsEqual(sink.resolved[i], w.labels) || !sink.at[i].Equal(w.at) {
			t.Errorf("Resolve %d: %v at %v, want %v at %v", i, sink.resolved[i], sink.at[i], w.labels, w.at)
		}
	}
}
