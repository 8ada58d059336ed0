package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

// play runs a shipped scenario on the demo fleet, second by second, and
// calls check after every step with the seconds since the start.
func play(t *testing.T, name string, seconds int, check func(k int, v func(dev, point string) float64, s *sim.Sim)) {
	t.Helper()
	cfg, err := sim.LoadConfig("../../configs/sim/demo.yaml", config.LoadProfile)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sim.LoadScenario("../../testdata/scenarios/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != nil {
		cfg.Seed = *sc.Seed
	}
	s, err := sim.Build(cfg, sc.Start)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Play(sc); err != nil {
		t.Fatal(err)
	}
	devs := map[string]*devsrv.Device{}
	for _, d := range s.Devices {
		devs[d.ID] = d
	}
	v := func(dev, point string) float64 {
		t.Helper()
		x, err := devs[dev].Value(point)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for k := 0; k <= seconds; k++ {
		if err := s.AdvanceTo(sc.Start.Add(time.Duration(k) * time.Second)); err != nil {
			t.Fatal(err)
		}
		check(k, v, s)
	}
}

// recloser reads a recloser control's closed, lockout, shot and trip points.
func recloser(v func(string, string) float64, id string) [4]float64 {
	return [4]float64{v(id, "breaker_closed"), v(id, "lockout"), v(id, "shot_count"), v(id, "trip_count")}
}

// TestShippedScenarios plays each scenario in testdata/scenarios on the
// demo fleet and checks that it does what its comment says.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("../../testdata/scenarios/*.yaml")
	if err != nil || len(files) != 5 {
		t.Fatalf("scenario files %v (%v), want 5", files, err)
	}
	t.Run("lockout.yaml", func(t *testing.T) {
		play(t, "lockout.yaml", 300, func(k int, v func(string, string) float64, _ *sim.Sim) {
			rec := recloser(v, "F101-REC")
			var want [4]float64
			switch {
			case k < 30:
				want = [4]float64{1, 0, 0, 0}
			case k < 32:
				want = [4]float64{0, 0, 0, 1}
			case k < 37:
				want = [4]float64{0, 0, 1, 2}
			default:
				want = [4]float64{0, 1, 2, 3}
			}
			if rec != want {
				t.Errorf("%ds: F101-REC closed, lockout, shots, trips = %v, want %v", k, rec, want)
			}
			mtr := v("F101-MTR", "van")
			dark := k >= 30 && k < 240
			if dark && mtr >= 12 || !dark && mtr < 114 {
				t.Errorf("%ds: F101-MTR van = %v V, want %s", k, mtr, map[bool]string{true: "< 12 (dark)", false: "≥ 114"}[dark])
			}
			if tie, want := v("TIE-12", "breaker_closed"), float64(btoi(k >= 240)); tie != want {
				t.Errorf("%ds: TIE-12 breaker_closed = %v, want %v", k, tie, want)
			}
			if b := v("F101-BRK", "breaker_closed"); b != 1 {
				t.Errorf("%ds: F101-BRK open", k)
			}
		})
	})
	t.Run("sag.yaml", func(t *testing.T) {
		play(t, "sag.yaml", 40, func(k int, v func(string, string) float64, _ *sim.Sim) {
			vbn := v("F102-BRK", "vbn")
			on := k >= 20 && k < 30
			if on && vbn != 5040 || !on && vbn < 0.95*7200 {
				t.Errorf("%ds: F102-BRK vbn = %v, want %s", k, vbn, map[bool]string{true: "5040", false: "≥ 6840"}[on])
			}
			for _, p := range [][2]string{{"F102-BRK", "van"}, {"F102-BRK", "vcn"}, {"F101-BRK", "vbn"}} {
				if x := v(p[0], p[1]); x < 0.95*7200 {
					t.Errorf("%ds: %s %s = %v, want normal", k, p[0], p[1], x)
				}
			}
			if m := v("F102-MTR", "vbn"); on && (m >= 0.7*120 || m < 0.65*120) {
				t.Errorf("%ds: F102-MTR vbn = %v, want a little under 84", k, m)
			}
		})
	})
	t.Run("excursion.yaml", func(t *testing.T) {
		play(t, "excursion.yaml", 240, func(k int, v func(string, string) float64, _ *sim.Sim) {
			sag, swell := k >= 20 && k < 110, k >= 120 && k < 210
			if vbn := v("F101-BRK", "vbn"); sag && vbn != 6696 || !sag && (vbn < 0.95*7200 || vbn > 1.05*7200) {
				t.Errorf("%ds: F101-BRK vbn = %v, want %s", k, vbn, map[bool]string{true: "6696", false: "inside Range A"}[sag])
			}
			if vcn := v("F102-BRK", "vcn"); swell && vcn != 7704 || !swell && (vcn < 0.95*7200 || vcn > 1.05*7200) {
				t.Errorf("%ds: F102-BRK vcn = %v, want %s", k, vcn, map[bool]string{true: "7704", false: "inside Range A"}[swell])
			}
			for _, p := range [][3]string{{"F101-REC", "vb", "7200"}, {"F101-MTR", "vbn", "120"}} {
				dev := p[0]
				nom, _ := strconv.ParseFloat(p[2], 64)
				if pu := v(dev, p[1]) / nom; sag && (pu >= 0.93 || pu < 0.9) || !sag && (pu < 0.95 || pu > 1.05) {
					t.Errorf("%ds: %s vbn = %v pu, want %s", k, dev, pu, map[bool]string{true: "in 0.9..0.93", false: "inside Range A"}[sag])
				}
			}
			for _, p := range [][2]string{{"F101-BRK", "van"}, {"F101-BRK", "vcn"}, {"F102-BRK", "van"}, {"F102-BRK", "vbn"}} {
				if x := v(p[0], p[1]); x < 0.95*7200 || x > 1.05*7200 {
					t.Errorf("%ds: %s %s = %v, want inside Range A", k, p[0], p[1], x)
				}
			}
		})
	})
	t.Run("temporary-fault.yaml", func(t *testing.T) {
		play(t, "temporary-fault.yaml", 150, func(k int, v func(string, string) float64, _ *sim.Sim) {
			rec := recloser(v, "F102-REC")
			var want [4]float64
			switch {
			case k < 30:
				want = [4]float64{1, 0, 0, 0}
			case k < 32:
				want = [4]float64{0, 0, 0, 1}
			case k < 92:
				want = [4]float64{1, 0, 1, 1}
			case k < 120:
				want = [4]float64{1, 0, 0, 1}
			case k < 122:
				want = [4]float64{0, 0, 0, 2}
			case k < 127:
				want = [4]float64{0, 0, 1, 3}
			case k < 142:
				want = [4]float64{0, 0, 2, 4}
			default:
				want = [4]float64{1, 0, 3, 4}
			}
			if rec != want {
				t.Errorf("%ds: F102-REC closed, lockout, shots, trips = %v, want %v", k, rec, want)
			}
		})
	})
	t.Run("comms.yaml", func(t *testing.T) {
		play(t, "comms.yaml", 240, func(k int, _ func(string, string) float64, s *sim.Sim) {
			var faulty []string
			for _, st := range s.States() {
				if st.Comms != nil {
					b, _ := json.Marshal(st.Comms)
					faulty = append(faulty, st.ID+" "+string(b))
				}
			}
			var want []string
			switch {
			case k >= 10 && k < 40:
				want = []string{`F101-MTR {"silent":true}`}
			case k >= 50 && k < 80:
				want = []string{`F102-MTR {"refuse":true}`}
			case k >= 100 && k < 120:
				want = []string{`F101-REC {"exceptions":{"va":2,"vb":2,"vc":2}}`}
			case k >= 130 && k < 150:
				want = []string{`F102-REC {"exceptions":{"breaker_closed":6,"freq":6,"ia":6,"ib":6,"ic":6,"in":6,"kva":6,"kvar":6,"kw":6,"lockout":6,"pf":6,"shot_count":6,"trip_count":6,"va":6,"vb":6,"vc":6}}`}
			case k >= 160 && k < 190:
				want = []string{`F102-BRK {"latency":"800ms"}`}
			case k >= 200 && k < 230:
				want = []string{`F101-BRK {"half_open":true}`}
			}
			if strings.Join(faulty, "\n") != strings.Join(want, "\n") {
				t.Errorf("%ds: comms faults %v, want %v", k, faulty, want)
			}
		})
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRunScenario runs the command on the demo fleet (on free ports) with
// lockout.yaml at fifty times real time, and watches the recloser lock out
// through the HTTP API.
func TestRunScenario(t *testing.T) {
	demo, err := os.ReadFile("../../configs/sim/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := filepath.Abs("../../configs/profiles")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(demo), "../profiles", profiles)
	for p := 5020; p <= 5026; p++ {
		text = strings.Replace(text, fmt.Sprintf("port: %d", p), fmt.Sprintf("port: %d", freePort(t)), 1)
	}
	path := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	args := []string{"-config", path, "-scenario", "../../testdata/scenarios/lockout.yaml", "-time-scale", "50", "-seed", "3", "-http", "127.0.0.1:0", "-log-level", "warn"}
	go func() { done <- run(args, &stdout, &stderr) }()
	defer func() {
		if err := syscallKill(); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("exit %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("rtusim did not stop on SIGINT")
		}
	}()
	var api string
	deadline := time.Now().Add(20 * time.Second)
	for {
		if api == "" {
			for _, l := range strings.Split(stdout.String(), "\n") {
				if u, ok := strings.CutPrefix(l, "serving http on "); ok {
					api = u
				}
			}
		}
		if api != "" {
			var st sim.DeviceState
			resp, err := http.Get(api + "/api/devices/F101-REC")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if st.Values["lockout"] == 1.0 {
				if st.Values["trip_count"] != 3.0 || st.Values["shot_count"] != 2.0 || st.Values["breaker_closed"] != 0.0 || !*st.Energized {
					t.Fatalf("F101-REC at lockout: %v", st.Values)
				}
				return
			}
		}
		select {
		case code := <-done:
			t.Fatalf("rtusim exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lockout within 20s at time scale 50; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpenTiePowerFactor: an open switch or a dead device carries no
// current, so its power factor is undefined: NaN on a float32 point (the
// feeder RTU's, the PM5100's; feederd writes it as invalid); once the tie
// closes and carries F101-MTR's load, the load's.
func TestOpenTiePowerFactor(t *testing.T) {
	play(t, "lockout.yaml", 245, func(k int, v func(string, string) float64, _ *sim.Sim) {
		switch k {
		case 10:
			if ia, pf := v("TIE-12", "ia"), v("TIE-12", "pf"); ia != 0 || !math.IsNaN(pf) {
				t.Errorf("%ds: open TIE-12 ia %v, pf %v; want 0, NaN", k, ia, pf)
			}
			if pf := v("F101-MTR", "pf"); pf < 0.9 || pf > 1 {
				t.Errorf("%ds: F101-MTR pf %v, want the load's, about 0.95", k, pf)
			}
		case 60:
			if pf := v("F101-MTR", "pf"); !math.IsNaN(pf) {
				t.Errorf("%ds: F101-MTR behind the locked-out recloser pf %v, want NaN", k, pf)
			}
		case 245:
			if ia, pf := v("TIE-12", "ia"), v("TIE-12", "pf"); ia <= 0 || pf < 0.9 || pf > 1 {
				t.Errorf("%ds: closed TIE-12 ia %v, pf %v; want > 0, about 0.95", k, ia, pf)
			}
		}
	})
}
