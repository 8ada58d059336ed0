package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestHostileFiles: a device or a FIFO as the sim config or the scenario is
// refused at once.
func TestHostileFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-config", "/dev/zero"}, "read sim config: /dev/zero is a character device, not a regular file\n"},
		{[]string{"-config", fifo}, "read sim config: " + fifo + " is a FIFO, not a regular file\n"},
		{[]string{"-config", "../../configs/sim/demo.yaml", "-scenario", "/dev/zero"}, "read scenario: /dev/zero is a character device, not a regular file\n"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != exitUsage || stderr.String() != tc.err {
			t.Errorf("%v: exit %d, stderr %q; want exit %d, %q", tc.args, code, stderr.String(), exitUsage, tc.err)
		}
	}
}

func TestTokenFileFlag(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, err string
	}{
		{"/dev/zero", "rtusim: -token-file: /dev/zero is a character device, not a regular file\n"},
		{empty, "rtusim: -token-file " + empty + " is empty\n"},
		{filepath.Join(dir, "nope"), "rtusim: -token-file: open " + filepath.Join(dir, "nope") + ": no such file or directory\n"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"-token-file", tc.file}, &stdout, &stderr); code != exitUsage || stderr.String() != tc.err {
			t.Errorf("-token-file %s: exit %d, stderr %q; want exit %d, %q", tc.file, code, stderr.String(), exitUsage, tc.err)
		}
	}
}
