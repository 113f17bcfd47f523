package sis_test

import (
	"context"
	"testing"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// The SIS's row hash changes with every column but updated_at, tells NULL
// from an empty string, is the same from every hashed read (the rows in
// full, the hashes alone, the rows of given keys), and StreamKeys finds
// keys that need quoting.
func TestRowHashes(t *testing.T) {
	ctx := context.Background()
	d := testenv.New(t, "")
	db := d.Open(t)
	if _, err := db.ExecContext(ctx, sis.ReferenceSchema+`;
		INSERT INTO sis.faculties (faculty_id, name, dean_name) VALUES ('x', 'X', 'Dean')`); err != nil {
		t.Fatal(err)
	}
	// One base row, and one row per column that differs from it in that
	// column alone.
	base := map[string]string{}
	for _, c := range sis.Students.Columns {
		base[c] = "NULL"
	}
	base["given_name"], base["family_name"], base["visa_regime"], base["enrollment_status"] = "'A'", "'B'", "'visa'", "'active'"
	base["passport_expires_on"], base["updated_at"] = "DATE '2027-01-01'", "TIMESTAMPTZ '2026-01-01 00:00Z'"
	insert := func(key string, set map[string]string) {
		t.Helper()
		cols, vals := "", ""
		for _, c := range sis.Students.Columns {
			v := base[c]
			if x, ok := set[c]; ok {
				v = x
			}
			if c == "student_id" {
				v = pq.QuoteLiteral(key)
			}
			if cols != "" {
				cols, vals = cols+", ", vals+", "
			}
			cols, vals = cols+c, vals+v
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO sis.students ("+cols+") VALUES ("+vals+")"); err != nil {
			t.Fatal(err)
		}
	}
	insert("base", nil)
	insert("passport-infinite", map[string]string{"passport_expires_on": "'infinity'"})
	// Then each col-<column> row is changed in that column alone (email
	// from NULL to empty), and the base row in its updated_at alone.
	change := map[string]string{}
	for i, c := range sis.Students.Columns[1 : len(sis.Students.Columns)-1] {
		insert("col-"+c, nil)
		v := "'x'"
		if base[c] != "NULL" {
			v = base[c] + " || 'y'"
		}
		if c == "email" {
			v = "''"
		}
		if len(c) > 3 && c[len(c)-3:] == "_on" {
			v = "DATE '2026-03-0" + string(rune('1'+i%9)) + "'"
		}
		change[c] = v
	}
	awkward := []string{`O'Brien`, `quote"d`, `back\slash`, `{brace},comma`, `space d`, `S0000001`}
	for _, k := range awkward {
		insert(k, nil)
	}

	full, alone, byKey := map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	err := sis.NewReader(d.URL).Read(ctx, func(ctx context.Context, s *sis.Snapshot) error {
		if err := s.StreamHashed(ctx, sis.Students, func(r *sis.Row) error {
			if !r.Hashed() || r.Len() != len(sis.Students.Columns) {
				t.Errorf("StreamHashed row %s: hashed %v, %d columns", r.String(0), r.Hashed(), r.Len())
			}
			full[r.String(0)] = r.Hash()
			return nil
		}); err != nil {
			return err
		}
		if err := s.Hashes(ctx, sis.Students, func(r *sis.Row) error {
			if r.Len() != 1 {
				t.Errorf("Hashes row %s: %d columns, want the key alone", r.String(0), r.Len())
			}
			alone[r.String(0)] = r.Hash()
			return nil
		}); err != nil {
			return err
		}
		return s.StreamKeys(ctx, sis.Students, awkward, func(r *sis.Row) error {
			byKey[r.String(0)] = r.Hash()
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != len(alone) {
		t.Fatalf("%d rows streamed, %d hashes", len(full), len(alone))
	}
	seen := map[uint64]string{}
	for k, h := range full {
		if alone[k] != h {
			t.Errorf("%s: hash %x streamed with the row, %x alone", k, h, alone[k])
		}
		if want, ok := byKey[k]; ok && want != h {
			t.Errorf("%s: hash %x by key, %x streamed", k, want, h)
		}
		if other, ok := seen[h]; ok {
			t.Errorf("%s and %s have the same hash %x", k, other, h)
		}
		seen[h] = k
	}
	for c, v := range change {
		if _, err := db.ExecContext(ctx, "UPDATE sis.students SET "+c+" = "+v+" WHERE student_id = 'col-"+c+"'"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE sis.students SET updated_at = now() WHERE student_id = 'base'`); err != nil {
		t.Fatal(err)
	}
	after := hashesOf(t, d.URL, sis.Students)
	if after["base"] != full["base"] {
		t.Errorf("a change of updated_at alone changed the hash")
	}
	for c := range change {
		if after["col-"+c] == full["col-"+c] {
			t.Errorf("a change of %s to %s leaves the hash as it was", c, change[c])
		}
	}
	if len(byKey) != len(awkward) {
		t.Errorf("StreamKeys found %d of the %d keys: %v", len(byKey), len(awkward), byKey)
	}
}

// Every column of a travel request but updated_at is in its hash: the
// booleans (hashed as text) as much as the dates and the text.
func TestTravelRowHashes(t *testing.T) {
	ctx := context.Background()
	d := testenv.New(t, "")
	db := d.Open(t)
	if _, err := db.ExecContext(ctx, sis.ReferenceSchema+`;
		INSERT INTO sis.students (student_id, given_name, family_name, visa_regime, enrollment_status) VALUES ('S1', 'A', 'B', 'visa', 'active'), ('S2', 'C', 'D', 'visa', 'active')`); err != nil {
		t.Fatal(err)
	}
	cols := sis.TravelRequests.Columns[1 : len(sis.TravelRequests.Columns)-1]
	change := map[string]string{
		"student_id": "'S2'", "kind": "'vacation'", "submitted_on": "submitted_on + 1", "departure_on": "departure_on + 1",
		"return_on": "return_on + 1", "dean_decision": "'approved'", "reason": "''", "exit_visa_ready": "true",
		"departed_on": "DATE '2026-12-01'", "returned_on": "DATE '2026-12-02'", "return_check_in_on": "DATE '2026-12-03'",
		"cancelled": "NOT cancelled",
	}
	for _, c := range cols {
		if _, ok := change[c]; !ok {
			t.Fatalf("no change for column %s", c)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
			VALUES ($1, 'S1', 'personal', DATE '2026-11-01', DATE '2026-12-10', DATE '2026-12-20', 'pending')`, "T-"+c); err != nil {
			t.Fatal(err)
		}
	}
	before := hashesOf(t, d.URL, sis.TravelRequests)
	for _, c := range cols {
		if _, err := db.ExecContext(ctx, "UPDATE sis.travel_requests SET "+c+" = "+change[c]+" WHERE request_id = $1", "T-"+c); err != nil {
			t.Fatal(err)
		}
	}
	after := hashesOf(t, d.URL, sis.TravelRequests)
	for _, c := range cols {
		if before["T-"+c] == after["T-"+c] {
			t.Errorf("a change of %s leaves the hash as it was", c)
		}
	}
}

// hashesOf reads t's row hashes by key (Snapshot.Hashes).
func hashesOf(t *testing.T, url string, table sis.Table) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	if err := sis.NewReader(url).Read(context.Background(), func(ctx context.Context, s *sis.Snapshot) error {
		return s.Hashes(ctx, table, func(r *sis.Row) error {
			got[r.String(0)] = r.Hash()
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return got
}
