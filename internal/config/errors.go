package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration or profile file, located by line
// and key path.
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

// Errors is every problem found in one load: the configuration file's,
// sorted by line, then each profile file's, sorted by line.
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

// sink collects the errors of one file and knows the line of every key path
// that the decoder saw.
type sink struct {
	file  string
	lines map[string]int
	errs  []Error
	// seen holds the paths that already have an error: the first error at a
	// path wins, so a value that failed to decode is not also "required".
	seen map[string]bool
}

func newSink(file string) *sink {
	return &sink{file: file, lines: map[string]int{}, seen: map[string]bool{}}
}

// add records an error at path, on the line of path or of its nearest
// ancestor that is in the file.
func (s *sink) add(path, format string, args ...any) {
	s.addAt(s.line(path), path, nil, format, args...)
}

// addErr is add with an underlying cause.
func (s *sink) addErr(path string, cause error, format string, args ...any) {
	s.addAt(s.line(path), path, cause, format, args...)
}

func (s *sink) addAt(line int, path string, cause error, format string, args ...any) {
	if s.seen[path] {
		return
	}
	s.seen[path] = true
	s.errs = append(s.errs, Error{File: s.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// line returns the line of path, or of its nearest ancestor that the file
// has (a missing key is reported on the line of the mapping that lacks it).
func (s *sink) line(path string) int {
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// sorted returns the errors ordered by line, keeping the order of errors on
// the same line.
func (s *sink) sorted() []Error {
	out := slices.Clone(s.errs)
	slices.SortStableFunc(out, func(a, b Error) int { return a.Line - b.Line })
	return out
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
