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
		{[]string{"check-config"}, 2, "", "usage: feederd check-config FILE\n"},
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
