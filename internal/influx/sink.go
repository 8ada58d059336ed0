package influx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sample"
)

// LineWriter sends one batch of line protocol (lines separated by newlines,
// millisecond timestamps) in one request and returns when the server has
// answered or ctx is done. influxdb-client-go's api.WriteAPIBlocking
// satisfies it. An error that is (or wraps) a *StatusError or the client's
// *http.Error carries the server's HTTP status; any other error counts as the
// server being unreachable. A LineWriter that also has
// Ping(context.Context) error is used to check the server while there is
// nothing to write.
type LineWriter interface {
	WriteRecord(ctx context.Context, line ...string) error
}

// StatusError is an HTTP error answer from the server.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("http %d: %s", e.StatusCode, e.Message)
}

// Defaults of the SinkOptions that may be left zero.
const (
	DefaultFlushTimeout   = 5 * time.Second
	DefaultBackoffInitial = 250 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultPingInterval   = 10 * time.Second
)

// SinkOptions configure NewSink.
type SinkOptions struct {
	// Config gives the server, batch size, flush interval, queue size and
	// the timeout of one write. All sizes and durations must be positive and
	// QueueSize at least BatchSize.
	Config  config.Influx
	Encoder *Encoder
	Logger  *slog.Logger
	// Registerer gets the feederd_influx_* metrics.
	Registerer prometheus.Registerer
	// Writer delivers batches; nil means influxdb-client-go's
	// WriteAPIBlocking for Config.URL, Org and Bucket, with ms precision.
	Writer LineWriter
	// FlushTimeout bounds the final flush after Run's context is done
	// (0: DefaultFlushTimeout).
	FlushTimeout time.Duration
	// BackoffInitial and BackoffMax bound the delay between retries of a
	// failed write; it doubles after each failure (0: the defaults).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// PingInterval is how often the server is checked while there is
	// nothing to write (0: DefaultPingInterval).
	PingInterval time.Duration
}

// Sink batches lines and delivers them with one goroutine (Run), in order,
// retrying while the server is unreachable.
//
// Memory is bounded: the lines waiting (sealed batches, the batch being
// filled, the batch being written) are kept to Config.QueueSize by dropping
// the oldest whole waiting batch, counted in
// feederd_influx_points_dropped_total. The batch being filled and the one
// on the wire are never dropped, so the bound can be exceeded by at most one
// batch. Nothing is lost while the queue has room: a failed write goes back
// to the head of the queue.
//
// A batch the server rejects with 4xx (bad data, or a 1.x "partial write"
// where the lines it could parse were written) is logged with its first line
// and dropped; all its lines count in
// feederd_influx_points_failed_total{reason="rejected"}, so that every line
// put is counted once: written, failed or dropped. 401, 403
// and 404 (credentials, missing database) are configuration faults that an
// operator fixes without losing data, so they are retried like 408, 429,
// 5xx and network errors.
type Sink struct {
	cfg            config.Influx
	enc            *Encoder
	log            *slog.Logger
	m              *metrics
	w              LineWriter
	ping           func(context.Context) error
	closeClient    func()
	flushTimeout   time.Duration
	backoffInitial time.Duration
	backoffMax     time.Duration
	pingInterval   time.Duration

	running atomic.Bool
	ready   atomic.Pointer[readyState]
	state   serverState // owned by Run
	// wake has room for one signal: a batch was sealed.
	wake chan struct{}

	mu    sync.Mutex
	poll  PollState // the line Put is building
	cur   *batch
	queue batchQueue // sealed batches, oldest first
	lines int        // in cur, queue and the batch being written
	free  []*batch
}

type batch struct {
	buf []byte
	n   int // lines
}

// batchQueue is a growable ring of batches, so that steady traffic does not
// allocate.
type batchQueue struct {
	ring []*batch
	head int
	n    int
}

func (q *batchQueue) len() int { return q.n }

func (q *batchQueue) grow() {
	if q.n < len(q.ring) {
		return
	}
	ring := make([]*batch, max(8, 2*len(q.ring)))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

func (q *batchQueue) pushBack(b *batch) {
	q.grow()
	q.ring[(q.head+q.n)%len(q.ring)] = b
	q.n++
}

func (q *batchQueue) pushFront(b *batch) {
	q.grow()
	q.head = (q.head - 1 + len(q.ring)) % len(q.ring)
	q.ring[q.head] = b
	q.n++
}

// popFront must not be called on an empty queue.
func (q *batchQueue) popFront() *batch {
	b := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return b
}

type readyState struct{ err error }

type serverState uint8

const (
	stateUnknown serverState = iota
	stateUp
	stateDown
)

// maxFree bounds the batch buffers kept for reuse.
const maxFree = 4

// NewSink checks opts and builds a sink; Run starts delivery.
func NewSink(opts SinkOptions) (*Sink, error) {
	c := opts.Config
	switch {
	case c.Disabled:
		return nil, errors.New("create influx sink: influx output is disabled")
	case opts.Encoder == nil:
		return nil, errors.New("create influx sink: no encoder")
	case opts.Logger == nil:
		return nil, errors.New("create influx sink: no logger")
	case opts.Registerer == nil:
		return nil, errors.New("create influx sink: no metrics registerer")
	case c.BatchSize <= 0:
		return nil, fmt.Errorf("create influx sink: batch size %d is not positive", c.BatchSize)
	case c.QueueSize < c.BatchSize:
		return nil, fmt.Errorf("create influx sink: queue size %d is smaller than batch size %d", c.QueueSize, c.BatchSize)
	case c.FlushInterval <= 0:
		return nil, fmt.Errorf("create influx sink: flush interval %s is not positive", c.FlushInterval)
	case c.Timeout <= 0:
		return nil, fmt.Errorf("create influx sink: write timeout %s is not positive", c.Timeout)
	case opts.FlushTimeout < 0 || opts.BackoffInitial < 0 || opts.BackoffMax < 0 || opts.PingInterval < 0:
		return nil, errors.New("create influx sink: negative flush timeout, backoff or ping interval")
	case opts.Writer == nil && (c.URL == "" || c.Bucket == ""):
		return nil, errors.New("create influx sink: no url or bucket")
	}
	s := &Sink{
		cfg:            c,
		enc:            opts.Encoder,
		log:            opts.Logger,
		m:              newMetrics(opts.Registerer),
		w:              opts.Writer,
		closeClient:    func() {},
		flushTimeout:   orDefault(opts.FlushTimeout, DefaultFlushTimeout),
		backoffInitial: orDefault(opts.BackoffInitial, DefaultBackoffInitial),
		backoffMax:     orDefault(opts.BackoffMax, DefaultBackoffMax),
		pingInterval:   orDefault(opts.PingInterval, DefaultPingInterval),
		wake:           make(chan struct{}, 1),
		cur:            &batch{},
	}
	if s.backoffMax < s.backoffInitial {
		s.backoffMax = s.backoffInitial
	}
	if s.w == nil {
		secs := uint(math.Ceil(c.Timeout.Seconds())) + 1
		client := influxdb2.NewClientWithOptions(c.URL, c.Token.Reveal(), influxdb2.DefaultOptions().
			SetPrecision(time.Millisecond).
			SetHTTPRequestTimeout(secs).
			SetApplicationName("feederd"))
		s.w = client.WriteAPIBlocking(c.Org, c.Bucket)
		s.ping = func(ctx context.Context) error {
			_, err := client.Ping(ctx)
			return err
		}
		s.closeClient = client.Close
	} else if p, ok := s.w.(interface{ Ping(context.Context) error }); ok {
		s.ping = p.Ping
	}
	s.setReady(errors.New("no answer from influxdb yet"))
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Put encodes samples into the current batch, one line per device poll
// (see Encoder.Append). It never waits for the network; it only holds a
// mutex while encoding. Safe for concurrent use, as poll.Sink requires:
// each call must hold whole polls, since a poll split across calls could
// have another caller's poll put inside it.
func (s *Sink) Put(samples []sample.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for i := range samples {
		var n int
		s.cur.buf, n = s.enc.Append(s.cur.buf, &s.poll, samples[i:i+1])
		if n == 0 {
			continue
		}
		s.cur.n += n
		added += n
		if s.cur.n >= s.cfg.BatchSize {
			s.lines += added
			added = 0
			s.sealLocked()
		}
	}
	s.lines += added
	s.dropLocked()
	s.m.queueLines.Set(float64(s.lines))
}

// PutLines adds n complete lines of line protocol with millisecond
// timestamps, separated by newlines. Safe for concurrent use.
func (s *Sink) PutLines(b []byte, n int) {
	if n <= 0 || len(b) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep writes near batch_size: start a new batch rather than grow one
	// that these lines would take past it.
	if s.cur.n > 0 && s.cur.n+n > s.cfg.BatchSize {
		s.sealLocked()
	}
	s.cur.buf = append(s.cur.buf, b...)
	if b[len(b)-1] != '\n' {
		s.cur.buf = append(s.cur.buf, '\n')
	}
	s.cur.n += n
	s.lines += n
	if s.cur.n >= s.cfg.BatchSize {
		s.sealLocked()
	}
	s.dropLocked()
	s.m.queueLines.Set(float64(s.lines))
}

// sealLocked moves the current batch to the queue and wakes Run.
func (s *Sink) sealLocked() {
	if s.cur.n == 0 {
		return
	}
	sealed := s.cur
	s.queue.pushBack(sealed)
	if k := len(s.free); k > 0 {
		s.cur = s.free[k-1]
		s.free = s.free[:k-1]
	} else {
		s.cur = &batch{buf: make([]byte, 0, len(sealed.buf))}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.dropLocked()
}

// dropLocked drops the oldest waiting batches while over QueueSize.
func (s *Sink) dropLocked() {
	for s.lines > s.cfg.QueueSize && s.queue.len() > 0 {
		b := s.queue.popFront()
		s.lines -= b.n
		s.m.dropped.Add(float64(b.n))
		s.recycleLocked(b)
	}
}

func (s *Sink) recycleLocked(b *batch) {
	if len(s.free) < maxFree {
		b.buf = b.buf[:0]
		b.n = 0
		s.free = append(s.free, b)
	}
}

// seal moves a partly filled batch to the queue (the flush interval passed).
func (s *Sink) seal() {
	s.mu.Lock()
	s.sealLocked()
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
}

// next takes the oldest sealed batch off the queue, or returns nil. The
// batch stays counted in lines until done or requeue.
func (s *Sink) next() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue.len() == 0 {
		return nil
	}
	return s.queue.popFront()
}

// done forgets a batch that was written or rejected.
func (s *Sink) done(b *batch) {
	s.mu.Lock()
	s.lines -= b.n
	s.recycleLocked(b)
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
}

// requeue puts a batch whose write failed back at the head of the queue,
// where it is the first to be dropped if the queue overflows meanwhile.
func (s *Sink) requeue(b *batch) {
	s.mu.Lock()
	s.queue.pushFront(b)
	s.dropLocked()
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
}

// Ready returns nil while InfluxDB answers: after the last write (or, with
// nothing to write, the last ping) succeeded or was rejected as bad data.
// Before the first answer and while writes fail it returns why.
func (s *Sink) Ready() error { return s.ready.Load().err }

func (s *Sink) setReady(err error) {
	s.ready.Store(&readyState{err: err})
	if err == nil {
		s.m.up.Set(1)
	} else {
		s.m.up.Set(0)
	}
}

// Run delivers batches until ctx is done, then flushes what is queued for
// at most the flush timeout and returns. It returns an error only when lines
// were left undelivered at the end; they are counted as
// feederd_influx_points_failed_total{reason="shutdown"}. Run may be called
// once.
func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("influx sink: Run called twice")
	}
	defer s.closeClient()
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()

	var lastCheck time.Time
	if s.ping != nil {
		s.checkServer(ctx)
		lastCheck = time.Now()
	}
	backoff := s.backoffInitial
	for {
		if b := s.next(); b != nil {
			retry, err := s.deliver(ctx, b)
			lastCheck = time.Now()
			select {
			case <-tick.C: // keep the flush interval while a backlog drains
				s.seal()
			default:
			}
			if !retry {
				backoff = s.backoffInitial
				continue
			}
			if ctx.Err() != nil {
				return s.shutdown(err)
			}
			s.log.Debug("retrying write", "in", backoff, "err", err)
			t := time.NewTimer(jitter(backoff))
			select {
			case <-ctx.Done():
				t.Stop()
				return s.shutdown(err)
			case <-t.C:
			}
			backoff = min(2*backoff, s.backoffMax)
			continue
		}
		select {
		case <-ctx.Done():
			return s.shutdown(nil)
		case <-s.wake:
		case <-tick.C:
			s.seal()
			if s.ping != nil && s.idle() && (s.Ready() != nil || time.Since(lastCheck) >= s.pingInterval) {
				s.checkServer(ctx)
				lastCheck = time.Now()
			}
		}
	}
}

// jitter spreads retries of several feederd instances by up to +20 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func (s *Sink) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines == 0
}

// checkServer pings the server to keep Ready true to the server's state
// while nothing is written.
func (s *Sink) checkServer(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.ping(pctx); err != nil {
		if ctx.Err() == nil {
			s.markDown(fmt.Errorf("ping influxdb: %w", err))
		}
		return
	}
	s.markUp()
}

// markDown and markUp log state changes only, not every failed retry.
// They are called by Run's goroutine alone.
func (s *Sink) markDown(err error) {
	if s.state != stateDown {
		s.log.Warn("influxdb unavailable, queueing", "err", err)
		s.state = stateDown
	}
	s.setReady(err)
}

func (s *Sink) markUp() {
	if s.state != stateUp {
		s.mu.Lock()
		queued := s.lines
		s.mu.Unlock()
		s.log.Info("influxdb available", "queued_lines", queued)
		s.state = stateUp
	}
	s.setReady(nil)
}

// deliver writes one batch and settles it: done when written or rejected,
// back to the queue when it should be retried.
func (s *Sink) deliver(ctx context.Context, b *batch) (retry bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	start := time.Now()
	err = s.w.WriteRecord(wctx, string(b.buf))
	s.m.writeDuration.Observe(time.Since(start).Seconds())
	cancel()
	if err == nil {
		s.m.written.Add(float64(b.n))
		s.m.writes.WithLabelValues("success").Inc()
		s.done(b)
		s.markUp()
		return false, nil
	}
	code, msg := statusOf(err)
	if !retryable(code) {
		s.m.writes.WithLabelValues("rejected").Inc()
		s.m.failed.WithLabelValues("rejected").Add(float64(b.n))
		first, _, _ := strings.Cut(string(b.buf), "\n")
		what := "influxdb rejected batch"
		if strings.Contains(msg, "partial write") {
			what = "influxdb rejected part of batch, the rest was written"
		}
		s.log.Error(what, "status", code, "err", msg, "lines", b.n, "first_line", first)
		s.done(b)
		s.markUp()
		return false, nil
	}
	err = fmt.Errorf("write %d lines to influxdb: %w", b.n, err)
	s.requeue(b)
	if ctx.Err() == nil {
		s.markDown(err)
	}
	s.m.writes.WithLabelValues("retry").Inc()
	return true, err
}

// statusOf returns the HTTP status of a write error (0 when no answer came)
// and the server's message.
func statusOf(err error) (int, string) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode, se.Message
	}
	var he *influxhttp.Error
	if errors.As(err, &he) {
		return he.StatusCode, he.Error()
	}
	return 0, err.Error()
}

func retryable(code int) bool {
	switch {
	case code == 0, code >= 500:
		return true
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound,
		code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	}
	return code < 400
}

// shutdown flushes the queue for at most the flush timeout, retrying failed
// writes, and counts what is left.
func (s *Sink) shutdown(lastErr error) error {
	s.seal()
	ctx, cancel := context.WithTimeout(context.Background(), s.flushTimeout)
	defer cancel()
	backoff := s.backoffInitial
	for ctx.Err() == nil {
		b := s.next()
		if b == nil {
			return nil
		}
		retry, err := s.deliver(ctx, b)
		if !retry {
			backoff = s.backoffInitial
			continue
		}
		lastErr = err
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, s.backoffMax)
	}
	s.mu.Lock()
	left := s.lines - s.cur.n // lines put after the final seal stay in cur
	for s.queue.len() > 0 {
		s.recycleLocked(s.queue.popFront())
	}
	s.lines -= left
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
	if left == 0 {
		return nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	s.m.failed.WithLabelValues("shutdown").Add(float64(left))
	s.log.Error("lines not delivered at shutdown", "lines", left, "flush_timeout", s.flushTimeout, "err", lastErr)
	return fmt.Errorf("influx sink: %d lines not delivered within %s: %w", left, s.flushTimeout, lastErr)
}
