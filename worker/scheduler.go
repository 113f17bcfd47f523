package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/robfig/cron/v3"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// Scheduler starts a night at every activation of a cron spec, in the
// university's time zone. Every replica may run one: a night's TaskIDs
// make the second start a no-op.
type Scheduler struct {
	Spec string
	// Cron is Spec already parsed (the configuration parses it once); nil:
	// Spec is parsed here.
	Cron     cron.Schedule
	Location *time.Location
	Night    *Night
	DB       *sqlx.DB
	// Tasks deletes archived tasks (asynq's Inspector), so a failed night
	// can be caught up.
	Tasks interface{ DeleteTask(queue, id string) error }
	Log   *slog.Logger
	Now   func() time.Time
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) schedule() (cron.Schedule, error) {
	if s.Cron != nil {
		return s.Cron, nil
	}
	sched, err := cron.ParseStandard(s.Spec)
	if err != nil {
		return nil, fmt.Errorf("SISNOTIFY_SCHEDULE: %w", err)
	}
	return sched, nil
}

// Run starts a night at each activation until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	sched, err := s.schedule()
	if err != nil {
		return err
	}
	for {
		now := s.now().In(s.Location)
		next := sched.Next(now)
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		night := date.FromTime(next.In(s.Location))
		started, err := s.Night.Start(ctx, night)
		if err != nil {
			s.log().ErrorContext(ctx, "start night", "night", night.String(), "err", err)
			continue
		}
		s.log().InfoContext(ctx, "night scheduled", "night", night.String(), "started_here", started)
	}
}

// Last returns the latest activation of the schedule at or before now.
func (s *Scheduler) Last(now time.Time) (time.Time, error) {
	sched, err := s.schedule()
	if err != nil {
		return time.Time{}, err
	}
	now = now.In(s.Location)
	// cron has no "previous": walk forward from far enough back.
	for back := 2 * 24 * time.Hour; back <= 64*24*time.Hour; back *= 2 {
		t := sched.Next(now.Add(-back))
		if t.After(now) {
			continue
		}
		for {
			n := sched.Next(t)
			if n.After(now) {
				return t, nil
			}
			t = n
		}
	}
	return time.Time{}, fmt.Errorf("SISNOTIFY_SCHEDULE %q: no activation in the last two months", s.Spec)
}

// CatchUp starts the last scheduled night when it has not succeeded: the
// service was down (or the night failed) when it was due.
func (s *Scheduler) CatchUp(ctx context.Context) (date.Date, bool, error) {
	last, err := s.Last(s.now())
	if err != nil {
		return 0, false, err
	}
	night := date.FromTime(last)
	ok, err := store.New(s.DB).NightIsOK(ctx, night)
	if err != nil {
		return night, false, fmt.Errorf("catch up: %w", err)
	}
	if ok {
		return night, false, nil
	}
	// A night that failed keeps its tasks, and so their TaskIDs, in the
	// archive: clear them so it can run again.
	if s.Tasks != nil {
		for _, p := range phases {
			_ = s.Tasks.DeleteTask(QueueNight, fmt.Sprintf("night-%s-%s", night, p.name))
		}
	}
	started, err := s.Night.Start(ctx, night)
	if err != nil {
		return night, false, err
	}
	if started {
		s.log().InfoContext(ctx, "catching up a missed night", "night", night.String())
	}
	return night, started, nil
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
