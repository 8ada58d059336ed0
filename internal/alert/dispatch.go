package alert

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/backoff"
)

// receiver is one destination and its place in the change log. The fields
// from cursor on are guarded by Dispatcher.mu.
type receiver struct {
	Receiver
	// endpoint is where requests go.
	endpoint string
	// wake has room for one signal: something may be ready to send.
	wake chan struct{}

	sends          *prometheus.CounterVec
	dropped        prometheus.Counter
	queue          prometheus.Gauge
	up             prometheus.Gauge
	requestSeconds prometheus.Observer

	// cursor is the seq of the next change to take from the log.
	cursor uint64
	// job is what is being sent, kept until the receiver accepts or
	// rejects it.
	job *job
	// resendDue asks for a re-send of every alert once the changes before
	// resendAt have been taken (Alertmanager receivers only).
	resendDue bool
	resendAt  uint64
	// failing is set by a failed attempt and cleared by a success.
	failing bool
	// lastErr is the error of the last attempt, nil after a success.
	lastErr error
	// dropLogged: the first drop since the last success was logged.
	dropLogged bool
}

// job is one or more requests' worth of alerts: changes taken from the log
// in order, or the re-send of every alert.
type job struct {
	changes []*change
	resend  bool
}

func newReceiver(rc Receiver, m *metrics) *receiver {
	r := &receiver{Receiver: rc, endpoint: rc.URL, wake: make(chan struct{}, 1)}
	if rc.Kind == Alertmanager {
		r.endpoint = strings.TrimSuffix(rc.URL, "/") + "/api/v2/alerts"
	}
	r.sends = m.sends.MustCurryWith(prometheus.Labels{"receiver": rc.Name})
	for _, res := range []string{resultSuccess, resultRetry, resultRejected} {
		r.sends.WithLabelValues(res)
	}
	r.dropped = m.dropped.WithLabelValues(rc.Name)
	r.queue = m.queue.WithLabelValues(rc.Name)
	r.up = m.up.WithLabelValues(rc.Name)
	r.up.Set(1)
	r.requestSeconds = m.requestSeconds.WithLabelValues(rc.Name)
	return r
}

func (r *receiver) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Set fires a or updates the active alert with its labels (see Sink).
func (d *Dispatcher) Set(a Alert) {
	if err := checkLabels(a.Labels); err != nil {
		d.log.Error("alert not set", "err", err)
		return
	}
	now := d.opts.Now()
	key := labelKey(a.Labels)
	c := &change{
		labels:       maps.Clone(a.Labels),
		annotations:  maps.Clone(a.Annotations),
		startsAt:     a.StartsAt,
		generatorURL: a.GeneratorURL,
		fingerprint:  fingerprint(key),
		updatedAt:    now,
	}
	if c.startsAt.IsZero() {
		c.startsAt = now
	}
	d.mu.Lock()
	e := d.alerts[key]
	switch {
	case e == nil:
		e = &entry{}
		d.alerts[key] = e
		d.active++
	case e.cur.active():
		if maps.Equal(e.cur.annotations, c.annotations) && e.cur.generatorURL == c.generatorURL {
			d.mu.Unlock()
			return
		}
		c.startsAt = e.cur.startsAt
	default:
		e.resolvedAt = time.Time{}
		d.active++
	}
	e.cur = c
	d.appendLocked(c)
	d.m.active.Set(float64(d.active))
	d.mu.Unlock()
	d.wakeAll()
}

// Resolve ends the alert with these labels at at (see Sink).
func (d *Dispatcher) Resolve(labels map[string]string, at time.Time) {
	if err := checkLabels(labels); err != nil {
		d.log.Error("alert not resolved", "err", err)
		return
	}
	now := d.opts.Now()
	if at.IsZero() {
		at = now
	}
	key := labelKey(labels)
	c := &change{labels: maps.Clone(labels), startsAt: at, endsAt: at, fingerprint: fingerprint(key), updatedAt: now}
	d.mu.Lock()
	e := d.alerts[key]
	switch {
	case e == nil:
		e = &entry{}
		d.alerts[key] = e
	case !e.cur.active():
		d.mu.Unlock()
		return
	default:
		c.annotations, c.startsAt, c.generatorURL = e.cur.annotations, e.cur.startsAt, e.cur.generatorURL
		// Alertmanager rejects an alert that ends before it starts.
		if c.endsAt.Before(c.startsAt) {
			c.endsAt = c.startsAt
		}
		d.active--
	}
	e.cur, e.resolvedAt = c, now
	d.appendLocked(c)
	d.m.active.Set(float64(d.active))
	d.mu.Unlock()
	d.wakeAll()
}

func (d *Dispatcher) wakeAll() {
	for _, r := range d.receivers {
		r.signal()
	}
}

// appendLocked adds c to the log; when the log is full, the oldest change
// goes, and receivers that had not taken it yet lose it.
func (d *Dispatcher) appendLocked(c *change) {
	n := uint64(len(d.ring))
	if d.next-d.first == n {
		for _, r := range d.receivers {
			if r.cursor == d.first {
				r.cursor++
				r.dropped.Inc()
				if !r.dropLogged {
					r.dropLogged = true
					d.log.Warn("alert queue full: dropping the oldest changes not yet sent to this receiver",
						"receiver", r.Name, "queue_size", n, "last_error", r.lastErr)
				}
			}
		}
		d.ring[d.first%n] = nil
		d.first++
	}
	c.seq = d.next
	d.ring[d.next%n] = c
	d.next++
	for _, r := range d.receivers {
		d.updateQueueLocked(r)
	}
}

// updateQueueLocked sets the receiver's queue gauge: changes not yet taken
// plus those being sent.
func (d *Dispatcher) updateQueueLocked(r *receiver) {
	n := d.next - r.cursor
	if r.job != nil && !r.job.resend {
		n += uint64(len(r.job.changes))
	}
	r.queue.Set(float64(n))
}

// take returns the receiver's job: the one in flight, else a re-send when
// one is due and every change before it was taken, else the next changes
// of the log. It returns nil when there is nothing to send. noResend skips
// a due re-send (the final flush).
func (d *Dispatcher) take(r *receiver, noResend bool) *job {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.job != nil {
		return r.job
	}
	if r.resendDue && r.cursor >= r.resendAt && !noResend {
		r.resendDue = false
		var list []*change
		for _, e := range d.alerts {
			// An alert changed after the re-send was asked for is sent by
			// that change, which comes later in the log.
			if e.cur.seq < r.resendAt {
				list = append(list, e.cur)
			}
		}
		if len(list) > 0 {
			slices.SortFunc(list, func(a, b *change) int { return compareSeq(a.seq, b.seq) })
			r.job = &job{changes: list, resend: true}
			return r.job
		}
	}
	if r.cursor == d.next {
		return nil
	}
	end := min(d.next, r.cursor+uint64(d.opts.MaxBatch))
	if r.resendDue && r.resendAt > r.cursor {
		end = min(end, r.resendAt)
	}
	n := uint64(len(d.ring))
	j := &job{changes: make([]*change, 0, end-r.cursor)}
	for s := r.cursor; s < end; s++ {
		j.changes = append(j.changes, d.ring[s%n])
	}
	r.cursor = end
	r.job = j
	d.updateQueueLocked(r)
	return j
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// finish records the outcome of the receiver's job: accepted (err nil) or
// rejected for good; either way the job is done.
func (d *Dispatcher) finish(r *receiver, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.job = nil
	r.lastErr = err
	if err == nil {
		if r.failing {
			d.log.Info("alert receiver reachable again", "receiver", r.Name, "queued", d.next-r.cursor)
			// An Alertmanager that was unreachable may have restarted and
			// forgotten every alert: re-send them all behind what it
			// missed.
			if r.Kind == Alertmanager && !r.resendDue {
				r.resendDue, r.resendAt = true, d.next
			}
		}
		r.failing = false
		r.dropLogged = false
		r.up.Set(1)
	}
	d.updateQueueLocked(r)
}

// failed records a failed attempt, the job staying to be tried again, and
// reports whether the attempt before had failed too.
func (d *Dispatcher) failed(r *receiver, err error) (again bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	again = r.failing
	r.failing = true
	r.lastErr = err
	r.up.Set(0)
	return again
}

// resendTick asks every Alertmanager receiver for a re-send and forgets
// alerts resolved more than ResolvedFor ago.
func (d *Dispatcher) resendTick() {
	d.mu.Lock()
	now := d.opts.Now()
	for k, e := range d.alerts {
		if !e.cur.active() && now.Sub(e.resolvedAt) >= d.opts.ResolvedFor {
			delete(d.alerts, k)
		}
	}
	for _, r := range d.receivers {
		if r.Kind == Alertmanager && !r.resendDue {
			r.resendDue, r.resendAt = true, d.next
		}
	}
	d.mu.Unlock()
	d.wakeAll()
}

// Ready reports nil when the last delivery to every receiver succeeded or
// nothing was sent yet; else which receivers failed and why.
func (d *Dispatcher) Ready() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var msgs []string
	for _, r := range d.receivers {
		if r.lastErr != nil {
			msgs = append(msgs, r.lastErr.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Run sends until ctx ends, then sends what is still queued for at most
// FlushTimeout (one attempt per request, no re-sends) and returns. It
// returns an error only when called twice.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("alert dispatcher: Run called twice")
	}
	var wg sync.WaitGroup
	for _, r := range d.receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runReceiver(ctx, r)
		}()
	}
	t := time.NewTicker(d.opts.ResendInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			d.resendTick()
		}
	}
	wg.Wait()
	return nil
}

// runReceiver is the one goroutine that sends to r.
func (d *Dispatcher) runReceiver(ctx context.Context, r *receiver) {
	// Requests run under sendCtx, which ends FlushTimeout after ctx: a
	// request in flight when ctx ends is not cut off, since the receiver
	// may have taken it already and the flush would send its changes a
	// second time. The flush runs under it too, so FlushTimeout bounds
	// everything after ctx ends.
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(d.opts.FlushTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sendCtx.Done():
		}
	})
	defer stop()
	retries := backoff.New(d.opts.BackoffInitial, d.opts.BackoffMax, nil)
	for {
		j := d.take(r, false)
		if j == nil {
			select {
			case <-ctx.Done():
				d.flush(sendCtx, r)
				return
			case <-r.wake:
				continue
			}
		}
		err := d.deliver(sendCtx, r, j)
		var rej *rejectedError
		switch {
		case err == nil:
			d.finish(r, nil)
			retries.Reset()
			continue
		case errors.As(err, &rej):
			d.log.Error("receiver rejected alerts; not sending them again",
				"receiver", r.Name, "alerts", len(j.changes), "err", err)
			d.finish(r, err)
			continue
		case ctx.Err() != nil:
			d.flush(sendCtx, r)
			return
		}
		// The first failure is a warning; the retries that follow are
		// counted in feederd_alert_sends_total and shown by Ready.
		level := slog.LevelWarn
		if d.failed(r, err) {
			level = slog.LevelDebug
		}
		delay := retries.Next()
		d.log.Log(ctx, level, "alert delivery failed; retrying until the receiver accepts", "receiver", r.Name,
			"alerts", len(j.changes), "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			d.flush(sendCtx, r)
			return
		case <-time.After(delay):
		}
	}
}

// flush sends what r has queued, one attempt per request, until ctx ends.
func (d *Dispatcher) flush(ctx context.Context, r *receiver) {
	for {
		j := d.take(r, true)
		if j == nil {
			return
		}
		if err := d.deliver(ctx, r, j); err != nil {
			var rej *rejectedError
			if !errors.As(err, &rej) {
				d.mu.Lock()
				left := d.next - r.cursor + uint64(len(j.changes))
				d.mu.Unlock()
				d.log.Error("alert changes left unsent at shutdown", "receiver", r.Name, "changes", left, "err", err)
				d.failed(r, err)
				return
			}
		}
		d.finish(r, nil)
	}
}

// labelName is the label name syntax every Alertmanager version accepts.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// checkLabels enforces what Alertmanager requires of labels, so that one
// bad alert never makes it reject a request holding good ones.
func checkLabels(labels map[string]string) error {
	if labels["alertname"] == "" {
		return fmt.Errorf("labels %v have no alertname", labels)
	}
	for k, v := range labels {
		if !labelName.MatchString(k) || v == "" {
			return fmt.Errorf("labels %v: invalid label name %q or empty value", labels, k)
		}
	}
	return nil
}

// labelKey is the identity of a label set: the sorted pairs, separated by
// bytes that cannot occur in UTF-8 text.
func labelKey(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(labels[k])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// fingerprint is a short stable identity of a label set for receivers.
func fingerprint(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return fmt.Sprintf("%016x", h.Sum64())
}
