package testenv

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestPTYPair(t *testing.T) {
	a, b := PTYPair(t)
	fa, err := os.OpenFile(a, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.OpenFile(b, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	for _, dir := range []struct {
		name     string
		from, to *os.File
	}{{"a to b", fa, fb}, {"b to a", fb, fa}} {
		t.Run(dir.name, func(t *testing.T) {
			msg := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD, '\n', 0x00}
			if _, err := dir.from.Write(msg); err != nil {
				t.Fatal(err)
			}
			if err := dir.to.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var got []byte
			buf := make([]byte, 64)
			for len(got) < len(msg) {
				n, err := dir.to.Read(buf)
				if err != nil {
					t.Fatalf("read after %q: %v", got, err)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("got % X, want % X (raw mode passes every byte)", got, msg)
			}
		})
	}
}
