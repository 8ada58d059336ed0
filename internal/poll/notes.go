package poll

import (
	"fmt"

	"github.com/feederd/feederd/internal/config"
)

// TimeoutNotes says, for check-config, which devices wait longer for a
// response than their own timeout: a link's connection has one request
// timeout (clientTimeout), the longest of the link's and its devices'. A
// device's own timeout still ends its poll: requests not sent by then are
// not sent. One note per such device, in configuration order.
func TimeoutNotes(m *config.Model) []string {
	devs := map[*config.Link][]*config.Device{}
	for _, d := range m.Devices {
		devs[d.Link] = append(devs[d.Link], d)
	}
	var notes []string
	for _, l := range m.Links {
		t := clientTimeout(l, devs[l]...)
		for _, d := range devs[l] {
			if d.Timeout < t {
				notes = append(notes, fmt.Sprintf(
					"device %s: a request waits up to %s, link %s's request timeout (the longest of the link's and its devices' timeouts: one per connection); its own timeout %s ends its poll",
					d.ID, t, l.ID, d.Timeout))
			}
		}
	}
	return notes
}
