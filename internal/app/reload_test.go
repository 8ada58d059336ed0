package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connCounter is a TCP proxy in front of a simulated device that counts the
// connections feederd opened and those still open.
type connCounter struct {
	url           string
	accepts, open atomic.Int32
}

func countConns(t *testing.T, target string) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &connCounter{url: "tcp://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", strings.TrimPrefix(target, "tcp://"), time.Second)
			if err != nil {
				in.Close()
				continue
			}
			c.accepts.Add(1)
			c.open.Add(1)
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(out, in) // ends when feederd closes its side
				c.open.Add(-1)
				out.Close()
			})
			wg.Go(func() {
				_, _ = io.Copy(in, out)
				in.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return c
}

// reloadVia asks the daemon for a reload the way SIGHUP does and returns
// its error.
func reloadVia(t *testing.T, hup chan chan error) error {
	t.Helper()
	reply := make(chan error, 1)
	select {
	case hup <- reply:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload stage did not take the request")
	}
	select {
	case err := <-reply:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no reload result within 30 s")
	}
	return nil
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRefused: a file with an unknown key and a file that changes a
// setting only a restart applies are refused with their reasons; the
// daemon goes on polling with the configuration it runs, and the metrics
// say the last reload failed.
func TestReloadRefused(t *testing.T) {
	_, url := simDevice(t, "F1-BRK", 1, "sel751a.yaml", map[string]float64{"van": 7200, "vbn": 7200, "vcn": 7200, "breaker_closed": 1})
	cfg := fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml]
poll: {interval: 100ms, timeout: 80ms}
links:
  - {id: brk, url: %[2]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
`, profilesDir(t), url)
	hup := make(chan chan error)
	var path string
	d := startDaemon(t, cfg, func(o *Options) { o.Reload, path = hup, o.ConfigPath })
	polls := func() float64 {
		return scrape(t, d, `feederd_polls_total{link="brk",result="success"}`)
	}
	eventually(t, 10*time.Second, "polls", func() error {
		if polls() < 1 {
			return fmt.Errorf("no poll yet")
		}
		return nil
	})
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 1 {
		t.Fatalf("feederd_config_last_reload_successful = %v at start, want 1", got)
	}
	started := scrape(t, d, "feederd_config_last_reload_success_timestamp_seconds")
	if age := float64(time.Now().UnixNano())/1e9 - started; age < 0 || age > 60 {
		t.Fatalf("feederd_config_last_reload_success_timestamp_seconds is %v s old at start", age)
	}

	// Line 5 has a misspelt key.
	writeConfig(t, path, strings.Replace(cfg, "  - {id: brk, url:", "  - {id: brk, urll:", 1))
	err := reloadVia(t, hup)
	want := "reload refused, nothing was reloaded: " + path + `:5: links[0].urll: unknown key "urll" (did you mean "url"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("reload of a file with a bad key = %v, want %q", err, want)
	}
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 0 {
		t.Fatalf("feederd_config_last_reload_successful = %v after a refused reload, want 0", got)
	}

	// A restart-only setting, and a device change with it: nothing applies.
	writeConfig(t, path, strings.Replace(cfg, "poll: {interval: 100ms, timeout: 80ms}", "poll: {interval: 100ms, timeout: 80ms}\npipeline: {drop_policy: newest}", 1)+
		"  - {id: F1-REC, link: brk, unit: 2, profile: sel751a, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}\n")
	err = reloadVia(t, hup)
	if err == nil || err.Error() != "pipeline.drop_policy changed: restart feederd to apply it; nothing was reloaded" {
		t.Fatalf("reload of a restart-only change = %v", err)
	}
	// Over the API too, with the errors in the answer.
	resp, err := http.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct{ Error string }
	if err := json.Unmarshal(body, &answer); err != nil || resp.StatusCode != 400 ||
		answer.Error != "pipeline.drop_policy changed: restart feederd to apply it; nothing was reloaded" {
		t.Fatalf("POST /-/reload = %d %s", resp.StatusCode, body)
	}
	if got := scrape(t, d, `feederd_config_reloads_total{result="failure"}`); got != 3 {
		t.Fatalf("feederd_config_reloads_total{result=\"failure\"} = %v, want 3", got)
	}
	if got := scrape(t, d, `feederd_config_reloads_total{result="success"}`); got != 0 {
		t.Fatalf("feederd_config_reloads_total{result=\"success\"} = %v, want 0", got)
	}
	if got := scrape(t, d, "feederd_config_last_reload_success_timestamp_seconds"); got != started {
		t.Fatalf("the last success time moved from %v to %v without a success", started, got)
	}
	// The running configuration polls on, and F1-REC is not polled.
	n := polls()
	eventually(t, 10*time.Second, "polls after the refused reloads", func() error {
		if polls() < n+3 {
			return fmt.Errorf("%v polls, want %v", polls(), n+3)
		}
		return nil
	})
	if _, m := get(t, d.base+"/metrics"); strings.Contains(m, "F1-REC") {
		t.Fatal("F1-REC of a refused file has series")
	}
}

// scrape reads one series from the daemon's /metrics: the line that starts
// with series followed by a space. It fails the test if there is none.
func scrape(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	_, body := get(t, d.base+"/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q: %v", series, v, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}
