package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-nope"}, exitUsage, "flag provided but not defined: -nope"},
		{[]string{"extra"}, exitUsage, `rtusim: unexpected arguments ["extra"]`},
		{[]string{"-log-level", "loud"}, exitUsage, "rtusim: -log-level:"},
		{[]string{"-config", "testdata/none.yaml"}, exitUsage, "read sim config: open testdata/none.yaml: no such file or directory"},
		{[]string{"-seed", "abc"}, exitUsage, `rtusim: -seed "abc" is not a whole number`},
		{[]string{"-time-scale", "-2"}, exitUsage, "rtusim: -time-scale -2 is outside (0, 1000]"},
		{[]string{"-config", "../../configs/sim/demo.yaml", "-scenario", "testdata/none.yaml"}, exitUsage, "read scenario: open testdata/none.yaml: no such file or directory"},
		{[]string{"-config", "../../configs/sim/demo.yaml", "-scenario", "testdata/bad-target.yaml", "-http", "127.0.0.1:0"}, exitUsage,
			"start rtusim: scenario does not fit the configuration:\ntestdata/bad-target.yaml:4: events[0].target: F101-S3 is a section on feeder F101: only breakers, reclosers, sectionalizers and switches open and close\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr syncBuffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.err)
			}
		})
	}
}

// TestDemoFleet loads configs/sim/demo.yaml with the real profiles and
// checks every device gets plausible values.
func TestDemoFleet(t *testing.T) {
	cfg, err := sim.LoadConfig("../../configs/sim/demo.yaml", config.LoadProfile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Build(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Devices) != 7 {
		t.Fatalf("%d devices, want 7", len(s.Devices))
	}
	for _, d := range s.Devices {
		nominal := 7200.0
		if strings.HasSuffix(d.ID, "-MTR") {
			nominal = 120
		}
		for _, p := range d.Profile.Points {
			if p.Role != "voltage_a" && p.Role != "breaker_closed" {
				continue
			}
			v, err := d.Value(p.Name)
			if err != nil {
				t.Fatal(err)
			}
			if p.Role == "voltage_a" && (v < 0.97*nominal || v > 1.03*nominal) {
				t.Errorf("%s %s = %v, want about %v", d.ID, p.Name, v, nominal)
			}
			if p.Role == "breaker_closed" {
				want := 1.0
				if d.ID == "TIE-12" {
					want = 0 // the tie between the feeders is normally open
				}
				if v != want {
					t.Errorf("%s %s = %v, want %v", d.ID, p.Name, v, want)
				}
			}
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunServes runs the command with the real profiles until SIGINT.
func TestRunServes(t *testing.T) {
	profiles, err := filepath.Abs("../../configs/profiles")
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "sim.yaml")
	yaml := fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml, %[1]s/pm5100.yaml]
devices:
  - {id: F101-BRK, profile: sel751a, unit: 1, port: %[2]d, nominal_voltage: 7200, values: {van: 7210}}
  - {id: F101-MTR, profile: pm5100, unit: 3, port: %[3]d, transport: rtuovertcp, nominal_voltage: 120}
`, profiles, p1, p2)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-config", path, "-http", "127.0.0.1:0", "-log-level", "warn"}, &stdout, &stderr)
	}()

	var httpURL string
	for deadline := time.Now().Add(10 * time.Second); httpURL == ""; {
		for _, l := range strings.Split(stdout.String(), "\n") {
			if u, ok := strings.CutPrefix(l, "serving http on "); ok {
				httpURL = u
			}
		}
		select {
		case code := <-done:
			t.Fatalf("rtusim exited %d early: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no http line in 10s: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := fmt.Sprintf("serving F101-BRK unit 1 on tcp://127.0.0.1:%d\nserving F101-MTR unit 3 on rtuovertcp://127.0.0.1:%d\nserving http on %s\n", p1, p2, httpURL)
	if got := stdout.String(); got != want {
		t.Fatalf("stdout\n%s\nwant\n%s", got, want)
	}
	resp, err := http.Get(httpURL + "/api/devices/F101-BRK")
	if err != nil {
		t.Fatal(err)
	}
	var st sim.DeviceState
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Values["van"] != 7210.0 {
		t.Fatalf("F101-BRK: %+v (%v)", st, err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after SIGINT: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rtusim did not stop on SIGINT")
	}
}

func syscallKill() error { return syscall.Kill(os.Getpid(), syscall.SIGINT) }
