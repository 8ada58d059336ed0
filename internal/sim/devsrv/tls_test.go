package devsrv

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/testenv"
)

// TestTLS: feederd's client reads every kind of value over Modbus/TCP
// Security with a client certificate from the trusted CA.
func TestTLS(t *testing.T) {
	f := newFleet(t)
	e := listenTLS(t, f.units(t), ServerOptions{})
	if !strings.HasPrefix(e.URL, "tcp+tls://127.0.0.1:") {
		t.Fatalf("URL = %s", e.URL)
	}
	serve(t, e.Endpoint)
	checkClientReads(t, e.dial(t, time.Second), f)
}

// TestTLSRejectsClients: no certificate, or one from another CA, reads
// nothing.
func TestTLSRejectsClients(t *testing.T) {
	f := newFleet(t)
	e := listenTLS(t, f.units(t), ServerOptions{})
	serve(t, e.Endpoint)
	_, addr, _ := strings.Cut(e.URL, "://")
	roots, err := modbus.LoadCertPool(e.pki.ca)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no client certificate", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err == nil {
			// TLS 1.3: the client finishes its handshake before the
			// server checks; the server's alert arrives on the first read.
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Write([]byte{0, 1, 0, 0, 0, 6, 1, 0x03, 0x0B, 0xD3, 0x00, 0x02}); err == nil {
				_, err = c.Read(make([]byte, 64))
			}
		}
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("read without a client certificate: %v, want tls: certificate required", err)
		}
	})

	t.Run("certificate of another CA", func(t *testing.T) {
		_, _, _, otherCert, otherKey := testenv.TestPKI(t)
		cc := e.config(t, time.Second)
		cc.TLSClientCert, _ = clientTLS(t, e.pki.ca, otherCert, otherKey)
		c, err := modbus.NewClient(cc)
		if err != nil {
			t.Fatal(err)
		}
		if err = c.Open(); err == nil {
			defer c.Close()
			var v []uint16
			v, err = c.ReadRegisters(3027, 2, modbus.HOLDING_REGISTER)
			if err == nil {
				t.Fatalf("read with a certificate of another CA: %v", v)
			}
		}
		if !strings.Contains(err.Error(), "unknown certificate authority") {
			t.Fatalf("read with a certificate of another CA: %v, want tls: unknown certificate authority", err)
		}
	})
}

func TestListenTLSErrors(t *testing.T) {
	u, _ := NewUnits()
	ca, sc, sk, _, _ := testenv.TestPKI(t)
	good, err := LoadTLSConfig(sc, sk, ca)
	if err != nil {
		t.Fatal(err)
	}
	noCAs := good.Clone()
	noCAs.ClientCAs = nil
	noCert := good.Clone()
	noCert.Certificates = nil
	tests := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"nil", nil, "listen modbus tcp+tls on 127.0.0.1:0: no tls config"},
		{"no client CAs", noCAs, "listen modbus tcp+tls on 127.0.0.1:0: no client CAs to verify client certificates"},
		{"no certificate", noCert, "listen modbus tcp+tls on 127.0.0.1:0: no server certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ListenTLS("127.0.0.1:0", u, ServerOptions{}, tt.cfg); err == nil || err.Error() != tt.want {
				t.Fatalf("ListenTLS: %v, want %q", err, tt.want)
			}
		})
	}
	// The caller's config is not changed.
	lax := good.Clone()
	lax.ClientAuth = tls.NoClientCert
	e, err := ListenTLS("127.0.0.1:0", u, ServerOptions{}, lax)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if lax.ClientAuth != tls.NoClientCert {
		t.Fatal("ListenTLS changed the caller's config")
	}

	if _, err := LoadTLSConfig(sc, sk, sc+".missing"); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadTLSConfig with a missing CA file: %v", err)
	}
	if _, err := LoadTLSConfig(sc, sk, sk); err == nil || !strings.HasSuffix(err.Error(), "no PEM certificate in the file") {
		t.Fatalf("LoadTLSConfig with a key as CA file: %v", err)
	}
	if _, err := LoadTLSConfig(sc, ca, ca); err == nil || !strings.HasPrefix(err.Error(), "load tls key pair") {
		t.Fatalf("LoadTLSConfig with a certificate as key: %v", err)
	}
}

// TestTLSLaxConfigStillRequiresCert: a config that asks for no client
// certificate gets one required anyway.
func TestTLSLaxConfigStillRequiresCert(t *testing.T) {
	f := newFleet(t)
	ca, sc, sk, _, _ := testenv.TestPKI(t)
	cfg, err := LoadTLSConfig(sc, sk, ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientAuth = tls.NoClientCert
	e, err := ListenTLS("127.0.0.1:0", f.units(t), ServerOptions{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e)
	roots, _ := modbus.LoadCertPool(ca)
	_, addr, _ := strings.Cut(e.URL, "://")
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("without a client certificate: %v, want tls: certificate required", err)
	}
}
