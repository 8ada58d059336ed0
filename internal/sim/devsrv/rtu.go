package devsrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/goburrow/serial"
)

// CRC16 is the Modbus RTU CRC (CRC-16/MODBUS: reflected polynomial 0xA001,
// initial value 0xFFFF). It travels low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// maxRTUFrame is the longest RTU ADU: address, 253 bytes of PDU, CRC.
const maxRTUFrame = 256

// RTUFrame is one RTU ADU without its CRC.
type RTUFrame struct {
	Unit uint8
	// PDU is the function code followed by its data.
	PDU []byte
}

// Append encodes the frame with its CRC onto dst.
func (f RTUFrame) Append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, f.Unit)
	dst = append(dst, f.PDU...)
	crc := CRC16(dst[start:])
	return append(dst, byte(crc), byte(crc>>8))
}

// Errors of ParseRTURequest.
var (
	// ErrIncomplete: more bytes are needed before the frame can be judged.
	ErrIncomplete = errors.New("incomplete rtu frame")
	// ErrUnknownLength: the function code does not say how long the
	// request is; only the inter-frame silence can end it.
	ErrUnknownLength = errors.New("rtu request length unknown for this function code")
	// ErrBadCRC: the bytes do not end in their CRC.
	ErrBadCRC = errors.New("rtu frame has a bad crc")
	// ErrFrameTooLong: the length fields ask for more than 256 bytes.
	ErrFrameTooLong = errors.New("rtu frame longer than 256 bytes")
)

// rtuRequestLen returns the length of the request at the start of b from
// its function code, or ErrIncomplete / ErrUnknownLength / ErrFrameTooLong.
func rtuRequestLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, ErrIncomplete
	}
	switch b[1] {
	case fcReadCoils, fcReadDiscreteInputs, fcReadHoldingRegisters, fcReadInputRegisters,
		fcWriteSingleCoil, fcWriteSingleRegister:
		return 8, nil // unit, function, 4 data bytes, CRC
	case fcWriteMultipleCoils, fcWriteMultipleRegisters:
		if len(b) < 7 {
			return 0, ErrIncomplete
		}
		n := 9 + int(b[6]) // unit, function, address, quantity, byte count, data, CRC
		if n > maxRTUFrame {
			return 0, ErrFrameTooLong
		}
		return n, nil
	}
	return 0, ErrUnknownLength
}

// ParseRTURequest parses the request at the start of b, its length told by
// its function code (codes 1-6, 15, 16), and returns it with the number of
// bytes it took. The frame's PDU aliases b. A nil error guarantees a valid
// CRC and that f.Append(nil) reproduces b[:n].
func ParseRTURequest(b []byte) (f RTUFrame, n int, err error) {
	n, err = rtuRequestLen(b)
	if err != nil {
		return RTUFrame{}, 0, err
	}
	if len(b) < n {
		return RTUFrame{}, 0, ErrIncomplete
	}
	return parseRTUWhole(b[:n])
}

// parseRTUWhole takes all of b as one frame, as a receiver does when the
// line falls silent.
func parseRTUWhole(b []byte) (RTUFrame, int, error) {
	n := len(b)
	if n < 4 {
		return RTUFrame{}, 0, ErrIncomplete
	}
	if n > maxRTUFrame {
		return RTUFrame{}, 0, ErrFrameTooLong
	}
	if CRC16(b[:n-2]) != uint16(b[n-2])|uint16(b[n-1])<<8 {
		return RTUFrame{}, 0, ErrBadCRC
	}
	return RTUFrame{Unit: b[0], PDU: b[1 : n-2]}, n, nil
}

// RTUOptions tune an RTU server.
type RTUOptions struct {
	// Silence is the inter-frame gap (t3.5) that ends a frame; see
	// SerialConfig.Silence. Zero means 2 ms.
	Silence time.Duration
	Logger  *slog.Logger
}

func (o RTUOptions) withDefaults() RTUOptions {
	if o.Silence <= 0 {
		o.Silence = minSilence
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ServeRTU answers RTU requests read from rw for the units in u until ctx is
// done or rw fails; a closed link (EOF) ends it without error.
//
// Framing, robust on PTYs and TCP where baud timing is meaningless: bytes
// accumulate; a request whose length its function code tells is taken as
// soon as it is complete and its CRC checks. A silence (a read that blocked
// at least o.Silence) ends any partial frame: if the pending bytes carry a
// valid CRC they are one frame (an unknown function gets "illegal
// function"), otherwise they are dropped. After a bad CRC everything is
// dropped until the line has been silent, so a receiver that lost step
// resynchronises on the next frame. Requests for units not in u, and
// requests that fail their CRC, get no answer, as on an RS-485 bus;
// broadcasts (unit 0) of writes are executed on every unit without answer.
//
// Faults, per addressed unit: Silent, Refuse and HalfOpen get no answer;
// Latency delays the answer (and everything behind it, as on a real bus);
// Exceptions answer with the injected code; BadCRC corrupts the answer's
// CRC.
//
// If rw has read deadlines (a net.Conn, a PTY master), ServeRTU sets them
// itself and wakes up when ctx is done; otherwise its reads must return now
// and then for ctx to be noticed: a serial port opened with a Timeout
// (OpenSerial).
func ServeRTU(ctx context.Context, rw io.ReadWriter, u *Units, o RTUOptions) error {
	return serveRTU(ctx, rw, u, o, nil)
}

// deadliner is what ServeRTU needs of a link to time its reads.
type deadliner interface{ SetReadDeadline(time.Time) error }

// serveRTU is ServeRTU; port is the TCP server when rw is one of its
// connections (RTU over TCP): it adds the idle timeout and the own port's
// Refuse and HalfOpen.
func serveRTU(ctx context.Context, rw io.ReadWriter, u *Units, o RTUOptions, port *tcpServer) error {
	o = o.withDefaults()
	s := rtuServer{u: u, o: o, w: rw, port: port}
	dl, _ := rw.(deadliner)
	if dl != nil && errors.Is(dl.SetReadDeadline(time.Time{}), os.ErrNoDeadline) {
		dl = nil // a file the runtime cannot poll
	}
	if dl != nil {
		// Wake a blocked read when ctx ends. The loop checks ctx after
		// each deadline it sets, so it cannot overwrite this one unseen.
		stop := context.AfterFunc(ctx, func() { _ = dl.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	buf := make([]byte, 0, 2*maxRTUFrame)
	chunk := make([]byte, maxRTUFrame)
	resync := false
	for ctx.Err() == nil {
		if dl != nil {
			// A pending partial frame needs to see the silence that ends
			// it; an idle link waits for the next request (or for the idle
			// timeout on TCP).
			var d time.Time
			switch {
			case len(buf) > 0 || resync:
				d = time.Now().Add(2 * o.Silence)
			case port != nil:
				d = time.Now().Add(port.o.IdleTimeout)
			}
			if err := dl.SetReadDeadline(d); err != nil {
				if isClosed(err) {
					return nil
				}
				return fmt.Errorf("set rtu read deadline: %w", err)
			}
			if ctx.Err() != nil {
				break
			}
		}
		start := time.Now()
		n, err := rw.Read(chunk)
		// A read that blocked that long saw the line silent; one that
		// returned at once may just mean we were slow to ask, so it ends
		// nothing.
		silent := time.Since(start) >= o.Silence
		if silent {
			if len(buf) > 0 {
				if err := s.frameEnded(ctx, buf); err != nil {
					return closedOK(err)
				}
				buf = buf[:0]
			}
			resync = false
		}
		if n > 0 && !resync {
			buf = append(buf, chunk[:n]...)
			var werr error
			if buf, resync, werr = s.drain(ctx, buf); werr != nil {
				return closedOK(werr)
			}
		}
		if err != nil {
			if isTimeout(err) {
				if port != nil && n == 0 && len(buf) == 0 && !resync && silent && ctx.Err() == nil && time.Since(start) >= port.o.IdleTimeout {
					return nil // idle connection
				}
				continue
			}
			if isClosed(err) {
				return nil
			}
			return fmt.Errorf("read rtu request: %w", err)
		}
	}
	return nil
}

type rtuServer struct {
	u     *Units
	o     RTUOptions
	w     io.Writer
	port  *tcpServer // nil on a serial line
	out   []byte
	frame []byte
}

// drain answers every complete request at the front of buf. It reports
// resync when buf held garbage and was dropped.
func (s *rtuServer) drain(ctx context.Context, buf []byte) ([]byte, bool, error) {
	for len(buf) > 0 {
		f, n, err := ParseRTURequest(buf)
		switch {
		case err == nil:
			if werr := s.answer(ctx, f); werr != nil {
				return buf[:0], false, werr
			}
			buf = buf[:copy(buf, buf[n:])]
			continue
		case errors.Is(err, ErrIncomplete), errors.Is(err, ErrUnknownLength):
			if len(buf) > maxRTUFrame {
				s.o.Logger.Debug("dropped rtu bytes", "bytes", len(buf), "reason", "no frame in 256 bytes")
				return buf[:0], true, nil
			}
			return buf, false, nil
		default:
			s.o.Logger.Debug("dropped rtu bytes", "bytes", len(buf), "reason", err.Error())
			return buf[:0], true, nil
		}
	}
	return buf, false, nil
}

// frameEnded handles what was pending when the line went silent.
func (s *rtuServer) frameEnded(ctx context.Context, buf []byte) error {
	f, _, err := parseRTUWhole(buf)
	if err != nil {
		s.o.Logger.Debug("dropped rtu bytes", "bytes", len(buf), "reason", err.Error())
		return nil
	}
	return s.answer(ctx, f)
}

// mute reports a fault that keeps a unit from answering on a bus.
func mute(st *faultState) bool {
	return st != nil && (st.Silent || st.Refuse || st.HalfOpen)
}

func (s *rtuServer) answer(ctx context.Context, f RTUFrame) error {
	if len(f.PDU) == 0 {
		return nil
	}
	if f.Unit == 0 {
		if isWrite(f.PDU[0]) {
			for _, d := range s.u.Devices() {
				if !mute(d.fault.Load()) {
					s.out = s.u.AppendResponse(s.out[:0], d.Unit, f.PDU)
				}
			}
		}
		return nil
	}
	if s.u.Device(f.Unit) == nil {
		return nil
	}
	var st *faultState
	if s.port != nil {
		st = s.port.portFault(f.Unit)
		switch s.port.verdict(st) {
		case verdictStall:
			s.port.stallConn(ctx)
			reset(s.w.(net.Conn))
			return errHungUp
		case verdictHangUp:
			reset(s.w.(net.Conn))
			return errHungUp
		}
	} else {
		st = s.u.Device(f.Unit).fault.Load()
	}
	if mute(st) {
		return nil
	}
	if st != nil && st.Latency > 0 && !sleepCtx(ctx, st.Latency) {
		return nil
	}
	s.out = s.u.AppendResponse(s.out[:0], f.Unit, f.PDU)
	s.frame = RTUFrame{Unit: f.Unit, PDU: s.out}.Append(s.frame[:0])
	if st != nil && st.BadCRC {
		s.frame[len(s.frame)-1] ^= 0xFF
	}
	if _, err := s.w.Write(s.frame); err != nil {
		return fmt.Errorf("write rtu response to unit %d: %w", f.Unit, err)
	}
	return nil
}

// isClosed reports the errors of a link that the other side (or our owner)
// closed: the end of serving, not a failure.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

func isTimeout(err error) bool {
	if errors.Is(err, serial.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
