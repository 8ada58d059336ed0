package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangLimit only turns a hang (a lost wake-up, a consumer that never sees
// Close) into a failure with a message; no test depends on its length.
const hangLimit = 30 * time.Second

func mustNew[T any](t testing.TB, capacity int, p Policy) *Ring[T] {
	t.Helper()
	r, err := New[T](capacity, p)
	if err != nil {
		t.Fatalf("New(%d, %s): %v", capacity, p, err)
	}
	return r
}

func drain[T any](r *Ring[T]) []T {
	var out []T
	buf := make([]T, 3) // small, so that draining takes several batches
	for {
		n := r.GetBatch(buf)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestNew(t *testing.T) {
	tests := []struct {
		capacity int
		policy   Policy
		wantCap  int
		wantErr  string
	}{
		{capacity: 1, wantCap: 2},
		{capacity: 2, wantCap: 2},
		{capacity: 3, wantCap: 4},
		{capacity: 4, wantCap: 4},
		{capacity: 1000, policy: DropOldest, wantCap: 1024},
		{capacity: 1024, wantCap: 1024},
		{capacity: 0, wantErr: "create ring: capacity 0 out of range 1..4194304"},
		{capacity: -5, wantErr: "create ring: capacity -5 out of range 1..4194304"},
		{capacity: MaxCapacity + 1, wantErr: "create ring: capacity 4194305 out of range 1..4194304"},
		{capacity: 8, policy: 7, wantErr: "create ring: unknown policy(7)"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%s", tc.capacity, tc.policy), func(t *testing.T) {
			r, err := New[int](tc.capacity, tc.policy)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("New error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if r.Cap() != tc.wantCap || r.Len() != 0 || r.Drops() != 0 {
				t.Fatalf("Cap, Len, Drops = %d, %d, %d; want %d, 0, 0", r.Cap(), r.Len(), r.Drops(), tc.wantCap)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		ok   bool
	}{
		{"drop_newest", DropNewest, true},
		{"drop_oldest", DropOldest, true},
		{"DropOldest", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParsePolicy(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ParsePolicy(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

// TestFull puts 10 items into a ring of 4 and checks what each policy keeps
// and counts.
func TestFull(t *testing.T) {
	tests := []struct {
		policy   Policy
		wantPut  []bool
		wantKept []int
	}{
		{DropNewest, []bool{true, true, true, true, false, false, false, false, false, false}, seq(1, 4)},
		{DropOldest, []bool{true, true, true, true, true, true, true, true, true, true}, seq(7, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.policy.String(), func(t *testing.T) {
			r := mustNew[int](t, 4, tc.policy)
			var got []bool
			for i := 1; i <= 10; i++ {
				got = append(got, r.Put(i))
				if want := min(i, 4); r.Len() != want {
					t.Fatalf("after %d puts Len = %d, want %d", i, r.Len(), want)
				}
			}
			if !slices.Equal(got, tc.wantPut) {
				t.Fatalf("Put results = %v, want %v", got, tc.wantPut)
			}
			if r.Drops() != 6 {
				t.Fatalf("Drops = %d, want 6", r.Drops())
			}
			// TryPut on a full ring neither applies the policy nor counts.
			if r.TryPut(99) {
				t.Fatal("TryPut on a full ring succeeded")
			}
			if r.Drops() != 6 {
				t.Fatalf("Drops after TryPut = %d, want 6", r.Drops())
			}
			if kept := drain(r); !slices.Equal(kept, tc.wantKept) {
				t.Fatalf("kept %v, want %v", kept, tc.wantKept)
			}
			if r.Len() != 0 {
				t.Fatalf("Len after drain = %d, want 0", r.Len())
			}
			// Room again: both policies accept.
			if !r.Put(11) || r.Drops() != 6 {
				t.Fatalf("Put after drain failed or counted (drops %d)", r.Drops())
			}
		})
	}
}

func TestPutBatch(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		first     []int // put first, must all fit
		batch     []int
		try       bool // TryPutBatch instead of PutBatch
		wantN     int
		wantDrops uint64
		wantKept  []int
	}{
		{"fits", DropNewest, nil, seq(1, 3), false, 3, 0, seq(1, 3)},
		{"empty batch", DropOldest, seq(1, 4), nil, false, 0, 0, seq(1, 4)},
		{"drop newest partial", DropNewest, seq(1, 3), seq(4, 6), false, 1, 2, seq(1, 4)},
		{"drop newest full", DropNewest, seq(1, 4), seq(5, 6), false, 0, 2, seq(1, 4)},
		{"drop newest larger than ring", DropNewest, nil, seq(1, 10), false, 4, 6, seq(1, 4)},
		{"drop oldest partial", DropOldest, seq(1, 3), seq(4, 6), false, 3, 2, seq(3, 6)},
		{"drop oldest full", DropOldest, seq(1, 4), seq(5, 6), false, 2, 2, seq(3, 6)},
		// 1..4 go in, are discarded for 5..8, two of which make room for 9, 10.
		{"drop oldest larger than ring", DropOldest, nil, seq(1, 10), false, 10, 6, seq(7, 10)},
		{"try partial", DropOldest, seq(1, 3), seq(4, 6), true, 1, 0, seq(1, 4)},
		{"try full", DropNewest, seq(1, 4), seq(5, 6), true, 0, 0, seq(1, 4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew[int](t, 4, tc.policy)
			if n := r.TryPutBatch(tc.first); n != len(tc.first) {
				t.Fatalf("TryPutBatch(%v) = %d", tc.first, n)
			}
			var n int
			if tc.try {
				n = r.TryPutBatch(tc.batch)
			} else {
				n = r.PutBatch(tc.batch)
			}
			if n != tc.wantN || r.Drops() != tc.wantDrops {
				t.Fatalf("put %v: queued %d, drops %d; want %d, %d", tc.batch, n, r.Drops(), tc.wantN, tc.wantDrops)
			}
			if kept := drain(r); !slices.Equal(kept, tc.wantKept) {
				t.Fatalf("kept %v, want %v", kept, tc.wantKept)
			}
		})
	}

	r := mustNew[int](t, 4, DropOldest)
	r.Close()
	if n := r.PutBatch(seq(1, 3)); n != 0 || r.Drops() != 0 {
		t.Fatalf("PutBatch after Close: queued %d, drops %d", n, r.Drops())
	}
}

func TestFIFOWrapAround(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		burst    int
		batch    int
	}{
		{"cap2 burst1 batch1", 2, 1, 1},
		{"cap2 burst2 batch1", 2, 2, 1},
		{"cap8 burst5 batch3", 8, 5, 3},
		{"cap8 burst8 batch16", 8, 8, 16},
		{"cap16 burst7 batch2", 16, 7, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew[int](t, tc.capacity, DropNewest)
			buf := make([]int, tc.batch)
			next, want := 0, 0
			for lap := 0; lap < 100; lap++ {
				for range tc.burst {
					if !r.TryPut(next) {
						t.Fatalf("TryPut(%d) failed with Len %d", next, r.Len())
					}
					next++
				}
				for want < next {
					n := r.GetBatch(buf)
					if wantN := min(tc.batch, next-want); n != wantN {
						t.Fatalf("GetBatch = %d, want %d", n, wantN)
					}
					for _, v := range buf[:n] {
						if v != want {
							t.Fatalf("got %d, want %d", v, want)
						}
						want++
					}
				}
				if n := r.GetBatch(buf); n != 0 {
					t.Fatalf("GetBatch on empty ring = %d", n)
				}
			}
		})
	}
}

func TestGetBatchClearsSlots(t *testing.T) {
	r := mustNew[*int](t, 4, DropNewest)
	for range 3 {
		r.Put(new(int))
	}
	buf := make([]*int, 4)
	if n := r.GetBatch(buf); n != 3 {
		t.Fatalf("GetBatch = %d, want 3", n)
	}
	for i := range r.slots {
		if r.slots[i].val != nil {
			t.Fatalf("slot %d still references a taken item", i)
		}
	}
}

func TestClose(t *testing.T) {
	tests := []struct {
		name   string
		queued int
		policy Policy
	}{
		{"empty", 0, DropNewest},
		{"with items", 3, DropNewest},
		{"full drop oldest", 4, DropOldest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew[int](t, 4, tc.policy)
			for i := range tc.queued {
				r.Put(i)
			}
			r.Close()
			r.Close() // idempotent
			if r.Put(100) || r.TryPut(101) {
				t.Fatal("put after Close succeeded")
			}
			if r.Drops() != 0 {
				t.Fatalf("Drops = %d after Close, want 0", r.Drops())
			}
			if r.Len() != tc.queued {
				t.Fatalf("Len = %d, want %d", r.Len(), tc.queued)
			}
			var got []int
			buf := make([]int, 2)
			for {
				n, err := r.GetBatchWait(context.Background(), buf)
				if err != nil {
					if !errors.Is(err, ErrClosed) || !errors.Is(err, io.EOF) {
						t.Fatalf("GetBatchWait error = %v, want ErrClosed matching io.EOF", err)
					}
					break
				}
				got = append(got, buf[:n]...)
			}
			if want := seq(0, tc.queued-1); !slices.Equal(got, want) {
				t.Fatalf("drained %v, want %v", got, want)
			}
			// Still closed and empty on the next call.
			if n, err := r.GetBatchWait(context.Background(), buf); n != 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("GetBatchWait after drain = %d, %v", n, err)
			}
		})
	}
}

func TestGetBatchWaitContext(t *testing.T) {
	r := mustNew[int](t, 4, DropNewest)
	buf := make([]int, 4)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := r.GetBatchWait(ctx, buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("empty ring, cancelled ctx: %d, %v", n, err)
	}
	// Queued items win over an ended context.
	r.Put(7)
	if n, err := r.GetBatchWait(ctx, buf); n != 1 || err != nil || buf[0] != 7 {
		t.Fatalf("queued item, cancelled ctx: %d, %v, %d", n, err, buf[0])
	}
	if _, err := r.GetBatchWait(context.Background(), nil); err == nil {
		t.Fatal("GetBatchWait with empty dst returned no error")
	}

	// A parked consumer returns when its context is cancelled.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.GetBatchWait(ctx, buf)
		errc <- err
	}()
	waitParked(t, r, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("parked consumer after cancel: %v", err)
	}
	if s := r.sleepers.Load(); s != 0 {
		t.Fatalf("sleepers = %d after return, want 0", s)
	}
}

// waitParked waits until n consumers of r have announced they are parking
// and n goroutines are blocked in getBatchWait's select, as the runtime's
// goroutine dump shows them: an announcement alone does not prove that a
// consumer reached the wait a put must end.
func waitParked[T any](t *testing.T, r *Ring[T], n int32) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for r.sleepers.Load() != n || parkedInSelect() != int(n) {
		if time.Now().After(deadline) {
			t.Fatalf("consumers never parked: sleepers = %d, blocked in select = %d, want %d",
				r.sleepers.Load(), parkedInSelect(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// parkedInSelect counts the goroutines blocked in a select inside
// getBatchWait.
func parkedInSelect() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		if strings.Contains(head, "[select") && strings.Contains(g, ").getBatchWait(") {
			n++
		}
	}
	return n
}

// TestParkedConsumersTakeEveryItem: with two consumers parked, a put that
// queues two items sends one wake-up (a pending one absorbs the second).
// The consumer it wakes takes one item and goes away; the other must
// still be woken for the item left behind.
func TestParkedConsumersTakeEveryItem(t *testing.T) {
	r := mustNew[int](t, 8, DropNewest)
	got := make(chan int, 2)
	hold := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]int, 1)
			n, err := r.GetBatchWait(context.Background(), buf)
			if err != nil {
				return // closed by the test's failure path
			}
			got <- buf[n-1]
			<-hold // busy elsewhere: it does not come back for the rest
		}()
	}
	waitParked(t, r, 2)
	if n := r.PutBatch([]int{1, 2}); n != 2 {
		t.Fatalf("PutBatch queued %d, want 2", n)
	}
	var items []int
	for range 2 {
		select {
		case v := <-got:
			items = append(items, v)
		case <-time.After(hangLimit):
			r.Close()
			close(hold)
			wg.Wait()
			t.Fatalf("a parked consumer was never woken for the item left behind; got %v", items)
		}
	}
	close(hold)
	wg.Wait()
	slices.Sort(items)
	if !slices.Equal(items, []int{1, 2}) {
		t.Fatalf("consumers took %v, want [1 2]", items)
	}
}

// TestWakeup parks a consumer and wakes it with a single Put, many times.
func TestWakeup(t *testing.T) {
	for _, put := range []string{"Put", "TryPut", "PutBatch"} {
		t.Run(put, func(t *testing.T) {
			r := mustNew[int](t, 8, DropNewest)
			got := make(chan int)
			errc := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
				defer cancel()
				buf := make([]int, 4)
				for {
					n, err := r.GetBatchWait(ctx, buf)
					if err != nil {
						errc <- err
						return
					}
					for _, v := range buf[:n] {
						got <- v
					}
				}
			}()
			for i := range 200 {
				waitParked(t, r, 1)
				var ok bool
				switch put {
				case "Put":
					ok = r.Put(i)
				case "TryPut":
					ok = r.TryPut(i)
				case "PutBatch":
					ok = r.PutBatch([]int{i}) == 1
				}
				if !ok {
					t.Fatalf("%s(%d) failed", put, i)
				}
				select {
				case v := <-got:
					if v != i {
						t.Fatalf("got %d, want %d", v, i)
					}
				case err := <-errc:
					t.Fatalf("wake-up for item %d lost: consumer returned %v", i, err)
				}
			}
			r.Close()
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Fatalf("consumer ended with %v, want ErrClosed", err)
			}
		})
	}
}

// TestPingPong hands one item back and forth between two goroutines through
// two rings, so that every put races with the other side going to sleep.
// A lost wake-up shows as a consumer that ends with DeadlineExceeded.
func TestPingPong(t *testing.T) {
	const rounds = 20000
	ping := mustNew[int](t, 2, DropNewest)
	pong := mustNew[int](t, 2, DropNewest)
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()

	errc := make(chan error, 1)
	go func() {
		buf := make([]int, 1)
		for {
			if _, err := ping.GetBatchWait(ctx, buf); err != nil {
				errc <- err
				return
			}
			pong.Put(buf[0] + 1)
		}
	}()
	buf := make([]int, 1)
	for i := 0; i < rounds; i += 2 {
		ping.Put(i)
		if _, err := pong.GetBatchWait(ctx, buf); err != nil {
			t.Fatalf("round %d: %v (lost wake-up)", i, err)
		}
		if buf[0] != i+1 {
			t.Fatalf("round %d: got %d", i, buf[0])
		}
	}
	ping.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("echo goroutine ended with %v (lost wake-up?)", err)
	}
}

type item struct {
	producer int
	seq      int
}

// TestProducersConsumers runs many producers against one or more consumers
// and checks that each item arrives exactly once and that every consumer
// sees each producer's items in order. Lossless producers retry TryPut until
// their item is in, so nothing may be lost. Lossy producers call Put once
// per item, so delivered + Drops() must equal what was put.
func TestProducersConsumers(t *testing.T) {
	tests := []struct {
		name      string
		producers int
		consumers int
		capacity  int
		policy    Policy
		lossy     bool
		putBatch  int // items per PutBatch/TryPutBatch; 0: one by one
		perProd   int
		batch     int
	}{
		{"8x1 lossless", 8, 1, 64, DropNewest, false, 0, 20000, 32},
		{"8x1 lossless tiny ring", 8, 1, 2, DropNewest, false, 0, 5000, 7},
		{"4x3 lossless", 4, 3, 16, DropNewest, false, 0, 10000, 4},
		{"8x1 drop newest", 8, 1, 16, DropNewest, true, 0, 20000, 5},
		{"8x1 drop oldest", 8, 1, 16, DropOldest, true, 0, 20000, 5},
		{"4x2 drop oldest", 4, 2, 8, DropOldest, true, 0, 10000, 3},
		{"8x1 lossless batches", 8, 1, 64, DropNewest, false, 13, 20000, 32},
		{"4x2 lossless batches", 4, 2, 16, DropNewest, false, 7, 10000, 5},
		{"8x1 drop newest batches", 8, 1, 16, DropNewest, true, 5, 20000, 5},
		{"8x1 drop oldest batches", 8, 1, 16, DropOldest, true, 5, 20000, 5},
		{"4x2 drop oldest big batches", 4, 2, 8, DropOldest, true, 20, 10000, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew[item](t, tc.capacity, tc.policy)
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			defer cancel()

			rejected := make([]int, tc.producers)
			var prodWG sync.WaitGroup
			for p := range tc.producers {
				prodWG.Go(func() {
					if tc.putBatch > 0 {
						putBatches(ctx, r, p, tc.perProd, tc.putBatch, tc.lossy, &rejected[p])
						return
					}
					for s := range tc.perProd {
						if tc.lossy {
							if !r.Put(item{p, s}) {
								rejected[p]++
							}
							continue
						}
						for !r.TryPut(item{p, s}) {
							if ctx.Err() != nil {
								return // reported by the consumers
							}
							runtime.Gosched()
						}
					}
				})
			}

			received := make([][]item, tc.consumers)
			errs := make([]error, tc.consumers)
			var consWG sync.WaitGroup
			for c := range tc.consumers {
				consWG.Go(func() {
					buf := make([]item, tc.batch)
					for {
						n, err := r.GetBatchWait(ctx, buf)
						if err != nil {
							errs[c] = err
							return
						}
						received[c] = append(received[c], buf[:n]...)
					}
				})
			}
			prodWG.Wait()
			r.Close()
			consWG.Wait()

			seen := make([][]bool, tc.producers)
			for p := range seen {
				seen[p] = make([]bool, tc.perProd)
			}
			total := 0
			for c, got := range received {
				if !errors.Is(errs[c], ErrClosed) {
					t.Fatalf("consumer %d ended with %v, want ErrClosed", c, errs[c])
				}
				last := make([]int, tc.producers)
				for p := range last {
					last[p] = -1
				}
				for _, it := range got {
					if seen[it.producer][it.seq] {
						t.Fatalf("item %+v delivered twice", it)
					}
					seen[it.producer][it.seq] = true
					if it.seq <= last[it.producer] {
						t.Fatalf("consumer %d: producer %d item %d after %d", c, it.producer, it.seq, last[it.producer])
					}
					last[it.producer] = it.seq
				}
				total += len(got)
			}
			produced := tc.producers * tc.perProd
			if !tc.lossy {
				if total != produced || r.Drops() != 0 {
					t.Fatalf("delivered %d of %d with %d drops", total, produced, r.Drops())
				}
				return
			}
			if uint64(total)+r.Drops() != uint64(produced) {
				t.Fatalf("delivered %d + drops %d != put %d", total, r.Drops(), produced)
			}
			rej := 0
			for _, n := range rejected {
				rej += n
			}
			// Under DropNewest every drop is a rejected item; under
			// DropOldest most drops are discarded old items instead.
			if tc.policy == DropNewest && uint64(rej) != r.Drops() {
				t.Fatalf("%d Puts returned false, Drops = %d", rej, r.Drops())
			}
			if tc.policy == DropOldest && uint64(rej) > r.Drops() {
				t.Fatalf("%d Puts returned false, more than Drops = %d", rej, r.Drops())
			}
			t.Logf("delivered %d, dropped %d, rejected %d", total, r.Drops(), rej)
		})
	}
}

// putBatches puts items {p, 0..count-1} in batches of size; lossy counts
// the items PutBatch did not queue, lossless retries them with TryPutBatch.
func putBatches(ctx context.Context, r *Ring[item], p, count, size int, lossy bool, rejected *int) {
	batch := make([]item, 0, size)
	for s := 0; s < count; {
		batch = batch[:0]
		for ; s < count && len(batch) < size; s++ {
			batch = append(batch, item{p, s})
		}
		if lossy {
			*rejected += len(batch) - r.PutBatch(batch)
			continue
		}
		for rest := batch; len(rest) > 0; {
			n := r.TryPutBatch(rest)
			rest = rest[n:]
			if n == 0 {
				if ctx.Err() != nil {
					return
				}
				runtime.Gosched()
			}
		}
	}
}

// TestNoGoroutineLeak parks consumers, closes the ring and checks that they
// all return and the goroutine count falls back.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	r := mustNew[int](t, 8, DropNewest)
	const consumers = 4
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for range consumers {
		wg.Go(func() {
			_, err := r.GetBatchWait(context.Background(), make([]int, 1))
			errs <- err
		})
	}
	waitParked(t, r, consumers)
	r.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("consumer returned %v, want ErrClosed", err)
		}
	}
	deadline := time.Now().Add(hangLimit)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCloseWaitsForClaimedSlot: a consumer must not report ErrClosed while
// a producer that claimed a slot before Close has not written it yet.
func TestCloseWaitsForClaimedSlot(t *testing.T) {
	r := mustNew[int](t, 4, DropNewest)
	spun := make(chan struct{})
	var once sync.Once
	spinHook = func() { once.Do(func() { close(spun) }) }
	t.Cleanup(func() { spinHook = nil })
	// Simulate a producer paused between claim and publish at position 0.
	r.enq.Store(1)
	r.Close()
	res := make(chan error, 1)
	got := make(chan int, 1)
	go func() {
		buf := make([]int, 2)
		n, err := r.GetBatchWait(context.Background(), buf)
		if n == 1 {
			got <- buf[0]
		}
		res <- err
	}()
	// The consumer must be seen yielding to the paused producer before it
	// finishes: without that the test would pass for a consumer that never
	// got there.
	<-spun
	r.slots[0].val = 42
	r.slots[0].seq.Store(1)
	if err := <-res; err != nil {
		t.Fatalf("GetBatchWait = %v, want the claimed item", err)
	}
	if v := <-got; v != 42 {
		t.Fatalf("got %d, want 42", v)
	}
	if _, err := r.GetBatchWait(context.Background(), make([]int, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the item: %v, want ErrClosed", err)
	}
}

func TestGetBatchWaitC(t *testing.T) {
	r, err := New[int](8, DropNewest)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]int, 4)
	timer := time.NewTimer(20 * time.Millisecond)
	if n, err := r.GetBatchWaitC(nil, timer.C, dst); n != 0 || err != nil {
		t.Fatalf("timer wake on an empty ring: %d, %v", n, err)
	}
	stop := make(chan struct{})
	close(stop)
	if n, err := r.GetBatchWaitC(stop, nil, dst); n != 0 || err != nil {
		t.Fatalf("stop on an empty ring: %d, %v", n, err)
	}
	r.Put(7)
	if n, err := r.GetBatchWaitC(stop, nil, dst); n != 1 || err != nil || dst[0] != 7 {
		t.Fatalf("queued item with stop closed: %d, %v, %v", n, err, dst[:n])
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		r.Put(8)
	}()
	if n, err := r.GetBatchWaitC(nil, nil, dst); n != 1 || err != nil || dst[0] != 8 {
		t.Fatalf("parked consumer: %d, %v, %v", n, err, dst[:n])
	}
	r.Close()
	if n, err := r.GetBatchWaitC(nil, nil, dst); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %d, %v", n, err)
	}
}
