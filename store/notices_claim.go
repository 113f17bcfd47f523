package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// ClaimedNotice is a notice row claimed for sending, with what its
// template needs.
type ClaimedNotice struct {
	NoticeID    int64          `db:"notice_id"`
	Key         string         `db:"notice_key"`
	Rule        string         `db:"rule"`
	Level       int            `db:"level"`
	StudentID   string         `db:"student_id"`
	SubjectID   string         `db:"subject_id"`
	Audience    string         `db:"audience"`
	Channel     string         `db:"channel"`
	Recipient   string         `db:"recipient"`
	Language    sql.NullString `db:"language"`
	DueOn       int32          `db:"due_on"`
	Night       int32          `db:"night"`
	Anchor      int32          `db:"anchor"`
	Departure   int32          `db:"departure_on"`
	Return      int32          `db:"return_on"`
	Closed      bool           `db:"closed"`
	GivenName   string         `db:"given_name"`
	FamilyName  string         `db:"family_name"`
	VisaRegime  string         `db:"visa_regime"`
	FacultyName string         `db:"faculty_name"`
	DeanName    string         `db:"dean_name"`
	// What staff need to reach the student, and the trip's stated reason:
	// for the templates only, never for a log.
	StudentEmail string `db:"student_email"`
	StudentPhone string `db:"student_phone"`
	Reason       string `db:"reason"`
}

// NoticeOutcome is the record of one attempt at a notice: its new status
// and, "" for none, the error's class, the provider's id, the error, and
// what was rendered (language, template version, content hash).
type NoticeOutcome struct {
	ID                                                int64
	Status                                            NoticeStatus
	Class, Provider, Err, Lang, TemplateVersion, Hash string
}

// NoticeBatches claims and records the notices of a process's concurrent
// deliveries, a batch at a time: one statement for the claims of a batch,
// one for its records. Its statements are prepared on first use and kept:
// database/sql prepares them again on each pool connection that runs them,
// and PostgreSQL then plans them once per connection instead of parsing
// and planning them for every batch (that was a quarter of the database's
// CPU while delivering). A failed prepare (the database is away) is tried
// again on the next use. Make one per process (per jobs.Deliverer); its
// methods are safe for concurrent use.
type NoticeBatches struct {
	db            *sqlx.DB
	claim, record noticePrepared
}

// NoticeBatches returns new batches over the store's pool.
func (s *Store) NoticeBatches() *NoticeBatches { return &NoticeBatches{db: s.db} }

// noticePrepared is a statement prepared on first use and kept.
type noticePrepared struct {
	mu sync.Mutex
	st *sqlx.Stmt
}

func (p *noticePrepared) get(ctx context.Context, db *sqlx.DB, query string) (*sqlx.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		st, err := db.PreparexContext(ctx, query)
		if err != nil {
			return nil, err
		}
		p.st = st
	}
	return p.st, nil
}

// noticeClaimQuery claims the notices of ids that are pending, or sending
// for an owner that has died or under a lease that has passed ($2
// seconds), and not snoozed by the office as of $4 (the university's
// date), for owner $3 (0: none), and returns what their templates need.
// One statement for a batch of concurrent deliveries.
//
// The claim commits without waiting for the WAL flush (synchronous_commit
// off, for this transaction only): other workers see it at once all the
// same, and a PostgreSQL crash that lost it would leave the notice pending,
// which a lease that survived would not improve: a claimed notice whose
// outcome is not recorded is sent again after its lease either way. The
// record of a sent notice, which is what prevents a second send, commits
// durably.
var noticeClaimQuery = `
	WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
	c AS (
		UPDATE sisnotify.notices
		SET status = 'sending', claimed_at = now(), claimed_by = NULLIF($3::bigint, 0), attempts = attempts + 1, updated_at = now()
		WHERE notice_id = ANY($1) AND ` + noticeClaimable("$2") + ` AND ` + noticeNotSnoozed("$4") + `
		RETURNING notice_id, notice_key, rule, level, student_id, subject_id, audience, channel, recipient, language,
		          due_on, night, obligation_id)
	SELECT c.notice_id, c.notice_key, c.rule, c.level, c.student_id, c.subject_id, c.audience, c.channel, c.recipient, c.language,
	       ` + dayNum("c.due_on") + ` AS due_on, ` + dayNum("c.night") + ` AS night, ` + dayNum("o.anchor") + ` AS anchor,
	       ` + dayNum("t.departure_on") + ` AS departure_on, ` + dayNum("t.return_on") + ` AS return_on,
	       o.closed_at IS NOT NULL AS closed,
	       coalesce(s.given_name, '') AS given_name, coalesce(s.family_name, '') AS family_name,
	       coalesce(s.visa_regime, '') AS visa_regime, coalesce(f.name, '') AS faculty_name, coalesce(f.dean_name, '') AS dean_name,
	       coalesce(s.email, '') AS student_email, coalesce(s.phone, '') AS student_phone, coalesce(t.reason, '') AS reason
	FROM c
	CROSS JOIN async
	JOIN sisnotify.obligations o ON o.obligation_id = c.obligation_id
	LEFT JOIN sisnotify.students s ON s.student_id = c.student_id
	LEFT JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id
	LEFT JOIN sisnotify.travel_requests t ON t.request_id = c.subject_id AND c.subject_id <> c.student_id`

// noticeClaimable is the SQL condition of a notice row that may be
// claimed: pending, or sending for an owner that has died (its process is
// gone) or under a lease (lease, a parameter in seconds) that has passed.
func noticeClaimable(lease string) string {
	return `(status = 'pending' OR (status = 'sending' AND (claimed_at < now() - ` + lease + ` * interval '1 second' OR ` +
		OwnerDead("claimed_by") + `)))`
}

// noticeNotSnoozed is the SQL condition of a notice row (of
// sisnotify.notices, unaliased) that the office has not snoozed as of
// today (a parameter: the university's date, not the database's): a
// student notice of an obligation snoozed until a later date stays
// pending, unclaimed and off the queue, until that date; the office's and
// the deans' notices never wait.
func noticeNotSnoozed(today string) string {
	return `(audience <> 'student' OR NOT EXISTS (SELECT 1 FROM sisnotify.obligations so
		WHERE so.obligation_id = notices.obligation_id AND so.snoozed_until > ` + today + `::date))`
}

// leaseSeconds is a claim's lease as the statements take it.
func leaseSeconds(lease time.Duration) int64 { return int64(lease / time.Second) }

// Claim claims the notices of ids that may be claimed (pending, or sending
// for a dead owner or past lease; not snoozed as of today, the
// university's date) for owner (0: none) and returns what their templates
// need, in no particular order: the notices not claimed are missing.
func (b *NoticeBatches) Claim(ctx context.Context, ids []int64, lease time.Duration, owner int64, today date.Date) ([]ClaimedNotice, error) {
	st, err := b.claim.get(ctx, b.db, noticeClaimQuery)
	if err != nil {
		return nil, err
	}
	var rows []ClaimedNotice
	if err := st.SelectContext(ctx, &rows, pq.Array(ids), leaseSeconds(lease), owner, today.String()); err != nil {
		return nil, err
	}
	return rows, nil
}

// noticeRecordQuery records a batch of outcomes, each only on a notice
// still claimed ('sending'), and appends each recorded outcome to the
// notice's history (sisnotify.notice_attempts, numbered by the claim's
// attempts counter) in the same statement: still one round trip per batch.
const noticeRecordQuery = `
	WITH v AS (
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
		     AS v(id, status, class, provider, err, lang, version, hash)),
	u AS (
		UPDATE sisnotify.notices n
		SET status = v.status, error_class = NULLIF(v.class, ''), provider_id = coalesce(NULLIF(v.provider, ''), n.provider_id),
		    last_error = NULLIF(v.err, ''), language = coalesce(NULLIF(v.lang, ''), n.language),
		    template_version = coalesce(NULLIF(v.version, ''), n.template_version), content_hash = coalesce(NULLIF(v.hash, ''), n.content_hash),
		    sent_at = CASE WHEN v.status = 'sent' THEN now() END, updated_at = now()
		FROM v
		WHERE n.notice_id = v.id AND n.status = 'sending'
		RETURNING n.notice_id, n.attempts, v.status, v.class, v.err)
	INSERT INTO sisnotify.notice_attempts (notice_id, attempt, outcome, error_class, error)
	SELECT notice_id, attempts, CASE WHEN status = 'pending' THEN 'retry' ELSE status END, NULLIF(class, ''), NULLIF(err, '')
	FROM u
	ON CONFLICT (notice_id, attempt) DO NOTHING`

// Record records the outcomes of a batch of attempts, each only on a
// notice still claimed, with each notice's history.
func (b *NoticeBatches) Record(ctx context.Context, outs []NoticeOutcome) error {
	cols := make([][]string, 7)
	ids := make([]int64, len(outs))
	for i, o := range outs {
		ids[i] = o.ID
		for j, v := range []string{string(o.Status), o.Class, o.Provider, o.Err, o.Lang, o.TemplateVersion, o.Hash} {
			cols[j] = append(cols[j], v)
		}
	}
	st, err := b.record.get(ctx, b.db, noticeRecordQuery)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, pq.Array(ids), pq.Array(cols[0]), pq.Array(cols[1]), pq.Array(cols[2]),
		pq.Array(cols[3]), pq.Array(cols[4]), pq.Array(cols[5]), pq.Array(cols[6]))
	return err
}

// NoticeStatusOf is the status of notice id; false when there is no such
// notice.
func (s *Store) NoticeStatusOf(ctx context.Context, id int64) (NoticeStatus, bool, error) {
	var status NoticeStatus
	if err := s.db.GetContext(ctx, &status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", false, nil
		}
		return "", false, err
	}
	return status, true, nil
}

// NoticeLease is how long a claimed ("sending") notice belongs to a worker
// whose death cannot be known (a claim without an owner), or to a living
// one that hangs, unless the caller says otherwise: after it another may
// claim it, and the queue gives it a task again.
const NoticeLease = 10 * time.Minute

// ReleaseNoticeClaim gives notice id, claimed by owner (0: none), back
// (pending) as if the claim had not happened: its attempts are not
// counted and its history gets no line. The deliverer does this when the
// provider's rate limit postpones the notice before anything was sent.
// false: the notice was not so claimed (nothing changed).
func (s *Store) ReleaseNoticeClaim(ctx context.Context, id, owner int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE sisnotify.notices
		SET status = 'pending', attempts = greatest(attempts - 1, 0), claimed_by = NULL, updated_at = now()
		WHERE notice_id = $1 AND status = 'sending' AND claimed_by IS NOT DISTINCT FROM NULLIF($2::bigint, 0)`, id, owner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
