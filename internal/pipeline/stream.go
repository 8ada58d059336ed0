package pipeline

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/detect"
)

// Stream is the in-process event stream: every detect.Event of every shard,
// in the order each shard emitted them (events of one feeder are in order;
// events of different shards interleave). The alert dispatcher and the grid
// layer subscribe to it.
//
// A subscriber gets a buffered channel. Publishing never blocks a shard
// worker: when a subscriber's buffer is full the event is dropped for that
// subscriber and counted in feederd_event_stream_dropped_total, so a
// subscriber must keep up (or persist what it receives) and size its
// buffer for bursts. Events are rare next to samples, so a mutex guards
// the subscriber list.
type Stream struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	drops  prometheus.Counter
}

// Subscription is one consumer's view of the stream.
type Subscription struct {
	// marked: the subscriber takes table marks (SubscribeMarked).
	marked bool
	// C receives events until the pipeline stops or Cancel is called; then
	// it is closed.
	C      <-chan detect.Event
	c      chan detect.Event
	stream *Stream
}

func newStream(drops prometheus.Counter) *Stream {
	return &Stream{subs: map[*Subscription]struct{}{}, drops: drops}
}

// Subscribe returns a subscription with a buffer of size events.
func (s *Stream) Subscribe(size int) *Subscription { return s.subscribe(size, false) }

// SubscribeMarked is Subscribe for a subscriber that interprets
// Event.Device through a device table (IDs, feeders) of its own: when Apply
// replaces the pipeline's table, it receives a table mark (see TableMark)
// after the last event of the old table (the ends of removed devices'
// events among them) and before the first of the new one, so that it can
// switch tables at that point of the stream. A mark is dropped like an
// event when the buffer is full.
func (s *Stream) SubscribeMarked(size int) *Subscription { return s.subscribe(size, true) }

// TableMark reports whether ev is a table mark, and the generation of the
// table that starts with it (2 for the first Apply, one more for each
// next one).
func TableMark(ev *detect.Event) (gen uint64, ok bool) {
	if ev.Kind == detect.KindNone && ev.Stage == detect.StageInstant && ev.Device == markDevice {
		return ev.ID, true
	}
	return 0, false
}

// markDevice is the Device of a table mark: no device has it.
const markDevice = ^uint32(0)

func (s *Stream) subscribe(size int, marked bool) *Subscription {
	c := make(chan detect.Event, max(size, 1))
	sub := &Subscription{C: c, c: c, stream: s, marked: marked}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(c)
		return sub
	}
	s.subs[sub] = struct{}{}
	return sub
}

// Cancel ends the subscription and closes C. It is idempotent.
func (sub *Subscription) Cancel() {
	s := sub.stream
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.c)
	}
}

func (s *Stream) publish(ev *detect.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		select {
		case sub.c <- *ev:
		default:
			s.drops.Inc()
		}
	}
}

// mark sends a table mark to the subscribers that asked for them.
func (s *Stream) mark(gen uint64) {
	ev := detect.Event{ID: gen, Device: markDevice, Kind: detect.KindNone, Stage: detect.StageInstant}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if !sub.marked {
			continue
		}
		select {
		case sub.c <- ev:
		default:
			s.drops.Inc()
		}
	}
}

func (s *Stream) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.c)
	}
}
