package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// TestSIGHUPReloads runs the feederd binary and sends it SIGHUP: the
// process does not exit but reloads, and a file with an unknown key is
// refused with its file:line in the log while polls go on; a restart-only
// change is refused naming its key.
func TestSIGHUPReloads(t *testing.T) {
	bin := testenv.BuildCommand(t, "feederd")
	relayURL := simRelay(t)

	abs, err := filepath.Abs(filepath.Join("..", "..", "configs", "profiles", "sel751a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "feederd.yaml")
	cfg := fmt.Sprintf(`profiles: [%s]
poll: {interval: 50ms, timeout: 40ms}
links: [{id: brk, url: %s}]
devices: [{id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}]
`, abs, relayURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := testenv.FreeAddr(t)
	f := startFeederd(t, bin, "run", "-config", cfgPath, "-data.dir", "", "-http.listen", listen)
	scrape := func(series string) (float64, error) {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
				var x float64
				_, err := fmt.Sscan(v, &x)
				return x, err
			}
		}
		return 0, fmt.Errorf("no %s", series)
	}
	waitFor := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	polls := func() float64 {
		n, _ := scrape(`feederd_polls_total{link="brk",result="success"}`)
		return n
	}
	waitFor("polls", func() error {
		if polls() < 1 {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	// Line 3 has a misspelt key.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, "{id: brk, url:", "{id: brk, urll:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the refused reload in the metrics", func() error {
		if n, err := scrape(`feederd_config_reloads_total{result="failure"}`); err != nil || n != 1 {
			return fmt.Errorf("%v failures (%v)", n, err)
		}
		return nil
	})
	if ok, err := scrape("feederd_config_last_reload_successful"); err != nil || ok != 0 {
		t.Fatalf("feederd_config_last_reload_successful = %v (%v), want 0", ok, err)
	}
	for _, want := range []string{
		`msg="SIGHUP: reloading the configuration" config=` + cfgPath,
		fmt.Sprintf(`msg="configuration reload failed: the running configuration is kept" component=reload config=%s err="reload refused, nothing was reloaded: %s:3: links[0].urll: unknown key \"urll\" (did you mean \"url\"?)"`, cfgPath, cfgPath),
	} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}

	// A restart-only change.
	if err := os.WriteFile(cfgPath, []byte(cfg+"http: {listen: 127.0.0.1:1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the second refused reload", func() error {
		if n, err := scrape(`feederd_config_reloads_total{result="failure"}`); err != nil || n != 2 {
			return fmt.Errorf("%v failures (%v)", n, err)
		}
		return nil
	})
	if want := `err="http.listen changed: restart feederd to apply it; nothing was reloaded"`; !strings.Contains(f.logs.String(), want) {
		t.Errorf("log lacks %s", want)
	}
	// Still running, still polling.
	n := polls()
	waitFor("polls after the reloads", func() error {
		if polls() < n+3 {
			return fmt.Errorf("%v polls, want %v", polls(), n+3)
		}
		return nil
	})
	if err := f.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}
