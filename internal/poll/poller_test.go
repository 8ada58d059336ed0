package poll

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
)

func TestNewValidates(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Type: profile.Uint16}
	ok := func() *config.Model {
		return testModel(testLink("L", "tcp://127.0.0.1:1502", time.Second, testDevice("D", 1, time.Second, pt)))
	}
	for _, tc := range []struct {
		name string
		opts func() Options
		want string // the error; "" for none
	}{
		{"all missing", func() Options { return Options{} }, "model is nil\nsink is nil\nlogger is nil\nregisterer is nil"},
		{"complete", func() Options {
			return Options{Model: ok(), Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, ""},
		{"empty model", func() Options {
			m := &config.Model{Poll: config.PollDefaults{StaleAfter: 1}}
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, ""},
		{"stale_after 0", func() Options {
			m := ok()
			m.Poll.StaleAfter = 0
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "poll stale_after 0 is less than 1"},
		{"zero interval", func() Options {
			m := ok()
			m.Devices[0].Interval = 0
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "device D: interval 0s is not positive"},
		{"unknown table", func() Options {
			m := ok()
			m.Devices[0].Points[0].RegType = 7
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "device D: point v: unknown register table regtype(7)"},
		{"device on no link", func() Options {
			m := ok()
			m.Devices = append(m.Devices, testDevice("X", 2, time.Second, pt))
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "device X is on no link's device list"},
		{"unsupported scheme", func() Options {
			m := ok()
			m.Links[0].Scheme = "udp"
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, `link L: unsupported scheme "udp"`},
		{"rtu without serial settings", func() Options {
			m := ok()
			m.Links[0].Scheme, m.Links[0].URL = config.SchemeRTU, "rtu:///dev/ttyS0"
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "link L: rtu link without serial settings"},
		{"bad parity", func() Options {
			m := ok()
			m.Links[0].Scheme, m.Links[0].URL = config.SchemeRTU, "rtu:///dev/ttyS0"
			m.Links[0].Serial = &config.Serial{Baud: 9600, DataBits: 8, Parity: "X", StopBits: 1}
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, `link L: parity "X" is not N, E or O`},
		{"rtu", func() Options {
			m := ok()
			m.Links[0].Scheme, m.Links[0].URL = config.SchemeRTU, "rtu:///dev/ttyS0"
			m.Links[0].Serial = &config.Serial{Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, ""},
		{"missing certificate", func() Options {
			m := ok()
			m.Links[0].Scheme, m.Links[0].URL = config.SchemeTLS, "tcp+tls://127.0.0.1:802"
			m.Links[0].TLS = &config.TLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/c.key", CAFile: "/nonexistent/ca.pem"}
			return Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()}
		}, "link L: load client certificate /nonexistent/c.pem: open /nonexistent/c.pem: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.opts())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("New error = %v, want %q", err, tc.want)
			case tc.want == "" && p == nil:
				t.Error("New returned no poller")
			}
		})
	}
}

func TestMetricsRegisteredAtNew(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Type: profile.Uint16}
	m := testModel(testLink("L", "tcp://127.0.0.1:1502", time.Second, testDevice("D", 1, time.Second, pt)))
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Model: m, Sink: newCollector(), Logger: quietLogger(), Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := "feederd_device_up feederd_link_connected feederd_poll_duration_seconds feederd_poll_lateness_seconds feederd_poll_missed_total " +
		"feederd_polls_total feederd_reconnects_total feederd_requests_total"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("series present before the first poll: %s\nwant %s", got, want)
	}
}
