package config

import (
	"errors"
	"io/fs"
)

// The profiles list: the profile files the devices use.

// loadProfiles fills m.Profiles and returns the names of profiles whose
// files have errors, so that devices using them are not also told that the
// profile is unknown.
func (l *loader) loadProfiles(paths []string, m *Model) map[string]bool {
	broken := map[string]bool{}
	fileLine := map[string]int{}
	for i, rel := range paths {
		path := indexPath("profiles", i)
		if rel == "" {
			l.s.add(path, "empty path")
			continue
		}
		file := l.resolve(rel)
		if line, dup := fileLine[file]; dup {
			l.s.add(path, "profile file %q listed twice (first at line %d)", rel, line)
			continue
		}
		fileLine[file] = l.s.line(path)
		data, err := l.readFile(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				l.s.addErr(path, err, "profile file %q not found", rel)
			} else {
				l.s.addErr(path, err, "read profile file %q: %v", rel, err)
			}
			continue
		}
		p, ps := parseProfile(data, file, l.d)
		if ps.Len() > 0 {
			l.profileSinks = append(l.profileSinks, ps)
			if p != nil && p.Name != "" {
				broken[p.Name] = true
			}
			continue
		}
		if first, dup := m.Profiles[p.Name]; dup {
			l.s.add(path, "profile name %q is already used by %s", p.Name, first.Source)
			continue
		}
		m.Profiles[p.Name] = p
	}
	return broken
}
