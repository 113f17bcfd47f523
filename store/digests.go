package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The digests of a night (sisnotify.digests): one row per (night,
// recipient), claimed with a conditional statement and a lease before it
// is sent, so that a rerun sends nothing again, a crashed run resumes the
// unsent ones, and two workers never send the same one; the obligations
// each listed (sisnotify.digest_rows) mark the next day's new ones. What a
// digest lists is read in one snapshot: DigestRead (digests_read.go).
//
// The caller (jobs.Digest) names what failed: the errors of these methods
// are the driver's, except where a method says otherwise.

// DigestLatestNights is the latest night evaluated (lastNight) and the
// latest night with a digest that was claimed, sent or failed, as
// YYYY-MM-DD; NULL for none.
func (s *Store) DigestLatestNights(ctx context.Context) (evaluated, digested sql.NullString, err error) {
	err = s.db.QueryRowxContext(ctx, `SELECT
		`+lastNight+`::text,
		(SELECT max(night)::text FROM sisnotify.digests WHERE status IN ('sending', 'sent', 'failed'))`).Scan(&evaluated, &digested)
	return evaluated, digested, err
}

// CancelStaleDigests cancels the digests of night whose recipient is not
// in keep (a dean whose cases were resolved, an address removed from the
// configuration since a crashed run) and that are pending, or sending
// with their lease of leaseSeconds passed. It returns how many it
// cancelled.
func (s *Store) CancelStaleDigests(ctx context.Context, night date.Date, keep []string, leaseSeconds int64) (int64, error) {
	c, err := s.db.ExecContext(ctx, `UPDATE sisnotify.digests SET status = 'cancelled', updated_at = now()
		WHERE night = $1 AND NOT (recipient_key = ANY($2))
		  AND (status = 'pending' OR (status = 'sending' AND claimed_at < now() - $3 * interval '1 second'))`,
		night.String(), pq.Array(keep), leaseSeconds)
	if err != nil {
		return 0, err
	}
	n, _ := c.RowsAffected()
	return n, nil
}

// DigestClaim is a digest to claim: of one night to one recipient.
type DigestClaim struct {
	Night        date.Date
	Audience     string // templates.AudienceOffice or AudienceDean
	RecipientKey string // "office1", "dean-ENG"
	Recipient    string // the address
	Language     string
	MessageID    string
}

// ClaimDigest claims the digest c for sending (status sending, its
// attempts counted, claimed now), inserting it the first time: a digest
// that is pending or cancelled, or sending with its lease of leaseSeconds
// passed or its owner dead (OwnerDead: the process that claimed it is
// gone), is claimed again; the claim records owner (0: none, and then
// only the lease frees it). ok is false when it is not claimable (sent,
// failed, or being sent by another worker): DigestStatusOf says which.
func (s *Store) ClaimDigest(ctx context.Context, c DigestClaim, leaseSeconds, owner int64) (id int64, ok bool, err error) {
	err = s.db.GetContext(ctx, &id, `
		INSERT INTO sisnotify.digests AS g (night, audience, recipient_key, recipient, language, status, attempts, claimed_at, claimed_by, message_id)
		VALUES ($1, $2, $3, $4, $5, 'sending', 1, now(), NULLIF($8::bigint, 0), $6)
		ON CONFLICT (night, recipient_key) DO UPDATE
		SET status = 'sending', attempts = g.attempts + 1, claimed_at = now(), claimed_by = EXCLUDED.claimed_by,
		    audience = EXCLUDED.audience, recipient = EXCLUDED.recipient, language = EXCLUDED.language, updated_at = now()
		WHERE g.status IN ('pending', 'cancelled')
		   OR (g.status = 'sending' AND (g.claimed_at < now() - $7 * interval '1 second' OR `+OwnerDead("g.claimed_by")+`))
		RETURNING g.digest_id`, c.Night.String(), c.Audience, c.RecipientKey, c.Recipient, c.Language, c.MessageID, leaseSeconds, owner)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// DigestStatusOf is the state of the digest of night to recipientKey.
func (s *Store) DigestStatusOf(ctx context.Context, night date.Date, recipientKey string) (DigestStatus, error) {
	var status string
	if err := s.db.GetContext(ctx, &status, `SELECT status FROM sisnotify.digests WHERE night = $1 AND recipient_key = $2`, night.String(), recipientKey); err != nil {
		return "", err
	}
	return DigestStatus(status), nil
}

// PreviousDigestRows is the obligations listed by recipientKey's latest
// digest before night that went out; none when it has had none.
func (s *Store) PreviousDigestRows(ctx context.Context, recipientKey string, night date.Date) ([]int64, error) {
	var prev []int64
	if err := s.db.SelectContext(ctx, &prev, `
		SELECT obligation_id FROM sisnotify.digest_rows
		WHERE digest_id = (SELECT digest_id FROM sisnotify.digests
		                   WHERE recipient_key = $1 AND night < $2 AND status = 'sent' ORDER BY night DESC LIMIT 1)`,
		recipientKey, night.String()); err != nil {
		return nil, err
	}
	return prev, nil
}

// RecordDigestRows replaces, in one transaction, the obligations digest
// id lists (a resumed digest may list other ones than its first attempt),
// and records how many it lists and how many of them are new. Its errors
// say "record rows".
func (s *Store) RecordDigestRows(ctx context.Context, id int64, obligationIDs []int64, newRows int) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record rows: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sisnotify.digest_rows WHERE digest_id = $1`, id); err != nil {
		return fmt.Errorf("record rows: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sisnotify.digest_rows (digest_id, obligation_id) SELECT $1, unnest($2::bigint[])`, id, pq.Array(obligationIDs)); err != nil {
		return fmt.Errorf("record rows: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sisnotify.digests SET listed = $2, new_rows = $3, updated_at = now() WHERE digest_id = $1`, id, len(obligationIDs), newRows); err != nil {
		return fmt.Errorf("record rows: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record rows: %w", err)
	}
	return nil
}

// PruneDigestRows deletes the listed rows of recipientKey's digests of
// the nights more than keepDays before night: only the newest digest's
// rows are needed.
func (s *Store) PruneDigestRows(ctx context.Context, recipientKey string, night date.Date, keepDays int) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sisnotify.digest_rows r USING sisnotify.digests g
			WHERE r.digest_id = g.digest_id AND g.recipient_key = $1 AND g.night < $2::date - $3::int`,
		recipientKey, night.String(), keepDays)
	return err
}

// DigestOutcome is the outcome of an attempt to send a digest. The empty
// strings leave the provider's id, the template version and the content
// hash as they were, and clear the error class and the last error.
type DigestOutcome struct {
	Status     DigestStatus // sent, failed, or pending (to be sent again)
	ErrorClass string       // "permanent", "temporary" or ""
	ProviderID string
	LastError  string
	Version    string // template version
	Hash       string // content hash
}

// FinishDigest records the outcome of the attempt that claimed digest id
// (while it is still sending); sent_at is set when it was sent. Its error
// says the digest and the state.
func (s *Store) FinishDigest(ctx context.Context, id int64, o DigestOutcome) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE sisnotify.digests
		SET status = $2, error_class = NULLIF($3, ''), provider_id = coalesce(NULLIF($4, ''), provider_id),
		    last_error = NULLIF($5, ''), template_version = coalesce(NULLIF($6, ''), template_version),
		    content_hash = coalesce(NULLIF($7, ''), content_hash),
		    sent_at = CASE WHEN $2 = 'sent' THEN now() END, updated_at = now()
		WHERE digest_id = $1 AND status = 'sending'`, id, string(o.Status), o.ErrorClass, o.ProviderID, o.LastError, o.Version, o.Hash)
	if err != nil {
		return fmt.Errorf("digest %d: record %s: %w", id, o.Status, err)
	}
	return nil
}

// ReleaseDigestClaim gives digest id back (pending) as if it had not been
// claimed: its attempts are not counted. The digest does this when the
// provider's rate limit postpones it before it was sent.
func (s *Store) ReleaseDigestClaim(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sisnotify.digests
		SET status = 'pending', attempts = greatest(attempts - 1, 0), updated_at = now()
		WHERE digest_id = $1 AND status = 'sending'`, id)
	return err
}
