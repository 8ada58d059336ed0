package api

import (
	"regexp"
	"strings"
	"testing"
)

// TestPage: the server-rendered page during an outage: the board row,
// the critical badge, the shaded sections, the device table and the
// reliability table, with headings and table semantics, and nothing
// loaded from elsewhere.
func TestPage(t *testing.T) {
	d := startDesk(t, "tok")
	id := d.outage(t)
	code, page := d.do(t, "GET", "/", "")
	if code != 200 {
		t.Fatalf("GET /: %d %s", code, page)
	}
	for _, want := range []string{
		`<html lang="en">`,
		`<h1>feederd service desk</h1>`,
		`<h2 id="h-outages">Outages</h2>`,
		`<caption>Active outages, largest impact first (1)</caption>`,
		`<th scope="col">Customers out</th>`,
		`<tr data-outage-id="` + id + `" class="status-predicted">`,
		`<th scope="row" class="feeder">F0</th>`,
		`<td class="customers-out num">300</td>`,
		`<span class="badge badge-hospital" title="hospital">Mercy Hospital</span>`,
		`<time datetime="2025-01-15T12:00:03Z">12:00:03 UTC</time>`,
		`<span class="ticking" data-start="2025-01-15T12:00:03Z">`,
		`<form class="etr-form" data-outage-id="` + id + `">`,
		`aria-label="One-line diagram of feeder F0: 2 devices, 2 sections, de-energized: S1, S2"`,
		`<g class="section dead" data-section="S1" data-energized="false">`,
		`<g class="section dead" data-section="S2" data-energized="false">`,
		`<g class="node closed dead" data-device="F0-D0" data-state="closed">`,
		`<rect class="band-a"`,
		`<rect class="band-b"`,
		`<polyline class="series" data-device="F0-D0"`,
		`<h2 id="h-devices">Device communications</h2>`,
		`<tr data-device="F0-D0" class="comm-ok">`,
		`<span class="q q-stale">vc: stale</span>`,
		`<h2 id="h-reliability">Reliability (IEEE 1366, 2025)</h2>`,
		`<script src="/assets/desk.js" defer></script>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Nothing from another origin: every src and href is a local path.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "/") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("page loads %s from elsewhere", m[1])
		}
	}
	// The board alone, for the script's refresh, is the same markup.
	code, board := d.do(t, "GET", "/board", "")
	if code != 200 || !strings.Contains(board, `<tr data-outage-id="`+id+`"`) || strings.Contains(board, "<html") {
		t.Errorf("GET /board: %d", code)
	}
	for _, a := range []struct{ path, ctype string }{{"/assets/desk.js", "text/javascript; charset=utf-8"}, {"/assets/desk.css", "text/css; charset=utf-8"}} {
		code, body := d.do(t, "GET", a.path, "")
		if code != 200 || len(body) < 500 {
			t.Errorf("GET %s: %d, %d bytes", a.path, code, len(body))
		}
	}
	if code, _ := d.do(t, "GET", "/assets/page.html", ""); code != 404 {
		t.Errorf("templates are not assets: %d", code)
	}
	d.restore(t)
	_, page = d.do(t, "GET", "/", "")
	for _, want := range []string{`<caption>Active outages, largest impact first (0)</caption>`, `No active outage.`,
		`<caption>Recent outages, latest first (1)</caption>`, `<g class="section live" data-section="S1" data-energized="true">`} {
		if !strings.Contains(page, want) {
			t.Errorf("page after restoration lacks %s", want)
		}
	}
}
