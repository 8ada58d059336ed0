package devsrv

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/sim/simtest"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"01 03 00 00 00 0A", 0xCDC5},                     // travels as C5 CD
		{"01 03 00 00 00 01", 0x0A84},                     // travels as 84 0A
		{"11 03 00 6B 00 03", 0x8776},                     // the spec's example: 76 87
		{hex.EncodeToString([]byte("123456789")), 0x4B37}, // CRC-16/MODBUS check value
		{"", 0xFFFF},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := CRC16(unhex(t, tt.in)); got != tt.want {
				t.Fatalf("CRC16(%s) = %04X, want %04X", tt.in, got, tt.want)
			}
		})
	}
}

func TestRTUFrameAppend(t *testing.T) {
	got := RTUFrame{Unit: 1, PDU: unhex(t, "03 00 00 00 0A")}.Append([]byte{0xEE})
	want := unhex(t, "EE 01 03 00 00 00 0A C5 CD")
	if !bytes.Equal(got, want) {
		t.Fatalf("Append = % X, want % X", got, want)
	}
}

func TestParseRTURequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		unit    uint8
		pdu     string
		n       int
		wantErr error
	}{
		{"read holding", "01 03 00 00 00 0A C5 CD", 1, "03 00 00 00 0A", 8, nil},
		{"read holding then more", "01 03 00 00 00 0A C5 CD 02 03", 1, "03 00 00 00 0A", 8, nil},
		{"spec example", "11 03 00 6B 00 03 76 87", 0x11, "03 00 6B 00 03", 8, nil},
		{"write multiple registers", "01 10 00 01 00 02 04 00 0A 01 02 92 30", 1, "10 00 01 00 02 04 00 0A 01 02", 13, nil},
		{"empty", "", 0, "", 0, ErrIncomplete},
		{"unit only", "01", 0, "", 0, ErrIncomplete},
		{"truncated read", "01 03 00 00 00 0A C5", 0, "", 0, ErrIncomplete},
		{"truncated write header", "01 10 00 01 00 02", 0, "", 0, ErrIncomplete},
		{"truncated write data", "01 10 00 01 00 02 04 00 0A", 0, "", 0, ErrIncomplete},
		{"bad crc", "01 03 00 00 00 0A C5 CE", 0, "", 0, ErrBadCRC},
		{"unknown function", "01 2B 0E 01 00 70 77", 0, "", 0, ErrUnknownLength},
		{"byte count too long", "01 10 00 00 00 7F FE", 0, "", 0, ErrFrameTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.in)
			f, n, err := ParseRTURequest(in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if f.Unit != tt.unit || !bytes.Equal(f.PDU, unhex(t, tt.pdu)) || n != tt.n {
				t.Fatalf("got unit %d pdu % X n %d, want unit %d pdu %s n %d", f.Unit, f.PDU, n, tt.unit, tt.pdu, tt.n)
			}
			if re := f.Append(nil); !bytes.Equal(re, in[:n]) {
				t.Fatalf("re-encoded % X, want % X", re, in[:n])
			}
		})
	}
}

// FuzzParseRTURequest: the parser never panics, and whatever it accepts
// has a valid CRC and re-encodes to exactly the bytes it took. Run longer
// with: go test -run='^$' -fuzz=FuzzParseRTURequest -fuzztime=10s ./internal/sim
// (the seed corpus in testdata/fuzz/FuzzParseRTURequest runs with every
// go test).
func FuzzParseRTURequest(f *testing.F) {
	u, err := NewUnits(newTestDevice(f, "FZ", 1, simtest.FeederRTU()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := ParseRTURequest(b)
		if err != nil {
			if n != 0 || fr.PDU != nil {
				t.Fatalf("error %v with n %d and pdu % X", err, n, fr.PDU)
			}
			return
		}
		if n < 4 || n > len(b) || n > maxRTUFrame {
			t.Fatalf("accepted n = %d of %d bytes", n, len(b))
		}
		if crc := CRC16(b[:n-2]); crc != uint16(b[n-2])|uint16(b[n-1])<<8 {
			t.Fatalf("accepted % X with bad crc (want %04X)", b[:n], crc)
		}
		if re := fr.Append(nil); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoded % X, want % X", re, b[:n])
		}
		// Whatever parses must also be answerable without panicking, with
		// a response that fits an RTU frame.
		if res := u.AppendResponse(nil, fr.Unit, fr.PDU); len(res)+3 > maxRTUFrame {
			t.Fatalf("response of %d bytes to % X", len(res), b[:n])
		}
	})
}

func BenchmarkCRC16(b *testing.B) {
	frame := bytes.Repeat([]byte{0x5A}, 254)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		CRC16(frame)
	}
}

func BenchmarkParseRTURequest(b *testing.B) {
	frame := RTUFrame{Unit: 1, PDU: []byte{3, 0x0B, 0xB7, 0, 0x7D}}.Append(nil)
	for b.Loop() {
		if _, _, err := ParseRTURequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// TestServeRTUPipe drives ServeRTU over an in-memory connection.
func TestServeRTUPipe(t *testing.T) {
	f := newFleet(t)
	simtest.MustSet(t, f.relay, map[string]float64{"van": 7210})
	srv, cli := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeRTU(context.Background(), srv, f.units(t), RTUOptions{}) }()

	readVAN := RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0xA2, 0x00, 0x01}}.Append(nil)
	wantVAN := RTUFrame{Unit: 2, PDU: []byte{0x03, 0x02, 0x1C, 0x2A}}.Append(nil)
	exchange := func(req []byte, want []byte) {
		t.Helper()
		if _, err := cli.Write(req); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		got := make([]byte, 64)
		n, err := io.ReadAtLeast(cli, got, max(len(want), 1))
		if want == nil {
			if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got % X (%v), want no answer", got[:n], err)
			}
			return
		}
		if err != nil || !bytes.Equal(got[:n], want) {
			t.Fatalf("got % X (%v), want % X", got[:n], err, want)
		}
	}
	// 300 bytes of a function without a known length: dropped at 256.
	garbage := append([]byte{0x02, 0x2B}, bytes.Repeat([]byte{0x55}, 298)...)
	exchange(garbage, nil)
	exchange(readVAN, wantVAN)
	exchange(RTUFrame{Unit: 0, PDU: []byte{0x03, 0x02, 0xA2, 0x00, 0x01}}.Append(nil), nil) // broadcast read: ignored
	exchange(readVAN, wantVAN)

	cli.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeRTU after the client closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeRTU did not return after the client closed")
	}
}

func TestNewUnitsErrors(t *testing.T) {
	a := newTestDevice(t, "A", 1, simtest.SEL751A())
	b := newTestDevice(t, "B", 1, simtest.SEL751A())
	z := newTestDevice(t, "Z", 0, simtest.SEL751A())
	h := newTestDevice(t, "H", 248, simtest.SEL751A())
	tests := []struct {
		devs []*Device
		want string
	}{
		{[]*Device{a, b}, "serve B: unit 1 is already A"},
		{[]*Device{z}, "serve Z: unit 0 is outside 1..247"},
		{[]*Device{h}, "serve H: unit 248 is outside 1..247"},
	}
	for _, tt := range tests {
		if _, err := NewUnits(tt.devs...); err == nil || err.Error() != tt.want {
			t.Errorf("NewUnits: %v, want %q", err, tt.want)
		}
	}
}
