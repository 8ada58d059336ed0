package influx

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/testenv"
)

// spoolBatch is batch i of the spool tests: 3 lines, distinct per i.
func spoolBatch(i int) []byte {
	var b []byte
	for k := range 3 {
		b = fmt.Appendf(b, "m,device=d%d v=%d %d\n", i, k, 1000*i+k)
	}
	return b
}

type spoolFixture struct {
	sp      *Spool
	logs    *testenv.LockedBuffer
	dropped map[string]int
	corrupt int
}

func openTestSpool(t *testing.T, dir string, budget, segment int64) *spoolFixture {
	t.Helper()
	f := &spoolFixture{logs: &testenv.LockedBuffer{}, dropped: map[string]int{}}
	sp, err := OpenSpool(SpoolOptions{Dir: dir, MaxBytes: budget, SegmentBytes: segment,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sp.setHooks(spoolHooks{
		dropped: func(reason string, lines int) { f.dropped[reason] += lines },
		corrupt: func(n int) { f.corrupt += n },
	})
	f.sp = sp
	t.Cleanup(func() {
		_ = sp.Close()
		if t.Failed() {
			t.Logf("spool log:\n%s", f.logs.String())
		}
	})
	return f
}

// drain replays the whole spool and returns the payloads in order.
func (f *spoolFixture) drain(t *testing.T) []string {
	t.Helper()
	var got []string
	for range 100000 {
		p, n, ok := f.sp.Next()
		if !ok {
			return got
		}
		if n != strings.Count(string(p), "\n") {
			t.Fatalf("record says %d lines, holds %q", n, p)
		}
		got = append(got, string(p))
		f.sp.Ack(n)
	}
	t.Fatal("spool never empties")
	return nil
}

func wantBatches(idx ...int) []string {
	var w []string
	for _, i := range idx {
		w = append(w, string(spoolBatch(i)))
	}
	return w
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestSpoolReplaysAcrossRestartInOrder(t *testing.T) {
	dir := t.TempDir()
	f := openTestSpool(t, dir, 1<<20, 300) // 4 records of 87 bytes per segment
	for i := range 20 {
		if err := f.sp.Append(spoolBatch(i), 3); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segFiles(t, dir)); n != 5 {
		t.Fatalf("%d segments, want 5 (4 records each)", n)
	}
	st := f.sp.Stats()
	if st.Segments != 5 || st.Oldest.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	// Deliver 6, then "crash" (close without acking the rest) and reopen.
	for range 6 {
		_, n, _ := f.sp.Next()
		f.sp.Ack(n)
	}
	if err := f.sp.Close(); err != nil {
		t.Fatal(err)
	}
	g := openTestSpool(t, dir, 1<<20, 300)
	got := g.drain(t)
	// The first segment (0..3) is gone; records 4 and 5 were delivered,
	// but the position inside a segment is not kept, so they come again.
	if want := wantBatches(seq(4, 20)...); !slices.Equal(got, want) {
		t.Fatalf("replayed %d batches:\n%q\nwant %d:\n%q", len(got), got, len(want), want)
	}
	if n := len(segFiles(t, dir)); n != 0 || !g.sp.Empty() || g.sp.Stats().Bytes != 0 {
		t.Fatalf("after replay: %d segment files, stats %+v", n, g.sp.Stats())
	}
	// Appends after a full replay go on, and replay.
	if err := g.sp.Append(spoolBatch(99), 3); err != nil {
		t.Fatal(err)
	}
	if got := g.drain(t); !slices.Equal(got, wantBatches(99)) {
		t.Fatalf("got %q", got)
	}
	if g.corrupt != 0 || len(g.dropped) != 0 {
		t.Fatalf("corrupt %d, dropped %v", g.corrupt, g.dropped)
	}
}

// TestSpoolInterleavedAppendAndReplay: replay of the segment being written
// sees records appended after it was loaded.
func TestSpoolInterleavedAppendAndReplay(t *testing.T) {
	for _, seg := range []int64{1 << 20, 300} {
		t.Run(fmt.Sprintf("segment %d bytes", seg), func(t *testing.T) { interleaved(t, seg) })
	}
}

func interleaved(t *testing.T, segment int64) {
	f := openTestSpool(t, t.TempDir(), 1<<20, segment)
	var got []string
	for i := range 10 {
		if err := f.sp.Append(spoolBatch(i), 3); err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 { // so that a loaded segment grows, then rotates, before the next Next
			p, n, ok := f.sp.Next()
			if !ok {
				t.Fatalf("nothing to replay after append %d", i)
			}
			got = append(got, string(p))
			f.sp.Ack(n)
		}
	}
	got = append(got, f.drain(t)...)
	if want := wantBatches(seq(0, 10)...); !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestSpoolCorruptByteSkipsOneRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		// at is the byte to flip in record 2, from its start.
		at int
	}{
		{"payload", recordHeader + 5},
		{"length", 4},
		{"magic", 0},
		{"checksum", 21},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := openTestSpool(t, dir, 1<<20, 1<<20)
			for i := range 5 {
				if err := f.sp.Append(spoolBatch(i), 3); err != nil {
					t.Fatal(err)
				}
			}
			_ = f.sp.Close()
			path := segFiles(t, dir)[0]
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rec2 := 2*recordHeader + len(spoolBatch(0)) + len(spoolBatch(1))
			b[rec2+tc.at] ^= 0x40
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			g := openTestSpool(t, dir, 1<<20, 1<<20)
			got := g.drain(t)
			if want := wantBatches(0, 1, 3, 4); !slices.Equal(got, want) {
				t.Fatalf("replayed %q\nwant %q", got, want)
			}
			if g.corrupt != 1 {
				t.Errorf("corrupt records counted %d, want 1", g.corrupt)
			}
			if n := strings.Count(g.logs.String(), "spool record corrupt, skipped"); n != 1 {
				t.Errorf("%d log lines about the corrupt record, want 1:\n%s", n, g.logs.String())
			}
		})
	}
}

func TestSpoolTornLastRecord(t *testing.T) {
	dir := t.TempDir()
	f := openTestSpool(t, dir, 1<<20, 1<<20)
	for i := range 4 {
		if err := f.sp.Append(spoolBatch(i), 3); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.sp.Close()
	path := segFiles(t, dir)[0]
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of writing record 3.
	if err := os.Truncate(path, info.Size()-7); err != nil {
		t.Fatal(err)
	}
	g := openTestSpool(t, dir, 1<<20, 1<<20)
	if got := g.drain(t); !slices.Equal(got, wantBatches(0, 1, 2)) {
		t.Fatalf("replayed %q", got)
	}
	if g.corrupt != 1 || !strings.Contains(g.logs.String(), "err=\"truncated record\"") {
		t.Fatalf("corrupt %d, log:\n%s", g.corrupt, g.logs.String())
	}
}

func TestSpoolBudgetDropsOldestSegments(t *testing.T) {
	dir := t.TempDir()
	rec := int64(recordHeader + len(spoolBatch(10)))
	// Segments of 2 records, a budget of 3 segments.
	f := openTestSpool(t, dir, 6*rec, 2*rec)
	for i := 10; i < 30; i++ {
		if err := f.sp.Append(spoolBatch(i), 3); err != nil {
			t.Fatal(err)
		}
	}
	// 20 records in 10 segments; 3 fit: 7 segments (14 records, 42
	// lines) dropped.
	if f.dropped["spool_budget"] != 42 {
		t.Errorf("dropped %v, want 42 lines for spool_budget", f.dropped)
	}
	if n := strings.Count(f.logs.String(), "spool over its disk budget"); n != 1 {
		t.Errorf("%d budget log lines, want 1 (the first drop):\n%s", n, f.logs.String())
	}
	if st := f.sp.Stats(); st.Bytes != 6*rec || st.Segments != 3 {
		t.Errorf("stats %+v, want %d bytes in 3 segments", st, 6*rec)
	}
	if got := f.drain(t); !slices.Equal(got, wantBatches(seq(24, 30)...)) {
		t.Fatalf("replayed %q", got)
	}
}

func TestSpoolStatsOldest(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	f := openTestSpool(t, t.TempDir(), 1<<20, 1<<20)
	f.sp.now = func() time.Time { return now }
	_ = f.sp.Append(spoolBatch(0), 3)
	now = now.Add(time.Minute)
	_ = f.sp.Append(spoolBatch(1), 3)
	if got := f.sp.Stats().Oldest; !got.Equal(time.UnixMilli(1_700_000_000_000)) {
		t.Fatalf("oldest %v", got)
	}
	_, n, _ := f.sp.Next()
	f.sp.Ack(n)
	if got := f.sp.Stats().Oldest; !got.Equal(time.UnixMilli(1_700_000_060_000)) {
		t.Fatalf("oldest after one replayed %v", got)
	}
}

// openSpoolFor opens a spool for a sink test; the sink closes it.
func openSpoolFor(t *testing.T, dir string, budget int64) *Spool {
	t.Helper()
	sp, err := OpenSpool(SpoolOptions{Dir: dir, MaxBytes: budget, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// benchBatch returns n lines of 12-field device polls as the encoder
// writes them (the fleet of BenchmarkEncodePoll), from poll first on.
func benchBatch(first, n int) []byte {
	m := &config.Model{}
	var points []profile.Point
	for i := range 12 {
		points = append(points, profile.Point{Name: fmt.Sprintf("p%d", i), Type: profile.Float32})
	}
	for d := range 100 {
		m.Devices = append(m.Devices, &config.Device{Index: uint32(d), ID: fmt.Sprintf("F%d-D%d", d/10, d), Feeder: fmt.Sprintf("F%d", d/10),
			Points: points, Labels: map[string]string{"substation": "north"}})
	}
	enc := NewEncoder(m)
	var st PollState
	var dst []byte
	poll := make([]sample.Sample, 13)
	for i := first; i < first+n; i++ {
		d := uint32(i % 100)
		ns := int64(1_700_000_000_000_000_000) + int64(i/100)*1e9
		for k := range 12 {
			poll[k] = sample.Sample{Time: ns, Device: d, Point: uint16(k), Seq: uint32(i / 100), Value: 7200 + float64(k) + 0.25}
		}
		poll[12] = sample.Sample{Time: ns, Device: d, Point: sample.NoPoint, Seq: uint32(i / 100), Value: 1, Flags: sample.DeviceStatus | sample.EndOfPoll}
		dst, _ = enc.Append(dst, &st, poll)
	}
	return dst
}

// BenchmarkSpoolAppend: batches of 5,000 lines (12 fields each) appended
// to the spool, with an fsync after every batch or every 200 ms.
func BenchmarkSpoolAppend(b *testing.B) {
	batch := benchBatch(0, 5000)
	for _, fs := range []time.Duration{0, 200 * time.Millisecond} {
		name := "fsync=batch"
		if fs > 0 {
			name = "fsync=" + fs.String()
		}
		b.Run(name, func(b *testing.B) {
			sp, err := OpenSpool(SpoolOptions{Dir: b.TempDir(), MaxBytes: 256 << 20, FsyncInterval: fs, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if err := sp.Append(batch, 5000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*5000/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkSpoolReplay: reading back and acknowledging spooled batches of
// 5,000 lines, segments deleted as they empty.
func BenchmarkSpoolReplay(b *testing.B) {
	batch := benchBatch(0, 5000)
	sp, err := OpenSpool(SpoolOptions{Dir: b.TempDir(), MaxBytes: 1 << 30, FsyncInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	b.SetBytes(int64(len(batch)))
	replayed := 0
	for b.Loop() {
		b.StopTimer()
		if sp.Empty() {
			for range 64 {
				if err := sp.Append(batch, 5000); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		_, n, ok := sp.Next()
		if !ok {
			b.Fatal("spool empty")
		}
		sp.Ack(n)
		replayed += n
	}
	b.ReportMetric(float64(replayed)/b.Elapsed().Seconds(), "lines/s")
}

// TestSpoolRandomInterleaving: appends and replays in a random order over
// small segments, with restarts: every batch comes out once, in order.
func TestSpoolRandomInterleaving(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		dir := t.TempDir()
		f := openTestSpool(t, dir, 1<<20, int64(100+rng.IntN(400)))
		next, want := 0, 0
		for range 400 {
			switch r := rng.IntN(10); {
			case r < 5:
				if err := f.sp.Append(spoolBatch(next), 3); err != nil {
					t.Fatal(err)
				}
				next++
			case r < 9:
				p, n, ok := f.sp.Next()
				if !ok {
					if want != next {
						t.Fatalf("seed %d: spool empty with %d..%d not replayed", seed, want, next)
					}
					continue
				}
				if string(p) != string(spoolBatch(want)) {
					t.Fatalf("seed %d: replayed %q, want batch %d", seed, p, want)
				}
				f.sp.Ack(n)
				want++
			default:
				// Restart: what was delivered of the oldest segment may come
				// again; skip those.
				_ = f.sp.Close()
				f = openTestSpool(t, dir, 1<<20, int64(100+rng.IntN(400)))
				for {
					p, n, ok := f.sp.Next()
					if !ok || string(p) == string(spoolBatch(want)) {
						break
					}
					f.sp.Ack(n)
				}
			}
		}
		if f.corrupt != 0 || len(f.dropped) != 0 {
			t.Fatalf("seed %d: corrupt %d, dropped %v", seed, f.corrupt, f.dropped)
		}
	}
}
