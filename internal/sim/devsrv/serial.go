package devsrv

import (
	"fmt"
	"time"

	"github.com/goburrow/serial"
)

// SerialConfig is one serial line; every setting is explicit because the
// library's zero values are not 8N1 (empty parity means even).
type SerialConfig struct {
	Path     string // /dev/ttyS1, or a socat PTY link
	Baud     int    // 1200..115200 and the other rates termios knows
	DataBits int    // 7 or 8
	Parity   string // "N", "E" or "O"
	StopBits int    // 1 or 2
}

// Validate checks the settings without opening anything.
func (c SerialConfig) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("serial line: no path")
	case c.Baud < 300 || c.Baud > 4000000:
		return fmt.Errorf("serial line %s: baud %d is outside 300..4000000", c.Path, c.Baud)
	case c.DataBits != 7 && c.DataBits != 8:
		return fmt.Errorf("serial line %s: data bits must be 7 or 8, not %d", c.Path, c.DataBits)
	case c.Parity != "N" && c.Parity != "E" && c.Parity != "O":
		return fmt.Errorf("serial line %s: parity must be N, E or O, not %q", c.Path, c.Parity)
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("serial line %s: stop bits must be 1 or 2, not %d", c.Path, c.StopBits)
	}
	return nil
}

// minSilence is the shortest inter-frame gap the server waits for: user
// space cannot time gaps finer than a few scheduler ticks, and PTYs and
// USB adapters deliver bytes in bursts regardless of baud.
const minSilence = 2 * time.Millisecond

// Silence is the inter-frame gap t3.5 for these settings: 3.5 character
// times, fixed at 1.75 ms above 19200 baud as the Modbus serial line
// specification says, and never under 2 ms.
func (c SerialConfig) Silence() time.Duration {
	if c.Baud <= 0 {
		return minSilence
	}
	bits := 1 + c.DataBits + c.StopBits // start, data, stop
	if c.Parity != "N" {
		bits++
	}
	t := time.Duration(35*bits) * time.Second / time.Duration(10*c.Baud)
	if c.Baud > 19200 {
		t = 1750 * time.Microsecond
	}
	return max(t, minSilence)
}

// serialPoll is the serial port's read timeout: how often the RTU server
// looks at its context while the line is idle.
const serialPoll = 50 * time.Millisecond

// OpenSerial opens the line with every setting explicit and a short read
// timeout, as ServeRTU needs.
func OpenSerial(c SerialConfig) (serial.Port, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p, err := serial.Open(&serial.Config{
		Address:  c.Path,
		BaudRate: c.Baud,
		DataBits: c.DataBits,
		Parity:   c.Parity,
		StopBits: c.StopBits,
		Timeout:  serialPoll,
	})
	if err != nil {
		return nil, fmt.Errorf("open serial line %s: %w", c.Path, err)
	}
	return p, nil
}
