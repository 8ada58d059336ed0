package sim

import (
	"context"
	"io"
	"log"
	"math"
	"net"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/testenv"
)

func TestTCPGateway(t *testing.T) {
	f := newFleet(t)
	e, err := ListenTCP(testenv.FreeAddr(t), f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := client(t, e.URL)
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
	mustSet(t, f.relay, map[string]float64{"van": 7210, "pf": 0.95})
	u, err := NewUnits(f.relay)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ListenTCP(testenv.FreeAddr(t), u, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := client(t, e.URL)
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
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1", "nohost:x"} {
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

func TestRTUOverTCP(t *testing.T) {
	f := newFleet(t)
	e, err := ListenRTUOverTCP("127.0.0.1:0", f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	c := client(t, e.URL)
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
		want := value(t, f.meter, p)
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
		if got, want := vals[650+i], value(t, f.relay, p); got != want {
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
	d := newTestDevice(b, "M", 1, pm5100())
	if err := Fill(d, 7200, 1); err != nil {
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
