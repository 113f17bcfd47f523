package sis_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// Keys come in byte order whatever the key column's collation: by the
// key's own order when it sorts as bytes do (the database's default here,
// or "C"), and by COLLATE "C" otherwise (an ICU collation, which puts
// "a" before "B" and ignores punctuation first).
func TestStreamKeysInByteOrder(t *testing.T) {
	keys := []string{"S-2", "S1", "s0", "S_3", "a", "B", "Ω1", "S10", "S 9"}
	for name, collation := range map[string]string{"default": "", "C": `COLLATE "C"`, "icu": `COLLATE "und-x-icu"`, "POSIX": `COLLATE "POSIX"`} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := testenv.New(t, "")
			db := d.Open(t)
			schema := strings.Replace(sis.ReferenceSchema, "faculty_id     text PRIMARY KEY", "faculty_id     text "+collation+" PRIMARY KEY", 1)
			if _, err := db.ExecContext(ctx, schema); err != nil {
				if strings.Contains(err.Error(), "collation") {
					t.Skipf("this PostgreSQL has no such collation: %v", err)
				}
				t.Fatal(err)
			}
			for _, k := range keys {
				if _, err := db.ExecContext(ctx, `INSERT INTO sis.faculties (faculty_id, name, dean_name) VALUES ($1, 'F', 'D')`, k); err != nil {
					t.Fatal(err)
				}
			}
			var got [][]byte
			err := sis.NewReader(d.URL).Read(ctx, func(ctx context.Context, s *sis.Snapshot) error {
				return s.Stream(ctx, sis.Faculties, func(r *sis.Row) error {
					got = append(got, append([]byte(nil), r.Bytes(sis.FacultyID)...))
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(keys) {
				t.Fatalf("%d rows, want %d", len(got), len(keys))
			}
			for i := 1; i < len(got); i++ {
				if bytes.Compare(got[i-1], got[i]) >= 0 {
					t.Fatalf("keys %q: %q before %q is not byte order", got, got[i-1], got[i])
				}
			}
		})
	}
}
