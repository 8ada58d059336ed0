package config

import (
	"strings"
	"testing"
	"time"
)

func TestProbeDevice(t *testing.T) {
	dev, err := ProbeDevice(ProbeSpec{
		URL: "rtu:///dev/ttyUSB0", Unit: 7, ProfilePath: "../../configs/profiles/pm5100.yaml",
		Timeout: 500 * time.Millisecond, Serial: "9600,8,E,1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if dev.Unit != 7 || dev.Profile.Name != "pm5100" || dev.Timeout != 500*time.Millisecond {
		t.Errorf("device = unit %d profile %s timeout %v", dev.Unit, dev.Profile.Name, dev.Timeout)
	}
	s := dev.Link.Serial
	if s == nil || s.Baud != 9600 || s.DataBits != 8 || s.Parity != "E" || s.StopBits != 1 {
		t.Errorf("serial = %+v", s)
	}
	if len(dev.Points) != len(dev.Profile.Points) {
		t.Errorf("points = %d, want %d", len(dev.Points), len(dev.Profile.Points))
	}

	for _, tc := range []struct {
		spec ProbeSpec
		want string
	}{
		{ProbeSpec{URL: "udp://127.0.0.1:502", Unit: 1, ProfilePath: "../../configs/profiles/pm5100.yaml", Timeout: time.Second},
			`-url: unsupported scheme "udp" (want tcp, tcp+tls, rtu or rtuovertcp)`},
		{ProbeSpec{URL: "tcp://127.0.0.1:502", Unit: 300, ProfilePath: "../../configs/profiles/pm5100.yaml", Timeout: time.Second},
			`-unit: unit 300 out of range 0..247`},
		{ProbeSpec{URL: "rtu:///dev/ttyS0", Unit: 1, ProfilePath: "../../configs/profiles/pm5100.yaml", Timeout: time.Second, Serial: "19200"},
			`-serial "19200": want baud,data bits,parity,stop bits (19200,8,N,1)`},
		{ProbeSpec{URL: "tcp://127.0.0.1:502", Unit: 1, ProfilePath: "nope.yaml", Timeout: time.Second},
			`load profile: open nope.yaml: no such file or directory`},
	} {
		_, err := ProbeDevice(tc.spec)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.spec, err, tc.want)
		}
	}
}
