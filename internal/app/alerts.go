package app

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/pipeline"
)

// alertOptions turns the alerting block into the dispatcher's options.
func alertOptions(a config.Alerting, log *slog.Logger, reg prometheus.Registerer, flush time.Duration) alert.Options {
	o := alert.DefaultOptions()
	for _, r := range a.Alertmanagers {
		o.Receivers = append(o.Receivers, alert.Receiver{Kind: alert.Alertmanager, Name: r.Name, URL: r.URL})
	}
	for _, r := range a.Webhooks {
		rc := alert.Receiver{Kind: alert.Webhook, Name: r.Name, URL: r.URL}
		if s := r.Secret.Reveal(); s != "" {
			rc.Secret = []byte(s)
		}
		o.Receivers = append(o.Receivers, rc)
	}
	o.ResendInterval = a.ResendInterval
	o.ActiveFor = a.ActiveFor
	o.ResolvedFor = a.ResolvedFor
	o.Timeout = a.Timeout
	o.QueueSize = a.QueueSize
	o.FlushTimeout = flush
	o.Logger = log
	o.Registerer = reg
	return o
}

// commsAlertsBuffer is the event stream buffer of the comms bridge: the
// events of a burst of comms losses (a whole substation's radio) while the
// bridge, which only calls Set and Resolve, catches up.
const commsAlertsBuffer = 4096

// commsAlerts turns detection's comm_lost events into RTUCommsLost alerts
// (warning): a start fires one, its end resolves it at the time of the
// device's first good sample. One alert per comms loss: event_id is a
// label.
type commsAlerts struct {
	devices []*config.Device
	params  detect.Params
	sub     *pipeline.Subscription
	sink    alert.Sink
}

func newCommsAlerts(m *config.Model, sub *pipeline.Subscription, sink alert.Sink) *commsAlerts {
	return &commsAlerts{devices: m.Devices, params: m.Detect, sub: sub, sink: sink}
}

// run handles events until the pipeline closes its stream.
func (c *commsAlerts) run() error {
	for ev := range c.sub.C {
		c.handle(&ev)
	}
	return nil
}

func (c *commsAlerts) handle(ev *detect.Event) {
	if ev.Kind != detect.KindCommLost || int(ev.Device) >= len(c.devices) {
		return
	}
	d := c.devices[ev.Device]
	labels := map[string]string{
		"alertname": "RTUCommsLost",
		"severity":  "warning",
		"feeder":    d.Feeder,
		"device":    d.ID,
		"event_id":  strconv.FormatUint(ev.ID, 10),
	}
	switch ev.Stage {
	case detect.StageStart:
		start := time.Unix(0, ev.Start)
		why := fmt.Sprintf("no good answer for %s", c.params.CommLossAfter)
		if ev.Cause == detect.CausePollFailures {
			why = fmt.Sprintf("%d polls in a row failed", c.params.CommLossPolls)
		}
		ann := map[string]string{
			"summary":    fmt.Sprintf("RTU %s on feeder %s stopped answering: %s", d.ID, d.Feeder, why),
			"cause":      ev.Cause.String(),
			"started_at": start.UTC().Format(time.RFC3339),
		}
		if d.Link != nil {
			ann["link"] = d.Link.ID
		}
		c.sink.Set(alert.Alert{Labels: labels, Annotations: ann, StartsAt: start})
	case detect.StageEnd:
		c.sink.Resolve(labels, time.Unix(0, ev.End))
	}
}

// outageAlerts turns outage changes into alerts for the service desk: one
// FeederOutage (critical) per outage, not one per dark device, whose
// annotations follow the customers out and restored; CriticalCustomerOutage
// (critical) while critical customers are out in it; MomentaryInterruption
// (info), fired and resolved at once, for an outage that ended before the
// IEEE 1366 sustained boundary. Labels are stable for an outage's life
// (alertname, severity, feeder, device, outage_id); both resolve at the
// true restoration time. It runs on a shard worker: Set and Resolve never
// block.
func outageAlerts(sink alert.Sink, log *slog.Logger) func(*grid.Change) {
	return func(c *grid.Change) {
		if c.Kind == grid.IndicesUpdated {
			return
		}
		o := &c.Outage
		log.Info("outage "+c.Kind.String(), "outage_id", o.ID, "feeder", o.Feeder, "device", o.Device,
			"status", o.Status, "customers_out", o.CustomersOut, "customers_affected", o.CustomersAffected,
			"critical_out", len(o.Critical), "start", time.Unix(0, o.Start).UTC())
		labels := func(name, severity string) map[string]string {
			return map[string]string{"alertname": name, "severity": severity, "feeder": o.Feeder,
				"device": o.Device, "outage_id": o.ID}
		}
		start := time.Unix(0, o.Start)
		feeder := labels("FeederOutage", "critical")
		critical := labels("CriticalCustomerOutage", "critical")
		if c.Kind == grid.OutageMerged {
			// Placed under another outage by later evidence: that one's
			// alert carries its customers now.
			sink.Resolve(feeder, time.Unix(0, o.End))
			sink.Resolve(critical, time.Unix(0, o.End))
			return
		}
		if c.Kind == grid.OutageRestored {
			if !o.Sustained {
				sink.Set(alert.Alert{Labels: labels("MomentaryInterruption", "info"), StartsAt: start,
					Annotations: outageAnnotations(o, fmt.Sprintf("MomentaryInterruption %s at %s: %s customers out for %s",
						o.Feeder, o.Device, thousands(o.CustomersAffected), time.Duration(o.End-o.Start).Round(time.Second)))})
				sink.Resolve(labels("MomentaryInterruption", "info"), time.Unix(0, o.End))
			}
			sink.Resolve(feeder, time.Unix(0, o.End))
			sink.Resolve(critical, time.Unix(0, o.End))
			return
		}
		sink.Set(alert.Alert{Labels: feeder, StartsAt: start, Annotations: outageAnnotations(o, outageSummary(o))})
		if len(o.Critical) > 0 {
			sink.Set(alert.Alert{Labels: critical, StartsAt: start, Annotations: outageAnnotations(o, outageSummary(o))})
		} else {
			sink.Resolve(critical, time.Unix(0, c.Time))
		}
	}
}

// outageSummary reads like "FeederOutage F101 at F101-REC: 1,184 customers
// out, 1 critical (St Mary's Hospital), since 14:02 UTC".
func outageSummary(o *grid.Outage) string {
	s := fmt.Sprintf("FeederOutage %s at %s: %s customers out", o.Feeder, o.Device, thousands(o.CustomersOut))
	if n := len(o.Critical); n > 0 {
		names := make([]string, n)
		for i, c := range o.Critical {
			names[i] = c.Name
		}
		s += fmt.Sprintf(", %d critical (%s)", n, strings.Join(names, ", "))
	}
	if r := o.CustomersRestored(); r > 0 {
		s += fmt.Sprintf(", %s restored", thousands(r))
	}
	return s + ", since " + time.Unix(0, o.Start).UTC().Format("15:04 MST")
}

func outageAnnotations(o *grid.Outage, summary string) map[string]string {
	names := make([]string, len(o.Critical))
	for i, c := range o.Critical {
		names[i] = c.Name + " (" + string(c.Kind) + ")"
	}
	return map[string]string{
		"summary":            summary,
		"status":             string(o.Status),
		"customers_affected": strconv.Itoa(o.CustomersAffected),
		"customers_out":      strconv.Itoa(o.CustomersOut),
		"customers_restored": strconv.Itoa(o.CustomersRestored()),
		"critical_customers": strings.Join(names, "; "),
		"started_at":         time.Unix(0, o.Start).UTC().Format(time.RFC3339),
	}
}

// thousands writes n with thousands separators: 1,184.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
