package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfig(t *testing.T) {
	root := filepath.Join("..", "..")
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"check-config", filepath.Join(root, "configs", "demo.yaml")}, 0,
			"../../configs/demo.yaml: ok: 7 links, 7 devices, 98 points\n", ""},
		{[]string{"check-config", filepath.Join(root, "testdata", "config", "bad", "unknown_type.yaml")}, 2,
			"", "../../testdata/config/bad/unknown_type.yaml:14: devices[0].points[1].type: unknown type \"flaot32\"\n"},
		{[]string{"check-config", "nope.yaml"}, 2, "", "load config: open nope.yaml: no such file or directory\n"},
		{[]string{"check-config"}, 2, "", "usage: feederd check-config [-shard i/n] FILE\n"},
		{[]string{"check-config", "-shard", "1/2", filepath.Join(root, "configs", "demo.yaml")}, 0,
			"../../configs/demo.yaml: ok: 7 links, 7 devices, 98 points\nshard 1/2: 2 feeders, 7 links, 7 devices, 98 points\n", ""},
		{[]string{"check-config", "-shard", "2/2", filepath.Join(root, "configs", "demo.yaml")}, 2,
			"", "invalid value \"2/2\" for flag -shard: shard 2/2: the index must be in 0..1\n"},
		{[]string{"run", "-shard", "3/2", "-config", "x.yaml"}, 2,
			"", "invalid value \"3/2\" for flag -shard: shard 3/2: the index must be in 0..1\n"},
		{[]string{"run", "-shard", "a/b", "-config", "x.yaml"}, 2,
			"", "invalid value \"a/b\" for flag -shard: shard \"a/b\": want i/n, two integers with 0 <= i < n, e.g. 0/2\n"},
		{[]string{"run", "-shard", "0/0", "-config", "x.yaml"}, 2,
			"", "invalid value \"0/0\" for flag -shard: shard 0/0: the count must be at least 1\n"},
		{[]string{"plan", "-shard", "1/0"}, 2,
			"", "invalid value \"1/0\" for flag -shard: shard 1/0: the count must be at least 1\n"},
		{[]string{"frobnicate"}, 2, "", "feederd: unknown command \"frobnicate\"\n"},
		{[]string{"version"}, 0, "feederd dev\n", ""},
		{[]string{"run"}, 2, "", "feederd: -config FILE is required"},
		{[]string{"run", "-config", "nope.yaml"}, 2, "", "load config: open nope.yaml: no such file or directory\n"},
		{[]string{"-config", filepath.Join(root, "testdata", "config", "bad", "unknown_type.yaml")}, 2,
			"", "../../testdata/config/bad/unknown_type.yaml:14: devices[0].points[1].type: unknown type \"flaot32\"\n"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tc.args...)
			if code != tc.code || out != tc.out || !strings.HasPrefix(errs, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr starting %q", code, out, errs, tc.code, tc.out, tc.err)
			}
		})
	}
}

// TestCheckConfigTimeoutNotes: a device whose timeout is shorter than its
// link's request timeout is told so, since one connection has one timeout.
func TestCheckConfigTimeoutNotes(t *testing.T) {
	profiles, err := filepath.Abs("../../configs/profiles/sel751a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gw.yaml")
	cfg := `profiles: [` + profiles + `]
poll: {interval: 10s, timeout: 1s}
links: [{id: gw, url: "rtuovertcp://127.0.0.1:5020", serial: {baud: 9600}}]
devices:
  - {id: R1, link: gw, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
  - {id: R2, link: gw, unit: 2, profile: sel751a, feeder: F1, upstream: R1, nominal_voltage: 7200, timeout: 4s}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("check-config", path)
	want := path + ": ok: 1 link, 2 devices, 16 points\n" +
		"note: device R1: a request waits up to 4s, link gw's request timeout (the longest of the link's and its devices' timeouts: one per connection); its own timeout 1s ends its poll\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want stdout %q", code, out, errs, want)
	}
}

func TestPlan(t *testing.T) {
	code, out, errs := runCmd("plan", "-config", "../../configs/demo.yaml", "-device", "F101-MTR")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// The PM5100's float32 map coalesces into holding-register reads.
	for _, want := range []string{
		"device F101-MTR, unit 3 on f101-mtr (tcp://127.0.0.1:5022): 17 points in 5 requests",
		"1  read holding registers  2999   3006  8      ia, ib, ic, in",
		"5  read holding registers  3203   3206  4      energy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = runCmd("plan", "-config", "../../configs/demo.yaml", "-device", "NOPE")
	if code != 2 || !strings.Contains(errs, `no device "NOPE"`) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	// Feeders F101 and F102 are tied (TIE-12), so both are shard 1 of 2:
	// the meter is not in shard 0's plan.
	code, _, errs = runCmd("plan", "-config", "../../configs/demo.yaml", "-device", "F101-MTR", "-shard", "0/2")
	if want := `no device "F101-MTR" in shard 0/2`; code != 2 || !strings.Contains(errs, want) {
		t.Errorf("plan -shard 0/2 -device F101-MTR: exit %d, stderr %q; want 2, %q", code, errs, want)
	}
	code, out, errs = runCmd("plan", "-config", "../../configs/demo.yaml", "-shard", "1/2")
	var devices []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "device" {
			devices = append(devices, strings.TrimSuffix(f[1], ","))
		}
	}
	if got, want := strings.Join(devices, " "), "F101-BRK F101-REC F101-MTR F102-BRK F102-REC F102-MTR TIE-12"; code != 0 || got != want {
		t.Errorf("plan -shard 1/2: exit %d, stderr %q, devices %q; want 0, %q", code, errs, got, want)
	}
}

// TestProbe reads a simulated PM5100 once, as an engineer would at a site,
// and pins probe's exit codes.
func TestProbe(t *testing.T) {
	prof, err := config.LoadProfile("../../configs/profiles/pm5100.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := devsrv.NewDevice("M1", 3, prof)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{"van": 120.25, "freq": 59.98, "pf": 0.982, "energy": 123456789} {
		if err := dev.SetValue(k, v); err != nil {
			t.Fatal(err)
		}
	}
	units, err := devsrv.NewUnits(dev)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := devsrv.ListenRTUOverTCP("127.0.0.1:0", units, devsrv.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ep.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	const pm5100 = "../../configs/profiles/pm5100.yaml"
	code, out, errs := runCmd("probe", "-url", ep.URL, "-serial", "19200,8,N,1", "-unit", "3", "-profile", pm5100)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 0, nothing", code, errs)
	}
	// float32 points print as the shortest decimal that reads back as the
	// same float32: 59.98, not 59.97999954223633.
	for _, want := range []string{
		"van       holding  3027     float32  120.25     V     good",
		"pf        holding  3083     float32  0.982            good",
		"freq      holding  3109     float32  59.98      Hz    good",
		"energy    holding  3203     int64    123456789  Wh    good",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("probe output lacks the row %q:\n%s", want, out)
		}
	}

	// A point the device does not have (an exception) among good ones: 3.
	ghost := filepath.Join(t.TempDir(), "pm5100-ghost.yaml")
	text, err := os.ReadFile(pm5100)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, "  - {name: ghost, table: input, address: 9000, type: uint16}\n"...)
	if err := os.WriteFile(ghost, text, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("probe", "-url", ep.URL, "-unit", "3", "-profile", ghost)
	if want := "feederd probe: 1 of 18 points are not good\n"; code != 3 || errs != want {
		t.Errorf("a missing point: exit %d, stderr %q; want 3, %q", code, errs, want)
	}
	if !strings.Contains(out, "ghost") || !strings.Contains(out, "exception") {
		t.Errorf("a missing point: output lacks its exception:\n%s", out)
	}

	// Nothing answers at unit 9: every point times out, and probe says so: 4.
	code, out, errs = runCmd("probe", "-url", ep.URL, "-unit", "9", "-timeout", "200ms", "-profile", pm5100)
	if want := "feederd probe: no point of 17 is good\n"; code != 4 || errs != want {
		t.Errorf("unit 9: exit %d, stderr %q; want 4, %q", code, errs, want)
	}
	if got := strings.Count(out, "timeout"); got < 17 {
		t.Errorf("unit 9: %d timeouts in the output, want one per point (17):\n%s", got, out)
	}

	// Nothing listens: the link cannot be opened: 1.
	code, _, errs = runCmd("probe", "-url", "tcp://127.0.0.1:1", "-unit", "1", "-timeout", "200ms", "-profile", pm5100)
	if code != 1 || !strings.HasPrefix(errs, "feederd probe: open link probe (tcp://127.0.0.1:1): ") {
		t.Errorf("closed port: exit %d, stderr %q; want 1, an open error", code, errs)
	}
}

// TestProbeFlags: -url, -unit and -profile are required, and flags for
// another kind of link are errors, not silently ignored.
func TestProbeFlags(t *testing.T) {
	const prof = "../../configs/profiles/pm5100.yaml"
	const usage = "usage: feederd probe -url URL -unit N -profile FILE [-timeout 1s] [-serial 19200,8,N,1] [-tls.cert F -tls.key F -tls.ca F]\n"
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"-url", "tcp://127.0.0.1:1", "-profile", prof}, "feederd probe: -unit required\n" + usage},
		{[]string{"-unit", "1"}, "feederd probe: -url, -profile required\n" + usage},
		{[]string{"-url", "tcp://127.0.0.1:1", "-unit", "1", "-profile", prof, "-serial", "9600,8,N,1"},
			"feederd probe: -serial is for rtu:// and rtuovertcp:// URLs, not tcp://\n"},
		{[]string{"-url", "rtuovertcp://127.0.0.1:1", "-unit", "1", "-profile", prof, "-tls.ca", "ca.crt"},
			"feederd probe: -tls.cert, -tls.key and -tls.ca are for tcp+tls:// URLs, not rtuovertcp://\n"},
		{[]string{"-url", "tcp://127.0.0.1:1", "-unit", "300", "-profile", prof},
			"feederd probe: -unit: "},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(append([]string{"probe"}, tc.args...)...)
			if code != 2 || out != "" || !strings.HasPrefix(errs, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, stderr starting %q", code, out, errs, tc.err)
			}
		})
	}
}

// TestHelp: -h prints a command's usage and flags on stdout and exits 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		out  []string
	}{
		{[]string{"-h"}, []string{"usage:\n  feederd [run] -config FILE", "  feederd COMMAND -h    the command's flags\n"}},
		{[]string{"--help"}, []string{"usage:\n  feederd [run] -config FILE"}},
		{[]string{"help"}, []string{"usage:\n  feederd [run] -config FILE"}},
		{[]string{"run", "-h"}, []string{"usage: feederd [run] -config FILE [flags]\n", "  -log.format string\n"}},
		{[]string{"check-config", "-h"}, []string{"usage: feederd check-config [-shard i/n] FILE\n\nflags:\n  -shard i/n\n"}},
		{[]string{"plan", "-help"}, []string{"usage: feederd plan -config FILE", "  -device string\n"}},
		{[]string{"probe", "-h"}, []string{"usage: feederd probe -url URL -unit N", "  -unit uint\n    \tModbus unit ID, 0..247 (required)\n"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tc.args...)
			if code != 0 || errs != "" {
				t.Errorf("exit %d, stderr %q; want 0, nothing", code, errs)
			}
			for _, want := range tc.out {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestJSONLogDurations: a duration in a JSON log is a string, as in text.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("poll", "took", 261*time.Millisecond, slog.Group("g", "d", 1500*time.Microsecond), "n", 3)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if got["took"] != "261ms" || got["n"] != float64(3) || got["g"].(map[string]any)["d"] != "1.5ms" {
		t.Errorf("log line %s: want took \"261ms\", g.d \"1.5ms\", n 3", buf.String())
	}
}
