package devsrv

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/goburrow/serial"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/sim/simtest"
	"github.com/feederd/feederd/internal/testenv"
)

var line8N1 = SerialConfig{Baud: 19200, DataBits: 8, Parity: "N", StopBits: 1}

// serialBus serves f on one end of a socat PTY pair and returns the other.
func serialBus(t *testing.T, f fleet) string {
	t.Helper()
	a, b := testenv.PTYPair(t)
	sc := line8N1
	sc.Path = a
	e, err := OpenSerialBus(sc, f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.URL != "rtu://"+a {
		t.Fatalf("URL = %s, want rtu://%s", e.URL, a)
	}
	serve(t, e)
	return b
}

func TestSerialRTUClient(t *testing.T) {
	f := newFleet(t)
	b := serialBus(t, f)
	c := simtest.Client(t, "rtu://"+b)
	checkClientReads(t, c, f)
	if err := c.SetUnitId(9); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(650, 1, modbus.HOLDING_REGISTER); err != modbus.ErrRequestTimedOut {
		t.Fatalf("read from unit 9: %v, want %v (no answer on a bus)", err, modbus.ErrRequestTimedOut)
	}
}

func TestSerialRTUMBPoll(t *testing.T) {
	f := newFleet(t)
	b := serialBus(t, f)
	checkMBPoll(t, []string{"-m", "rtu", "-b", "19200", "-P", "none", "-d", "8", "-s", "1"}, b, f)
}

// rawPort opens the client end of the PTY to write frames by hand.
func rawPort(t *testing.T, path string) serial.Port {
	t.Helper()
	sc := line8N1
	sc.Path = path
	p, err := OpenSerial(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readFor collects what arrives within d.
func readFor(t *testing.T, p serial.Port, d time.Duration) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 512)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			t.Fatalf("read: %v", err)
		}
	}
	return got
}

// readFrame waits up to 2 s for a response of want's length.
func readFrame(t *testing.T, p serial.Port, n int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 512)
	for end := time.Now().Add(2 * time.Second); len(got) < n && time.Now().Before(end); {
		k, err := p.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			t.Fatalf("read: %v", err)
		}
	}
	return got
}

func TestSerialRTUFraming(t *testing.T) {
	f := newFleet(t)
	simtest.MustSet(t, f.relay, map[string]float64{"van": 7210, "vbn": 7190})
	simtest.MustSet(t, f.recloser, map[string]float64{"setpoint": 0})
	p := rawPort(t, serialBus(t, f))

	readVAN := RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0xA2, 0x00, 0x01}}.Append(nil) // 674, 1 register
	wantVAN := RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0x1C, 0x2A}}.Append(nil)       // 7210
	badCRC := bytes.Clone(readVAN)
	badCRC[len(badCRC)-1] ^= 0xFF

	tests := []struct {
		name  string
		write [][]byte // written one after another, 100 ms apart
		want  []byte   // nil: nothing may come back
	}{
		{"good frame", [][]byte{readVAN}, wantVAN},
		{"bad crc gets no answer", [][]byte{badCRC}, nil},
		{"good frame after a bad crc", [][]byte{readVAN}, wantVAN},
		{"unknown unit gets no answer", [][]byte{RTUFrame{Unit: 9, PDU: []byte{0x03, 0x02, 0xA2, 0x00, 0x01}}.Append(nil)}, nil},
		{"truncated frame then a good one", [][]byte{readVAN[:5], readVAN}, wantVAN},
		{"two frames in one write", [][]byte{append(bytes.Clone(readVAN), readVAN...)}, append(bytes.Clone(wantVAN), wantVAN...)},
		{"frame split in two writes", [][]byte{readVAN[:3], readVAN[3:]}, nil}, // the pause between writes is a frame gap
		{"exception", [][]byte{RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0x80, 0x00, 0x01}}.Append(nil)}, RTUFrame{Unit: 2, PDU: []byte{0x83, 0x02}}.Append(nil)},
		{"unknown function framed by silence", [][]byte{RTUFrame{Unit: 2, PDU: []byte{0x2B, 0x0E, 0x01, 0x00}}.Append(nil)}, RTUFrame{Unit: 2, PDU: []byte{0xAB, 0x01}}.Append(nil)},
		{"broadcast write gets no answer", [][]byte{RTUFrame{Unit: 0, PDU: []byte{0x06, 0x00, 0x6E, 0x00, 0x07}}.Append(nil)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, w := range tt.write {
				if i > 0 {
					time.Sleep(100 * time.Millisecond)
				}
				if _, err := p.Write(w); err != nil {
					t.Fatal(err)
				}
			}
			var got []byte
			if tt.want == nil {
				got = readFor(t, p, 300*time.Millisecond)
			} else {
				got = readFrame(t, p, len(tt.want))
				got = append(got, readFor(t, p, 50*time.Millisecond)...)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got % X, want % X", got, tt.want)
			}
		})
	}
	if got := simtest.Value(t, f.recloser, "setpoint"); math.Abs(got-0.7) > 1e-12 {
		t.Fatalf("setpoint = %v after the broadcast of 7 ×0.1, want 0.7", got)
	}
}

func TestSerialConfig(t *testing.T) {
	tests := []struct {
		sc      SerialConfig
		silence time.Duration
		err     string
	}{
		{SerialConfig{Path: "/dev/x", Baud: 9600, DataBits: 8, Parity: "N", StopBits: 1}, 3645833 * time.Nanosecond, ""}, // 3.5 × 10 bits
		{SerialConfig{Path: "/dev/x", Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}, 4010416 * time.Nanosecond, ""}, // 3.5 × 11 bits
		{SerialConfig{Path: "/dev/x", Baud: 19200, DataBits: 8, Parity: "N", StopBits: 1}, 2 * time.Millisecond, ""},     // 1.82 ms, floor 2 ms
		{SerialConfig{Path: "/dev/x", Baud: 115200, DataBits: 8, Parity: "N", StopBits: 1}, 2 * time.Millisecond, ""},    // 1.75 ms, floor 2 ms
		{SerialConfig{Path: "/dev/x", Baud: 1200, DataBits: 7, Parity: "O", StopBits: 2}, 32083333 * time.Nanosecond, ""},
		{SerialConfig{Baud: 9600, DataBits: 8, Parity: "N", StopBits: 1}, 0, "serial line: no path"},
		{SerialConfig{Path: "/dev/x", Baud: 0, DataBits: 8, Parity: "N", StopBits: 1}, 0, "serial line /dev/x: baud 0 is outside 300..4000000"},
		{SerialConfig{Path: "/dev/x", Baud: 9600, DataBits: 9, Parity: "N", StopBits: 1}, 0, "serial line /dev/x: data bits must be 7 or 8, not 9"},
		{SerialConfig{Path: "/dev/x", Baud: 9600, DataBits: 8, Parity: "", StopBits: 1}, 0, `serial line /dev/x: parity must be N, E or O, not ""`},
		{SerialConfig{Path: "/dev/x", Baud: 9600, DataBits: 8, Parity: "N", StopBits: 0}, 0, "serial line /dev/x: stop bits must be 1 or 2, not 0"},
	}
	for _, tt := range tests {
		err := tt.sc.Validate()
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Validate(%+v) = %v, want %q", tt.sc, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Validate(%+v) = %v", tt.sc, err)
		}
		if got := tt.sc.Silence(); got != tt.silence {
			t.Errorf("Silence(%+v) = %v, want %v", tt.sc, got, tt.silence)
		}
	}
	if _, err := OpenSerial(SerialConfig{Path: t.TempDir() + "/none", Baud: 9600, DataBits: 8, Parity: "N", StopBits: 1}); err == nil {
		t.Fatal("OpenSerial of a missing device succeeded")
	}
}
