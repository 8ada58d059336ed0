package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/topology"
)

// LineSink takes complete lines of line protocol; influx.Sink is one. It
// must copy b before returning and must not block for long.
type LineSink interface {
	PutLines(b []byte, n int)
}

// Encoder writes what one shard produces as line protocol, each line ending
// in '\n' (influx.Lines is the one feederd uses). One shard worker owns an
// Encoder; the pipeline calls AppendPolls once per batch of samples, never
// per sample.
type Encoder interface {
	// AppendPolls appends one line per device poll that samples complete
	// and returns how many. The samples of a poll come in a row but may be
	// split between calls: the Encoder keeps the line of the open poll.
	AppendPolls(dst []byte, samples []sample.Sample) ([]byte, int)
	// FlushPoll appends the line of a poll left open, if any (0 or 1).
	FlushPoll(dst []byte) ([]byte, int)
	AppendEvent(dst []byte, ev *detect.Event) []byte
	AppendOutage(dst []byte, o *grid.Outage) []byte
	AppendReliability(dst []byte, feeder string, a grid.Accumulator, t int64) []byte
}

// Device is what the pipeline knows of one device.
type Device struct {
	detect.DeviceInfo
	// Float32 marks the phases (A, B, C) whose voltage point is read with
	// float32 precision, so that /metrics shows their shortest form.
	Float32 [3]bool
}

// Table is what a pipeline is built from, and what Apply replaces: the
// devices, the feeders' topology, detection's parameters and the encoder.
// The composition root derives it from the configuration.
type Table struct {
	// Devices in index order: Devices[i].Index == i, the
	// sample.Sample.Device of the device's samples.
	Devices []Device
	// Topology holds the feeders; a node's Spec is its device's index.
	Topology *topology.Topology
	Detect   detect.Params
	// NewEncoder returns one shard's Encoder; nil encodes nothing (Lines
	// then receives nothing either).
	NewEncoder func() Encoder
}

// Options configure a Pipeline.
type Options struct {
	Table Table
	// Lines receives measurements and events; nil writes nothing.
	Lines      LineSink
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Shards is the number of rings and workers; 0 means GOMAXPROCS. It
	// is fixed for the pipeline's life (Apply keeps it).
	Shards int
	// RingSize is each shard's ring capacity (a power of two).
	RingSize int
	Policy   ring.Policy
	// BatchLines is how many lines a worker gathers before it hands them
	// to Lines (default 1000).
	BatchLines int
	// TickEvery is how often a worker runs time-based detection, publishes
	// its snapshot and hands partial batches on (default 1s).
	TickEvery time.Duration
	// Linger is how long a worker woken by a poll waits for the polls that
	// finish right after it, so that it wakes once for all of them; detection
	// runs up to Linger later. 0: no wait.
	Linger time.Duration
	// Now is the time base of time-based detection, in Unix ns: the one
	// that stamps the samples (default: a sample.Clock of its own).
	Now func() int64
	// StatePath is the file that carries detection's events in progress
	// across a restart: read by New, written when Run returns. Empty: none.
	StatePath string
	// Outages keeps each feeder's outages and reliability sums across
	// restarts; nil keeps nothing.
	Outages grid.Store
	// OnOutage receives every outage change, on a shard worker's goroutine
	// (or Apply's, while the workers are parked): it must not block (the
	// alert dispatcher queues). The *Change is only
	// valid during the call.
	OnOutage func(*grid.Change)
}

// Pipeline routes samples to the shard of their feeder and runs one worker
// per shard. Put is safe for concurrent use; everything behind it has one
// writer per shard and takes no lock on the sample path.
type Pipeline struct {
	opts    Options
	log     *slog.Logger
	shards  []*shard
	tab     atomic.Pointer[table]
	stream  *Stream
	metrics *metrics
	running atomic.Bool
	// quiet is set by Quiesce: the producers are stopping.
	quiet atomic.Bool
	// held is set by Apply and cleared by the next Put: time-based
	// detection waits for the producers to resume (see Apply).
	held atomic.Bool
	// gen counts the snapshots the shard workers published.
	gen atomic.Uint64
	// resumed: the events in progress New continued from the state file.
	resumed []detect.Event
	// applyMu makes Apply calls one at a time.
	applyMu sync.Mutex
	// stopped is closed once Run's context has ended.
	stopped     chan struct{}
	stoppedOnce sync.Once
}

// table is a Table with the routing derived from it.
type table struct {
	Table
	byDev       []uint16 // device index -> shard
	feederShard map[string]int
	// gen counts the tables: 1 for New's, one more for each Apply.
	gen uint64
}

type shard struct {
	id   int
	ring *ring.Ring[sample.Sample]
	// det, out and enc change only while the worker is parked (Apply).
	det  *detect.Detector
	enc  Encoder
	snap atomic.Pointer[[]detect.DeviceState]
	// out is the shard's outage logic; outSnap what readers see of it.
	out     *grid.Engine
	outSnap atomic.Pointer[outageSnapshot]
	// ctl takes Apply's request to park; closing *stop (wake) ends the
	// worker's wait for samples, so that it sees ctl and ctx.
	ctl  chan *parking
	stop atomic.Pointer[chan struct{}]
	// Owned by the worker goroutine:
	lines  []byte
	nLines int
	// outChanged: an outage changed since outSnap was published.
	outChanged bool
	// statsBase is what detectors replaced by Apply had counted.
	statsBase detect.Stats
	// foreign and late are detection's counts of samples it could not take
	// as they came (Detector.Stats), published by the worker at each tick.
	foreign, late atomic.Uint64
	samples       prometheus.Counter
	events        *[detect.NumKinds][3]prometheus.Counter
	p             *Pipeline
}

// New builds the shards and assigns each feeder to one, round robin in the
// order feeders first appear in the table, tied feeders together.
func New(opts Options) (*Pipeline, error) {
	if opts.Table.Topology == nil || opts.Logger == nil || opts.Registerer == nil {
		return nil, errors.New("pipeline: table with topology, logger and registerer are required")
	}
	if opts.Shards < 0 {
		return nil, fmt.Errorf("pipeline: %d shards", opts.Shards)
	}
	if opts.Shards == 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	if opts.RingSize == 0 {
		opts.RingSize = 1 << 16
	}
	if opts.BatchLines <= 0 {
		opts.BatchLines = 1000
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = sample.NewClock().Now
	}
	if err := checkTable(&opts.Table, opts.RingSize); err != nil {
		return nil, err
	}
	p := &Pipeline{opts: opts, log: opts.Logger, stopped: make(chan struct{})}
	p.metrics = newMetrics(opts.Registerer)
	p.stream = newStream(p.metrics.streamDrops)

	fs := assignShards(opts.Table.Devices, opts.Table.Topology, opts.Shards, nil)
	// Fewer feeders than shards: idle shards would only cost memory.
	n := min(opts.Shards, max(len(fs), 1))
	tab := newTable(opts.Table, fs, 1)
	for i := range n {
		r, err := ring.New[sample.Sample](opts.RingSize, opts.Policy)
		if err != nil {
			return nil, fmt.Errorf("pipeline: shard %d ring: %w", i, err)
		}
		sh := &shard{id: i, ring: r, p: p, ctl: make(chan *parking, 1)}
		stop := make(chan struct{})
		sh.stop.Store(&stop)
		label := strconv.Itoa(i)
		sh.samples = p.metrics.samples.WithLabelValues(label)
		sh.events = &p.metrics.events
		p.metrics.watchRing(label, r)
		p.metrics.watchDetect(label, sh)
		p.shards = append(p.shards, sh)
	}
	built, err := p.build(tab, opts.Outages)
	if err != nil {
		return nil, err
	}
	p.tab.Store(tab)
	for i, sh := range p.shards {
		sh.det, sh.out, sh.enc = built[i].det, built[i].out, built[i].enc
		sh.publishOutages()
		if opts.OnOutage != nil {
			// Outages carried over a restart are announced again, so that
			// their alerts are live from the first moment.
			for _, o := range sh.outSnap.Load().active {
				opts.OnOutage(&grid.Change{Kind: grid.OutageUpdated, Outage: o, Feeder: o.Feeder, Time: opts.Now()})
			}
		}
		empty := sh.det.Snapshot()
		sh.snap.Store(&empty)
	}
	if opts.StatePath != "" {
		if err := p.loadState(opts.StatePath); err != nil {
			p.log.Error("detection state not resumed: events in progress at the last shutdown stay open in InfluxDB",
				"err", err)
		}
		for _, sh := range p.shards {
			st := sh.det.Snapshot()
			sh.snap.Store(&st)
		}
	}
	if err := opts.Registerer.Register(newStateCollector(p)); err != nil {
		return nil, fmt.Errorf("pipeline: register device state metrics: %w", err)
	}
	if err := opts.Registerer.Register(newOutageCollector(p)); err != nil {
		return nil, fmt.Errorf("pipeline: register outage metrics: %w", err)
	}
	return p, nil
}

// checkTable rejects a table the pipeline cannot run.
func checkTable(t *Table, ringSize int) error {
	if t.Topology == nil {
		return errors.New("pipeline: table has no topology")
	}
	for i := range t.Devices {
		d := &t.Devices[i]
		if d.Index != uint32(i) {
			return fmt.Errorf("pipeline: device %s has index %d at position %d", d.ID, d.Index, i)
		}
		// A poll must fit in a ring: a larger one could never arrive whole.
		if n := len(d.PointRoles) + 1; n > ringSize {
			return fmt.Errorf("pipeline: device %s yields %d samples a poll, more than a ring holds (%d): raise pipeline.ring_size", d.ID, n, ringSize)
		}
	}
	return nil
}

func newTable(t Table, feederShard map[string]int, gen uint64) *table {
	tab := &table{Table: t, byDev: make([]uint16, len(t.Devices)), feederShard: feederShard, gen: gen}
	for i := range t.Devices {
		tab.byDev[i] = uint16(feederShard[t.Devices[i].Feeder])
	}
	return tab
}

// shardParts are a shard's detection, outage logic and encoder for one table.
type shardParts struct {
	det *detect.Detector
	out *grid.Engine
	enc Encoder
}

// build makes every shard's parts for tab; it changes nothing.
func (p *Pipeline) build(tab *table, store grid.Store) ([]shardParts, error) {
	perShard := make([][]detect.DeviceInfo, len(p.shards))
	for i := range tab.Devices {
		s := tab.byDev[i]
		perShard[s] = append(perShard[s], tab.Devices[i].DeviceInfo)
	}
	out := make([]shardParts, len(p.shards))
	for i, sh := range p.shards {
		var err error
		out[i].det, err = detect.New(tab.Detect, perShard[i], sh.emit)
		if err != nil {
			return nil, fmt.Errorf("pipeline: shard %d detection: %w", i, err)
		}
		var feeders []string
		for f, s := range tab.feederShard {
			if s == i {
				feeders = append(feeders, f)
			}
		}
		slices.Sort(feeders)
		out[i].out, err = grid.NewEngine(tab.Topology, feeders, grid.Params{SustainedAfter: tab.Detect.SustainedAfter}, store, sh.emitOutage)
		if err != nil {
			return nil, fmt.Errorf("pipeline: shard %d outages: %w", i, err)
		}
		if tab.NewEncoder != nil {
			out[i].enc = tab.NewEncoder()
		}
	}
	return out, nil
}

// Shards returns the number of shards in use.
func (p *Pipeline) Shards() int { return len(p.shards) }

// Events is the in-process event stream (see Stream).
func (p *Pipeline) Events() *Stream { return p.stream }

// Resumed returns the events in progress that New continued from the state
// file of the last run (Stage StageStart, FlagGap set), in shard order. They
// are not published on the stream again; their ends are, like any other
// event's. Subscribers that keep something live per open event (alerts)
// take these at start.
func (p *Pipeline) Resumed() []detect.Event { return slices.Clone(p.resumed) }

// Put routes samples to their shard, each run of samples of one shard (a
// device poll is one) with a single PutBatch. It never blocks: a full ring
// drops by its policy and counts the drop.
func (p *Pipeline) Put(samples []sample.Sample) {
	if p.held.Load() {
		p.held.Store(false)
	}
	byDev := p.tab.Load().byDev
	for len(samples) > 0 {
		d := samples[0].Device
		if int(d) >= len(byDev) {
			// Not a device of the model: a caller's bug, counted.
			p.metrics.lostUnknown.Inc()
			samples = samples[1:]
			continue
		}
		sh := byDev[d]
		n := 1
		for n < len(samples) && int(samples[n].Device) < len(byDev) && byDev[samples[n].Device] == sh {
			n++
		}
		r := p.shards[sh].ring
		// A full ring counts its own drops; a closed one refuses silently.
		if q := r.PutBatch(samples[:n]); q < n && r.Closed() {
			p.metrics.lostClosed.Add(float64(n - q))
		}
		samples = samples[n:]
	}
}

// Generation changes whenever a worker publishes a new snapshot (and at
// each Apply), so a reader polling Snapshot can skip building one that
// cannot have changed (each is a slice of every device).
func (p *Pipeline) Generation() uint64 { return p.gen.Load() }

// Snapshot returns the detection state of every device of the current
// table, indexed by device index, as last published by the workers (at
// most TickEvery old). It builds a new slice on each call, without
// sorting: device indexes are dense.
func (p *Pipeline) Snapshot() []detect.DeviceState {
	devs := p.tab.Load().Devices
	out := make([]detect.DeviceState, len(devs))
	for _, sh := range p.shards {
		for _, st := range *sh.snap.Load() {
			// While Apply swaps the table and the shards' snapshots (one
			// after the other), a state may index the other table: it is
			// left out (zero, as before a device's first poll), never put
			// under another device.
			if int(st.Index) < len(out) && devs[st.Index].ID == st.ID {
				out[st.Index] = st
			}
		}
	}
	return out
}

// Quiesce tells the pipeline that its producers are stopping. From then on
// the workers no longer run time-based detection, so the silence of
// stopped pollers is not taken for comms loss; samples still in flight are
// processed as usual. Call it before stopping the pollers.
func (p *Pipeline) Quiesce() { p.quiet.Store(true) }

// Ready reports whether the workers run.
func (p *Pipeline) Ready() error {
	if !p.running.Load() {
		return errors.New("pipeline workers not running")
	}
	return nil
}

// Run starts one worker per shard and returns when ctx has ended and every
// worker has drained its ring and handed its last lines on. Stop the
// producers (the pollers) before cancelling ctx, or their last samples may
// find the rings closed.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Run called twice")
	}
	defer p.running.Store(false)
	defer context.AfterFunc(ctx, func() { p.stoppedOnce.Do(func() { close(p.stopped) }) })()
	var wg sync.WaitGroup
	for _, sh := range p.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.run(ctx)
		}()
	}
	wg.Wait()
	p.stream.closeAll()
	if p.opts.StatePath != "" {
		if err := p.saveState(p.opts.StatePath); err != nil {
			return err
		}
		p.log.Info("detection state saved", "state", p.opts.StatePath)
	}
	return nil
}

func (sh *shard) run(ctx context.Context) {
	buf := make([]sample.Sample, 1024)
	linger := sh.p.opts.Linger
	every := sh.p.opts.TickEvery
	timer := time.NewTimer(every)
	defer timer.Stop()
	// The wait below ends on a kick: Apply's, or ctx's end.
	defer context.AfterFunc(ctx, sh.wake)()
	next := time.Now().Add(every)
	for ctx.Err() == nil {
		// Loaded before ctl is looked at: a wake after this point closes
		// this channel, one before it was for a request already in ctl.
		stop := *sh.stop.Load()
		select {
		case pk := <-sh.ctl:
			sh.park(pk, buf)
		default:
		}
		n := sh.ring.GetBatch(buf)
		if n == 0 {
			// Idle: park until samples arrive, the next tick is due, ctx
			// ends or Apply calls; the timer is reused, so waiting
			// allocates nothing.
			n, _ = sh.ring.GetBatchWaitC(stop, timer.C, buf)
			if n > 0 && n < len(buf)/2 && linger > 0 {
				// Woken by a poll: the polls finishing just after it join
				// it in one batch, instead of waking this worker each.
				time.Sleep(linger)
				n += sh.ring.GetBatch(buf[n:])
			}
		}
		if n > 0 {
			sh.process(buf[:n])
		}
		// Time-based work runs on time even when the ring never empties.
		if now := time.Now(); !now.Before(next) {
			sh.tick()
			next = now.Add(every)
			timer.Reset(every)
		}
	}
	// Drain what the pollers put before they stopped: wait for slots they
	// claimed before Close, until the ring reports it is closed and empty.
	sh.ring.Close()
	for {
		n, err := sh.ring.GetBatchWait(context.Background(), buf)
		if err != nil {
			break
		}
		sh.process(buf[:n])
	}
	sh.tick()
}

// process is the hot path: detection and encoding of every sample, with no
// allocation once the line buffer has grown to its batch size. Put hands a
// device poll to the ring with one PutBatch, so its samples come in a row
// unless the ring was full; a poll may still straddle two batches, and
// the Encoder carries its line from one to the next.
func (sh *shard) process(batch []sample.Sample) {
	for i := range batch {
		sh.det.Process(&batch[i])
	}
	sh.outages()
	if sh.enc != nil {
		var n int
		sh.lines, n = sh.enc.AppendPolls(sh.lines, batch)
		sh.nLines += n
	}
	sh.samples.Add(float64(len(batch)))
	if sh.nLines >= sh.p.opts.BatchLines {
		sh.flush()
	}
}

// emit is detection's callback, on the worker goroutine.
func (sh *shard) emit(ev *detect.Event) {
	if sh.enc != nil {
		sh.lines = sh.enc.AppendEvent(sh.lines, ev)
		sh.nLines++
	}
	if int(ev.Kind) < len(sh.events) && int(ev.Stage) < 3 {
		if c := sh.events[ev.Kind][ev.Stage]; c != nil {
			c.Inc()
		}
	}
	sh.p.stream.publish(ev)
	if ev.Kind == detect.KindRecloserSequence && ev.Stage == detect.StageEnd {
		if err := sh.out.Observe(ev); err != nil {
			sh.p.log.Error("outage state not saved", "err", err)
		}
	}
}

// outages hands detection's changes of energization and switching to the
// outage logic.
func (sh *shard) outages() {
	sh.det.DrainChanged(sh.out.Mark)
	if err := sh.out.Flush(sh.state); err != nil {
		sh.p.log.Error("outage state not saved", "err", err)
	}
}

func (sh *shard) state(idx uint32) detect.DeviceState {
	st, _ := sh.det.State(idx)
	return st
}

// emitOutage is the outage logic's callback, on the worker goroutine.
func (sh *shard) emitOutage(c *grid.Change) {
	if sh.enc != nil {
		if c.Kind != grid.IndicesUpdated {
			sh.lines = sh.enc.AppendOutage(sh.lines, &c.Outage)
			sh.nLines++
		}
		sh.lines = sh.enc.AppendReliability(sh.lines, c.Feeder, c.Indices, c.Time)
		sh.nLines++
	}
	if sh.p.opts.OnOutage != nil {
		sh.p.opts.OnOutage(c)
	}
	sh.outChanged = true
}

func (sh *shard) tick() {
	if !sh.p.quiet.Load() && !sh.p.held.Load() {
		now := sh.p.opts.Now()
		sh.det.Tick(now)
		sh.outages()
		if err := sh.out.Tick(now); err != nil {
			sh.p.log.Error("outage state not saved", "err", err)
		}
	}
	st := sh.det.Snapshot()
	sh.snap.Store(&st)
	sh.p.gen.Add(1)
	sh.publishStats()
	if sh.outChanged {
		sh.publishOutages()
	}
	sh.flush()
}

// publishStats publishes detection's irregular-sample counts, those of the
// detectors Apply replaced included.
func (sh *shard) publishStats() {
	stats := sh.det.Stats()
	sh.foreign.Store(sh.statsBase.Foreign + stats.Foreign)
	sh.late.Store(sh.statsBase.Late + stats.Late)
}

func (sh *shard) flush() {
	if sh.nLines == 0 {
		return
	}
	if sh.p.opts.Lines != nil {
		sh.p.opts.Lines.PutLines(sh.lines, sh.nLines)
	}
	sh.lines = sh.lines[:0]
	sh.nLines = 0
}

type metrics struct {
	reg         prometheus.Registerer
	samples     *prometheus.CounterVec
	lostUnknown prometheus.Counter
	lostClosed  prometheus.Counter
	events      [detect.NumKinds][3]prometheus.Counter
	streamDrops prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		reg: reg,
		samples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_pipeline_samples_total",
			Help: "Samples processed by detection and encoding, by shard.",
		}, []string{"shard"}),
		streamDrops: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_event_stream_dropped_total",
			Help: "Events a subscriber of the event stream missed because its buffer was full.",
		}),
	}
	lost := f.NewCounterVec(prometheus.CounterOpts{
		Name: "feederd_pipeline_samples_lost_total",
		Help: "Samples the pipeline could not queue, by reason: unknown_device (a device index outside the model), closed (put after the pipeline stopped). A full ring counts in feederd_pipeline_ring_dropped_total.",
	}, []string{"reason"})
	m.lostUnknown = lost.WithLabelValues("unknown_device")
	m.lostClosed = lost.WithLabelValues("closed")
	ev := f.NewCounterVec(prometheus.CounterOpts{
		Name: "feederd_events_total",
		Help: "Detection events by kind and stage (start, end, instant).",
	}, []string{"kind", "stage"})
	// Only the combinations that can happen: instants for switching
	// operations, start and end for the rest.
	for k := detect.KindNone + 1; k < detect.NumKinds; k++ {
		for s := range detect.StageInstant + 1 {
			if k.Instant() == (s == detect.StageInstant) {
				m.events[k][s] = ev.WithLabelValues(k.String(), s.String())
			}
		}
	}
	return m
}

// watchDetect exposes what a shard's detection could not take as it came,
// as published by its worker at each tick.
func (m *metrics) watchDetect(shard string, sh *shard) {
	f := promauto.With(m.reg)
	help := "Samples detection could not take as they came, by reason: foreign (a device of another shard), late (stamped before one already seen for the device: taken at the newer time)."
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "feederd_detect_samples_irregular_total", Help: help,
		ConstLabels: prometheus.Labels{"shard": shard, "reason": "foreign"},
	}, func() float64 { return float64(sh.foreign.Load()) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "feederd_detect_samples_irregular_total", Help: help,
		ConstLabels: prometheus.Labels{"shard": shard, "reason": "late"},
	}, func() float64 { return float64(sh.late.Load()) })
}

func (m *metrics) watchRing(shard string, r *ring.Ring[sample.Sample]) {
	f := promauto.With(m.reg)
	f.NewCounterFunc(prometheus.CounterOpts{
		Name:        "feederd_pipeline_ring_dropped_total",
		Help:        "Samples dropped because the shard's ring was full.",
		ConstLabels: prometheus.Labels{"shard": shard},
	}, func() float64 { return float64(r.Drops()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "feederd_pipeline_ring_depth",
		Help:        "Samples waiting in the shard's ring.",
		ConstLabels: prometheus.Labels{"shard": shard},
	}, func() float64 { return float64(r.Len()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "feederd_pipeline_ring_capacity",
		Help:        "Capacity of the shard's ring.",
		ConstLabels: prometheus.Labels{"shard": shard},
	}, func() float64 { return float64(r.Cap()) })
}
