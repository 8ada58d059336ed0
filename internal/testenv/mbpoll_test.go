package testenv

import (
	"net"
	"reflect"
	"testing"
)

// mbpollOutput is real mbpoll 1.0 output: a float read, then a 16-bit read
// with a negative register, and a hex read.
const mbpollOutput = `mbpoll 1.0-0 - FieldTalk(tm) Modbus(R) Master Simulator
Copyright © 2015-2019 Pascal JEAN, https://github.com/epsilonrt/mbpoll

Protocol configuration: Modbus TCP
Slave configuration...: address = [1]
                        start reference = 3027, count = 2
Data type.............: 32-bit float (big endian), output (holding) register table

-- Polling slave 1...
[3027]: 	7210.5
[3029]: 	-3.25
[650]: 	65524 (-12)
[651]: 	0
[688]: 	0x005F

`

func TestParseMBPoll(t *testing.T) {
	want := map[int]string{3027: "7210.5", 3029: "-3.25", 650: "65524 (-12)", 651: "0", 688: "0x005F"}
	if got := ParseMBPoll(mbpollOutput); !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseMBPoll = %v, want %v", got, want)
	}
	wantF := map[int]float64{3027: 7210.5, 3029: -3.25, 650: -12, 651: 0, 688: 95}
	got, err := ParseMBPollFloats(mbpollOutput)
	if err != nil || !reflect.DeepEqual(got, wantF) {
		t.Fatalf("ParseMBPollFloats = %v, %v; want %v", got, err, wantF)
	}
	if _, err := ParseMBPollFloats("[1]: \tnan-ish\n"); err == nil || err.Error() != `mbpoll value [1]: "nan-ish" is not a number` {
		t.Fatalf("ParseMBPollFloats of text: %v", err)
	}
	if got := ParseMBPoll("Read output (holding) register failed: Illegal data address\n"); len(got) != 0 {
		t.Fatalf("ParseMBPoll of an error = %v", got)
	}
}

func TestMBPollFails(t *testing.T) {
	// Nothing listens on the port FreeAddr found: mbpoll exits non-zero.
	out, err := MBPoll(t, "-m", "tcp", "-p", mbpollPort(t, FreeAddr(t)), "-o", "0.5", "-1", "127.0.0.1")
	if err == nil {
		t.Fatalf("mbpoll against a closed port succeeded:\n%s", out)
	}
}

func mbpollPort(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
