package app

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
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
