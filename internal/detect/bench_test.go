package detect

import (
	"math"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// shard builds a Detector of n devices with 12 points each (3 voltages, a
// breaker, the rest only recorded) and one poll round of samples at normal
// voltage: 12 points and a device-status sample per device.
func shard(tb testing.TB, n int) (*Detector, []sample.Sample) {
	roles := []profile.Role{
		profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC,
		profile.RoleCurrentA, profile.RoleCurrentB, profile.RoleCurrentC, profile.RoleCurrentN,
		profile.RoleActivePower, profile.RoleReactivePower, profile.RolePowerFactor, profile.RoleFrequency,
		profile.RoleBreakerClosed,
	}
	infos := make([]DeviceInfo, n)
	for i := range infos {
		// Feeders of 10 devices in a chain.
		up := i - 1
		if i%10 == 0 {
			up = -1
		}
		infos[i] = DeviceInfo{Index: uint32(i), ID: "D", Feeder: "F", Upstream: up,
			Nominal: 7200, PTRatio: 60, Interval: time.Second, PointRoles: roles}
	}
	events := 0
	d, err := New(DefaultParams(), infos, func(*Event) { events++ })
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]sample.Sample, 0, n*(len(roles)+1))
	for i := range n {
		for p := range roles {
			v := 50 + float64(p)
			switch roles[p] {
			case profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC:
				v = 120 * (1 + 0.02*math.Sin(float64(i*3+p))) // inside Range A
			case profile.RoleBreakerClosed:
				v = 1
			}
			buf = append(buf, sample.Sample{Time: at(0), Value: v, Device: uint32(i), Point: uint16(p)})
		}
		buf = append(buf, sample.Sample{Time: at(0), Value: 1, Device: uint32(i), Point: sample.NoPoint,
			Flags: sample.DeviceStatus | sample.EndOfPoll})
	}
	// Warm up: the first round sets the initial states.
	for i := range buf {
		d.Process(&buf[i])
	}
	if events != 0 {
		tb.Fatalf("%d events at normal voltage", events)
	}
	return d, buf
}

// BenchmarkProcess: one op is one sample through Process, steady state.
func BenchmarkProcess(b *testing.B) {
	d, buf := shard(b, 1000)
	i, round := 0, int64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s := &buf[i]
		s.Time = base + round*int64(time.Second)
		d.Process(s)
		if i++; i == len(buf) {
			i, round = 0, round+1
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sample")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkTick: one op is one Tick over 1000 devices.
func BenchmarkTick(b *testing.B) {
	d, _ := shard(b, 1000)
	now := at(500 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		d.Tick(now)
	}
}

// TestProcessAllocs: the steady-state hot path does not allocate.
func TestProcessAllocs(t *testing.T) {
	d, buf := shard(t, 100)
	round := int64(1)
	allocs := testing.AllocsPerRun(20, func() {
		for i := range buf {
			buf[i].Time = base + round*int64(time.Second)
			d.Process(&buf[i])
		}
		d.Tick(base + round*int64(time.Second))
		round++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per poll round", allocs)
	}
}
