package poll

import (
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
)

func TestTimeoutNotes(t *testing.T) {
	gw := &config.Link{ID: "gw", Timeout: time.Second}
	solo := &config.Link{ID: "solo", Timeout: time.Second}
	m := &config.Model{
		Links: []*config.Link{gw, solo},
		Devices: []*config.Device{
			{ID: "fast", Link: gw, Timeout: time.Second},
			{ID: "slow", Link: gw, Timeout: 5 * time.Second},
			{ID: "alone", Link: solo, Timeout: 500 * time.Millisecond},
		},
	}
	want := []string{
		"device fast: a request waits up to 5s, link gw's request timeout (the longest of the link's and its devices' timeouts: one per connection); its own timeout 1s ends its poll",
		"device alone: a request waits up to 1s, link solo's request timeout (the longest of the link's and its devices' timeouts: one per connection); its own timeout 500ms ends its poll",
	}
	if got := TimeoutNotes(m); !slices.Equal(got, want) {
		t.Fatalf("notes:\n%q\nwant\n%q", got, want)
	}
}
