package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestDerivedSizes: ring and queue sizes left unset follow the fleet. A
// device of 12 points polled every second yields 13 samples and one poll
// line a second; a ring holds a second of its shard's samples (at least
// 16,384), the queue 30 s of poll lines (at least a batch, at most 200,000).
// Sizes the file sets are kept.
func TestDerivedSizes(t *testing.T) {
	var prof strings.Builder
	prof.WriteString("name: rtu12\npoints:\n")
	for i := range 12 {
		fmt.Fprintf(&prof, "  - {name: p%d, table: input, address: %d, type: float32}\n", i, 2*i)
	}
	site := func(devices int, extra string) string {
		var b strings.Builder
		b.WriteString("profiles: [rtu12.yaml]\n" + extra + "influx: {url: http://127.0.0.1:8086, bucket: feederd/autogen, batch_size: 1000}\n")
		b.WriteString("links:\n")
		for f := range (devices + 9) / 10 {
			fmt.Fprintf(&b, "  - {id: gw%d, url: \"tcp://h%d:502\"}\n", f, f)
		}
		b.WriteString("devices:\n")
		for i := range devices {
			up := ""
			if i%10 != 0 {
				up = fmt.Sprintf("D%d", i/10*10)
			}
			fmt.Fprintf(&b, "  - {id: D%d, link: gw%d, unit: %d, profile: rtu12, feeder: F%d, upstream: %q}\n", i, i/10, i%10+1, i/10, up)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name        string
		devices     int
		extra       string
		ring, queue int
	}{
		{"10 devices: the floors", 10, "pipeline: {shards: 2}\n", 16384, 1000},
		{"2,500 devices on 1 shard", 2500, "pipeline: {shards: 1}\n", 32768, 75000},
		{"2,500 devices on 2 shards", 2500, "pipeline: {shards: 2}\n", 16384, 75000},
		{"10,000 devices on 2 shards", 10000, "pipeline: {shards: 2}\n", 65536, 200000},
		{"set in the file", 10000, "pipeline: {shards: 2, ring_size: 2048}\n", 2048, 200000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{
				"site.yaml": site(tc.devices, tc.extra), "rtu12.yaml": prof.String(),
			})})
			if err != nil {
				t.Fatal(err)
			}
			if m.Pipeline.RingSize != tc.ring || m.Influx.QueueSize != tc.queue {
				t.Errorf("ring_size %d, queue_size %d; want %d, %d", m.Pipeline.RingSize, m.Influx.QueueSize, tc.ring, tc.queue)
			}
		})
	}
	// queue_size set in the file is kept too.
	m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{
		"site.yaml": strings.Replace(site(10, ""), "batch_size: 1000}", "batch_size: 1000, queue_size: 7777}", 1), "rtu12.yaml": prof.String(),
	})})
	if err != nil {
		t.Fatal(err)
	}
	if m.Influx.QueueSize != 7777 {
		t.Errorf("queue_size set to 7777: got %d", m.Influx.QueueSize)
	}
}
