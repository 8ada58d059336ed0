package scripts_test

import (
	"archive/tar"
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/testenv"
)

// TestDistARM64 builds the linux/arm64 tarball as `make dist` does and
// checks its layout, that its binaries are static AArch64 executables, that
// its example configuration passes check-config, and that its systemd unit
// passes `systemd-analyze verify` without a warning.
func TestDistARM64(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("bash", "dist.sh", "v9.9.9-test", out, "arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist.sh: %v\n%s", err, b)
	}
	tgz := filepath.Join(out, "feederd-v9.9.9-test-linux-arm64.tar.gz")
	unpacked := t.TempDir()
	names := untar(t, tgz, unpacked)
	want := []string{
		"bin/feederd", "bin/rtusim",
		"etc/feederd/feederd.yaml.example",
		"etc/feederd/profiles/feeder-rtu.yaml", "etc/feederd/profiles/pm5100.yaml", "etc/feederd/profiles/sel751a.yaml",
		"etc/feederd/sim/demo.yaml",
		"lib/systemd/system/feederd.service", "lib/sysusers.d/feederd.conf",
		"share/doc/feederd/BENCHMARKS.md", "share/doc/feederd/README.md", "share/doc/feederd/alertmanager.yml",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("tarball files:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	root := filepath.Join(unpacked, "feederd-v9.9.9-test-linux-arm64")
	for _, bin := range []string{"bin/feederd", "bin/rtusim"} {
		f, err := elf.Open(filepath.Join(root, bin))
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: machine %v, class %v; want EM_AARCH64, ELFCLASS64", bin, f.Machine, f.Class)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has an interpreter: not a static binary (CGO_ENABLED=0)", bin)
			}
		}
		f.Close()
	}

	// The host's feederd checks the example as installed in /etc/feederd.
	host := testenv.BuildCommand(t, "feederd")
	example := filepath.Join(root, "etc/feederd/feederd.yaml.example")
	b, err := exec.Command(host, "check-config", example).CombinedOutput()
	if got, want := string(b), example+": ok: 7 links, 7 devices, 98 points\n"; err != nil || got != want {
		t.Errorf("check-config of the example: %v, %q; want %q", err, got, want)
	}

	// The unit names /usr/local/bin/feederd, which does not exist here:
	// verify a copy that names the host binary.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/feederd.service"))
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "feederd.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/feederd", host)), 0o644); err != nil {
		t.Fatal(err)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to check the unit (Debian package systemd)")
	}
	if b, err := exec.Command(analyze, "verify", copyPath).CombinedOutput(); err != nil || len(b) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
}

// untar unpacks a .tar.gz into dir and returns its regular files, relative
// to the top folder, sorted.
func untar(t *testing.T, path, dir string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			_, rel, _ := strings.Cut(h.Name, "/")
			names = append(names, rel)
			w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		default:
			t.Errorf("%s: unexpected type %c", h.Name, h.Typeflag)
		}
	}
	slices.Sort(names)
	return names
}
