package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkFeederStep measures one physics step (energize, flows,
// voltages, every device's registers) of twoFeeders: 12 nodes, 8 devices.
func BenchmarkFeederStep(b *testing.B) {
	s := newFeederSim(b, "")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.AdvanceTo(t0.Add(time.Duration(i+1) * time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFeederStepLarge measures a step of one long feeder: a breaker,
// 1,000 sections in a chain with a recloser every 100 and a feeder RTU
// every 10 sections (100 devices).
func BenchmarkFeederStepLarge(b *testing.B) {
	var devs, nodes strings.Builder
	nodes.WriteString("      - {id: BRK, kind: breaker}\n")
	up := "BRK"
	for i := range 1000 {
		id := fmt.Sprintf("S%04d", i)
		fmt.Fprintf(&nodes, "      - {id: %s, kind: section, upstream: %s, section: {load_kw: 5}}\n", id, up)
		up = id
		if i%10 == 9 {
			kind := "sensor"
			if i%100 == 99 {
				kind = "recloser"
			}
			dev := fmt.Sprintf("D%04d", i)
			fmt.Fprintf(&devs, "  - {id: %s, profile: feeder-rtu, unit: 1, port: %d, nominal_voltage: 7200}\n", dev, 20000+i)
			fmt.Fprintf(&nodes, "      - {id: %s, kind: %s, device: %s, upstream: %s}\n", dev, kind, dev, up)
			up = dev
		}
	}
	cfg := loadTestConfig(b, "profiles: [feeder-rtu.yaml]\ndevices:\n"+devs.String()+
		"feeders:\n  - id: F\n    nominal_voltage: 7200\n    drop_per_mw: 0.0001\n    nodes:\n"+nodes.String())
	s, err := Build(cfg, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.AdvanceTo(t0.Add(time.Duration(i+1) * time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
