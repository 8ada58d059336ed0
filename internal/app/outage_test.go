package app

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// outageFleet is two feeders joined by a normally open tie switch, as in
// the demo: F1's recloser recloses twice, 300 ms apart, faster than feederd
// polls (500 ms). extra lines go into feederd's configuration. Without a
// scenario, events come through rtusim's control API (d.sim).
func outageFleet(t *testing.T, influx *testenv.Influx, scenario, alertmanager string, extra ...string) (*daemon, *testenv.Influx) {
	t.Helper()
	simCfg, ids := outageSimConfig(t)
	var urls map[string]string
	control := ""
	if scenario == "" {
		urls, control = startSimControl(t, simCfg)
	} else {
		urls = startSim(t, simCfg, scenario)
	}
	d := startDaemon(t, outageConfig(t, ids, urls, influx, alertmanager, strings.Join(extra, "\n")))
	d.sim = control
	return d, influx
}

// outageSimConfig is rtusim's configuration of the outage fleet, with the
// IDs of its devices.
func outageSimConfig(t *testing.T) (string, []string) {
	t.Helper()
	prof := profilesDir(t)
	var simDevs strings.Builder
	ids := []string{"F1-BRK", "F1-REC", "F1-MTR", "F2-BRK", "TIE-12"}
	profileOf := map[string]string{"F1-BRK": "sel751a", "F1-REC": "feeder-rtu", "F1-MTR": "pm5100", "F2-BRK": "sel751a", "TIE-12": "feeder-rtu"}
	nominal := map[string]string{"F1-MTR": "120"}
	for _, id := range ids {
		nom := nominal[id]
		if nom == "" {
			nom = "7200"
		}
		fmt.Fprintf(&simDevs, "  - {id: %s, profile: %s, unit: 1, port: %s, nominal_voltage: %s}\n", id, profileOf[id], freePort(t), nom)
	}
	return fmt.Sprintf(`
seed: 1
tick: 50ms
listen: 127.0.0.1
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml, %[1]s/pm5100.yaml]
devices:
%[2]sfeeders:
  - id: F1
    nominal_voltage: 7200
    reclose: {intervals: [300ms, 300ms], reset: 60s}
    nodes:
      - {id: F1-BRK, kind: breaker, device: F1-BRK}
      - {id: F1-S1, kind: section, upstream: F1-BRK, section: {load_kw: 800, customers: 300}}
      - {id: F1-REC, kind: recloser, upstream: F1-S1, device: F1-REC}
      - {id: F1-S2, kind: section, upstream: F1-REC, section: {load_kw: 600, customers: 250}}
      - {id: F1-SW, kind: switch, upstream: F1-S2}
      - {id: F1-S3, kind: section, upstream: F1-SW, section: {load_kw: 300, customers: 100}}
      - {id: F1-MTR, kind: meter, upstream: F1-S3, device: F1-MTR}
  - id: F2
    nominal_voltage: 7200
    nodes:
      - {id: F2-BRK, kind: breaker, device: F2-BRK}
      - {id: F2-S1, kind: section, upstream: F2-BRK, section: {load_kw: 800, customers: 300}}
      - {id: TIE-12, kind: switch, device: TIE-12, upstream: F2-S1, normally_open: true, tie: F1-S3}
`, prof, simDevs.String()), ids
}

// outageConfig is feederd's configuration of the outage fleet (F1: 650
// customers, the hospital in F1-S2), polling every 500 ms; alertmanager
// and extra (more top-level YAML) are optional.
func outageConfig(t *testing.T, ids []string, urls map[string]string, influx *testenv.Influx, alertmanager, extra string) string {
	t.Helper()
	var feederdLinks strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&feederdLinks, "  - {id: %s, url: %s}\n", strings.ToLower(id), urls[id])
	}
	alerting := ""
	if alertmanager != "" {
		alerting = "alerting: {alertmanagers: [{url: \"" + alertmanager + "\"}]}"
	}
	return fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml, %[1]s/pm5100.yaml]
poll: {interval: 500ms, timeout: 400ms}
%[5]s
%[6]s
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 200ms, batch_size: 500}
links:
%[4]sdevices:
  - {id: F1-BRK, link: f1-brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
  - {id: F1-REC, link: f1-rec, unit: 1, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
  - {id: F1-MTR, link: f1-mtr, unit: 1, profile: pm5100, feeder: F1, upstream: F1-REC, nominal_voltage: 120}
  - {id: F2-BRK, link: f2-brk, unit: 1, profile: sel751a, feeder: F2, nominal_voltage: 7200}
  - {id: TIE-12, link: tie-12, unit: 1, profile: feeder-rtu, feeder: F2, upstream: F2-BRK, kind: switch, nominal_voltage: 7200}
feeders:
  - id: F1
    sections:
      - {id: F1-S1, fed_by: F1-BRK, customers: 300}
      - {id: F1-S2, fed_by: F1-REC, customers: 250, critical: [{name: Mercy Hospital, kind: hospital}]}
      - {id: F1-S3, fed_by: F1-MTR, customers: 100}
    ties:
      - {device: TIE-12, to: F1-MTR}
  - id: F2
    sections:
      - {id: F2-S1, fed_by: F2-BRK, customers: 300}
`, profilesDir(t), influx.URL, influx.Bucket, feederdLinks.String(), alerting, extra)
}

// metricValue returns the value of one series of /metrics, "" if absent.
func metricValue(t *testing.T, base, series string) string {
	t.Helper()
	_, body := get(t, base+"/metrics")
	for _, ln := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(ln, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestLockoutScenarioEndToEnd: a permanent fault below the recloser; it
// trips, recloses twice within one poll interval and locks out. feederd
// writes what a protection engineer would: trip, reclose, trip, reclose,
// trip, lockout. When the crew opens the sectionalizing switch and closes
// the tie switch, the meter's own voltage ends its outage within one poll
// interval, although the recloser stays locked out.
func TestLockoutScenarioEndToEnd(t *testing.T) {
	influx := testenv.StartInflux(t)
	am := testenv.StartAlertmanager(t)
	d, _ := outageFleet(t, influx, `
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: 3s, action: fault, target: F1-S2, permanent: true}
  - {at: 8s, action: open, target: F1-SW}
  - {at: 9s, action: close, target: TIE-12}
`, am.URL)
	var seq string
	eventually(t, 30*time.Second, "the recloser's operations in InfluxDB", func() error {
		// The lockout starts at its last trip, so order by time, then by
		// event id (the order detection saw them in).
		rows := influx.Query(t, `SELECT kind, id FROM feeder_event WHERE device='F1-REC' AND (kind='trip' OR kind='reclose' OR kind='lockout')`)
		type op struct {
			at, id int64
			kind   string
		}
		var ops []op
		for _, r := range rows {
			for _, v := range r.Values {
				ops = append(ops, op{toInt(v[0]), toInt(v[r.Column("id")]), fmt.Sprint(v[r.Column("kind")])})
			}
		}
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].at != ops[j].at {
				return ops[i].at < ops[j].at
			}
			return ops[i].id < ops[j].id
		})
		var kinds []string
		for _, o := range ops {
			kinds = append(kinds, o.kind)
		}
		seq = strings.Join(kinds, ",")
		if seq != "trip,reclose,trip,reclose,trip,lockout" {
			return fmt.Errorf("sequence %q", seq)
		}
		return nil
	})

	eventually(t, 30*time.Second, "the meter's outage ends on its own voltage", func() error {
		tie := influx.Query(t, `SELECT "start" FROM feeder_event WHERE device='TIE-12' AND kind='breaker_close'`)
		if len(tie) != 1 || len(tie[0].Values) != 1 {
			return fmt.Errorf("tie switch close not seen yet: %v", tie)
		}
		closedAt := toInt(tie[0].Values[0][tie[0].Column("start")])
		rows := influx.Query(t, `SELECT stage, "end", cause, cause_device FROM feeder_event WHERE device='F1-MTR' AND kind='de_energized'`)
		if len(rows) != 1 || len(rows[0].Values) != 1 {
			return fmt.Errorf("want one de_energized event of F1-MTR, got %v", rows)
		}
		r := rows[0]
		v := r.Values[0]
		if v[r.Column("stage")] != "end" {
			return fmt.Errorf("F1-MTR still de-energized: %v", v)
		}
		if v[r.Column("cause")] != "upstream_open" || v[r.Column("cause_device")] != "F1-REC" {
			return fmt.Errorf("cause %v %v, want upstream_open F1-REC", v[r.Column("cause")], v[r.Column("cause_device")])
		}
		// The meter and the tie switch are polled independently: the end
		// is within one interval of the close, either side.
		if d := toInt(v[r.Column("end")]) - closedAt; d < -500 || d > 500 {
			return fmt.Errorf("outage ended %d ms from the tie switch's close, want within 500", d)
		}
		return nil
	})
	if v := metricValue(t, d.base, `feederd_device_energized{device="F1-MTR",feeder="F1"}`); v != "1" {
		t.Fatalf("feederd_device_energized of F1-MTR = %q, want 1", v)
	}
	// One outage, at the recloser, confirmed by its lockout: 350
	// customers, the hospital among them; the tie switch brought back the
	// meter's 100.
	eventually(t, 10*time.Second, "the outage in InfluxDB", func() error {
		rows := influx.Query(t, `SELECT status, customers_affected, customers_out, customers_restored, critical FROM feeder_outage GROUP BY device`)
		if len(rows) != 1 || rows[0].Tags["device"] != "F1-REC" || len(rows[0].Values) != 1 {
			return fmt.Errorf("want one outage at F1-REC, got %v", rows)
		}
		r := rows[0]
		v := r.Values[0]
		got := fmt.Sprint(v[r.Column("status")], " ", v[r.Column("customers_affected")], " ", v[r.Column("customers_out")], " ",
			v[r.Column("customers_restored")], " ", v[r.Column("critical")])
		if want := "confirmed 350 250 100 Mercy Hospital (hospital)"; got != want {
			return fmt.Errorf("outage %q, want %q", got, want)
		}
		return nil
	})
	// The service desk's Alertmanager has one FeederOutage, not one per
	// dark device, and one CriticalCustomerOutage for the hospital.
	eventually(t, 10*time.Second, "the outage alerts in Alertmanager", func() error {
		fo := am.Alerts(t, `alertname="FeederOutage"`)
		cc := am.Alerts(t, `alertname="CriticalCustomerOutage"`)
		if len(fo) != 1 || len(cc) != 1 {
			return fmt.Errorf("%d FeederOutage and %d CriticalCustomerOutage alerts, want 1 and 1", len(fo), len(cc))
		}
		a := fo[0]
		got := fmt.Sprint(a.Labels["feeder"], " ", a.Labels["device"], " ", a.Labels["severity"], " ",
			a.Annotations["customers_affected"], " ", a.Annotations["customers_out"], " ", a.Annotations["customers_restored"], " ",
			a.Annotations["critical_customers"], " ", a.Labels["outage_id"] == cc[0].Labels["outage_id"] && a.Labels["outage_id"] != "")
		if want := "F1 F1-REC critical 350 250 100 Mercy Hospital (hospital) true"; got != want {
			return fmt.Errorf("FeederOutage %q, want %q (summary %q)", got, want, a.Annotations["summary"])
		}
		if !strings.HasPrefix(a.Annotations["summary"], "FeederOutage F1 at F1-REC: 250 customers out, 1 critical (Mercy Hospital), 100 restored, since ") {
			return fmt.Errorf("summary %q", a.Annotations["summary"])
		}
		return nil
	})
	if v := metricValue(t, d.base, `feederd_customers_out{feeder="F1"}`); v != "250" {
		t.Fatalf("feederd_customers_out of F1 = %q, want 250", v)
	}
	if v := metricValue(t, d.base, `feederd_critical_customers_out{feeder="F1"}`); v != "1" {
		t.Fatalf("feederd_critical_customers_out of F1 = %q, want 1", v)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSilentRecloserClosedInTheFieldEndToEnd: the recloser is opened, its
// radio goes silent, it is closed in the field: the meter below reads full
// voltage again and its outage ends on that, while the recloser stays
// comm_lost and its last known state is open.
func TestSilentRecloserClosedInTheFieldEndToEnd(t *testing.T) {
	influx := testenv.StartInflux(t)
	d, _ := outageFleet(t, influx, `
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: 2s, action: open, target: F1-REC}
  - {at: 4s, action: comms_loss, target: F1-REC, mode: silent}
  - {at: 8s, action: close, target: F1-REC}
`, "")
	eventually(t, 30*time.Second, "the meter's outage ends while the recloser is silent", func() error {
		lost := influx.Query(t, `SELECT stage FROM feeder_event WHERE device='F1-REC' AND kind='comm_lost'`)
		if len(lost) != 1 || len(lost[0].Values) != 1 || lost[0].Values[0][1] != "start" {
			return fmt.Errorf("F1-REC not comm_lost: %v", lost)
		}
		rows := influx.Query(t, `SELECT stage, "end" FROM feeder_event WHERE device='F1-MTR' AND kind='de_energized'`)
		if len(rows) != 1 || len(rows[0].Values) != 1 {
			return fmt.Errorf("want one de_energized event of F1-MTR, got %v", rows)
		}
		if v := rows[0].Values[0]; v[rows[0].Column("stage")] != "end" {
			return fmt.Errorf("F1-MTR still de-energized: %v", v)
		}
		return nil
	})
	if v := metricValue(t, d.base, `feederd_device_energized{device="F1-MTR",feeder="F1"}`); v != "1" {
		t.Fatalf("feederd_device_energized of F1-MTR = %q, want 1", v)
	}
	// comm_lost: its energization is unknown, so the series is absent.
	if v := metricValue(t, d.base, `feederd_device_energized{device="F1-REC",feeder="F1"}`); v != "" {
		t.Fatalf("feederd_device_energized of the silent F1-REC = %q, want absent", v)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case int64:
		return x
	}
	var n int64
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}
