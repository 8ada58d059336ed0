package devsrv

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

// The scale measurement (issue: 10,000 devices in one process, RSS under
// 500 MB, at least 20,000 requests/s on one core) runs as a benchmark:
//
//	go test -run '^$' -bench Serve ./internal/sim/devsrv
//
// The load comes from a separate process (this test binary re-executed with
// loadGenEnv set), so the server's CPU time, read from getrusage, is the
// server's alone, and the server runs with GOMAXPROCS=1: one core.

// loadGenEnv carries a loadSpec to the re-executed test binary.
const loadGenEnv = "FEEDERD_SIM_LOADGEN"

func TestMain(m *testing.M) {
	if spec := os.Getenv(loadGenEnv); spec != "" {
		os.Exit(runLoadGen(spec, os.Stdout))
	}
	os.Exit(m.Run())
}

// feederRTUShipped is configs/profiles/feeder-rtu.yaml: 12 float32 input
// registers, two discrete inputs, a shot and a trip counter.
func feederRTUShipped() *profile.Profile {
	in := profile.Input
	f := func(name string, addr uint16, role profile.Role) profile.Point {
		return profile.Point{Name: name, RegType: in, Address: addr, Type: profile.Float32, Order: profile.ABCD, Role: role}
	}
	return &profile.Profile{
		Name: "feeder-rtu", Vendor: "feederd", Model: "generic feeder RTU", Source: "test:feeder-rtu-shipped",
		Points: []profile.Point{
			f("va", 0, profile.RoleVoltageA), f("vb", 2, profile.RoleVoltageB), f("vc", 4, profile.RoleVoltageC),
			f("ia", 6, profile.RoleCurrentA), f("ib", 8, profile.RoleCurrentB), f("ic", 10, profile.RoleCurrentC),
			f("in", 12, profile.RoleCurrentN), f("kw", 14, profile.RoleActivePower), f("kvar", 16, profile.RoleReactivePower),
			f("kva", 18, ""), f("pf", 20, profile.RolePowerFactor), f("freq", 22, profile.RoleFrequency),
			{Name: "breaker_closed", RegType: profile.DiscreteInput, Address: 0, Type: profile.Bool, Role: profile.RoleBreakerClosed},
			{Name: "lockout", RegType: profile.DiscreteInput, Address: 1, Type: profile.Bool, Role: profile.RoleLockout},
			{Name: "shot_count", RegType: profile.Holding, Address: 0, Type: profile.Uint16, Role: profile.RoleShotCount},
			{Name: "trip_count", RegType: profile.Holding, Address: 1, Type: profile.Uint32, Role: profile.RoleTripCount},
		},
	}
}

var feederRTUFloats = []string{"va", "vb", "vc", "ia", "ib", "ic", "in", "kw", "kvar", "kva", "pf", "freq"}

// newFleetDevices makes n feeder-rtu devices sharing one layout, units
// 1..247 repeating, with their values set once.
func newFleetDevices(t testing.TB, n int) []*Device {
	t.Helper()
	l, err := NewLayout(feederRTUShipped())
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]*Device, n)
	for i := range devs {
		devs[i] = l.NewDevice(fmt.Sprintf("SIM-%05d", i+1), uint8(i%247+1))
		tickFleetDevice(devs[i], 0)
	}
	return devs
}

// tickFleetDevice writes a new set of values, as the simulator's tick does.
func tickFleetDevice(d *Device, tick int) {
	_ = d.Update(func(tx Tx) error {
		for k, p := range feederRTUFloats {
			_ = tx.SetValue(p, 7200+float64(k)+float64(tick%10)*0.5)
		}
		return tx.SetValue("breaker_closed", 1)
	})
}

// TestDeviceFootprint: a device of a shared layout costs its registers and
// identity, a few hundred bytes, not a copy of its profile's index.
func TestDeviceFootprint(t *testing.T) {
	const n = 10000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	devs := newFleetDevices(t, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes of heap per feeder-rtu device", per)
	if per > 512 {
		t.Fatalf("%.0f bytes of heap per feeder-rtu device, want at most 512", per)
	}
	// Devices of one layout share nothing writable.
	if err := devs[0].SetValue("va", 1); err != nil {
		t.Fatal(err)
	}
	if v, _ := devs[1].Value("va"); v != 7200 {
		t.Fatalf("device 2 va = %v after setting device 1's, want 7200", v)
	}
	runtime.KeepAlive(devs)
}

// loadSpec is what the load generator does: on each target, conns
// connections, each reading the 12 float32 of the units in turn, one
// request in flight, for Duration after Warmup.
type loadSpec struct {
	Targets  []loadTarget  `json:"targets"`
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
}

type loadTarget struct {
	Addr  string  `json:"addr"`
	Units []uint8 `json:"units"`
	Conns int     `json:"conns"`
}

type loadResult struct {
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
	Err      string `json:"err,omitempty"`
}

// runLoadGen is the load generator's main: it prints "start" when the
// measured window opens and a loadResult line when it closes.
func runLoadGen(specJSON string, out io.Writer) int {
	var spec loadSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(out, "{\"err\":%q}\n", "decode load spec: "+err.Error())
		return 1
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	type job struct {
		c     net.Conn
		units []uint8
		first int
	}
	var jobs []job
	// No request may hang the benchmark: every connection ends a few
	// seconds after the measured window.
	end := time.Now().Add(spec.Warmup + spec.Duration + 5*time.Second)
	for _, tg := range spec.Targets {
		for k := range tg.Conns {
			c, err := net.Dial("tcp", tg.Addr)
			if err != nil {
				fmt.Fprintf(out, "{\"err\":%q}\n", err.Error())
				return 1
			}
			if err := c.SetDeadline(end); err != nil {
				fmt.Fprintf(out, "{\"err\":%q}\n", err.Error())
				return 1
			}
			conns = append(conns, c)
			jobs = append(jobs, job{c: c, units: tg.Units, first: k * len(tg.Units) / tg.Conns})
		}
	}
	var (
		counting atomic.Bool
		stop     atomic.Bool
		requests atomic.Int64
		errs     atomic.Int64
		firstErr sync.Once
		errText  string
		wg       sync.WaitGroup
	)
	for _, j := range jobs {
		wg.Go(func() {
			req := []byte{0, 0, 0, 0, 0, 6, 0, 0x04, 0, 0, 0, 24}
			res := make([]byte, 7+2+48)
			var n int64
			defer func() { requests.Add(n) }()
			for i := j.first; !stop.Load(); i++ {
				txn := uint16(i)
				binary.BigEndian.PutUint16(req, txn)
				req[6] = j.units[i%len(j.units)]
				_, err := j.c.Write(req)
				if err == nil {
					_, err = io.ReadFull(j.c, res)
				}
				if err == nil && (binary.BigEndian.Uint16(res) != txn || res[7] != 0x04 || res[8] != 48) {
					err = fmt.Errorf("unit %d: bad response % X", req[6], res)
				}
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { errText = err.Error() })
					return
				}
				if counting.Load() {
					n++
				}
			}
		})
	}
	time.Sleep(spec.Warmup)
	counting.Store(true)
	fmt.Fprintln(out, "start")
	time.Sleep(spec.Duration)
	counting.Store(false)
	stop.Store(true)
	wg.Wait()
	b, _ := json.Marshal(loadResult{Requests: requests.Load(), Errors: errs.Load(), Err: errText})
	fmt.Fprintln(out, string(b))
	return 0
}

// serveMeasurement is what BenchmarkServe reports.
type serveMeasurement struct {
	requests      int64
	wall, cpu     time.Duration
	rssMB         float64
	heapMB        float64
	allocsPerReq  float64
	bytesPerReq   float64
	conns, listen int
}

// measureServe serves n feeder-rtu devices on loopback, behind gateway
// ports of 247 units (gateway) or on a port each, and measures them under
// the load generator's requests.
func measureServe(b *testing.B, n int, gateway bool, maxConns int, d time.Duration) serveMeasurement {
	debug.FreeOSMemory()
	devs := newFleetDevices(b, n)
	var (
		eps     []*Endpoint
		targets []loadTarget
		conns   int
	)
	if gateway {
		ports := (n + 246) / 247
		perPort := max(1, (maxConns+ports-1)/ports)
		for p := range ports {
			u, err := NewUnits(devs[p*247 : min(n, (p+1)*247)]...)
			if err != nil {
				b.Fatal(err)
			}
			e, err := ListenTCP("127.0.0.1:0", u, ServerOptions{Gateway: true})
			if err != nil {
				b.Fatal(err)
			}
			eps = append(eps, e)
			units := make([]uint8, len(u.Devices()))
			for i, d := range u.Devices() {
				units[i] = d.Unit
			}
			targets = append(targets, loadTarget{Addr: strings.TrimPrefix(e.URL, "tcp://"), Units: units, Conns: perPort})
			conns += perPort
		}
	} else {
		for i, d := range devs {
			u, err := NewUnits(d)
			if err != nil {
				b.Fatal(err)
			}
			e, err := ListenTCP("127.0.0.1:0", u, ServerOptions{})
			if err != nil {
				b.Fatalf("listen on port %d of %d: %v", i+1, n, err)
			}
			eps = append(eps, e)
			if i < maxConns {
				targets = append(targets, loadTarget{Addr: strings.TrimPrefix(e.URL, "tcp://"), Units: []uint8{d.Unit}, Conns: 1})
				conns++
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, e := range eps {
		wg.Go(func() {
			if err := e.Serve(ctx); err != nil {
				b.Error(err)
			}
		})
	}
	// Values change once a second, as under the simulator's tick.
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for tick := 1; ; tick++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, d := range devs {
					tickFleetDevice(d, tick)
				}
			}
		}
	})

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	spec, _ := json.Marshal(loadSpec{Targets: targets, Warmup: 300 * time.Millisecond, Duration: d})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadGenEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(stdout)
	var (
		m              serveMeasurement
		cpu0           time.Duration
		t0             time.Time
		ms0, ms1       runtime.MemStats
		started, ended bool
		res            loadResult
	)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "start":
			runtime.ReadMemStats(&ms0)
			cpu0, t0, started = cpuTime(b), time.Now(), true
		case strings.HasPrefix(line, "{"):
			m.cpu, m.wall, ended = cpuTime(b)-cpu0, time.Since(t0), true
			runtime.ReadMemStats(&ms1)
			m.rssMB = float64(statusKB(b, "VmRSS")) / 1024
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatalf("load generator said %q: %v", line, err)
			}
		}
	}
	if !started || !ended || res.Err != "" || res.Errors != 0 {
		b.Fatalf("load generator: started %v, ended %v, %d errors, first: %s", started, ended, res.Errors, res.Err)
	}
	m.requests = res.Requests
	m.heapMB = float64(ms1.HeapAlloc) / (1 << 20)
	m.allocsPerReq = float64(ms1.Mallocs-ms0.Mallocs) / float64(m.requests)
	m.bytesPerReq = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(m.requests)
	m.conns, m.listen = conns, len(eps)
	return m
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKB reads a kB field of /proc/self/status.
func statusKB(b *testing.B, field string) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatalf("/proc/self/status %s: %v", line, err)
			}
			return kb
		}
	}
	b.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// BenchmarkServe serves 1,000 and 10,000 feeder-rtu devices behind gateway
// ports (247 units each), and on a port each, to a load generator in
// another process reading 12 float32 (24 input registers) per request, one
// request in flight per connection. The server runs on one core
// (GOMAXPROCS=1). Reported: ns/op = server CPU time per request, req/s =
// requests per second of wall time, req/cpu-s = requests per second of
// server CPU (what one fully used core serves), rss-MB = the process's
// resident memory under load (test binary included), B/op and allocs/op
// per request on the server.
func BenchmarkServe(b *testing.B) {
	cases := []struct {
		name     string
		n        int
		gateway  bool
		maxConns int
	}{
		{"gateways/devices=1000", 1000, true, 64},
		{"gateways/devices=10000", 10000, true, 64},
		{"ports/devices=1000", 1000, false, 1000},
		{"ports/devices=10000", 10000, false, 2000},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m := measureServe(b, tc.n, tc.gateway, tc.maxConns, 1500*time.Millisecond)
			b.ReportMetric(float64(m.cpu.Nanoseconds())/float64(m.requests), "ns/op")
			b.ReportMetric(float64(m.requests)/m.wall.Seconds(), "req/s")
			b.ReportMetric(float64(m.requests)/m.cpu.Seconds(), "req/cpu-s")
			b.ReportMetric(m.rssMB, "rss-MB")
			b.ReportMetric(m.heapMB, "heap-MB")
			b.ReportMetric(m.bytesPerReq, "B/op")
			b.ReportMetric(m.allocsPerReq, "allocs/op")
			b.ReportMetric(float64(m.conns), "conns")
			b.ReportMetric(float64(m.listen), "listeners")
		})
	}
}
