package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/simonvetter/modbus"
)

// Transport is how an endpoint carries Modbus.
type Transport string

const (
	TransportTCP        Transport = "tcp"        // Modbus TCP (MBAP)
	TransportRTUOverTCP Transport = "rtuovertcp" // RTU frames over a TCP connection
	TransportRTU        Transport = "rtu"        // RTU on a serial line
)

// ServerOptions tune every endpoint.
type ServerOptions struct {
	Logger *slog.Logger
	// MaxClients bounds concurrent TCP connections per endpoint (default 100;
	// the library's own default of 10 is too few for a test rig).
	MaxClients uint
	// IdleTimeout closes a TCP connection without requests (default 120 s).
	IdleTimeout time.Duration
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
	// rtuovertcp://127.0.0.1:5100, rtu:///dev/pts/4.
	URL   string
	Units *Units

	serve func(ctx context.Context) error
	close func()
	once  sync.Once
}

// Serve answers requests until ctx is done, then releases the listener or
// port and returns once every goroutine it started has ended (except the
// library TCP server's per-connection goroutines, which its Stop does not
// wait for; they end as their sockets close). Call it at most once.
func (e *Endpoint) Serve(ctx context.Context) error {
	defer e.Close()
	return e.serve(ctx)
}

// Close releases an endpoint that is not served (Serve closes its own).
func (e *Endpoint) Close() { e.once.Do(e.close) }

// ListenTCP serves Modbus TCP on addr (host:port) with the library server.
// Port 0 is refused: the library binds by itself and does not tell the
// port it got.
func ListenTCP(addr string, u *Units, o ServerOptions) (*Endpoint, error) {
	o = o.withDefaults()
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return nil, fmt.Errorf("listen modbus tcp on %q: need host:port with a port other than 0", addr)
	}
	url := "tcp://" + addr
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL:        url,
		Timeout:    o.IdleTimeout,
		MaxClients: o.MaxClients,
		Logger:     slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}, u)
	if err != nil {
		return nil, fmt.Errorf("listen modbus tcp on %s: %w", addr, err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("listen modbus tcp on %s: %w", addr, err)
	}
	return &Endpoint{
		URL:   url,
		Units: u,
		serve: func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		},
		close: func() {
			if err := srv.Stop(); err != nil {
				o.Logger.Warn("stop modbus tcp server", "url", url, "err", err)
			}
		},
	}, nil
}

// ListenRTUOverTCP serves RTU frames over TCP connections on addr (port 0
// picks a free port; URL tells which).
func ListenRTUOverTCP(addr string, u *Units, o ServerOptions) (*Endpoint, error) {
	o = o.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen rtu over tcp on %s: %w", addr, err)
	}
	url := "rtuovertcp://" + ln.Addr().String()
	return &Endpoint{
		URL:   url,
		Units: u,
		serve: func(ctx context.Context) error { return serveRTUConns(ctx, ln, u, o) },
		close: func() { ln.Close() },
	}, nil
}

// serveRTUConns accepts connections and runs ServeRTU on each; on ctx done
// it closes the listener and the connections and waits for their
// goroutines.
func serveRTUConns(ctx context.Context, ln net.Listener, u *Units, o ServerOptions) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var err error
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("accept rtu over tcp on %s: %w", ln.Addr(), aerr)
			}
			break
		}
		mu.Lock()
		if uint(len(conns)) >= o.MaxClients || ctx.Err() != nil {
			mu.Unlock()
			o.Logger.Warn("rejected rtu over tcp connection", "remote", c.RemoteAddr().String(), "reason", "max clients")
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			rc := idleConn{Conn: c, idle: o.IdleTimeout, last: time.Now()}
			if err := ServeRTU(ctx, &rc, u, RTUOptions{Logger: o.Logger}); err != nil && ctx.Err() == nil && !errors.Is(err, errIdle) {
				o.Logger.Debug("rtu over tcp connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		})
	}
	wg.Wait()
	return err
}

var errIdle = errors.New("connection idle")

// idleConn ends a connection that has been quiet for longer than idle.
type idleConn struct {
	net.Conn
	idle time.Duration
	last time.Time
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	now := time.Now()
	if n > 0 {
		c.last = now
	} else if now.Sub(c.last) > c.idle {
		return 0, errIdle
	}
	return n, err
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
