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
func (s *Stream) Subscribe(size int) *Subscription {
	c := make(chan detect.Event, max(size, 1))
	sub := &Subscription{C: c, c: c, stream: s}
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

func (s *Stream) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.c)
	}
}
