package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// PromtoolVersion is the Prometheus release whose promtool checks the
// rules under deploy/prometheus.
const PromtoolVersion = "v0.316.0"

// PromtoolPath returns the promtool binary: $FEEDERD_PROMTOOL, else
// bin/promtool in the module root. It fails the test with the build
// command if missing (in CI and everywhere else: rule checks never skip).
func PromtoolPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FEEDERD_PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FEEDERD_PROMTOOL=%s: %v", p, err)
		}
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("locate promtool: %v", err)
	}
	p := filepath.Join(root, "bin", "promtool")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("promtool not found at %s: build it with `make -C %s bin/promtool` "+
			"(that is `GOBIN=%s go install github.com/prometheus/prometheus/cmd/promtool@%s`, "+
			"about 3 minutes once) or point FEEDERD_PROMTOOL at a promtool binary", p, root, filepath.Join(root, "bin"), PromtoolVersion)
	}
	return p
}
