package poll

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// blackHole is a TCP listener on 127.0.0.1 that drops connects: its
// backlog holds one connection, which a connection of its own fills, and
// nothing accepts until open, so the kernel drops every later SYN and a
// connect hangs until the client gives up (the library's dial: 5 s). The
// client sends its SYN again after 1 s, then 3 s: a connect pending when
// open is called succeeds at the next of these. From open on, every
// connection is accepted, counted and relayed to backend.
type blackHole struct {
	addr    string
	opened  chan struct{}
	once    sync.Once
	shut    func()       // closes the listener and the filler
	accepts atomic.Int32 // connections accepted, the filler not counted
	ended   atomic.Int32 // accepted connections that their client closed
}

func newBlackHole(t *testing.T, backend string) *blackHole {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "black hole")
	defer f.Close() // the listener holds a duplicate
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // a backlog of one connection
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	filler, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	b := &blackHole{addr: ln.Addr().String(), opened: make(chan struct{})}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := []net.Conn{filler}
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		select {
		case <-b.opened:
		case <-stop:
			return
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			if c.RemoteAddr().String() == filler.LocalAddr().String() {
				continue
			}
			b.accepts.Add(1)
			wg.Go(func() {
				s, err := net.DialTimeout("tcp", backend, time.Second)
				if err != nil {
					c.Close()
					return
				}
				track(s)
				wg.Go(func() { io.Copy(c, s) })
				io.Copy(s, c)
				b.ended.Add(1)
				s.Close()
				c.Close()
			})
		}
	})
	b.shut = func() {
		ln.Close()
		filler.Close()
	}
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return b
}

// open lets connections in.
func (b *blackHole) open() { b.once.Do(func() { close(b.opened) }) }

// TestConnectBlackHole: tcp:// and rtuovertcp:// links to a host that
// drops packets fail their connect at the link's timeout (the library alone
// waits its fixed 5 s), report the device down with that reason, and leave
// a neighbour on another link polling. Stopping waits for the attempts the
// library cannot cut short and leaves none pending.
func TestConnectBlackHole(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	im := newImage(1)
	im.holding[10] = 230
	nb := testLink("N", serve(t, im), time.Second, testDevice("N1", 1, 100*time.Millisecond, pt))
	links := []*config.Link{nb}
	for _, scheme := range []config.Scheme{config.SchemeTCP, config.SchemeRTUOverTCP} {
		hole := newBlackHole(t, "")
		l := testLink("L-"+string(scheme), string(scheme)+"://"+hole.addr, 300*time.Millisecond, testDevice("D-"+string(scheme), 1, 500*time.Millisecond, pt))
		l.Scheme = scheme
		if scheme == config.SchemeRTUOverTCP {
			l.Serial = &config.Serial{Baud: 19200}
		}
		l.BackoffInitial, l.BackoffMax = 10*time.Millisecond, 10*time.Millisecond
		links = append(links, l)
	}
	sink := newCollector()
	reg := prometheus.NewRegistry()
	begin := time.Now()
	p, stop := start(t, testModel(links...), sink, reg, nil)
	for dev := uint32(1); dev <= 2; dev++ {
		polls := sink.waitFor(t, dev, "a poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
		took := time.Since(begin)
		t.Logf("device %d: first poll (failed) after %s", dev, took)
		if took > 2500*time.Millisecond {
			t.Errorf("device %d: first poll after %s, want the 300ms connect timeout and little more", dev, took)
		}
		if s := status(polls[0]); s.Value != 0 {
			t.Errorf("device %d: first poll status %v, want 0 (failed)", dev, s.Value)
		}
	}
	for i, st := range p.Status()[1:] {
		l := links[i+1]
		want := "poll " + st.ID + ": open link " + l.ID + " (" + l.URL + "): no connection within 300ms"
		if st.Up || st.LastError != want {
			t.Errorf("status = %+v, want down with %q", st, want)
		}
	}
	// The neighbour polls on every 100ms while the others wait for their
	// connects.
	mark := len(sink.of(0))
	got := sink.waitFor(t, 0, "5 more polls", func(p [][]sample.Sample) bool { return len(p) >= mark+5 })
	for i, poll := range got {
		if s := status(poll); s.Value != 1 || poll[0].Quality != sample.Good || poll[0].Value != 230 {
			t.Errorf("neighbour poll %d: status %v, v = %v %v; want 1, 230 good", i, s.Value, poll[0].Value, poll[0].Quality)
		}
	}
	stopAt := time.Now()
	stop()
	took := time.Since(stopAt)
	t.Logf("stop took %s (%s after start)", took, time.Since(begin))
	if took > 7*time.Second {
		t.Errorf("stop took %s, want at most the library's 5s dial", took)
	}
	for _, l := range p.links {
		if l.pending != nil || l.open {
			t.Errorf("link %s after stop: pending %v, open %v; want neither", l.cfg.ID, l.pending != nil, l.open)
		}
	}
}

// TestConnectAdoptsLateConnection: a connect that times out leaves its
// attempt running; when the device becomes reachable the attempt's
// connection is adopted, so the device sees exactly one connection.
func TestConnectAdoptsLateConnection(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	im := newImage(1)
	im.holding[10] = 231
	hole := newBlackHole(t, serve(t, im)[len("tcp://"):])
	// The timeout is also the request timeout of the polls that follow:
	// long enough for a loopback answer on a loaded machine.
	l := testLink("L", "tcp://"+hole.addr, 800*time.Millisecond, testDevice("D", 1, 200*time.Millisecond, pt))
	l.BackoffInitial, l.BackoffMax = 50*time.Millisecond, 50*time.Millisecond
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, stop := start(t, testModel(l), sink, reg, nil)
	first := sink.waitFor(t, 0, "a poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	if s := status(first[0]); s.Value != 0 {
		t.Fatalf("first poll status %v, want 0 (failed)", s.Value)
	}
	want := "poll D: open link L (tcp://" + hole.addr + "): no connection within 800ms"
	if st := p.Status()[0]; st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
	// The attempt is pending; its SYN goes again 1 s after the first (3 s
	// if that one was already dropped).
	hole.open()
	good := func(poll []sample.Sample) bool { return status(poll).Value == 1 && poll[0].Value == 231 }
	polls := sink.waitFor(t, 0, "a good poll", func(p [][]sample.Sample) bool { return len(p) > 0 && good(p[len(p)-1]) })
	mark := len(polls)
	polls = sink.waitFor(t, 0, "5 more polls", func(p [][]sample.Sample) bool { return len(p) >= mark+5 })
	for i, poll := range polls[mark:] {
		if !good(poll) {
			t.Errorf("poll %d after the connect: status %v, v = %v %v; want 1, 231 good", mark+i, status(poll).Value, poll[0].Value, poll[0].Quality)
		}
	}
	if n := hole.accepts.Load(); n != 1 {
		t.Errorf("device accepted %d connections, want 1 (the late attempt adopted, no second dial)", n)
	}
	if n := value(t, reg, "feederd_link_connected", "link", "L"); n != 1 {
		t.Errorf("feederd_link_connected = %v, want 1", n)
	}
	stop()
	deadline := time.Now().Add(2 * time.Second)
	for hole.ended.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("2s after stop: %d connections closed by the link, want 1", hole.ended.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLinkCloseCollectsPendingAttempt: stopping a link whose connect
// attempt is still running waits for the attempt, closes the connection it
// made late, and leaves no goroutine behind.
func TestLinkCloseCollectsPendingAttempt(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	im := newImage(1)
	hole := newBlackHole(t, serve(t, im)[len("tcp://"):])
	l := testLink("L", "tcp://"+hole.addr, 300*time.Millisecond, testDevice("D", 1, 200*time.Millisecond, pt))
	l.BackoffInitial, l.BackoffMax = 10*time.Millisecond, 10*time.Millisecond
	sink := newCollector()
	before := runtime.NumGoroutine()
	p, stop := start(t, testModel(l), sink, prometheus.NewRegistry(), nil)
	sink.waitFor(t, 0, "a poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while the connect attempt was pending")
	case <-time.After(100 * time.Millisecond):
	}
	hole.open()
	select {
	case <-stopped:
	case <-time.After(6 * time.Second):
		t.Fatal("stop did not return within 6s")
	}
	if p.links[0].pending != nil || p.links[0].open {
		t.Errorf("after stop: pending %v, open %v; want neither", p.links[0].pending != nil, p.links[0].open)
	}
	// The kernel completed the late connection; the black hole accepts it
	// from its queue in its own time, after the link may have closed it.
	deadline := time.Now().Add(2 * time.Second)
	for hole.ended.Load() != 1 || runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("2s after stop: %d of 1 late connections closed, %d goroutines, %d before start", hole.ended.Load(), runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := hole.accepts.Load(); n != 1 {
		t.Errorf("accepted %d connections, want the late one", n)
	}
}

// TestDialAnewAfterFailedAttempt: a connect that finds the attempt it left
// running has failed meanwhile dials anew at once, rather than reporting
// the old failure.
func TestDialAnewAfterFailedAttempt(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
	hole := newBlackHole(t, "")
	lc := testLink("L", "tcp://"+hole.addr, 300*time.Millisecond, testDevice("D", 1, time.Second, pt))
	p, err := New(Options{Model: testModel(lc), Sink: newCollector(), Logger: quietLogger(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	l := p.links[0]
	defer l.close()
	ctx := context.Background()
	want := "no connection within 300ms"
	if err := l.dial(ctx); err == nil || err.Error() != want {
		t.Fatalf("first dial: %v, want %q", err, want)
	}
	// The attempt's SYN goes again 1 s after the first, to a closed port
	// now: the attempt fails, refused.
	hole.shut()
	deadline := time.Now().Add(4 * time.Second)
	for len(l.pending) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt did not fail within 4s of the port closing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.timeout = 2 * time.Second // a loopback connect on a loaded machine
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + hole.addr, MaxClients: 2, Logger: log.New(io.Discard, "", 0)}, newImage(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := l.dial(ctx); err != nil {
		t.Fatalf("second dial: %v, want a new attempt that connects", err)
	}
	if l.pending != nil {
		t.Error("pending attempt after a connect")
	}
	l.open = true // as connect does
}
