package testenv

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ConnCounter is a TCP proxy on 127.0.0.1 in front of a server: it counts
// the connections a client opened through it and those still open, so a
// test can tell a kept connection from a reopened one.
type ConnCounter struct {
	// URL is tcp://host:port of the proxy.
	URL string
	// Accepts counts connections accepted (and relayed); Open those whose
	// client has not closed its side yet.
	Accepts, Open atomic.Int32
}

// CountConns starts a ConnCounter in front of target (tcp://host:port or
// host:port) until the test ends.
func CountConns(t testing.TB, target string) *ConnCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &ConnCounter{URL: "tcp://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", strings.TrimPrefix(target, "tcp://"), time.Second)
			if err != nil {
				in.Close()
				continue
			}
			c.Accepts.Add(1)
			c.Open.Add(1)
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(out, in) // ends when the client closes its side
				c.Open.Add(-1)
				out.Close()
			})
			wg.Go(func() {
				_, _ = io.Copy(in, out)
				in.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return c
}
