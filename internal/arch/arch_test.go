// Package arch holds one test: the README's Architecture table is the
// package map as it is. Each row names a package, what it owns and the
// project packages it may import; the test compares the last column with
// what `go list` reports, both ways, so the table cannot drift from the code.
package arch

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/feederd/feederd/"

// TestArchitectureTable checks every row of README's package table against
// the package's non-test imports.
func TestArchitectureTable(t *testing.T) {
	declared := readTable(t, "../../README.md")
	actual := goList(t)
	for pkg, imports := range actual {
		want, ok := declared[pkg]
		if !ok {
			t.Errorf("README's Architecture table has no row for %s (it imports %v)", pkg, imports)
			continue
		}
		if !slices.Equal(want, imports) {
			t.Errorf("README says %s may import %v; it imports %v", pkg, want, imports)
		}
	}
	for pkg := range declared {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("README's Architecture table names %s, which is not a package of the module", pkg)
		}
	}
}

// readTable parses the rows "| `internal/pkg` | owns | `a`, `b` |" of the
// table under "## Architecture": imports are named without "internal/", and
// a cell without backquotes ("nothing of ours") declares none.
func readTable(t *testing.T, path string) map[string][]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "\n## Architecture\n")
	if !ok {
		t.Fatal("README.md has no ## Architecture section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	out := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		ln := sc.Text()
		if !strings.HasPrefix(ln, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(ln, "|"), " | ")
		if len(cells) != 3 {
			t.Fatalf("README Architecture row has %d cells, want 3 (package | owns | may import): %s", len(cells), ln)
		}
		pkg := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if _, dup := out[pkg]; dup {
			t.Errorf("README Architecture table lists %s twice", pkg)
		}
		// Every other piece between backquotes is a name.
		imports := []string{}
		names := strings.Split(cells[2], "`")
		for i := 1; i < len(names); i += 2 {
			imports = append(imports, names[i])
		}
		slices.Sort(imports)
		out[pkg] = imports
	}
	if len(out) == 0 {
		t.Fatal("README's Architecture section has no package rows")
	}
	return out
}

// goList returns, for every package of the module with non-test Go files,
// its imports of other packages of the module, named as in the table.
func goList(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	out := map[string][]string{}
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(ln)
		pkg := strings.TrimPrefix(f[0], module)
		if pkg == "scripts" || strings.HasPrefix(pkg, "internal/arch") {
			continue
		}
		imports := []string{}
		for _, imp := range f[1:] {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				imports = append(imports, strings.TrimPrefix(rest, "internal/"))
			}
		}
		slices.Sort(imports)
		out[pkg] = imports
	}
	return out
}
