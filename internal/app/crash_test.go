package app

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// feederdProc is a feederd process run by a test.
type feederdProc struct {
	cmd  *exec.Cmd
	base string
	out  *testenv.LockedBuffer
	done chan struct{}
}

// client bounds every request a process test makes.
var client = &http.Client{Timeout: 5 * time.Second}

// startFeederd runs `feederd run` on cfgPath with dataDir and waits for
// /readyz. The process is killed at the end of the test if still running;
// its output goes to the test log then.
func startFeederd(t *testing.T, bin, cfgPath, dataDir string) *feederdProc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := &feederdProc{base: "http://" + addr, out: &testenv.LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-config", cfgPath, "-http.listen", addr, "-data.dir", dataDir, "-log.level", "info")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start feederd: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Logf("feederd (pid %d) output:\n%s", p.cmd.Process.Pid, p.out.String())
	})
	eventually(t, 30*time.Second, "feederd ready", func() error {
		select {
		case <-p.done:
			t.Fatalf("feederd exited at start: %s", p.out.String())
		default:
		}
		code, body, err := p.get("/readyz")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	return p
}

func (p *feederdProc) get(path string) (int, string, error) {
	resp, err := client.Get(p.base + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric returns the value of one series on the process's /metrics.
func (p *feederdProc) metric(t *testing.T, series string) string {
	t.Helper()
	_, body, err := p.get("/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for _, ln := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(ln, series+" "); ok {
			return v
		}
	}
	return ""
}

// signal sends sig and waits for the process to end.
func (p *feederdProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("feederd still running 30 s after %v", sig)
	}
}

// TestSIGKILLMidOutageProcess runs the real feederd binary against rtusim
// and a real InfluxDB and Alertmanager: a permanent fault below F1's
// recloser locks it out (350 customers out, sustained after 2 s here);
// feederd is killed with SIGKILL mid-outage and started again on the same
// data directory. The outage continues with the same id and start, the
// service desk has exactly one FeederOutage all along, and when the crew
// clears the fault and closes the recloser the outage is restored once:
// IEEE 1366 counts its 350 customers once (CI = 350, CMI within one poll's
// worth of 350 × its duration in minutes) in InfluxDB and on /metrics.
func TestSIGKILLMidOutageProcess(t *testing.T) {
	bin := testenv.BuildCommand(t, "feederd")
	influx := testenv.StartInflux(t)
	am := testenv.StartAlertmanager(t)
	simCfg, ids := outageSimConfig(t)
	urls, control := startSimControl(t, simCfg)
	cfgPath := filepath.Join(t.TempDir(), "feederd.yaml")
	cfg := outageConfig(t, ids, urls, influx, am.URL, "detect: {sustained_after: 2s}")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()

	first := startFeederd(t, bin, cfgPath, dataDir)
	simEvent(t, control, `{"action":"fault","target":"F1-S2","permanent":true}`)
	var fo testenv.AMAlert
	eventually(t, 20*time.Second, "one confirmed FeederOutage", func() error {
		got := am.Alerts(t, `alertname="FeederOutage"`)
		if len(got) != 1 || got[0].Annotations["status"] != "confirmed" {
			return fmt.Errorf("%d FeederOutage alerts: %+v", len(got), got)
		}
		fo = got[0]
		return nil
	})
	id := fo.Labels["outage_id"]
	if fo.Labels["device"] != "F1-REC" || fo.Annotations["customers_out"] != "350" {
		t.Fatalf("FeederOutage %v %v", fo.Labels, fo.Annotations)
	}
	// outages are the feeder_outage series but those merged into another
	// (a meter read 0 V before the recloser's trip was polled: its
	// predicted outage merges into the recloser's).
	outages := func() []testenv.Series {
		var out []testenv.Series
		for _, r := range influx.Query(t, `SELECT status, customers_restored, "start", duration_s, sustained FROM feeder_outage GROUP BY outage_id`) {
			if len(r.Values) > 0 && r.Values[len(r.Values)-1][r.Column("status")] != "merged" {
				out = append(out, r)
			}
		}
		return out
	}
	// Mid-outage, with the outage in InfluxDB: kill it.
	eventually(t, 10*time.Second, "the outage in InfluxDB", func() error {
		if rows := outages(); len(rows) != 1 || rows[0].Tags["outage_id"] != id {
			return fmt.Errorf("outages %v", rows)
		}
		return nil
	})
	first.signal(t, syscall.SIGKILL)

	second := startFeederd(t, bin, cfgPath, dataDir)
	eventually(t, 10*time.Second, "the outage continues after the restart", func() error {
		if v := second.metric(t, `feederd_outages_active{feeder="F1"}`); v != "1" {
			return fmt.Errorf("feederd_outages_active = %q", v)
		}
		if v := second.metric(t, `feederd_customers_out{feeder="F1"}`); v != "350" {
			return fmt.Errorf("feederd_customers_out = %q", v)
		}
		return nil
	})
	got := am.Alerts(t, `alertname="FeederOutage"`)
	if len(got) != 1 || got[0].Labels["outage_id"] != id || !got[0].StartsAt.Equal(fo.StartsAt) {
		t.Fatalf("after the restart: %+v, want one FeederOutage %s from %v", got, id, fo.StartsAt)
	}

	// Polled for a while by the new process, then restored by the crew.
	time.Sleep(2 * time.Second)
	simEvent(t, control, `{"action":"clear_fault","target":"F1-S2"}`)
	simEvent(t, control, `{"action":"close","target":"F1-REC"}`)
	var durationS, cmi float64
	eventually(t, 20*time.Second, "the outage restored in InfluxDB", func() error {
		rows := outages()
		if len(rows) != 1 || rows[0].Tags["outage_id"] != id || len(rows[0].Values) != 1 {
			return fmt.Errorf("outages %v, want only %s", rows, id)
		}
		r := rows[0]
		v := r.Values[0]
		if v[r.Column("status")] != "restored" {
			return fmt.Errorf("outage %v", v)
		}
		if got := fmt.Sprint(v[r.Column("customers_restored")], " ", v[r.Column("sustained")]); got != "350 true" {
			t.Fatalf("restored outage: customers_restored, sustained = %s, want 350 true", got)
		}
		if s := toInt(v[r.Column("start")]); s != fo.StartsAt.UnixMilli() {
			t.Fatalf("outage start %d ms, FeederOutage started at %d ms", s, fo.StartsAt.UnixMilli())
		}
		durationS = toFloat(t, v[r.Column("duration_s")])
		return nil
	})
	eventually(t, 10*time.Second, "the reliability sums in InfluxDB", func() error {
		rows := influx.Query(t, `SELECT last(ci), last(cmi), max(ci), last(nt) FROM feeder_reliability WHERE feeder='F1'`)
		if len(rows) != 1 || len(rows[0].Values) != 1 {
			return fmt.Errorf("feeder_reliability %v", rows)
		}
		v := rows[0].Values[0]
		var ci, maxCI, nt int64
		ci, cmi, maxCI, nt = toInt(v[1]), toFloat(t, v[2]), toInt(v[3]), toInt(v[4])
		if ci != 350 || maxCI != 350 || nt != 650 {
			return fmt.Errorf("ci %d (max %d), nt %d; want 350 once, of 650", ci, maxCI, nt)
		}
		// Restoration steps: the recloser's 250 customers when it reads
		// closed, the meter's 100 at the end, up to one poll (500 ms)
		// apart; counted twice, CMI would be about double.
		if hi, lo := 350*durationS/60, 350*(durationS-0.5)/60; cmi > hi*(1+1e-9) || cmi < lo {
			t.Fatalf("cmi %v, want between 350 × (%v s − 0.5 s) / 60 = %v and 350 × %v s / 60 = %v", cmi, durationS, lo, durationS, hi)
		}
		return nil
	})
	saifi, err := strconv.ParseFloat(second.metric(t, `feederd_reliability_index{feeder="F1",index="saifi"}`), 64)
	if err != nil || math.Abs(saifi-350.0/650) > 1e-12 {
		t.Fatalf("SAIFI on /metrics %v (%v), want 350/650", saifi, err)
	}
	saidi, err := strconv.ParseFloat(second.metric(t, `feederd_reliability_index{feeder="F1",index="saidi"}`), 64)
	if want := cmi / 650; err != nil || math.Abs(saidi-want) > 1e-9*want {
		t.Fatalf("SAIDI on /metrics %v (%v), want CMI/NT = %v", saidi, err, want)
	}
	eventually(t, 10*time.Second, "FeederOutage resolved", func() error {
		if got := am.Alerts(t, `alertname="FeederOutage"`); len(got) != 0 {
			return fmt.Errorf("still active: %+v", got)
		}
		return nil
	})
	// Alertmanager notified no other outage, except a predicted one merged
	// into this one within a poll (resolved at once).
	merged := map[string]bool{}
	for _, r := range influx.Query(t, `SELECT status FROM feeder_outage WHERE status = 'merged' GROUP BY outage_id`) {
		merged[r.Tags["outage_id"]] = true
	}
	notified := map[string]bool{}
	for _, n := range am.Notifications() {
		for _, a := range n.Alerts {
			if o := a.Labels["outage_id"]; a.Labels["alertname"] == "FeederOutage" && !merged[o] {
				notified[o] = true
			}
		}
	}
	if len(notified) != 1 || !notified[id] {
		t.Fatalf("FeederOutage notifications for outages %v (merged: %v), want only %s", notified, merged, id)
	}
	second.signal(t, syscall.SIGTERM)
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	if err != nil {
		t.Fatalf("not a number: %v", v)
	}
	return f
}
