package worker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/pace"
)

// After the night's enqueue at 06:00 in Almaty, 402 emails (two for each
// of 201 entrants) at one a minute cannot all go before 09:00: the
// operators get one email with how many will be late and when the last
// should go, and /metrics says the same. At 30 a minute they all can: no
// email, and nothing late.
func TestForecastSaysWhenTheNightWillBeLate(t *testing.T) {
	r := newNightRig(t)
	if _, err := r.sis.Exec(`INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'E' || lpad(i::text, 5, '0'), 'Given', 'Family', 'e' || i || '@student.example', 'en', 'visa', 'ENG', 'active', '2026-11-25'
		FROM generate_series(1, 200) AS i`); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.NewServer(t)
	cfg, err := mail.ParseURL(smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mail.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	metrics := NewMetrics()
	clock := time.Date(2026, 11, 25, 6, 0, 0, 0, almaty) // the night's clock
	f := &Forecast{DB: r.db, Limits: map[string][]pace.Limit{pace.Mail: {{N: 1, Period: time.Minute}}},
		Location: almaty, Mail: pool, Ops: []string{"ops@uni.example"}, Metrics: metrics}
	r.night.Forecast, r.night.Now = f, func() time.Time { return clock }
	ctx := context.Background()
	night := date.MustParse("2026-11-25")
	for _, phase := range []string{"sync", "evaluate", "deliver"} {
		if _, err := r.night.RunPhase(ctx, phase, night, nil); err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
	}
	var emails int
	if err := r.db.Get(&emails, `SELECT count(*) FROM sisnotify.notices WHERE channel = 'email' AND status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	// At 1 a minute the first goes at 06:00 and the k-th k-1 minutes
	// later: 181 by 09:00, the last at 06:00 + (emails-1) minutes.
	late := emails - 181
	finish := clock.Add(time.Duration(emails-1) * time.Minute)
	if !smtp.WaitFor(1, 10*time.Second) {
		t.Fatal("no email to the operators")
	}
	m := smtp.Messages()[0]
	body := string(m.Data)
	wantSubject := "[sisnotify] the night of 2026-11-25: " + itoa(late) + " emails will go after the office opens"
	if m.Header("Subject") != wantSubject || m.To[0] != "ops@uni.example" || !strings.Contains(body, finish.Format("2006-01-02 15:04")) {
		t.Fatalf("ops email to %v: %q, want %q and the last at %s in\n%s", m.To, m.Header("Subject"), wantSubject, finish.Format("15:04"), body)
	}
	if got := gauge(t, metrics, "sisnotify_delivery_late_notices"); got != float64(late) {
		t.Errorf("sisnotify_delivery_late_notices{channel=email} = %v, want %d", got, late)
	}
	if got := gauge(t, metrics, "sisnotify_delivery_expected_finish_seconds"); got != float64(finish.Unix()) {
		t.Errorf("sisnotify_delivery_expected_finish_seconds{channel=email} = %v, want %d", got, finish.Unix())
	}

	// The same night at 30 a minute: all out by 06:14, nobody told.
	f.Limits[pace.Mail] = []pace.Limit{{N: 30, Period: time.Minute}}
	out, err := f.Check(ctx, night, clock)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Late != 0 || gauge(t, metrics, "sisnotify_delivery_late_notices") != 0 {
		t.Errorf("at 30/m: %+v, want nothing late", out[0])
	}
	time.Sleep(200 * time.Millisecond)
	if smtp.Count() != 1 {
		t.Errorf("%d emails to the operators, want the one of the late forecast", smtp.Count())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// gauge is the value of the email series of the gauge name in m.
func gauge(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "channel" && l.GetValue() == pace.Mail {
					return s.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{channel=email}", name)
	return 0
}
