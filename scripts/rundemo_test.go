// Package scripts_test runs the shell scripts behind the Makefile's
// targets with the real binaries they start.
package scripts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// demo is one run of scripts/run-demo.sh on ports of its own.
type demo struct {
	cmd   *exec.Cmd
	out   *syncBuffer
	ports map[string]int // the variable naming it -> port
	done  chan struct{}
	err   error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoBin builds feederd and rtusim into a folder beside links to the
// real InfluxDB and Alertmanager, as DEMO_BIN wants them.
func demoBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, env := range map[string]string{"influxd": "FEEDERD_INFLUXD", "alertmanager": "FEEDERD_ALERTMANAGER"} {
		p := os.Getenv(env)
		if p == "" {
			t.Fatalf("%s is not set: the demo test needs the real %s (make tools builds it)", env, name)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"feederd", "rtusim"} {
		testenv.BuildCommandInto(t, name, dir)
	}
	return dir
}

// freePorts returns the four single ports of the demo and a base of seven
// consecutive free ports for the simulated devices.
func freePorts(t *testing.T) map[string]int {
	t.Helper()
	ports := map[string]int{}
	for _, name := range []string{"INFLUX_PORT", "AM_PORT", "FEEDERD_HTTP", "SIM_HTTP"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[name] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	for range 100 {
		base := 20000 + rand.IntN(30000)
		ok := true
		for i := range 7 {
			if !portFree(base + i) {
				ok = false
				break
			}
		}
		if ok {
			ports["SIM_PORT_BASE"] = base
			return ports
		}
	}
	t.Fatal("no seven consecutive free ports")
	return nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// allPorts lists every port the demo listens on.
func allPorts(ports map[string]int) []int {
	out := []int{ports["INFLUX_PORT"], ports["AM_PORT"], ports["FEEDERD_HTTP"], ports["SIM_HTTP"]}
	for i := range 7 {
		out = append(out, ports["SIM_PORT_BASE"]+i)
	}
	return out
}

// startDemo runs the script in a process group of its own, as make runs it
// in the terminal's foreground group; with viaMake, through make as
// `make run` does.
func startDemo(t *testing.T, bin, varDir string, ports map[string]int, viaMake bool) *demo {
	t.Helper()
	cmd := exec.Command("bash", "run-demo.sh")
	if viaMake {
		script, err := filepath.Abs("run-demo.sh")
		if err != nil {
			t.Fatal(err)
		}
		mk := filepath.Join(t.TempDir(), "Makefile")
		if err := os.WriteFile(mk, []byte("run:\n\t@bash "+script+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("make", "-s", "-f", mk, "run")
	}
	cmd.Env = append(os.Environ(),
		"DEMO_BIN="+bin, "DEMO_VAR="+varDir,
		fmt.Sprintf("INFLUX_PORT=%d", ports["INFLUX_PORT"]),
		fmt.Sprintf("AM_PORT=%d", ports["AM_PORT"]),
		fmt.Sprintf("FEEDERD_HTTP=127.0.0.1:%d", ports["FEEDERD_HTTP"]),
		fmt.Sprintf("SIM_HTTP=127.0.0.1:%d", ports["SIM_HTTP"]),
		fmt.Sprintf("SIM_PORT_BASE=%d", ports["SIM_PORT_BASE"]),
	)
	d := &demo{cmd: cmd, out: &syncBuffer{}, ports: ports, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(d.done); d.err = cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(60 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-d.done
			}
		}
	})
	return d
}

// wait waits for the script to end and returns its exit code.
func (d *demo) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		t.Fatalf("run-demo.sh still runs after %v; output:\n%s", within, d.out)
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		t.Fatal(d.err)
	}
	return 0
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// TestRunDemoDoubleSignal: two SIGINTs 0.2 s apart to the process group of
// `make run` (an impatient Ctrl-C Ctrl-C in the terminal) stop InfluxDB,
// Alertmanager, rtusim and feederd, free every demo port and end the script
// with exit 0, so that make reports no "Error 130".
func TestRunDemoDoubleSignal(t *testing.T) {
	// A test started from a background job inherits SIGINT ignored, and a
	// shell started with SIGINT ignored cannot trap it. Catching SIGINT
	// here makes the child start with its default action, as under make
	// in a terminal.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT)
	defer signal.Stop(sig)

	bin := demoBin(t)
	ports := freePorts(t)
	d := startDemo(t, bin, t.TempDir(), ports, true)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports["FEEDERD_HTTP"])
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(d.out.String(), "Ctrl-C stops everything.") {
				break
			}
		}
		select {
		case <-d.done:
			t.Fatalf("run-demo.sh ended before feederd was ready: %v\n%s", d.err, d.out)
		case <-ctx.Done():
			t.Fatalf("feederd not ready in 90 s:\n%s", d.out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// make's child is the script, whose children are the demo's.
	scripts := children(d.cmd.Process.Pid)
	if len(scripts) != 1 || comm(scripts[0]) != "bash" {
		t.Fatalf("make's children: %v, want the one bash running the script", scripts)
	}
	kids := children(scripts[0])
	names := map[string]bool{}
	for _, k := range kids {
		names[comm(k)] = true
	}
	for _, want := range []string{"influxd", "alertmanager", "rtusim", "feederd"} {
		if !names[want] {
			t.Fatalf("no %s among the script's children %v (%v)", want, kids, names)
		}
	}
	for _, p := range allPorts(ports) {
		if portFree(p) {
			t.Errorf("port %d is free while the demo runs: not a demo port?", p)
		}
	}

	pgid := d.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	switch err := syscall.Kill(-pgid, syscall.SIGINT); {
	case errors.Is(err, syscall.ESRCH):
		// The first stop took under 0.2 s: nothing was left to signal.
		// What follows still checks that nothing survived.
		t.Log("the demo had stopped before the second SIGINT")
	case err != nil:
		t.Fatal(err)
	}
	// make itself dies of the SIGINT (exit -1 here) once its child has
	// ended; it reports the child's status only when that is a failure.
	d.wait(t, 75*time.Second)
	if out := d.out.String(); !strings.HasSuffix(out, "\nstopped\n") || strings.Contains(out, "make: ***") {
		t.Errorf("output does not end with \"stopped\", or make reports an error:\n%s", out)
	}
	if err := syscall.Kill(scripts[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the script (%d) survived: kill -0 says %v", scripts[0], err)
	}
	for _, k := range kids {
		if err := syscall.Kill(k, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d (%s) survived the script: kill -0 says %v", k, comm(k), err)
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
	for _, p := range allPorts(ports) {
		if !portFree(p) {
			t.Errorf("port %d is still in use after the demo stopped", p)
		}
	}
}

// TestRunDemoRefuses: a busy demo port (any of the eleven) or a data folder
// another InfluxDB holds stops the script before it starts anything.
func TestRunDemoRefuses(t *testing.T) {
	bin := demoBin(t)

	t.Run("a simulated device's port in use", func(t *testing.T) {
		ports := freePorts(t)
		busy := ports["SIM_PORT_BASE"] + 6
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(busy)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		d := startDemo(t, bin, t.TempDir(), ports, false)
		want := fmt.Sprintf("ports in use: %d (SIM_PORT_BASE): stop what listens there (an earlier demo?) or set the variable named\n", busy)
		if code := d.wait(t, 30*time.Second); code != 1 || d.out.String() != want {
			t.Errorf("exit %d, output %q; want 1, %q", code, d.out, want)
		}
	})

	t.Run("var/influxdb locked", func(t *testing.T) {
		ports := freePorts(t)
		varDir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(varDir, "influxdb"), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(varDir, "influxdb", ".lock"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		d := startDemo(t, bin, varDir, ports, false)
		want := fmt.Sprintf("another InfluxDB (or demo) uses %s/influxdb: stop it first (fuser -v %[1]s/influxdb/.lock names it)\n", varDir)
		if code := d.wait(t, 30*time.Second); code != 1 || d.out.String() != want {
			t.Errorf("exit %d, output %q; want 1, %q", code, d.out, want)
		}
		for _, p := range allPorts(ports) {
			if !portFree(p) {
				t.Errorf("port %d in use: the script started something", p)
			}
		}
	})
}
