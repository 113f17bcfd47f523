package main

import (
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/pace"
)

func TestRateVariables(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"SISNOTIFY_MAIL_RATE": "30/m,10000/d", "SISNOTIFY_SMS_RATE": "5/s"}), need{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.MailRate) != 2 || c.MailRate[0] != (pace.Limit{N: 30, Period: time.Minute}) || c.MailRate[1] != (pace.Limit{N: 10000, Period: 24 * time.Hour}) {
		t.Errorf("SISNOTIFY_MAIL_RATE=30/m,10000/d read as %v", c.MailRate)
	}
	if len(c.SMSRate) != 1 || c.SMSRate[0] != (pace.Limit{N: 5, Period: time.Second}) {
		t.Errorf("SISNOTIFY_SMS_RATE=5/s read as %v", c.SMSRate)
	}
	if c, err := loadConfig(envOf(nil), need{}); err != nil || c.MailRate != nil || c.SMSRate != nil {
		t.Errorf("unset: %v, %v, %v; want no limits", c.MailRate, c.SMSRate, err)
	}
	for _, bad := range []struct{ name, value, want string }{
		{"SISNOTIFY_MAIL_RATE", "30 per minute", "SISNOTIFY_MAIL_RATE: \"30 per minute\" is not N/s"},
		{"SISNOTIFY_MAIL_RATE", "30/w", "SISNOTIFY_MAIL_RATE: \"30/w\": unknown period"},
		{"SISNOTIFY_SMS_RATE", "0/s", "SISNOTIFY_SMS_RATE: \"0/s\": the count must be a whole number above 0"},
		{"SISNOTIFY_SMS_RATE", "5/s,9/s", "SISNOTIFY_SMS_RATE: two limits per s"},
	} {
		_, stderr, err := runCmd(t, map[string]string{"SISNOTIFY_DB_URL": goodPG, bad.name: bad.value}, "migrate")
		if exitStatus(err) != 2 {
			t.Errorf("%s=%s: exit %d, want 2", bad.name, bad.value, exitStatus(err))
		}
		msg := err.Error() + stderr
		if !strings.Contains(msg, bad.want) || strings.Count(strings.TrimSpace(err.Error()), "\n") != 0 {
			t.Errorf("%s=%s: %q, want one line with %q", bad.name, bad.value, err.Error(), bad.want)
		}
	}
}
