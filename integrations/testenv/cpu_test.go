package testenv

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMachineCPUCountsABusyLoop(t *testing.T) {
	before, ok := MachineCPU()
	if !ok {
		t.Skip("no /proc/stat on this system")
	}
	// Keep one CPU busy for 300 ms: the machine's busy time must grow by
	// about that much, and its total by about 300 ms per CPU.
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	d := func() CPU { c, _ := MachineCPU(); return c }().Sub(before)
	if d.Busy < 200*time.Millisecond {
		t.Errorf("busy grew by %s during 300 ms of a busy loop, want at least 200 ms", d.Busy)
	}
	if want := time.Duration(runtime.NumCPU()) * 250 * time.Millisecond; d.Total < want {
		t.Errorf("total grew by %s over 300 ms on %d CPUs, want at least %s", d.Total, runtime.NumCPU(), want)
	}
	if u := d.Utilization(); u <= 0 || u > 1 {
		t.Errorf("utilization %.2f, want in (0, 1]", u)
	}
}

func TestCPUModelIsTheFirstModelName(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9654 96-Core Processor\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got, want := cpuModel(strings.NewReader(cpuinfo)), "AMD EPYC 9654 96-Core Processor"; got != want {
		t.Errorf("cpuModel = %q, want %q", got, want)
	}
	if got := cpuModel(strings.NewReader("processor\t: 0\nBogoMIPS\t: 50.00\n")); got != "" {
		t.Errorf("cpuModel of a cpuinfo without model name = %q, want \"\"", got)
	}
}
