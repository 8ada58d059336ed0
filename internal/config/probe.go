package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProbeSpec describes one device given on the command line of
// `feederd probe` instead of in a file.
type ProbeSpec struct {
	URL         string
	Unit        uint
	ProfilePath string
	Timeout     time.Duration
	// Serial is "baud,data bits,parity,stop bits", e.g. "19200,8,N,1"; used
	// for rtu:// and (baud only) rtuovertcp://.
	Serial                    string
	CertFile, KeyFile, CAFile string
}

// ProbeDevice builds a one-device model from a ProbeSpec. It writes the spec
// as a configuration file in memory and loads it, so the command line gets
// exactly the validation (and the messages) a file would.
func ProbeDevice(spec ProbeSpec) (*Device, error) {
	prof, err := LoadProfile(spec.ProfilePath)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(spec.ProfilePath)
	if err != nil {
		return nil, fmt.Errorf("profile path: %w", err)
	}
	if spec.Timeout <= 0 {
		return nil, fmt.Errorf("timeout %v is not positive", spec.Timeout)
	}
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "profiles: [%s]\n", q(abs))
	fmt.Fprintf(&b, "poll: {interval: %s, timeout: %s}\n", q((2 * spec.Timeout).String()), q(spec.Timeout.String()))
	fmt.Fprintf(&b, "links:\n  - id: probe\n    url: %s\n", q(spec.URL))
	switch {
	case strings.HasPrefix(spec.URL, "rtu://"), strings.HasPrefix(spec.URL, "rtuovertcp://"):
		f := strings.Split(spec.Serial, ",")
		if len(f) != 4 {
			return nil, fmt.Errorf("-serial %q: want baud,data bits,parity,stop bits (19200,8,N,1)", spec.Serial)
		}
		if strings.HasPrefix(spec.URL, "rtu://") {
			fmt.Fprintf(&b, "    serial: {baud: %s, data_bits: %s, parity: %s, stop_bits: %s}\n", f[0], f[1], q(f[2]), f[3])
		} else {
			fmt.Fprintf(&b, "    serial: {baud: %s}\n", f[0])
		}
	case strings.HasPrefix(spec.URL, "tcp+tls://"):
		fmt.Fprintf(&b, "    tls: {cert: %s, key: %s, ca: %s}\n", q(spec.CertFile), q(spec.KeyFile), q(spec.CAFile))
	}
	fmt.Fprintf(&b, "devices:\n  - id: probe\n    link: probe\n    unit: %d\n    profile: %s\n    feeder: probe\n", spec.Unit, q(prof.Name))
	if hasVoltageRole(prof.Points) {
		b.WriteString("    nominal_voltage: 1\n")
	}
	const name = "<command line>"
	text := []byte(b.String())
	m, err := Load(name, LoadOptions{ReadFile: func(p string) ([]byte, error) {
		if p == name {
			return text, nil
		}
		return ReadFile(p)
	}})
	if err != nil {
		return nil, probeErrors(err)
	}
	return m.Devices[0], nil
}

// probeErrors names the flags instead of lines of the in-memory file.
func probeErrors(err error) error {
	errs, ok := err.(*Errors)
	if !ok {
		return err
	}
	flags := []struct{ path, flag string }{
		{"links[0].url", "-url"},
		{"links[0].serial", "-serial"},
		{"links[0].tls.cert", "-tls.cert"},
		{"links[0].tls.key", "-tls.key"},
		{"links[0].tls.ca", "-tls.ca"},
		{"links[0].tls", "-tls.cert, -tls.key, -tls.ca"},
		{"devices[0].unit", "-unit"},
		{"poll", "-timeout"},
	}
	msgs := make([]string, 0, len(*errs))
	for _, e := range *errs {
		name := e.Path
		for _, f := range flags {
			if strings.HasPrefix(e.Path, f.path) {
				name = f.flag
				break
			}
		}
		if e.File != "<command line>" {
			name = e.Error()
			msgs = append(msgs, name)
			continue
		}
		msgs = append(msgs, name+": "+e.Msg)
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}
