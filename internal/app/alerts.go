package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
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

// eventAlertsBuffer is the event stream buffer of the event bridge: the
// events of a burst of comms losses (a whole substation's radio) while the
// bridge, which only calls Set and Resolve, catches up.
const eventAlertsBuffer = 4096

// eventAlerts turns detection's events into alerts, one alert per event
// (event_id is a label), fired at its start with the event's start and
// resolved at its end with the event's end:
//
//   - comm_lost: RTUCommsLost (warning);
//   - band: VoltageExcursion, warning for ANSI C84.1 Range A, critical for
//     Range B, with the phase as a label (a band event is one phase and one
//     range; a Range B excursion is nested in the Range A one).
//
// Events in progress carried over a restart (pipeline.Resumed) are fired
// again at start, so their alerts are live from the first moment.
//
// An event's end resolves the labels its start fired, so that an event
// whose device a reload moved to another feeder still resolves.
type eventAlerts struct {
	devices []*config.Device
	params  detect.Params
	sub     *pipeline.Subscription
	sink    alert.Sink
	// models takes a reloaded configuration to run (setModel); ended is
	// closed when run returns.
	models chan modelSwap
	ended  chan struct{}
	// firing holds the labels of every event alert set and not resolved.
	firing map[firingKey]map[string]string
}

// firingKey names an event: its ID is unique per device index within a
// run, and a reload may give a new device the index of an old one.
type firingKey struct {
	id     uint64
	device string
}

func newEventAlerts(m *config.Model, sub *pipeline.Subscription, sink alert.Sink) *eventAlerts {
	return &eventAlerts{devices: m.Devices, params: m.Detect, sub: sub, sink: sink,
		models: make(chan modelSwap), ended: make(chan struct{}), firing: map[firingKey]map[string]string{}}
}

// setModel hands run a reloaded configuration and waits until run has
// taken it, or ctx ends. run first handles the events queued before it
// takes the model, whose device indexes are the old model's: call it while
// nothing can publish events of the new one (the reload does, with the
// pollers paused). Only one goroutine may call it (the reload's owner).
func (c *eventAlerts) setModel(ctx context.Context, m *config.Model) error {
	req := modelSwap{m: m, taken: make(chan struct{})}
	select {
	case c.models <- req:
	case <-c.ended:
		return nil // no events to map any more
	case <-ctx.Done():
		return fmt.Errorf("event alerts did not take the new configuration: %w", ctx.Err())
	}
	select {
	case <-req.taken:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("event alerts did not take the new configuration: %w", ctx.Err())
	}
}

// modelSwap is a reloaded configuration on its way to run; run closes
// taken when it uses it.
type modelSwap struct {
	m     *config.Model
	taken chan struct{}
}

// run fires the alerts of the resumed events, then handles events until the
// pipeline closes its stream.
func (c *eventAlerts) run(resumed []detect.Event) error {
	defer close(c.ended)
	for i := range resumed {
		c.handle(&resumed[i])
	}
	for {
		select {
		case ev, ok := <-c.sub.C:
			if !ok {
				return nil
			}
			c.handle(&ev)
		case req := <-c.models:
			for n := len(c.sub.C); n > 0; n-- {
				ev, ok := <-c.sub.C
				if !ok {
					break
				}
				c.handle(&ev)
			}
			c.devices, c.params = req.m.Devices, req.m.Detect
			close(req.taken)
		}
	}
}

func (c *eventAlerts) handle(ev *detect.Event) {
	if int(ev.Device) >= len(c.devices) {
		return
	}
	d := c.devices[ev.Device]
	var a alert.Alert
	switch ev.Kind {
	case detect.KindCommLost:
		a = c.commsLost(d, ev)
	case detect.KindBand:
		a = c.excursion(d, ev)
	default:
		return
	}
	key := firingKey{ev.ID, d.ID}
	switch ev.Stage {
	case detect.StageStart:
		c.firing[key] = a.Labels
		c.sink.Set(a)
	case detect.StageEnd:
		labels := a.Labels
		if l, ok := c.firing[key]; ok {
			labels = l
			delete(c.firing, key)
		}
		c.sink.Resolve(labels, time.Unix(0, ev.End))
	}
}

// commsLost is the RTUCommsLost alert of a comm_lost event.
func (c *eventAlerts) commsLost(d *config.Device, ev *detect.Event) alert.Alert {
	labels := map[string]string{
		"alertname": "RTUCommsLost",
		"severity":  "warning",
		"feeder":    d.Feeder,
		"device":    d.ID,
		"event_id":  strconv.FormatUint(ev.ID, 10),
	}
	if ev.Stage != detect.StageStart {
		return alert.Alert{Labels: labels}
	}
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
	return alert.Alert{Labels: labels, Annotations: ann, StartsAt: start}
}

// excursion is the VoltageExcursion alert of a band event.
func (c *eventAlerts) excursion(d *config.Device, ev *detect.Event) alert.Alert {
	rng, rg := "A", c.params.RangeA
	if ev.Category == detect.CategoryRangeB {
		rng, rg = "B", c.params.RangeB
	}
	labels := map[string]string{
		"alertname": "VoltageExcursion",
		"severity":  ev.Severity.String(),
		"feeder":    d.Feeder,
		"device":    d.ID,
		"event_id":  strconv.FormatUint(ev.ID, 10),
		"phase":     ev.Phases.String(),
	}
	if ev.Stage != detect.StageStart {
		return alert.Alert{Labels: labels}
	}
	start := time.Unix(0, ev.Start)
	side := "below"
	if ev.Worst > rg.High {
		side = "above"
	}
	ann := map[string]string{
		"summary": fmt.Sprintf("VoltageExcursion %s on feeder %s: phase %s %s ANSI C84.1 Range %s (%g–%g pu) for %s or more, at %.3f pu (%s V), since %s",
			d.ID, d.Feeder, ev.Phases, side, rng, rg.Low, rg.High, c.params.BandPersistence, ev.Worst,
			thousands(int(math.Round(ev.WorstVolts))), start.UTC().Format("15:04:05 MST")),
		"range":       rng,
		"worst_pu":    strconv.FormatFloat(ev.Worst, 'f', 4, 64),
		"worst_volts": strconv.FormatFloat(ev.WorstVolts, 'f', 1, 64),
		"started_at":  start.UTC().Format(time.RFC3339),
	}
	return alert.Alert{Labels: labels, Annotations: ann, StartsAt: start}
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
