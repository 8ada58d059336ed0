package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socatInstallHint is printed when socat is missing: tests never skip.
const socatInstallHint = "socat is required for serial tests: apt-get install -y socat"

// PTYPair starts socat with two linked pseudo-terminals and returns their
// paths (symlinks in a test temporary directory): what one end writes the
// other reads, like two serial ports joined by a null-modem cable. socat is
// stopped by its PID when the test ends. A PTY ignores baud and parity.
func PTYPair(t testing.TB) (a, b string) {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		t.Fatalf("%s (%v)", socatInstallHint, err)
	}
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(bin, "-d", "-d",
		"pty,raw,echo=0,link="+a,
		"pty,raw,echo=0,link="+b)
	// socat -d -d logs every step; the log goes into failure messages.
	var log socatLog
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		if ptyReady(a) && ptyReady(b) {
			return a, b
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("socat exited before creating %s and %s: %v\n%s", a, b, err, log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat did not create %s and %s within 10s\n%s", a, b, log.String())
		}
	}
}

func ptyReady(link string) bool {
	_, err := os.Stat(link) // follows the link to the /dev/pts node
	return err == nil || !errors.Is(err, os.ErrNotExist)
}

// socatLog collects a child's output while the test may read it.
type socatLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *socatLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *socatLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
