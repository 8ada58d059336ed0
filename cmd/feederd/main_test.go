package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
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

// TestProbe reads a simulated PM5100 once, as an engineer would at a site.
func TestProbe(t *testing.T) {
	prof, err := config.LoadProfile("../../configs/profiles/pm5100.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := sim.NewDevice("M1", 3, prof)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{"van": 120.25, "freq": 59.5, "energy": 123456789} {
		if err := dev.SetValue(k, v); err != nil {
			t.Fatal(err)
		}
	}
	units, err := sim.NewUnits(dev)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := sim.ListenRTUOverTCP("127.0.0.1:0", units, sim.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ep.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	code, out, errs := runCmd("probe", "-url", ep.URL, "-serial", "19200,8,N,1", "-unit", "3", "-profile", "../../configs/profiles/pm5100.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"van", "120.25", "59.5", "123456789", "good"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe output lacks %q:\n%s", want, out)
		}
	}
	// Nothing answers at unit 9: every point times out, and probe says so.
	code, out, _ = runCmd("probe", "-url", ep.URL, "-unit", "9", "-timeout", "200ms", "-profile", "../../configs/profiles/pm5100.yaml")
	if code != 0 && code != 1 {
		t.Errorf("unit 9: exit %d", code)
	}
	if code == 0 && !strings.Contains(out, "timeout") {
		t.Errorf("unit 9: output lacks timeout:\n%s", out)
	}
}
