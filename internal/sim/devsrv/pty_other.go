//go:build !linux

package devsrv

import (
	"errors"
	"os"
)

// OpenPTY creates a pseudo-terminal pair; only on Linux.
func OpenPTY() (master *os.File, slavePath string, err error) {
	return nil, "", errors.New("open pty: only supported on linux")
}
