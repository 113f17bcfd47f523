package jobs

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

func TestParseDays(t *testing.T) {
	var got [3]date.Date
	if err := parseDays(got[:], []byte("20512,0,-3")); err != nil || got != [3]date.Date{20512, 0, -3} {
		t.Fatalf("parseDays = %v, %v; want [20512 0 -3]", got, err)
	}
	for _, bad := range []string{"", "1,2", "1,2,3,4", "1,,3", "1,2,x", "1,2,3,", "1,2,2147483648"} {
		if err := parseDays(got[:], []byte(bad)); err == nil {
			t.Errorf("parseDays(%q) accepted it as %v", bad, got)
		}
	}
	b := []byte("20512,20513,20514")
	if n := testing.AllocsPerRun(100, func() { _ = parseDays(got[:], b) }); n != 0 {
		t.Errorf("parseDays allocates %.0f times per call, want 0", n)
	}
}

func TestParseDaysErrorsNameNoDate(t *testing.T) {
	var got [2]date.Date
	for _, bad := range []string{"20512,99999999999", "20512,2O513", "20512"} {
		err := parseDays(got[:], []byte(bad))
		if err == nil {
			t.Fatalf("parseDays(%q) accepted it", bad)
		}
		for _, v := range []string{"20512", "99999999999", "2O513"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("parseDays(%q): error %q shows the value %s", bad, err, v)
			}
		}
	}
}
