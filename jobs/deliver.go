package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/internal/batch"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

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
	// living one that hangs; after it another may claim it. Default
	// store.NoticeLease (10 minutes).
	Lease time.Duration
	// Location is the university's time zone: a student notice the office
	// snoozed waits until the snooze's date there. Nil: UTC.
	Location *time.Location
	// Now replaces time.Now for that date (tests); nil: time.Now.
	Now func() time.Time
	// Links, when set, gives every student email the address of the
	// student page (SISNOTIFY_PUBLIC_URL and SISNOTIFY_LINK_KEYS); nil:
	// no link. SMS never carry one.
	Links StudentLinker

	// Pace, when set, holds each message to its provider's rate limit
	// (package pace): a notice takes a token after it is claimed and found
	// still due, before its provider is called. Nil: no limit.
	Pace Pacer

	// Observe, when set, counts each attempt's outcome (the /metrics
	// side); the worker's task handler calls it.
	Observe DeliveryObserver
	Log     *slog.Logger

	once    sync.Once
	store   *store.Store
	batches *store.NoticeBatches // the claims' and records' statements, prepared once
	claims  *batch.Combiner[int64, *store.ClaimedNotice]
	records *batch.Combiner[store.NoticeOutcome, struct{}]
}

// Pacer hands out the tokens of the providers' rate limits across every
// replica; *pace.Limiter implements it. Take returns 0 when a message of
// channel may go now, or how long to postpone it; urgent messages (the
// digests, the office's and the deans' notices) go before the students'.
type Pacer interface {
	Take(ctx context.Context, channel string, urgent bool) (time.Duration, error)
}

// ErrPostponed is a message the rate limit held back: not a failure, not
// an attempt. The worker runs its task again after PostponedError.After.
var ErrPostponed = errors.New("postponed by the rate limit")

// PostponedError is ErrPostponed with how long to wait.
type PostponedError struct{ After time.Duration }

func (e *PostponedError) Error() string {
	return fmt.Sprintf("%v: again in %s", ErrPostponed, e.After.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrPostponed) true.
func (e *PostponedError) Is(target error) bool { return target == ErrPostponed }

// pacerWaitOnError is how long a message waits when the limiter cannot
// be asked (Redis away): it is not sent unmetered.
const pacerWaitOnError = 5 * time.Second

// ClaimOwner is the identity a claim records; *store.Owner implements it.
type ClaimOwner interface {
	ID() int64
}

// StudentLinker makes the address of the student page for the email of
// a notice (package studentpage's Linker).
type StudentLinker interface {
	StudentLink(studentID string, noticeID int64, night date.Date) string
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
	Retry     Outcome = "retry"     // temporarily: the queue retries
	Cancelled Outcome = "cancelled" // the obligation closed before delivery
	Skipped   Outcome = "skipped"   // not ours to send: already sent, claimed by another worker, or snoozed by the office
	Postponed Outcome = "postponed" // held back by the rate limit: not an attempt, queued again
)

// ErrPermanent marks a failure that must not be retried.
var ErrPermanent = errors.New("permanent failure")

// Permanent marks err as a failure that must not be retried
// (errors.Is(err, ErrPermanent)) without changing its message.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Attempt is which try of its task a job runs: Retried retries done of
// MaxRetry allowed. The worker gives it to the jobs its tasks run
// (WithAttempt); a job run outside the queue has none.
type Attempt struct{ Retried, MaxRetry int }

// Last reports whether no retry follows.
func (a Attempt) Last() bool { return a.Retried >= a.MaxRetry }

type attemptKey struct{}

// WithAttempt returns ctx carrying a, for the job run with it.
func WithAttempt(ctx context.Context, a Attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// AttemptOf is the attempt ctx carries; false when none.
func AttemptOf(ctx context.Context) (Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(Attempt)
	return a, ok
}

// ErrClaimed is a notice that another worker is sending (or was, when it
// died): the task is retried after the claim's lease.
var ErrClaimed = errors.New("claimed by another worker")

// batchTimeout bounds one batched claim or record: it runs apart from any
// one delivery's context, and a database that hangs must not hold the
// deliveries that wait on it forever.
const batchTimeout = 30 * time.Second

// A claim or record that follows another (the deliveries are busy) waits
// up to batchLinger for batchFill deliveries to go with it. On two cores
// that halves the statements (10,000 emails: 889 claims instead of 1,963)
// and their time in PostgreSQL (1.5 s instead of 2.9 s), and delivers
// 9-22 % more a second (make bench-deliver, interleaved). A delivery on an
// idle worker never waits.
const (
	batchLinger = 2 * time.Millisecond
	batchFill   = 32
)

// init makes the combiners that batch claims and records of concurrent
// deliveries into one statement each (jobs/internal/batch).
func (d *Deliverer) init() {
	d.once.Do(func() {
		lease := d.Lease
		if lease <= 0 {
			lease = store.NoticeLease
		}
		d.store = store.New(d.DB)
		d.batches = d.store.NoticeBatches()
		d.claims = &batch.Combiner[int64, *store.ClaimedNotice]{Linger: batchLinger, Fill: batchFill, Run: func(ctx context.Context, ids []int64) ([]*store.ClaimedNotice, error) {
			ctx, cancel := context.WithTimeout(ctx, batchTimeout)
			defer cancel()
			var self int64
			if d.Owner != nil {
				self = d.Owner.ID()
			}
			rows, err := d.batches.Claim(ctx, ids, lease, self, d.today())
			if err != nil {
				return nil, err
			}
			byID := make(map[int64]*store.ClaimedNotice, len(rows))
			for i := range rows {
				byID[rows[i].NoticeID] = &rows[i]
			}
			out := make([]*store.ClaimedNotice, len(ids))
			for i, id := range ids {
				// Two tasks of one notice in one batch (asynq requeued it
				// while the first still ran): the claim is the first's.
				out[i] = byID[id]
				delete(byID, id)
			}
			return out, nil
		}}
		d.records = &batch.Combiner[store.NoticeOutcome, struct{}]{Linger: batchLinger, Fill: batchFill, Run: func(ctx context.Context, outs []store.NoticeOutcome) ([]struct{}, error) {
			ctx, cancel := context.WithTimeout(ctx, batchTimeout)
			defer cancel()
			if err := d.batches.Record(ctx, outs); err != nil {
				return nil, err
			}
			return make([]struct{}, len(outs)), nil
		}}
	})
}

// today is the university's date now: a notice snoozed until a later one
// is not claimed.
func (d *Deliverer) today() date.Date {
	now, loc := time.Now, d.Location
	if d.Now != nil {
		now = d.Now
	}
	if loc == nil {
		loc = time.UTC
	}
	return date.FromTime(now().In(loc))
}

// Deliver makes one attempt at notice id. last says no retry follows: a
// temporary failure is then recorded as failed.
func (d *Deliverer) Deliver(ctx context.Context, id int64, last bool) (Outcome, error) {
	var channel string
	return d.deliver(ctx, id, last, &channel)
}

// DeliverOn is Deliver, also returning the notice's channel ("" when it
// was not claimed), by which Observe counts the outcome.
func (d *Deliverer) DeliverOn(ctx context.Context, id int64, last bool) (Outcome, string, error) {
	var channel string
	out, err := d.deliver(ctx, id, last, &channel)
	return out, channel, err
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
		// and the claim will succeed or find the notice sent. A pending
		// one is snoozed by the office: skipped, left pending, and queued
		// again by the first night on or after its date.
		status, ok, err := d.store.NoticeStatusOf(ctx, id)
		if err != nil {
			return Retry, fmt.Errorf("deliver %d: claim: %w", id, err)
		}
		if !ok {
			return Skipped, nil
		}
		if status == store.NoticeSending {
			return Retry, fmt.Errorf("deliver %d: %w", id, ErrClaimed)
		}
		return Skipped, nil
	}
	log = log.With("student_id", n.StudentID, "rule", n.Rule, "level", n.Level, "channel", n.Channel, "audience", n.Audience)
	*channel = n.Channel
	if n.Closed {
		// A closed obligation never sends again.
		if err := d.finish(ctx, id, store.NoticeCancelled, "", "", "obligation closed before delivery", "", "", ""); err != nil {
			return Retry, err
		}
		log.InfoContext(ctx, "notice cancelled: obligation closed")
		return Cancelled, nil
	}
	if after, err := d.pace(ctx, n); err != nil || after > 0 {
		// Nothing went out: the claim is given back uncounted.
		self := int64(0)
		if d.Owner != nil {
			self = d.Owner.ID()
		}
		if _, rerr := d.store.ReleaseNoticeClaim(context.WithoutCancel(ctx), id, self); rerr != nil {
			return Retry, fmt.Errorf("deliver %d: give back a postponed claim: %w", id, rerr)
		}
		if err != nil {
			log.WarnContext(ctx, "notice postponed: the rate limiter did not answer", "err", err)
			after = pacerWaitOnError
		}
		return Postponed, fmt.Errorf("deliver %d: %w", id, &PostponedError{After: after})
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
	class, out, status := "permanent", Failed, store.NoticeFailed
	if retryable {
		class, out, status = "temporary", Retry, store.NoticePending
		if last {
			out, status = Failed, store.NoticeFailed
		}
	}
	if ferr := d.finish(ctx, id, status, class, "", err.Error(), lang, version, hash); ferr != nil {
		return Retry, errors.Join(err, ferr)
	}
	log.WarnContext(ctx, "notice not delivered", "class", class, "final", status == store.NoticeFailed, "err", err)
	if out == Failed {
		return Failed, fmt.Errorf("deliver %d: %w: %w", id, ErrPermanent, err)
	}
	return Retry, fmt.Errorf("deliver %d: %w", id, err)
}

// pace takes the token of n's channel; urgent are the office's and the
// deans' notices.
func (d *Deliverer) pace(ctx context.Context, n *store.ClaimedNotice) (time.Duration, error) {
	if d.Pace == nil {
		return 0, nil
	}
	return d.Pace.Take(ctx, n.Channel, n.Audience != templates.AudienceStudent)
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
		if err = d.finish(ctx, id, store.NoticeSent, "", provider, "", lang, version, hash); err == nil {
			return nil
		}
		d.log().WarnContext(ctx, "recording a sent notice failed; retrying", "notice_id", id, "attempt", i+1, "err", err)
		time.Sleep(recordPause)
	}
	return err
}

// finish records the outcome of an attempt, batched with those of the
// deliveries that finish meanwhile.
func (d *Deliverer) finish(ctx context.Context, id int64, status store.NoticeStatus, class, provider, lastErr, lang, version, hash string) error {
	d.init()
	_, err := d.records.Do(context.WithoutCancel(ctx), store.NoticeOutcome{ID: id, Status: status, Class: class, Provider: provider,
		Err: lastErr, Lang: lang, TemplateVersion: version, Hash: hash})
	if err != nil {
		return fmt.Errorf("deliver %d: record %s: %w", id, status, err)
	}
	return nil
}

// send renders the notice and hands it to its channel's sender.
func (d *Deliverer) send(ctx context.Context, n *store.ClaimedNotice) (provider string, retryable bool, lang, version, hash string, err error) {
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
		if d.Links != nil && n.Audience == templates.AudienceStudent {
			tn.Link = d.Links.StudentLink(n.StudentID, n.NoticeID, date.Date(n.Night))
		}
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

// MessageHash is the hash a notice's Message-ID carries (the store finds
// the notice by it: store.NoticeByMessageHash); ok is false when id, with
// or without its angle brackets, is not a notice's Message-ID.
func MessageHash(id string) (hash []byte, ok bool) {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	h, found := strings.CutPrefix(id, "notice.")
	if !found {
		return nil, false
	}
	h, found = strings.CutSuffix(h, "@sisnotify")
	if !found || len(h) != 32 {
		return nil, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, false
	}
	return b, true
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

// TaskDeleter removes the delivery task of the notice whose key is key
// from the queue (its archive, or its retry or scheduled set); no such
// task is not an error. worker.Queue implements it.
type TaskDeleter interface {
	DeleteNoticeTask(key string) error
}

// RequeueFailed puts failed notices that match f back to pending, after
// deleting their archived tasks (an archived task keeps its TaskID, the
// notice key, and would block the new one), and records the re-queue, by
// who, in sisnotify.notice_requeues. The notice keeps its attempts, last
// error and error class (and its history in sisnotify.notice_attempts):
// nothing of why it failed is lost. It returns the notices re-queued; the
// caller then enqueues.
func RequeueFailed(ctx context.Context, db *sqlx.DB, tasks TaskDeleter, f store.NoticeFilter, who string) ([]int64, error) {
	st := store.New(db)
	failed, err := st.FailedNotices(ctx, f)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(failed))
	for _, n := range failed {
		if err := tasks.DeleteNoticeTask(n.Key); err != nil {
			return nil, fmt.Errorf("requeue notice %d: %w", n.ID, err)
		}
		ids = append(ids, n.ID)
	}
	done, err := st.RequeueFailedNotices(ctx, ids)
	if err != nil {
		return nil, err
	}
	if err := st.RecordRequeue(ctx, who, string(store.NoticeFailed), done); err != nil {
		return done, err
	}
	return done, nil
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
	rows, err := store.PendingNoticeErrors(ctx, db, night, failedOnly)
	if err != nil {
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
