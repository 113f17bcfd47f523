package testenv

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU is a reading of the machine's CPU time, summed over every CPU: what
// all its processes used (Busy) and that plus the idle time (Total).
type CPU struct {
	Busy, Total time.Duration
}

// MachineCPU reads the machine's CPU time from /proc/stat (Linux); ok is
// false where it is not available. The difference of two readings tells
// how busy the machine was in between, whoever used it: the worker,
// PostgreSQL, Redis or the SMTP sink.
func MachineCPU() (c CPU, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPU{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return CPU{}, false
	}
	// cpu  user nice system idle iowait irq softirq steal guest guest_nice
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return CPU{}, false
	}
	var ticks [8]int64
	for i := range ticks {
		v, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return CPU{}, false
		}
		ticks[i] = v
	}
	// The kernel reports USER_HZ ticks, 100 a second on every Linux
	// architecture Go runs on.
	const tick = 10 * time.Millisecond
	busy := ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
	idle := ticks[3] + ticks[4]
	return CPU{Busy: time.Duration(busy) * tick, Total: time.Duration(busy+idle) * tick}, true
}

// Sub returns the CPU time used between an earlier reading and c.
func (c CPU) Sub(earlier CPU) CPU {
	return CPU{Busy: c.Busy - earlier.Busy, Total: c.Total - earlier.Total}
}

// Utilization is the busy share of the CPU time, 0 to 1.
func (c CPU) Utilization() float64 {
	if c.Total <= 0 {
		return 0
	}
	return float64(c.Busy) / float64(c.Total)
}

// CPUModel returns the CPU's model name from /proc/cpuinfo (Linux), or ""
// where there is none (another system, or an architecture whose cpuinfo
// names no "model name"). Benchmarks print it beside their figures.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	return cpuModel(f)
}

// cpuModel returns the first "model name" of a /proc/cpuinfo.
func cpuModel(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
