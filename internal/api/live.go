package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
)

// Source is what the desk reads of the pipeline: snapshots its shard
// workers publish with atomic pointers, so reading never holds up the
// ingest path. pipeline.Pipeline is one.
type Source interface {
	// Snapshot is the detection state of every device, by model index.
	Snapshot() []detect.DeviceState
	// Outages are the active outages as of the shards' last tick.
	Outages() []grid.Outage
	// Reliability is the IEEE 1366 sums of every feeder.
	Reliability() map[string]grid.Accumulator
}

// LiveOptions configure a Live.
type LiveOptions struct {
	Model  *config.Model
	Logger *slog.Logger
	// Now is the sample clock (Unix ns); default time.Now.
	Now func() int64
	// Tick is how often the device states are compared for a "state"
	// message (default 250ms); HistoryStep how often a voltage point is
	// kept for the charts (default 10s; an hour of them is kept).
	Tick        time.Duration
	HistoryStep time.Duration
	// Sizes of the bounded buffers (defaults 10000 events, 100 recent
	// outages, 4096 stream messages to replay on reconnection).
	EventBuffer, RecentOutages, ReplayBuffer int
}

// Live is the desk's view of what happens: active and recent outages,
// the last events, the agents' notes (estimated restoration,
// acknowledgement), an hour of voltages, and the live stream. One goroutine
// (Run) owns it and publishes an immutable snapshot with an atomic pointer
// after every change; handlers only load that pointer.
//
// Shard workers hand outage changes to Outage, which never blocks: a full
// queue drops the change, and the next tick takes the active outages from
// the pipeline's own snapshot instead.
type Live struct {
	opts    LiveOptions
	changes chan grid.Change
	dropped atomic.Bool
	snap    atomic.Pointer[liveSnap]
	notes   atomic.Pointer[map[string]Note]
	notesMu sync.Mutex // serialises writers of notes
	// onNote is called after a note changed, on the caller's goroutine.
	onNote func(id string)
	kick   chan struct{}
	// models takes a reloaded configuration (SetModel) to Run; ended is
	// closed when Run returns.
	models chan modelSwap
	ended  chan struct{}

	// subMu guards the subscribers and the replay buffer: the owner
	// publishes under it, a new subscriber reads the replay under it.
	subMu  sync.Mutex
	subs   map[*sseSub]struct{}
	replay []sseMsg
	nextID uint64
	closed bool

	// Owned by Run:
	model   *config.Model
	active  map[string]grid.Outage
	recent  []grid.Outage
	events  []EventView
	frames  []*voltFrame
	lastKey string
}

// Note is what desk agents add to an outage.
type Note struct {
	// ETR is the estimated time of restoration, zero if none.
	ETR time.Time
	// AckBy and AckAt: who acknowledged the outage, and when.
	AckBy string
	AckAt time.Time
}

type liveSnap struct {
	active []grid.Outage // largest impact first
	recent []grid.Outage // latest first
	events []EventView   // oldest first; the owner only appends beyond len
	frames []*voltFrame  // oldest first
	at     int64
}

type sseMsg struct {
	id   uint64
	typ  string
	data []byte
}

type sseSub struct {
	c chan sseMsg
	// gone is closed when the owner dropped the subscriber (it fell
	// behind): the client reconnects and replays from its last ID.
	gone chan struct{}
}

type voltPoint struct {
	T  int64   `json:"t"`
	PU float32 `json:"pu"` // float32: the precision it is kept in, printed as such
}

// voltFrame is one history step: every device's mean phase voltage in pu
// at t, by device index (NaN: no reading). Frames are never changed once
// published; an hour of them is kept. At 10,000 devices and a 10 s step
// that is 360 frames of 40 KB, 14 MB in all, and one new frame per step:
// a copy-on-write slice per device cost four times that and 5 MB/s of
// garbage.
type voltFrame struct {
	t  int64
	pu []float32
}

// NewLive builds the desk's live view; call Run to start it.
func NewLive(opts LiveOptions) *Live {
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixNano() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	if opts.HistoryStep <= 0 {
		opts.HistoryStep = 10 * time.Second
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 10000
	}
	if opts.RecentOutages <= 0 {
		opts.RecentOutages = 100
	}
	if opts.ReplayBuffer <= 0 {
		opts.ReplayBuffer = 4096
	}
	l := &Live{
		opts:    opts,
		changes: make(chan grid.Change, 4096),
		kick:    make(chan struct{}, 1),
		models:  make(chan modelSwap),
		ended:   make(chan struct{}),
		model:   opts.Model,
		subs:    map[*sseSub]struct{}{},
		nextID:  1,
		active:  map[string]grid.Outage{},
	}
	l.snap.Store(&liveSnap{})
	empty := map[string]Note{}
	l.notes.Store(&empty)
	return l
}

// Outage takes one outage change; it is the pipeline's OnOutage (with the
// alerts) and never blocks.
func (l *Live) Outage(c *grid.Change) {
	if c.Kind == grid.IndicesUpdated {
		return
	}
	select {
	case l.changes <- *c:
	default:
		l.dropped.Store(true)
	}
}

// SetModel hands Run a reloaded configuration and waits until Run has
// taken it, or ctx ends. Run first takes the events queued before it takes
// the model, whose device indexes are the old model's, and moves the
// voltage history to the new indexes: call it while nothing publishes
// events of the new model (the reload does, with the pollers paused). Only
// one goroutine may call it (the reload's owner).
func (l *Live) SetModel(ctx context.Context, m *config.Model) error {
	req := modelSwap{m: m, taken: make(chan struct{})}
	select {
	case l.models <- req:
	case <-l.ended:
		return nil // nothing to show any more
	case <-ctx.Done():
		return fmt.Errorf("desk live view did not take the new configuration: %w", ctx.Err())
	}
	select {
	case <-req.taken:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("desk live view did not take the new configuration: %w", ctx.Err())
	}
}

// modelSwap is a reloaded configuration on its way to Run, which closes
// taken when it uses it.
type modelSwap struct {
	m     *config.Model
	taken chan struct{}
}

// Notes returns the agents' notes by outage ID; the map must not be
// changed.
func (l *Live) Notes() map[string]Note { return *l.notes.Load() }

// OnNote sets a function called after a note changed (the alert hook
// re-sends the outage's alerts with it). Call it before Run.
func (l *Live) OnNote(f func(id string)) { l.onNote = f }

func (l *Live) setNote(id string, f func(*Note)) Note {
	l.notesMu.Lock()
	m := maps.Clone(*l.notes.Load())
	n := m[id]
	f(&n)
	m[id] = n
	l.notes.Store(&m)
	l.notesMu.Unlock()
	if l.onNote != nil {
		l.onNote(id)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	l.publishMsg("note", noteView(id, n))
	return n
}

// Run owns the live view until events (the pipeline's event stream) is
// closed or ctx ends; it then ends every stream.
func (l *Live) Run(ctx context.Context, events <-chan detect.Event, src Source) error {
	defer close(l.ended)
	defer l.closeSubs()
	for _, o := range src.Outages() {
		l.active[o.ID] = o
	}
	l.publish()
	tick := time.NewTicker(l.opts.Tick)
	defer tick.Stop()
	// History is kept on wall-clock ticks, stamped with sample time.
	histEvery := max(int(l.opts.HistoryStep/l.opts.Tick), 1)
	var lastGen uint64
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			l.event(&ev)
			// Take whatever else is queued before publishing once.
			for n := 0; n < 1000; n++ {
				select {
				case ev, ok := <-events:
					if !ok {
						l.publish()
						return nil
					}
					l.event(&ev)
					continue
				default:
				}
				break
			}
			l.publish()
		case c := <-l.changes:
			l.change(&c)
			l.publish()
		case req := <-l.models:
			for queued := len(events); queued > 0; queued-- {
				ev, ok := <-events
				if !ok {
					break
				}
				l.event(&ev)
			}
			l.frames = remapFrames(l.frames, l.model, req.m)
			l.model = req.m
			l.lastKey = ""
			l.publish()
			close(req.taken)
		case <-l.kick:
		case <-tick.C:
			now := l.opts.Now()
			ticks++
			histDue := ticks%histEvery == 0
			if g, ok := src.(interface{ Generation() uint64 }); ok {
				// Nothing new since the last tick: the states and their
				// key are what they were (a history sample is still due
				// on its own clock).
				gen := g.Generation()
				if gen == lastGen && !l.dropped.Load() && !histDue {
					continue
				}
				lastGen = gen
			}
			devs := src.Snapshot()
			if l.dropped.Swap(false) {
				l.active = map[string]grid.Outage{}
				for _, o := range src.Outages() {
					l.active[o.ID] = o
				}
				l.publish()
			}
			if histDue {
				l.sampleVoltages(devs, now)
				l.publish()
			}
			if key := stateKey(devs); key != l.lastKey {
				l.lastKey = key
				l.publishMsg("state", map[string]any{"devices": len(devs), "at": isoTime(now)})
			}
		}
	}
}

func (l *Live) event(ev *detect.Event) {
	v := eventView(l.model, ev)
	if len(l.events) == cap(l.events) && len(l.events) >= l.opts.EventBuffer {
		// Start a new backing array with the newer half: readers keep the
		// old one, and the owner never writes below a published length.
		keep := l.opts.EventBuffer / 2
		n := make([]EventView, keep, l.opts.EventBuffer)
		copy(n, l.events[len(l.events)-keep:])
		l.events = n
	} else if l.events == nil {
		l.events = make([]EventView, 0, l.opts.EventBuffer)
	}
	l.events = append(l.events, v)
	l.publishMsg("event", v)
}

func (l *Live) change(c *grid.Change) {
	o := c.Outage
	switch c.Kind {
	case grid.OutageRestored, grid.OutageMerged:
		delete(l.active, o.ID)
		l.recent = append([]grid.Outage{o}, l.recent...)
		if len(l.recent) > l.opts.RecentOutages {
			l.recent = l.recent[:l.opts.RecentOutages]
		}
	default:
		l.active[o.ID] = o
	}
	l.publishMsg("outage", map[string]any{"change": c.Kind.String(), "outage": outageView(&o, l.Notes())})
}

func (l *Live) sampleVoltages(devs []detect.DeviceState, now int64) {
	f := &voltFrame{t: now, pu: make([]float32, len(devs))}
	for i, d := range devs {
		f.pu[i] = float32(math.NaN())
		if d.Phases == 0 || d.Comm != detect.CommOK {
			continue
		}
		sum, n := 0.0, 0
		for p := range 3 {
			if d.Phases&(1<<p) != 0 && d.VoltageTime[p] > 0 {
				sum += d.Voltage[p]
				n++
			}
		}
		if n > 0 {
			f.pu[i] = float32(sum / float64(n))
		}
	}
	keep := int(time.Hour / l.opts.HistoryStep)
	frames := append(l.frames, f)
	if len(frames) > keep {
		// A new array, so that the dropped frames can go.
		frames = slices.Clone(frames[len(frames)-keep:])
	}
	l.frames = frames
}

// remapFrames moves the voltage history from the device indexes of model
// from to those of model to, by device ID; a device new in to has no
// history.
func remapFrames(frames []*voltFrame, from, to *config.Model) []*voltFrame {
	if len(frames) == 0 {
		return frames
	}
	was := make(map[string]int, len(from.Devices))
	for i, d := range from.Devices {
		was[d.ID] = i
	}
	old := make([]int, len(to.Devices))
	for i, d := range to.Devices {
		old[i] = -1
		if j, ok := was[d.ID]; ok {
			old[i] = j
		}
	}
	out := make([]*voltFrame, len(frames))
	for k, f := range frames {
		nf := &voltFrame{t: f.t, pu: make([]float32, len(old))}
		for i, j := range old {
			nf.pu[i] = float32(math.NaN())
			if j >= 0 && j < len(f.pu) {
				nf.pu[i] = f.pu[j]
			}
		}
		out[k] = nf
	}
	return out
}

// series returns device i's points of the history, oldest first.
func (sn *liveSnap) series(i uint32) []voltPoint {
	var pts []voltPoint
	for _, f := range sn.frames {
		if int(i) < len(f.pu) && !math.IsNaN(float64(f.pu[i])) {
			pts = append(pts, voltPoint{T: f.t, PU: f.pu[i]})
		}
	}
	return pts
}

// stateKey sums up what the page draws of the devices: a change of it is
// worth a "state" message.
func stateKey(devs []detect.DeviceState) string {
	b := make([]byte, 0, len(devs)*4)
	for _, d := range devs {
		var open, lock byte = '0', '0'
		if d.Open {
			open = '1'
		}
		if d.Lockout {
			lock = '1'
		}
		b = append(b, byte('0'+d.Comm), byte('0'+d.Energy), open, lock)
	}
	return string(b)
}

func (l *Live) publish() {
	active := slices.Collect(maps.Values(l.active))
	sortOutages(active)
	l.snap.Store(&liveSnap{active: active, recent: slices.Clone(l.recent), events: l.events,
		frames: slices.Clip(l.frames), at: l.opts.Now()})
}

// sortOutages orders outages by impact: customers out, then critical
// customers, then the oldest first.
func sortOutages(os []grid.Outage) {
	slices.SortFunc(os, func(a, b grid.Outage) int {
		if a.CustomersOut != b.CustomersOut {
			return b.CustomersOut - a.CustomersOut
		}
		if len(a.Critical) != len(b.Critical) {
			return len(b.Critical) - len(a.Critical)
		}
		if a.Start != b.Start {
			if a.Start < b.Start {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
}

// publishMsg appends a message to the replay buffer and hands it to every
// subscriber; a subscriber whose buffer is full is dropped (its client
// reconnects with Last-Event-ID and replays).
func (l *Live) publishMsg(typ string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		l.opts.Logger.Error("stream message not encoded", "type", typ, "err", err)
		return
	}
	l.subMu.Lock()
	defer l.subMu.Unlock()
	m := sseMsg{id: l.nextID, typ: typ, data: data}
	l.nextID++
	if len(l.replay) >= l.opts.ReplayBuffer {
		l.replay = slices.Delete(l.replay, 0, len(l.replay)-l.opts.ReplayBuffer+1)
	}
	l.replay = append(l.replay, m)
	for s := range l.subs {
		select {
		case s.c <- m:
		default:
			delete(l.subs, s)
			close(s.gone)
		}
	}
}

// subscribe registers a stream client. With last > 0 it first gets every
// message after last still in the replay buffer; complete is false when
// some were already gone (the client must reload).
func (l *Live) subscribe(last uint64) (sub *sseSub, backlog []sseMsg, complete bool) {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	sub = &sseSub{c: make(chan sseMsg, 256), gone: make(chan struct{})}
	complete = true
	if last > 0 {
		if len(l.replay) > 0 && l.replay[0].id > last+1 || len(l.replay) == 0 && l.nextID > last+1 {
			complete = false
		}
		for _, m := range l.replay {
			if m.id > last {
				backlog = append(backlog, m)
			}
		}
	}
	if l.closed {
		close(sub.gone)
		return sub, backlog, complete
	}
	l.subs[sub] = struct{}{}
	return sub, backlog, complete
}

func (l *Live) unsubscribe(s *sseSub) {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	if _, ok := l.subs[s]; ok {
		delete(l.subs, s)
		close(s.gone)
	}
}

func (l *Live) closeSubs() {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.closed = true
	for s := range l.subs {
		delete(l.subs, s)
		close(s.gone)
	}
}

// lastID is the ID of the newest message.
func (l *Live) lastID() uint64 {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	return l.nextID - 1
}

func isoTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func parseID(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
