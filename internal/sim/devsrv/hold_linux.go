package devsrv

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A device's own port that refuses connections (Fault.Refuse) keeps its
// port: the listener is replaced by a socket bound to the same address but
// not listening, so the kernel answers connects with a reset (connection
// refused), hands the port to no other program, and never picks it as the
// local port of an outgoing connection. When the fault clears, that socket
// starts listening. Both sockets set SO_REUSEPORT, which lets the second
// bind while the first still listens.

// listenReusable listens on addr with SO_REUSEPORT set.
func listenReusable(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// portHold is a socket bound to a listener's address, not listening.
type portHold struct {
	f *os.File
}

// holdPort binds a socket to addr (a listener's bound address) without
// listening on it.
func holdPort(addr string) (*portHold, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	family := syscall.AF_INET6
	var sa syscall.Sockaddr
	if ip4 := ta.IP.To4(); ip4 != nil {
		family = syscall.AF_INET
		s4 := &syscall.SockaddrInet4{Port: ta.Port}
		copy(s4.Addr[:], ip4)
		sa = s4
	} else {
		s6 := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s6.Addr[:], ta.IP.To16())
		sa = s6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, fmt.Errorf("hold port %s: %w", addr, err)
	}
	fail := func(what string, err error) (*portHold, error) {
		syscall.Close(fd)
		return nil, fmt.Errorf("hold port %s: %s: %w", addr, what, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	if family == syscall.AF_INET6 {
		// As Go's listeners on [::]: IPv4 too.
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	return &portHold{f: os.NewFile(uintptr(fd), "hold "+addr)}, nil
}

// listen turns the held socket into a listener; the hold is used up.
func (h *portHold) listen() (net.Listener, error) {
	defer h.f.Close()
	if err := syscall.Listen(int(h.f.Fd()), syscall.SOMAXCONN); err != nil {
		return nil, fmt.Errorf("listen on held port: %w", err)
	}
	return net.FileListener(h.f)
}

func (h *portHold) close() { h.f.Close() }

// stopListening makes ln refuse connects before it returns. Closing a
// listener alone does not: the socket is closed only once its pending
// Accept returns, and connects meanwhile complete and are then reset.
func stopListening(ln net.Listener) {
	if tl, ok := ln.(*net.TCPListener); ok {
		if rc, err := tl.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
		}
	}
	ln.Close()
}
