package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/sample"
)

// Applied says what Apply did with each device, by ID.
type Applied struct {
	// Kept devices go on with their whole detection state.
	Kept []string
	// Changed devices (same ID, other detection settings) and Added ones
	// start fresh.
	Changed, Added []string
	// Removed devices' events in progress were ended (FlagReconfigured).
	Removed []string
}

// parking is Apply's request to a worker: drain, say so on parked, and
// wait for resume.
type parking struct {
	parked chan<- struct{}
	resume <-chan struct{}
}

// wake ends the worker's wait for samples, so that it looks at ctl and ctx:
// it closes the stop channel the worker waits on and puts a fresh one in
// its place (the ring's wait ends only on a closed channel).
func (sh *shard) wake() {
	next := make(chan struct{})
	for {
		cur := sh.stop.Load()
		if sh.stop.CompareAndSwap(cur, &next) {
			close(*cur)
			return
		}
	}
}

// park runs on the worker: it processes every sample already in the ring,
// writes the line of a poll left open and hands its lines on, then waits
// while Apply replaces its parts.
func (sh *shard) park(pk *parking, buf []sample.Sample) {
	for {
		n := sh.ring.GetBatch(buf)
		if n == 0 {
			break
		}
		sh.process(buf[:n])
	}
	if sh.enc != nil {
		var n int
		sh.lines, n = sh.enc.FlushPoll(sh.lines)
		sh.nLines += n
	}
	sh.flush()
	pk.parked <- struct{}{}
	<-pk.resume
}

// Apply makes the running pipeline follow t. The producers must be paused
// (no Put runs during the call, or Apply refuses): every worker processes
// what its ring holds and parks; then, with all of them parked, Apply
//
//   - ends the events in progress of devices that are removed, or whose
//     detection settings changed (feeder, nominal, PT ratio, interval, point
//     roles, the IDs of the devices above it or of its tie switches, or
//     detection's parameters), with FlagReconfigured: their lines are
//     encoded by the old encoder, so they carry the old device tags;
//   - builds new detectors, each adopting (detect.Detector.Adopt) the whole
//     state of the kept devices it owns now, wherever they were: a kept
//     device's event in progress keeps its ID and start under its new
//     index; a changed device keeps only its event counter;
//   - rebuilds the outage logic of every feeder on the new topology from
//     the outages in progress and reliability sums of the old one (the
//     restart path, through Options.Outages), and re-decides them;
//   - swaps the encoders and the routing, publishes new snapshots and
//     bumps Generation.
//
// Feeders keep their shard; new ones go to the least loaded (the number of
// shards never changes).
//
// Every event of the old table is on the event stream when Apply returns,
// and none of the new one is until the producers put again: time-based
// detection (Tick) is held from Apply until the next Put, so that a
// consumer of the stream that maps device indexes with a table of its own
// can take the new one after Apply returns and before the producers
// resume, once it has read what is queued. If t cannot be built, or ctx ends before
// every worker parked, nothing changes. Apply fails when Run does not run.
func (p *Pipeline) Apply(ctx context.Context, t Table) (Applied, error) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if !p.running.Load() {
		return Applied{}, errors.New("apply table: pipeline not running")
	}
	if err := checkTable(&t, p.opts.RingSize); err != nil {
		return Applied{}, fmt.Errorf("apply table: %w", err)
	}
	old := p.tab.Load()
	tab := newTable(t, assignShards(t.Devices, t.Topology, len(p.shards), old.feederShard), old.gen+1)
	moves, applied := plan(old, tab)

	parked := make(chan struct{}, len(p.shards))
	resume := make(chan struct{})
	defer close(resume)
	for _, sh := range p.shards {
		sh.ctl <- &parking{parked: parked, resume: resume}
		sh.wake()
	}
	for range p.shards {
		select {
		case <-parked:
		case <-ctx.Done():
			p.unpark()
			return Applied{}, fmt.Errorf("apply table: workers did not park: %w", ctx.Err())
		case <-p.stopped:
			p.unpark()
			return Applied{}, errors.New("apply table: pipeline stopped")
		}
	}
	// Every worker is parked: what they own is the caller's until resume.
	for _, sh := range p.shards {
		if n := sh.ring.Len(); n > 0 {
			return Applied{}, fmt.Errorf("apply table: %d samples arrived in shard %d after the producers were to pause", n, sh.id)
		}
	}
	store := carried(p, p.opts.Outages)
	parts, err := p.build(tab, store)
	if err != nil {
		return Applied{}, fmt.Errorf("apply table: %w", err)
	}
	store.states = nil // read by the engines' construction only
	now := p.opts.Now()
	gone := func(idx uint32) bool { m := moves[idx]; return !m.Keep }
	for _, sh := range p.shards {
		sh.det.Retire(gone, now)
		sh.flush()
	}
	for i := range p.shards {
		for _, o := range p.shards {
			parts[i].det.Adopt(o.det, func(idx uint32) detect.Move { return moves[idx] })
		}
	}
	for i, sh := range p.shards {
		st := sh.det.Stats()
		sh.statsBase.Foreign += st.Foreign
		sh.statsBase.Late += st.Late
		sh.det, sh.out, sh.enc = parts[i].det, parts[i].out, parts[i].enc
	}
	p.held.Store(true)
	p.tab.Store(tab)
	for _, sh := range p.shards {
		// The outage logic re-decides every feeder on the new topology
		// from the adopted states.
		for i := range tab.Devices {
			sh.out.Mark(uint32(i), now)
		}
		sh.outages()
		sh.publishOutages()
		st := sh.det.Snapshot()
		sh.snap.Store(&st)
		sh.publishStats()
		sh.flush()
	}
	p.gen.Add(1)
	p.log.Info("pipeline follows the new table", "kept", len(applied.Kept), "changed", len(applied.Changed),
		"added", len(applied.Added), "removed", len(applied.Removed))
	return applied, nil
}

// unpark takes back the requests workers have not seen yet.
func (p *Pipeline) unpark() {
	for _, sh := range p.shards {
		select {
		case <-sh.ctl:
		default:
		}
	}
}

// plan matches the devices of two tables by ID: moves[old index] says
// where each went and whether its state moves.
func plan(old, tab *table) ([]detect.Move, Applied) {
	var a Applied
	byID := make(map[string]uint32, len(tab.Devices))
	for i := range tab.Devices {
		byID[tab.Devices[i].ID] = uint32(i)
	}
	moves := make([]detect.Move, len(old.Devices))
	present := make(map[string]bool, len(old.Devices))
	for i := range old.Devices {
		id := old.Devices[i].ID
		j, ok := byID[id]
		if !ok {
			a.Removed = append(a.Removed, id)
			continue
		}
		present[id] = true
		keep := old.Detect == tab.Detect && sameDetection(old, uint32(i), tab, j)
		moves[i] = detect.Move{Present: true, Index: j, Keep: keep}
		if keep {
			a.Kept = append(a.Kept, id)
		} else {
			a.Changed = append(a.Changed, id)
		}
	}
	for i := range tab.Devices {
		if !present[tab.Devices[i].ID] {
			a.Added = append(a.Added, tab.Devices[i].ID)
		}
	}
	return moves, a
}

// sameDetection reports whether device i of a and device j of b are the
// same to detection but for their indexes.
func sameDetection(a *table, i uint32, b *table, j uint32) bool {
	x, y := &a.Devices[i].DeviceInfo, &b.Devices[j].DeviceInfo
	return x.ID == y.ID && x.Feeder == y.Feeder && x.Nominal == y.Nominal && x.PTRatio == y.PTRatio &&
		x.Interval == y.Interval && slices.Equal(x.PointRoles, y.PointRoles) &&
		a.above(i) == b.above(j) && a.ties(i) == b.ties(j)
}

// above names the devices above device i, nearest first: a kept device's
// energization cause always names one of them, so they must all stay.
func (t *table) above(i uint32) string {
	var b strings.Builder
	for u, n := t.Devices[i].Upstream, 0; u >= 0 && u < len(t.Devices) && n < len(t.Devices); u, n = t.Devices[u].Upstream, n+1 {
		b.WriteString(t.Devices[u].ID)
		b.WriteByte(0)
	}
	return b.String()
}

// ties names the tie switches that can feed device i, sorted.
func (t *table) ties(i uint32) string {
	ids := make([]string, 0, len(t.Devices[i].Ties))
	for _, k := range t.Devices[i].Ties {
		if k >= 0 && k < len(t.Devices) {
			ids = append(ids, t.Devices[k].ID)
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, "\x00")
}

// carriedStore hands a rebuilt outage engine the state of the engines it
// replaces, feeder by feeder, and saves through to the durable store.
type carriedStore struct {
	states map[string]grid.State
	next   grid.Store
}

// carried takes the state of every shard's outage logic now.
func carried(p *Pipeline, next grid.Store) *carriedStore {
	c := &carriedStore{states: map[string]grid.State{}, next: next}
	for _, sh := range p.shards {
		for f, acc := range sh.out.Indices() {
			c.states[f] = grid.State{Feeder: f, Indices: acc}
		}
		for _, o := range sh.out.Active() {
			st := c.states[o.Feeder]
			st.Feeder = o.Feeder
			st.Active = append(st.Active, o)
			c.states[o.Feeder] = st
		}
	}
	return c
}

// Load gives the carried state of a feeder the old engines had, else what
// the durable store holds.
func (c *carriedStore) Load(feeder string) (grid.State, bool, error) {
	if st, ok := c.states[feeder]; ok {
		return st, true, nil
	}
	if c.next == nil {
		return grid.State{}, false, nil
	}
	return c.next.Load(feeder)
}

func (c *carriedStore) Save(st grid.State) error {
	if c.next == nil {
		return nil
	}
	return c.next.Save(st)
}
