package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func (d *desk) ackAs(t *testing.T, id, by string) {
	t.Helper()
	code, body := d.do(t, "POST", "/api/v1/outages/"+url.PathEscape(id)+"/ack", `{"by":"`+by+`"}`,
		"Authorization", "Bearer "+d.token, "Content-Type", "application/json")
	if code != 200 {
		t.Fatalf("ack %s: %d %s", by, code, body)
	}
}

// TestStreamReconnectMissesNothing: a client that drops and comes back
// with Last-Event-ID gets exactly what it missed, in order, then the live
// messages, without a duplicate.
func TestStreamReconnectMissesNothing(t *testing.T) {
	d := startDesk(t, "tok")
	id := d.outage(t)
	s := openStream(t, d, "")
	d.ackAs(t, id, "a1")
	var first sseEvent
	for first.typ != "note" {
		first = s.next(t)
	}
	if !strings.Contains(first.data, `"by":"a1"`) {
		t.Fatalf("first note %+v", first)
	}
	s.close()
	// While the client is away:
	for _, by := range []string{"a2", "a3", "a4"} {
		d.ackAs(t, id, by)
	}
	s = openStream(t, d, first.id)
	defer s.close()
	n, _ := strconv.ParseUint(first.id, 10, 64)
	var got []string
	for _, by := range []string{"a2", "a3", "a4", "a5"} {
		if by == "a5" {
			d.ackAs(t, id, by) // live, after the replay
		}
		m := s.next(t)
		n++
		if m.id != strconv.FormatUint(n, 10) {
			t.Errorf("message id %s, want %d", m.id, n)
		}
		got = append(got, m.typ+" "+m.data)
	}
	for i, by := range []string{"a2", "a3", "a4", "a5"} {
		if !strings.HasPrefix(got[i], `note {"outage":"`+id+`","acknowledged":{"by":"`+by+`","at":`) {
			t.Errorf("message %d: %s, want the note of %s", i, got[i], by)
		}
	}
}

// TestStreamResetWhenTooLate: a client whose Last-Event-ID left the replay
// buffer is told to reload (reset), then gets what the buffer holds.
func TestStreamResetWhenTooLate(t *testing.T) {
	d := startDesk(t, "tok", func(_ *Options, lo *LiveOptions) { lo.ReplayBuffer = 2 })
	id := d.outage(t)
	last := d.live.lastID()
	for _, by := range []string{"b1", "b2", "b3"} {
		d.ackAs(t, id, by)
	}
	s := openStream(t, d, strconv.FormatUint(last, 10))
	defer s.close()
	var got []string
	for range 3 {
		m := s.next(t)
		got = append(got, m.typ+" "+m.data[:min(len(m.data), 60)])
	}
	want := []string{"reset {}", `note {"outage":"` + id + `","acknowledged":{"by":"b2",`, `note {"outage":"` + id + `","acknowledged":{"by":"b3",`}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i][:min(len(want[i]), 60)]) {
			t.Errorf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestStreamCarriesOutages: the stream says when an outage starts and
// ends.
func TestStreamCarriesOutages(t *testing.T) {
	d := startDesk(t, "")
	s := openStream(t, d, "")
	defer s.close()
	id := d.outage(t)
	d.restore(t)
	var changes []string
	for len(changes) < 2 {
		m := s.next(t)
		if m.typ == "outage" && !strings.HasPrefix(m.data, `{"change":"updated"`) {
			changes = append(changes, m.data[:strings.Index(m.data, `,"outage"`)])
			if !strings.Contains(m.data, `"id":"`+id+`"`) {
				t.Errorf("outage message for another outage: %s", m.data)
			}
		}
	}
	if fmt.Sprint(changes) != `[{"change":"started" {"change":"restored"]` {
		t.Errorf("outage messages %v", changes)
	}
}
