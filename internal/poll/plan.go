package poll

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
)

// Limits of one Modbus read request.
const (
	// MaxRegisters is the most registers one read may ask for (FC 03, 04).
	MaxRegisters = 125
	// MaxBits is the most coils or discrete inputs one read may ask for (FC 01, 02).
	MaxBits = 2000
)

// Request is one Modbus read of a device's read plan.
type Request struct {
	Table profile.RegType
	Start uint16
	// Count is in registers, or in bits for coils and discrete inputs.
	Count uint16
	// Points are the points the response carries, by address.
	Points []PointRef
}

// PointRef places a point in a response.
type PointRef struct {
	// Index is the point's position in the slice given to BuildPlan.
	Index int
	// Offset is where the point starts in the response, in registers or bits.
	Offset uint16
}

var functionNames = [...]string{
	profile.Coil:          "read coils",
	profile.DiscreteInput: "read discrete inputs",
	profile.Holding:       "read holding registers",
	profile.Input:         "read input registers",
}

// String names the request the way errors and logs do:
// "read holding registers 3027..3032" (both ends included).
func (r Request) String() string {
	return fmt.Sprintf("%s %d..%d", r.function(), r.Start, r.last())
}

func (r Request) function() string {
	if int(r.Table) < len(functionNames) {
		return functionNames[r.Table]
	}
	return fmt.Sprintf("read %v", r.Table)
}

// last is the last address the request reads.
func (r Request) last() int { return int(r.Start) + int(r.Count) - 1 }

// planLimits resolves a device's quirks into the limits BuildPlan uses. A
// zero MaxRegisters or MaxBits is the protocol maximum; MaxGap is taken as
// it is, 0 included.
func planLimits(q config.Quirks, table profile.RegType) (maxCount, maxGap int) {
	maxCount = MaxRegisters
	if q.MaxRegisters > 0 && q.MaxRegisters < MaxRegisters {
		maxCount = int(q.MaxRegisters)
	}
	if table.IsBit() {
		maxCount = MaxBits
		if q.MaxBits > 0 && q.MaxBits < MaxBits {
			maxCount = int(q.MaxBits)
		}
	}
	return maxCount, int(q.MaxGap)
}

// width is how many registers (or bits) a point occupies in its table.
func width(p *profile.Point) int {
	if p.RegType.IsBit() {
		return 1
	}
	return max(p.Words(), 1)
}

// BuildPlan coalesces points into the fewest read requests per table, in a
// deterministic order: by table (coils, discrete inputs, holding, input
// registers), then by address.
//
// A request holds at most q.MaxRegisters registers (or q.MaxBits bits), and
// two neighbouring points share a request when the gap between them is at
// most q.MaxGap registers (bits for the bit tables). A zero MaxRegisters or
// MaxBits means the protocol maximum (MaxRegisters, MaxBits), and limits
// above it are cut to it. MaxGap is literal: 0 reads no gap, so only points
// that touch or overlap share a request. Its default (10) is filled in by the
// config package when the key is absent, not here.
//
// Points that overlap (several bits of one register, a register read both
// whole and bit by bit) share the read. A point never spans two requests: a
// point wider than the limit gets a request of its own, as wide as the point.
// With OneRequestPerPoint every distinct register range is its own request;
// points with exactly the same range still share it.
func BuildPlan(points []profile.Point, q config.Quirks) []Request {
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		pa, pb := &points[a], &points[b]
		return cmp.Or(
			cmp.Compare(pa.RegType, pb.RegType),
			cmp.Compare(pa.Address, pb.Address),
			cmp.Compare(width(pb), width(pa)), // the widest first
			cmp.Compare(a, b),
		)
	})

	// Each request's points are a run of order, so they share one array.
	refs := make([]PointRef, 0, len(points))
	var plan []Request
	var cur *Request
	first, end := 0, 0 // cur's first point in refs; one past cur's last register
	closeRun := func() {
		if cur != nil {
			cur.Points = refs[first:len(refs):len(refs)]
			slices.SortFunc(cur.Points, func(x, y PointRef) int {
				return cmp.Or(cmp.Compare(x.Offset, y.Offset), cmp.Compare(x.Index, y.Index))
			})
		}
	}
	for _, i := range order {
		p := &points[i]
		a, w := int(p.Address), width(p)
		if cur != nil && cur.Table == p.RegType && fits(cur, end, a, w, p.RegType, q) {
			end = max(end, a+w)
			cur.Count = uint16(end - int(cur.Start))
		} else {
			closeRun()
			plan = append(plan, Request{Table: p.RegType, Start: p.Address, Count: uint16(w)})
			cur, first, end = &plan[len(plan)-1], len(refs), a+w
		}
		refs = append(refs, PointRef{Index: i, Offset: uint16(a - int(cur.Start))})
	}
	closeRun()
	return plan
}

// fits reports whether the point [a, a+w) can join the request that covers
// [cur.Start, end).
func fits(cur *Request, end, a, w int, table profile.RegType, q config.Quirks) bool {
	start := int(cur.Start)
	if q.OneRequestPerPoint {
		return a == start && a+w == end
	}
	maxCount, maxGap := planLimits(q, table)
	if a-end > maxGap {
		return false
	}
	return max(end, a+w)-start <= maxCount
}

// FormatPlan prints a device's read plan as a table, for `feederd plan`.
func FormatPlan(w io.Writer, dev *config.Device, plan []Request) error {
	link := ""
	if dev.Link != nil {
		link = fmt.Sprintf(" on %s (%s)", dev.Link.ID, dev.Link.URL)
	}
	if _, err := fmt.Fprintf(w, "device %s, unit %d%s: %d points in %d requests\n",
		dev.ID, dev.Unit, link, len(dev.Points), len(plan)); err != nil {
		return fmt.Errorf("write plan of %s: %w", dev.ID, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tFUNCTION\tFIRST\tLAST\tCOUNT\tPOINTS")
	var names strings.Builder
	for k, r := range plan {
		names.Reset()
		for j, ref := range r.Points {
			if j > 0 {
				names.WriteString(", ")
			}
			if ref.Index < len(dev.Points) {
				names.WriteString(dev.Points[ref.Index].Name)
			} else {
				fmt.Fprintf(&names, "#%d", ref.Index)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\n",
			k+1, r.function(), r.Start, r.last(), r.Count, names.String())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write plan of %s: %w", dev.ID, err)
	}
	return nil
}
