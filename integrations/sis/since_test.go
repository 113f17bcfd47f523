package sis_test

import (
	"context"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// Began is the SIS's clock as an instant, whatever the SIS's time zone,
// and StreamSince reads the rows stamped at that instant or later, in key
// order; Keys counts the rows with a key.
func TestStreamSinceBegan(t *testing.T) {
	ctx := context.Background()
	d := testenv.New(t, "")
	db := d.Open(t)
	if _, err := db.ExecContext(ctx, sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	// A SIS fourteen hours ahead of UTC.
	if _, err := db.ExecContext(ctx, `ALTER DATABASE "`+d.Name+`" SET timezone = 'Pacific/Kiritimati'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `
		INSERT INTO sis.students (student_id, given_name, family_name, visa_regime, enrollment_status, updated_at) VALUES
		 ('S3', 'A', 'A', 'visa', 'active', now() - interval '3 days'),
		 ('S2', 'B', 'B', 'visa', 'active', now() + interval '1 minute'),
		 ('S1', 'C', 'C', 'visa', 'active', now() + interval '2 minutes'),
		 ('', 'D', 'D', 'visa', 'active', now())`); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	var began time.Time
	var got []string
	var keys int64
	err := sis.NewReader(d.URL).Read(ctx, func(ctx context.Context, s *sis.Snapshot) error {
		began = s.Began()
		var err error
		if keys, err = s.Keys(ctx, sis.Students); err != nil {
			return err
		}
		return s.StreamSince(ctx, sis.Students, began, func(r *sis.Row) error {
			got = append(got, r.String(sis.StudentID))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := began.Sub(before); d < -time.Minute || d > time.Minute {
		t.Fatalf("Began = %s, this machine's clock %s: not the same instant", began, before)
	}
	if len(got) != 2 || got[0] != "S1" || got[1] != "S2" {
		t.Fatalf("rows stamped since Began = %q, want S1, S2 in key order", got)
	}
	if keys != 3 {
		t.Fatalf("Keys = %d, want 3 (the row without a key is not counted)", keys)
	}
}
