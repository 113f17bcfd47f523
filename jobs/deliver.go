package jobs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/internal/batch"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// TypeDeliver is the asynq task type that delivers one notice.
const TypeDeliver = "notice:deliver"

// DeliverPayload is the whole payload of a delivery task: the notice id,
// nothing personal. Everything else is read from PostgreSQL when the task
// runs.
type DeliverPayload struct {
	NoticeID int64 `json:"notice_id"`
}

// MailSender sends one email; integrations/mail implements it.
type MailSender interface {
	Send(ctx context.Context, msg mail.Message) (mail.Result, bool, error)
}

// SMSSender sends one SMS; integrations/sms implements it.
type SMSSender interface {
	Send(ctx context.Context, msg sms.Message) (sms.Result, bool, error)
}

// Deliverer delivers notices: it claims the notice's row in PostgreSQL,
// renders it in the recipient's language, hands it to the mail or SMS
// sender with the task's context, and records the outcome. The claim is a
// conditional UPDATE, so a task that asynq runs twice (a requeue after a
// shutdown or an expired lease) sends once. The claims of the deliveries
// in flight go to PostgreSQL as one statement, and so do their records
// (jobs/internal/batch): two round trips per batch, not per notice.
type Deliverer struct {
	DB        *sqlx.DB
	Mail      MailSender
	SMS       SMSSender
	Templates *templates.Set
	Office    templates.Office
	// OfficeLang is the language of office emails and of deans without one.
	OfficeLang string
	// Steps is each rule's ladder length as configured (for the tone of
	// the last step); a rule missing from it takes the length of its
	// ladder in Ladders.
	Steps map[string]int
	// Ladders is each rule's ladder as configured: what each step sends,
	// level 1 first. A notice's step tells its template whether the step
	// is office: urgent (the only urgent steps) and whether the student is
	// also told. A rule or level missing from it is neither.
	Ladders map[string][]rules.Actions
	// Owner is the process's claim identity (jobs/owner): a claim
	// records it, and a claim whose owner has died is free at once. Nil:
	// claims record no owner and wait for their lease.
	Owner ClaimOwner
	// Lease is how long a claimed ("sending") notice belongs to a worker
	// whose death cannot be known (a claim without an owner), or to a
	// living one that hangs; after it another may claim it. Default 10
	// minutes.
	Lease time.Duration
	// Observe, when set, counts each attempt's outcome (the /metrics side).
	Observe DeliveryObserver
	Log     *slog.Logger

	once      sync.Once
	claims    *batch.Combiner[int64, *claimed]
	records   *batch.Combiner[outcome, struct{}]
	claimStmt prepared
	recStmt   prepared
}

// prepared is a statement prepared on first use and kept: database/sql
// prepares it again on each pool connection that runs it, and PostgreSQL
// then plans it once per connection instead of parsing and planning it for
// every batch (that was a quarter of the database's CPU while delivering).
// A failed prepare (the database is away) is tried again on the next use.
type prepared struct {
	mu sync.Mutex
	st *sqlx.Stmt
}

func (p *prepared) get(ctx context.Context, db *sqlx.DB, query string) (*sqlx.Stmt, error) {
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

// ClaimOwner is the identity a claim records; *store.Owner implements it.
type ClaimOwner interface {
	ID() int64
}

// DeliveryObserver counts delivery outcomes by channel.
type DeliveryObserver interface {
	Delivered(channel, outcome string)
}

// Outcome of one delivery attempt.
type Outcome string

// Outcomes of Deliver.
const (
	Sent      Outcome = "sent"
	Failed    Outcome = "failed"    // permanently: never retried
	Retry     Outcome = "retry"     // temporarily: asynq retries
	Cancelled Outcome = "cancelled" // the obligation closed before delivery
	Skipped   Outcome = "skipped"   // not ours to send: already sent, or claimed by another worker
)

// ErrPermanent marks a failure that must not be retried.
var ErrPermanent = errors.New("permanent failure")

// ErrClaimed is a notice that another worker is sending (or was, when it
// died): the task is retried after the claim's lease.
var ErrClaimed = errors.New("claimed by another worker")

// ProcessTask is the asynq handler of TypeDeliver.
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p DeliverPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.NoticeID <= 0 {
		return fmt.Errorf("deliver: bad payload: %w", asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	last := ok && retried >= maxRetry
	var channel string
	out, err := d.deliver(ctx, p.NoticeID, last, &channel)
	if d.Observe != nil && channel != "" {
		d.Observe.Delivered(channel, string(out))
	}
	switch out {
	case Failed:
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	case Retry:
		return err
	}
	return err
}

// claimed is a notice row claimed for sending, with what its template
// needs.
type claimed struct {
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

// claimQuery claims the notices of ids that are pending, or sending for an
// owner that has died or under a lease that has passed ($2 seconds), for
// owner $3 (0: none), and returns what their templates need. One statement
// for a batch of concurrent deliveries.
//
// The claim commits without waiting for the WAL flush (synchronous_commit
// off, for this transaction only): other workers see it at once all the
// same, and a PostgreSQL crash that lost it would leave the notice pending,
// which a lease that survived would not improve: a claimed notice whose
// outcome is not recorded is sent again after its lease either way. The
// record of a sent notice, which is what prevents a second send, commits
// durably.
var claimQuery = `
	WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
	c AS (
		UPDATE sisnotify.notices
		SET status = 'sending', claimed_at = now(), claimed_by = NULLIF($3::bigint, 0), attempts = attempts + 1, updated_at = now()
		WHERE notice_id = ANY($1) AND ` + claimable("$2") + `
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

// claimable is the SQL condition of a notice row that may be claimed:
// pending, or sending for an owner that has died (its process is gone) or
// under a lease (lease, a parameter in seconds) that has passed.
func claimable(lease string) string {
	return `(status = 'pending' OR (status = 'sending' AND (claimed_at < now() - ` + lease + ` * interval '1 second' OR ` +
		store.OwnerDead("claimed_by") + `)))`
}

// batchTimeout bounds one batched claim or record: it runs apart from any
// one delivery's context, and a database that hangs must not hold the
// deliveries that wait on it forever.
const batchTimeout = 30 * time.Second

// init makes the combiners that batch claims and records of concurrent
// deliveries into one statement each (jobs/internal/batch).
func (d *Deliverer) init() {
	d.once.Do(func() {
		lease := d.Lease
		if lease <= 0 {
			lease = 10 * time.Minute
		}
		d.claims = &batch.Combiner[int64, *claimed]{Run: func(ctx context.Context, ids []int64) ([]*claimed, error) {
			ctx, cancel := context.WithTimeout(ctx, batchTimeout)
			defer cancel()
			st, err := d.claimStmt.get(ctx, d.DB, claimQuery)
			if err != nil {
				return nil, err
			}
			var rows []claimed
			var self int64
			if d.Owner != nil {
				self = d.Owner.ID()
			}
			if err := st.SelectContext(ctx, &rows, pq.Array(ids), int64(lease/time.Second), self); err != nil {
				return nil, err
			}
			byID := make(map[int64]*claimed, len(rows))
			for i := range rows {
				byID[rows[i].NoticeID] = &rows[i]
			}
			out := make([]*claimed, len(ids))
			for i, id := range ids {
				// Two tasks of one notice in one batch (asynq requeued it
				// while the first still ran): the claim is the first's.
				out[i] = byID[id]
				delete(byID, id)
			}
			return out, nil
		}}
		d.records = &batch.Combiner[outcome, struct{}]{Run: func(ctx context.Context, outs []outcome) ([]struct{}, error) {
			ctx, cancel := context.WithTimeout(ctx, batchTimeout)
			defer cancel()
			cols := make([][]string, 7)
			ids := make([]int64, len(outs))
			for i, o := range outs {
				ids[i] = o.id
				for j, v := range []string{o.status, o.class, o.provider, o.lastErr, o.lang, o.version, o.hash} {
					cols[j] = append(cols[j], v)
				}
			}
			st, err := d.recStmt.get(ctx, d.DB, recordQuery)
			if err != nil {
				return nil, err
			}
			_, err = st.ExecContext(ctx, pq.Array(ids), pq.Array(cols[0]), pq.Array(cols[1]), pq.Array(cols[2]),
				pq.Array(cols[3]), pq.Array(cols[4]), pq.Array(cols[5]), pq.Array(cols[6]))
			if err != nil {
				return nil, err
			}
			return make([]struct{}, len(outs)), nil
		}}
	})
}

// outcome is the record of one attempt at a notice.
type outcome struct {
	id                                                    int64
	status, class, provider, lastErr, lang, version, hash string
}

// recordQuery records a batch of outcomes, each only on a notice still
// claimed ('sending'), and appends each recorded outcome to the notice's
// history (sisnotify.notice_attempts, numbered by the claim's attempts
// counter) in the same statement: still one round trip per batch.
const recordQuery = `
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

// Deliver makes one attempt at notice id. last says no retry follows: a
// temporary failure is then recorded as failed.
func (d *Deliverer) Deliver(ctx context.Context, id int64, last bool) (Outcome, error) {
	var channel string
	return d.deliver(ctx, id, last, &channel)
}

// deliver is Deliver, also setting the notice's channel once claimed.
func (d *Deliverer) deliver(ctx context.Context, id int64, last bool, channel *string) (Outcome, error) {
	log := d.log().With("notice_id", id)
	d.init()
	n, err := d.claims.Do(ctx, id)
	if err != nil {
		return Retry, fmt.Errorf("deliver %d: claim: %w", id, err)
	}
	if n == nil {
		// Not claimable: done already, or another worker holds it. That
		// worker is alive (or its death cannot be known): try again later,
		// and the claim will succeed or find the notice sent.
		var status string
		if err := d.DB.GetContext(ctx, &status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return Skipped, nil
			}
			return Retry, fmt.Errorf("deliver %d: claim: %w", id, err)
		}
		if status == "sending" {
			return Retry, fmt.Errorf("deliver %d: %w", id, ErrClaimed)
		}
		return Skipped, nil
	}
	log = log.With("student_id", n.StudentID, "rule", n.Rule, "level", n.Level, "channel", n.Channel, "audience", n.Audience)
	*channel = n.Channel
	if n.Closed {
		// A closed obligation never sends again.
		if err := d.finish(ctx, id, "cancelled", "", "", "obligation closed before delivery", "", "", ""); err != nil {
			return Retry, err
		}
		log.InfoContext(ctx, "notice cancelled: obligation closed")
		return Cancelled, nil
	}
	res, retryable, lang, version, hash, err := d.send(ctx, n)
	if err == nil {
		// The message is out: recording it must survive a database that
		// restarts meanwhile, or the lease will send it again.
		if err := d.record(ctx, id, res, lang, version, hash); err != nil {
			// Sent but not recorded: the one window the guarantees allow (docs/reliability.md); the
			// lease lets a rerun send it again.
			return Retry, err
		}
		log.InfoContext(ctx, "notice sent")
		return Sent, nil
	}
	class, out, status := "permanent", Failed, "failed"
	if retryable {
		class, out, status = "temporary", Retry, "pending"
		if last {
			out, status = Failed, "failed"
		}
	}
	if ferr := d.finish(ctx, id, status, class, "", err.Error(), lang, version, hash); ferr != nil {
		return Retry, errors.Join(err, ferr)
	}
	log.WarnContext(ctx, "notice not delivered", "class", class, "final", status == "failed", "err", err)
	if out == Failed {
		return Failed, fmt.Errorf("deliver %d: %w: %w", id, ErrPermanent, err)
	}
	return Retry, fmt.Errorf("deliver %d: %w", id, err)
}

// recordAttempts and recordPause bound how long a sent notice waits for
// the database to record it (a PostgreSQL restart takes seconds).
const (
	recordAttempts = 20
	recordPause    = 500 * time.Millisecond
)

// record marks a sent notice, retrying while the database is away.
func (d *Deliverer) record(ctx context.Context, id int64, provider, lang, version, hash string) error {
	var err error
	for i := 0; i < recordAttempts; i++ {
		if err = d.finish(ctx, id, "sent", "", provider, "", lang, version, hash); err == nil {
			return nil
		}
		d.log().WarnContext(ctx, "recording a sent notice failed; retrying", "notice_id", id, "attempt", i+1, "err", err)
		time.Sleep(recordPause)
	}
	return err
}

// finish records the outcome of an attempt, batched with those of the
// deliveries that finish meanwhile.
func (d *Deliverer) finish(ctx context.Context, id int64, status, class, provider, lastErr, lang, version, hash string) error {
	d.init()
	_, err := d.records.Do(context.WithoutCancel(ctx), outcome{id, status, class, provider, lastErr, lang, version, hash})
	if err != nil {
		return fmt.Errorf("deliver %d: record %s: %w", id, status, err)
	}
	return nil
}

// send renders the notice and hands it to its channel's sender.
func (d *Deliverer) send(ctx context.Context, n *claimed) (provider string, retryable bool, lang, version, hash string, err error) {
	lang = n.Language.String
	if n.Audience == templates.AudienceOffice || lang == "" && n.Audience == templates.AudienceDean {
		lang = d.OfficeLang
	}
	lang = templates.Lang(lang)
	step := d.step(n.Rule, n.Level)
	tn := templates.Notice{
		Rule: n.Rule, Level: n.Level, Steps: d.steps(n.Rule), Audience: n.Audience, Lang: lang,
		AsOf: date.Date(n.Night), Due: date.Date(n.DueOn), Anchor: date.Date(n.Anchor),
		StudentID: n.StudentID, GivenName: n.GivenName, FamilyName: n.FamilyName,
		FacultyName: n.FacultyName, DeanName: n.DeanName, VisaRegime: n.VisaRegime,
		SubjectID: n.SubjectID, Departure: date.Date(n.Departure), Return: date.Date(n.Return),
		Reason:       n.Reason,
		StudentEmail: n.StudentEmail, StudentPhone: n.StudentPhone,
		OfficeUrgent:    step&rules.OfficeUrgent != 0,
		StudentNotified: step&(rules.StudentEmail|rules.StudentSMS) != 0,
		Office:          d.Office,
	}
	switch n.Channel {
	case "email":
		r, err := d.Templates.Notice(tn)
		if err != nil {
			return "", false, lang, d.Templates.Version(), "", fmt.Errorf("render: %w", err)
		}
		sum := sha256.Sum256([]byte(r.Subject + "\x00" + r.Text + "\x00" + r.HTML))
		res, retry, err := d.Mail.Send(ctx, mail.Message{
			To: n.Recipient, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
			MessageID: MessageID(n.Key),
			Headers: map[string]string{
				mail.HeaderKind: "notice", mail.HeaderRule: n.Rule, mail.HeaderLevel: strconv.Itoa(n.Level),
				mail.HeaderStudent: n.StudentID, mail.HeaderAudience: n.Audience,
			},
		})
		return firstNonEmpty(res.ProviderID, res.Reply), retry, r.Lang, r.Version, hex.EncodeToString(sum[:16]), err
	case "sms":
		text, err := d.Templates.SMS(tn)
		if err != nil {
			return "", false, lang, d.Templates.Version(), "", fmt.Errorf("render: %w", err)
		}
		text = sms.Fit(text, "", 2)
		sum := sha256.Sum256([]byte(text))
		res, retry, err := d.SMS.Send(ctx, sms.Message{
			To: n.Recipient, Text: text, Reference: strconv.FormatInt(n.NoticeID, 10),
			Rule: n.Rule, Level: n.Level, StudentID: n.StudentID,
		})
		return firstNonEmpty(res.ProviderID, res.Reply), retry, lang, d.Templates.Version(), hex.EncodeToString(sum[:16]), err
	}
	return "", false, lang, "", "", fmt.Errorf("unknown channel %q", n.Channel)
}

// Ladders maps each rule's id to what its steps send, level 1 first: the
// Deliverer's Ladders of a configuration's rules (config.File.Rules).
func Ladders(rs []rules.Rule) map[string][]rules.Actions {
	out := make(map[string][]rules.Actions, len(rs))
	for _, r := range rs {
		l := make([]rules.Actions, len(r.Steps))
		for i, st := range r.Steps {
			l[i] = st.Actions
		}
		out[string(r.ID)] = l
	}
	return out
}

// step is what the configured step of rule at level (1-based) sends; 0
// when the ladder has no such step.
func (d *Deliverer) step(rule string, level int) rules.Actions {
	ladder := d.Ladders[rule]
	if level < 1 || level > len(ladder) {
		return 0
	}
	return ladder[level-1]
}

// steps is the length of rule's configured ladder.
func (d *Deliverer) steps(rule string) int {
	if n, ok := d.Steps[rule]; ok {
		return n
	}
	return len(d.Ladders[rule])
}

// MessageID is the Message-ID of a notice: derived from its key, so a
// resent notice carries the same id and mail clients and servers can
// recognise a duplicate.
func MessageID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "<notice." + hex.EncodeToString(sum[:16]) + "@sisnotify>"
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// NoticeFilter selects notices of the log.
type NoticeFilter struct {
	Status, StudentID, Rule string
	Night                   date.Date
	IDs                     []int64
}

// where renders the filter as SQL conditions from argument n on.
func (f NoticeFilter) where(args []any) (string, []any) {
	cond := "true"
	add := func(c string, v any) {
		args = append(args, v)
		cond += fmt.Sprintf(" AND %s $%d", c, len(args))
	}
	if f.Status != "" {
		add("status =", f.Status)
	}
	if f.StudentID != "" {
		add("student_id =", f.StudentID)
	}
	if f.Rule != "" {
		add("rule =", f.Rule)
	}
	if f.Night != 0 {
		add("night =", f.Night.String())
	}
	if len(f.IDs) > 0 {
		add("notice_id = ANY(", pq.Array(f.IDs))
		cond += ")"
	}
	return cond, args
}

// TaskDeleter removes a task from asynq (its archive, or its retry or
// scheduled set); asynq's Inspector implements it.
type TaskDeleter interface {
	DeleteTask(queue, id string) error
}

// RequeueFailed puts failed notices that match f back to pending, after
// deleting their archived tasks (an archived task keeps its TaskID, the
// notice key, and would block the new one), and records the re-queue, by
// who, in sisnotify.notice_requeues. The notice keeps its attempts, last
// error and error class (and its history in sisnotify.notice_attempts):
// nothing of why it failed is lost. It returns the notices re-queued; the
// caller then enqueues.
func RequeueFailed(ctx context.Context, db *sqlx.DB, tasks TaskDeleter, f NoticeFilter, who string) ([]int64, error) {
	f.Status = "failed"
	cond, args := f.where(nil)
	var failed []struct {
		ID  int64  `db:"notice_id"`
		Key string `db:"notice_key"`
	}
	if err := db.SelectContext(ctx, &failed, `SELECT notice_id, notice_key FROM sisnotify.notices WHERE `+cond+` ORDER BY notice_id`, args...); err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	ids := make([]int64, 0, len(failed))
	for _, n := range failed {
		if err := tasks.DeleteTask(QueueNotices, n.Key); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return nil, fmt.Errorf("requeue notice %d: %w", n.ID, err)
		}
		ids = append(ids, n.ID)
	}
	var done []int64
	if err := db.SelectContext(ctx, &done, `UPDATE sisnotify.notices SET status = 'pending', updated_at = now()
		WHERE notice_id = ANY($1) AND status = 'failed' RETURNING notice_id`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	if err := RecordRequeue(ctx, db, who, "failed", done); err != nil {
		return done, err
	}
	return done, nil
}

// RecordRequeue records that who re-queued ids (kind "failed": failed
// notices back to pending; "pending": pending notices sent now, whatever
// their back-off). Nothing is recorded for none.
func RecordRequeue(ctx context.Context, db *sqlx.DB, who, kind string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if who == "" {
		who = "unknown"
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO sisnotify.notice_requeues (who, kind, notices, notice_ids) VALUES ($1, $2, $3, $4)`,
		who, kind, len(ids), pq.Array(ids)); err != nil {
		return fmt.Errorf("requeue: record: %w", err)
	}
	return nil
}

// WaitingNotice is a pending notice that may go now: not held for quiet
// hours (not_before in the future).
type WaitingNotice struct {
	ID  int64  `db:"notice_id"`
	Key string `db:"notice_key"`
}

// WaitingNotices returns the pending notices that match f and may go now
// (an SMS held for quiet hours stays held), oldest first: those whose
// tasks may wait for a retry after a temporary failure.
func WaitingNotices(ctx context.Context, db *sqlx.DB, f NoticeFilter) ([]WaitingNotice, error) {
	f.Status = "pending"
	cond, args := f.where(nil)
	var out []WaitingNotice
	if err := db.SelectContext(ctx, &out, `SELECT notice_id, notice_key FROM sisnotify.notices
		WHERE `+cond+` AND (not_before IS NULL OR not_before <= now()) ORDER BY notice_id`, args...); err != nil {
		return nil, fmt.Errorf("pending notices: %w", err)
	}
	return out, nil
}

// PendingReason is how many pending notices last failed with one reason.
type PendingReason struct {
	Class  string `db:"error_class" json:"error_class"` // temporary | permanent; "" never tried, or not yet failed
	Detail string `db:"-" json:"detail"`                // the provider's code ("451 4.7.1", "HTTP 503"); "" none
	N      int    `db:"n" json:"n"`
}

// PendingSummary counts the notices still waiting to be sent (pending or
// sending) of nights up to night (0: every night), and why: the last
// error of each, by class and the provider's code, most frequent first.
// A student SMS held for quiet hours is not waiting for anything wrong
// and is left out; so, with failedOnly, is a notice not tried yet or
// whose attempt is under way (no error recorded): what the digest, sent
// after the night's deliveries, reports as waiting for a retry.
func PendingSummary(ctx context.Context, db sqlx.QueryerContext, night date.Date, failedOnly bool) (int, []PendingReason, error) {
	var rows []struct {
		Class string `db:"error_class"`
		Err   string `db:"last_error"`
		N     int    `db:"n"`
	}
	q := `SELECT coalesce(error_class, '') AS error_class, coalesce(last_error, '') AS last_error, count(*) AS n
		FROM sisnotify.notices WHERE status IN ('pending', 'sending') AND (not_before IS NULL OR not_before <= now())`
	if failedOnly {
		q += ` AND last_error IS NOT NULL`
	}
	var args []any
	if night != 0 {
		q += ` AND night <= $1::date`
		args = append(args, night.String())
	}
	if err := sqlx.SelectContext(ctx, db, &rows, q+` GROUP BY 1, 2`, args...); err != nil {
		return 0, nil, fmt.Errorf("pending notices: %w", err)
	}
	total := 0
	byKey := map[[2]string]int{}
	var out []PendingReason
	for _, r := range rows {
		total += r.N
		detail := ""
		if r.Err != "" {
			_, detail = failReason(r.Err, r.Class)
		}
		k := [2]string{r.Class, detail}
		if i, ok := byKey[k]; ok {
			out[i].N += r.N
			continue
		}
		byKey[k] = len(out)
		out = append(out, PendingReason{Class: r.Class, Detail: detail, N: r.N})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Class+out[i].Detail < out[j].Class+out[j].Detail
	})
	return total, out, nil
}

// NoticeRow is one line of the notice log.
type NoticeRow struct {
	ID        int64          `db:"notice_id" json:"notice_id"`
	Night     string         `db:"night" json:"night"`
	StudentID string         `db:"student_id" json:"student_id"`
	SubjectID string         `db:"subject_id" json:"subject_id"`
	Rule      string         `db:"rule" json:"rule"`
	Level     int            `db:"level" json:"level"`
	Repeat    int            `db:"repeat" json:"repeat"`
	Audience  string         `db:"audience" json:"audience"`
	Channel   string         `db:"channel" json:"channel"`
	Status    string         `db:"status" json:"status"`
	Attempts  int            `db:"attempts" json:"attempts"`
	Language  sql.NullString `db:"language" json:"-"`
	SentAt    sql.NullString `db:"sent_at" json:"-"`
	LastError sql.NullString `db:"last_error" json:"-"`
	Class     sql.NullString `db:"error_class" json:"-"`
}

// ListNotices returns the notice log that matches f, newest first, at most
// limit rows, and how many match in all (more than the rows when the list
// was cut).
func ListNotices(ctx context.Context, db *sqlx.DB, f NoticeFilter, limit int) ([]NoticeRow, int, error) {
	cond, args := f.where(nil)
	args = append(args, limit)
	var out []struct {
		NoticeRow
		Total int `db:"total"`
	}
	err := db.SelectContext(ctx, &out, `SELECT notice_id, night::text, student_id, subject_id, rule, level, repeat, audience, channel, status, attempts,
		language, to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS sent_at, last_error, error_class, count(*) OVER () AS total
		FROM sisnotify.notices WHERE `+cond+fmt.Sprintf(` ORDER BY notice_id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("notices: %w", err)
	}
	rows := make([]NoticeRow, len(out))
	total := 0
	for i, r := range out {
		rows[i], total = r.NoticeRow, r.Total
	}
	return rows, total, nil
}
