package poll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// clientTimeout is the response timeout of a link's client. The library
// takes one timeout per client, fixed when the client is created (it arms
// the socket deadline from it on every request and has no setter), and a
// link has one client, so the link waits as long as its most patient device
// allows: the largest of the link's and its devices' timeouts. A device with
// a shorter timeout than its neighbours therefore gets their longer one.
func clientTimeout(l *config.Link, devs ...*config.Device) time.Duration {
	t := l.Timeout
	for _, d := range devs {
		t = max(t, d.Timeout)
	}
	return t
}

// newClient builds the library client of a link; it neither dials nor opens
// the serial port. The library logs through logger at debug level, never to
// stdout. For tcp+tls:// links it also returns the TLS configuration the
// library will use, for preflight.
func newClient(l *config.Link, timeout time.Duration, logger *slog.Logger) (*modbus.ModbusClient, *tls.Config, error) {
	var tlsConf *tls.Config
	conf := &modbus.ClientConfiguration{
		URL:     l.URL,
		Timeout: timeout,
		Logger:  slog.NewLogLogger(logger.With("lib", "modbus").Handler(), slog.LevelDebug),
	}
	switch l.Scheme {
	case config.SchemeRTU, config.SchemeRTUOverTCP:
		if l.Serial == nil {
			if l.Scheme == config.SchemeRTU {
				return nil, nil, fmt.Errorf("link %s: rtu link without serial settings", l.ID)
			}
			break // rtuovertcp: the library's 19200 baud drives inter-frame timing
		}
		conf.Speed = uint(l.Serial.Baud)
		if l.Scheme == config.SchemeRTU {
			conf.DataBits = uint(l.Serial.DataBits)
			conf.StopBits = uint(l.Serial.StopBits)
			switch l.Serial.Parity {
			case "N":
				conf.Parity = modbus.PARITY_NONE
			case "E":
				conf.Parity = modbus.PARITY_EVEN
			case "O":
				conf.Parity = modbus.PARITY_ODD
			default:
				return nil, nil, fmt.Errorf("link %s: parity %q is not N, E or O", l.ID, l.Serial.Parity)
			}
		}
	case config.SchemeTLS:
		if l.TLS == nil {
			return nil, nil, fmt.Errorf("link %s: tcp+tls link without certificates", l.ID)
		}
		// config.ReadFile: regular files of bounded size, as for every
		// file named in the configuration.
		certPEM, err := config.ReadFile(l.TLS.CertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("link %s: load client certificate %s: %w", l.ID, l.TLS.CertFile, err)
		}
		keyPEM, err := config.ReadFile(l.TLS.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("link %s: load client key %s: %w", l.ID, l.TLS.KeyFile, err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("link %s: load client certificate %s: %w", l.ID, l.TLS.CertFile, err)
		}
		pem, err := config.ReadFile(l.TLS.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("link %s: read CA file: %w", l.ID, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("link %s: CA file %s holds no PEM certificate", l.ID, l.TLS.CAFile)
		}
		conf.TLSClientCert = &cert
		conf.TLSRootCAs = pool
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	case config.SchemeTCP:
	default:
		return nil, nil, fmt.Errorf("link %s: unsupported scheme %q", l.ID, l.Scheme)
	}
	c, err := modbus.NewClient(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("link %s: create client for %s: %w", l.ID, l.URL, err)
	}
	return c, tlsConf, nil
}

// preflight does, within timeout, the part of opening a tcp+tls:// link
// that can hang: the TCP connect and the TLS handshake. The library's own
// Open gives both 15 s whatever the configured timeout, so a silent peer
// would hold the link (and shutdown) that long; it is called only after
// preflight succeeded, when the peer has just shown that it answers. On
// every scheme a link waits for Open at most its timeout (see dial.go): a
// tcp:// or rtuovertcp:// Open, whose dial the library bounds by a fixed
// 5 s, goes on in the background after that and is adopted when it
// connects.
func preflight(ctx context.Context, url string, conf *tls.Config, timeout time.Duration) error {
	if conf == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := strings.TrimPrefix(url, string(config.SchemeTLS)+"://")
	c, err := (&tls.Dialer{Config: conf}).DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("tls connect to %s: no handshake within %s", addr, timeout)
		}
		return fmt.Errorf("tls connect to %s: %w", addr, err)
	}
	return c.Close()
}

// outcome sorts the result of one request.
type outcome uint8

const (
	// answered: the device sent the data.
	answered outcome = iota
	// refused: the device answered with a Modbus exception; the link is fine.
	refused
	// linkFailed: timeout, framing, protocol or network error; the link must
	// be closed and reopened.
	linkFailed
	// rejected: the library refused the request before sending it (a plan
	// the protocol cannot carry); the link is fine.
	rejected
	// unreachable: a gateway answered that the unit behind it did not (a
	// gateway exception, 0x0A or 0x0B); the link is fine, the unit is not.
	unreachable
)

// ExceptionError is a Modbus exception response whose code the library has
// no error constant for: 0x07 (negative acknowledge in older
// specifications) and vendor codes. The device answered; the link is fine.
type ExceptionError struct {
	Code byte
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("exception code 0x%02X", e.Code)
}

// libraryError turns the library's error for an exception code it does
// not know, a plain fmt error, into an *ExceptionError. It is the one place
// that reads the library's error text, and it reads the error as the
// library returned it, before anything wraps it.
func libraryError(err error) error {
	var code int
	if err == nil {
		return nil
	}
	if _, ok := err.(modbus.Error); ok {
		return err
	}
	if n, serr := fmt.Sscanf(err.Error(), "unknown exception code (%d)", &code); serr == nil && n == 1 && code > 0 && code <= 0xFF {
		return &ExceptionError{Code: byte(code)}
	}
	return err
}

// isException reports whether err is a Modbus exception other than a
// gateway's: the device answered, the link is fine.
func isException(err error) bool {
	var ee *ExceptionError
	if errors.As(err, &ee) {
		return true
	}
	var e modbus.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case modbus.ErrIllegalFunction, modbus.ErrIllegalDataAddress, modbus.ErrIllegalDataValue,
		modbus.ErrServerDeviceFailure, modbus.ErrAcknowledge, modbus.ErrServerDeviceBusy,
		modbus.ErrMemoryParityError:
		return true
	}
	return false
}

// classify sorts a read error by its type, wrapped or not. Anything not
// known to leave the link in a good state counts as a link failure, so
// unknown errors lead to a reconnect.
func classify(err error) outcome {
	if err == nil {
		return answered
	}
	if errors.Is(err, modbus.ErrGWPathUnavailable) || errors.Is(err, modbus.ErrGWTargetFailedToRespond) {
		return unreachable
	}
	if isException(err) {
		return refused
	}
	if errors.Is(err, modbus.ErrUnexpectedParameters) || errors.Is(err, modbus.ErrConfigurationError) {
		return rejected
	}
	return linkFailed
}

// requestResults are the result label values of feederd_requests_total.
var requestResults = [...]string{"ok", "exception", "timeout", "error"}

// resultIndex indexes requestResults.
func resultIndex(err error) int {
	switch classify(err) {
	case answered:
		return 0
	case refused:
		return 1
	case unreachable:
		return 2
	}
	if errors.Is(err, modbus.ErrRequestTimedOut) {
		return 2
	}
	return 3
}

// quality is what the points of a request that ended with err are worth.
// A poll turns Timeout into Stale when the point's last good value is too
// old (see link.go).
func quality(err error) sample.Quality {
	switch classify(err) {
	case answered:
		return sample.Good
	case refused:
		return sample.Exception
	case rejected:
		return sample.Invalid
	}
	return sample.Timeout
}

// read runs one request. Bits come back as registers holding 0 or 1, so
// that all tables decode alike; buf is reused for them.
func read(c *modbus.ModbusClient, r *Request, buf []uint16) ([]uint16, []uint16, error) {
	words, buf, err := readRaw(c, r, buf)
	return words, buf, libraryError(err)
}

func readRaw(c *modbus.ModbusClient, r *Request, buf []uint16) ([]uint16, []uint16, error) {
	var bits []bool
	var err error
	switch r.Table {
	case profile.Holding:
		words, err := c.ReadRegisters(r.Start, r.Count, modbus.HOLDING_REGISTER)
		return words, buf, err
	case profile.Input:
		words, err := c.ReadRegisters(r.Start, r.Count, modbus.INPUT_REGISTER)
		return words, buf, err
	case profile.Coil:
		bits, err = c.ReadCoils(r.Start, r.Count)
	case profile.DiscreteInput:
		bits, err = c.ReadDiscreteInputs(r.Start, r.Count)
	default:
		return nil, buf, fmt.Errorf("table %v: %w", r.Table, modbus.ErrUnexpectedParameters)
	}
	if err != nil {
		return nil, buf, err
	}
	buf = buf[:0]
	for _, b := range bits {
		var w uint16
		if b {
			w = 1
		}
		buf = append(buf, w)
	}
	return buf, buf, nil
}

// decode returns the value of the point at offset off of a response. Points
// of the bit tables are 0 or 1 whatever their type. A value that is not a
// finite number, or a point the response does not hold, is Invalid.
func decode(p *profile.Point, words []uint16, off uint16) (float64, sample.Quality) {
	if p.RegType.IsBit() {
		if int(off) >= len(words) {
			return 0, sample.Invalid
		}
		return float64(min(words[off], 1)), sample.Good
	}
	end := int(off) + p.Words()
	if end > len(words) {
		return 0, sample.Invalid
	}
	v := p.Decode(words[off:end])
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, sample.Invalid
	}
	return v, sample.Good
}
