package devsrv

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/sim/simtest"
)

// TestOpenPTY: what the master writes the slave reads, byte for byte (raw
// mode: no echo, no CR/LF translation), and back.
func TestOpenPTY(t *testing.T) {
	master, slavePath, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if !strings.HasPrefix(slavePath, "/dev/pts/") {
		t.Fatalf("slave path %q, want /dev/pts/N", slavePath)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	msg := []byte{0x01, 0x03, 0x0D, 0x0A, 0x11, 0x13, 0x03, 0x04, 0x00, 0xFF}
	for _, dir := range []struct {
		name     string
		from, to *os.File
	}{{"master to slave", master, slave}, {"slave to master", slave, master}} {
		t.Run(dir.name, func(t *testing.T) {
			if _, err := dir.from.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 0, len(msg))
			buf := make([]byte, 64)
			deadline := time.Now().Add(5 * time.Second)
			for len(got) < len(msg) && time.Now().Before(deadline) {
				dir.to.SetReadDeadline(time.Now().Add(time.Second))
				n, _ := dir.to.Read(buf)
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("read % X, want % X", got, msg)
			}
		})
	}
}

// TestPTYBus: feederd's client and mbpoll read the sim's values from the
// slave side of rtusim's own PTY, one after another (a client closing the
// slave does not break the bus), and Close removes the link.
func TestPTYBus(t *testing.T) {
	f := newFleet(t)
	link := filepath.Join(t.TempDir(), "rtusim-bus1")
	e, err := OpenPTYBus(link, f.units(t), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.URL != "rtu://"+link {
		t.Fatalf("URL = %s, want rtu://%s", e.URL, link)
	}
	target, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(target, "/dev/pts/") {
		t.Fatalf("link %s -> %q (%v), want /dev/pts/N", link, target, err)
	}
	serve(t, e)
	for i := range 2 {
		simtest.MustSet(t, f.recloser, map[string]float64{"remote_enabled": 0}) // checkClientReads sets it
		c := simtest.Client(t, e.URL)
		checkClientReads(t, c, f)
		c.Close()
		if i == 0 {
			checkMBPoll(t, []string{"-m", "rtu", "-b", "19200", "-P", "none", "-d", "8", "-s", "1"}, link, f)
		}
	}
	if _, err := OpenPTYBus(link, f.units(t), ServerOptions{}); err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("OpenPTYBus on an existing link: %v, want file exists", err)
	}
	e.Close()
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link after Close: %v, want it removed", err)
	}
}
