package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeOpenSSL returns the README's shell block of certificate commands
// for Modbus/TCP Security.
func readmeOpenSSL(t *testing.T) string {
	t.Helper()
	s := string(mustRead(t, filepath.Join("..", "..", "README.md")))
	_, rest, ok := strings.Cut(s, "With a CA of your own")
	if !ok {
		t.Fatal("README.md: no Modbus/TCP Security certificate section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README.md: no shell block after \"With a CA of your own\"")
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// TestREADMECertificates runs the README's openssl commands (the device's
// address changed to 127.0.0.1) and has feederd poll an rtusim device over
// Modbus/TCP Security with the certificates they made.
func TestREADMECertificates(t *testing.T) {
	block := readmeOpenSSL(t)
	if !strings.Contains(block, "IP:10.1.2.3") {
		t.Fatal("README.md's certificate block no longer has subjectAltName IP:10.1.2.3")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl not found (apt-get install openssl; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", strings.ReplaceAll(block, "IP:10.1.2.3", "IP:127.0.0.1"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README's openssl commands: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.key", "feederd.key", "rtu.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	prof := profilesDir(t)
	port := freePort(t)
	urls := startSim(t, fmt.Sprintf(`
seed: 1
tick: 100ms
listen: 127.0.0.1
profiles: [%[1]s/feeder-rtu.yaml]
tls: {cert_file: %[2]s/rtu.crt, key_file: %[2]s/rtu.key, client_ca_file: %[2]s/ca.crt}
devices:
  - {id: F1-REC, profile: feeder-rtu, unit: 1, port: %[3]s, transport: tcp+tls, nominal_voltage: 7200}
`, prof, dir, port), "seed: 1\nevents:\n  - {at: 1h, action: comms_restore, target: F1-REC}\n")
	if !strings.HasPrefix(urls["F1-REC"], "tcp+tls://127.0.0.1:") {
		t.Fatalf("rtusim URL %q", urls["F1-REC"])
	}
	d := startDaemon(t, fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml]
poll: {interval: 200ms, timeout: 150ms}
links:
  - {id: rec, url: "%[2]s", tls: {cert: %[3]s/feederd.crt, key: %[3]s/feederd.key, ca: %[3]s/ca.crt}}
devices:
  - {id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}
`, prof, urls["F1-REC"], dir))
	eventually(t, 20*time.Second, "F1-REC polled over TLS", func() error {
		if v := metricValue(t, d.base, `feederd_device_up{device="F1-REC",link="rec"}`); v != "1" {
			return fmt.Errorf("feederd_device_up = %q", v)
		}
		if v := metricValue(t, d.base, `feederd_polls_total{link="rec",result="success"}`); v == "" || v == "0" {
			return fmt.Errorf("no successful poll yet: %q", v)
		}
		return nil
	})
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}
