package poll

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// exceptionServer is a Modbus TCP server that answers every request with
// exception code code, which the client library has no constant for. It
// counts the connections it accepted.
func exceptionServer(t *testing.T, code byte) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				hdr := make([]byte, 7)
				for {
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					pdu := make([]byte, binary.BigEndian.Uint16(hdr[4:6])-1)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					resp := append([]byte{}, hdr...)
					binary.BigEndian.PutUint16(resp[4:6], 3)
					resp = append(resp, pdu[0]|0x80, code)
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String(), conns
}

func TestUnknownExceptionKeepsLink(t *testing.T) {
	for _, code := range []byte{0x07, 0x0C, 0x80, 0xFF} {
		t.Run(fmt.Sprintf("0x%02X", code), func(t *testing.T) {
			url, conns := exceptionServer(t, code)
			pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Uint16}
			dev := testDevice("D", 1, 20*time.Millisecond, pt)
			sink := newCollector()
			reg := prometheus.NewRegistry()
			p, stop := start(t, testModel(testLink("L", url, time.Second, dev)), sink, reg, nil)
			polls := sink.waitFor(t, 0, "5 polls", func(p [][]sample.Sample) bool { return len(p) >= 5 })
			stop()

			want := []pv{{0, 0, sample.Exception, 0}, {sample.NoPoint, 1, sample.Good, sample.DeviceStatus | sample.EndOfPoll}}
			for i, poll := range polls {
				if g := values(poll); !slices.Equal(g, want) {
					t.Errorf("poll %d: got %v, want %v", i, g, want)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("server accepted %d connections, want 1", n)
			}
			if n := value(t, reg, "feederd_reconnects_total", "link", "L"); n != 0 {
				t.Errorf("reconnects = %v, want 0", n)
			}
			n := float64(len(polls))
			if got := value(t, reg, "feederd_requests_total", "function", "read_holding_registers", "result", "exception"); got < n || got > n+1 {
				t.Errorf("requests_total{exception} = %v, want %v..%v", got, n, n+1)
			}
			if got := value(t, reg, "feederd_requests_total", "function", "read_holding_registers", "result", "error"); got != 0 {
				t.Errorf("requests_total{error} = %v, want 0", got)
			}
			st := p.Status()[0]
			wantErr := fmt.Sprintf("read holding registers 10..10 on D: exception code 0x%02X", code)
			if !st.Up || st.ConsecutiveFailures != 0 || st.LastError != wantErr {
				t.Errorf("status = %+v, want up with last error %q", st, wantErr)
			}
		})
	}
}

func TestClassifyByType(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("read holding registers 1..2 on D: %w", err) }
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{nil, answered},
		{wrap(modbus.ErrIllegalDataAddress), refused},
		{wrap(libraryError(fmt.Errorf("unknown exception code (%v)", 7))), refused},
		{wrap(libraryError(fmt.Errorf("unknown exception code (%v)", 200))), refused},
		{wrap(modbus.ErrGWTargetFailedToRespond), unreachable},
		{wrap(modbus.ErrRequestTimedOut), linkFailed},
		{wrap(modbus.ErrBadCRC), linkFailed},
		{wrap(io.EOF), linkFailed},
		{wrap(errors.New("unknown exception code (7)")), linkFailed}, // not from the library: no type
		{wrap(modbus.ErrUnexpectedParameters), rejected},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
