package devsrv

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// OpenPTYBus creates a pseudo-terminal (OpenPTY) and serves RTU on it, as
// if the units hung on a serial line whose far end is the slave device:
// clients open Endpoint.URL's path (rtu:///dev/pts/N) at any baud rate. With
// link set, a symlink of that name points to the slave, so a rig's config
// can name a fixed path; the URL then names the link, and Close removes it.
//
// The simulator keeps the slave open itself: otherwise every client's close
// would leave the master failing with EIO until the next open.
func OpenPTYBus(link string, u *Units, o ServerOptions) (*Endpoint, error) {
	o = o.withDefaults()
	master, slavePath, err := OpenPTY()
	if err != nil {
		return nil, err
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("open pty slave %s: %w", slavePath, err)
	}
	path := slavePath
	if link != "" {
		if err := os.Symlink(slavePath, link); err != nil {
			slave.Close()
			master.Close()
			return nil, fmt.Errorf("link pty %s: %w", slavePath, err)
		}
		path = link
	}
	return &Endpoint{
		URL:   "rtu://" + path,
		Units: u,
		serve: func(ctx context.Context) error {
			if err := ServeRTU(ctx, master, u, RTUOptions{Logger: o.Logger}); err != nil {
				return fmt.Errorf("serve rtu on %s: %w", path, err)
			}
			return nil
		},
		close: func() {
			master.Close()
			slave.Close()
			if link != "" {
				// Only our own link: someone may have replaced it.
				if target, err := os.Readlink(link); err == nil && target == slavePath {
					os.Remove(link)
				}
			}
		},
	}, nil
}
