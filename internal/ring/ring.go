// Package ring is the bounded queue between the pollers and the pipeline
// stages. Many poll goroutines put samples and one stage goroutine takes
// them in batches. The queue must never stall a poller: when it is full,
// a Policy decides which sample is lost, and every loss is counted.
//
// It is Dmitry Vyukov's bounded MPMC queue. Each slot has a sequence number,
// and producers and consumers claim positions with a compare-and-swap. A
// consumer takes a whole batch of published slots with one compare-and-swap
// (GetBatch), and a producer can hand over a whole poll the same way
// (PutBatch). What it offers over a buffered channel is the contract:
// producers never block, a full ring loses data by a stated policy, every
// loss is counted, and nothing allocates.
//
// It is kept for that contract, not for speed. Item by item it is about
// as fast as a channel: BENCHMARKS.md ("Ring vs buffered channel", 2-core
// VM) has Put at 1.1-1.3x a channel's send with 1, 4 and 8 producers, and a
// rerun beside five parallel builds had it between 0.7x and 1.2x. Used as
// the pipeline uses it, one PutBatch per device poll and batch dequeues, it
// is 2.2-2.8x a channel of samples; a channel of fixed-size arrays is
// faster still at 4 producers, but cannot drop its oldest item without
// racing its receiver, cannot tell how full it is without a lock, and
// blocks a producer when full.
//
// Progress guarantees, honestly stated:
//   - Producers never block. A Put claims a slot with a CAS loop that fails
//     only when another producer succeeded (lock-free). A full ring is
//     handled by the Policy: DropNewest rejects at once; DropOldest removes
//     the oldest item and retries a bounded number of times.
//   - Consumers are not lock-free. A producer that has claimed a slot but
//     not yet written it (for example, because it was preempted between the
//     two steps) holds up every consumer at that slot. Items published after
//     it stay invisible until it finishes. The gap is a few instructions
//     long, but the scheduler can stretch it.
//   - A consumer that finds the ring empty parks on a channel rather than
//     spinning (GetBatchWait). Producers try a non-blocking send only while
//     a consumer is parked, so a busy pipeline does no channel operations.
//
// Drop policies when the ring is full:
//   - DropNewest: Put returns false and the new item is lost. Use it when
//     old data must be kept, as in an event log.
//   - DropOldest: Put removes the oldest queued item and stores the new one.
//     Use it for measurements, where the latest value matters most. If other
//     producers keep filling the freed slot, Put gives up after a few
//     attempts and loses the new item as well.
//
// Drops counts every item lost by Put and PutBatch in either way. TryPut and
// TryPutBatch never drop anything and count nothing. A put after Close is
// not counted as a drop.
package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by GetBatchWait once the ring is closed and empty.
// It matches io.EOF with errors.Is.
var ErrClosed = fmt.Errorf("ring closed: %w", io.EOF)

// Policy says what Put does when the ring is full.
type Policy uint8

const (
	// DropNewest rejects the item being put.
	DropNewest Policy = iota
	// DropOldest discards the oldest queued item to make room.
	DropOldest
)

var policyNames = [...]string{"drop_newest", "drop_oldest"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy accepts "drop_newest" and "drop_oldest".
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if n == s {
			return Policy(i), true
		}
	}
	return 0, false
}

const (
	// MaxCapacity bounds New so that a configuration typo cannot allocate
	// gigabytes.
	MaxCapacity = 1 << 22

	// A producer under DropOldest gives up after this many discards.
	dropOldestAttempts = 4

	// closedBit is set in the enqueue position by Close, so that a producer
	// learns about Close from the same word it claims slots with. Positions
	// cannot reach 2^63: at 10^9 items a second that takes 292 years.
	closedBit = uint64(1) << 63

	// 128 bytes, not 64: x86 prefetches cache lines in adjacent pairs.
	padSize = 128
)

type pad [padSize]byte

type slot[T any] struct {
	// seq == pos: free for the producer of position pos.
	// seq == pos+1: holds the item of position pos.
	// seq == pos+capacity: consumed, free for the next lap.
	seq atomic.Uint64
	val T
}

// Ring is a bounded multi-producer, multi-consumer FIFO queue. Create it
// with New. All methods are safe for concurrent use, by any number of
// producers and consumers (TestProducersConsumers, and
// TestParkedConsumersTakeEveryItem for parked consumers and coalesced
// wake-ups); the pipeline runs one consumer per ring.
type Ring[T any] struct {
	// Written only by New.
	slots  []slot[T]
	mask   uint64
	policy Policy
	// notify carries wake-ups to parked consumers. Capacity 1: puts that
	// come while a wake-up is pending add nothing, so a woken consumer that
	// leaves items behind passes the wake-up on (getBatchWait), and with
	// several consumers parked every item is still taken.
	notify chan struct{}
	done   chan struct{} // closed by Close

	_   pad
	enq atomic.Uint64 // next position to put, plus closedBit
	_   pad
	deq atomic.Uint64 // next position to take
	_   pad
	// sleepers counts consumers parked (or about to park) in GetBatchWait.
	// Producers read it after every put, so it has a line of its own: the
	// drop counter, written on every put while the ring is full, would
	// otherwise take that line from every producer exactly when they are
	// busiest.
	sleepers atomic.Int32
	_        pad
	drops    atomic.Uint64
	_        pad
}

// spinHook, when set by a test, runs each time a consumer yields to a
// producer that claimed a slot before Close and has not written it.
var spinHook func()

// New returns an empty ring that holds capacity items. The capacity is
// rounded up to a power of two, with a minimum of 2 (Cap reports the result).
// A capacity below 1 or above MaxCapacity is an error.
func New[T any](capacity int, policy Policy) (*Ring[T], error) {
	if capacity < 1 || capacity > MaxCapacity {
		return nil, fmt.Errorf("create ring: capacity %d out of range 1..%d", capacity, MaxCapacity)
	}
	if int(policy) >= len(policyNames) {
		return nil, fmt.Errorf("create ring: unknown %s", policy)
	}
	// Capacity 1 cannot work: a published item (seq pos+1) would look free
	// to the producer of the next lap (seq pos+capacity).
	n := 2
	for n < capacity {
		n <<= 1
	}
	r := &Ring[T]{
		slots:  make([]slot[T], n),
		mask:   uint64(n - 1),
		policy: policy,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r, nil
}

type putResult uint8

const (
	putOK putResult = iota
	putFull
	putClosed
)

func (r *Ring[T]) enqueue(v T) putResult {
	pos := r.enq.Load()
	for {
		if pos&closedBit != 0 {
			return putClosed
		}
		s := &r.slots[pos&r.mask]
		dif := int64(s.seq.Load() - pos)
		switch {
		case dif == 0:
			if r.enq.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(pos + 1)
				// Go atomics are sequentially consistent: either this load
				// sees a consumer that announced it is parking, or that
				// consumer's re-check after the announcement sees the item.
				if r.sleepers.Load() > 0 {
					r.wake()
				}
				return putOK
			}
			pos = r.enq.Load()
		case dif < 0:
			// The slot still holds the item of the previous lap.
			return putFull
		default:
			// Another producer claimed pos; catch up.
			pos = r.enq.Load()
		}
	}
}

func (r *Ring[T]) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// TryPut adds v if there is room. It returns false when the ring is full or
// closed, without applying the policy or counting a drop.
func (r *Ring[T]) TryPut(v T) bool {
	return r.enqueue(v) == putOK
}

// Put adds v, applying the ring's Policy when it is full. It never blocks.
// It returns false if v was not queued: the ring was full under DropNewest,
// DropOldest gave up, or the ring is closed.
func (r *Ring[T]) Put(v T) bool {
	for attempt := 0; ; attempt++ {
		switch r.enqueue(v) {
		case putOK:
			return true
		case putClosed:
			return false
		}
		if r.policy == DropNewest || attempt == dropOldestAttempts {
			r.drops.Add(1)
			return false
		}
		r.drops.Add(uint64(r.take(nil, 1)))
	}
}

// PutBatch adds items in order, as Put does one by one, but claims room for
// as many as fit with a single compare-and-swap. A poller hands over a whole
// device poll this way. It never blocks and returns how many items were
// queued. Under DropNewest the items that do not fit are dropped. Under
// DropOldest old items are discarded to make room, within the same bounded
// number of attempts as Put. Items of one PutBatch may be interleaved with
// other producers' items when they do not all fit at once.
func (r *Ring[T]) PutBatch(items []T) int {
	queued := 0
	for attempt := 0; ; attempt++ {
		n, res := r.enqueueBatch(items)
		queued += n
		items = items[n:]
		if res != putFull {
			return queued
		}
		if r.policy == DropNewest || attempt == dropOldestAttempts {
			r.drops.Add(uint64(len(items)))
			return queued
		}
		r.drops.Add(uint64(r.take(nil, len(items))))
	}
}

// TryPutBatch adds as many of items, in order, as there is room for, and
// returns how many. Like TryPut it neither applies the policy nor counts.
func (r *Ring[T]) TryPutBatch(items []T) int {
	n, _ := r.enqueueBatch(items)
	return n
}

// enqueueBatch claims the longest run of free slots, up to len(items), and
// fills them. It reports putFull when not every item fitted.
func (r *Ring[T]) enqueueBatch(items []T) (int, putResult) {
	if len(items) == 0 {
		return 0, putOK
	}
	pos := r.enq.Load()
	for {
		if pos&closedBit != 0 {
			return 0, putClosed
		}
		n := 0
		for n < len(items) {
			p := pos + uint64(n)
			dif := int64(r.slots[p&r.mask].seq.Load() - p)
			if dif != 0 {
				if n == 0 && dif > 0 {
					n = -1 // another producer claimed pos; reload
				}
				break
			}
			n++
		}
		if n == 0 {
			return 0, putFull
		}
		if n < 0 || !r.enq.CompareAndSwap(pos, pos+uint64(n)) {
			pos = r.enq.Load()
			continue
		}
		for i := range n {
			p := pos + uint64(i)
			s := &r.slots[p&r.mask]
			s.val = items[i]
			s.seq.Store(p + 1)
		}
		if r.sleepers.Load() > 0 {
			r.wake()
		}
		if n < len(items) {
			return n, putFull
		}
		return n, putOK
	}
}

// GetBatch moves up to len(dst) items, oldest first, into dst and returns
// how many it moved. It never blocks and returns 0 when the ring is empty.
func (r *Ring[T]) GetBatch(dst []T) int {
	return r.take(dst, len(dst))
}

// take removes up to max items, copying them into dst unless dst is nil.
func (r *Ring[T]) take(dst []T, max int) int {
	if max <= 0 {
		return 0
	}
	for {
		pos := r.deq.Load()
		n := 0
		for n < max {
			p := pos + uint64(n)
			dif := int64(r.slots[p&r.mask].seq.Load() - (p + 1))
			if dif != 0 {
				if n == 0 && dif > 0 {
					n = -1 // another consumer took pos; reload
				}
				break
			}
			n++
		}
		if n == 0 {
			return 0
		}
		// One CAS claims the whole batch: every slot in it was checked as
		// published, and only the owner of a position can change it then.
		if n < 0 || !r.deq.CompareAndSwap(pos, pos+uint64(n)) {
			continue
		}
		var zero T
		for i := range n {
			p := pos + uint64(i)
			s := &r.slots[p&r.mask]
			if dst != nil {
				dst[i] = s.val
			}
			s.val = zero // let the garbage collector have what T points to
			s.seq.Store(p + r.mask + 1)
		}
		return n
	}
}

// GetBatchWait is GetBatch that waits, parked, while the ring is empty. It
// returns at least one item, or ErrClosed once the ring is closed and every
// item has been taken, or ctx.Err() when ctx ends first. Items already
// queued are returned even if ctx has ended.
func (r *Ring[T]) GetBatchWait(ctx context.Context, dst []T) (int, error) {
	n, err := r.getBatchWait(ctx.Done(), nil, dst)
	if err == errStopped {
		return 0, ctx.Err()
	}
	return n, err
}

// GetBatchWaitC is GetBatchWait for a consumer that also wakes on a timer:
// it waits until items arrive, stop is closed or wake fires, without the
// context a deadline would cost on every wait. It returns 0 and nil when
// stop or wake ended the wait with the ring still empty.
func (r *Ring[T]) GetBatchWaitC(stop <-chan struct{}, wake <-chan time.Time, dst []T) (int, error) {
	n, err := r.getBatchWait(stop, wake, dst)
	if err == errStopped {
		return 0, nil
	}
	return n, err
}

// errStopped reports internally that stop or wake ended a wait.
var errStopped = errors.New("wait stopped")

func (r *Ring[T]) getBatchWait(stop <-chan struct{}, wake <-chan time.Time, dst []T) (int, error) {
	if len(dst) == 0 {
		return 0, fmt.Errorf("wait for ring items: empty destination")
	}
	for {
		if n := r.GetBatch(dst); n > 0 {
			return n, nil
		}
		select {
		case <-stop:
			return 0, errStopped
		default:
		}
		enq := r.enq.Load()
		if enq&closedBit != 0 {
			if r.deq.Load() >= enq&^closedBit {
				return 0, ErrClosed
			}
			// A producer claimed a slot before Close and has not written
			// it yet. It is a few instructions from done; no one would
			// wake us, so yield instead of parking.
			if spinHook != nil {
				spinHook()
			}
			runtime.Gosched()
			continue
		}
		r.sleepers.Add(1)
		// Re-check after the announcement, or a put that came in between
		// the first check and the announcement would be missed.
		if n := r.GetBatch(dst); n > 0 {
			r.sleepers.Add(-1)
			return n, nil
		}
		timer := false
		select {
		case <-r.notify:
		case <-r.done:
		case <-stop:
		case <-wake:
			timer = true
		}
		r.sleepers.Add(-1)
		if timer {
			if n := r.GetBatch(dst); n > 0 {
				r.passWake()
				return n, nil
			}
			return 0, errStopped
		}
		if n := r.GetBatch(dst); n > 0 {
			r.passWake()
			return n, nil
		}
	}
}

// passWake wakes another parked consumer when items are left after a
// woken consumer took its batch: the puts that queued them may have found
// a wake-up pending and sent none of their own.
func (r *Ring[T]) passWake() {
	if r.sleepers.Load() > 0 && r.Len() > 0 {
		r.wake()
	}
}

// Close makes every later Put and TryPut fail and wakes parked consumers.
// Items already queued can still be taken. Close is idempotent.
func (r *Ring[T]) Close() {
	if old := r.enq.Or(closedBit); old&closedBit == 0 {
		close(r.done)
	}
}

// Closed reports whether Close has been called.
func (r *Ring[T]) Closed() bool { return r.enq.Load()&closedBit != 0 }

// Len returns the number of queued items; under concurrent use, an
// approximation. Slots claimed but not yet written count as queued.
func (r *Ring[T]) Len() int {
	deq := r.deq.Load() // first, so that enq >= deq
	enq := r.enq.Load() &^ closedBit
	n := enq - deq
	if n > r.mask+1 {
		n = r.mask + 1
	}
	return int(n)
}

// Cap returns the capacity, a power of two.
func (r *Ring[T]) Cap() int { return len(r.slots) }

// Drops returns how many items Put has lost since New.
func (r *Ring[T]) Drops() uint64 { return r.drops.Load() }
