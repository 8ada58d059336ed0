// Package grid is the topology of distribution feeders that feederd and
// rtusim share: a feeder is a tree rooted at its source (the substation
// breaker), whose nodes are the devices and line sections on it. feederd
// places outages and counts customers on it; rtusim runs its feeder physics
// and protection on the same shape, so a simulated feeder and the feeder
// feederd believes in cannot disagree about what lies downstream of what.
package grid

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Kind is what a node is. The device kinds are the strings of
// config.DeviceKind.
type Kind string

const (
	KindBreaker       Kind = "breaker"
	KindRecloser      Kind = "recloser"
	KindSectionalizer Kind = "sectionalizer"
	KindSwitch        Kind = "switch"
	KindSensor        Kind = "sensor"
	KindMeter         Kind = "meter"
	// KindSection is a stretch of line with load and no device. feederd's
	// configuration lists devices only, so FromModel never makes one;
	// rtusim's topology has them so that faults have somewhere to happen.
	KindSection Kind = "section"
)

// Kinds lists every kind, for messages and documentation.
var Kinds = []Kind{KindBreaker, KindRecloser, KindSectionalizer, KindSwitch, KindSensor, KindMeter, KindSection}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindBreaker, KindRecloser, KindSectionalizer, KindSwitch, KindSensor, KindMeter, KindSection:
		return true
	}
	return false
}

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

// Section is the load a node serves: the customers connected between it
// and the next nodes downstream.
type Section struct {
	// LoadKW is the three-phase load at its daily peak.
	LoadKW    float64
	Customers int
	// Critical counts the customers among Customers that need priority
	// restoration (hospital, life support, water).
	Critical int
}

// Node is one device or section of a feeder.
type Node struct {
	ID   string
	Kind Kind
	// Parent indexes Feeder.Nodes; -1 for the root.
	Parent int
	// Children index Feeder.Nodes, in the order the nodes were given.
	Children []int
	Section  Section
}

// NodeSpec describes a node for NewFeeder.
type NodeSpec struct {
	ID   string
	Kind Kind
	// Upstream is the ID of the parent node; "" for the root.
	Upstream string
	Section  Section
}

// Feeder is one radial feeder: a tree of nodes with exactly one root. It
// never changes after NewFeeder and is safe for concurrent reads.
type Feeder struct {
	ID string
	// Nodes are in the order of the specs given to NewFeeder.
	Nodes []Node
	index map[string]int
}

// Error is one problem NewFeeder found, attributed to a spec so that
// configuration loaders can point at the file line.
type Error struct {
	Feeder string
	// Node indexes the specs given to NewFeeder; -1 for the feeder as a
	// whole.
	Node int
	// Key is the spec field at fault: "id", "kind", "upstream" or
	// "section"; "" for the feeder as a whole.
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Node < 0 {
		return fmt.Sprintf("feeder %s: %s", e.Feeder, e.Msg)
	}
	return fmt.Sprintf("feeder %s: node %d %s: %s", e.Feeder, e.Node, e.Key, e.Msg)
}

// NewFeeder builds a feeder from its nodes. It checks that every node has a
// unique ID and a known kind, that every upstream names a node of this
// feeder, that the upstream links form no cycle, and that exactly one node
// has no upstream. The errors are *Error values joined with errors.Join.
func NewFeeder(id string, specs []NodeSpec) (*Feeder, error) {
	f := &Feeder{ID: id, Nodes: make([]Node, len(specs)), index: make(map[string]int, len(specs))}
	var errs []error
	bad := func(node int, key, format string, args ...any) {
		errs = append(errs, &Error{Feeder: id, Node: node, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if id == "" {
		bad(-1, "", "feeder has no ID")
	}
	if len(specs) == 0 {
		bad(-1, "", "no nodes")
		return nil, errors.Join(errs...)
	}
	for i, s := range specs {
		f.Nodes[i] = Node{ID: s.ID, Kind: s.Kind, Parent: -1, Section: s.Section}
		switch _, dup := f.index[s.ID]; {
		case s.ID == "":
			bad(i, "id", "missing")
		case dup:
			bad(i, "id", "node %s is defined twice", s.ID)
		default:
			f.index[s.ID] = i
		}
		if !s.Kind.Valid() {
			bad(i, "kind", "%q is not one of %s", s.Kind, kindList())
		}
		sec := s.Section
		switch {
		case sec.LoadKW < 0 || math.IsNaN(sec.LoadKW) || math.IsInf(sec.LoadKW, 0):
			bad(i, "section", "load %g kW is negative or not a number", sec.LoadKW)
		case sec.Customers < 0 || sec.Critical < 0:
			bad(i, "section", "customers %d, critical %d: negative", sec.Customers, sec.Critical)
		case sec.Critical > sec.Customers:
			bad(i, "section", "%d critical customers of %d customers", sec.Critical, sec.Customers)
		}
	}
	var roots []int
	for i, s := range specs {
		if s.Upstream == "" {
			roots = append(roots, i)
			continue
		}
		p, ok := f.index[s.Upstream]
		switch {
		case !ok:
			bad(i, "upstream", "no node %q on feeder %s", s.Upstream, id)
		default:
			f.Nodes[i].Parent = p
		}
	}
	if len(roots) > 1 {
		ids := make([]string, len(roots))
		for k, r := range roots {
			ids[k] = specs[r].ID
		}
		bad(roots[1], "upstream", "%d nodes without upstream (%s): exactly one is the source", len(roots), strings.Join(ids, ", "))
	}
	// Cycles: follow parents from every node not yet settled; meeting a
	// node of the current walk closes a cycle, reported at its first node in
	// spec order.
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(specs))
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
			bad(first, "upstream", "upstream cycle %s", strings.Join(ids, " -> "))
		}
		for _, k := range walk {
			state[k] = done
		}
	}
	if len(roots) == 0 && len(errs) == 0 {
		bad(-1, "", "no node without upstream: a feeder needs a source")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, n := range f.Nodes {
		if n.Parent >= 0 {
			f.Nodes[n.Parent].Children = append(f.Nodes[n.Parent].Children, i)
		}
	}
	return f, nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Root returns the index of the source node.
func (f *Feeder) Root() int {
	for i, n := range f.Nodes {
		if n.Parent < 0 {
			return i
		}
	}
	return -1 // unreachable: NewFeeder guarantees a root
}

// Lookup returns the index of the node with that ID.
func (f *Feeder) Lookup(id string) (int, bool) {
	i, ok := f.index[id]
	return i, ok
}

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

// Load returns the peak load (kW), customers and critical customers of the
// sections of node i and everything below it.
func (f *Feeder) Load(i int) Section {
	var s Section
	for _, n := range f.Downstream(i) {
		sec := f.Nodes[n].Section
		s.LoadKW += sec.LoadKW
		s.Customers += sec.Customers
		s.Critical += sec.Critical
	}
	return s
}
