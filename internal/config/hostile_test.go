package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileFiles feeds the loader files that are not regular files, and
// one too large: each must be refused at once, naming the file and what it
// is, without reading it into memory.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxFileSize+1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	profile, err := filepath.Abs("../../testdata/config/profiles/relay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// config writes a configuration naming profile and token in dir.
	config := func(t *testing.T, profiles, token string) string {
		t.Helper()
		p := filepath.Join(dir, "feederd.yaml")
		text := "profiles: [" + profiles + "]\n" +
			"influx: {url: http://127.0.0.1:8086, bucket: feederd/autogen, token_file: " + token + "}\n" +
			"links: [{id: gw, url: tcp://127.0.0.1:5020}]\n" +
			"devices: [{id: F101-R1, link: gw, unit: 1, profile: relay, feeder: F101}]\n"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodToken := filepath.Join(dir, "token")
	if err := os.WriteFile(goodToken, []byte("user:pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "feederd.yaml")
	tests := []struct {
		name string
		path func(t *testing.T) string
		want string
	}{
		{"config /dev/zero", func(*testing.T) string { return "/dev/zero" },
			"load config: /dev/zero is a character device, not a regular file"},
		{"config FIFO", func(*testing.T) string { return fifo },
			"load config: " + fifo + " is a FIFO, not a regular file"},
		{"config directory", func(*testing.T) string { return dir },
			"load config: " + dir + " is a directory, not a regular file"},
		{"config too large", func(*testing.T) string { return big },
			"load config: " + big + " is 16777217 bytes, more than the 16777216 allowed"},
		{"profile /dev/zero", func(t *testing.T) string { return config(t, "/dev/zero, "+profile, goodToken) },
			cfg + `:1: profiles[0]: read profile file "/dev/zero": /dev/zero is a character device, not a regular file`},
		{"profile FIFO", func(t *testing.T) string { return config(t, fifo+", "+profile, goodToken) },
			cfg + `:1: profiles[0]: read profile file "` + fifo + `": ` + fifo + " is a FIFO, not a regular file"},
		{"token_file /dev/zero", func(t *testing.T) string { return config(t, profile, "/dev/zero") },
			cfg + `:2: influx.token_file: read token file "/dev/zero": /dev/zero is a character device, not a regular file`},
		{"token_file FIFO", func(t *testing.T) string { return config(t, profile, fifo) },
			cfg + `:2: influx.token_file: read token file "` + fifo + `": ` + fifo + " is a FIFO, not a regular file"},
		{"token_file too large", func(t *testing.T) string { return config(t, profile, big) },
			cfg + `:2: influx.token_file: read token file "` + big + `": ` + big + " is 16777217 bytes, more than the 16777216 allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			m, err := Load(path, LoadOptions{Getenv: noEnv})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if m != nil || err == nil {
				t.Fatalf("Load(%s) = %v, %v; want an error", path, m, err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error:\n got: %s\nwant: %s", got, tc.want)
			}
			if took > time.Second {
				t.Errorf("Load took %s, want at most 1s", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("Load allocated %d bytes, want at most 4 MiB", alloc)
			}
		})
	}
	// The good token file and profile load, so the cases above fail for
	// the one file they name.
	if _, err := Load(config(t, profile, goodToken), LoadOptions{Getenv: noEnv}); err != nil {
		t.Errorf("control case: %v", err)
	}
}

func TestReadFileRegular(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := strings.Repeat("x", 1000)
	if err := os.WriteFile(p, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p)
	if err != nil || string(got) != want {
		t.Fatalf("ReadFile = %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if _, err := ReadFile(p + ".missing"); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}
