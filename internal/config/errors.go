package config

import "github.com/feederd/feederd/internal/yamlfile"

// Error is one problem in a configuration or profile file, located by line
// and key path: "file:line: key.path: message".
type Error = yamlfile.Error

// Errors is every problem found in one load: the configuration file's,
// sorted by line, then each profile file's, sorted by line.
type Errors = yamlfile.Errors

// sink is yamlfile.Sink under the short names the loader uses.
type sink struct{ *yamlfile.Sink }

func newSink(file string) *sink { return &sink{yamlfile.NewSink(file)} }

func (s *sink) add(path, format string, args ...any) { s.Add(path, format, args...) }

func (s *sink) addErr(path string, cause error, format string, args ...any) {
	s.AddErr(path, cause, format, args...)
}

func (s *sink) addAt(line int, path string, cause error, format string, args ...any) {
	s.AddAt(line, path, cause, format, args...)
}

func (s *sink) line(path string) int { return s.Line(path) }

func (s *sink) sorted() []Error { return s.Sorted() }

// decodeFile decodes one YAML document strictly into out; see yamlfile.Decode.
func decodeFile(data []byte, out any, s *sink) bool { return yamlfile.Decode(data, out, s.Sink) }

func joinPath(path, key string) string { return yamlfile.JoinPath(path, key) }

func indexPath(path string, i int) string { return yamlfile.IndexPath(path, i) }
