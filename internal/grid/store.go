package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/feederd/feederd/internal/atomicfile"
)

// FileStore keeps each feeder's State in its own JSON file in Dir,
// replaced atomically (atomicfile.Write) on every change. Outages change a few times an outage, not a few times a
// poll, and a feeder's state is small, so a whole-file rewrite costs a
// millisecond where it happens and needs no database: a SIGKILL leaves
// either the previous state or the new one, never half of one.
type FileStore struct {
	Dir string
}

// maxStateFile bounds what Load reads of one feeder's file.
const maxStateFile = 64 << 20

func (s FileStore) path(feeder string) string {
	// Feeder IDs are [A-Za-z0-9_.-]+: with the prefix no ID can name a
	// file outside Dir.
	return filepath.Join(s.Dir, "feeder-"+feeder+".json")
}

// Load reads the state saved for feeder; false when there is none.
func (s FileStore) Load(feeder string) (State, bool, error) {
	var st State
	p := s.path(feeder)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load outage state: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return st, false, fmt.Errorf("load outage state: %s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return st, false, fmt.Errorf("load outage state %s: %w", p, err)
	}
	if len(b) > maxStateFile {
		return st, false, fmt.Errorf("load outage state %s: larger than %d bytes", p, maxStateFile)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("load outage state %s: %w", p, err)
	}
	if st.Feeder != feeder {
		return st, false, fmt.Errorf("load outage state %s: it is feeder %q's", p, st.Feeder)
	}
	return st, true, nil
}

// Save replaces the feeder's state file.
func (s FileStore) Save(st State) error {
	b, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("save outage state of %s: %w", st.Feeder, err)
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return fmt.Errorf("save outage state of %s: %w", st.Feeder, err)
	}
	if err := atomicfile.Write(s.path(st.Feeder), b, 0o600); err != nil {
		return fmt.Errorf("save outage state of %s: %w", st.Feeder, err)
	}
	return nil
}
