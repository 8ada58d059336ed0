package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// PointValue is one point read by Probe.
type PointValue struct {
	Point profile.Point
	// Value is the engineering value when Quality is Good, else 0.
	Value float64
	// Text is the value of a String point.
	Text    string
	Quality sample.Quality
	// Err says why Quality is not Good.
	Err error
}

// Probe opens the device's link, reads its plan once and closes the link.
// It returns one value per point, in point order, string points included.
// It fails only when the link cannot be opened or ctx ends; a request that
// fails marks its points with the quality and error, and after a link
// failure or a gateway exception 0x0A or 0x0B (the gateway cannot reach the
// unit) the remaining points are Timeout without being read.
//
// Probe notices ctx before connecting, between requests and during pauses,
// but cannot cut short a connection attempt or a request in flight: the
// library holds its client lock across both, so even a Close from another
// goroutine would wait for them. Probe therefore returns at most the link's
// timeout (or the library's dial timeout, 5 s, for TCP) after ctx ends.
func Probe(ctx context.Context, dev *config.Device, logger *slog.Logger) ([]PointValue, error) {
	if dev == nil || dev.Link == nil || logger == nil {
		return nil, errors.New("probe: device, its link and a logger are required")
	}
	timeout := clientTimeout(dev.Link, dev)
	client, tlsConf, err := newClient(dev.Link, timeout, logger.With("link", dev.Link.ID))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = preflight(ctx, dev.Link.URL, tlsConf, timeout)
	if err == nil {
		err = client.Open()
	}
	if err != nil {
		return nil, fmt.Errorf("open link %s (%s): %w", dev.Link.ID, dev.Link.URL, err)
	}
	defer client.Close()
	if err := sleep(ctx, dev.Link.PauseAfterConnect); err != nil {
		return nil, err
	}
	_ = client.SetUnitId(dev.Unit) // it only stores the ID

	values := make([]PointValue, len(dev.Points))
	for i := range values {
		values[i] = PointValue{Point: dev.Points[i], Quality: sample.Timeout}
	}
	var linkErr error
	var buf []uint16
	for j, r := range BuildPlan(dev.Points, dev.Quirks) {
		if linkErr != nil {
			for _, ref := range r.Points {
				values[ref.Index].Err = fmt.Errorf("not read after %w", linkErr)
			}
			continue
		}
		if j > 0 {
			if err := sleep(ctx, dev.Quirks.PauseBetweenRequests); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var words []uint16
		words, buf, err = read(client, &r, buf)
		if err != nil {
			err = fmt.Errorf("%v on %s: %w", r, dev.ID, err)
			if c := classify(err); c == linkFailed || c == unreachable {
				linkErr = err
			}
		}
		for _, ref := range r.Points {
			v := &values[ref.Index]
			if err != nil {
				v.Quality, v.Err = quality(err), err
				continue
			}
			p := &dev.Points[ref.Index]
			if p.Type != profile.String || p.RegType.IsBit() {
				v.Value, v.Quality = decode(p, words, ref.Offset)
				continue
			}
			if int(ref.Offset)+p.Words() > len(words) {
				v.Quality = sample.Invalid
				continue
			}
			v.Text, v.Quality = p.DecodeString(words[ref.Offset:]), sample.Good
		}
	}
	return values, nil
}

// sleep waits for d, or returns ctx's error when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FormatProbe prints probed values as an aligned table.
func FormatProbe(w io.Writer, values []PointValue) error {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTABLE\tADDRESS\tTYPE\tVALUE\tUNIT\tQUALITY\tERROR")
	for _, v := range values {
		p := &v.Point
		val := "-"
		switch {
		case v.Quality != sample.Good:
		case p.Type == profile.String && !p.RegType.IsBit():
			val = strconv.Quote(v.Text)
		case math.Abs(v.Value) < 1e15 && (v.Value == 0 || math.Abs(v.Value) >= 1e-4):
			// Plain decimals read best at a site: 123456789, not 1.23456789e+08.
			val = strconv.FormatFloat(v.Value, 'f', -1, p.FloatBits())
		default:
			val = strconv.FormatFloat(v.Value, 'g', -1, p.FloatBits())
		}
		errText := ""
		if v.Err != nil {
			errText = v.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%v\t%s\t%s\t%v\t%s\n",
			p.Name, p.RegType, p.Address, p.Type, val, p.Unit, v.Quality, errText)
	}
	tw.Flush() // into a strings.Builder: cannot fail
	// tabwriter pads the empty error cells: cut the trailing blanks.
	var out strings.Builder
	for line := range strings.Lines(table.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	if _, err := io.WriteString(w, out.String()); err != nil {
		return fmt.Errorf("write probe table: %w", err)
	}
	return nil
}
