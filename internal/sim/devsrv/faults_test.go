package devsrv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/sim/simtest"
	"github.com/feederd/feederd/internal/testenv"
)

// transport is one way of serving the fleet's relay (unit 2): alone on its
// own port, or with the meter (unit 1) and the recloser (unit 3) behind a
// gateway or on a bus.
type transport struct {
	name string
	own  bool // the relay alone on its own port
	rtu  bool // RTU framing (CRC)
	tls  bool
	pty  bool
	open func(t *testing.T, u *Units) served
}

// served is an endpoint and, for tcp+tls, the PKI its clients need.
type served struct {
	*Endpoint
	pki *tlsPKI
}

func transports() []transport {
	listen := func(fn func(string, *Units, ServerOptions) (*Endpoint, error), o ServerOptions) func(*testing.T, *Units) served {
		return func(t *testing.T, u *Units) served {
			e, err := fn("127.0.0.1:0", u, o)
			if err != nil {
				t.Fatal(err)
			}
			return served{Endpoint: e}
		}
	}
	return []transport{
		{name: "tcp port", own: true, open: listen(ListenTCP, ServerOptions{})},
		{name: "tcp gateway", open: listen(ListenTCP, ServerOptions{Gateway: true})},
		{name: "tls port", own: true, tls: true, open: func(t *testing.T, u *Units) served {
			return listenTLS(t, u, ServerOptions{})
		}},
		{name: "rtuovertcp port", own: true, rtu: true, open: listen(ListenRTUOverTCP, ServerOptions{})},
		{name: "rtuovertcp gateway", rtu: true, open: listen(ListenRTUOverTCP, ServerOptions{})},
		{name: "pty bus", rtu: true, pty: true, open: func(t *testing.T, u *Units) served {
			e, err := OpenPTYBus("", u, ServerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return served{Endpoint: e}
		}},
	}
}

// faultRig is the fleet served on one transport, with the relay as the
// device under test.
type faultRig struct {
	f     fleet
	e     served
	relay *Device
}

func (tr transport) start(t *testing.T) faultRig {
	t.Helper()
	f := newFleet(t)
	simtest.MustSet(t, f.relay, map[string]float64{"ia": 201, "van": 7210})
	u := f.units(t)
	if tr.own {
		var err error
		if u, err = NewUnits(f.relay); err != nil {
			t.Fatal(err)
		}
	}
	e := tr.open(t, u)
	serve(t, e.Endpoint)
	return faultRig{f: f, e: e, relay: f.relay}
}

// tlsPKI is the test PKI of the endpoint a tcp+tls URL names.
type tlsPKI struct{ ca, cert, key string }

func listenTLS(t *testing.T, u *Units, o ServerOptions) served {
	t.Helper()
	ca, sc, sk, cc, ck := testenv.TestPKI(t)
	cfg, err := LoadTLSConfig(sc, sk, ca)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ListenTLS("127.0.0.1:0", u, o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return served{Endpoint: e, pki: &tlsPKI{ca: ca, cert: cc, key: ck}}
}

// config is the simonvetter client configuration feederd would use.
func (s served) config(t *testing.T, timeout time.Duration) *modbus.ClientConfiguration {
	t.Helper()
	cc := &modbus.ClientConfiguration{
		URL:      s.URL,
		Speed:    19200,
		DataBits: 8,
		Parity:   modbus.PARITY_NONE,
		StopBits: 1,
		Timeout:  timeout,
		Logger:   log.New(io.Discard, "", 0),
	}
	if s.pki != nil {
		cc.TLSClientCert, cc.TLSRootCAs = clientTLS(t, s.pki.ca, s.pki.cert, s.pki.key)
	}
	return cc
}

func clientTLS(t *testing.T, caFile, certFile, keyFile string) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := modbus.LoadCertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &cert, pool
}

// dial opens a client with the given timeout; the open must succeed.
func (s served) dial(t *testing.T, timeout time.Duration) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(s.config(t, timeout))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatalf("open %s: %v", s.URL, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readIA reads the relay's ia (holding 650).
func readIA(c *modbus.ModbusClient) (uint16, error) {
	if err := c.SetUnitId(2); err != nil {
		return 0, err
	}
	return c.ReadRegister(650, modbus.HOLDING_REGISTER)
}

// checkIA reads ia and wants 201.
func checkIA(t *testing.T, c *modbus.ModbusClient, when string) {
	t.Helper()
	v, err := readIA(c)
	if err != nil || v != 201 {
		t.Fatalf("%s: relay ia = %d (%v), want 201", when, v, err)
	}
}

// checkMeter reads the meter's van on a gateway or bus: the other units
// keep answering whatever the relay's fault.
func checkMeter(t *testing.T, c *modbus.ModbusClient, r faultRig) {
	t.Helper()
	if err := c.SetUnitId(1); err != nil {
		t.Fatal(err)
	}
	v, err := c.ReadFloat32(3027, modbus.HOLDING_REGISTER)
	if want := simtest.Value(t, r.f.meter, "van"); err != nil || float64(v) != want {
		t.Fatalf("meter van = %v (%v) while the relay is faulty, want %v", v, err, want)
	}
}

func TestFaultExceptions(t *testing.T) {
	cases := []struct {
		name string
		exc  map[string]byte
		do   func(c *modbus.ModbusClient) error
		want error
	}{
		{"busy on a read", map[string]byte{"ib": 6}, func(c *modbus.ModbusClient) error {
			_, err := c.ReadRegisters(650, 3, modbus.HOLDING_REGISTER)
			return err
		}, modbus.ErrServerDeviceBusy},
		{"illegal address on a read", map[string]byte{"van": 2}, func(c *modbus.ModbusClient) error {
			_, err := c.ReadRegisters(670, 5, modbus.HOLDING_REGISTER)
			return err
		}, modbus.ErrIllegalDataAddress},
		{"read beside the point", map[string]byte{"van": 2}, func(c *modbus.ModbusClient) error {
			_, err := c.ReadRegisters(650, 3, modbus.HOLDING_REGISTER)
			return err
		}, nil},
		{"illegal value on a write", map[string]byte{"pf": 3}, func(c *modbus.ModbusClient) error {
			return c.WriteRegister(688, 95)
		}, modbus.ErrIllegalDataValue},
		{"device failure on a bit", map[string]byte{"trip_alarm": 4}, func(c *modbus.ModbusClient) error {
			_, err := c.ReadRegisters(1806, 1, modbus.HOLDING_REGISTER)
			return err
		}, modbus.ErrServerDeviceFailure},
		{"illegal function", map[string]byte{"freq": 1}, func(c *modbus.ModbusClient) error {
			_, err := c.ReadRegisters(680, 10, modbus.HOLDING_REGISTER)
			return err
		}, modbus.ErrIllegalFunction},
	}
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.start(t)
			c := r.e.dial(t, 2*time.Second)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r.relay.SetFault(Fault{Exceptions: tc.exc})
					if err := c.SetUnitId(2); err != nil {
						t.Fatal(err)
					}
					if err := tc.do(c); !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					if !tr.own {
						checkMeter(t, c, r)
					}
					r.relay.SetFault(Fault{})
					if err := c.SetUnitId(2); err != nil {
						t.Fatal(err)
					}
					if err := tc.do(c); err != nil {
						t.Fatalf("after clearing the fault: %v", err)
					}
				})
			}
		})
	}
}

func TestFaultLatency(t *testing.T) {
	const latency = 300 * time.Millisecond
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.start(t)
			c := r.e.dial(t, 5*time.Second)
			checkIA(t, c, "before the fault")
			r.relay.SetFault(Fault{Latency: latency})
			start := time.Now()
			checkIA(t, c, "with latency")
			if took := time.Since(start); took < latency {
				t.Fatalf("read took %s with a latency of %s", took, latency)
			}
			r.relay.SetFault(Fault{})
			checkIA(t, c, "after clearing the fault")
		})
	}
}

// TestFaultSilent: a silent device times out; on a gateway or bus the
// other units keep answering; Refuse and HalfOpen there mean silent too.
func TestFaultSilent(t *testing.T) {
	faults := []struct {
		name string
		f    Fault
		own  bool // also on own ports
	}{
		{"silent", Fault{Silent: true}, true},
		{"refuse on a shared link", Fault{Refuse: true}, false},
		{"half-open on a shared link", Fault{HalfOpen: true}, false},
		{"silent beats latency and exceptions", Fault{Silent: true, Latency: time.Hour, Exceptions: map[string]byte{"ia": 6}}, true},
	}
	for _, tr := range transports() {
		for _, ft := range faults {
			if tr.own && !ft.own {
				continue
			}
			t.Run(tr.name+"/"+ft.name, func(t *testing.T) {
				r := tr.start(t)
				c := r.e.dial(t, 300*time.Millisecond)
				checkIA(t, c, "before the fault")
				r.relay.SetFault(ft.f)
				if v, err := readIA(c); err != modbus.ErrRequestTimedOut {
					t.Fatalf("read from a silent device: %d, %v; want %v", v, err, modbus.ErrRequestTimedOut)
				}
				if !tr.own {
					checkMeter(t, c, r)
				}
				r.relay.SetFault(Fault{})
				checkIA(t, c, "after clearing the fault")
			})
		}
	}
}

// TestFaultRefuse: a device's own port resets its connections and refuses
// new ones, and listens again when the fault clears.
func TestFaultRefuse(t *testing.T) {
	for _, tr := range transports() {
		if !tr.own {
			continue
		}
		t.Run(tr.name, func(t *testing.T) {
			r := tr.start(t)
			c := r.e.dial(t, 2*time.Second)
			checkIA(t, c, "before the fault")
			r.relay.SetFault(Fault{Refuse: true})
			if _, err := readIA(c); !isReset(err) {
				t.Fatalf("read on a connection of a refusing device: %v, want connection reset", err)
			}
			c2, err := modbus.NewClient(r.e.config(t, 2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if err := c2.Open(); !errors.Is(err, syscall.ECONNREFUSED) {
				c2.Close()
				t.Fatalf("open while refusing: %v, want connection refused", err)
			}
			r.relay.SetFault(Fault{})
			checkIA(t, r.e.dial(t, 2*time.Second), "new connection after clearing the fault")
		})
	}
}

// isReset reports the errors a client sees on a connection the server
// reset: ECONNRESET, or EPIPE/EOF when the RST raced its write.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

// TestFaultRefuseBeforeServe: a fault set before Serve is in force from the
// start.
func TestFaultRefuseBeforeServe(t *testing.T) {
	d := newTestDevice(t, "R", 2, simtest.SEL751A())
	u, _ := NewUnits(d)
	e, err := ListenTCP("127.0.0.1:0", u, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.SetFault(Fault{Refuse: true})
	serve(t, e)
	_, addr, _ := strings.Cut(e.URL, "://")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			// Accepted before Serve applied the fault: it must be reset.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, rerr := c.Read(make([]byte, 1))
			c.Close()
			if !isReset(rerr) {
				t.Fatalf("connection to a refusing port: read %v, want reset", rerr)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("port of a refusing device still accepts: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.SetFault(Fault{})
	c := served{Endpoint: e}.dial(t, 2*time.Second)
	if v, err := readIA(c); err != nil || v != 0 {
		t.Fatalf("read after clearing: %d, %v", v, err)
	}
}

// TestFaultHalfOpen: the own port keeps connections established but stops
// reading them; clearing the fault resets them, and new connections work.
func TestFaultHalfOpen(t *testing.T) {
	for _, tr := range transports() {
		if !tr.own {
			continue
		}
		t.Run(tr.name, func(t *testing.T) {
			r := tr.start(t)
			c := r.e.dial(t, 300*time.Millisecond)
			checkIA(t, c, "before the fault")
			r.relay.SetFault(Fault{HalfOpen: true})
			if _, err := readIA(c); err != modbus.ErrRequestTimedOut {
				t.Fatalf("read on a half-open connection: %v, want %v", err, modbus.ErrRequestTimedOut)
			}
			if tr.tls {
				// The raw checks below speak plain TCP.
				r.relay.SetFault(Fault{})
				checkIA(t, r.e.dial(t, time.Second), "new connection after clearing the fault")
				return
			}
			// A new connection is accepted, established, and never
			// answered: neither EOF nor reset, just silence.
			raw := dialRaw(t, r.e.Endpoint)
			req := []byte{0, 1, 0, 0, 0, 6, 2, 0x03, 0x02, 0x8A, 0x00, 0x01} // MBAP read 650
			if tr.rtu {
				req = RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0x8A, 0x00, 0x01}}.Append(nil)
			}
			if _, err := raw.Write(req); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			for range 2 {
				raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if n, err := raw.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read on a half-open connection: %d bytes, %v; want a timeout on an established connection", n, err)
				}
				if _, err := raw.Write(req); err != nil {
					t.Fatalf("write on a half-open connection: %v", err)
				}
			}
			r.relay.SetFault(Fault{})
			raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := raw.Read(buf); !isReset(err) {
				t.Fatalf("read on a stalled connection after clearing: %d bytes, %v; want reset", n, err)
			}
			checkIA(t, r.e.dial(t, time.Second), "new connection after clearing the fault")
		})
	}
}

// TestFaultBadCRC: RTU answers fail their CRC; Modbus TCP has none and
// answers normally.
func TestFaultBadCRC(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.start(t)
			c := r.e.dial(t, time.Second)
			r.relay.SetFault(Fault{BadCRC: true})
			v, err := readIA(c)
			if !tr.rtu {
				if err != nil || v != 201 {
					t.Fatalf("bad crc over %s: %d, %v; want a normal answer", tr.name, v, err)
				}
				return
			}
			if err != modbus.ErrBadCRC {
				t.Fatalf("read with a bad crc: %d, %v; want %v", v, err, modbus.ErrBadCRC)
			}
			if !tr.own {
				checkMeter(t, c, r)
			}
			r.relay.SetFault(Fault{})
			checkIA(t, c, "after clearing the fault")
		})
	}
}

// TestServeEndsFaultyConnections: Serve returns, with every connection
// goroutine ended, while connections are stalled or waiting out a latency.
func TestServeEndsFaultyConnections(t *testing.T) {
	faults := []struct {
		name string
		f    Fault
	}{
		{"half-open", Fault{HalfOpen: true}},
		{"latency", Fault{Latency: time.Hour}},
		{"silent", Fault{Silent: true}},
	}
	for _, ft := range faults {
		f := ft.f
		for _, tr := range transports() {
			t.Run(ft.name+"/"+tr.name, func(t *testing.T) {
				d := newTestDevice(t, "R", 2, simtest.SEL751A())
				u, _ := NewUnits(d)
				e := tr.open(t, u)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- e.Serve(ctx) }()
				c := e.dial(t, 200*time.Millisecond)
				d.SetFault(f)
				if _, err := readIA(c); err != modbus.ErrRequestTimedOut {
					t.Fatalf("read with %+v: %v, want a timeout", f, err)
				}
				if tr.pty {
					// The PTY's slave must close before its master, or
					// the client's serial library complains on stderr.
					c.Close()
				}
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("Serve did not return with a connection under %+v", f)
				}
			})
		}
	}
}

func TestFaultAPI(t *testing.T) {
	d := newTestDevice(t, "R1", 2, simtest.SEL751A())
	if f := d.Fault(); !f.IsZero() {
		t.Fatalf("new device has fault %+v", f)
	}
	exc := map[string]byte{"ia": 6}
	d.SetFault(Fault{Latency: time.Second, Exceptions: exc})
	exc["van"] = 2 // SetFault copied the map
	got := d.Fault()
	if got.Latency != time.Second || len(got.Exceptions) != 1 || got.Exceptions["ia"] != 6 {
		t.Fatalf("Fault() = %+v", got)
	}
	got.Exceptions["ib"] = 6 // Fault returned a copy
	if len(d.Fault().Exceptions) != 1 {
		t.Fatalf("Fault() shares its map")
	}
	d.UpdateFault(func(f *Fault) {
		f.Exceptions["ib"] = 3
		f.Silent = true
	})
	if got := d.Fault(); !got.Silent || got.Latency != time.Second || len(got.Exceptions) != 2 || got.Exceptions["ib"] != 3 {
		t.Fatalf("Fault() after UpdateFault = %+v", got)
	}
	d.SetFault(Fault{Exceptions: map[string]byte{}})
	if d.fault.Load() != nil {
		t.Fatal("an empty fault is installed; want none")
	}

	checks := []struct {
		f    Fault
		want string
	}{
		{Fault{Silent: true, Exceptions: map[string]byte{"ia": 2, "van": 11}}, ""},
		{Fault{Latency: -time.Second}, "fault on R1: latency -1s is negative"},
		{Fault{Exceptions: map[string]byte{"nope": 2}}, `fault on R1: exception on "nope": device (profile sel751a) has no such point`},
		{Fault{Exceptions: map[string]byte{"ia": 7, "ib": 0}}, "fault on R1: exception on \"ia\": 7 is not a Modbus exception code (1-6, 8, 10, 11)\n" +
			"fault on R1: exception on \"ib\": 0 is not a Modbus exception code (1-6, 8, 10, 11)"},
	}
	for _, tc := range checks {
		err := d.CheckFault(tc.f)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("CheckFault(%+v) = %v, want %q", tc.f, err, tc.want)
		}
	}
	// What CheckFault rejects, SetFault ignores.
	d.SetFault(Fault{Exceptions: map[string]byte{"nope": 2, "ia": 7, "ib": 6}})
	u, _ := NewUnits(d)
	for _, tc := range []struct{ req, want string }{
		{"03 028A 0001", "03 02 0000"}, // ia: code 7 ignored
		{"03 028B 0001", "83 06"},      // ib
		{"03 0284 0008", "83 06"},      // 644..651 covers ib
	} {
		if got := u.AppendResponse(nil, 2, unhex(t, tc.req)); !bytesEqualHex(t, got, tc.want) {
			t.Errorf("%s: % X, want %s", tc.req, got, tc.want)
		}
	}
}

func bytesEqualHex(t *testing.T, b []byte, want string) bool {
	t.Helper()
	w := unhex(t, want)
	return string(b) == string(w)
}

func BenchmarkAppendResponseFaulty(b *testing.B) {
	d := newTestDevice(b, "M", 1, simtest.PM5100())
	d.SetFault(Fault{Exceptions: map[string]byte{"energy": 6, "freq": 6}})
	u, _ := NewUnits(d)
	req := []byte{3, 0x0B, 0xB7, 0, 0x26}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = u.AppendResponse(out[:0], 1, req)
	}
}

// TestFaultRefuseKeepsPort: while a device's own port refuses connections,
// no other program can listen on it, and after the fault it listens again
// on the same port, several times over.
func TestFaultRefuseKeepsPort(t *testing.T) {
	d := newTestDevice(t, "R", 2, simtest.SEL751A())
	u, _ := NewUnits(d)
	e, err := ListenTCP("127.0.0.1:0", u, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	_, addr, _ := strings.Cut(e.URL, "://")
	// One answered request: Serve watches the device's faults from now on.
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: e.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); errors.Is(err, modbus.ErrRequestTimedOut) {
		t.Fatal(err)
	}
	c.Close()
	for round := range 3 {
		d.SetFault(Fault{Refuse: true})
		if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("round %d: dial while refusing: %v, want connection refused", round, err)
		}
		if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
			if ln != nil {
				ln.Close()
			}
			t.Fatalf("round %d: another listener on the refusing port: %v, want address in use", round, err)
		}
		d.SetFault(Fault{})
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("round %d: dial after the fault: %v", round, err)
		}
		c.Close()
	}
}
