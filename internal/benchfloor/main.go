// Command benchfloor measures the least CPU a Go poller pays per
// device-poll on this machine, the yardstick of `make bench`: one goroutine
// per device, each with its own simonvetter/modbus TCP client, reads the 12
// float32 input registers of the benchmark device (testdata/bench/rtu12.yaml)
// once a second and does nothing else — no decoding, no detection, no
// InfluxDB. feederd does all of those, so the ratio of its CPU per
// device-poll to this floor, measured in the same run on the same fleet, is
// what its pipeline costs on top of talking Modbus.
//
// -mode grid (the default) wakes the fleet from one ticker in -slots groups a
// second (the cheapest idiomatic schedule); -mode timer gives each goroutine
// its own ticker (the naive one). Devices sit on consecutive ports from
// -port, -units per port (a gateway: those units are polled in turn by one
// goroutine over one connection).
//
//	go build -o bin/benchfloor ./internal/benchfloor
//	bin/benchfloor -n 1000 -port 16000 -secs 30
//
// It prints one line: polls, CPU seconds and CPU per poll in microseconds.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	n := flag.Int("n", 1000, "devices")
	base := flag.Int("port", 16000, "first port")
	units := flag.Int("units", 1, "devices per port (units 1..k behind one connection)")
	secs := flag.Int("secs", 30, "measured seconds")
	warm := flag.Int("warm", 5, "warm-up seconds")
	mode := flag.String("mode", "grid", "grid | timer")
	slots := flag.Int("slots", 1, "grid: wake-ups per second")
	regs := flag.Int("regs", 24, "input registers read per device-poll")
	flag.Parse()
	if *mode != "grid" && *mode != "timer" {
		fmt.Fprintln(os.Stderr, "benchfloor: -mode must be grid or timer")
		os.Exit(2)
	}
	ports := (*n + *units - 1) / *units
	var count atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	tick := make([]chan struct{}, ports)
	for p := 0; p < ports; p++ {
		tick[p] = make(chan struct{}, 1)
		k := *units
		if p == ports-1 && *n%*units != 0 {
			k = *n % *units
		}
		cl, err := modbus.NewClient(&modbus.ClientConfiguration{
			URL: fmt.Sprintf("tcp://127.0.0.1:%d", *base+p), Timeout: time.Second})
		if err == nil {
			err = cl.Open()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchfloor: port %d: %v\n", *base+p, err)
			os.Exit(1)
		}
		wg.Add(1)
		go func(p, k int) {
			defer wg.Done()
			defer cl.Close()
			pollAll := func() {
				for u := 1; u <= k; u++ {
					_ = cl.SetUnitId(uint8(u))
					if _, err := cl.ReadRegisters(0, uint16(*regs), modbus.INPUT_REGISTER); err == nil {
						count.Add(1)
					}
				}
			}
			if *mode == "timer" {
				time.Sleep(time.Duration(p) * time.Second / time.Duration(ports))
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						pollAll()
					}
				}
			}
			for {
				select {
				case <-stop:
					return
				case <-tick[p]:
					pollAll()
				}
			}
		}(p, k)
	}
	if *mode == "grid" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Second / time.Duration(*slots))
			defer t.Stop()
			s := 0
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				for p := s; p < ports; p += *slots {
					select {
					case tick[p] <- struct{}{}:
					default:
					}
				}
				s = (s + 1) % *slots
			}
		}()
	}
	time.Sleep(time.Duration(*warm) * time.Second)
	c0, u0 := count.Load(), cpu()
	time.Sleep(time.Duration(*secs) * time.Second)
	c1, u1 := count.Load(), cpu()
	close(stop)
	wg.Wait()
	polls := c1 - c0
	if polls == 0 {
		fmt.Fprintln(os.Stderr, "benchfloor: no successful poll")
		os.Exit(1)
	}
	fmt.Printf("floor mode=%s slots=%d n=%d units=%d: polls=%d cpu_s=%.2f us_per_poll=%.1f\n",
		*mode, *slots, *n, *units, polls, (u1 - u0).Seconds(), float64((u1-u0).Microseconds())/float64(polls))
}
