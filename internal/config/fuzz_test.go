package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds adds every good and bad configuration fixture and every profile
// to f.
func fuzzSeeds(f *testing.F, globs ...string) {
	for _, g := range globs {
		files, err := filepath.Glob(filepath.Join("..", "..", g))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// checkLoadResult holds for any input: a model or errors, never both, and
// every error names its file and says something.
func checkLoadResult(t *testing.T, ok bool, err error) {
	t.Helper()
	if ok == (err != nil) {
		t.Fatalf("model and error: %v, %v", ok, err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		if len(*errs) == 0 {
			t.Fatal("empty *Errors")
		}
		for _, e := range *errs {
			if e.File == "" || e.Msg == "" || e.Line < 0 {
				t.Fatalf("error without file, line or message: %+v", e)
			}
		}
	}
}

// FuzzLoad loads arbitrary bytes as the configuration file, with the
// repository's profiles and secret files beside it (read through ReadFile,
// so a path to a device or a FIFO cannot stall the run).
func FuzzLoad(f *testing.F) {
	fuzzSeeds(f, "testdata/config/good/*.yaml", "testdata/config/bad/*.yaml", "configs/*.yaml")
	const name = "testdata/config/bad/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(name, LoadOptions{Getenv: noEnv, ReadFile: func(p string) ([]byte, error) {
			if p == name {
				return data, nil
			}
			if filepath.IsAbs(p) {
				return nil, errors.New("fuzzing reads only repository files")
			}
			return ReadFile(filepath.Join("..", "..", p))
		}})
		checkLoadResult(t, m != nil, err)
	})
}

// FuzzParseProfile parses arbitrary bytes as a profile file.
func FuzzParseProfile(f *testing.F) {
	fuzzSeeds(f, "testdata/config/profiles/*.yaml", "configs/profiles/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data, "fuzz.yaml")
		checkLoadResult(t, p != nil, err)
		if p == nil {
			return
		}
		for _, pt := range p.Points {
			if pt.Name == "" || pt.Words() < 1 || int(pt.Address)+pt.Words() > 65536 {
				t.Fatalf("accepted point %+v", pt)
			}
		}
	})
}
