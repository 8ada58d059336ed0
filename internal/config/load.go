// Package config turns feederd's YAML configuration and device profiles into
// one validated, immutable Model. It exists so that every mistake an operator
// can make in a file is found before anything starts, all at once, each with
// the file, line and key path that caused it ("check-config" runs only this).
package config

import (
	"fmt"
	"path/filepath"

	"github.com/feederd/feederd/internal/profile"
)

// LoadOptions are Load's dependencies.
type LoadOptions struct {
	// Getenv reads the variable named by influx.token_env. nil means an
	// empty environment: main passes os.Getenv.
	Getenv func(string) string
	// ReadFile reads the configuration, profile and token files. nil means
	// ReadFile: regular files of at most MaxFileSize bytes.
	ReadFile func(string) ([]byte, error)
}

// Load reads, validates and resolves the configuration file at path and the
// profile and token files it names. Validation errors come back as *Errors,
// every one of them, with file names as given (relative names joined to the
// configuration file's directory).
func Load(path string, opts LoadOptions) (*Model, error) {
	l := &loader{
		path:     path,
		dir:      filepath.Dir(path),
		getenv:   opts.Getenv,
		readFile: opts.ReadFile,
		d:        defaults(),
		s:        newSink(path),
	}
	if l.getenv == nil {
		l.getenv = func(string) string { return "" }
	}
	if l.readFile == nil {
		l.readFile = ReadFile
	}
	data, err := l.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	m := l.load(data)
	errs := Errors(l.s.sorted())
	for _, ps := range l.profileSinks {
		errs = append(errs, ps.sorted()...)
	}
	if len(errs) > 0 {
		return nil, &errs
	}
	return m, nil
}

type loader struct {
	path, dir    string
	getenv       func(string) string
	readFile     func(string) ([]byte, error)
	d            defaultValues
	s            *sink
	profileSinks []*sink
}

func (l *loader) load(data []byte) *Model {
	var raw rawConfig
	if !decodeFile(data, &raw, l.s) {
		return nil
	}
	m := &Model{Source: l.path, Profiles: map[string]*profile.Profile{}}
	broken := l.loadProfiles(raw.Profiles, m)
	m.Poll = l.poll(&raw.Poll)
	m.Influx = l.influx(raw.Influx)
	m.HTTP = l.http(&raw.HTTP)
	m.Detect = l.detection(&raw.Detect)
	m.Pipeline = l.pipeline(&raw.Pipeline)
	m.Alerting = l.alerting(raw.Alerting)
	links := l.links(raw.Links, m)
	l.devices(raw.Devices, m, links, broken)
	l.topology(raw.Feeders, m)
	l.sizes(&raw, m)
	l.memory(m)
	return m
}

// resolve makes a path from the file relative to the file's directory.
func (l *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}
