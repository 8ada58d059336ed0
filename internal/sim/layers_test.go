package sim

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/feederd/feederd"

// reach returns every package of this module that the package in dir
// imports, directly or not, with the package's own test imports (its
// dependencies' test imports do not count: they are not linked in).
func reach(t *testing.T, dir string) []string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var visit func(dir string, tests bool)
	visit = func(dir string, tests bool) {
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("read package %s: %v", dir, err)
		}
		imports := slices.Clone(p.Imports)
		if tests {
			imports = append(append(imports, p.TestImports...), p.XTestImports...)
		}
		for _, path := range imports {
			rel, ok := strings.CutPrefix(path, module+"/")
			if !ok || seen[path] {
				continue
			}
			seen[path] = true
			visit(filepath.Join(root, filepath.FromSlash(rel)), false)
		}
	}
	visit(dir, true)
	var out []string
	for path := range seen {
		out = append(out, path)
	}
	slices.Sort(out)
	return out
}

// TestImportDirection: rtusim's layers import downwards only. The device
// server knows nothing of physics or of this package, the physics nothing
// of this package (config, scenarios, control API), and the shared test
// helpers none of them, so that every layer's tests can use them.
func TestImportDirection(t *testing.T) {
	const (
		top     = module + "/internal/sim"
		physics = top + "/physics"
		devsrv  = top + "/devsrv"
		simtest = top + "/simtest"
	)
	tests := []struct {
		dir       string
		forbidden []string
		required  []string
	}{
		{"devsrv", []string{top, physics}, []string{simtest}},
		{"physics", []string{top}, []string{devsrv}},
		{"simtest", []string{top, physics, devsrv}, nil},
		{".", nil, []string{physics, devsrv}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got := reach(t, tt.dir)
			for _, f := range tt.forbidden {
				if slices.Contains(got, f) {
					t.Errorf("%s imports %s (directly or not, tests included): %v", tt.dir, f, got)
				}
			}
			// The walk must see the imports that exist, or the check
			// above proves nothing.
			for _, r := range tt.required {
				if !slices.Contains(got, r) {
					t.Errorf("%s does not import %s: the walk missed it: %v", tt.dir, r, got)
				}
			}
		})
	}
}
