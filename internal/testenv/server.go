package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is one server process a test owns (influxd, alertmanager): run
// from bin with args in dir, its output appended to logPath, ready once
// ready() answers and the server answering is this one (isMine: another
// test's server may take a free port first), stopped with SIGTERM and, past
// stopTimeout, SIGKILL, and restartable on the same address as after an
// outage. Influx and Alertmanager embed it.
type server struct {
	t       testing.TB
	name    string // in messages: "influxd", "alertmanager"
	bin     string
	dir     string
	addr    string
	logPath string
	// args is the command line after bin; a function so that it sees the
	// address the start attempt chose.
	args   func() []string
	ready  func() error
	isMine func() (bool, error)

	mu   sync.Mutex
	proc *serverProc
}

// serverProc is one run of the process.
type serverProc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when Wait returned
	err    error         // Wait's result, valid after done
}

const (
	serverStartTimeout  = 30 * time.Second
	serverStopTimeout   = 10 * time.Second
	serverStartAttempts = 5
)

var errAddrInUse = errors.New("address already in use")

// start runs the process and waits until it is ready.
func (s *server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open %s log: %w", s.name, err)
	}
	args := s.args()
	fmt.Fprintf(logf, "--- %s %s (on %s) at %s\n", s.name, strings.Join(args, " "), s.addr, time.Now().Format(time.RFC3339Nano))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = serverStopTimeout
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	p := &serverProc{cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(serverStartTimeout)
	for {
		select {
		case <-p.done:
			if bytes.Contains(s.readLog(), []byte("address already in use")) {
				return fmt.Errorf("%s exited (%v): %w", s.name, p.err, errAddrInUse)
			}
			return fmt.Errorf("%s exited before it was ready: %v", s.name, p.err)
		default:
		}
		if s.ready() == nil {
			mine, err := s.isMine()
			if err != nil {
				return err
			}
			if !mine {
				return fmt.Errorf("another %s answers on %s: %w", s.name, s.addr, errAddrInUse)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready on %s within %s", s.name, s.addr, serverStartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startOnFreePort starts the server, on addr when it is given, else on a
// free port, trying another when the chosen one was taken meanwhile. prepare
// runs before each attempt with the address chosen (to write a config).
func (s *server) startOnFreePort(addr string, prepare func() error) {
	s.t.Helper()
	fixed := addr != ""
	var lastErr error
	for range serverStartAttempts {
		if !fixed {
			addr = FreeAddr(s.t)
		}
		s.addr = addr
		if prepare != nil {
			if err := prepare(); err != nil {
				s.t.Fatalf("start %s: %v", s.name, err)
			}
		}
		err := s.start()
		if err == nil {
			return
		}
		lastErr = err
		s.stop()
		if fixed || !errors.Is(err, errAddrInUse) {
			s.t.Fatalf("start %s on %s: %v", s.name, addr, err)
		}
	}
	s.t.Fatalf("start %s: %d attempts failed, last: %v", s.name, serverStartAttempts, lastErr)
}

func (s *server) running() *serverProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// stop terminates the running process, if any: SIGTERM, then SIGKILL after
// serverStopTimeout.
func (s *server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and keeps its
// data for Restart. Clients see connection refused until then; the port is
// not held meanwhile.
func (s *server) Stop() {
	s.t.Helper()
	s.stop()
}

// Restart starts the server again on the same port with the same data, as
// after an outage. It stops it first if it is running.
func (s *server) Restart() {
	s.t.Helper()
	s.stop()
	var err error
	for range serverStartAttempts {
		if err = s.start(); err == nil {
			return
		}
		s.stop()
		if !errors.Is(err, errAddrInUse) {
			break
		}
		// The old listener may linger for a moment after the process exits.
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("restart %s on %s: %v", s.name, s.addr, err)
}

func (s *server) readLog() []byte {
	b, _ := os.ReadFile(s.logPath)
	return b
}
