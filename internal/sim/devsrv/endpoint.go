package devsrv

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Transport is how an endpoint carries Modbus.
type Transport string

const (
	TransportTCP        Transport = "tcp"        // Modbus TCP (MBAP)
	TransportTLS        Transport = "tcp+tls"    // Modbus/TCP Security: MBAP over mutual TLS
	TransportRTUOverTCP Transport = "rtuovertcp" // RTU frames over a TCP connection
	TransportRTU        Transport = "rtu"        // RTU on a serial line
)

// ServerOptions tune every endpoint.
type ServerOptions struct {
	Logger *slog.Logger
	// MaxClients bounds concurrent TCP connections per endpoint (default
	// 100); connections beyond it are closed at once.
	MaxClients uint
	// IdleTimeout closes a TCP connection without requests (default 120 s).
	IdleTimeout time.Duration
	// Gateway marks a TCP endpoint as a gateway even when it serves a
	// single device. An endpoint that serves exactly one device and is not
	// a gateway is that device's own port, where Fault.Refuse and
	// Fault.HalfOpen act on the port itself; on a gateway they silence
	// one unit.
	Gateway bool
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxClients == 0 {
		o.MaxClients = 100
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	return o
}

// Endpoint is one bound TCP listener or one opened serial line serving a
// set of units. Listen/Open binds at once, so a busy port fails before
// anything runs; Serve then runs it until its context ends.
type Endpoint struct {
	// URL is where clients reach it, e.g. tcp://127.0.0.1:5020,
	// tcp+tls://127.0.0.1:802, rtuovertcp://127.0.0.1:5100,
	// rtu:///dev/pts/4.
	URL   string
	Units *Units

	serve func(ctx context.Context) error
	close func()
	once  sync.Once
}

// Serve answers requests until ctx is done, then releases the listener or
// port and returns once every goroutine it started has ended. Call it at
// most once.
func (e *Endpoint) Serve(ctx context.Context) error {
	defer e.Close()
	return e.serve(ctx)
}

// Close releases an endpoint that is not served (Serve closes its own).
func (e *Endpoint) Close() { e.once.Do(e.close) }

// ListenTCP serves Modbus TCP on addr (host:port; port 0 picks a free port,
// URL tells which).
//
// The server is this package's own rather than the client library's: it
// must stop reading a connection (Fault.HalfOpen), close and reopen its
// listener (Fault.Refuse), bind port 0, and end every goroutine it started
// before Serve returns, none of which the library's server allows; MBAP
// framing is a 7-byte header around the same PDUs the RTU side answers.
func ListenTCP(addr string, u *Units, o ServerOptions) (*Endpoint, error) {
	s, err := listenTCP("tcp", addr, u, o, nil)
	if err != nil {
		return nil, fmt.Errorf("listen modbus tcp on %s: %w", addr, err)
	}
	s.proto = s.serveMBAP
	return s.endpoint(), nil
}

// ListenRTUOverTCP serves RTU frames over TCP connections on addr (port 0
// picks a free port; URL tells which).
func ListenRTUOverTCP(addr string, u *Units, o ServerOptions) (*Endpoint, error) {
	s, err := listenTCP("rtuovertcp", addr, u, o, nil)
	if err != nil {
		return nil, fmt.Errorf("listen rtu over tcp on %s: %w", addr, err)
	}
	s.proto = s.serveRTU
	return s.endpoint(), nil
}

// tcpServer is one TCP listener: plain MBAP, MBAP over TLS, or RTU over
// TCP. It owns its connections' goroutines and, on a device's own port,
// applies that device's Refuse and HalfOpen faults to the whole port.
type tcpServer struct {
	scheme string
	addr   string // the bound address, to listen again after Refuse
	u      *Units
	own    *Device // the device whose own port this is; nil on a gateway
	o      ServerOptions
	tls    *tls.Config
	proto  func(ctx context.Context, c net.Conn) error

	mu      sync.Mutex
	ln      net.Listener // nil while refusing or after shutdown
	hold    *portHold    // the port, bound and not listening, while refusing
	conns   map[net.Conn]struct{}
	stopped bool
	wake    chan struct{} // the fault changed (capacity 1)
	unstall chan struct{} // closed when HalfOpen ends; then replaced
	wg      sync.WaitGroup
}

func listenTCP(scheme, addr string, u *Units, o ServerOptions, cfg *tls.Config) (*tcpServer, error) {
	o = o.withDefaults()
	ln, err := listenReusable(addr)
	if err != nil {
		return nil, err
	}
	s := &tcpServer{
		scheme:  scheme,
		addr:    ln.Addr().String(),
		u:       u,
		o:       o,
		tls:     cfg,
		ln:      ln,
		conns:   map[net.Conn]struct{}{},
		wake:    make(chan struct{}, 1),
		unstall: make(chan struct{}),
	}
	if devs := u.Devices(); len(devs) == 1 && !o.Gateway {
		s.own = devs[0]
	}
	return s, nil
}

func (s *tcpServer) endpoint() *Endpoint {
	return &Endpoint{URL: s.scheme + "://" + s.addr, Units: s.u, serve: s.serve, close: s.shutdown}
}

// serve accepts connections until ctx is done; while the own device
// refuses, it has no listener and waits for the fault to clear.
func (s *tcpServer) serve(ctx context.Context) error {
	if s.own != nil {
		unwatch := s.own.watchFault(s.faultChanged)
		defer unwatch()
		s.faultChanged() // a fault set before Serve
	}
	stopAfter := context.AfterFunc(ctx, s.shutdown)
	defer func() {
		stopAfter()
		s.shutdown()
		s.wg.Wait()
	}()
	for {
		s.mu.Lock()
		ln, stopped := s.ln, s.stopped
		s.mu.Unlock()
		if stopped {
			return nil
		}
		if ln == nil {
			s.waitListen(ctx)
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				continue // refused or shut down: the loop looks again
			}
			// Out of file descriptors and the like: wait, as net/http does.
			s.o.Logger.Warn("accept connection", "url", s.url(), "err", err)
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		if !s.track(c) {
			c.Close()
			continue
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			s.handle(ctx, c)
		})
	}
}

func (s *tcpServer) url() string { return s.scheme + "://" + s.addr }

// waitListen runs while there is no listener: it waits for the own device
// to stop refusing, and listens again if faultChanged could not.
func (s *tcpServer) waitListen(ctx context.Context) {
	s.mu.Lock()
	ln, refusing := s.ln, s.refusingLocked()
	s.mu.Unlock()
	if ln != nil {
		return // faultChanged listened meanwhile
	}
	if refusing {
		select {
		case <-ctx.Done():
		case <-s.wake:
		}
		return
	}
	ln, err := listenReusable(s.addr)
	if err != nil {
		s.o.Logger.Warn("listen again after refusing connections", "url", s.url(), "err", err)
		sleepCtx(ctx, 100*time.Millisecond)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.ln != nil || s.refusingLocked() {
		ln.Close()
		return
	}
	s.ln = ln
}

func (s *tcpServer) refusingLocked() bool {
	if s.own == nil {
		return false
	}
	st := s.own.fault.Load()
	return st != nil && st.Refuse
}

// faultChanged applies the own device's fault to the port: Refuse closes
// the listener and resets every connection; the end of Refuse wakes serve
// to listen again; the end of HalfOpen releases stalled connections.
func (s *tcpServer) faultChanged() {
	st := s.own.fault.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if st != nil && st.Refuse {
		if s.ln != nil {
			// Hold the port before letting the listener go (hold_linux.go).
			if s.hold == nil {
				if h, err := holdPort(s.addr); err == nil {
					s.hold = h
				} else if !errors.Is(err, errors.ErrUnsupported) {
					s.o.Logger.Warn("refuse connections: hold the port", "url", s.url(), "err", err)
				}
			}
			stopListening(s.ln)
			s.ln = nil
		}
		for c := range s.conns {
			reset(c)
		}
	} else if s.ln == nil {
		// Listen again at once, so that the port accepts connections when
		// SetFault returns; serve retries if the port was taken meanwhile.
		var ln net.Listener
		var err error
		if s.hold != nil {
			ln, err = s.hold.listen()
			s.hold = nil
		} else {
			ln, err = listenReusable(s.addr)
		}
		if err == nil {
			s.ln = ln
		} else {
			s.o.Logger.Warn("listen again after refusing connections", "url", s.url(), "err", err)
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	if st == nil || !st.HalfOpen {
		close(s.unstall)
		s.unstall = make(chan struct{})
	}
}

// shutdown closes the listener and every connection, for good.
func (s *tcpServer) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.hold != nil {
		s.hold.close()
		s.hold = nil
	}
	for c := range s.conns {
		c.Close()
	}
}

func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return false
	case s.own != nil && s.refusingLocked():
		reset(c)
		return false
	case uint(len(s.conns)) >= s.o.MaxClients:
		s.o.Logger.Warn("rejected connection", "url", s.url(), "remote", c.RemoteAddr().String(), "reason", "max clients")
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *tcpServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// handshakeTimeout bounds a TLS handshake.
const handshakeTimeout = 10 * time.Second

func (s *tcpServer) handle(ctx context.Context, c net.Conn) {
	conn := c
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.o.Logger.Debug("tls handshake failed", "url", s.url(), "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		conn = tc
	}
	if err := s.proto(ctx, conn); err != nil && ctx.Err() == nil {
		s.o.Logger.Debug("connection ended", "url", s.url(), "remote", c.RemoteAddr().String(), "err", err)
	}
}

// portFault returns the fault that governs a request for unit: on a
// device's own port that device's, whatever the unit ID; on a gateway the
// addressed unit's, with Refuse and HalfOpen turned into Silent.
func (s *tcpServer) portFault(unit uint8) *faultState {
	if s.own != nil {
		return s.own.fault.Load()
	}
	d := s.u.Device(unit)
	if d == nil {
		return nil
	}
	return d.fault.Load()
}

// verdict is what a TCP connection does with one request.
type verdict uint8

const (
	verdictAnswer verdict = iota // answer, after the fault's Latency
	verdictDrop                  // read it, say nothing
	verdictStall                 // stop reading the connection (HalfOpen)
	verdictHangUp                // reset the connection (Refuse that raced a request)
)

func (s *tcpServer) verdict(st *faultState) verdict {
	switch {
	case st == nil:
		return verdictAnswer
	case st.Refuse && s.own != nil:
		return verdictHangUp
	case st.HalfOpen && s.own != nil:
		return verdictStall
	case st.Silent || st.Refuse || st.HalfOpen:
		return verdictDrop
	}
	return verdictAnswer
}

// stallConn holds a connection without reading it until HalfOpen ends or
// the server stops; the caller then resets it.
func (s *tcpServer) stallConn(ctx context.Context) {
	s.mu.Lock()
	ch := s.unstall
	s.mu.Unlock()
	// Checked after taking the channel: a clear in between closed it.
	if st := s.own.fault.Load(); st == nil || !st.HalfOpen {
		return
	}
	select {
	case <-ctx.Done():
	case <-ch:
	}
}

// errHungUp ends a connection the fault closed.
var errHungUp = errors.New("connection closed by an injected fault")

// serveMBAP answers Modbus TCP requests on one connection: a 7-byte MBAP
// header (transaction ID, protocol 0, length, unit) and a PDU; the answer
// echoes the transaction ID. Requests are answered in order, one at a
// time, as most devices do.
func (s *tcpServer) serveMBAP(ctx context.Context, c net.Conn) error {
	be := binary.BigEndian
	r := bufio.NewReaderSize(c, 512)
	var hdr [7]byte
	pdu := make([]byte, 256)
	out := make([]byte, 0, 7+256)
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.o.IdleTimeout)); err != nil {
			return err
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return closedOK(err)
		}
		n := int(be.Uint16(hdr[4:]))
		if n < 2 || n > 254 {
			return fmt.Errorf("mbap length %d outside 2..254", n)
		}
		body := pdu[:n-1]
		if _, err := io.ReadFull(r, body); err != nil {
			return closedOK(err)
		}
		if be.Uint16(hdr[2:]) != 0 {
			continue // not Modbus
		}
		unit := hdr[6]
		st := s.portFault(unit)
		if st != nil {
			switch s.verdict(st) {
			case verdictDrop:
				continue
			case verdictStall:
				s.stallConn(ctx)
				reset(c)
				return errHungUp
			case verdictHangUp:
				reset(c)
				return errHungUp
			}
			if st.Latency > 0 && !sleepCtx(ctx, st.Latency) {
				return nil
			}
		}
		out = append(out[:0], hdr[0], hdr[1], 0, 0, 0, 0, unit)
		out = s.u.AppendResponse(out, unit, body)
		be.PutUint16(out[4:], uint16(len(out)-6))
		if _, err := c.Write(out); err != nil {
			return closedOK(err)
		}
	}
}

// serveRTU answers RTU frames on one TCP connection.
func (s *tcpServer) serveRTU(ctx context.Context, c net.Conn) error {
	return serveRTU(ctx, c, s.u, RTUOptions{Logger: s.o.Logger}, s)
}

// closedOK turns the errors of a connection the client closed into nil.
func closedOK(err error) error {
	if isClosed(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// reset closes c with an RST rather than a FIN, so the peer's next read or
// write fails with "connection reset by peer", as when a device reboots.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// OpenSerialBus opens a serial line and serves RTU on it.
func OpenSerialBus(sc SerialConfig, u *Units, o ServerOptions) (*Endpoint, error) {
	o = o.withDefaults()
	port, err := OpenSerial(sc)
	if err != nil {
		return nil, err
	}
	url := "rtu://" + sc.Path
	return &Endpoint{
		URL:   url,
		Units: u,
		// The port is closed by Close after ServeRTU returned: the library
		// port's Read may not race with its Close.
		serve: func(ctx context.Context) error {
			if err := ServeRTU(ctx, port, u, RTUOptions{Silence: sc.Silence(), Logger: o.Logger}); err != nil {
				return fmt.Errorf("serve rtu on %s: %w", sc.Path, err)
			}
			return nil
		},
		close: func() { port.Close() },
	}, nil
}
