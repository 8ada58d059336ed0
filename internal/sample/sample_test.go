package sample

import (
	"testing"
	"unsafe"
)

// TestSize pins the size the package comment and the README state: rings
// preallocate slots of it.
func TestSize(t *testing.T) {
	if got := unsafe.Sizeof(Sample{}); got != 32 {
		t.Errorf("Sample is %d bytes, want 32", got)
	}
}

func TestQualityNames(t *testing.T) {
	for q, want := range map[Quality]string{Good: "good", Exception: "exception", Timeout: "timeout", Stale: "stale", Invalid: "invalid", 9: "unknown"} {
		if got := q.String(); got != want {
			t.Errorf("%d: %q, want %q", q, got, want)
		}
	}
}
