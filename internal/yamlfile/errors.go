// Package yamlfile decodes one YAML document into a Go struct strictly and
// reports every problem of the file, not the first, as
// "file:line: key.path: message", sorted by line. feederd's configuration
// and profiles (internal/config) and rtusim's configuration and scenarios
// (internal/sim) are read through it, so both speak the same way.
//
// Decode rejects unknown and duplicate keys (suggesting the nearest known
// key), merge keys, more than one document, integers written as 1.5, NaN
// and infinities, and aliases that would blow up the work. A Sink collects
// the errors of one file with the line of every key path the decoder saw,
// so that checks after decoding (a value out of range, a missing key) are
// reported at the right line too.
package yamlfile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a file, located by line and key path.
type Error struct {
	File string // the path as the caller gave it, or as resolved from it
	Line int    // 1-based; 0 when unknown
	Path string // key path such as devices[3].points[1].type; "" for the whole file
	Msg  string
	// Err is the underlying cause (a file read error), if any.
	Err error
}

// Error formats as "file:line: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one load, each file's sorted by line.
type Errors []Error

// Error joins the errors with newlines.
func (e *Errors) Error() string {
	var b strings.Builder
	for i := range *e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString((*e)[i].Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every Error.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(*e))
	for i := range *e {
		out[i] = &(*e)[i]
	}
	return out
}

// Sink collects the errors of one file and knows the line of every key path
// that the decoder saw. It is not safe for concurrent use.
type Sink struct {
	file  string
	lines map[string]int
	errs  []Error
	// seen holds the paths that already have an error: the first error at a
	// path wins, so a value that failed to decode is not also "required".
	seen map[string]bool
}

// NewSink returns a Sink for the file named file in messages.
func NewSink(file string) *Sink {
	return &Sink{file: file, lines: map[string]int{}, seen: map[string]bool{}}
}

// Add records an error at path, on the line of path or of its nearest
// ancestor that is in the file. Only the first error at a path is kept.
func (s *Sink) Add(path, format string, args ...any) {
	s.AddAt(s.Line(path), path, nil, format, args...)
}

// AddErr is Add with an underlying cause.
func (s *Sink) AddErr(path string, cause error, format string, args ...any) {
	s.AddAt(s.Line(path), path, cause, format, args...)
}

// AddAt records an error at an explicit line (0: unknown).
func (s *Sink) AddAt(line int, path string, cause error, format string, args ...any) {
	if s.seen[path] {
		return
	}
	s.seen[path] = true
	s.errs = append(s.errs, Error{File: s.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// Line returns the line of path, or of its nearest ancestor that the file
// has (a missing key is reported on the line of the mapping that lacks it).
func (s *Sink) Line(path string) int {
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = ParentPath(path)
	}
}

// Has reports whether the file has the key path (the decoder saw it).
func (s *Sink) Has(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// SetLine records the line of a key path that the caller found itself.
func (s *Sink) SetLine(path string, line int) { s.lines[path] = line }

// Len returns the number of errors so far.
func (s *Sink) Len() int { return len(s.errs) }

// HasErrorUnder reports whether there is an error at path or below it.
func (s *Sink) HasErrorUnder(path string) bool {
	return slices.ContainsFunc(s.errs, func(e Error) bool {
		return e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(e.Path, path+"[")
	})
}

// Err returns the errors as *Errors, sorted by line, or nil.
func (s *Sink) Err() error {
	if len(s.errs) == 0 {
		return nil
	}
	errs := Errors(s.Sorted())
	return &errs
}

// Sorted returns the errors ordered by line, keeping the order of errors on
// the same line.
func (s *Sink) Sorted() []Error {
	out := slices.Clone(s.errs)
	slices.SortStableFunc(out, func(a, b Error) int { return a.Line - b.Line })
	return out
}

// ParentPath is the key path above path: "a.b[2]" -> "a.b" -> "a" -> "".
func ParentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// JoinPath appends a mapping key to a key path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IndexPath appends a list index to a key path.
func IndexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
