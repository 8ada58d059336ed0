package app

import (
	"maps"
	"sync"
	"time"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/api"
	"github.com/feederd/feederd/internal/grid"
)

// deskEventsBuffer is the event stream buffer of the desk's live view (a
// burst of events while it publishes).
const deskEventsBuffer = 4096

// deskOutages hands every outage change to the alerts, then to the desk.
func deskOutages(alerts func(*grid.Change), live *api.Live) func(*grid.Change) {
	return func(c *grid.Change) {
		alerts(c)
		live.Outage(c)
	}
}

// deskAlerts adds the desk agents' notes to the alerts of an outage
// (labelled outage_id): estimated_restoration and acknowledged_by. When an
// agent changes a note, the outage's active alerts are set again at once
// with it. It sits between the alert builders (alerts.go) and the
// dispatcher, so those need not know the desk.
type deskAlerts struct {
	next alert.Sink
	live *api.Live
	// mu guards last: the latest alert set for each outage's label set.
	// Outage alerts change rarely (never per sample), so a lock here does
	// not touch the ingest path.
	mu   sync.Mutex
	last map[string]map[string]alert.Alert // outage_id -> alertname -> alert
}

func newDeskAlerts(next alert.Sink, live *api.Live) alert.Sink {
	d := &deskAlerts{next: next, live: live, last: map[string]map[string]alert.Alert{}}
	live.OnNote(d.noteChanged)
	return d
}

func (d *deskAlerts) Set(a alert.Alert) {
	id := a.Labels["outage_id"]
	if id == "" {
		d.next.Set(a)
		return
	}
	d.mu.Lock()
	if d.last[id] == nil {
		d.last[id] = map[string]alert.Alert{}
	}
	d.last[id][a.Labels["alertname"]] = a
	d.mu.Unlock()
	d.next.Set(d.annotate(a, id))
}

func (d *deskAlerts) Resolve(labels map[string]string, at time.Time) {
	if id := labels["outage_id"]; id != "" {
		d.mu.Lock()
		if m := d.last[id]; m != nil {
			delete(m, labels["alertname"])
			if len(m) == 0 {
				delete(d.last, id)
			}
		}
		d.mu.Unlock()
	}
	d.next.Resolve(labels, at)
}

func (d *deskAlerts) annotate(a alert.Alert, id string) alert.Alert {
	n, ok := d.live.Notes()[id]
	if !ok {
		return a
	}
	a.Annotations = maps.Clone(a.Annotations)
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	if !n.ETR.IsZero() {
		a.Annotations["estimated_restoration"] = n.ETR.UTC().Format(time.RFC3339)
	}
	if n.AckBy != "" {
		a.Annotations["acknowledged_by"] = n.AckBy
		a.Annotations["acknowledged_at"] = n.AckAt.UTC().Format(time.RFC3339)
	}
	return a
}

// noteChanged sets the outage's active alerts again with the new note.
func (d *deskAlerts) noteChanged(id string) {
	d.mu.Lock()
	var again []alert.Alert
	for _, a := range d.last[id] {
		again = append(again, a)
	}
	d.mu.Unlock()
	for _, a := range again {
		d.next.Set(d.annotate(a, id))
	}
}
