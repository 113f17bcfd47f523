package jobs

import (
	"time"

	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// EnqueueResult counts what one pass of the queue's Enqueuer
// (worker.Enqueuer) did.
type EnqueueResult struct {
	Pending  int64 // notices pending (or stuck sending) in PostgreSQL
	Enqueued int64 // tasks created
	Queued   int64 // already in Redis
	Held     int64 // SMS held for quiet hours (created with a later ProcessAt)
}

// HoldUntil returns when a student SMS due on dueOn may go out, or the zero
// time to send it now: during quiet hours it is held until they end, unless
// holding it would pass the step's deadline day (the due date is today or
// later, and the quiet hours end after it).
func HoldUntil(now time.Time, loc *time.Location, quiet config.QuietHours, dueOn date.Date) time.Time {
	local := now.In(loc)
	minute := local.Hour()*60 + local.Minute()
	if !quiet.Contains(minute) {
		return time.Time{}
	}
	today := date.FromTime(local)
	end := time.Date(local.Year(), local.Month(), local.Day(), quiet.End/60, quiet.End%60, 0, 0, loc)
	if !end.After(local) {
		end = end.AddDate(0, 0, 1)
	}
	if today <= dueOn && date.FromTime(end) > dueOn {
		return time.Time{}
	}
	return end
}
