package sim

import (
	"encoding/json"
	"math"
	"net/url"
	"testing"

	"github.com/feederd/feederd/internal/testenv"
)

// TestMBPollMatchesControlAPI: an independent Modbus master (mbpoll) reads
// the values the control API reports, over Modbus TCP, from a running
// simulation with feeder physics.
func TestMBPollMatchesControlAPI(t *testing.T) {
	_, api, urls := controlRun(t)
	for _, tc := range []struct {
		device string
		args   []string
		first  int
		points []string
		step   int     // registers per value
		scale  float64 // of the profile's points
		rel    float64 // mbpoll prints floats with 6 significant digits
	}{
		// PM5100: FLOAT32, high word first (-B).
		{"F1-MTR", []string{"-t", "4:float", "-B", "-r", "3027", "-c", "3"}, 3027, []string{"van", "vbn", "vcn"}, 2, 1, 5e-6},
		// SEL-751A: 16-bit integers.
		{"F1-BRK", []string{"-t", "4", "-r", "674", "-c", "1"}, 674, []string{"van"}, 1, 1, 0},
		// The test recloser: INT32 low word first (mbpoll's default) x 0.1.
		{"F1-REC", []string{"-t", "3:int", "-r", "0", "-c", "3"}, 0, []string{"va", "vb", "vc"}, 2, 0.1, 1e-12},
	} {
		t.Run(tc.device, func(t *testing.T) {
			u, err := url.Parse(urls[tc.device])
			if err != nil {
				t.Fatal(err)
			}
			var st DeviceState
			_, body := call(t, "GET", api+"/api/devices/"+tc.device, "")
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			args := append([]string{"-m", "tcp", "-p", u.Port(), "-a", "1", "-0", "-1"}, tc.args...)
			out, err := testenv.MBPoll(t, append(args, u.Hostname())...)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := testenv.ParseMBPollFloats(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range tc.points {
				ref := tc.first + tc.step*i
				want, ok := st.Values[p].(float64)
				if !ok {
					t.Fatalf("API has no number for %s: %v", p, st.Values[p])
				}
				got, present := vals[ref]
				got *= tc.scale
				if !present || math.Abs(got-want) > tc.rel*math.Abs(want) {
					t.Errorf("mbpoll [%d] %s = %v (present %v), API says %v\n%s", ref, p, got, present, want, out)
				}
			}
		})
	}
}
