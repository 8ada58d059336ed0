package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const determinismScenario = `
events:
  - {at: 5s, action: sag, target: F2, magnitude: 0.8, duration: 4s, phases: C}
  - {at: 10s, action: fault, target: F1-S2, permanent: true}
  - {after: 20s, action: open, target: F1-SEC}
  - {after: 1s, action: clear_fault, target: F1-S2}
  - {after: 1s, action: close, target: F1-REC}
  - {at: 40s, action: fault, target: F1-S1, clear_after: 3s}
  - {at: 50s, action: close, target: F1-BRK}
  - {at: 55s, action: close, target: TIE}
  - {at: 60s, action: set, target: F2-MTR, point: kw, value: 12.5}
  - {at: 65s, action: swell, target: F1-S1, magnitude: 1.12, duration: 7s}
`

// snapshot is every register value of every device, as text.
func snapshot(s *Sim) string {
	var b strings.Builder
	b.WriteString(s.Now().Sub(t0).String())
	for _, d := range s.Devices {
		vals := d.Values()
		b.WriteString(" | " + d.ID)
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			b.WriteString(" " + k + "=")
			switch v := vals[k].(type) {
			case float64:
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			case string:
				b.WriteString(v)
			}
		}
	}
	return b.String()
}

// runTrace plays determinismScenario on twoFeeders with a manual clock,
// advancing it by the steps (clock time, which the scale turns into
// simulated time), and records a snapshot whenever simulated time lands on
// a whole second.
func runTrace(t *testing.T, seed uint64, scale float64, steps []time.Duration) map[time.Duration]string {
	t.Helper()
	cfg := loadTestConfig(t, strings.Replace(fmt.Sprintf(twoFeeders, ""), "seed: 9", "seed: "+strconv.FormatUint(seed, 10), 1))
	sc, err := ParseScenario("determinism", []byte(determinismScenario))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Play(sc); err != nil {
		t.Fatal(err)
	}
	clock := NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s.attach(clock, scale)
	ctx, cancel := context.WithCancel(context.Background())
	done := clock.Every(ctx, time.Second, func(time.Time) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.sync(); err != nil {
			t.Error(err)
		}
	})
	defer func() {
		cancel()
		<-done
	}()
	out := map[time.Duration]string{0: snapshot(s)}
	for _, d := range steps {
		clock.Advance(d)
		if el := s.Now().Sub(t0); el%time.Second == 0 {
			out[el] = snapshot(s)
		}
	}
	return out
}

func repeat(n int, ds ...time.Duration) []time.Duration {
	var out []time.Duration
	for range n {
		out = append(out, ds...)
	}
	return out
}

func TestDeterminism(t *testing.T) {
	const n = 140
	a := runTrace(t, 5, 1, repeat(n, time.Second))
	if len(a) != n+1 {
		t.Fatalf("%d snapshots, want %d", len(a), n+1)
	}
	// The same seed and scenario again, with the clock running four times
	// faster and waking the simulation at uneven moments, sometimes
	// skipping several seconds: at every whole second it reaches, the
	// registers are the same.
	b := runTrace(t, 5, 4, append(repeat(30, 100*time.Millisecond, 150*time.Millisecond), repeat(12, 2*time.Second, 250*time.Millisecond)...))
	if len(b) < 40 {
		t.Fatalf("only %d snapshots in the second run", len(b))
	}
	for el, snap := range b {
		if a[el] != snap {
			t.Fatalf("at %s the runs differ:\n%s\n%s", el, a[el], snap)
		}
	}
	// The scenario did something: the recloser tripped at 10 s.
	if !strings.Contains(a[10*time.Second], "F1-REC ") || strings.Contains(a[10*time.Second], "F1-REC closed=1") {
		t.Fatalf("F1-REC still closed at 10s: %s", a[10*time.Second])
	}
	// Another seed gives other noise.
	c := runTrace(t, 6, 1, repeat(5, time.Second))
	if c[3*time.Second] == a[3*time.Second] {
		t.Fatal("seeds 5 and 6 gave the same registers")
	}
}
