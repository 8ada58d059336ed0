package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mbpollInstallHint is printed when mbpoll is missing: tests never skip.
const mbpollInstallHint = "mbpoll is required for Modbus interoperability tests: apt-get install -y mbpoll"

// MBPollTimeout bounds one mbpoll run.
const MBPollTimeout = 20 * time.Second

// MBPoll runs mbpoll, an independent Modbus master, with args and returns
// its combined output. Give -1 (poll once) or it never ends. A non-zero exit
// is returned as an error with the output; a missing mbpoll fails the test.
//
// Reminders: -m tcp|rtu, -a unit, -0 for 0-based wire addresses (mbpoll
// counts from 1 otherwise), -r first, -c count, -t 4 holding, 3 input,
// 4:float / 4:int 32-bit values, -B high word first (ABCD), -p port; for
// rtu -b baud -P none|even|odd -d 8 -s 1.
func MBPoll(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatalf("%s (%v)", mbpollInstallHint, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), MBPollTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("mbpoll %s: no result within %s", strings.Join(args, " "), MBPollTimeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("mbpoll %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mbpollLine matches a value line: "[3027]: 	7210.5", "[1]: 	0x00FF",
// and for negative 16-bit registers "[650]: 	65524 (-12)" (mbpoll indents
// values with a tab).
var mbpollLine = regexp.MustCompile(`^\[(\d+)\]:\s+(\S.*)$`)

// mbpollSigned is the signed reading mbpoll adds to a 16-bit register
// above 32767.
var mbpollSigned = regexp.MustCompile(`^\d+ \((-\d+)\)$`)

// ParseMBPoll returns mbpoll's values by reference (as printed: 1-based
// unless -0 was given), as the text it printed after the colon.
func ParseMBPoll(out string) map[int]string {
	vals := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		m := mbpollLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		ref, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		vals[ref] = strings.TrimSpace(m[2])
	}
	return vals
}

// ParseMBPollFloats is ParseMBPoll with every value parsed as a number:
// decimal, hex (-t 4:hex), and for "65524 (-12)" the signed -12.
func ParseMBPollFloats(out string) (map[int]float64, error) {
	vals := map[int]float64{}
	text := ParseMBPoll(out)
	refs := make([]int, 0, len(text))
	for ref := range text {
		refs = append(refs, ref)
	}
	sort.Ints(refs)
	for _, ref := range refs {
		s := text[ref]
		if m := mbpollSigned.FindStringSubmatch(s); m != nil {
			s = m[1]
		}
		var v float64
		var err error
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			var u uint64
			u, err = strconv.ParseUint(s[2:], 16, 64)
			v = float64(u)
		} else {
			v, err = strconv.ParseFloat(s, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("mbpoll value [%d]: %q is not a number", ref, s)
		}
		vals[ref] = v
	}
	return vals, nil
}
