package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEReference keeps the README's configuration and profile reference
// identical to the doc comments of rawConfig and rawProfile, which sit next
// to the code that decodes them.
func TestREADMEReference(t *testing.T) {
	src, err := os.ReadFile("raw.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{"// rawConfig is", "// rawProfile is"} {
		block := docExample(t, string(src), start)
		if !strings.Contains(string(readme), "```yaml\n"+block+"```\n") {
			t.Errorf("README.md does not carry the example of %q from raw.go verbatim; copy it:\n%s", start, block)
		}
	}
}

// docExample returns the indented example lines of the doc comment that
// begins with start, without the comment markers.
func docExample(t *testing.T, src, start string) string {
	i := strings.Index(src, start)
	if i < 0 {
		t.Fatalf("raw.go has no comment %q", start)
	}
	var b strings.Builder
	for _, ln := range strings.Split(src[i:], "\n") {
		if !strings.HasPrefix(ln, "//") {
			break
		}
		if rest, ok := strings.CutPrefix(ln, "//\t"); ok {
			b.WriteString(rest + "\n")
		}
	}
	return b.String()
}
