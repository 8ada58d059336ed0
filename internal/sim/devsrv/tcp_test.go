package devsrv

import (
	"bytes"
	"context"
	"io"
	"log"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/sim/simtest"
	"github.com/feederd/feederd/internal/testenv"
)

func TestTCPGateway(t *testing.T) {
	f := newFleet(t)
	e, err := ListenTCP(testenv.FreeAddr(t), f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := simtest.Client(t, e.URL)
	checkClientReads(t, c, f)

	if err := c.SetUnitId(9); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(650, 1, modbus.HOLDING_REGISTER); err != modbus.ErrGWTargetFailedToRespond {
		t.Fatalf("read from unit 9: %v, want %v", err, modbus.ErrGWTargetFailedToRespond)
	}
}

func TestTCPPortPerDevice(t *testing.T) {
	f := newFleet(t)
	simtest.MustSet(t, f.relay, map[string]float64{"van": 7210, "pf": 0.95})
	u, err := NewUnits(f.relay)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ListenTCP(testenv.FreeAddr(t), u, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := simtest.Client(t, e.URL)
	if err := c.SetUnitId(2); err != nil {
		t.Fatal(err)
	}
	regs, err := c.ReadRegisters(674, 1, modbus.HOLDING_REGISTER)
	if err != nil || regs[0] != 7210 {
		t.Fatalf("van = %v (%v), want [7210]", regs, err)
	}
	pf, err := c.ReadRegister(688, modbus.HOLDING_REGISTER)
	if err != nil || pf != 95 {
		t.Fatalf("pf register = %v (%v), want 95", pf, err)
	}
	if err := c.SetUnitId(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegister(674, modbus.HOLDING_REGISTER); err != modbus.ErrGWTargetFailedToRespond {
		t.Fatalf("read from unit 1 on the relay's port: %v, want %v", err, modbus.ErrGWTargetFailedToRespond)
	}
}

func TestListenTCPErrors(t *testing.T) {
	u, _ := NewUnits()
	for _, addr := range []string{"127.0.0.1", "nohost:x"} {
		if _, err := ListenTCP(addr, u, ServerOptions{}); err == nil {
			t.Errorf("ListenTCP(%q) succeeded", addr)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ListenTCP(ln.Addr().String(), u, ServerOptions{}); err == nil {
		t.Errorf("ListenTCP on a busy port succeeded")
	}
}

// TestListenTCPPortZero: port 0 binds a free port and the URL tells which.
func TestListenTCPPortZero(t *testing.T) {
	f := newFleet(t)
	e, err := ListenTCP("127.0.0.1:0", f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "tcp://127.0.0.1:") || strings.HasSuffix(e.URL, ":0") {
		t.Fatalf("URL = %s, want tcp://127.0.0.1:<port>", e.URL)
	}
	serve(t, e)
	checkClientReads(t, simtest.Client(t, e.URL), f)
}

// TestMBAPFraming drives the Modbus TCP server with raw frames: the
// transaction ID is echoed, pipelined requests are answered in order, a
// foreign protocol ID is ignored, and a bad length ends the connection.
func TestMBAPFraming(t *testing.T) {
	f := newFleet(t)
	simtest.MustSet(t, f.relay, map[string]float64{"van": 7210})
	e, err := ListenTCP("127.0.0.1:0", f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := dialRaw(t, e)
	readVAN := func(txn uint16, proto uint16) []byte {
		return []byte{byte(txn >> 8), byte(txn), byte(proto >> 8), byte(proto), 0, 6, 2, 0x03, 0x02, 0xA2, 0x00, 0x01}
	}
	wantVAN := func(txn uint16) []byte {
		return []byte{byte(txn >> 8), byte(txn), 0, 0, 0, 5, 2, 0x03, 0x02, 0x1C, 0x2A}
	}
	var reqs []byte
	reqs = append(reqs, readVAN(0x1234, 0)...)
	reqs = append(reqs, readVAN(0x0001, 7)...) // not Modbus: no answer
	reqs = append(reqs, readVAN(0xBEEF, 0)...)
	if _, err := c.Write(reqs); err != nil {
		t.Fatal(err)
	}
	want := append(wantVAN(0x1234), wantVAN(0xBEEF)...)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got % X (%v), want % X", got, err, want)
	}
	if _, err := c.Write([]byte{0, 1, 0, 0, 0, 0, 2}); err != nil { // length 0
		t.Fatal(err)
	}
	if n, err := c.Read(got); err != io.EOF {
		t.Fatalf("after a bad length: read %d bytes, %v; want EOF", n, err)
	}
}

// dialRaw opens a plain TCP connection to a tcp:// or rtuovertcp://
// endpoint.
func dialRaw(t *testing.T, e *Endpoint) net.Conn {
	t.Helper()
	_, addr, _ := strings.Cut(e.URL, "://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRTUOverTCP(t *testing.T) {
	f := newFleet(t)
	e, err := ListenRTUOverTCP("127.0.0.1:0", f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := simtest.Client(t, e.URL)
	checkClientReads(t, c, f)

	// An unknown unit gets no answer on an RTU link, even over TCP.
	if err := c.SetUnitId(9); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(650, 1, modbus.HOLDING_REGISTER); err != modbus.ErrRequestTimedOut {
		t.Fatalf("read from unit 9: %v, want %v", err, modbus.ErrRequestTimedOut)
	}
}

// TestMBPollTCP: an independent master (libmodbus' mbpoll) reads the values
// the sim reports.
func TestMBPollTCP(t *testing.T) {
	f := newFleet(t)
	addr := testenv.FreeAddr(t)
	e, err := ListenTCP(addr, f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	_, port, _ := net.SplitHostPort(addr)
	checkMBPoll(t, []string{"-m", "tcp", "-p", port}, "127.0.0.1", f)
}

// checkMBPoll reads the meter's float32 voltages and the relay's int16
// currents with mbpoll and compares them with the devices' values.
func checkMBPoll(t *testing.T, mode []string, target string, f fleet) {
	t.Helper()
	args := func(extra ...string) []string {
		return append(append(append([]string{}, mode...), extra...), target)
	}
	out, err := testenv.MBPoll(t, args("-a", "1", "-0", "-r", "3027", "-c", "3", "-t", "4:float", "-B", "-1")...)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := testenv.ParseMBPollFloats(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"van", "vbn", "vcn"} {
		ref := 3027 + 2*i
		got, ok := vals[ref]
		want := simtest.Value(t, f.meter, p)
		// mbpoll prints floats with 6 significant digits.
		if !ok || math.Abs(got-want) > 5e-6*math.Abs(want) {
			t.Errorf("mbpoll [%d] %s = %v (present %v), device holds %v\n%s", ref, p, got, ok, want, out)
		}
	}
	if len(vals) != 3 {
		t.Errorf("mbpoll printed %d values, want 3\n%s", len(vals), out)
	}

	out, err = testenv.MBPoll(t, args("-a", "2", "-0", "-r", "650", "-c", "3", "-t", "4", "-1")...)
	if err != nil {
		t.Fatal(err)
	}
	vals, err = testenv.ParseMBPollFloats(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"ia", "ib", "ic"} {
		if got, want := vals[650+i], simtest.Value(t, f.relay, p); got != want {
			t.Errorf("mbpoll [%d] %s = %v, device holds %v\n%s", 650+i, p, got, want, out)
		}
	}
	if vals[650] != -12 {
		t.Errorf("mbpoll [650] = %v, want -12", vals[650])
	}

	out, err = testenv.MBPoll(t, args("-a", "3", "-0", "-r", "688", "-c", "1", "-t", "4", "-1")...)
	if err == nil {
		t.Fatalf("mbpoll read from a unit without holding register 688 succeeded:\n%s", out)
	}
}

// benchmarkRead measures one Modbus read of the meter's 38 registers
// (currents to V L-N average) through a real client and server.
func benchmarkRead(b *testing.B, listen func(string, *Units, ServerOptions) (*Endpoint, error), addr string) {
	d := newTestDevice(b, "M", 1, simtest.PM5100())
	if err := fill(d); err != nil {
		b.Fatal(err)
	}
	u, err := NewUnits(d)
	if err != nil {
		b.Fatal(err)
	}
	e, err := listen(addr, u, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: e.URL, Speed: 115200, Timeout: time.Second, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Open(); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadRegisters(2999, 38, modbus.HOLDING_REGISTER); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadTCP(b *testing.B) { benchmarkRead(b, ListenTCP, testenv.FreeAddr(b)) }

func BenchmarkReadRTUOverTCP(b *testing.B) { benchmarkRead(b, ListenRTUOverTCP, "127.0.0.1:0") }
