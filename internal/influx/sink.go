package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/backoff"
	"github.com/feederd/feederd/internal/config"
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
	Config config.Influx
	Logger *slog.Logger
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
	// Spool, when set, keeps on disk what cannot be delivered (see Sink);
	// the sink owns it from here on and closes it when Run returns.
	Spool *Spool
	// Hurry, when closed during Run's final flush, makes the sink stop
	// delivering and spool what is left at once (a second stop request).
	Hurry <-chan struct{}
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
// With a Spool, nothing is dropped from memory while the disk budget
// lasts: when a write fails for a reason worth retrying, that batch and
// every batch sealed while the server stays unreachable go to the spool at
// once, as does the oldest batch whenever the memory queue overflows.
// Retries then replay the spool's oldest record. Once the server answers,
// live batches go first and spooled ones are replayed in between, at most
// one spooled batch per live batch while live batches wait, so that a long
// replay never delays current data by more than one write.
//
// Answers: 2xx written. 413 (too large) splits the batch in halves and
// writes each. 429 and 503 wait for the server's Retry-After when it gives
// one, else the backoff. 400 and other 4xx (bad data, or a 1.x "partial
// write" where the lines it could parse were written) are bisected until
// the lines the server refuses are alone: the good lines land (writing a
// point twice leaves one point in InfluxDB), the refused ones go to the
// dead-letter file in the spool directory (or, without a spool, to the
// log) and count in feederd_influx_points_failed_total{reason="rejected"}.
// 401, 403 and 404 (credentials, missing database) are configuration
// faults that an operator fixes without losing data, so they are retried
// (and spooled) like 408, 429, 5xx and network errors.
//
// Every line put is counted once: written, failed or dropped, or it is
// still queued or spooled.
type Sink struct {
	cfg config.Influx
	// rejectMu serialises reject: two writes may be in flight.
	rejectMu       sync.Mutex
	log            *slog.Logger
	m              *metrics
	w              LineWriter
	ping           func(context.Context) error
	closeClient    func()
	flushTimeout   time.Duration
	backoffInitial time.Duration
	backoffMax     time.Duration
	pingInterval   time.Duration
	spool          *Spool
	hurry          <-chan struct{}
	// replayTurn: the next write may replay a spooled batch (Run only).
	replayTurn bool

	running atomic.Bool
	ready   atomic.Pointer[readyState]
	state   serverState // owned by Run
	// wake has room for one signal: a batch was sealed.
	wake chan struct{}

	mu    sync.Mutex
	cur   *batch
	queue batchQueue // sealed batches, oldest first
	lines int        // in cur, queue and the batch being written
	free  []*batch
	// inflight is the batch being written, for the queue's age.
	inflight *batch
	// dropLogged: the first drop since the queue was last empty was logged.
	dropLogged bool
	// lastDrop is when lines were last dropped (unix ns; 0: never), for
	// Ready.
	lastDrop atomic.Int64
}

type batch struct {
	buf []byte
	n   int // lines
	// since is when the batch's first line was added.
	since time.Time
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
		spool:          opts.Spool,
		hurry:          opts.Hurry,
	}
	s.m.registerQueue(opts.Registerer, s.queueAge, s.spool)
	if s.spool != nil {
		s.spool.setHooks(spoolHooks{
			dropped: func(reason string, lines int) {
				s.m.dropped.WithLabelValues(reason).Add(float64(lines))
				s.lastDrop.Store(time.Now().UnixNano())
			},
			corrupt: func(n int) { s.m.spoolCorrupt.Add(float64(n)) },
		})
	}
	if s.backoffMax < s.backoffInitial {
		s.backoffMax = s.backoffInitial
	}
	if s.w == nil {
		secs := uint(math.Ceil(c.Timeout.Seconds())) + 1
		client := influxdb2.NewClientWithOptions(c.URL, c.Token.Reveal(), influxdb2.DefaultOptions().
			SetPrecision(time.Millisecond).
			SetHTTPRequestTimeout(secs).
			SetUseGZip(c.Gzip).
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
	if s.cur.n == 0 {
		s.cur.since = time.Now()
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

// dropLocked makes room while over QueueSize: the oldest waiting batches
// go to the spool, or without one (or when the spool fails) are dropped.
// The first drop since the queue was last empty is logged.
func (s *Sink) dropLocked() {
	for s.lines > s.cfg.QueueSize && s.queue.len() > 0 {
		b := s.queue.popFront()
		s.lines -= b.n
		if s.spool != nil {
			err := s.spool.Append(b.buf, b.n)
			if err == nil {
				s.m.spooled.Add(float64(b.n))
				s.recycleLocked(b)
				continue
			}
			s.log.Error("spool write failed, dropping the batch", "lines", b.n, "err", err)
		}
		s.m.dropped.WithLabelValues("queue_full").Add(float64(b.n))
		s.lastDrop.Store(time.Now().UnixNano())
		if !s.dropLogged {
			s.dropLogged = true
			s.log.Warn("influx queue full: dropping the oldest batches (logged once until the queue empties)",
				"queue_size", s.cfg.QueueSize, "lines", b.n)
		}
		s.recycleLocked(b)
	}
	if s.lines == 0 {
		s.dropLogged = false
	}
}

// queueAge is how long the oldest line waiting in memory has waited.
func (s *Sink) queueAge() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest time.Time
	for _, b := range []*batch{s.inflight, s.cur} {
		if b != nil && b.n > 0 && (oldest.IsZero() || b.since.Before(oldest)) {
			oldest = b.since
		}
	}
	if s.queue.len() > 0 {
		if b := s.queue.ring[s.queue.head]; oldest.IsZero() || b.since.Before(oldest) {
			oldest = b.since
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
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
	s.inflight = s.queue.popFront()
	return s.inflight
}

// done forgets a batch that was written or rejected.
func (s *Sink) done(b *batch) {
	s.mu.Lock()
	s.inflight = nil
	s.lines -= b.n
	s.recycleLocked(b)
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
}

// requeue puts a batch whose write failed back at the head of the queue,
// where it is the first to be dropped if the queue overflows meanwhile.
func (s *Sink) requeue(b *batch) {
	s.mu.Lock()
	s.inflight = nil
	s.queue.pushFront(b)
	s.dropLocked()
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
}

// Ready returns nil while InfluxDB answers and the sink keeps up: after
// the last write (or, with nothing to write, the last ping) succeeded or
// was rejected as bad data, and no line was dropped (queue full or spool
// over its budget) in the last minute.
// Before the first answer, while writes fail and while dropping it returns
// why.
func (s *Sink) Ready() error {
	if err := s.ready.Load().err; err != nil {
		return err
	}
	if last := s.lastDrop.Load(); last != 0 && time.Since(time.Unix(0, last)) < time.Minute {
		return fmt.Errorf("falling behind: lines dropped %s ago, the queue or the spool was full (feederd_influx_points_dropped_total)",
			time.Since(time.Unix(0, last)).Round(time.Second))
	}
	return nil
}

func (s *Sink) setReady(err error) {
	s.ready.Store(&readyState{err: err})
	if err == nil {
		s.m.up.Set(1)
	} else {
		s.m.up.Set(0)
	}
}

// Run delivers batches until ctx is done, then flushes what is queued for
// at most the flush timeout (see shutdown) and returns. It returns an error
// only when lines were lost at the end; they are counted as
// feederd_influx_points_failed_total{reason="shutdown"}. Run may be called
// once.
// Close releases what NewSink took (the InfluxDB client, the spool) when
// Run will not be called: a setup step after NewSink failed. Run releases
// them itself.
func (s *Sink) Close() {
	if s.running.Load() {
		return
	}
	s.closeClient()
	if s.spool != nil {
		if err := s.spool.Close(); err != nil {
			s.log.Error("close spool", "err", err)
		}
	}
}

func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("influx sink: Run called twice")
	}
	defer s.closeClient()
	if s.spool != nil {
		defer func() {
			if err := s.spool.Close(); err != nil {
				s.log.Error("close spool", "err", err)
			}
		}()
	}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()

	var lastCheck time.Time
	if s.ping != nil {
		s.checkServer(ctx)
		lastCheck = time.Now()
	}
	// A write under way when ctx ends is not cut off at once: InfluxDB may
	// have stored it already, and a batch both stored and spooled would be
	// written twice. It gets the flush timeout (or until Hurry).
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.NewTimer(s.flushTimeout)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.hurry: // nil: never
		case <-wctx.Done():
		}
		cancelWrites()
	})
	defer stopAfter()
	retries := backoff.New(s.backoffInitial, s.backoffMax, nil)
	for {
		if s.state == stateDown && s.spool != nil {
			s.spill()
		}
		b, fromSpool := s.pick()
		if b != nil {
			var retry bool
			var wait time.Duration
			var err error
			if b2 := s.second(fromSpool); b2 != nil {
				retry, wait, err = s.deliverPair(wctx, b, b2)
			} else {
				retry, wait, err = s.deliver(wctx, b, fromSpool)
			}
			lastCheck = time.Now()
			select {
			case <-tick.C: // keep the flush interval while a backlog drains
				s.seal()
				s.syncSpool()
			default:
			}
			if !retry {
				retries.Reset()
				continue
			}
			if ctx.Err() != nil {
				return s.shutdown(err)
			}
			if s.spool != nil {
				s.spill()
			}
			if wait == 0 {
				wait = retries.Next()
			}
			s.log.Debug("retrying write", "in", wait, "err", err)
			if !s.sleep(ctx, tick, wait) {
				return s.shutdown(err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return s.shutdown(nil)
		case <-s.wake:
		case <-tick.C:
			s.seal()
			s.syncSpool()
			if s.ping != nil && s.idle() && (s.Ready() != nil || time.Since(lastCheck) >= s.pingInterval) {
				s.checkServer(ctx)
				lastCheck = time.Now()
			}
		}
	}
}

// sleep waits d before a retry; meanwhile, with a spool, it moves batches
// sealed by PutLines to the spool. It returns false when ctx ended.
func (s *Sink) sleep(ctx context.Context, tick *time.Ticker, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			s.seal()
			s.syncSpool()
			if s.spool != nil {
				s.spill()
			}
		case <-s.wake:
			if s.spool != nil {
				s.spill()
			}
		}
	}
}

func (s *Sink) syncSpool() {
	if s.spool == nil {
		return
	}
	if err := s.spool.SyncDue(); err != nil {
		s.log.Error("sync spool", "err", err)
	}
}

// pick returns what to write next: while the server is down, the spool's
// oldest record (so that what waits longest is what retries); while it is
// up, the oldest live batch, with a spooled one in every other turn (or
// whenever no live batch waits).
func (s *Sink) pick() (*batch, bool) {
	if s.spool != nil && (s.state == stateDown || s.replayTurn) {
		if p, n, ok := s.spool.Next(); ok {
			s.replayTurn = false
			return &batch{buf: p, n: n}, true
		}
	}
	s.replayTurn = true
	if b := s.next(); b != nil {
		return b, false
	}
	if s.spool != nil && s.state != stateDown {
		if p, n, ok := s.spool.Next(); ok {
			return &batch{buf: p, n: n}, true
		}
	}
	return nil, false
}

// spill moves every sealed batch from memory to the spool. It holds the
// sink's lock while it writes, as dropLocked does, so that batches reach
// the spool in the order they were sealed.
func (s *Sink) spill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.queue.len() > 0 {
		b := s.queue.ring[s.queue.head]
		if err := s.spool.Append(b.buf, b.n); err != nil {
			s.log.Error("spool write failed, keeping the batches in memory", "lines", b.n, "err", err)
			break
		}
		s.queue.popFront()
		s.m.spooled.Add(float64(b.n))
		s.lines -= b.n
		s.recycleLocked(b)
	}
	s.m.queueLines.Set(float64(s.lines))
}

func (s *Sink) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines == 0 && (s.spool == nil || s.spool.Empty())
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
		what := "influxdb unavailable, queueing"
		if s.spool != nil {
			what = "influxdb unavailable, spooling to disk"
		}
		if code, _ := statusOf(err); code == http.StatusUnauthorized || code == http.StatusForbidden {
			what = "influxdb refused feederd's credentials: check the token (influx.token_env or token_file) and its write permission on the bucket; keeping the data"
		}
		s.log.Warn(what, "err", err)
		s.state = stateDown
	}
	s.setReady(err)
}

func (s *Sink) markUp() {
	if s.state != stateUp {
		s.mu.Lock()
		queued := s.lines
		s.mu.Unlock()
		attrs := []any{"queued_lines", queued}
		if s.spool != nil {
			st := s.spool.Stats()
			attrs = append(attrs, "spool_bytes", st.Bytes)
		}
		s.log.Info("influxdb available", attrs...)
		s.state = stateUp
	}
	s.setReady(nil)
}

// second returns a second live batch to write beside the first, or nil: only
// while InfluxDB answers, and never beside a spooled batch (replay stays one
// at a time, in order). Two writes in flight let InfluxDB use two cores and
// hide one request's latency behind the other: one writer took 34,000–51,000
// lines/s on this 2-core VM, and under load (other builds running) a 5,000-
// line write took 300–450 ms, too slow for 10,000 device-polls a second.
func (s *Sink) second(fromSpool bool) *batch {
	if fromSpool || s.state != stateUp {
		return nil
	}
	return s.next()
}

// attempt is the network part of a delivery: what write returns.
type attempt struct {
	rest  []byte
	restN int
	wait  time.Duration
	err   error
}

func (s *Sink) attempt(ctx context.Context, b *batch) attempt {
	w := writeState{budget: maxSplitWrites}
	rest, restN, wait, err := s.write(ctx, b.buf, b.n, &w)
	return attempt{rest, restN, wait, err}
}

// deliverPair writes two live batches at once, on this goroutine and one it
// waits for, then settles each as deliver does. The later batch is settled
// first, so that without a spool a retried pair goes back to the queue's
// head in its order.
func (s *Sink) deliverPair(ctx context.Context, b1, b2 *batch) (retry bool, wait time.Duration, err error) {
	var a2 attempt
	done := make(chan struct{})
	go func() {
		defer close(done)
		a2 = s.attempt(ctx, b2)
	}()
	a1 := s.attempt(ctx, b1)
	<-done
	r2, w2, e2 := s.settle(ctx, b2, false, a2)
	r1, w1, e1 := s.settle(ctx, b1, false, a1)
	return r1 || r2, max(w1, w2), errors.Join(e1, e2)
}

// deliver writes one batch (live or spooled) and settles it: done when
// written or its bad lines dead-lettered; when it should be retried, a
// live batch goes to the spool (or back to the head of the queue without
// one) and a spooled one stays where it is. wait is the server's
// Retry-After, 0 when it gave none.
func (s *Sink) deliver(ctx context.Context, b *batch, fromSpool bool) (retry bool, wait time.Duration, err error) {
	return s.settle(ctx, b, fromSpool, s.attempt(ctx, b))
}

// settle is what deliver does with the outcome of a write.
func (s *Sink) settle(ctx context.Context, b *batch, fromSpool bool, a attempt) (retry bool, wait time.Duration, err error) {
	rest, restN, wait, err := a.rest, a.restN, a.wait, a.err
	if fromSpool {
		s.m.replayed.Add(float64(b.n - restN))
	}
	if restN == 0 {
		if fromSpool {
			s.spool.Ack(b.n)
		} else {
			s.done(b)
		}
		s.markUp()
		return false, 0, nil
	}
	err = fmt.Errorf("write %d lines to influxdb: %w", restN, err)
	switch {
	case fromSpool:
		// Part of it may have landed (a split); writing it again leaves
		// one point per series and time in InfluxDB.
	case s.spool != nil:
		if serr := s.spool.Append(rest, restN); serr == nil {
			s.m.spooled.Add(float64(restN))
			s.done(b)
			break
		} else {
			s.log.Error("spool write failed, keeping the batch in memory", "lines", restN, "err", serr)
		}
		fallthrough
	default:
		if restN != b.n {
			b.buf = append(b.buf[:0], rest...)
			s.mu.Lock()
			s.lines -= b.n - restN
			s.mu.Unlock()
			b.n = restN
		}
		s.requeue(b)
	}
	if ctx.Err() == nil {
		s.markDown(err)
	}
	s.m.writes.WithLabelValues("retry").Inc()
	return true, wait, err
}

// maxSplitWrites bounds the extra requests one batch may cost when it is
// split (413) or bisected to find rejected lines (400): past it, what is
// left of a rejected batch is dead-lettered whole.
const maxSplitWrites = 128

type writeState struct{ budget int }

// write sends n lines and returns what was not delivered and should be
// retried (nothing when all was written or dead-lettered).
func (s *Sink) write(ctx context.Context, buf []byte, n int, w *writeState) (rest []byte, restN int, wait time.Duration, err error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	start := time.Now()
	err = s.w.WriteRecord(wctx, string(buf))
	s.m.writeDuration.Observe(time.Since(start).Seconds())
	cancel()
	if err == nil {
		s.m.written.Add(float64(n))
		s.m.writes.WithLabelValues("success").Inc()
		return nil, 0, 0, nil
	}
	code, msg := statusOf(err)
	if retryable(code) {
		var he *influxhttp.Error
		if (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) && errors.As(err, &he) && he.RetryAfter > 0 {
			wait = time.Duration(he.RetryAfter) * time.Second
		}
		return buf, n, wait, err
	}
	if code == http.StatusRequestEntityTooLarge || n > 1 && w.budget > 0 {
		// 413: too large; other 4xx: find the refused lines by halves.
		if n > 1 && w.budget >= 2 {
			w.budget -= 2
			s.m.writes.WithLabelValues("split").Inc()
			h1, n1, h2, n2 := splitLines(buf, n)
			r1, rn1, wt, e1 := s.write(ctx, h1, n1, w)
			if rn1 > 0 {
				return append(append([]byte(nil), r1...), h2...), rn1 + n2, wt, e1
			}
			return s.write(ctx, h2, n2, w)
		}
	}
	s.m.writes.WithLabelValues("rejected").Inc()
	s.reject(buf, n, code, msg)
	return nil, 0, 0, nil
}

// splitLines cuts buf (n lines) into two halves of whole lines.
func splitLines(buf []byte, n int) ([]byte, int, []byte, int) {
	n1 := n / 2
	off := 0
	for range n1 {
		i := bytes.IndexByte(buf[off:], '\n')
		if i < 0 {
			return buf, n, nil, 0
		}
		off += i + 1
	}
	return buf[:off], n1, buf[off:], n - n1
}

// reject dead-letters lines the server refused.
func (s *Sink) reject(buf []byte, n, code int, msg string) {
	s.rejectMu.Lock() // two writes may be in flight
	defer s.rejectMu.Unlock()
	s.m.failed.WithLabelValues("rejected").Add(float64(n))
	first, _, _ := strings.Cut(string(buf), "\n")
	if s.spool != nil {
		if err := s.spool.deadLetter(buf, code, msg); err != nil {
			s.log.Error("influxdb rejected lines and the dead-letter file failed", "status", code, "err", msg,
				"lines", n, "first_line", first, "dead_letter_err", err)
			return
		}
		s.log.Error("influxdb rejected lines, written to the dead-letter file", "status", code, "err", msg,
			"lines", n, "first_line", first, "file", filepath.Join(s.spool.dir, DeadLetterFile))
		return
	}
	s.log.Error("influxdb rejected lines, dropped", "status", code, "err", msg, "lines", n, "first_line", first)
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

// shutdown ends Run. Without a spool it flushes the queue for at most the
// flush timeout, retrying failed writes, and counts what is left as lost.
// With a spool it writes the queue while InfluxDB takes it, for at most the
// flush timeout and until Hurry is closed, and puts everything else in the
// spool for the next start; it logs what it delivered and what it kept.
func (s *Sink) shutdown(lastErr error) error {
	s.seal()
	ctx, cancel := context.WithTimeout(context.Background(), s.flushTimeout)
	defer cancel()
	if s.hurry != nil {
		// Ends with this function (cancel is deferred).
		go func() {
			select {
			case <-s.hurry:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	delivered := 0
	retries := backoff.New(s.backoffInitial, s.backoffMax, nil)
	for ctx.Err() == nil && !(s.spool != nil && s.state == stateDown) {
		b := s.next()
		if b == nil {
			break
		}
		n := b.n
		retry, wait, err := s.deliver(ctx, b, false)
		if !retry {
			delivered += n
			retries.Reset()
			continue
		}
		lastErr = err
		if s.spool != nil {
			break // the batch is in the spool; so will the rest be
		}
		if wait == 0 {
			wait = retries.Next()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if s.spool != nil {
		s.spill()
	}
	s.mu.Lock()
	left := s.lines - s.cur.n // lines put after the final seal stay in cur
	for s.queue.len() > 0 {
		s.recycleLocked(s.queue.popFront())
	}
	s.lines -= left
	s.m.queueLines.Set(float64(s.lines))
	s.mu.Unlock()
	hurried := false
	if s.hurry != nil {
		select {
		case <-s.hurry:
			hurried = true
		default:
		}
	}
	if s.spool != nil {
		st := s.spool.Stats()
		attrs := []any{"delivered_lines", delivered, "spool_bytes", st.Bytes, "spool_segments", st.Segments, "spool_dir", s.spool.dir}
		if hurried {
			s.log.Warn("second stop request: stopped delivering, what was not written is kept in the spool for the next start", attrs...)
		} else if st.Bytes > 0 {
			s.log.Info("stopped: what was not written is kept in the spool for the next start", attrs...)
		} else {
			s.log.Info("stopped: everything was written", attrs...)
		}
	}
	if left == 0 {
		return nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	s.m.failed.WithLabelValues("shutdown").Add(float64(left))
	s.log.Error("lines not delivered at shutdown and lost", "lines", left, "flush_timeout", s.flushTimeout, "err", lastErr)
	return fmt.Errorf("influx sink: %d lines not delivered within %s: %w", left, s.flushTimeout, lastErr)
}
