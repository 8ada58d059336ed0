package app

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/topology"
)

// recordSink records Set and Resolve calls as text.
type recordSink struct{ calls []string }

func (r *recordSink) Set(a alert.Alert) {
	r.calls = append(r.calls, fmt.Sprintf("set %s %s out=%s restored=%s", a.Labels["alertname"], a.Labels["severity"],
		a.Annotations["customers_out"], a.Annotations["customers_restored"]))
}

func (r *recordSink) Resolve(l map[string]string, at time.Time) {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.calls = append(r.calls, fmt.Sprintf("resolve %s at=%s labels=%s", l["alertname"], at.UTC().Format("15:04:05"), strings.Join(keys, ",")))
}

// TestOutageAlerts: an outage's alerts follow its life; labels stay the
// same from fire to resolve, which happens at the restoration time.
func TestOutageAlerts(t *testing.T) {
	start := time.Date(2026, 1, 1, 14, 2, 0, 0, time.UTC).UnixNano()
	o := grid.Outage{ID: "F1/F1-REC/1", Feeder: "F1", Device: "F1-REC", Status: grid.StatusConfirmed, Start: start,
		CustomersAffected: 1184, CustomersOut: 1184, Critical: []topology.CriticalCustomer{{Name: "St Mary's Hospital", Kind: topology.CriticalHospital}}}
	var sink recordSink
	on := outageAlerts(&sink, slog.New(slog.DiscardHandler))
	on(&grid.Change{Kind: grid.OutageStarted, Outage: o, Time: start})
	if got := outageSummary(&o); got != "FeederOutage F1 at F1-REC: 1,184 customers out, 1 critical (St Mary's Hospital), since 14:02 UTC" {
		t.Errorf("summary %q", got)
	}
	o.CustomersOut, o.Critical = 800, nil
	on(&grid.Change{Kind: grid.OutageUpdated, Outage: o, Time: start + int64(2*time.Minute)})
	o.CustomersOut, o.Status, o.End = 0, grid.StatusRestored, start+int64(3*time.Minute)
	on(&grid.Change{Kind: grid.OutageRestored, Outage: o, Time: o.End})
	want := []string{
		"set FeederOutage critical out=1184 restored=0",
		"set CriticalCustomerOutage critical out=1184 restored=0",
		"set FeederOutage critical out=800 restored=384",
		"resolve CriticalCustomerOutage at=14:04:00 labels=alertname,device,feeder,outage_id,severity",
		"set MomentaryInterruption info out=0 restored=1184",
		"resolve MomentaryInterruption at=14:05:00 labels=alertname,device,feeder,outage_id,severity",
		"resolve FeederOutage at=14:05:00 labels=alertname,device,feeder,outage_id,severity",
		"resolve CriticalCustomerOutage at=14:05:00 labels=alertname,device,feeder,outage_id,severity",
	}
	if strings.Join(sink.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n  %s\nwant:\n  %s", strings.Join(sink.calls, "\n  "), strings.Join(want, "\n  "))
	}
	if thousands(1234567) != "1,234,567" || thousands(999) != "999" || thousands(0) != "0" {
		t.Errorf("thousands: %s %s %s", thousands(1234567), thousands(999), thousands(0))
	}
}
