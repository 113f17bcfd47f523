package store

import (
	"context"
	"time"
)

// DigestUnreachable is a contact of a student that cannot receive (a
// bounce, an undelivered SMS), as the office digest lists it under the
// students it cannot reach.
type DigestUnreachable struct {
	StudentID string    `db:"student_id"`
	Name      string    `db:"name"`
	Faculty   string    `db:"faculty"`
	Channel   string    `db:"channel"` // email | sms
	Since     time.Time `db:"since"`
	LastError string    `db:"last_error"`
}

// digestUnreachableQuery: the unreachable contacts that still apply (the
// snapshot holds the same value: unreachableNow) of the students the SIS
// still lists, one per student and channel, by student and channel.
var digestUnreachableQuery = `
	SELECT DISTINCT ON (u.student_id, u.channel) u.student_id, u.channel, u.since, u.last_error,
	       btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name,
	       coalesce(fa.name, s.faculty_id, '') AS faculty
	FROM sisnotify.unreachable_contacts u
	JOIN sisnotify.students s ON s.student_id = u.student_id AND s.removed_at IS NULL
	LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
	WHERE ` + unreachableNow + `
	ORDER BY u.student_id, u.channel, u.since DESC`

// Unreachable reads, in the digest's snapshot, the contacts of the
// students the SIS still lists that cannot receive and still apply (a new
// address or number in the SIS is reachable again): each student once per
// channel, by student and channel. The digest job orders them.
func (r *DigestRead) Unreachable(ctx context.Context) ([]DigestUnreachable, error) {
	var out []DigestUnreachable
	if err := r.tx.SelectContext(ctx, &out, digestUnreachableQuery); err != nil {
		return nil, err
	}
	return out, nil
}
