//go:build !linux

package devsrv

import (
	"errors"
	"net"
)

// Elsewhere than on Linux a refusing port closes its listener and listens
// again when the fault clears; the port may be taken meanwhile.

func listenReusable(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

type portHold struct{}

func holdPort(string) (*portHold, error) {
	return nil, errors.ErrUnsupported
}

func (h *portHold) listen() (net.Listener, error) { return nil, errors.ErrUnsupported }

func (h *portHold) close() {}

func stopListening(ln net.Listener) { ln.Close() }
