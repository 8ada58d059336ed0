package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// The page is rendered here from the same views the API serves; desk.js
// re-fetches /board (the page's main part) when the stream says something
// changed, and ticks the durations. Everything is embedded: no CDN, no
// build step.

//go:embed page/*
var pageFS embed.FS

type pageRenderer struct {
	t *template.Template
}

func newPageRenderer() (*pageRenderer, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"duration":   fmtDuration,
		"clock":      fmtClock,
		"lower":      strings.ToLower,
		"bandHeight": func(b [2]float64) float64 { return b[1] - b[0] },
		"ms":         func(s float64) float64 { return s * 1000 },
	}).ParseFS(pageFS, "page/*.html")
	if err != nil {
		return nil, fmt.Errorf("http server: page templates: %w", err)
	}
	return &pageRenderer{t: t}, nil
}

// boardData is what the board template draws.
type boardData struct {
	Outages     OutagesView
	Feeders     []feederPanel
	Devices     []DeviceView
	Reliability ReliabilityView
	// CanChange: a token is configured, so agents may set ETRs and
	// acknowledge (the server still checks it on every POST).
	CanChange bool
	Updated   string
}

type feederPanel struct {
	FeederView
	Diagram diagram
	Chart   chart
}

func (s *Server) board() boardData {
	d := boardData{
		Outages:   s.outageBoard(""),
		CanChange: s.opts.Token.Reveal() != "",
		Updated:   time.Unix(0, s.now()).UTC().Format("15:04:05 UTC"),
	}
	for _, f := range s.feederList() {
		d.Feeders = append(d.Feeders, feederPanel{FeederView: f, Diagram: layoutDiagram(&f), Chart: layoutChart(s.voltageView(f.ID), s.now())})
	}
	d.Devices = s.devicesNow()
	d.Reliability = reliabilityView(s.opts.Source.Reliability(), s.now(), "")
	return d
}

func (s *Server) devicesNow() []DeviceView {
	if s.opts.Polls == nil {
		return deviceViews(s.model.Load(), s.opts.Source.Snapshot(), nil)
	}
	return deviceViews(s.model.Load(), s.opts.Source.Snapshot(), s.opts.Polls())
}

func (s *Server) render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := s.page.t.ExecuteTemplate(&b, name, data); err != nil {
		s.opts.Logger.Error("page not rendered", "template", name, "err", err)
		http.Error(w, "page not rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) pageHandler(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusOK, "page.html", s.board())
}

func (s *Server) boardHandler(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusOK, "board", s.board())
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(pageFS, "page/"+name)
	if err != nil || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (p *pageRenderer) login(w http.ResponseWriter, code int, msg string) {
	var b bytes.Buffer
	if err := p.t.ExecuteTemplate(&b, "login.html", map[string]string{"Message": msg}); err != nil {
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) loginForm(w http.ResponseWriter, _ *http.Request) {
	s.page.login(w, http.StatusOK, "")
}

// loginPost turns the token typed into the form into the session cookie.
func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r, "cookie"); err != nil {
		s.page.login(w, http.StatusForbidden, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	tok := r.PostFormValue("token")
	if s.opts.Token.Reveal() == "" || !sameToken(tok, s.opts.Token.Reveal()) {
		s.page.login(w, http.StatusUnauthorized, "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func fmtDuration(sec float64) string {
	d := time.Duration(sec) * time.Second
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh %02dm %02ds", h, m, s)
	}
	if m > 0 {
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// fmtClock shows an RFC 3339 time as HH:MM:SS UTC.
func fmtClock(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	return t.UTC().Format("15:04:05 UTC")
}

// diagram is a feeder's one-line diagram: devices in tree order, one per
// row, indented by depth; the sections each device feeds to its right.
type diagram struct {
	Width, Height int
	Nodes         []diagramNode
	Links         []diagramLink
	Label         string
}

type diagramNode struct {
	X, Y     int
	ID, Kind string
	// Class: closed, open, lost, unknown; Dead: the device is de-energized.
	Class    string
	Dead     bool
	Sections []diagramSection
	State    string
}

type diagramSection struct {
	X, Y, W   int
	ID        string
	Customers int
	Energized bool
	Critical  bool
}

type diagramLink struct{ X1, Y1, X2, Y2 int }

const (
	diagRow    = 44
	diagIndent = 150
	diagSecW   = 130
)

func layoutDiagram(f *FeederView) diagram {
	children := map[string][]int{}
	var roots []int
	has := map[string]bool{}
	for _, d := range f.Devices {
		has[d.ID] = true
	}
	for i, d := range f.Devices {
		if d.Upstream == "" || !has[d.Upstream] {
			roots = append(roots, i)
		} else {
			children[d.Upstream] = append(children[d.Upstream], i)
		}
	}
	secs := map[string][]SectionView{}
	for _, s := range f.Sections {
		secs[s.FedBy] = append(secs[s.FedBy], s)
	}
	var g diagram
	pos := map[string][2]int{}
	var walk func(i, depth int)
	walk = func(i, depth int) {
		d := f.Devices[i]
		n := diagramNode{X: 10 + depth*diagIndent, Y: 14 + len(g.Nodes)*diagRow, ID: d.ID, Kind: d.Kind,
			Dead: d.Energy == "de_energized"}
		switch {
		case d.Comm == "lost":
			n.Class, n.State = "lost", "comms lost"
		case d.Open:
			n.Class, n.State = "open", "open"
		case d.Comm == "unknown":
			n.Class, n.State = "unknown", "not heard yet"
		default:
			n.Class, n.State = "closed", "closed"
		}
		if d.Lockout {
			n.State = "locked out"
		}
		if n.Dead {
			n.State += ", de-energized"
		}
		for k, s := range secs[d.ID] {
			n.Sections = append(n.Sections, diagramSection{X: n.X + 110 + k*(diagSecW+8), Y: n.Y + 4, W: diagSecW,
				ID: s.ID, Customers: s.Customers, Energized: s.Energized, Critical: len(s.Critical) > 0})
		}
		pos[d.ID] = [2]int{n.X, n.Y}
		g.Nodes = append(g.Nodes, n)
		if up, ok := pos[d.Upstream]; ok {
			g.Links = append(g.Links, diagramLink{up[0] + 8, up[1] + 16, up[0] + 8, n.Y + 8}, diagramLink{up[0] + 8, n.Y + 8, n.X, n.Y + 8})
		}
		for _, c := range children[d.ID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	for _, n := range g.Nodes {
		right := n.X + 110
		if len(n.Sections) > 0 {
			last := n.Sections[len(n.Sections)-1]
			right = last.X + last.W
		}
		g.Width = max(g.Width, right+10)
	}
	g.Height = 14 + len(g.Nodes)*diagRow
	var dead []string
	for _, s := range f.Sections {
		if !s.Energized {
			dead = append(dead, s.ID)
		}
	}
	g.Label = fmt.Sprintf("One-line diagram of feeder %s: %d devices, %d sections", f.ID, len(f.Devices), len(f.Sections))
	if len(dead) > 0 {
		g.Label += ", de-energized: " + strings.Join(dead, ", ")
	}
	return g
}

// chart is the last hour of a feeder's voltages with the C84.1 bands.
type chart struct {
	Width, Height                  int
	BandA, BandB                   [2]float64 // y of the top and bottom
	Lines                          []chartLine
	GridY                          []chartTick
	Label                          string
	Left, Right, PlotTop, PlotBott int
	PlotW                          int
}

type chartLine struct {
	Device string
	Points string
	Color  string
}

type chartTick struct {
	Y    float64
	Text string
}

var chartColors = []string{"#0b5394", "#7f1d9b", "#b45f06", "#134f5c", "#990000", "#38761d"}

func layoutChart(v VoltageView, now int64) chart {
	const lo, hi = 0.85, 1.10
	c := chart{Width: 640, Height: 180, Left: 44, Right: 630, PlotTop: 10, PlotBott: 160, PlotW: 586}
	y := func(pu float64) float64 {
		pu = math.Max(lo, math.Min(hi, pu))
		return float64(c.PlotBott) - (pu-lo)/(hi-lo)*float64(c.PlotBott-c.PlotTop)
	}
	a, b := v.Bands["range_a"], v.Bands["range_b"]
	c.BandA = [2]float64{y(a.High), y(a.Low)}
	c.BandB = [2]float64{y(b.High), y(b.Low)}
	for _, pu := range []float64{0.9, 0.95, 1.0, 1.05, 1.1} {
		c.GridY = append(c.GridY, chartTick{Y: y(pu), Text: fmt.Sprintf("%.2f", pu)})
	}
	from := now - int64(time.Hour)
	x := func(t int64) float64 {
		return float64(c.Left) + float64(t-from)/float64(time.Hour)*float64(c.Right-c.Left)
	}
	for i, s := range v.Series {
		var pts []string
		for _, p := range s.Points {
			if p.T < from {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(float64(p.PU))))
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		if len(pts) > 0 {
			c.Lines = append(c.Lines, chartLine{Device: s.Device, Points: strings.Join(pts, " "), Color: chartColors[i%len(chartColors)]})
		}
	}
	c.Label = fmt.Sprintf("Voltage of feeder %s over the last hour in per-unit, %d devices, with ANSI C84.1 Range A (%.3f–%.3f) and Range B (%.4f–%.4f)",
		v.Feeder, len(c.Lines), a.Low, a.High, b.Low, b.High)
	return c
}
