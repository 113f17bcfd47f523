package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

const hundredStudents = `
INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, enrollment_status, passport_expires_on, registration_expires_on, entered_on)
SELECT 'G' || lpad(i::text, 3, '0'), 'Given', 'Family', 'g' || i || '@student.example', 'visa', 'active', DATE '2030-01-01', DATE '2027-06-30', DATE '2026-09-01'
FROM generate_series(1, 100) AS i`

func TestFeedGuard(t *testing.T) {
	guard := &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}
	cases := []struct {
		name   string
		break_ string
		held   bool
	}{
		{"30% of the roster gone", `DELETE FROM sis.students WHERE student_id <= 'G030'`, true},
		{"5% of the roster gone", `DELETE FROM sis.students WHERE student_id <= 'G005'`, false},
		{"passport expiry emptied for 30%", `UPDATE sis.students SET passport_expires_on = NULL WHERE student_id <= 'G030'`, true},
		{"entry emptied for 25%", `UPDATE sis.students SET entered_on = NULL WHERE student_id <= 'G025'`, true},
		{"registration expiry emptied for 10%", `UPDATE sis.students SET registration_expires_on = NULL WHERE student_id <= 'G010'`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.exec(t, hundredStudents)
			s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, Guard: guard}
			ctx := context.Background()
			if _, err := s.Run(ctx, asOf); err != nil {
				t.Fatal(err)
			}
			e.exec(t, c.break_)
			_, err := s.Run(ctx, asOf)
			if !c.held {
				if err != nil {
					t.Fatalf("a change within the limits was held: %v", err)
				}
				return
			}
			if !errors.Is(err, store.ErrFeedGuard) {
				t.Fatalf("sync = %v, want the feed guard to hold it", err)
			}
			// The previous snapshot is kept.
			var present, passports int
			if err := e.db.QueryRow(`SELECT count(*) FILTER (WHERE removed_at IS NULL), count(passport_expires_on) FROM sisnotify.students`).Scan(&present, &passports); err != nil {
				t.Fatal(err)
			}
			if present != 100 || passports != 100 {
				t.Fatalf("after a held sync the snapshot has %d students, %d passports; want the previous 100 and 100", present, passports)
			}
			// After a person has looked: --force lets it through.
			forced := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, Guard: &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2, Force: true}}
			if _, err := forced.Run(ctx, asOf); err != nil {
				t.Fatalf("forced sync: %v", err)
			}
		})
	}
}
