package poll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/backoff"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sample"
)

// What a link does when a request fails:
//
//   - A Modbus exception, whatever its code (those the library has no
//     constant for, 0x07 and vendor codes, included: they are told by type,
//     see libraryError), marks the request's points Exception; the poll goes
//     on with the device's next request and the link stays open. A device
//     that answers only with exceptions is up: its poll is partial.
//   - A gateway exception, 0x0A (path unavailable) or 0x0B (target device
//     failed to respond), means the gateway works but cannot reach the
//     unit: the request's points and those of the device's remaining
//     requests in this poll are marked Timeout and the remaining requests
//     are not sent (each would wait for the gateway's own timeout, often
//     1-3 s, and make the unit's neighbours miss their polls). The request
//     counts as result "timeout" in feederd_requests_total. The link stays
//     open, and the gateway's answer counts as heard (below).
//   - A request the library rejects before sending it marks its points
//     Invalid; the link stays open.
//   - A timeout, or on an RTU link (rtu://, rtuovertcp://) a bad CRC, a
//     short frame or a protocol error (a framing error: see unitFault),
//     marks the points of the request and of the device's remaining
//     requests in this poll Timeout (they are not sent), so a dead or
//     garbling unit costs one failed request per poll. Then the link is
//     closed and reopened with backoff, unless a unit other than the
//     device's own has answered (with data or an exception) on this
//     connection since it was opened or since the link's previous such
//     failure, whichever came later: then only the device's poll fails and
//     the connection stays open. Every such failure starts a new window. So
//     one dead or garbling unit among live ones on a serial bus or a gateway
//     never closes the link and never fails its neighbours' polls; a
//     single-device link reconnects on every one; two consecutive failures
//     with no answer between them (a dead connection, or two bad units
//     polled back to back) close the link.
//   - Any other error (connection reset, EOF, a response from the wrong
//     unit, a framing error on a Modbus TCP link, whose stream is then out
//     of step) closes and reopens the link with backoff, on every scheme.
//
// A point that gets no value in a poll (its request timed out, failed with
// a link or gateway error, or was not sent after one, or the link was down)
// is Timeout while its last good value is recent, and Stale once it is not:
// Stale when k - g >= StaleAfter (poll.stale_after, default 3), where k is
// the poll's slot on the device's schedule and g the slot of the poll that
// last read the point Good. Ages are counted in slots, that is in the
// device's intervals between deadlines, not in measured times, so neither
// jitter nor the time a request waited for its timeout moves the boundary;
// missed slots count. A point that never had a good value counts from slot
// 0, as if it had one there: it is Timeout in the device's first StaleAfter
// slots and Stale from then on. So with the default 3 the first two failed
// polls after a good one are Timeout and the third and later ones Stale,
// and at start a device that never answers is Timeout for its first three
// polls. A Good value resets the age. Exception and Invalid stay as they
// are (the device answered) and do not reset it.
//
// Keeping a connection after a timeout relies on the late response, if one
// ever comes, being recognised. Modbus TCP drops it by its transaction ID
// (a timeout in the middle of a response leaves the stream out of step; the
// next request then fails with a protocol error or a second timeout, which
// closes the link). RTU frames carry no such ID: a response that arrives
// after its timeout is read as the answer to the next request, which then
// usually fails with a wrong-unit or protocol error and closes the link
// (reopening discards the late bytes). Timeouts must therefore exceed the
// slowest unit's response time, as they must anyway on an RTU bus.

// link is one connection and the devices polled over it. Everything but
// polled is owned by the goroutine running run.
type link struct {
	cfg    *config.Link
	client *modbus.ModbusClient
	// tlsConf is the client's TLS configuration on tcp+tls:// links, for
	// preflight; timeout is the client's.
	tlsConf *tls.Config
	timeout time.Duration
	pending chan error // a connection attempt that outlived its connect (dial.go)
	sink    Sink
	log     *slog.Logger
	devs    []*device
	sched   *schedule
	// staleAfter is Model.Poll.StaleAfter, in slots.
	staleAfter int64
	// now stamps samples; scheduling runs on time.Now's monotonic reading.
	now func() int64
	// slotTime (poll.slot_time) stamps every sample of a poll with its
	// slot's deadline instead, on a schedule aligned to the wall clock.
	slotTime bool

	// open is true between a successful Open and the next Close. The
	// library panics on a read before its first successful Open.
	open     bool
	attempts int // connection attempts so far
	// openFailures counts failed attempts since the last success; only the
	// first is logged as a warning.
	openFailures int
	reconnectAt  time.Time
	downErr      error // why the link is closed
	backoff      backoff.Backoff
	// heard is who answered on this connection since it opened or since
	// the link's last timeout.
	heard heard

	timer *time.Timer
	buf   []uint16 // bits of the last bit-table response

	requests  [4][4]prometheus.Counter // by table, then result
	reconnect prometheus.Counter
	connected prometheus.Gauge
	duration  prometheus.Observer
	lateness  prometheus.Observer
	polls     [3]prometheus.Counter // by result: success, partial, failure
	missed    prometheus.Counter

	// polled is set once the first device poll has completed.
	polled atomic.Bool

	// Set by the Poller (reload.go): parkReq takes Pause's ticket; cancel
	// stops the goroutine, which closes done when it has ended.
	parkReq chan *parkTicket
	cancel  context.CancelFunc
	done    chan struct{}
}

// run polls the link's devices until ctx ends, then closes the client.
func (l *link) run(ctx context.Context, start time.Time) {
	defer l.close()
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	if len(l.devs) == 0 {
		for l.idle(ctx, time.Hour) {
		}
		return
	}
	intervals := make([]time.Duration, len(l.devs))
	for i, d := range l.devs {
		intervals[i] = d.cfg.Interval
	}
	l.sched = newSchedule(start, intervals, l.slotTime)
	l.reconnectAt = start
	l.downErr = fmt.Errorf("link %s not connected yet", l.cfg.ID)
	for {
		i, due := l.sched.next()
		at := l.sched.pollAt(i, due)
		wake := at
		if !l.open && l.reconnectAt.Before(wake) {
			wake = l.reconnectAt
		}
		if !l.idle(ctx, time.Until(wake)) {
			return
		}
		if !l.open && !time.Now().Before(l.reconnectAt) {
			if !l.connect(ctx) {
				return
			}
			continue // time has passed: look again at what is due
		}
		if time.Now().Before(at) {
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
	err := l.dial(ctx)
	if err != nil && ctx.Err() != nil {
		return false // shutting down: not a failure of the link
	}
	if err != nil {
		l.downErr = fmt.Errorf("open link %s (%s): %w", l.cfg.ID, l.cfg.URL, err)
		delay := l.backoff.Next()
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
	l.heard = heard{}
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
	delay := l.backoff.Next()
	l.reconnectAt = time.Now().Add(delay)
	l.log.Warn("link failed, closing it", "err", err, "retry_in", delay)
}

func (l *link) close() {
	l.collect()
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
	l.missed.Add(float64(missed))
	l.lateness.Observe(late.Seconds())
	seq := uint32(k + 1)
	for j := range d.samples {
		d.samples[j] = sample.Sample{Device: d.samples[j].Device, Point: d.samples[j].Point, Quality: sample.Timeout, Seq: seq}
	}

	var firstErr error
	answeredN := 0 // requests answered with data
	refusedN := 0  // requests answered with an exception
	sent := l.open // a poll while the link is down fails at once and is not timed
	if !sent {
		firstErr = fmt.Errorf("poll %s: %w", d.cfg.ID, l.downErr)
	} else {
		_ = l.client.SetUnitId(d.cfg.Unit) // it only stores the ID
	requests:
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
			at := l.stamp(i, k)
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
				l.backoff.Reset()
				l.heard.add(d.cfg.Unit)
				continue
			}
			err = fmt.Errorf("%v on %s: %w", r, d.cfg.ID, err)
			if firstErr == nil {
				firstErr = err
			}
			switch classify(err) {
			case refused:
				refusedN++
				l.backoff.Reset()
				l.heard.add(d.cfg.Unit)
				d.log.Debug("modbus exception", "err", err)
				continue
			case rejected:
				d.log.Warn("request rejected by the client", "err", err)
				continue
			case unreachable:
				// The device's remaining requests are not sent and keep
				// Timeout quality; the gateway answered, so the link is fine.
				l.backoff.Reset()
				l.heard.add(d.cfg.Unit)
				d.log.Debug("gateway cannot reach the unit, its other requests are not sent", "err", err)
				break requests
			}
			// The device's remaining requests are not sent and keep
			// Timeout quality.
			if l.unitFault(err) && l.heard.other(d.cfg.Unit) {
				l.heard = heard{}
				d.log.Debug("device failed, link kept: another unit answered since the last timeout or framing error", "err", err)
			} else {
				l.fail(err)
			}
			break
		}
	}

	end := time.Now()
	result := pollFailure
	switch {
	case l.open && answeredN == len(d.plan):
		result = pollSuccess
	case answeredN > 0 || refusedN > 0:
		// The device answered: its comms are up even when every answer
		// was an exception.
		result = pollPartial
	}
	status := &d.samples[len(d.samples)-1]
	status.Time = l.stamp(i, k)
	status.Quality = sample.Good
	status.Flags = sample.DeviceStatus | sample.EndOfPoll
	if result != pollFailure {
		status.Value = 1
	}
	d.settle(k, status.Time, l.staleAfter)
	var latency time.Duration
	if sent {
		latency = end.Sub(startT)
		l.duration.Observe(latency.Seconds())
	}
	l.polls[result].Inc()
	d.report(result, end, latency, firstErr)
	l.sink.Put(d.samples)
	l.missed.Add(float64(l.sched.end(i, time.Now())))
	l.polled.Store(true)
	return true
}

// stamp is the time of a sample of device i's poll for slot k: now, or the
// slot's deadline with poll.slot_time.
func (l *link) stamp(i int, k int64) int64 {
	if l.slotTime {
		return l.sched.slots[i].deadline(k).UnixNano()
	}
	return l.now()
}

// settle finishes the point samples of device d's poll for slot k: a
// sample that got no time gets at, a Good one records k as the point's last
// good slot, and a Timeout one turns Stale when the point's last good value
// is staleAfter slots old.
func (d *device) settle(k, at, staleAfter int64) {
	for j := range d.samples[:len(d.samples)-1] {
		s := &d.samples[j]
		if s.Time == 0 {
			s.Time = at
		}
		switch s.Quality {
		case sample.Good:
			d.lastGood[j] = k
		case sample.Timeout:
			if k-d.lastGood[j] >= staleAfter {
				s.Quality = sample.Stale
			}
		}
	}
}

// unitFault reports whether err may be one unit's fault on a working
// connection: a timeout on any link, or on an RTU link (serial or RTU over
// TCP) a frame with a bad CRC, cut short or malformed. After such a frame
// the library has waited one maximal frame (256 character times at the
// link's baud) and discarded whatever arrived meanwhile, so the line is
// silent and in step again for the next unit.
func (l *link) unitFault(err error) bool {
	if errors.Is(err, modbus.ErrRequestTimedOut) {
		return true
	}
	switch l.cfg.Scheme {
	case config.SchemeRTU, config.SchemeRTUOverTCP:
		return errors.Is(err, modbus.ErrBadCRC) || errors.Is(err, modbus.ErrShortFrame) || errors.Is(err, modbus.ErrProtocolError)
	}
	return false
}

// heard records which units answered on a connection during a window: none,
// one (which) or several. Its zero value has heard none.
type heard struct {
	n    uint8 // 0, 1, or 2 for two or more units
	unit uint8 // the unit, when n is 1
}

func (h *heard) add(unit uint8) {
	switch {
	case h.n == 0:
		h.n, h.unit = 1, unit
	case h.n == 1 && h.unit != unit:
		h.n = 2
	}
}

// other reports whether a unit other than unit answered.
func (h heard) other(unit uint8) bool {
	return h.n == 2 || (h.n == 1 && h.unit != unit)
}
