package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

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
