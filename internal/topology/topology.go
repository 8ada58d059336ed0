// Package topology is the one model of the distribution network that
// feederd's configuration, detection, outage logic and rtusim share: feeders,
// each a tree of nodes (devices, and for rtusim line sections) rooted at its
// source, the sections of customers each device feeds, and the normally open
// tie switches between feeders. It exists so that the rules of that shape
// (one source per feeder, no cycles, every section fed, a customer in one
// section only, ties between feeders) are written and checked once, and so
// that a simulated feeder, the feeder feederd believes in and the tree
// detection walks cannot disagree about what lies downstream of what.
//
// It depends on nothing else of feederd's: configuration loaders build a
// Spec, New checks and builds the Topology, and its errors name the spec
// field at fault so that each loader can point at its own file line.
package topology

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind is what a node is.
type Kind string

const (
	KindBreaker       Kind = "breaker"
	KindRecloser      Kind = "recloser"
	KindSectionalizer Kind = "sectionalizer"
	KindSwitch        Kind = "switch"
	KindSensor        Kind = "sensor"
	KindMeter         Kind = "meter"
	// KindSection is a stretch of line with load and no device. feederd's
	// configuration has devices only; rtusim's feeders have sections so
	// that faults have somewhere to happen.
	KindSection Kind = "section"
)

// Kinds lists every kind, for messages and documentation.
var Kinds = []Kind{KindBreaker, KindRecloser, KindSectionalizer, KindSwitch, KindSensor, KindMeter, KindSection}

// Valid reports whether k is one of the kinds above. New does not check
// kinds: which of them a file may use is its loader's rule.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Switching reports whether a node of kind k can open: everything below an
// open switching node is cut off from the source.
func (k Kind) Switching() bool {
	switch k {
	case KindBreaker, KindRecloser, KindSectionalizer, KindSwitch:
		return true
	}
	return false
}

// Protective reports whether k interrupts fault current by itself: a
// breaker (through its relay) or a recloser. Sectionalizers count the
// interruptions of the device upstream and open while the line is dead.
func (k Kind) Protective() bool { return k == KindBreaker || k == KindRecloser }

// CriticalKind says why a customer is critical.
type CriticalKind string

// The kinds of critical customers.
const (
	CriticalHospital    CriticalKind = "hospital"
	CriticalLifeSupport CriticalKind = "life_support"
	CriticalWater       CriticalKind = "water"
	CriticalEmergency   CriticalKind = "emergency"
	CriticalOther       CriticalKind = "other"
)

// CriticalKinds lists every critical kind.
var CriticalKinds = []CriticalKind{CriticalHospital, CriticalLifeSupport, CriticalWater, CriticalEmergency, CriticalOther}

// CriticalCustomer is a customer who needs priority restoration.
type CriticalCustomer struct {
	Name string       `json:"name"`
	Kind CriticalKind `json:"kind"`
}

// Spec is what a loader read: the nodes of every feeder in one list, and per
// feeder its sections and ties. Error paths name its fields: "nodes", i,
// "upstream"; "feeders", i, "sections", j, "critical", k, "name".
type Spec struct {
	// Noun is what the nodes are called in messages: "device" (feederd,
	// whose nodes are its devices) or "node" (rtusim). Default "node".
	Noun  string
	Nodes []NodeSpec
	// Feeders add sections and ties to the feeders the nodes are on; a
	// feeder no node is on is an error.
	Feeders []FeederSpec
	// Locate renders the place of an earlier definition in messages about
	// a duplicate ("line 12"); nil renders its path ("nodes[3].id").
	Locate func(path []any) string
}

// NodeSpec is one node.
type NodeSpec struct {
	ID     string
	Feeder string
	Kind   Kind
	// Upstream is the ID of the parent node; "" for the feeder's source.
	Upstream string
}

// FeederSpec is what a feeder has beyond its nodes.
type FeederSpec struct {
	ID       string
	Sections []SectionSpec
	Ties     []TieSpec
}

// SectionSpec is load served through one node.
type SectionSpec struct {
	ID string
	// FedBy is the node the section hangs below: it is out while that node
	// is de-energized or open.
	FedBy string
	// Customers is required: nil is an error.
	Customers *int
	Critical  []CriticalCustomer
}

// TieSpec is a normally open switch of another feeder that can feed a node
// of this one.
type TieSpec struct {
	// Device is the tie switch, on another feeder.
	Device string
	// To is the node of this feeder whose input the tie feeds.
	To string
}

// Topology is every feeder. It never changes after New and is safe for
// concurrent reads.
type Topology struct {
	// Feeders in the order their first node was given.
	Feeders []*Feeder
	// refs[i] is where Spec.Nodes[i] went.
	refs     []Ref
	byID     map[string]Ref
	byFeeder map[string]int
}

// Ref names a node: Topology.Feeders[Feeder].Nodes[Node].
type Ref struct{ Feeder, Node int }

// Feeder is one radial feeder: a tree of nodes with exactly one root.
type Feeder struct {
	ID string
	// Nodes are in the order of the spec.
	Nodes    []Node
	Sections []Section
	// Ties are the tie switches of other feeders that can feed nodes of
	// this one.
	Ties  []Tie
	root  int
	index map[string]int
	nt    int
}

// Node is one device or line section of a feeder.
type Node struct {
	ID   string
	Kind Kind
	// Spec indexes Spec.Nodes: for feederd, the device's index in its
	// configuration.
	Spec int
	// Parent indexes Feeder.Nodes; -1 for the root.
	Parent int
	// Children index Feeder.Nodes, in spec order.
	Children []int
	// Sections index Feeder.Sections: those the node feeds.
	Sections []int
	// Ties are the tie switches (on other feeders) that can feed this
	// node's input; TieTo the nodes (on other feeders) this tie switch
	// can feed.
	Ties, TieTo []Ref
}

// Section is load served through one node.
type Section struct {
	ID string
	// FedBy indexes Feeder.Nodes.
	FedBy     int
	Customers int
	Critical  []CriticalCustomer
}

// Tie is a normally open switch of another feeder that can feed node To of
// this one.
type Tie struct {
	Switch Ref
	To     int
}

// Error is one problem New found, at a field of the Spec.
type Error struct {
	// Path names the field: "nodes", 3, "upstream"; "feeders", 0, "ties",
	// 1, "device".
	Path []any
	Msg  string
	// First is the path of the earlier definition a duplicate clashes
	// with, nil for other problems.
	First []any
}

func (e *Error) Error() string { return PathString(e.Path) + ": " + e.Msg }

// Errors is every problem New found, in the order of the spec.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// PathString renders a path as feeders[0].sections[1].id.
func PathString(p []any) string {
	var b strings.Builder
	for _, e := range p {
		switch v := e.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		case int:
			b.WriteString("[" + strconv.Itoa(v) + "]")
		}
	}
	return b.String()
}

// builder holds New's working state.
type builder struct {
	spec *Spec
	noun string
	errs Errors
	t    *Topology
	// firstNode and firstFeeder are the spec indexes of the first node
	// and feeder spec with each ID.
	firstNode   map[string]int
	firstFeeder map[string]int
	// feederless holds the IDs of nodes on no feeder (an error already):
	// naming one is not also an unknown node.
	feederless map[string]bool
}

func (b *builder) bad(path []any, format string, args ...any) {
	b.errs = append(b.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) dup(path, first []any, format string, args ...any) {
	where := PathString(first)
	if b.spec.Locate != nil {
		where = b.spec.Locate(first)
	}
	args = append(args, where)
	b.errs = append(b.errs, &Error{Path: path, First: first, Msg: fmt.Sprintf(format, args...)})
}

func at(p ...any) []any { return p }

// New checks a Spec and builds its Topology: node IDs are unique across
// feeders; every upstream names a node of the same feeder; upstream links
// form no cycle; every feeder has exactly one node without upstream; every
// feeder spec names a feeder some node is on; section IDs are unique, each
// section is fed by a node of its feeder and has no more critical
// customers than customers; a critical customer is in one section only; a
// tie comes from a node of another feeder to a node of this one. All
// problems come back at once as Errors.
func New(spec Spec) (*Topology, error) {
	b := &builder{spec: &spec, noun: spec.Noun, firstNode: make(map[string]int, len(spec.Nodes)), firstFeeder: map[string]int{}, feederless: map[string]bool{}}
	if b.noun == "" {
		b.noun = "node"
	}
	t := &Topology{refs: make([]Ref, len(spec.Nodes)), byID: make(map[string]Ref, len(spec.Nodes)), byFeeder: map[string]int{}}
	b.t = t
	b.nodes()
	b.trees()
	b.feeders()
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	for _, f := range t.Feeders {
		for i, n := range f.Nodes {
			if n.Parent >= 0 {
				f.Nodes[n.Parent].Children = append(f.Nodes[n.Parent].Children, i)
			}
		}
		for s, sec := range f.Sections {
			f.Nodes[sec.FedBy].Sections = append(f.Nodes[sec.FedBy].Sections, s)
			f.nt += sec.Customers
		}
	}
	for fi, f := range t.Feeders {
		for _, tie := range f.Ties {
			f.Nodes[tie.To].Ties = append(f.Nodes[tie.To].Ties, tie.Switch)
			sw := &t.Feeders[tie.Switch.Feeder].Nodes[tie.Switch.Node]
			sw.TieTo = append(sw.TieTo, Ref{fi, tie.To})
		}
	}
	return t, nil
}

// nodes places every node on its feeder.
func (b *builder) nodes() {
	t := b.t
	for i, n := range b.spec.Nodes {
		t.refs[i] = Ref{-1, -1}
		first, dup := b.firstNode[n.ID]
		switch {
		case n.ID == "":
			b.bad(at("nodes", i, "id"), "required")
		case dup:
			b.dup(at("nodes", i, "id"), at("nodes", first, "id"), "duplicate %s id %q (first at %s)", b.noun, n.ID)
		default:
			b.firstNode[n.ID] = i
		}
		if n.Feeder == "" {
			b.bad(at("nodes", i, "feeder"), "required")
			if !dup {
				b.feederless[n.ID] = true
			}
			continue
		}
		fi, ok := t.byFeeder[n.Feeder]
		if !ok {
			fi = len(t.Feeders)
			t.byFeeder[n.Feeder] = fi
			t.Feeders = append(t.Feeders, &Feeder{ID: n.Feeder, index: map[string]int{}, root: -1})
		}
		f := t.Feeders[fi]
		ref := Ref{fi, len(f.Nodes)}
		f.Nodes = append(f.Nodes, Node{ID: n.ID, Kind: n.Kind, Spec: i, Parent: -1})
		t.refs[i] = ref
		if n.ID != "" && !dup {
			t.byID[n.ID] = ref
			f.index[n.ID] = ref.Node
		}
	}
}

// trees links every node to its parent, then checks for one root per
// feeder and for cycles.
func (b *builder) trees() {
	t := b.t
	roots := make([][]int, len(t.Feeders))
	for i, n := range b.spec.Nodes {
		ref := t.refs[i]
		if ref.Feeder < 0 {
			continue
		}
		f := t.Feeders[ref.Feeder]
		if n.Upstream == "" {
			roots[ref.Feeder] = append(roots[ref.Feeder], ref.Node)
			continue
		}
		up, ok := t.byID[n.Upstream]
		switch {
		case !ok && b.feederless[n.Upstream]:
		case !ok:
			b.bad(at("nodes", i, "upstream"), "unknown %s %q", b.noun, n.Upstream)
		case up.Feeder != ref.Feeder:
			b.bad(at("nodes", i, "upstream"), "%s %q is on feeder %q, not %q", b.noun, n.Upstream, t.Feeders[up.Feeder].ID, f.ID)
		default:
			f.Nodes[ref.Node].Parent = up.Node
		}
	}
	for fi, f := range t.Feeders {
		r := roots[fi]
		if len(r) == 1 {
			f.root = r[0]
		}
		if len(r) > 1 {
			ids := make([]string, len(r))
			for k, n := range r {
				ids[k] = f.Nodes[n].ID
			}
			b.bad(at("nodes", f.Nodes[r[1]].Spec, "upstream"), "feeder %s has %d %ss without upstream (%s): exactly one is its source",
				f.ID, len(r), b.noun, strings.Join(ids, ", "))
		}
		b.cycles(f)
	}
}

// cycles follows parents from every node not yet settled; meeting a node of
// the current walk closes a cycle, reported at its first node in spec order.
// A feeder without a root always has a cycle (or a bad upstream, reported).
func (b *builder) cycles(f *Feeder) {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(f.Nodes))
	for i := range f.Nodes {
		var walk []int
		j := i
		for j >= 0 && state[j] == unvisited {
			state[j] = onPath
			walk = append(walk, j)
			j = f.Nodes[j].Parent
		}
		if j >= 0 && state[j] == onPath {
			first := j
			for k := f.Nodes[j].Parent; k != j; k = f.Nodes[k].Parent {
				first = min(first, k)
			}
			ids := []string{f.Nodes[first].ID}
			for k := f.Nodes[first].Parent; ; k = f.Nodes[k].Parent {
				ids = append(ids, f.Nodes[k].ID)
				if k == first {
					break
				}
			}
			b.bad(at("nodes", f.Nodes[first].Spec, "upstream"), "upstream cycle %s", strings.Join(ids, " -> "))
		}
		for _, k := range walk {
			state[k] = done
		}
	}
}

// feeders adds the sections and ties of the feeder specs.
func (b *builder) feeders() {
	t := b.t
	// Where each section ID and critical customer name was first given:
	// feeder spec, section (and critical) index.
	firstSection := map[string][2]int{}
	firstCustomer := map[string][3]int{}
	for i, fs := range b.spec.Feeders {
		p := at("feeders", i)
		var f *Feeder
		fi, known := t.byFeeder[fs.ID]
		switch first, dup := b.firstFeeder[fs.ID]; {
		case fs.ID == "":
			b.bad(append(p, "id"), "required")
		case dup:
			b.dup(append(p, "id"), at("feeders", first, "id"), "duplicate feeder %q (first at %s)", fs.ID)
		case !known:
			b.bad(append(p, "id"), "no %s is on feeder %q", b.noun, fs.ID)
		default:
			b.firstFeeder[fs.ID] = i
			f = t.Feeders[fi]
		}
		// node finds the node named at path, on this feeder or (tie
		// switches) on another.
		node := func(id string, same bool, path ...any) (Ref, bool) {
			ref, ok := t.byID[id]
			switch {
			case id == "":
				b.bad(at(path...), "required")
			case !ok && b.feederless[id]:
			case !ok:
				b.bad(at(path...), "unknown %s %q", b.noun, id)
			case fs.ID == "":
			case same && t.Feeders[ref.Feeder].ID != fs.ID:
				b.bad(at(path...), "%s %q is on feeder %q, not %q", b.noun, id, t.Feeders[ref.Feeder].ID, fs.ID)
			case !same && t.Feeders[ref.Feeder].ID == fs.ID:
				b.bad(at(path...), "%s %q is on this feeder: a tie comes from another feeder", b.noun, id)
			default:
				return ref, true
			}
			return Ref{}, false
		}
		for j, ss := range fs.Sections {
			sp := func(key string) []any { return at("feeders", i, "sections", j, key) }
			sec := Section{ID: ss.ID, FedBy: -1}
			switch first, dup := firstSection[ss.ID]; {
			case ss.ID == "":
				b.bad(sp("id"), "required")
			case dup:
				b.dup(sp("id"), at("feeders", first[0], "sections", first[1], "id"), "duplicate section id %q (first at %s)", ss.ID)
			default:
				firstSection[ss.ID] = [2]int{i, j}
			}
			if ref, ok := node(ss.FedBy, true, "feeders", i, "sections", j, "fed_by"); ok {
				sec.FedBy = ref.Node
			}
			switch {
			case ss.Customers == nil:
				b.bad(sp("customers"), "required")
			case *ss.Customers < 0:
				b.bad(sp("customers"), "%d is negative", *ss.Customers)
			default:
				sec.Customers = *ss.Customers
			}
			if ss.Customers != nil && len(ss.Critical) > max(*ss.Customers, 0) {
				b.bad(sp("critical"), "%d critical customers but %d customers", len(ss.Critical), *ss.Customers)
			}
			for k, c := range ss.Critical {
				cp := func(key string) []any { return at("feeders", i, "sections", j, "critical", k, key) }
				switch first, dup := firstCustomer[c.Name]; {
				case c.Name == "":
					b.bad(cp("name"), "required")
				case dup:
					b.dup(cp("name"), at("feeders", first[0], "sections", first[1], "critical", first[2], "name"),
						"customer %q is already in a section (%s): a customer is in one section only", c.Name)
				default:
					firstCustomer[c.Name] = [3]int{i, j, k}
				}
				if !slices.Contains(CriticalKinds, c.Kind) {
					b.bad(cp("kind"), "unknown kind %q (want %s)", c.Kind, criticalKindList())
				}
			}
			sec.Critical = slices.Clone(ss.Critical)
			if f != nil && sec.FedBy >= 0 {
				f.Sections = append(f.Sections, sec)
			}
		}
		for j, ts := range fs.Ties {
			sw, ok1 := node(ts.Device, false, "feeders", i, "ties", j, "device")
			to, ok2 := node(ts.To, true, "feeders", i, "ties", j, "to")
			if f != nil && ok1 && ok2 {
				f.Ties = append(f.Ties, Tie{Switch: sw, To: to.Node})
			}
		}
	}
}

func criticalKindList() string {
	s := make([]string, len(CriticalKinds))
	for i, k := range CriticalKinds {
		s[i] = string(k)
	}
	return strings.Join(s, " | ")
}

// Feeder returns the feeder with that ID, or nil.
func (t *Topology) Feeder(id string) *Feeder {
	i, ok := t.byFeeder[id]
	if !ok {
		return nil
	}
	return t.Feeders[i]
}

// Lookup returns where the node with that ID is.
func (t *Topology) Lookup(id string) (Ref, bool) {
	r, ok := t.byID[id]
	return r, ok
}

// Ref returns where Spec.Nodes[i] is.
func (t *Topology) Ref(i int) (Ref, bool) {
	if i < 0 || i >= len(t.refs) {
		return Ref{}, false
	}
	return t.refs[i], true
}

// Node returns the node r names.
func (t *Topology) Node(r Ref) *Node { return &t.Feeders[r.Feeder].Nodes[r.Node] }

// Root returns the index of the source node.
func (f *Feeder) Root() int { return f.root }

// Lookup returns the index of the node with that ID.
func (f *Feeder) Lookup(id string) (int, bool) {
	i, ok := f.index[id]
	return i, ok
}

// Customers returns the customers of the feeder's sections (IEEE 1366 NT).
func (f *Feeder) Customers() int { return f.nt }

// Downstream returns node i and every node below it, depth first in child
// order, i first.
func (f *Feeder) Downstream(i int) []int {
	var out []int
	stack := []int{i}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, n)
		ch := f.Nodes[n].Children
		for k := len(ch) - 1; k >= 0; k-- {
			stack = append(stack, ch[k])
		}
	}
	return out
}

// PathToRoot returns node i, its parent, and so on up to the root.
func (f *Feeder) PathToRoot(i int) []int {
	var out []int
	for ; i >= 0; i = f.Nodes[i].Parent {
		out = append(out, i)
	}
	return out
}

// Spec returns a Spec that New builds this topology from again, with the
// nodes in their spec order. Shard uses it to build the topology of part of
// a configuration.
func (t *Topology) Spec() Spec {
	s := Spec{Nodes: make([]NodeSpec, len(t.refs))}
	for i, r := range t.refs {
		f := t.Feeders[r.Feeder]
		n := &f.Nodes[r.Node]
		s.Nodes[i] = NodeSpec{ID: n.ID, Feeder: f.ID, Kind: n.Kind}
		if n.Parent >= 0 {
			s.Nodes[i].Upstream = f.Nodes[n.Parent].ID
		}
	}
	for _, f := range t.Feeders {
		if len(f.Sections) == 0 && len(f.Ties) == 0 {
			continue
		}
		fs := FeederSpec{ID: f.ID}
		for _, sec := range f.Sections {
			fs.Sections = append(fs.Sections, SectionSpec{ID: sec.ID, FedBy: f.Nodes[sec.FedBy].ID,
				Customers: &sec.Customers, Critical: slices.Clone(sec.Critical)})
		}
		for _, tie := range f.Ties {
			fs.Ties = append(fs.Ties, TieSpec{Device: t.Node(tie.Switch).ID, To: f.Nodes[tie.To].ID})
		}
		s.Feeders = append(s.Feeders, fs)
	}
	return s
}
