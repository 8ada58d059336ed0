// Package poll reads the configured devices over Modbus on their schedules
// and hands every poll's values, with their quality, to a Sink.
//
// Each link (a TCP endpoint, a serial bus, a gateway) is owned by one
// goroutine with one client, because a Modbus link carries one request at a
// time and the unit ID is per client state. That goroutine polls the link's
// devices in turn, each on its own fixed grid of deadlines (starting a poll
// up to a tenth of its interval early, to wake up less often: sched.go),
// reads every device through a plan of coalesced requests (BuildPlan), and
// reopens the link with backoff when it fails. A slow or dead device only delays the
// devices on its own link, and a unit that times out while its neighbours
// answer fails its own polls without closing their link (see link.go).
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/backoff"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// Sink receives the samples of each device poll.
//
// Put is called by a link's goroutine after every poll of one of its
// devices, so calls for devices on different links are concurrent and an
// implementation must be safe for concurrent use. Put must not block for
// long: the link's polls wait for it. The slice is reused by the poller once
// Put returns, so Put must copy what it keeps.
//
// A poll yields one sample per point that is not a string, in point order,
// followed by one device-status sample (Point sample.NoPoint, Flags
// DeviceStatus|EndOfPoll, Quality Good, Value 1 when the device answered at
// least one request normally, 0 otherwise). Every sample of a poll has the
// same Seq, the number of the poll's slot on the device's schedule counted
// from 1, so a gap in Seq means missed polls. Time is when the point's
// response arrived, or when its request failed; a point that is not Good
// has Value 0. A point that got no value is Timeout, or Stale once its last
// good value is StaleAfter intervals old (see link.go).
type Sink interface {
	Put(samples []sample.Sample)
}

// Options configure a Poller. Model, Sink, Logger and Registerer are required.
type Options struct {
	Model *config.Model
	Sink  Sink
	// Logger is used as given; the caller adds the component attribute.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Rand returns numbers in [0, 1) for the reconnect jitter. It is called
	// from every link's goroutine, so it must be safe for concurrent use.
	// Default: math/rand/v2.Float64.
	Rand func() float64
	// Now stamps samples (Unix ns); it must be safe for concurrent use.
	// Default: a sample.Clock of its own. Pass the one the pipeline ticks
	// on, so that samples and time-based detection share one time base.
	Now func() int64
}

func (o *Options) validate() error {
	var errs []error
	if o.Model == nil {
		errs = append(errs, errors.New("model is nil"))
	}
	if o.Sink == nil {
		errs = append(errs, errors.New("sink is nil"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if o.Registerer == nil {
		errs = append(errs, errors.New("registerer is nil"))
	}
	if o.Model != nil {
		errs = append(errs, validateModel(o.Model)...)
	}
	return errors.Join(errs...)
}

// validateModel checks what the poller needs of a model (New's and
// Prepare's).
func validateModel(m *config.Model) []error {
	var errs []error
	if m.Poll.StaleAfter < 1 {
		errs = append(errs, fmt.Errorf("poll stale_after %d is less than 1", m.Poll.StaleAfter))
	}
	onLink := map[*config.Device]bool{}
	for _, l := range m.Links {
		if l == nil {
			errs = append(errs, errors.New("model has a nil link"))
			continue
		}
		for _, d := range l.Devices {
			switch {
			case d == nil:
				errs = append(errs, fmt.Errorf("link %s has a nil device", l.ID))
				continue
			case d.Interval <= 0:
				errs = append(errs, fmt.Errorf("device %s: interval %v is not positive", d.ID, d.Interval))
			case len(d.Points) >= int(sample.NoPoint):
				errs = append(errs, fmt.Errorf("device %s: %d points, at most %d", d.ID, len(d.Points), sample.NoPoint-1))
			default:
				for _, pt := range d.Points {
					if int(pt.RegType) >= len(functionLabels) {
						errs = append(errs, fmt.Errorf("device %s: point %s: unknown register table %v", d.ID, pt.Name, pt.RegType))
					}
				}
			}
			onLink[d] = true
		}
	}
	for _, d := range m.Devices {
		if !onLink[d] {
			errs = append(errs, fmt.Errorf("device %s is on no link's device list", d.ID))
		}
	}
	return errs
}

// DeviceStatus is the comms state of one device, as of its last poll.
type DeviceStatus struct {
	ID   string
	Link string
	// Up is true when the last poll got at least one normal response.
	Up bool
	// LastPoll is when the last poll ended; zero before the first.
	LastPoll time.Time
	// LastGood is when the last poll that found the device up ended.
	LastGood time.Time
	// LastError is the first error of the last poll that had one; it is
	// cleared by a poll in which every request was answered.
	LastError string
	// ConsecutiveFailures counts the polls since the device was last up.
	ConsecutiveFailures int
	// Latency is how long the last poll took, from its first request to
	// its end (0 when no request was sent).
	Latency time.Duration
	// Qualities are the qualities of the last poll's values, one per point
	// that is not a string, in point order.
	Qualities []sample.Quality
}

// Poller polls every device of a model. Build it with New, run it with Run.
// A running Poller follows a new model with Pause, Prepare, Apply and
// Resume (reload.go).
type Poller struct {
	sink Sink
	log  *slog.Logger
	m    *metrics
	now  func() int64
	rand func() float64
	reqs [4][4]prometheus.Counter
	ran  atomic.Bool
	// ready latches once every link of the first model has polled.
	ready atomic.Bool

	// mu guards links and the run state. Run and Apply start link
	// goroutines, each owned by wg, which Run waits for.
	mu       sync.Mutex
	links    []*link // in model order
	runCtx   context.Context
	start    time.Time
	stopping bool
	wg       sync.WaitGroup
	// paused holds the tickets of a Pause until Resume.
	paused map[*link]*parkTicket

	devices atomic.Pointer[[]*device] // in model order
}

// New checks the options and builds the links' clients (loading TLS
// certificates); it opens nothing. It registers the poll metrics on
// opts.Registerer, which must not hold them already.
func New(opts Options) (*Poller, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = sample.NewClock().Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	p := &Poller{sink: opts.Sink, log: opts.Logger, m: newMetrics(opts.Registerer), now: opts.Now, rand: opts.Rand}
	for t, fn := range functionLabels {
		for r, res := range requestResults {
			p.reqs[t][r] = p.m.requests.WithLabelValues(fn, res)
		}
	}
	byConfig := map[*config.Device]*device{}
	for _, lc := range opts.Model.Links {
		l, err := p.newLink(lc, opts.Model)
		if err != nil {
			return nil, err
		}
		l.zeroSeries()
		for _, d := range l.devs {
			byConfig[d.cfg] = d
		}
		p.links = append(p.links, l)
	}
	p.setDevices(opts.Model, byConfig)
	return p, nil
}

// newLink builds the link of lc and its devices' poll state; it opens
// nothing and sets no metric.
func (p *Poller) newLink(lc *config.Link, m *config.Model) (*link, error) {
	log := p.log.With("link", lc.ID)
	timeout := clientTimeout(lc, lc.Devices...)
	client, tlsConf, err := newClient(lc, timeout, limitLogger(log, time.Now))
	if err != nil {
		return nil, err
	}
	l := &link{
		cfg:        lc,
		client:     client,
		tlsConf:    tlsConf,
		timeout:    timeout,
		sink:       p.sink,
		log:        log,
		backoff:    backoff.New(lc.BackoffInitial, lc.BackoffMax, p.rand),
		staleAfter: int64(m.Poll.StaleAfter),
		now:        p.now,
		slotTime:   m.Poll.SlotTime,
		requests:   p.reqs,
		reconnect:  p.m.reconnects.WithLabelValues(lc.ID),
		connected:  p.m.linkConnected.WithLabelValues(lc.ID),
		duration:   p.m.pollDuration.WithLabelValues(lc.ID),
		lateness:   p.m.lateness.WithLabelValues(lc.ID),
		missed:     p.m.missed.WithLabelValues(lc.ID),
		parkReq:    make(chan *parkTicket, 1),
	}
	for i, res := range pollResults {
		l.polls[i] = p.m.polls.WithLabelValues(lc.ID, res)
	}
	for _, dc := range lc.Devices {
		l.devs = append(l.devs, newDevice(dc, lc, p.m, log))
	}
	return l, nil
}

// zeroSeries sets the link's and its devices' gauges to 0 before the link
// runs, so that their series exist from the start.
func (l *link) zeroSeries() {
	l.connected.Set(0)
	for _, d := range l.devs {
		d.up.Set(0)
	}
}

// setDevices publishes the devices of m in model order for Status.
func (p *Poller) setDevices(m *config.Model, byConfig map[*config.Device]*device) {
	devs := make([]*device, 0, len(m.Devices))
	for _, dc := range m.Devices {
		if d := byConfig[dc]; d != nil {
			devs = append(devs, d)
		}
	}
	p.devices.Store(&devs)
}

// Run polls until ctx ends, then returns nil once every link's goroutine has
// ended and its client is closed. A Poller runs once. The goroutines of
// links that Apply starts while Run runs are Run's too.
//
// A link's goroutine cannot interrupt a request in flight or a connection
// attempt, so Run may return up to the link timeout (or the library's dial
// timeout, 5 s, for TCP) after ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("poller already ran")
	}
	p.mu.Lock()
	p.runCtx, p.start = ctx, time.Now()
	for _, l := range p.links {
		p.startLink(l)
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// startLink runs l on a goroutine of wg, with a context of its own so that
// Apply can stop it alone. p.mu is held.
func (p *Poller) startLink(l *link) {
	ctx, cancel := context.WithCancel(p.runCtx)
	l.cancel, l.done = cancel, make(chan struct{})
	// Links started by Apply count their grid of wake-ups (sched.go) from
	// a multiple of maxStep after Run's start, so that they share the
	// wake-ups of the links already running.
	start := p.start
	if since := time.Since(p.start); since > 0 {
		start = p.start.Add((since + maxStep - 1) / maxStep * maxStep)
	}
	p.wg.Go(func() {
		defer close(l.done)
		defer cancel()
		l.run(ctx, start)
	})
}

// Status returns the comms state of every device, in model order. It is
// safe to call at any time from any goroutine.
func (p *Poller) Status() []DeviceStatus {
	devs := *p.devices.Load()
	out := make([]DeviceStatus, len(devs))
	for i, d := range devs {
		d.mu.Lock()
		out[i] = d.status
		out[i].Qualities = slices.Clone(d.status.Qualities)
		d.mu.Unlock()
	}
	return out
}

// Ready returns nil once every link has completed at least one device poll,
// successful or not (a link without devices counts as done), and otherwise
// an error naming the links still waiting. A link whose first connection
// attempt hangs is not ready until the attempt ends. Once ready, the poller
// stays ready: links that a reload adds do not make it unready.
func (p *Poller) Ready() error {
	if p.ready.Load() {
		return nil
	}
	var waiting []string
	p.mu.Lock()
	for _, l := range p.links {
		if !l.polled.Load() && len(l.devs) > 0 {
			waiting = append(waiting, l.cfg.ID)
		}
	}
	p.mu.Unlock()
	if len(waiting) > 0 {
		return fmt.Errorf("no poll completed yet on link %s", strings.Join(waiting, ", "))
	}
	p.ready.Store(true)
	return nil
}

// device is the poll state of one device; only its link's goroutine writes
// it, except status, which Status reads under mu.
type device struct {
	cfg  *config.Device
	plan []Request
	// samples holds one sample per non-string point, then the status sample.
	samples []sample.Sample
	// sampleOf maps a point index to its sample, or -1 for string points.
	sampleOf []int
	// lastGood is, by sample (the status sample excepted), the schedule
	// slot of the poll that last read the point Good; 0 before the first.
	lastGood []int64

	up prometheus.Gauge
	// log writes the device's lines, rate-limited (loglimit.go).
	log *slog.Logger

	mu     sync.Mutex
	status DeviceStatus
}

// Poll results, the indexes of pollResults.
const (
	pollSuccess = iota
	pollPartial
	pollFailure
)

// pollResults are the result label values of feederd_polls_total.
var pollResults = [...]string{"success", "partial", "failure"}

func newDevice(dc *config.Device, lc *config.Link, m *metrics, log *slog.Logger) *device {
	d := &device{
		log:      limitLogger(log, time.Now).With("device", dc.ID),
		cfg:      dc,
		plan:     BuildPlan(dc.Points, dc.Quirks),
		sampleOf: make([]int, len(dc.Points)),
		up:       m.deviceUp.WithLabelValues(dc.ID, lc.ID),
		status:   DeviceStatus{ID: dc.ID, Link: lc.ID},
	}
	d.up.Set(0)
	for i := range dc.Points {
		d.sampleOf[i] = -1
		if dc.Points[i].Type != profile.String {
			d.sampleOf[i] = len(d.samples)
			d.samples = append(d.samples, sample.Sample{Device: dc.Index, Point: uint16(i)})
		}
	}
	d.samples = append(d.samples, sample.Sample{Device: dc.Index, Point: sample.NoPoint})
	d.samples = slices.Clip(d.samples)
	d.lastGood = make([]int64, len(d.samples)-1)
	return d
}

// report records the end of a poll in the device's status and up gauge.
func (d *device) report(result int, end time.Time, latency time.Duration, err error) {
	up := result != pollFailure
	if up {
		d.up.Set(1)
	} else {
		d.up.Set(0)
	}
	d.mu.Lock()
	was := d.status.Up || d.status.LastPoll.IsZero()
	d.status.Up = up
	d.status.LastPoll = end
	d.status.Latency = latency
	d.status.Qualities = d.status.Qualities[:0]
	for _, s := range d.samples[:len(d.samples)-1] {
		d.status.Qualities = append(d.status.Qualities, s.Quality)
	}
	if up {
		d.status.LastGood = end
		d.status.ConsecutiveFailures = 0
	} else {
		d.status.ConsecutiveFailures++
	}
	if err != nil {
		d.status.LastError = err.Error()
	} else if result == pollSuccess {
		d.status.LastError = ""
	}
	d.mu.Unlock()
	switch {
	case was && !up:
		d.log.Warn("device down", "err", err)
	case !was && up:
		d.log.Info("device up")
	}
}
