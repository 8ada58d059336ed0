//go:build linux

package devsrv

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenPTY creates a pseudo-terminal pair the way posix_openpt, grantpt,
// unlockpt and ptsname do, without cgo: it opens /dev/ptmx, unlocks the
// slave (grantpt has nothing to do on Linux's devpts) and puts the line in
// raw mode (8 data bits, no echo, no character translation). A client opens
// slavePath as its serial port; the simulator serves the master.
//
// Once a client has opened and closed the slave, reads on the master fail
// with EIO until the slave is opened again; OpenPTYBus holds the slave open
// to avoid that.
func OpenPTY() (master *os.File, slavePath string, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open pty: %w", err)
	}
	// Control, not Fd: Fd would switch the file to blocking mode and
	// disable its read deadlines.
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("open pty: %w", err)
	}
	var n uint32
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err != nil {
			err = fmt.Errorf("unlock pty slave: %w", err)
			return
		}
		if n, err = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); err != nil {
			err = fmt.Errorf("get pty slave number: %w", err)
			return
		}
		// Termios set through the master applies to the slave.
		var tio *unix.Termios
		if tio, err = unix.IoctlGetTermios(int(fd), unix.TCGETS); err != nil {
			err = fmt.Errorf("get pty termios: %w", err)
			return
		}
		makeRaw(tio)
		if err = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio); err != nil {
			err = fmt.Errorf("set pty raw mode: %w", err)
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("open pty: %w", err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n), nil
}

// makeRaw is cfmakeraw(3).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}
