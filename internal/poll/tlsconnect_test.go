package poll

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// TestTLSConnectSilentPeer: a tcp+tls:// link to a peer that accepts TCP
// connections and never says a word gives up each connect within the
// link's timeout (the library alone would wait 15 s), reports the device
// down with that reason, and stops at once when asked.
func TestTLSConnectSilentPeer(t *testing.T) {
	dir, _, _ := tlsFiles(t)
	url := "tcp+tls://" + strings.TrimPrefix(mute(t), "tcp://")
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	dev := testDevice("D", 1, time.Second, pt)
	l := testLink("L", url, 300*time.Millisecond, dev)
	l.Scheme = config.SchemeTLS
	l.TLS = &config.TLS{
		CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"), CAFile: filepath.Join(dir, "ca.pem"),
	}
	l.BackoffInitial, l.BackoffMax = 10*time.Millisecond, 10*time.Millisecond
	sink := newCollector()
	reg := prometheus.NewRegistry()
	begin := time.Now()
	p, stop := start(t, testModel(l), sink, reg, nil)
	// The first poll is due at start; it waits for the connect attempt.
	sink.waitFor(t, 0, "a poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	if took := time.Since(begin); took > 900*time.Millisecond {
		t.Errorf("first poll after %s, want the 300ms connect timeout and little more", took)
	}
	// Reconnects follow each other every timeout + 10ms backoff.
	time.Sleep(time.Second)
	stopAt := time.Now()
	stop()
	if took := time.Since(stopAt); took > 200*time.Millisecond {
		t.Errorf("stop took %s while connecting, want at once", took)
	}
	if n := value(t, reg, "feederd_reconnects_total", "link", "L"); n < 2 || n > 5 {
		t.Errorf("reconnects in about 1.3s = %v, want 2..5 (one per 310ms)", n)
	}
	st := p.Status()[0]
	want := "poll D: open link L (" + url + "): tls connect to " + strings.TrimPrefix(url, "tcp+tls://") + ": no handshake within 300ms"
	if st.Up || st.LastError != want {
		t.Errorf("status = %+v, want down with %q", st, want)
	}
}
