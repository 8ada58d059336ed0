package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCheckConfigHostileFiles: check-config on a device or a FIFO says what
// the file is and exits 2 at once, instead of reading forever or hanging.
func TestCheckConfigHostileFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, err string }{
		{"/dev/zero", "load config: /dev/zero is a character device, not a regular file\n"},
		{fifo, "load config: " + fifo + " is a FIFO, not a regular file\n"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			start := time.Now()
			code, out, errs := runCmd("check-config", tc.path)
			if code != 2 || out != "" || errs != tc.err {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, out, errs, tc.err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("check-config took %s, want at most 1s", took)
			}
		})
	}
}
