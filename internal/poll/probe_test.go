package poll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

func probeDevice(url string, points []profile.Point) *config.Device {
	d := testDevice("P1", 7, time.Second, points...)
	testLink("LP", url, 500*time.Millisecond, d)
	return d
}

func TestProbe(t *testing.T) {
	im := e2eImage(7)
	im.fail[profile.DiscreteInput] = modbus.ErrServerDeviceBusy
	dev := probeDevice(serve(t, im), e2ePoints)
	values, err := Probe(context.Background(), dev, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := FormatProbe(&b, values); err != nil {
		t.Fatal(err)
	}
	want := `NAME     TABLE           ADDRESS  TYPE     VALUE   UNIT  QUALITY    ERROR
va       holding         100      float32  230.5   V     good
vb       holding         102      float32  231.25  V     good
ia       holding         110      int16    -29.75  A     good
breaker  holding         120      bit      1             good
lockout  holding         120      bit      0             good
coil5    coil            5        bool     1             good
coil6    coil            6        bool     0             good
di10     discrete_input  10       bool     -             exception  read discrete inputs 10..10 on P1: server device busy
pf       input           200      float32  -             invalid
serial   holding         300      string   "AB12"        good
freq     input           202      uint16   50      Hz    good
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProbeLinkFailure(t *testing.T) {
	pts := []profile.Point{
		{Name: "c", RegType: profile.Coil, Address: 0, Type: profile.Bool},
		{Name: "h", RegType: profile.Holding, Address: 0, Type: profile.Uint16},
	}
	t.Run("refused", func(t *testing.T) {
		addr := freeAddr(t)
		_, err := Probe(context.Background(), probeDevice("tcp://"+addr, pts), quietLogger())
		if err == nil || !strings.HasPrefix(err.Error(), "open link LP (tcp://"+addr+"): dial tcp "+addr+": connect: connection refused") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("timeout skips the rest", func(t *testing.T) {
		im := newImage(7)
		im.setDelay(time.Second)
		values, err := Probe(context.Background(), probeDevice(serve(t, im), pts), quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		wantErr := []string{
			"read coils 0..0 on P1: request timed out",
			"not read after read coils 0..0 on P1: request timed out",
		}
		for i, v := range values {
			if v.Quality != sample.Timeout || v.Err == nil || v.Err.Error() != wantErr[i] {
				t.Errorf("point %s: quality %v, err %v; want timeout, %q", v.Point.Name, v.Quality, v.Err, wantErr[i])
			}
		}
		if n := len(im.requests()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
	t.Run("gateway cannot reach the unit: the rest is not read", func(t *testing.T) {
		im := newImage(7)
		im.fail[profile.Coil] = modbus.ErrGWTargetFailedToRespond
		values, err := Probe(context.Background(), probeDevice(serve(t, im), pts), quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		wantErr := []string{
			"read coils 0..0 on P1: gateway target device failed to respond",
			"not read after read coils 0..0 on P1: gateway target device failed to respond",
		}
		for i, v := range values {
			if v.Quality != sample.Timeout || v.Err == nil || v.Err.Error() != wantErr[i] {
				t.Errorf("point %s: quality %v, err %v; want timeout, %q", v.Point.Name, v.Quality, v.Err, wantErr[i])
			}
		}
		if n := len(im.requests()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
	t.Run("cancelled before connecting", func(t *testing.T) {
		// Nobody listens: a dial would fail with "connection refused".
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Probe(ctx, probeDevice("tcp://"+freeAddr(t), pts), quietLogger())
		if err != context.Canceled {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled during a pause", func(t *testing.T) {
		im := newImage(7)
		dev := probeDevice(serve(t, im), pts)
		dev.Quirks.PauseBetweenRequests = time.Hour
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := Probe(ctx, dev, quietLogger())
			done <- err
		}()
		for len(im.requests()) == 0 {
			select {
			case err := <-done:
				t.Fatalf("Probe returned %v before its first request", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if n := len(im.requests()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
func tlsFiles(t *testing.T) (dir string, server tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	dir = t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth)
	write("client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	write("client.key", "EC PRIVATE KEY", keyDER)
	return dir, server, pool
}

func TestProbeOverTLS(t *testing.T) {
	dir, cert, pool := tlsFiles(t)
	im := newImage(7)
	pt := profile.Point{Name: "v", RegType: profile.Input, Address: 4, Type: profile.Int32, Order: profile.DCBA}
	im.put(pt, -70000)
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL: "tcp+tls://" + addr, TLSServerCert: &cert, TLSClientCAs: pool,
		Logger: log.New(io.Discard, "", 0),
	}, im)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	dev := probeDevice("tcp+tls://"+addr, []profile.Point{pt})
	dev.Link.Scheme = config.SchemeTLS
	dev.Link.TLS = &config.TLS{
		CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"), CAFile: filepath.Join(dir, "ca.pem"),
	}
	values, err := Probe(context.Background(), dev, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if v := values[0]; v.Quality != sample.Good || v.Value != -70000 || v.Err != nil {
		t.Errorf("value = %+v, want good -70000", v)
	}
}
