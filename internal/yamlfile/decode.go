package yamlfile

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// aliasBudget bounds the work that aliases can add to the decoding of one
// file, so that a document repeating large anchored lists ends in an error
// instead of exhausting time and memory. Without aliases every node is
// decoded once and the work is below the file's size.
const aliasBudget = 250_000

// decoder fills a raw struct from a yaml.Node by reflection on `yaml` tags.
// Unlike yaml.Node.Decode it rejects unknown and duplicate keys, does not
// truncate 1.5 into an integer, and reports every problem with its key path
// and line into a sink instead of stopping at the first.
type decoder struct {
	s        *Sink
	steps    int
	maxSteps int
	fields   map[reflect.Type]map[string]int // yamlFields, per struct type
}

// Decode parses data as one YAML document and decodes it into out (a
// pointer to a struct whose fields carry `yaml` tags). It returns false when
// the file could not be parsed at all; every problem is in s.
//
// Supported field types: structs, pointers, slices, map[string]T, strings,
// bools, signed and unsigned integers, float64, time.Duration (Go syntax),
// any type implementing encoding.TextUnmarshaler (from a scalar), and
// time.Time and interface values (as yaml.v3 decodes them).
func Decode(data []byte, out any, s *Sink) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			s.AddAt(1, "", nil, "the file is empty")
			return false
		}
		addSyntaxError(s, err)
		return false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		s.AddAt(extra.Line, "", nil, "only one YAML document is allowed")
		return false
	case !errors.Is(err, io.EOF):
		addSyntaxError(s, err)
		return false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		s.AddAt(max(root.Line, 1), "", nil, "the file is empty")
		return false
	}
	s.lines[""] = root.Line
	d := decoder{s: s, maxSteps: len(data) + aliasBudget, fields: map[reflect.Type]map[string]int{}}
	d.decode(root, reflect.ValueOf(out).Elem(), "")
	return true
}

// addSyntaxError turns "yaml: line 3: mapping values are not allowed in this
// context" into an Error on line 3.
func addSyntaxError(s *Sink, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, m
			}
		}
	}
	s.AddAt(line, "", err, "%s", msg)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores n into v. A null value leaves v as it is: an absent key and
// "key:" with nothing after it mean the same.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.steps++
	if d.steps > d.maxSteps {
		if d.steps == d.maxSteps+1 {
			d.s.Add(path, "the document is too large (too many aliases?)")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.s.Add(path, "invalid duration %q (use a Go duration such as 1s or 250ms)", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	if v.Type() == reflect.TypeFor[time.Time]() || v.Kind() == reflect.Interface {
		// As yaml.v3 reads them: RFC 3339 times; any value into an interface.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.s.Add(path, "want %s, got %s", wantOf(v.Type()), describe(n))
		}
		return
	}
	if v.Kind() != reflect.Pointer && v.Addr().Type().Implements(textUnmarshaler) {
		s, ok := d.scalar(n, path, "text")
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.s.Add(path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		// A value that did not decode stays absent, so that the checks
		// after decoding do not also report the zero value left in its
		// place.
		nv := reflect.New(v.Type().Elem())
		before := len(d.s.errs)
		d.decode(n, nv.Elem(), path)
		if len(d.s.errs) == before {
			v.Set(nv)
		}
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.s.Add(path, "want a list, got %s", describe(n))
			return
		}
		sl := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := IndexPath(path, i)
			d.s.lines[p] = c.Line
			d.decode(c, sl.Index(i), p)
		}
		v.Set(sl)
	case reflect.Map:
		d.stringMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		var b bool
		if d.typed(n, path, &b, "true or false", "!!bool") {
			v.SetBool(b)
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		var i int64
		if !d.typed(n, path, &i, "an integer", "!!int") {
			return
		}
		if v.OverflowInt(i) {
			d.s.Add(path, "%d is out of range for %s", i, v.Type())
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && strings.HasPrefix(n.Value, "-") {
			d.s.Add(path, "%s is out of range for %s", n.Value, v.Type())
			return
		}
		var u uint64
		if !d.typed(n, path, &u, "an integer", "!!int") {
			return
		}
		if v.OverflowUint(u) {
			d.s.Add(path, "%d is out of range for %s", u, v.Type())
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		var f float64
		if !d.typed(n, path, &f, "a number", "!!int", "!!float") {
			return
		}
		// No value in the schema means anything when it is not a number
		// (.nan) or infinite (.inf): such a value would reach the poll
		// arithmetic and the detectors as NaN.
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.s.Add(path, "must be a finite number, got %v", f)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable through a raw struct field of an unsupported type,
		// which the tests would catch; report it rather than panic.
		d.s.Add(path, "internal error: cannot decode into %s", v.Type())
	}
}

// mapping decodes a mapping into a struct, field by field via `yaml` tags.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.s.Add(path, "want a mapping, got %s", describe(n))
		return
	}
	fields, ok := d.fields[v.Type()]
	if !ok {
		fields = yamlFields(v.Type())
		d.fields[v.Type()] = fields
	}
	d.entries(n, path, func(k, val *yaml.Node, p string) {
		if k.Value == "<<" {
			d.s.AddAt(k.Line, p, nil, "merge keys are not supported")
			return
		}
		fi, ok := fields[k.Value]
		if !ok {
			hint := suggest(k.Value, fields)
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if hint != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", hint)
			}
			d.s.AddAt(k.Line, p, nil, "%s", msg)
			if hint != "" && !hasKey(n, hint) {
				// The misspelt key is why the suggested one is missing:
				// do not also report that one as required.
				d.s.seen[JoinPath(path, hint)] = true
			}
			return
		}
		d.s.lines[p] = k.Line
		d.decode(val, v.Field(fi), p)
	})
}

// entries calls fn for each key of mapping n with its value and path,
// after reporting, and skipping, keys that are not plain strings and
// repeated keys.
func (d *decoder) entries(n *yaml.Node, path string, fn func(k, val *yaml.Node, p string)) {
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.s.AddAt(k.Line, path, nil, "keys must be plain strings")
			continue
		}
		p := JoinPath(path, k.Value)
		if l, dup := first[k.Value]; dup {
			d.s.AddAt(k.Line, p, nil, "duplicate key (first at line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		fn(k, val, p)
	}
}

func hasKey(mapping *yaml.Node, key string) bool {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return true
		}
	}
	return false
}

// stringMap decodes a mapping of scalars into a map[string]string.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.s.Add(path, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.entries(n, path, func(k, val *yaml.Node, p string) {
		d.s.lines[p] = k.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, ev, p)
		m.SetMapIndex(reflect.ValueOf(k.Value), ev)
	})
	v.Set(m)
}

// scalar returns the text of a scalar node; any scalar is accepted as a
// string, so that "feeder: 101" means "101".
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.s.Add(path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// typed decodes a scalar whose resolved tag is one of tags.
func (d *decoder) typed(n *yaml.Node, path string, out any, want string, tags ...string) bool {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		d.s.Add(path, "want %s, got %s", want, describe(n))
		return false
	}
	// Plain decimal numbers and booleans, nearly all of them, are parsed
	// here; yaml.Node.Decode, which sets up a decoder per call, takes the
	// other spellings (0x1F, 0o17, .inf, True).
	var err error
	switch out := out.(type) {
	case *int64:
		*out, err = strconv.ParseInt(n.Value, 10, 64)
	case *uint64:
		*out, err = strconv.ParseUint(n.Value, 10, 64)
	case *float64:
		*out, err = strconv.ParseFloat(n.Value, 64)
	case *bool:
		*out, err = strconv.ParseBool(n.Value)
	}
	if err == nil {
		return true
	}
	if err := n.Decode(out); err != nil {
		d.s.Add(path, "want %s, got %s", want, describe(n))
		return false
	}
	return true
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// wantOf names what a value of type t is written as.
func wantOf(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "a time such as 2026-11-28T10:00:00Z"
	}
	return "a value"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// yamlFields maps the `yaml` tag names of a struct type to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// suggest returns the known key closest to an unknown one, if it is close.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if dist := editDistance(key, f); dist < bestDist || dist == bestDist && best != "" && f < best {
			best, bestDist = f, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
