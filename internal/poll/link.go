package poll

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sample"
)

// link is one connection and the devices polled over it. Everything but
// polled is owned by the goroutine running run.
type link struct {
	cfg    *config.Link
	client *modbus.ModbusClient
	sink   Sink
	log    *slog.Logger
	devs   []*device
	sched  *schedule

	// open is true between a successful Open and the next Close. The
	// library panics on a read before its first successful Open.
	open     bool
	attempts int // connection attempts so far
	// openFailures counts failed attempts since the last success; only the
	// first is logged as a warning.
	openFailures int
	reconnectAt  time.Time
	downErr      error // why the link is closed
	backoff      backoff

	timer *time.Timer
	buf   []uint16 // bits of the last bit-table response

	requests  [4][4]prometheus.Counter // by table, then result
	reconnect prometheus.Counter
	connected prometheus.Gauge

	// polled is set once the first device poll has completed.
	polled atomic.Bool
}

// run polls the link's devices until ctx ends, then closes the client.
func (l *link) run(ctx context.Context, start time.Time) {
	defer l.close()
	if len(l.devs) == 0 {
		<-ctx.Done()
		return
	}
	intervals := make([]time.Duration, len(l.devs))
	for i, d := range l.devs {
		intervals[i] = d.cfg.Interval
	}
	l.sched = newSchedule(start, intervals)
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	l.reconnectAt = start
	l.downErr = fmt.Errorf("link %s not connected yet", l.cfg.ID)
	for {
		i, due := l.sched.next()
		wake := due
		if !l.open && l.reconnectAt.Before(wake) {
			wake = l.reconnectAt
		}
		if !l.wait(ctx, time.Until(wake)) {
			return
		}
		if !l.open && !time.Now().Before(l.reconnectAt) {
			if !l.connect(ctx) {
				return
			}
			continue // time has passed: look again at what is due
		}
		if time.Now().Before(due) {
			continue
		}
		if !l.poll(ctx, i) {
			return
		}
	}
}

// wait sleeps for d and reports whether ctx is still live.
func (l *link) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	l.timer.Reset(d)
	select {
	case <-ctx.Done():
		l.timer.Stop()
		return false
	case <-l.timer.C:
		return true
	}
}

// connect opens the link, and waits the quirk pause after a success. It
// reports whether ctx is still live.
func (l *link) connect(ctx context.Context) bool {
	if l.attempts > 0 {
		l.reconnect.Inc()
	}
	l.attempts++
	if err := l.client.Open(); err != nil {
		l.downErr = fmt.Errorf("open link %s (%s): %w", l.cfg.ID, l.cfg.URL, err)
		delay := l.backoff.next()
		l.reconnectAt = time.Now().Add(delay)
		l.openFailures++
		level := slog.LevelDebug
		if l.openFailures == 1 {
			level = slog.LevelWarn
		}
		l.log.Log(ctx, level, "link open failed", "err", err, "retry_in", delay)
		return ctx.Err() == nil
	}
	l.openFailures = 0
	l.open = true
	l.connected.Set(1)
	l.log.Info("link connected", "url", l.cfg.URL)
	return l.wait(ctx, l.cfg.PauseAfterConnect)
}

// fail closes the link after a link error; it reopens after the backoff.
func (l *link) fail(err error) {
	_ = l.client.Close() // the link is already broken; its close error adds nothing
	l.open = false
	l.connected.Set(0)
	l.downErr = err
	delay := l.backoff.next()
	l.reconnectAt = time.Now().Add(delay)
	l.log.Warn("link failed, closing it", "err", err, "retry_in", delay)
}

func (l *link) close() {
	if l.open {
		_ = l.client.Close() // shutting down: nothing to do about it
		l.open = false
	}
	l.connected.Set(0)
}

// poll reads device i once and hands its samples to the sink. It reports
// whether ctx is still live; a poll interrupted by ctx is dropped, so that
// shutting down does not report devices as failed.
func (l *link) poll(ctx context.Context, i int) bool {
	d := l.devs[i]
	startT := time.Now()
	k, late, missed := l.sched.begin(i, startT)
	d.missed.Add(float64(missed))
	if late > d.cfg.Interval/10 {
		d.late.Inc()
	}
	seq := uint32(k + 1)
	for j := range d.samples {
		d.samples[j] = sample.Sample{Device: d.samples[j].Device, Point: d.samples[j].Point, Quality: sample.Timeout, Seq: seq}
	}

	var firstErr error
	answeredN := 0
	sent := l.open // a poll while the link is down fails at once and is not timed
	if !sent {
		firstErr = fmt.Errorf("poll %s: %w", d.cfg.ID, l.downErr)
	} else {
		_ = l.client.SetUnitId(d.cfg.Unit) // it only stores the ID
		for j := range d.plan {
			if j > 0 && !l.wait(ctx, d.cfg.Quirks.PauseBetweenRequests) {
				return false
			}
			if ctx.Err() != nil {
				return false
			}
			r := &d.plan[j]
			words, buf, err := read(l.client, r, l.buf)
			l.buf = buf
			at := time.Now().UnixNano()
			l.requests[r.Table][resultIndex(err)].Inc()
			q := quality(err)
			for _, ref := range r.Points {
				si := d.sampleOf[ref.Index]
				if si < 0 {
					continue
				}
				s := &d.samples[si]
				s.Time = at
				if err == nil {
					s.Value, s.Quality = decode(&d.cfg.Points[ref.Index], words, ref.Offset)
				} else {
					s.Quality = q
				}
			}
			if err == nil {
				answeredN++
				l.backoff.reset()
				continue
			}
			err = fmt.Errorf("%v on %s: %w", r, d.cfg.ID, err)
			if firstErr == nil {
				firstErr = err
			}
			switch classify(err) {
			case refused:
				l.backoff.reset()
				l.log.Debug("modbus exception", "device", d.cfg.ID, "err", err)
				continue
			case rejected:
				l.log.Warn("request rejected by the client", "device", d.cfg.ID, "err", err)
				continue
			}
			// The remaining requests keep Timeout quality.
			l.fail(err)
			break
		}
	}

	end := time.Now()
	result := pollFailure
	switch {
	case l.open && answeredN == len(d.plan):
		result = pollSuccess
	case answeredN > 0:
		result = pollPartial
	}
	status := &d.samples[len(d.samples)-1]
	status.Time = end.UnixNano()
	status.Quality = sample.Good
	status.Flags = sample.DeviceStatus | sample.EndOfPoll
	if result != pollFailure {
		status.Value = 1
	}
	for j := range d.samples[:len(d.samples)-1] {
		if d.samples[j].Time == 0 {
			d.samples[j].Time = status.Time
		}
	}
	if sent {
		d.duration.Observe(end.Sub(startT).Seconds())
	}
	d.report(result, end, firstErr, l.log)
	l.sink.Put(d.samples)
	d.missed.Add(float64(l.sched.end(i, time.Now())))
	l.polled.Store(true)
	return true
}
