package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/influx"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/testenv"
)

// simRelay serves rtusim's SEL-751A relay F1-BRK (unit 1) over Modbus TCP
// until the test ends and returns its URL.
func simRelay(t *testing.T) string {
	t.Helper()
	p, err := config.LoadProfile(filepath.Join("..", "..", "configs", "profiles", "sel751a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := devsrv.NewDevice("F1-BRK", 1, p)
	if err != nil {
		t.Fatal(err)
	}
	units, err := devsrv.NewUnits(dev)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := devsrv.ListenTCP(testenv.FreeAddr(t), units, devsrv.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ep.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-served })
	return ep.URL
}

// feederdProc is a feederd process started by a test.
type feederdProc struct {
	cmd  *exec.Cmd
	logs *testenv.LockedBuffer
	done chan error
}

func startFeederd(t *testing.T, bin string, args ...string) *feederdProc {
	t.Helper()
	p := &feederdProc{logs: &testenv.LockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("feederd log:\n%s", p.logs.String())
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process does not end
// within a minute.
func (p *feederdProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // for cleanup
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		t.Fatal("feederd did not exit within a minute")
		return -1
	}
}

// spoolLines reads the spool's segments as feederd left them: the time of
// each poll line (feeder_point) of each valid record, record by record.
func spoolLines(t *testing.T, dir string) [][]string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(segs)
	var recs [][]string
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		influx.ScanRecords(b, func(_ int, r influx.Record) {
			// Poll lines only: storedTimes reads feeder_point, and an event
			// or outage line of the record may carry a time no poll line has.
			var ts []string
			for l := range strings.SplitSeq(strings.TrimSuffix(string(r.Payload), "\n"), "\n") {
				if strings.HasPrefix(l, "feeder_point,") {
					ts = append(ts, l[strings.LastIndexByte(l, ' ')+1:])
				}
			}
			recs = append(recs, ts)
		})
	}
	return recs
}

func count(recs [][]string) int {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return n
}

// storedTimes returns the times (ms) of the poll lines in InfluxDB.
func storedTimes(t *testing.T, ifx *testenv.Influx) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, s := range ifx.Query(t, `SELECT seq FROM feeder_point`) {
		for _, v := range s.Values {
			ns, _ := v[0].(json.Number).Int64()
			got[fmt.Sprint(ns/1e6)]++
		}
	}
	return got
}

// TestSpoolSurvivesKillAndStop runs the real feederd binary polling a
// simulated relay with InfluxDB down, kills it with SIGKILL, damages one
// spooled record, and restarts it with InfluxDB up: every spooled line
// but the damaged record's arrives, and the damaged record is reported.
// Then InfluxDB goes down again and SIGTERM stops feederd: it exits 0 and
// says what it kept in the spool.
func TestSpoolSurvivesKillAndStop(t *testing.T) {
	bin := testenv.BuildCommand(t, "feederd")
	relayURL := simRelay(t)

	addr := testenv.FreeAddr(t) // InfluxDB's, down for now
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	spoolDir := filepath.Join(data, "spool")
	cfgPath := filepath.Join(dir, "feederd.yaml")
	abs, err := filepath.Abs(filepath.Join("..", "..", "configs", "profiles", "sel751a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`profiles: [%s]
poll: {interval: 50ms, timeout: 40ms}
influx: {url: http://%s, bucket: feederd/autogen, flush_interval: 50ms, batch_size: 10, queue_size: 20, timeout: 2s}
links: [{id: brk, url: %s}]
devices: [{id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}]
`, abs, addr, relayURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "-config", cfgPath, "-data.dir", data, "-http.listen", "127.0.0.1:0"}

	// 1. InfluxDB down: polls go to the spool. SIGKILL once it holds 100.
	first := startFeederd(t, bin, args...)
	deadline := time.Now().Add(time.Minute)
	for count(spoolLines(t, spoolDir)) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("spool holds %d lines after a minute, want 100", count(spoolLines(t, spoolDir)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	recs := spoolLines(t, spoolDir)
	if len(recs) < 3 {
		t.Fatalf("%d records in the spool, want 3 or more", len(recs))
	}

	// 2. Flip one byte inside the second record's payload.
	segs, _ := filepath.Glob(filepath.Join(spoolDir, "*.seg"))
	slices.Sort(segs)
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	r0, _, err := influx.ReadRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	b[r0.Size+30] ^= 0x01
	if err := os.WriteFile(segs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
	damaged := recs[1]
	var want []string
	for i, r := range recs {
		if i != 1 {
			want = append(want, r...)
		}
	}

	// 3. InfluxDB up, feederd again: the spool replays.
	ifx := testenv.StartInfluxOn(t, addr)
	second := startFeederd(t, bin, args...)
	deadline = time.Now().Add(time.Minute)
	for {
		got := storedTimes(t, ifx)
		missing := 0
		for _, ts := range want {
			if got[ts] == 0 {
				missing++
			}
		}
		if missing == 0 {
			for _, ts := range damaged {
				if got[ts] != 0 {
					t.Errorf("line at %s of the damaged record is in InfluxDB", ts)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spooled lines not in InfluxDB after a minute", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs := second.logs.String()
	for _, w := range []string{
		"spool holds batches from an earlier run, replaying them when influxdb answers",
		`msg="spool record corrupt, skipped" component=influx segment=` + filepath.Base(segs[0]) + fmt.Sprintf(" offset=%d", r0.Size),
		`err="checksum mismatch"`,
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("restarted feederd's log lacks %q", w)
		}
	}

	// 4. InfluxDB down again, then SIGTERM: exit 0, with what was kept.
	ifx.Stop()
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(second.logs.String(), "influxdb unavailable, spooling to disk") {
		if time.Now().After(deadline) {
			t.Fatal("feederd did not notice InfluxDB stopping within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := second.wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM with InfluxDB down, want 0", code)
	}
	logs = second.logs.String()
	for _, w := range []string{
		`msg="stop requested: stopping polls, delivering or spooling what is queued" signal=terminated`,
		`msg="stopped: what was not written is kept in the spool for the next start" component=influx delivered_lines=0 spool_bytes=`,
		`msg="feederd stopped"`,
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("ERROR in the log of a requested stop:\n%s", logs)
	}
	if n := count(spoolLines(t, spoolDir)); n == 0 {
		t.Error("spool empty after a stop with InfluxDB down")
	}
}
