package poll

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/config"
)

// A running Poller follows a new model in four steps, all called by one
// goroutine (the reload's owner):
//
//  1. Prepare builds what the new model needs (clients, TLS certificates,
//     read plans) and changes nothing; an error here leaves the poller as
//     it was.
//  2. Pause parks every link at a poll boundary: its current poll ends and
//     is handed to the Sink, then it waits, connection open. No Put runs
//     while the poller is paused.
//  3. Apply, while paused, stops the links that the new model removes or
//     changes (closing their connections and waiting for their
//     goroutines), keeps the others, and starts the new and changed ones.
//     A kept link keeps its goroutine, connection, schedule and backoff; its
//     devices take their new index (the Device of their samples) and
//     configuration.
//  4. Resume lets every link go on.
//
// A link is kept when its settings (URL, timeouts, backoff, serial and TLS
// settings) and poll.stale_after and poll.slot_time are unchanged, and its
// devices are the same IDs in the same order, each with the same unit,
// interval, timeout, quirks and points: what goes over the wire and how it
// is decoded. A device's other settings (feeder, upstream, kind, nominal
// voltage, labels) change without touching its link.

// parkTicket is one link's part of a Pause: the link closes parked when it
// waits at a poll boundary, and goes on when Resume closes resume.
type parkTicket struct {
	parked chan struct{}
	resume chan struct{}
}

// idle waits for d like wait, and parks the link when Pause asks. It
// reports whether ctx is still live; after a park it returns at once, so
// the caller looks again at what is due.
func (l *link) idle(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		select {
		case t := <-l.parkReq:
			return l.park(ctx, t)
		default:
			return ctx.Err() == nil
		}
	}
	l.timer.Reset(d)
	select {
	case <-ctx.Done():
		l.timer.Stop()
		return false
	case <-l.timer.C:
		return true
	case t := <-l.parkReq:
		l.timer.Stop()
		return l.park(ctx, t)
	}
}

func (l *link) park(ctx context.Context, t *parkTicket) bool {
	close(t.parked)
	select {
	case <-t.resume:
		return true
	case <-ctx.Done():
		return false
	}
}

// Pause parks every link at its next poll boundary and returns when all
// are parked, or with an error naming the links that were not when ctx
// ended (a link in a long request or connection attempt); the poller then
// runs on as before. Links of a Poller that does not run yet park before
// their first poll. Call Resume after a successful Pause.
func (p *Poller) Pause(ctx context.Context) error {
	p.mu.Lock()
	if p.paused != nil {
		p.mu.Unlock()
		return errors.New("poller already paused")
	}
	p.paused = map[*link]*parkTicket{}
	type parking struct {
		l *link
		t *parkTicket
	}
	var wait []parking
	for _, l := range p.links {
		t := p.park(l)
		if l.done != nil {
			wait = append(wait, parking{l, t})
		}
	}
	p.mu.Unlock()
	var late []string
	for _, w := range wait {
		l, t := w.l, w.t
		select {
		case <-t.parked:
		case <-l.done:
		case <-ctx.Done():
			select {
			case <-t.parked:
			default:
				late = append(late, l.cfg.ID)
			}
		}
	}
	if len(late) > 0 {
		p.Resume()
		return fmt.Errorf("pause polling: link %s did not reach a poll boundary in time: %w", strings.Join(late, ", "), ctx.Err())
	}
	return nil
}

// park hands l a new ticket, replacing one it never took. p.mu is held.
func (p *Poller) park(l *link) *parkTicket {
	t := &parkTicket{parked: make(chan struct{}), resume: make(chan struct{})}
	select {
	case <-l.parkReq:
	default:
	}
	l.parkReq <- t
	p.paused[l] = t
	return t
}

// Resume lets the links go on after Pause.
func (p *Poller) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.paused {
		close(t.resume)
	}
	p.paused = nil
}

// Update is what Apply will do: built by Prepare, it holds the new links'
// clients. The ID lists say what changes, each in model order.
type Update struct {
	// Kept links go on with their connection; Started are new, Stopped
	// gone, Restarted changed (stopped, then started with the new
	// settings).
	Kept, Started, Stopped, Restarted []string

	model *config.Model
	keep  map[*link]*config.Link // running link -> its new settings
	stop  []*link
	start []*link // in model order
}

// Prepare compares m with the running model and builds the links that
// Apply will start. It changes nothing, so an error (a TLS certificate that
// does not load) leaves the poller as it was.
func (p *Poller) Prepare(m *config.Model) (*Update, error) {
	if err := errors.Join(validateModel(m)...); err != nil {
		return nil, err
	}
	p.mu.Lock()
	running := slices.Clone(p.links)
	p.mu.Unlock()
	byID := map[string]*link{}
	for _, l := range running {
		byID[l.cfg.ID] = l
	}
	u := &Update{model: m, keep: map[*link]*config.Link{}}
	seen := map[string]bool{}
	for _, lc := range m.Links {
		seen[lc.ID] = true
		old := byID[lc.ID]
		if old != nil && sameWire(old, lc, m) {
			u.keep[old] = lc
			u.Kept = append(u.Kept, lc.ID)
			continue
		}
		nl, err := p.newLink(lc, m)
		if err != nil {
			return nil, err
		}
		u.start = append(u.start, nl)
		if old != nil {
			u.stop = append(u.stop, old)
			u.Restarted = append(u.Restarted, lc.ID)
		} else {
			u.Started = append(u.Started, lc.ID)
		}
	}
	for _, l := range running {
		if !seen[l.cfg.ID] {
			u.stop = append(u.stop, l)
			u.Stopped = append(u.Stopped, l.cfg.ID)
		}
	}
	return u, nil
}

// sameWire reports whether running link l polls as lc of model m would.
func sameWire(l *link, lc *config.Link, m *config.Model) bool {
	if l.staleAfter != int64(m.Poll.StaleAfter) || l.slotTime != m.Poll.SlotTime {
		return false
	}
	a, b := *l.cfg, *lc
	a.Devices, b.Devices = nil, nil
	if !reflect.DeepEqual(a, b) || len(l.devs) != len(lc.Devices) {
		return false
	}
	for i, d := range l.devs {
		o, n := d.cfg, lc.Devices[i]
		if o.ID != n.ID || o.Unit != n.Unit || o.Interval != n.Interval || o.Timeout != n.Timeout ||
			o.Quirks != n.Quirks || !reflect.DeepEqual(o.Points, n.Points) {
			return false
		}
	}
	return true
}

// Apply makes the paused poller follow u's model (see Prepare): it stops
// the links u stops, waiting for each goroutine to close its connection,
// moves the kept links' devices to their new indexes and settings, and
// starts the new links, which begin polling at Resume. It removes the
// metric series of the links and devices that are gone.
func (p *Poller) Apply(u *Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		return errors.New("apply: the poller is not paused")
	}
	before := p.series()
	for _, l := range u.stop {
		if l.done != nil {
			l.cancel()
			<-l.done // parked, so it ends at once
		}
		delete(p.paused, l)
	}
	byConfig := map[*config.Device]*device{}
	links := make([]*link, 0, len(u.model.Links))
	kept := map[string]*link{}
	for l, lc := range u.keep {
		kept[lc.ID] = l
	}
	next := 0
	for _, lc := range u.model.Links {
		l := kept[lc.ID]
		if l == nil {
			l = u.start[next]
			next++
			l.zeroSeries()
			p.park(l)
			if p.runCtx != nil && !p.stopping {
				p.startLink(l)
			}
		} else {
			l.cfg = lc
			for i, d := range l.devs {
				d.cfg = lc.Devices[i]
				for j := range d.samples {
					d.samples[j].Device = d.cfg.Index
				}
			}
		}
		for _, d := range l.devs {
			byConfig[d.cfg] = d
		}
		links = append(links, l)
	}
	p.links = links
	p.setDevices(u.model, byConfig)
	after := p.series()
	for k := range before {
		if after[k] {
			continue
		}
		if k.device == "" {
			p.m.deleteLink(k.link)
		} else {
			p.m.deviceUp.DeleteLabelValues(k.device, k.link)
		}
	}
	return nil
}

type seriesKey struct{ link, device string }

// series are the links and (device, link) pairs that have series. p.mu is
// held.
func (p *Poller) series() map[seriesKey]bool {
	s := map[seriesKey]bool{}
	for _, l := range p.links {
		s[seriesKey{link: l.cfg.ID}] = true
		for _, d := range l.devs {
			s[seriesKey{link: l.cfg.ID, device: d.cfg.ID}] = true
		}
	}
	return s
}
