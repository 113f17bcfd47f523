package store

import (
	"context"
	"errors"
	"fmt"
)

// Guard holds a sync whose SIS looks broken (a view that lost a join, an
// export cut short): when, compared with the last good snapshot, too many
// students disappear or too many lose a deadline field, the sync fails and
// the previous snapshot stays, so nothing is sent on bad data.
type Guard struct {
	// MaxRosterDrop and MaxEmptied are shares (0.2 = 20 %) of the
	// students of the last good snapshot.
	MaxRosterDrop, MaxEmptied float64
	// Force lets the sync through once a person has looked at the SIS.
	Force bool
}

// ErrFeedGuard is the error of a held sync.
var ErrFeedGuard = errors.New("feed guard")

// GuardStats is what the guard measured.
type GuardStats struct {
	Previous int64 // students of the last good snapshot
	Removed  int64 // of them, gone from the SIS tonight
	Emptied  int64 // of them, with passport expiry, registration expiry or entry turned empty
	Fields   map[string]int64
}

// check measures the students' staged changes against the snapshot before
// they are merged.
func (tw *TableWriter) checkGuard(ctx context.Context) error {
	g := tw.w.Guard
	if g == nil || tw.t.entity != EntityStudent {
		return nil
	}
	st := GuardStats{Previous: tw.prevPresent, Removed: int64(len(tw.removed)), Fields: map[string]int64{}}
	var passport, registration, entry int64
	if err := tw.w.conn.QueryRowContext(ctx, `
		SELECT count(*) FILTER (WHERE t.passport_expires_on IS NOT NULL AND s.passport_expires_on IS NULL),
		       count(*) FILTER (WHERE t.registration_expires_on IS NOT NULL AND s.registration_expires_on IS NULL),
		       count(*) FILTER (WHERE t.entered_on IS NOT NULL AND s.entered_on IS NULL),
		       count(*) FILTER (WHERE (t.passport_expires_on IS NOT NULL AND s.passport_expires_on IS NULL)
		                           OR (t.registration_expires_on IS NOT NULL AND s.registration_expires_on IS NULL)
		                           OR (t.entered_on IS NOT NULL AND s.entered_on IS NULL))
		FROM stage_students s JOIN sisnotify.students t ON t.student_id = s.student_id AND t.removed_at IS NULL`).Scan(&passport, &registration, &entry, &st.Emptied); err != nil {
		return fmt.Errorf("snapshot: feed guard: %w", err)
	}
	st.Fields["passport_expires_on"], st.Fields["registration_expires_on"], st.Fields["entered_on"] = passport, registration, entry
	tw.w.GuardStats = st
	if g.Force || st.Previous == 0 {
		return nil
	}
	share := func(n int64) float64 { return float64(n) / float64(st.Previous) }
	switch {
	case share(st.Removed) > g.MaxRosterDrop:
		return fmt.Errorf("%w: the SIS lists %d of the %d students of the last good night (%.0f%% gone, limit %.0f%%)",
			ErrFeedGuard, st.Previous-st.Removed, st.Previous, 100*share(st.Removed), 100*g.MaxRosterDrop)
	case share(st.Emptied) > g.MaxEmptied:
		return fmt.Errorf("%w: %d of %d students lost a deadline date tonight (%.0f%%, limit %.0f%%: passport expiry %d, registration expiry %d, entry %d)",
			ErrFeedGuard, st.Emptied, st.Previous, 100*share(st.Emptied), 100*g.MaxEmptied, passport, registration, entry)
	}
	return nil
}
