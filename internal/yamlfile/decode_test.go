package yamlfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// level decodes from text, as sim.Duration and other TextUnmarshalers do.
type level int

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return fmt.Errorf("%q is neither low nor high", b)
	}
	return nil
}

type doc struct {
	Name   string            `yaml:"name"`
	Unit   uint8             `yaml:"unit"`
	Seed   *uint64           `yaml:"seed"`
	Small  int8              `yaml:"small"`
	Every  time.Duration     `yaml:"every"`
	Start  time.Time         `yaml:"start"`
	Level  level             `yaml:"level"`
	Values map[string]any    `yaml:"values"`
	Items  []item            `yaml:"items"`
	Labels map[string]string `yaml:"labels"`
}

type item struct {
	ID    string  `yaml:"id"`
	Ratio float64 `yaml:"ratio"`
}

// TestDecodeGood: every supported kind decodes to its exact value.
func TestDecodeGood(t *testing.T) {
	in := `name: F1
unit: 247
seed: 18446744073709551615
small: -128
every: 1m30s
start: 2026-11-28T10:00:00Z
level: high
values: {va: 7210.5, serial: "A-1", on: true}
items:
  - {id: a, ratio: 0.5}
labels: {site: north}
`
	s := NewSink("d.yaml")
	var d doc
	if !Decode([]byte(in), &d, s) || s.Err() != nil {
		t.Fatalf("decode: %v", s.Err())
	}
	if d.Name != "F1" || d.Unit != 247 || d.Seed == nil || *d.Seed != 18446744073709551615 || d.Small != -128 ||
		d.Every != 90*time.Second || !d.Start.Equal(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)) || d.Level != 2 ||
		d.Values["va"] != 7210.5 || d.Values["serial"] != "A-1" || d.Values["on"] != true ||
		len(d.Items) != 1 || d.Items[0] != (item{"a", 0.5}) || d.Labels["site"] != "north" {
		t.Errorf("decoded %+v", d)
	}
	if got := s.Line("items[0].ratio"); got != 10 {
		t.Errorf("line of items[0].ratio = %d, want 10", got)
	}
}

// TestDecodeBad: every problem of the file, each at its line and key path,
// sorted by line; decoding goes on after an error.
func TestDecodeBad(t *testing.T) {
	in := `name: [a]
unit: 300
small: 1.5
every: 10
start: yesterday
level: medium
itemz: []
items:
  - {id: a, ratio: .nan}
  - {id: b, id: c}
seed: -1
`
	s := NewSink("d.yaml")
	var d doc
	if !Decode([]byte(in), &d, s) {
		t.Fatal("the file parses; Decode must return true")
	}
	want := `d.yaml:1: name: want a string, got a list
d.yaml:2: unit: 300 is out of range for uint8
d.yaml:3: small: want an integer, got "1.5"
d.yaml:4: every: invalid duration "10" (use a Go duration such as 1s or 250ms)
d.yaml:5: start: want a time such as 2026-11-28T10:00:00Z, got "yesterday"
d.yaml:6: level: "medium" is neither low nor high
d.yaml:7: itemz: unknown key "itemz" (did you mean "items"?)
d.yaml:9: items[0].ratio: must be a finite number, got NaN
d.yaml:10: items[1].id: duplicate key (first at line 10)
d.yaml:11: seed: -1 is out of range for uint64`
	err := s.Err()
	if err == nil || err.Error() != want {
		t.Fatalf("errors:\n%v\nwant:\n%s", err, want)
	}
	var es *Errors
	if !errors.As(err, &es) || len(*es) != strings.Count(want, "\n")+1 {
		t.Errorf("errors.As(*Errors): %v", es)
	}
	if !s.HasErrorUnder("items") || s.HasErrorUnder("labels") {
		t.Error("HasErrorUnder")
	}
}

// TestDecodeFileLevel: an empty file, two documents, a syntax error.
func TestDecodeFileLevel(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "d.yaml:1: the file is empty",
		"name: a\n---\nname: b\n": "d.yaml:2: only one YAML document is allowed",
		"name: [a\n":              "d.yaml:1: did not find expected ',' or ']'",
	} {
		s := NewSink("d.yaml")
		var d doc
		if Decode([]byte(in), &d, s) {
			t.Errorf("%q: Decode returned true", in)
		}
		if err := s.Err(); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
}
