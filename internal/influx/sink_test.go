package influx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/testenv"
)

// waitTimeout bounds waits for asynchronous delivery; it is a safety net
// against hangs, not a performance limit.
const waitTimeout = 30 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of a counter or gauge, or the sample count
// of a histogram, from reg; labels are name, value pairs.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("metric %s has no series with labels %v", name, labels)
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// recorder is a LineWriter whose answers the test decides. It records the
// batches it accepted.
type recorder struct {
	mu       sync.Mutex
	answers  []error // answers to the next calls; nil entries succeed
	always   error   // answer once answers is used up
	calls    int
	accepted []string
}

func (r *recorder) WriteRecord(ctx context.Context, lines ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	var err error
	if len(r.answers) > 0 {
		err = r.answers[0]
		r.answers = r.answers[1:]
	} else {
		err = r.always
	}
	if err == nil {
		r.accepted = append(r.accepted, strings.Join(lines, "\n"))
	}
	return err
}

func (r *recorder) set(always error) {
	r.mu.Lock()
	r.always = always
	r.mu.Unlock()
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// batches returns the accepted batches as the times (ms) of their lines.
func (r *recorder) batches(t *testing.T) [][]int64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]int64
	for _, b := range r.accepted {
		out = append(out, lineTimes(t, b))
	}
	return out
}

// sortedBatches is batches ordered by their first line: two live batches
// are written at once (Sink.second), so they may land in either order; the
// tests that use it pin what was delivered, not that order.
func (r *recorder) sortedBatches(t *testing.T) [][]int64 {
	t.Helper()
	out := r.batches(t)
	slices.SortStableFunc(out, func(a, b []int64) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// lineTimes returns the trailing timestamps of the lines in b.
func lineTimes(t *testing.T, b string) []int64 {
	t.Helper()
	var ts []int64
	for _, l := range strings.Split(strings.TrimSuffix(b, "\n"), "\n") {
		v, err := strconv.ParseInt(l[strings.LastIndexByte(l, ' ')+1:], 10, 64)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		ts = append(ts, v)
	}
	return ts
}

// pingRecorder is a recorder with a Ping method.
type pingRecorder struct {
	recorder
	pingErr error
}

func (p *pingRecorder) Ping(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pingErr
}

func (p *pingRecorder) setPing(err error) {
	p.mu.Lock()
	p.pingErr = err
	p.mu.Unlock()
}

// seqSamples returns n polls of device 0 that read only point Ia, good,
// each one sample flagged EndOfPoll, so one line each: Seq and Value from
// first to first+n-1, at times from first to first+n-1 ms.
func seqSamples(first, n int) []sample.Sample {
	out := make([]sample.Sample, n)
	for i := range out {
		out[i] = sample.Sample{Time: int64(first+i) * 1e6, Value: float64(first + i), Device: 0, Point: 1,
			Seq: uint32(first + i), Flags: sample.EndOfPoll}
	}
	return out
}

func span(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

type sinkFixture struct {
	sink *Sink
	reg  *prometheus.Registry
	logs *testenv.LockedBuffer
	// enc encodes what put hands the sink, as the pipeline's shard worker
	// does; tests with another model replace it before the first put.
	enc   *Encoder
	batch int
	mu    sync.Mutex
	poll  PollState
}

// put hands samples to the sink the way production does: encoded into line
// protocol (one line per device poll; a poll may be split across calls),
// then PutLines with at most batch_size lines at a time, as the pipeline
// gathers them (its BatchLines is the sink's batch size).
func (f *sinkFixture) put(samples []sample.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	putLines(f.sink, f.enc, &f.poll, f.batch, samples)
}

// putLines encodes samples with enc and state st and hands the lines to s
// in chunks of at most batch lines.
func putLines(s *Sink, enc *Encoder, st *PollState, batch int, samples []sample.Sample) {
	var buf []byte
	n := 0
	for i := range samples {
		var k int
		buf, k = enc.Append(buf, st, samples[i:i+1])
		n += k
		if n >= batch {
			s.PutLines(buf, n)
			buf, n = buf[:0], 0
		}
	}
	if n > 0 {
		s.PutLines(buf, n)
	}
}

func newTestSink(t *testing.T, cfg config.Influx, w LineWriter, tweak func(*SinkOptions)) *sinkFixture {
	t.Helper()
	f := &sinkFixture{reg: prometheus.NewRegistry(), logs: &testenv.LockedBuffer{}}
	f.enc, f.batch = NewEncoder(testModel("")), cfg.BatchSize
	opts := SinkOptions{
		Config:         cfg,
		Logger:         slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:     f.reg,
		Writer:         w,
		BackoffInitial: time.Millisecond,
		BackoffMax:     4 * time.Millisecond,
		PingInterval:   10 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := NewSink(opts)
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	f.sink = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sink log:\n%s", f.logs.String())
		}
	})
	return f
}

// start runs the sink until the returned stop is called; stop returns Run's
// error. A test that does not call stop gets it called at cleanup.
func (f *sinkFixture) start(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sink.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (f *sinkFixture) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metricValue(t, f.reg, name, labels...)
}

func cfgFor(batch, queue int, flush time.Duration) config.Influx {
	return config.Influx{BatchSize: batch, QueueSize: queue, FlushInterval: flush, Timeout: 5 * time.Second}
}

func TestNewSinkRejectsBadOptions(t *testing.T) {
	good := func() SinkOptions {
		return SinkOptions{
			Config:     config.Influx{URL: "http://127.0.0.1:1", Bucket: "db/rp", BatchSize: 10, QueueSize: 100, FlushInterval: time.Second, Timeout: time.Second},
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registerer: prometheus.NewRegistry(),
		}
	}
	tests := []struct {
		name   string
		change func(*SinkOptions)
		want   string
	}{
		{"disabled", func(o *SinkOptions) { o.Config.Disabled = true }, "create influx sink: influx output is disabled"},
		{"no logger", func(o *SinkOptions) { o.Logger = nil }, "create influx sink: no logger"},
		{"no registerer", func(o *SinkOptions) { o.Registerer = nil }, "create influx sink: no metrics registerer"},
		{"zero batch", func(o *SinkOptions) { o.Config.BatchSize = 0 }, "create influx sink: batch size 0 is not positive"},
		{"queue below batch", func(o *SinkOptions) { o.Config.QueueSize = 9 }, "create influx sink: queue size 9 is smaller than batch size 10"},
		{"zero flush interval", func(o *SinkOptions) { o.Config.FlushInterval = 0 }, "create influx sink: flush interval 0s is not positive"},
		{"negative timeout", func(o *SinkOptions) { o.Config.Timeout = -time.Second }, "create influx sink: write timeout -1s is not positive"},
		{"negative backoff", func(o *SinkOptions) { o.BackoffMax = -1 }, "create influx sink: negative flush timeout, backoff or ping interval"},
		{"no url", func(o *SinkOptions) { o.Config.URL = "" }, "create influx sink: no url or bucket"},
		{"no bucket", func(o *SinkOptions) { o.Config.Bucket = "" }, "create influx sink: no url or bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.change(&o)
			s, err := NewSink(o)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewSink error = %v, want %q", err, tt.want)
			}
			if s != nil {
				t.Fatalf("NewSink returned a sink with its error")
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		s, err := NewSink(good())
		if err != nil {
			t.Fatalf("NewSink: %v", err)
		}
		if err := s.Ready(); err == nil || err.Error() != "no answer from influxdb yet" {
			t.Fatalf("Ready before Run = %v, want %q", err, "no answer from influxdb yet")
		}
	})
}

// Without Run nothing leaves the queue, so the drops are exact.
func TestSinkQueueOverflowDropsOldestBatches(t *testing.T) {
	tests := []struct {
		name        string
		batch       int
		queue       int
		puts        []int
		dropped     int
		wantBatches [][]int64 // delivered at shutdown
	}{
		{"one big put", 5, 10, []int{23}, 15, [][]int64{span(15, 5), span(20, 3)}},
		// Lines handed over together stay in one batch: a hand-over that
		// would take the current batch past batch_size seals it first.
		{"small puts", 5, 10, []int{3, 3, 3, 3}, 3, [][]int64{span(3, 3), span(6, 3), span(9, 3)}},
		{"queue not multiple of batch", 5, 12, []int{23}, 15, [][]int64{span(15, 5), span(20, 3)}},
		{"exactly full", 5, 10, []int{10}, 0, [][]int64{span(0, 5), span(5, 5)}},
		{"room", 5, 100, []int{23}, 0, [][]int64{span(0, 5), span(5, 5), span(10, 5), span(15, 5), span(20, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recorder{}
			f := newTestSink(t, cfgFor(tt.batch, tt.queue, time.Hour), w, nil)
			next := 0
			for _, n := range tt.puts {
				f.put(seqSamples(next, n))
				next += n
			}
			if got := f.value(t, "feederd_influx_points_dropped_total", "reason", "queue_full"); got != float64(tt.dropped) {
				t.Errorf("dropped = %v, want %d", got, tt.dropped)
			}
			if got := f.value(t, "feederd_influx_queue_lines"); got != float64(next-tt.dropped) {
				t.Errorf("queue lines = %v, want %d", got, next-tt.dropped)
			}
			if err := f.start(t)(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := w.sortedBatches(t); !slices.EqualFunc(got, tt.wantBatches, slices.Equal) {
				t.Errorf("delivered %v, want %v", got, tt.wantBatches)
			}
			if got := f.value(t, "feederd_influx_points_written_total"); got != float64(next-tt.dropped) {
				t.Errorf("written = %v, want %d", got, next-tt.dropped)
			}
			if got := f.value(t, "feederd_influx_queue_lines"); got != 0 {
				t.Errorf("queue lines after flush = %v, want 0", got)
			}
		})
	}
}

// A failing write puts its batch back at the head of the queue, where it is
// the oldest and the first to be dropped when the queue overflows.
func TestSinkOverflowWhileWritesFail(t *testing.T) {
	w := &recorder{always: &StatusError{StatusCode: 503, Message: "service unavailable"}}
	f := newTestSink(t, cfgFor(5, 10, time.Hour), w, func(o *SinkOptions) {
		o.BackoffInitial = time.Hour // one failure, then Run waits until stopped
	})
	stop := f.start(t)
	f.put(seqSamples(0, 5))
	waitFor(t, "the first write to fail", func() bool {
		return f.value(t, "feederd_influx_writes_total", "result", "retry") == 1
	})
	if err := f.sink.Ready(); err == nil || err.Error() != "write 5 lines to influxdb: http 503: service unavailable" {
		t.Errorf("Ready = %v, want the write error", err)
	}
	f.put(seqSamples(5, 18))
	if got := f.value(t, "feederd_influx_points_dropped_total", "reason", "queue_full"); got != 15 {
		t.Errorf("dropped = %v, want 15", got)
	}
	w.set(nil)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := [][]int64{span(15, 5), span(20, 3)}
	if got := w.sortedBatches(t); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if got := f.value(t, "feederd_influx_points_written_total"); got != 8 {
		t.Errorf("written = %v, want 8", got)
	}
	for _, r := range []string{"rejected", "shutdown"} {
		if got := f.value(t, "feederd_influx_points_failed_total", "reason", r); got != 0 {
			t.Errorf("failed{%s} = %v, want 0", r, got)
		}
	}
	// Lines were dropped less than a minute ago: not ready, and why.
	if err := f.sink.Ready(); err == nil || !strings.HasPrefix(err.Error(), "falling behind: lines dropped ") {
		t.Errorf("Ready after the flush = %v, want the drop reported", err)
	}
}

func TestSinkRetriesUntilDelivered(t *testing.T) {
	w := &recorder{answers: []error{
		errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
		&StatusError{StatusCode: 500, Message: "timeout"},
		&StatusError{StatusCode: 503, Message: "unavailable"},
		&StatusError{StatusCode: 401, Message: "authorization failed"},
		&StatusError{StatusCode: 403, Message: "forbidden"},
		&influxhttp.Error{StatusCode: 404, Code: "404 Not Found", Message: `database not found: "feederd"`},
		&StatusError{StatusCode: 408, Message: "request timeout"},
		&StatusError{StatusCode: 429, Message: "too many requests"},
		fmt.Errorf("wrapped: %w", context.DeadlineExceeded),
	}}
	f := newTestSink(t, cfgFor(5, 100, 10*time.Millisecond), w, nil)
	f.put(seqSamples(0, 7))
	f.put(seqSamples(7, 5))
	stop := f.start(t)
	waitFor(t, "12 lines written", func() bool {
		return f.value(t, "feederd_influx_points_written_total") == 12
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The pipeline hands over at most batch_size lines at a time, and a
	// hand-over that does not fit the current batch starts the next one.
	want := [][]int64{span(0, 5), span(5, 2), span(7, 5)}
	if got := w.sortedBatches(t); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delivered %v, want %v (each once)", got, want)
	}
	if got := f.value(t, "feederd_influx_writes_total", "result", "retry"); got != 9 {
		t.Errorf("retries = %v, want 9", got)
	}
	if got := f.value(t, "feederd_influx_write_duration_seconds"); got != 12 {
		t.Errorf("write duration observations = %v, want 12", got)
	}
	if got := f.value(t, "feederd_influx_points_failed_total", "reason", "rejected"); got != 0 {
		t.Errorf("rejected = %v, want 0", got)
	}
	if strings.Count(f.logs.String(), "influxdb unavailable, queueing") != 1 {
		t.Errorf("want one warning for the outage, log:\n%s", f.logs.String())
	}
}

// rejecter is a LineWriter that refuses, with err, every batch holding a
// line whose time is in bad, or more than maxLines lines; it accepts the
// rest.
type rejecter struct {
	recorder
	bad      map[int64]bool
	maxLines int
	err      error
}

func (r *rejecter) WriteRecord(ctx context.Context, lines ...string) error {
	b := strings.Join(lines, "\n")
	ts := lineTimesOf(b)
	refuse := r.maxLines > 0 && len(ts) > r.maxLines
	for _, x := range ts {
		refuse = refuse || r.bad[x]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if refuse {
		return r.err
	}
	r.accepted = append(r.accepted, b)
	return nil
}

func lineTimesOf(b string) []int64 {
	var ts []int64
	for l := range strings.SplitSeq(strings.TrimSuffix(b, "\n"), "\n") {
		v, _ := strconv.ParseInt(l[strings.LastIndexByte(l, ' ')+1:], 10, 64)
		ts = append(ts, v)
	}
	return ts
}

// TestSinkRejectedLines: the lines a server refuses as bad data are found
// by halves and given up (to the log without a spool); the others land.
// A 413 splits the batch until it fits.
func TestSinkRejectedLines(t *testing.T) {
	tests := []struct {
		name       string
		w          *rejecter
		written    float64
		rejected   float64
		splits     float64
		logFirst   string // first line of the refused lines in the log
		dataLogged bool
	}{
		{"bad line", &rejecter{bad: map[int64]bool{2: true},
			err: &StatusError{StatusCode: 400, Message: "unable to parse 'x': missing fields"}},
			7, 1, 3, `feeder_point,area=n,device=F101-R1,feeder=F101,substation=North\ Yard current_a=2,seq=2i 2`, true},
		{"partial write", &rejecter{bad: map[int64]bool{0: true, 7: true},
			err: &influxhttp.Error{StatusCode: 400, Code: "400 Bad Request", Message: "partial write: field type conflict dropped=1"}},
			6, 2, 5, `feeder_point,area=n,device=F101-R1,feeder=F101,substation=North\ Yard current_a=0,seq=0i 0`, true},
		{"unprocessable", &rejecter{bad: map[int64]bool{4: true}, err: &StatusError{StatusCode: 422, Message: "unprocessable"}},
			7, 1, 3, `feeder_point,area=n,device=F101-R1,feeder=F101,substation=North\ Yard current_a=4,seq=4i 4`, true},
		{"too large", &rejecter{maxLines: 2, err: &StatusError{StatusCode: 413, Message: "Request Entity Too Large"}},
			8, 0, 3, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestSink(t, cfgFor(8, 100, 10*time.Millisecond), tt.w, nil)
			stop := f.start(t)
			f.put(seqSamples(0, 8))
			waitFor(t, "every line settled", func() bool {
				return f.value(t, "feederd_influx_points_written_total")+
					f.value(t, "feederd_influx_points_failed_total", "reason", "rejected") == 8
			})
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := f.value(t, "feederd_influx_points_written_total"); got != tt.written {
				t.Errorf("written = %v, want %v", got, tt.written)
			}
			if got := f.value(t, "feederd_influx_points_failed_total", "reason", "rejected"); got != tt.rejected {
				t.Errorf("rejected = %v, want %v", got, tt.rejected)
			}
			if got := f.value(t, "feederd_influx_writes_total", "result", "split"); got != tt.splits {
				t.Errorf("splits = %v, want %v", got, tt.splits)
			}
			var got []int64
			for _, b := range tt.w.batches(t) {
				got = append(got, b...)
			}
			slices.Sort(got)
			var want []int64
			for i := range int64(8) {
				if !tt.w.bad[i] {
					want = append(want, i)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("delivered %v, want %v", got, want)
			}
			logs := f.logs.String()
			if n := strings.Count(logs, `msg="influxdb rejected lines, dropped"`); n != int(tt.rejected) {
				t.Errorf("%d log lines for rejected lines, want %v:\n%s", n, tt.rejected, logs)
			}
			if tt.dataLogged && !strings.Contains(logs, "first_line="+strconv.Quote(tt.logFirst)) {
				t.Errorf("log lacks the first refused line %q:\n%s", tt.logFirst, logs)
			}
			if err := f.sink.Ready(); err != nil {
				t.Errorf("Ready = %v, want nil: the server answered", err)
			}
		})
	}
}

func TestSinkReadyFollowsServer(t *testing.T) {
	w := &pingRecorder{}
	f := newTestSink(t, cfgFor(5, 100, 5*time.Millisecond), w, nil)
	if err := f.sink.Ready(); err == nil {
		t.Fatal("Ready before Run = nil, want an error")
	}
	f.start(t)
	waitFor(t, "ready after a ping", func() bool { return f.sink.Ready() == nil })
	if got := f.value(t, "feederd_influx_up"); got != 1 {
		t.Errorf("up = %v, want 1", got)
	}

	w.setPing(errors.New("connection refused"))
	waitFor(t, "not ready after a failed ping", func() bool { return f.sink.Ready() != nil })
	if err := f.sink.Ready(); err.Error() != "ping influxdb: connection refused" {
		t.Errorf("Ready = %q, want %q", err, "ping influxdb: connection refused")
	}
	if got := f.value(t, "feederd_influx_up"); got != 0 {
		t.Errorf("up = %v, want 0", got)
	}

	w.setPing(nil)
	waitFor(t, "ready again", func() bool { return f.sink.Ready() == nil })

	w.set(&StatusError{StatusCode: 502, Message: "bad gateway"})
	f.put(seqSamples(0, 5))
	waitFor(t, "not ready after a failed write", func() bool { return f.sink.Ready() != nil })
	if err := f.sink.Ready(); err.Error() != "write 5 lines to influxdb: http 502: bad gateway" {
		t.Errorf("Ready = %q", err)
	}
	w.set(nil)
	waitFor(t, "ready after the write went through", func() bool { return f.sink.Ready() == nil })
	if got := f.value(t, "feederd_influx_points_written_total"); got != 5 {
		t.Errorf("written = %v, want 5", got)
	}
}

func TestSinkConcurrentPutsDeliverEachLineOnce(t *testing.T) {
	const producers, perProducer = 8, 1000
	w := &recorder{}
	f := newTestSink(t, cfgFor(100, producers*perProducer, 5*time.Millisecond), w, nil)
	stop := f.start(t)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			// One encoder state per producer, as each shard worker has its own.
			var st PollState
			for i := 0; i < perProducer; i += 10 {
				putLines(f.sink, f.enc, &st, 100, seqSamples(p*perProducer+i, 10))
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var all []int64
	for _, b := range w.batches(t) {
		if len(b) > 100 {
			t.Errorf("batch of %d lines, want at most 100", len(b))
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if !slices.Equal(all, span(0, producers*perProducer)) {
		t.Errorf("delivered %d lines, want each of %d exactly once", len(all), producers*perProducer)
	}
	if got := f.value(t, "feederd_influx_points_dropped_total", "reason", "queue_full"); got != 0 {
		t.Errorf("dropped = %v, want 0", got)
	}
}

func TestSinkPutLines(t *testing.T) {
	w := &recorder{}
	f := newTestSink(t, cfgFor(3, 100, time.Hour), w, nil)
	f.sink.PutLines([]byte("ev a=1 1\nev a=2 2\n"), 2)
	f.sink.PutLines(nil, 0)
	f.put(seqSamples(3, 2))
	f.sink.PutLines([]byte("ev a=6 6"), 1) // the newline is added
	if err := f.start(t)(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := [][]int64{{1, 2}, {3, 4, 6}}
	if got := w.sortedBatches(t); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestSinkRunTwice(t *testing.T) {
	f := newTestSink(t, cfgFor(5, 10, time.Hour), &recorder{}, nil)
	f.start(t)
	waitFor(t, "Run to start", func() bool { return f.sink.running.Load() })
	err := f.sink.Run(context.Background())
	if err == nil || err.Error() != "influx sink: Run called twice" {
		t.Fatalf("second Run = %v", err)
	}
}

// hangingServer accepts connections and never answers.
func hangingServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	acc := make(chan struct{}, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case acc <- struct{}{}:
			default:
			}
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), acc
}

func TestSinkShutdownBoundedWhileServerHangs(t *testing.T) {
	addr, accepted := hangingServer(t)
	const flushTimeout = 300 * time.Millisecond
	cfg := config.Influx{URL: "http://" + addr, Bucket: "feederd/autogen", BatchSize: 5, QueueSize: 100,
		FlushInterval: 10 * time.Millisecond, Timeout: time.Minute}
	f := newTestSink(t, cfg, nil, func(o *SinkOptions) { o.FlushTimeout = flushTimeout })
	f.put(seqSamples(0, 7))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sink.Run(ctx) }()
	<-accepted
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("Run did not return %s after cancel (flush timeout %s)", waitTimeout, flushTimeout)
	}
	t.Logf("Run returned %s after cancel", time.Since(start))
	if err == nil || !strings.HasPrefix(err.Error(), "influx sink: 7 lines not delivered within 300ms: ") {
		t.Errorf("Run = %v, want 7 lines not delivered", err)
	}
	if got := f.value(t, "feederd_influx_points_failed_total", "reason", "shutdown"); got != 7 {
		t.Errorf("failed{shutdown} = %v, want 7", got)
	}
	if got := f.value(t, "feederd_influx_queue_lines"); got != 0 {
		t.Errorf("queue lines = %v, want 0", got)
	}
	if f.sink.Ready() == nil {
		t.Errorf("Ready = nil while the server never answered")
	}
}

// BenchmarkSinkPutLines: the production path into the sink, 100 encoded
// lines (one-point polls) at a time, as a shard worker hands them over.
func BenchmarkSinkPutLines(b *testing.B) {
	s, err := NewSink(SinkOptions{
		Config:     cfgFor(5000, 20000, time.Hour),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
		Writer:     &recorder{},
	})
	if err != nil {
		b.Fatal(err)
	}
	var st PollState
	lines, n := NewEncoder(testModel("")).Append(nil, &st, seqSamples(0, 100))
	for range 1000 { // grow the buffers and fill the free list first
		s.PutLines(lines, n)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.PutLines(lines, n) // without Run the queue overflows and recycles its buffers
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/line")
}

// batchQueue against a slice model, through wrap-arounds and growth.
func TestBatchQueue(t *testing.T) {
	var q batchQueue
	var model []*batch
	next := 0
	ops := "bbbbbbbfpppbbbbbbbbbbbbfffpppppppppbbbbbbbbbbbbbbbbbbbbpfbpfbpppppppppppppppppppppppp"
	for i, op := range ops {
		switch op {
		case 'b':
			b := &batch{n: next}
			next++
			q.pushBack(b)
			model = append(model, b)
		case 'f':
			b := &batch{n: next}
			next++
			q.pushFront(b)
			model = slices.Insert(model, 0, b)
		case 'p':
			if got, want := q.popFront(), model[0]; got != want {
				t.Fatalf("op %d: popFront = batch %d, want %d", i, got.n, want.n)
			}
			model = model[1:]
		}
		if q.len() != len(model) {
			t.Fatalf("op %d: len = %d, want %d", i, q.len(), len(model))
		}
	}
	for _, want := range model {
		if got := q.popFront(); got != want {
			t.Fatalf("drain: popFront = batch %d, want %d", got.n, want.n)
		}
	}
	if q.len() != 0 {
		t.Fatalf("len = %d after draining, want 0", q.len())
	}
}

// TestSinkSecondStopSpools: while the final flush hangs on a server that
// never answers, a second stop request (Hurry) ends it at once; every line
// goes to the spool, Run returns nil and the log says what was kept.
func TestSinkSecondStopSpools(t *testing.T) {
	addr, accepted := hangingServer(t)
	cfg := config.Influx{URL: "http://" + addr, Bucket: "feederd/autogen", BatchSize: 5, QueueSize: 100,
		FlushInterval: 10 * time.Millisecond, Timeout: time.Minute}
	dir := t.TempDir()
	hurry := make(chan struct{})
	f := newTestSink(t, cfg, nil, func(o *SinkOptions) {
		o.FlushTimeout = time.Minute
		o.Spool = openSpoolFor(t, dir, 1<<20)
		o.Hurry = hurry
	})
	f.put(seqSamples(0, 7))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sink.Run(ctx) }()
	<-accepted // the first ping
	cancel()
	// Usually the final flush's write hangs by now; if not, the flush
	// sees the second request before it writes: the outcome is the same.
	time.Sleep(100 * time.Millisecond)
	close(hurry)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil: every line is in the spool", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the second stop request")
	}
	if got := f.value(t, "feederd_influx_points_spooled_total"); got != 7 {
		t.Errorf("spooled = %v, want 7", got)
	}
	if got := f.value(t, "feederd_influx_points_failed_total", "reason", "shutdown"); got != 0 {
		t.Errorf("failed{shutdown} = %v, want 0", got)
	}
	g := openTestSpool(t, dir, 1<<20, 1<<20)
	var ts []int64
	for _, b := range g.drain(t) {
		ts = append(ts, lineTimesOf(b)...)
	}
	if !slices.Equal(ts, span(0, 7)) {
		t.Errorf("spool holds lines at %v, want %v", ts, span(0, 7))
	}
	if logs := f.logs.String(); !strings.Contains(logs, `msg="second stop request: stopped delivering, what was not written is kept in the spool for the next start" delivered_lines=0 spool_bytes=`) {
		t.Errorf("log lacks what was kept:\n%s", logs)
	}
}

// TestSinkSpoolBudget: with InfluxDB down and a spool budget far smaller
// than the outage, the oldest spooled lines are dropped, counted by
// reason and logged once; every line put is either still spooled or
// counted as dropped.
func TestSinkSpoolBudget(t *testing.T) {
	w := &recorder{always: &StatusError{StatusCode: 503, Message: "service unavailable"}}
	dir := t.TempDir()
	spoolLogs := &testenv.LockedBuffer{}
	sp, err := OpenSpool(SpoolOptions{Dir: dir, MaxBytes: 4 << 10, Logger: slog.New(slog.NewTextHandler(spoolLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := newTestSink(t, cfgFor(5, 10, time.Millisecond), w, func(o *SinkOptions) {
		o.BackoffInitial = time.Hour // one failure, then everything is spooled
		o.Spool = sp
	})
	stop := f.start(t)
	f.put(seqSamples(0, 5))
	waitFor(t, "the first write to fail", func() bool {
		return f.value(t, "feederd_influx_writes_total", "result", "retry") == 1
	})
	for i := 5; i < 500; i += 5 {
		f.put(seqSamples(i, 5))
	}
	waitFor(t, "everything spooled or dropped", func() bool { return f.value(t, "feederd_influx_queue_lines") == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dropped := f.value(t, "feederd_influx_points_dropped_total", "reason", "spool_budget")
	g := openTestSpool(t, dir, 4<<10, 0)
	var ts []int64
	for _, b := range g.drain(t) {
		ts = append(ts, lineTimesOf(b)...)
	}
	if dropped == 0 || int(dropped)+len(ts) != 500 {
		t.Errorf("dropped %v, %d spooled: want both > 0, 500 in all", dropped, len(ts))
	}
	if len(ts) == 0 || !slices.Equal(ts, span(500-len(ts), len(ts))) {
		t.Errorf("spool holds %v, want the newest lines in order", ts)
	}
	if n := strings.Count(spoolLogs.String(), "spool over its disk budget"); n != 1 {
		t.Errorf("%d budget log lines, want 1:\n%s", n, spoolLogs.String())
	}
	if err := f.sink.Ready(); err == nil {
		t.Error("Ready = nil after drops")
	}
}

// TestSinkRetryAfterAndCredentials: a 429 with Retry-After: 1 is retried
// no sooner than a second later although the backoff is 1 ms; a 401 is
// reported as a credentials fault, and the batch kept and delivered.
func TestSinkRetryAfterAndCredentials(t *testing.T) {
	t.Run("retry-after", func(t *testing.T) {
		w := &timedRecorder{recorder: recorder{answers: []error{
			&influxhttp.Error{StatusCode: 429, Code: "429", Message: "too many requests", RetryAfter: 1},
		}}}
		f := newTestSink(t, cfgFor(5, 100, time.Millisecond), w, nil)
		f.start(t)
		f.put(seqSamples(0, 5))
		waitFor(t, "5 lines written", func() bool { return f.value(t, "feederd_influx_points_written_total") == 5 })
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.at) != 2 || w.at[1].Sub(w.at[0]) < time.Second {
			t.Errorf("write times %v: want the retry a second or more after the 429", w.at)
		}
	})
	t.Run("401", func(t *testing.T) {
		w := &recorder{answers: []error{&StatusError{StatusCode: 401, Message: "authorization failed"}}}
		f := newTestSink(t, cfgFor(5, 100, time.Millisecond), w, nil)
		f.start(t)
		f.put(seqSamples(0, 5))
		waitFor(t, "5 lines written", func() bool { return f.value(t, "feederd_influx_points_written_total") == 5 })
		want := `msg="influxdb refused feederd's credentials: check the token (influx.token_env or token_file) and its write permission on the bucket; keeping the data" err="write 5 lines to influxdb: http 401: authorization failed"`
		if logs := f.logs.String(); !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	})
}

// timedRecorder records when each write came.
type timedRecorder struct {
	recorder
	at []time.Time
}

func (r *timedRecorder) WriteRecord(ctx context.Context, lines ...string) error {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	return r.recorder.WriteRecord(ctx, lines...)
}

// inflight is a recorder that holds each write for a while and counts how
// many are under way at once.
type inflight struct {
	recorder
	hold     time.Duration
	cur, top atomic.Int32
}

func (r *inflight) WriteRecord(ctx context.Context, lines ...string) error {
	n := r.cur.Add(1)
	for {
		m := r.top.Load()
		if n <= m || r.top.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(r.hold)
	r.cur.Add(-1)
	return r.recorder.WriteRecord(ctx, lines...)
}

// TestSinkTwoWritesInFlight: while InfluxDB answers, two live batches are
// written at once, never more; each line lands once; and a pair whose
// writes both fail goes back to the queue in its order.
func TestSinkTwoWritesInFlight(t *testing.T) {
	w := &inflight{hold: 20 * time.Millisecond}
	f := newTestSink(t, cfgFor(2, 100, time.Hour), w, nil)
	stop := f.start(t)
	// A first write marks InfluxDB up; then 10 batches are queued at once.
	f.put(seqSamples(1, 2))
	deadline := time.Now().Add(5 * time.Second)
	for w.callCount() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for i := range 10 {
		f.put(seqSamples(3+2*i, 2))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := w.top.Load(); got != 2 {
		t.Errorf("at most %d writes were in flight, want 2", got)
	}
	var all []int64
	for _, b := range w.batches(t) {
		all = append(all, b...)
	}
	slices.Sort(all)
	want := make([]int64, 22)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(all, want) {
		t.Errorf("delivered %v, want each of 1..22 once", all)
	}

	// Both writes of a pair fail (no spool): the batches are retried and
	// land in their order.
	r := &recorder{answers: []error{nil, errors.New("connection reset"), errors.New("connection reset")}}
	f = newTestSink(t, cfgFor(2, 100, time.Hour), r, nil)
	stop = f.start(t)
	f.put(seqSamples(1, 2))
	for r.callCount() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	f.put(seqSamples(3, 4))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := r.batches(t), [][]int64{{1, 2}, {3, 4}, {5, 6}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}
