package poll

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// image is a Modbus device served by the library's own server: a register
// image with injectable exceptions and latency.
type image struct {
	mu       sync.Mutex
	unit     uint8
	holding  map[uint16]uint16
	input    map[uint16]uint16
	coils    map[uint16]bool
	discrete map[uint16]bool
	// delay is slept before every answer.
	delay time.Duration
	// fail answers every read of a table with this error.
	fail map[profile.RegType]error
	// hang delays every answer for a table by this much more than delay.
	hang map[profile.RegType]time.Duration
	// log records every request.
	log []served
}

type served struct {
	at     time.Time
	client string
	table  profile.RegType
	addr   uint16
	count  uint16
}

func newImage(unit uint8) *image {
	return &image{
		unit: unit, holding: map[uint16]uint16{}, input: map[uint16]uint16{},
		coils: map[uint16]bool{}, discrete: map[uint16]bool{}, fail: map[profile.RegType]error{},
		hang: map[profile.RegType]time.Duration{},
	}
}

func (im *image) setDelay(d time.Duration) {
	im.mu.Lock()
	im.delay = d
	im.mu.Unlock()
}

func (im *image) requests() []served {
	im.mu.Lock()
	defer im.mu.Unlock()
	return slices.Clone(im.log)
}

// begin records a request and returns the error to answer with, after the
// delay.
func (im *image) begin(client string, unit uint8, t profile.RegType, addr, n uint16) error {
	im.mu.Lock()
	im.log = append(im.log, served{time.Now(), client, t, addr, n})
	delay, err := im.delay+im.hang[t], im.fail[t]
	im.mu.Unlock()
	time.Sleep(delay)
	if unit != im.unit {
		return modbus.ErrGWPathUnavailable
	}
	return err
}

func regs(m map[uint16]uint16, addr, n uint16) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = m[addr+uint16(i)]
	}
	return out
}

func bits(m map[uint16]bool, addr, n uint16) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = m[addr+uint16(i)]
	}
	return out
}

func (im *image) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	if err := im.begin(req.ClientAddr, req.UnitId, profile.Coil, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return bits(im.coils, req.Addr, req.Quantity), nil
}

func (im *image) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	if err := im.begin(req.ClientAddr, req.UnitId, profile.DiscreteInput, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return bits(im.discrete, req.Addr, req.Quantity), nil
}

func (im *image) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if err := im.begin(req.ClientAddr, req.UnitId, profile.Holding, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return regs(im.holding, req.Addr, req.Quantity), nil
}

func (im *image) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	if err := im.begin(req.ClientAddr, req.UnitId, profile.Input, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return regs(im.input, req.Addr, req.Quantity), nil
}

// freeAddr returns a 127.0.0.1 address nobody listens on (the library's
// server takes a URL, not a listener).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serve starts a Modbus TCP server for im and returns its URL.
func serve(t testing.TB, im *image) string {
	t.Helper()
	return serveHandler(t, im)
}

// serveHandler starts a Modbus TCP server for h and returns its URL.
func serveHandler(t testing.TB, h modbus.RequestHandler) string {
	t.Helper()
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL:        "tcp://" + addr,
		MaxClients: 20,
		Logger:     log.New(io.Discard, "", 0),
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return "tcp://" + addr
}

// mute accepts connections and never answers.
func mute(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + l.Addr().String()
}

// collector is a Sink that keeps copies of every poll.
type collector struct {
	mu    sync.Mutex
	polls map[uint32][][]sample.Sample
	ch    chan struct{}
}

func newCollector() *collector {
	return &collector{polls: map[uint32][][]sample.Sample{}, ch: make(chan struct{}, 1)}
}

func (c *collector) Put(s []sample.Sample) {
	c.mu.Lock()
	c.polls[s[0].Device] = append(c.polls[s[0].Device], slices.Clone(s))
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) of(dev uint32) [][]sample.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.polls[dev])
}

// waitFor waits until cond holds for the polls of dev, for at most 10 s.
func (c *collector) waitFor(t *testing.T, dev uint32, what string, cond func(polls [][]sample.Sample) bool) [][]sample.Sample {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if p := c.of(dev); cond(p) {
			return p
		}
		select {
		case <-c.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("device %d: timed out waiting for %s; got %d polls", dev, what, len(c.of(dev)))
		}
	}
}

func status(poll []sample.Sample) sample.Sample { return poll[len(poll)-1] }

// lost is the quality of a point that never had a good value and gets none
// in the poll with sequence number seq, with stale_after 3: Timeout in the
// first three slots, Stale from then on.
func lost(seq uint32) sample.Quality {
	if seq <= 3 {
		return sample.Timeout
	}
	return sample.Stale
}

// testLink builds a TCP link with short timeouts.
func testLink(id, url string, timeout time.Duration, devs ...*config.Device) *config.Link {
	l := &config.Link{
		ID: id, URL: url, Scheme: config.SchemeTCP, Timeout: timeout,
		BackoffInitial: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Devices: devs,
	}
	for _, d := range devs {
		d.Link = l
		if d.Timeout == 0 {
			d.Timeout = timeout
		}
	}
	return l
}

// testDevice builds a device with the quirks the config package fills in
// when the file sets none.
func testDevice(id string, unit uint8, interval time.Duration, points ...profile.Point) *config.Device {
	return &config.Device{
		ID: id, Unit: unit, Interval: interval, Points: points,
		Quirks: config.Quirks{MaxRegisters: MaxRegisters, MaxBits: MaxBits, MaxGap: 10},
	}
}

// testModel numbers the links' devices in order; stale_after is the
// config default, 3.
func testModel(links ...*config.Link) *config.Model {
	m := &config.Model{Links: links, Poll: config.PollDefaults{StaleAfter: 3}}
	for _, l := range links {
		for _, d := range l.Devices {
			d.Index = uint32(len(m.Devices))
			m.Devices = append(m.Devices, d)
		}
	}
	return m
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs a poller over m until the test ends; stop ends it early and
// waits for Run to return.
func start(t *testing.T, m *config.Model, sink Sink, reg prometheus.Registerer, rnd func() float64) (p *Poller, stop func()) {
	t.Helper()
	p, err := New(Options{Model: m, Sink: sink, Logger: quietLogger(), Registerer: reg, Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}
