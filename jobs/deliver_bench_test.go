package jobs_test

import (
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

// BenchmarkDeliver sends 10,000 notices by email through the whole path
// (asynq task, claim in PostgreSQL, template, SMTP, record) to a local SMTP
// sink, and reports messages/s next to the sink's one-connection limit
// measured in the same run.
func BenchmarkDeliver(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchDeliver(b)
	}
}

func benchDeliver(b *testing.B) {
	b.StopTimer()
	e := newEnv(b)
	e.entrants(b, 5000) // 10,000 student emails

	r := newRigTB(b, e, mailtest.Discard())
	limit, err := r.smtp.OneConnectionRate(2000, 3000)
	if err != nil {
		b.Fatal(err)
	}
	ceiling, _ := r.asynqCeiling(b, 10_000)
	sinkBefore := r.smtp.Count()
	b.StartTimer()
	start := time.Now()
	r.night(b)
	d := time.Since(start)
	b.StopTimer()
	sent := r.smtp.Count() - sinkBefore
	if sent != 10_000 {
		b.Fatalf("sent %d emails, want 10,000", sent)
	}
	rate := float64(sent) / d.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(limit, "sink-1conn-msgs/s")
	b.ReportMetric(rate/limit, "ratio")
	b.ReportMetric(ceiling, "asynq-noop-tasks/s")
	b.Logf("10,000 notices in %s: %.0f msgs/s; the sink takes %.0f msgs/s over one connection (ratio %.2f); asynq alone runs %.0f no-op tasks/s",
		d.Round(time.Millisecond), rate, limit, rate/limit, ceiling)
}
