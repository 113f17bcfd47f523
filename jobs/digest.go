package jobs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// Digest sends the night's daily digests (docs/rules.md, "The daily digests"):
// the office digest to every address of OfficeEmails, every night, and
// one digest to each dean with something to see.
//
// Each (night, recipient) is a row of sisnotify.digests, claimed with a
// conditional statement and a lease before it is sent, so a rerun of the
// night sends nothing again, a crashed run resumes the unsent ones, and
// two workers never send the same one. The obligations each digest listed
// are kept (sisnotify.digest_rows) to mark the next day's new ones.
//
// A digest is read at 9 am on a phone. It lists, after a line of counts,
// its rows in sections (templates.SectionOf decides each row's, and says
// why found late gives way to act today and legal exposure only): act
// today, overdue with legal exposure, other overdue, found late, closed as
// moot (the office's, once each), upcoming; then the office's failed
// notices and data problems. A section longer than MaxSectionRows shows
// its most urgent rows and says how many more there are, and the digest
// attaches digest-YYYY-MM-DD.csv with every row: the HTML stays under
// MaxHTML (100 KB at most, where mail clients clip a message) whatever the
// roster, and the memory of the phase grows with the CSV (about 200 bytes
// a row, for one recipient at a time), not with HTML of every row.
//
// A row is listed when its obligation is open and its reached step has the
// digest's bit (rules.OfficeDigest or rules.DeanDigest) in its actions or
// in found_late (a stale step's urgent email that was not sent; the row is
// marked "found late"). An obligation that closed as moot (close_reason
// "departure passed" or "entry date passed") is listed once, in the next
// office digest of each address: closed_on after the night of that
// address's previous digest that went out and not after tonight; an
// address without one lists the moot closes of the last MootDays nights
// only, not years of history. Moot rows are not recorded in digest_rows
// (that is the open obligations a digest listed, which the dry run plans).
type Digest struct {
	DB   *sqlx.DB
	Mail MailSender
	// Pace, when set, holds each digest to the mail provider's rate limit,
	// ahead of the students' notices (Deliverer.Pace); nil: no limit.
	Pace      Pacer
	Templates *templates.Set
	Office    templates.Office
	// OfficeLang is the language of the office digest and of deans
	// without one; default ru.
	OfficeLang string
	// OfficeEmails receive the office digest, one email each; their
	// position names them ("office1", "office2", …).
	OfficeEmails []string
	Log          *slog.Logger

	// Location is the university's time zone, for the dates of what was
	// already sent; nil: Asia/Almaty.
	Location *time.Location
	// Lease is how long a claimed ("sending") digest belongs to its
	// worker; after it another may claim it. Default 10 minutes.
	Lease time.Duration
	// Owner is the process's claim identity, as the Deliverer's: a digest
	// it was sending when it died is free at once. nil: the lease alone.
	Owner ClaimOwner
	// MaxFailed and MaxProblems cut the office digest's lists of failed
	// notices and data problems to the most recent ones; the digest says
	// how many were left out and where they all are. Default 20 each.
	MaxFailed, MaxProblems int
	// MaxSectionRows cuts a long section: it shows its MaxSectionRows
	// most urgent rows (still grouped by rule), says how many more there
	// are, and the digest attaches a CSV of every row
	// (templates.DigestCSVName). Default 12.
	MaxSectionRows int
	// MaxHTML bounds the HTML of a digest, in bytes: a digest that would
	// be longer shows fewer rows per section, and fewer failed notices
	// and data problems (a third fewer at a time, until it fits).
	// Default 90,000 (mail clients clip a message past 100 KB).
	MaxHTML int
	// Steps is each rule's ladder length as configured, for "step 3 of
	// 5"; a rule missing here has the built-in ladder's.
	Steps map[string]int
}

// DigestResult counts what a run of the digests did, for the night's log.
type DigestResult struct {
	Office  int `json:"office"`  // office digests sent by this run
	Deans   int `json:"deans"`   // dean digests sent by this run
	Skipped int `json:"skipped"` // digests of the night already sent or failed (a rerun), or being sent by another worker
	Failed  int `json:"failed"`  // digests refused for good by this run (SMTP 5xx); logged and recorded, never resent
	Rows    int `json:"rows"`    // obligations listed, summed over the digests this run sent
}

// ErrDigestClaimed is a digest that another worker is sending (or was,
// when it died): the run returns it so that the task is retried, and the
// retry finds the digest sent or its lease passed.
var ErrDigestClaimed = errors.New("digest claimed by another worker")

// Defaults of Digest.
const (
	defaultDigestCap = 20
	// defaultMaxSectionRows: a row is about 0.8 KB of HTML; six sections
	// of 12 rows, failed notices and data problems make some 70 KB.
	defaultMaxSectionRows = 12
	defaultMaxHTML        = 90_000
	// MootDays: an office address that has had no digest yet lists the
	// obligations closed as moot in the last 7 nights.
	MootDays = 7
	// sentShown: a row of the email shows what was sent on its last 3
	// (step, day) pairs; the CSV shows all.
	sentShown = 3
	// failedDays: the office digest lists the notices of the last 7 nights
	// that failed for good.
	failedDays = 7
	// digestRowsKept: a recipient's listed rows are kept this many days
	// after its newest digest, for "new since yesterday" and inspection.
	digestRowsKept = 7
)

// DigestMessageID is the Message-ID of the digest of one night to one
// recipient ("office1", "dean-ENG"): a digest sent again carries the same
// id.
func DigestMessageID(night date.Date, recipientKey string) string {
	sum := sha256.Sum256([]byte("digest/" + night.String() + "/" + recipientKey))
	return "<digest." + hex.EncodeToString(sum[:16]) + "@sisnotify>"
}

// digestItem is an obligation that tonight's digests list (open, or
// closed as moot), with the notices delivered for it.
type digestItem struct {
	store.DigestItem
	sent   []sentNotice
	office *officeClosure // closed by the office: by whom and why
}

// officeClosure is who closed an obligation in the console, and why.
type officeClosure struct {
	at       time.Time
	by, note string
}

// sentNotice is a notice of the obligation that was delivered, in 8 bytes:
// a national roster's digest holds a hundred thousand of them.
type sentNotice struct {
	on    date.Date // local date it was sent
	level int16
	kind  uint8 // index in sentKinds
}

// sentKinds are the audience/channel pairs of a delivered notice, in the
// order the "already sent" column names them.
var sentKinds = [...]struct{ audience, channel string }{
	{"student", "email"}, {"student", "sms"}, {"office", "email"}, {"dean", "email"}, {"office", "sms"}, {"dean", "sms"},
}

// digestRecipient is one digest to send tonight.
type digestRecipient struct {
	key, audience, addr, lang string
	faculty                   *store.DigestFaculty // dean digests
	items                     []*digestItem
	moot                      []*digestItem // office digests: closed as moot since the previous one
	closed                    []*digestItem // office digests: closed by the office since the previous one
	reported                  []*digestItem // office digests: the students' open reports, newest first
}

// officeLists is what only the office digest shows below the obligations.
type officeLists struct {
	failed        []templates.FailedNotice
	failedTotal   int
	problems      []templates.DataProblem
	problemsTotal int
	counts        []templates.ProblemCount
	// waiting: notices of this night and before still waiting to be sent,
	// and why (their last errors).
	waiting    int
	waitingWhy []templates.WaitingReason
}

// Run builds and sends the digests of night (the as-of date), after that
// night's evaluation. A digest refused for good (SMTP 5xx) is recorded
// failed; a temporary failure (4xx, network) leaves it pending and Run
// returns an error so that the task is retried; the retry skips the
// digests already sent.
func (d *Digest) Run(ctx context.Context, night date.Date) (DigestResult, error) {
	var res DigestResult
	start := time.Now()
	log := d.log().With("night", night.String())
	if d.Mail == nil || d.Templates == nil || d.DB == nil {
		return res, Permanent(fmt.Errorf("digest %s: DB, Mail and Templates are required", night))
	}
	if err := d.checkNight(ctx, night); err != nil {
		return res, err
	}
	recipients, lists, err := d.load(ctx, night)
	if err != nil {
		return res, err
	}
	keys := make([]string, len(recipients))
	for i, r := range recipients {
		keys[i] = r.key
	}
	// A crashed run may have left a digest for a recipient that has
	// nothing tonight any more (a dean whose cases were resolved, an
	// address removed from the configuration).
	if n, err := store.New(d.DB).CancelStaleDigests(ctx, night, keys, d.leaseSeconds()); err != nil {
		return res, fmt.Errorf("digest %s: %w", night, err)
	} else if n > 0 {
		log.InfoContext(ctx, "stale digests cancelled", "digests", n)
	}

	last := lastAttempt(ctx)
	var errs []error
	for _, r := range recipients {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		out, rows, err := d.send(ctx, log, night, r, lists, last)
		switch out {
		case Sent:
			if r.audience == templates.AudienceOffice {
				res.Office++
			} else {
				res.Deans++
			}
			res.Rows += rows
		case Failed:
			res.Failed++
		case Skipped:
			res.Skipped++
		}
		if err != nil {
			errs = append(errs, err)
			if out == Postponed {
				// The limit holds the others back as well.
				break
			}
			if out == Retry && connectionLevel(err) {
				// The server or the network is away: the other digests
				// would wait for the same timeout. The retry sends them.
				break
			}
		}
	}
	log.InfoContext(ctx, "digests", "office", res.Office, "deans", res.Deans, "skipped", res.Skipped, "failed", res.Failed,
		"rows", res.Rows, "recipients", len(recipients), "duration", time.Since(start).Round(time.Millisecond))
	if len(errs) > 0 {
		return res, fmt.Errorf("digest %s: %d of %d digests not sent yet: %w", night, len(errs), len(recipients), errors.Join(errs...))
	}
	return res, nil
}

// checkNight refuses a night earlier than one already evaluated or
// digested: the obligations show the latest night, and a digest is labelled
// with its night.
func (d *Digest) checkNight(ctx context.Context, night date.Date) error {
	evaluated, digested, err := store.New(d.DB).DigestLatestNights(ctx)
	if err != nil {
		return fmt.Errorf("digest %s: %w", night, err)
	}
	for _, last := range []sql.NullString{evaluated, digested} {
		if last.Valid && last.String > night.String() {
			return Permanent(fmt.Errorf("digest %s: %w (%s)", night, ErrPastNight, last.String))
		}
	}
	return nil
}

// load reads, in one consistent snapshot, tonight's listed obligations
// with what was sent for them, the deans to write to, and the office
// digest's lists.
func (d *Digest) load(ctx context.Context, night date.Date) ([]*digestRecipient, *officeLists, error) {
	wrap := func(what string, err error) error { return fmt.Errorf("digest %s: %s: %w", night, what, err) }
	tx, err := store.New(d.DB).BeginDigestRead(ctx)
	if err != nil {
		return nil, nil, wrap("begin", err)
	}
	defer tx.Close()
	mask := int(rules.OfficeDigest | rules.DeanDigest)
	var items []*digestItem
	if err := tx.Items(ctx, mask, int(rules.DeanDigest), newDigestItem(&items)); err != nil {
		return nil, nil, wrap("obligations", err)
	}
	byID := make(map[int64]*digestItem, len(items))
	for _, it := range items {
		byID[it.ID] = it
	}
	if err := d.loadSent(ctx, tx, mask, byID); err != nil {
		return nil, nil, wrap("sent notices", err)
	}

	var recipients []*digestRecipient
	if len(d.OfficeEmails) > 0 {
		var office []*digestItem
		for _, it := range items {
			if (it.Actions|it.FoundLate)&int(rules.OfficeDigest) != 0 {
				office = append(office, it)
			}
		}
		keys := make([]string, len(d.OfficeEmails))
		for i := range d.OfficeEmails {
			keys[i] = "office" + strconv.Itoa(i+1)
		}
		moot, since, err := d.loadMoot(ctx, tx, night, keys)
		if err != nil {
			return nil, nil, wrap("closed as moot", err)
		}
		closed, closedSince, err := d.loadOfficeClosed(ctx, tx, night, keys)
		if err != nil {
			return nil, nil, wrap("closed by the office", err)
		}
		reported, err := loadReported(ctx, tx)
		if err != nil {
			return nil, nil, wrap("reports", err)
		}
		for i, addr := range d.OfficeEmails {
			r := &digestRecipient{
				key: keys[i], audience: templates.AudienceOffice,
				addr: strings.TrimSpace(addr), lang: d.officeLang(), items: office, reported: reported,
			}
			for _, it := range moot {
				if it.ClosedOn > int32(since[i]) {
					r.moot = append(r.moot, it)
				}
			}
			for _, it := range closed {
				if closedSince[i].news(it) {
					r.closed = append(r.closed, it)
				}
			}
			recipients = append(recipients, r)
		}
	}
	byFaculty := map[string][]*digestItem{}
	for _, it := range items {
		if it.DeanOf != "" {
			byFaculty[it.DeanOf] = append(byFaculty[it.DeanOf], it)
		}
	}
	if len(byFaculty) > 0 {
		ids := make([]string, 0, len(byFaculty))
		for id := range byFaculty {
			ids = append(ids, id)
		}
		faculties, err := tx.DeanFaculties(ctx, ids)
		if err != nil {
			return nil, nil, wrap("faculties", err)
		}
		for _, f := range faculties {
			lang := d.officeLang()
			if f.Language.Valid && f.Language.String != "" {
				lang = templates.Lang(f.Language.String)
			}
			recipients = append(recipients, &digestRecipient{
				key: "dean-" + f.ID, audience: templates.AudienceDean,
				addr: f.Email, lang: lang, faculty: f, items: byFaculty[f.ID],
			})
		}
	}

	lists := &officeLists{}
	if len(d.OfficeEmails) > 0 {
		if err := d.loadLists(ctx, tx, night, lists); err != nil {
			return nil, nil, wrap("failed notices and data problems", err)
		}
	}
	return recipients, lists, nil
}

// newDigestItem is the next() of store.DigestRead.Items and Moot: each row
// a new digestItem appended to items.
func newDigestItem(items *[]*digestItem) func() *store.DigestItem {
	return func() *store.DigestItem {
		it := &digestItem{}
		*items = append(*items, it)
		return &it.DigestItem
	}
}

// loadReported returns the students' open reports, newest first, as
// rows of the office digest's section of what students reported: Reason
// is the report's kind, Due its date, SubjectID "R<report id>".
func loadReported(ctx context.Context, tx *store.DigestRead) ([]*digestItem, error) {
	rows, err := tx.ReportsForDigest(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*digestItem, len(rows))
	for i, r := range rows {
		out[i] = &digestItem{DigestItem: store.DigestItem{
			ID: -r.ID, Rule: r.Rule, StudentID: r.StudentID, SubjectID: "R" + strconv.FormatInt(r.ID, 10),
			Due: r.ReportedOn, Name: r.Name, Faculty: r.Faculty, Reason: r.Kind,
		}}
	}
	return out, nil
}

// loadMoot returns the obligations closed as moot that the office digests
// of keys list tonight, and for each key the night after which they
// closed: the night of its previous digest that went out, or MootDays
// before night.
func (d *Digest) loadMoot(ctx context.Context, tx *store.DigestRead, night date.Date, keys []string) ([]*digestItem, []date.Date, error) {
	prev, err := tx.PreviousDigestNights(ctx, keys, night)
	if err != nil {
		return nil, nil, err
	}
	since := make([]date.Date, len(keys))
	from := night
	for i, k := range keys {
		since[i] = night.AddDays(-MootDays)
		if p, ok := prev[k]; ok {
			since[i] = p
		}
		from = min(from, since[i])
	}
	var moot []*digestItem
	if err := tx.Moot(ctx, from, night, newDigestItem(&moot)); err != nil {
		return nil, nil, err
	}
	return moot, since, nil
}

// officeNews is the window of the office closures one office digest
// lists: those after the previous digest it had (at), or, without one,
// those of the last MootDays nights (after day).
type officeNews struct {
	at  time.Time
	day date.Date
}

func (w officeNews) news(it *digestItem) bool {
	if !w.at.IsZero() {
		return it.office.at.After(w.at)
	}
	return it.ClosedOn > int32(w.day)
}

// officeNewsMargin: an office closure made while the previous digest
// was being read (between its snapshot and its claim, whose time is all
// the digests table keeps) would otherwise be in neither digest; listing
// the closures of that margin twice is the lesser harm.
const officeNewsMargin = time.Hour

// loadOfficeClosed returns the obligations the office closed in the
// console that the office digests of keys list tonight, and for each key
// its window: since its previous digest that went out, or the last
// MootDays nights.
func (d *Digest) loadOfficeClosed(ctx context.Context, tx *store.DigestRead, night date.Date, keys []string) ([]*digestItem, []officeNews, error) {
	prev, err := tx.PreviousDigestTimes(ctx, keys, night)
	if err != nil {
		return nil, nil, err
	}
	windows := make([]officeNews, len(keys))
	afterDay := night.AddDays(-MootDays)
	var afterAt time.Time // the earliest window's start; zero: by day only
	for i, k := range keys {
		windows[i].day = afterDay
		if p, ok := prev[k]; ok {
			windows[i].at = p.Add(-officeNewsMargin)
			if afterAt.IsZero() || windows[i].at.Before(afterAt) {
				afterAt = windows[i].at
			}
		}
	}
	if len(prev) == len(keys) {
		afterDay = night // every window is by time
	}
	rows, err := tx.OfficeClosed(ctx, afterDay, afterAt, night)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*digestItem, len(rows))
	for i, r := range rows {
		out[i] = &digestItem{DigestItem: r.DigestItem, office: &officeClosure{at: r.ClosedAt, by: r.ClosedBy, note: r.Note}}
	}
	return out, windows, nil
}

// loadSent attaches to each listed obligation the notices delivered for it.
func (d *Digest) loadSent(ctx context.Context, tx *store.DigestRead, mask int, byID map[int64]*digestItem) error {
	loc := d.location()
	return tx.SentNotices(ctx, mask, func(id int64, level int, audience, channel []byte, at time.Time) {
		it := byID[id]
		if it == nil {
			return
		}
		kind := -1
		for k, sk := range sentKinds {
			if string(audience) == sk.audience && string(channel) == sk.channel {
				kind = k
				break
			}
		}
		if kind < 0 {
			return // the schema allows no other pair
		}
		it.sent = append(it.sent, sentNotice{on: date.FromTime(at.In(loc)), level: int16(level), kind: uint8(kind)})
	})
}

// loadLists reads the office digest's failed notices (the last 7 nights)
// and data problems, the most recent first, cut to the caps.
func (d *Digest) loadLists(ctx context.Context, tx *store.DigestRead, night date.Date, l *officeLists) error {
	failed, err := tx.FailedNotices(ctx, night, failedDays, capOr(d.MaxFailed))
	if err != nil {
		return err
	}
	for _, f := range failed {
		code, detail := failReason(f.Err, f.Class)
		l.failed = append(l.failed, templates.FailedNotice{
			NoticeID: strconv.FormatInt(f.ID, 10), StudentID: f.StudentID, Rule: f.Rule,
			Audience: f.Audience, Channel: f.Channel, Code: code, Detail: detail,
		})
		l.failedTotal = f.Total
	}
	waiting, why, err := PendingSummary(ctx, tx.Queryer(), night, true)
	if err != nil {
		return err
	}
	l.waiting = waiting
	for _, r := range why {
		l.waitingWhy = append(l.waitingWhy, templates.WaitingReason{Class: r.Class, Detail: r.Detail, N: r.N})
	}
	// Where the problem is and what it is; never a value (the sync keeps
	// values out of data_problems).
	problems, err := tx.DataProblems(ctx, capOr(d.MaxProblems))
	if err != nil {
		return err
	}
	for _, p := range problems {
		l.problems = append(l.problems, templates.DataProblem{Entity: p.Entity, RowID: p.RowID, Field: p.Field, Code: p.Code, Message: p.Message})
		l.problemsTotal = p.Total
	}
	if l.problemsTotal > len(l.problems) {
		counts, err := tx.DataProblemCounts(ctx)
		if err != nil {
			return err
		}
		for _, c := range counts {
			l.counts = append(l.counts, templates.ProblemCount{Code: c.Code, N: c.N})
		}
	}
	return nil
}

func (d *Digest) ownerID() int64 {
	if d.Owner == nil {
		return 0
	}
	return d.Owner.ID()
}

// send claims, builds, sends and records the digest of one recipient.
// It returns the rows the digest listed.
func (d *Digest) send(ctx context.Context, log *slog.Logger, night date.Date, r *digestRecipient, lists *officeLists, last bool) (Outcome, int, error) {
	log = log.With("audience", r.audience, "recipient_key", r.key)
	msgID := DigestMessageID(night, r.key)
	st := store.New(d.DB)
	id, claimed, err := st.ClaimDigest(ctx, store.DigestClaim{
		Night: night, Audience: r.audience, RecipientKey: r.key, Recipient: r.addr, Language: r.lang, MessageID: msgID,
	}, d.leaseSeconds(), d.ownerID())
	if err != nil {
		return Retry, 0, fmt.Errorf("digest %s: claim: %w", r.key, err)
	}
	if !claimed {
		status, err := st.DigestStatusOf(ctx, night, r.key)
		if err != nil {
			return Retry, 0, fmt.Errorf("digest %s: claim: %w", r.key, err)
		}
		if status == store.DigestSending {
			return Skipped, 0, fmt.Errorf("digest %s: %w", r.key, ErrDigestClaimed)
		}
		return Skipped, 0, nil
	}
	log = log.With("digest_id", id)

	// New since yesterday: not listed in the recipient's previous digest
	// that went out.
	prev, err := st.PreviousDigestRows(ctx, r.key, night)
	if err != nil {
		return d.release(ctx, id, fmt.Errorf("digest %s: previous digest: %w", r.key, err))
	}
	seen := make(map[int64]bool, len(prev))
	for _, o := range prev {
		seen[o] = true
	}
	out, attachments, c, err := d.build(night, r, seen, lists)
	if err != nil {
		// A bug, not the recipient's: left pending, the night fails and
		// the operators hear of it; a rerun after the fix sends it.
		return d.release(ctx, id, fmt.Errorf("digest %s: %w", r.key, err))
	}
	newRows := c.newRows
	if err := d.recordRows(ctx, id, r.items, newRows); err != nil {
		return d.release(ctx, id, fmt.Errorf("digest %s: %w", r.key, err))
	}
	hash := contentHash(out, attachments)
	if d.Pace != nil {
		after, err := d.Pace.Take(ctx, "email", true)
		if err != nil || after > 0 {
			if rerr := st.ReleaseDigestClaim(context.WithoutCancel(ctx), id); rerr != nil {
				return Retry, 0, fmt.Errorf("digest %s: give back a postponed claim: %w", r.key, rerr)
			}
			if err != nil {
				log.WarnContext(ctx, "digest postponed: the rate limiter did not answer", "err", err)
				after = pacerWaitOnError
			}
			return Postponed, 0, fmt.Errorf("digest %s: %w", r.key, &PostponedError{After: after})
		}
	}
	res, retryable, err := d.Mail.Send(ctx, mail.Message{
		To: r.addr, Subject: out.Subject, Text: out.Text, HTML: out.HTML, MessageID: msgID,
		Headers:     map[string]string{mail.HeaderKind: "digest", mail.HeaderAudience: r.audience},
		Attachments: attachments,
	})
	if err == nil {
		if err := d.finish(ctx, id, store.DigestOutcome{Status: store.DigestSent, ProviderID: firstNonEmpty(res.ProviderID, res.Reply), Version: out.Version, Hash: hash}); err != nil {
			// Sent but not recorded: the window the guarantees allow (docs/reliability.md); the
			// lease lets the retry send it again.
			return Retry, 0, err
		}
		// Only the newest digest's rows are needed; a week is kept.
		if err := st.PruneDigestRows(context.WithoutCancel(ctx), r.key, night, digestRowsKept); err != nil {
			log.WarnContext(ctx, "prune digest rows", "err", err)
		}
		attached := 0
		for _, a := range attachments {
			attached += len(a.Data)
		}
		log.InfoContext(ctx, "digest sent", "rows", len(r.items), "moot", len(r.moot), "new", newRows,
			"shown", c.shown, "html_bytes", len(out.HTML), "attachment_bytes", attached)
		return Sent, len(r.items), nil
	}
	class, status, outcome := "permanent", store.DigestFailed, Failed
	if retryable {
		class, status, outcome = "temporary", store.DigestPending, Retry
		if last {
			status = store.DigestFailed
		}
	}
	if ferr := d.finish(ctx, id, store.DigestOutcome{Status: status, ErrorClass: class, LastError: err.Error(), Version: out.Version, Hash: hash}); ferr != nil {
		return Retry, 0, errors.Join(err, ferr)
	}
	log.WarnContext(ctx, "digest not delivered", "class", class, "final", status == store.DigestFailed, "err", err)
	if outcome == Failed {
		// Digests are not notices: a refused digest is logged and
		// recorded, not listed anywhere, and not resent tonight.
		return Failed, 0, nil
	}
	if status == store.DigestFailed {
		return Failed, 0, fmt.Errorf("digest %s: gave up: %w", r.key, err)
	}
	return Retry, 0, fmt.Errorf("digest %s: %w", r.key, err)
}

// recordRows replaces the obligations the digest lists (a resumed digest
// may list other ones than its first attempt).
func (d *Digest) recordRows(ctx context.Context, id int64, items []*digestItem, newRows int) error {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return store.New(d.DB).RecordDigestRows(ctx, id, ids, newRows)
}

// release gives a claimed digest back (pending) after a failure of ours
// before the send, and returns err for a retry.
func (d *Digest) release(ctx context.Context, id int64, err error) (Outcome, int, error) {
	if ferr := d.finish(ctx, id, store.DigestOutcome{Status: store.DigestPending, ErrorClass: "temporary", LastError: err.Error()}); ferr != nil {
		err = errors.Join(err, ferr)
	}
	return Retry, 0, err
}

// finish records the outcome of an attempt, also when ctx is cancelled.
func (d *Digest) finish(ctx context.Context, id int64, o store.DigestOutcome) error {
	return store.New(d.DB).FinishDigest(context.WithoutCancel(ctx), id, o)
}

// digestCut is how a digest of one recipient was cut.
type digestCut struct {
	newRows int // open rows not in the previous digest
	shown   int // rows the email shows
}

// build renders the digest of r and, when rows were left out, the CSV of
// every row. It cuts the sections to MaxSectionRows rows, and takes a
// third off that (and off the lists of failed notices and data problems)
// until the HTML is under MaxHTML.
func (d *Digest) build(night date.Date, r *digestRecipient, seen map[int64]bool, lists *officeLists) (templates.Rendered, []mail.Attachment, digestCut, error) {
	var c digestCut
	secs := d.sections(night, r)
	for _, it := range r.items {
		if !seen[it.ID] {
			c.newRows++
		}
	}
	limit, listCap := d.maxSectionRows(), len(lists.failed)+len(lists.problems)
	for {
		tdig, shown := d.compose(night, r, secs, seen, lists, limit, listCap)
		out, err := d.Templates.Digest(tdig)
		if err != nil {
			return out, nil, c, fmt.Errorf("render: %w", err)
		}
		if len(out.HTML) > d.maxHTML() && (limit > 1 || listCap > 4) {
			limit, listCap = max(1, limit*2/3), max(4, listCap*2/3)
			continue
		}
		c.shown = shown
		if tdig.Attachment == "" {
			return out, nil, c, nil
		}
		csvData, err := d.csv(night, r, secs, seen)
		if err != nil {
			return out, nil, c, fmt.Errorf("csv: %w", err)
		}
		return out, []mail.Attachment{{Name: tdig.Attachment, ContentType: templates.DigestCSVType, Data: csvData}}, c, nil
	}
}

// digestSection is the rows of one section of a digest, the most urgent
// first, and its rules in the order of their most urgent row.
type digestSection struct {
	kind  string
	items []*digestItem
	rules []string
	count map[string]int // rows per rule
}

// sections sorts the rows of r's digest into their sections
// (templates.SectionOf; moot rows into SectionMoot), in the digest's
// order, each the most urgent row first: the highest days overdue (due
// today before tomorrow, the most overdue, the soonest upcoming), then by
// rule, student, subject and obligation, so that a digest sent again is
// the same.
func (d *Digest) sections(night date.Date, r *digestRecipient) []*digestSection {
	late := int(rules.OfficeDigest)
	if r.audience == templates.AudienceDean {
		late = int(rules.DeanDigest)
	}
	byKind := map[string]*digestSection{}
	out := make([]*digestSection, 0, len(templates.DigestSections))
	for _, k := range templates.DigestSections {
		s := &digestSection{kind: k, count: map[string]int{}}
		byKind[k] = s
		out = append(out, s)
	}
	for _, it := range r.items {
		k := templates.SectionOf(it.Rule, night.Sub(date.Date(it.Due)), it.FoundLate&late != 0)
		byKind[k].items = append(byKind[k].items, it)
	}
	byKind[templates.SectionMoot].items = slices.Clone(r.moot)
	byKind[templates.SectionClosed].items = slices.Clone(r.closed)
	byKind[templates.SectionReported].items = slices.Clone(r.reported)
	for _, s := range out {
		if s.kind != templates.SectionReported { // newest first, as loaded
			sortMostUrgent(s.items)
		}
		for _, it := range s.items {
			if s.count[it.Rule] == 0 {
				s.rules = append(s.rules, it.Rule)
			}
			s.count[it.Rule]++
		}
	}
	return out
}

// compose builds the template data of r's digest: each section's limit
// most urgent rows, grouped by rule, with the count of every row; the
// failed notices and data problems cut to listCap together. It returns
// how many rows are shown.
func (d *Digest) compose(night date.Date, r *digestRecipient, secs []*digestSection, seen map[int64]bool, lists *officeLists, limit, listCap int) (templates.Digest, int) {
	tdig := templates.Digest{Lang: r.lang, AsOf: night, Office: d.Office, Audience: r.audience}
	if r.audience == templates.AudienceDean {
		tdig.DeanName, tdig.FacultyName = r.faculty.DeanName, r.faculty.Name
	} else {
		failed := lists.failed[:min(len(lists.failed), max(listCap/2, listCap-len(lists.problems)))]
		problems := lists.problems[:min(len(lists.problems), listCap-len(failed))]
		tdig.Failed, tdig.FailedTotal = failed, max(lists.failedTotal, len(lists.failed))
		tdig.Waiting, tdig.WaitingWhy = lists.waiting, lists.waitingWhy
		tdig.Problems, tdig.ProblemsTotal = problems, max(lists.problemsTotal, len(lists.problems))
		tdig.ProblemCounts = lists.counts
		if len(problems) < len(lists.problems) && lists.counts == nil {
			tdig.ProblemCounts = lists.allCounts()
		}
	}
	shown, cut := 0, false
	for _, s := range secs {
		if len(s.items) == 0 {
			continue
		}
		sec := templates.DigestSection{Kind: s.kind, Total: len(s.items)}
		index := make(map[string]int, len(s.rules))
		for i, rule := range s.rules {
			index[rule] = i
			sec.Groups = append(sec.Groups, templates.DigestGroup{Rule: rule, Total: s.count[rule]})
		}
		n := min(len(s.items), limit)
		for _, it := range s.items[:n] {
			g := &sec.Groups[index[it.Rule]]
			g.Rows = append(g.Rows, d.digestRow(night, r.lang, s.kind, it, seen, sentShown))
		}
		shown += n
		cut = cut || n < len(s.items)
		tdig.Sections = append(tdig.Sections, sec)
	}
	for _, it := range r.items {
		days := night.Sub(date.Date(it.Due))
		if days > 0 {
			tdig.OverdueTotal++
		}
		if days == 0 || days == -1 {
			tdig.TodayTotal++
		}
		if !seen[it.ID] {
			tdig.NewTotal++
		}
	}
	tdig.RowsTotal = len(r.items)
	if cut {
		tdig.Attachment = templates.DigestCSVName(night)
	}
	return tdig, shown
}

// csv writes the file attached to a cut digest: every row, in the order of
// the email (sections, each's rules, each rule's rows most urgent first).
func (d *Digest) csv(night date.Date, r *digestRecipient, secs []*digestSection, seen map[int64]bool) ([]byte, error) {
	var buf bytes.Buffer
	w, err := d.Templates.NewDigestCSV(&buf, r.lang)
	if err != nil {
		return nil, err
	}
	total, written := len(r.items)+len(r.moot)+len(r.closed)+len(r.reported), 0
	for _, s := range secs {
		index := make(map[string]int, len(s.rules))
		for i, rule := range s.rules {
			index[rule] = i
		}
		items := slices.Clone(s.items)
		slices.SortStableFunc(items, func(a, b *digestItem) int { return cmp.Compare(index[a.Rule], index[b.Rule]) })
		for _, it := range items {
			if written == csvSampleRows {
				// Size the buffer once, from what the first rows took,
				// rather than doubling it (and copying) as it fills.
				if err := w.Flush(); err != nil {
					return nil, err
				}
				buf.Grow((total - written) * (buf.Len()/written + 16))
			}
			if err := w.Row(it.Rule, d.digestRow(night, r.lang, s.kind, it, seen, 0)); err != nil {
				return nil, err
			}
			written++
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// allCounts is the problems per code of the problems loaded, for a list
// cut here rather than at loading.
func (l *officeLists) allCounts() []templates.ProblemCount {
	n := map[string]int{}
	for _, p := range l.problems {
		n[p.Code]++
	}
	out := make([]templates.ProblemCount, 0, len(n))
	for c, k := range n {
		out = append(out, templates.ProblemCount{Code: c, N: k})
	}
	slices.SortFunc(out, func(a, b templates.ProblemCount) int {
		return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Code, b.Code))
	})
	return out
}

// csvSampleRows: the CSV buffer is sized after this many rows.
const csvSampleRows = 256

// sortMostUrgent sorts items the most urgent first: the earliest due date
// (the most days overdue, or the fewest left), then by rule, student,
// subject and obligation.
func sortMostUrgent(items []*digestItem) {
	slices.SortFunc(items, func(a, b *digestItem) int {
		return cmp.Or(cmp.Compare(a.Due, b.Due), strings.Compare(a.Rule, b.Rule),
			strings.Compare(a.StudentID, b.StudentID), strings.Compare(a.SubjectID, b.SubjectID), cmp.Compare(a.ID, b.ID))
	})
}

// digestRow is an obligation as a row of section of the digest of night in
// lang; it is new when seen does not hold it. sentMax bounds the (step,
// day) pairs of what was sent that it names, the last ones; 0: all.
func (d *Digest) digestRow(night date.Date, lang, section string, it *digestItem, seen map[int64]bool, sentMax int) templates.DigestRow {
	row := templates.DigestRow{
		StudentID: it.StudentID, SubjectID: it.SubjectID, Name: it.Name, Faculty: it.Faculty,
		Due: date.Date(it.Due), DaysOverdue: night.Sub(date.Date(it.Due)), Level: it.Level, Steps: d.steps(it.Rule),
		Section: section,
	}
	if section == templates.SectionReported {
		row.Reported, row.DaysOverdue, row.Level, row.Steps = it.Reason, 0, 0, 0
		return row
	}
	if section == templates.SectionMoot || section == templates.SectionClosed {
		row.Reason, row.ClosedOn = it.Reason, date.Date(it.ClosedOn)
		if it.office != nil {
			row.ClosedBy, row.Note = it.office.by, it.office.note
		}
		return row
	}
	if it.SnoozedUntil > int32(night) {
		row.SnoozedUntil = date.Date(it.SnoozedUntil)
	}
	late := int(rules.OfficeDigest | rules.DeanDigest)
	row.FoundLate = it.FoundLate&late != 0
	row.New = !seen[it.ID]
	row.Sent = d.sentText(lang, it.Rule, it.sent, sentMax)
	return row
}

// steps is the length of rule's ladder as configured.
func (d *Digest) steps(rule string) int {
	if n := d.Steps[rule]; n > 0 {
		return n
	}
	return templates.BuiltinSteps(rule)
}

// contentHash identifies what a digest said: its subject, text, HTML and
// attachments, hashed without copying them into one string.
func contentHash(out templates.Rendered, attachments []mail.Attachment) string {
	h := sha256.New()
	for i, part := range []string{out.Subject, out.Text, out.HTML} {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(part))
	}
	for _, a := range attachments {
		h.Write([]byte("\x00" + a.Name + "\x00"))
		h.Write(a.Data)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// sentWords name a delivered notice in the "already sent" column by its
// audience and channel.
var sentWords = map[string]map[string]string{
	"en": {"student/email": "email", "student/sms": "SMS", "office/email": "email to the office", "dean/email": "email to the dean"},
	"ru": {"student/email": "email", "student/sms": "SMS", "office/email": "письмо отделу", "dean/email": "письмо декану"},
	"kk": {"student/email": "email", "student/sms": "SMS", "office/email": "бөлімге хат", "dean/email": "деканға хат"},
}

// sentText writes what was delivered for an obligation of rule, by step
// and day, oldest first, in words: "email + SMS, step 2 of 3,
// 24 November; email to the office, step 3 of 3, 25 November". max > 0
// keeps the last max (step, day) pairs, after "…".
func (d *Digest) sentText(lang, rule string, sent []sentNotice, max int) string {
	if len(sent) == 0 {
		return ""
	}
	lang = templates.Lang(lang)
	steps := d.steps(rule)
	var parts []string
	for i := 0; i < len(sent); {
		// The notices of one step and day (sent is in the order they went).
		level, on := sent[i].level, sent[i].on
		var kinds uint8 // a bit per sentKinds index
		for _, s := range sent[i:] {
			if s.level == level && s.on == on {
				kinds |= 1 << s.kind
			}
		}
		var b strings.Builder
		for k := range sentKinds {
			if kinds&(1<<k) == 0 {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(" + ")
			}
			name := sentWords[lang][sentKinds[k].audience+"/"+sentKinds[k].channel]
			if name == "" {
				name = sentKinds[k].audience + " " + sentKinds[k].channel
			}
			b.WriteString(name)
		}
		b.WriteString(", " + templates.StepText(lang, int(level), steps) + ", " + templates.FormatDayMonth(lang, on))
		parts = append(parts, b.String())
		// Go on with the first notice of another step or day.
		j := i + 1
		for j < len(sent) && seenBefore(sent[:j], sent[j]) {
			j++
		}
		i = j
	}
	if max > 0 && len(parts) > max {
		parts = append([]string{"…"}, parts[len(parts)-max:]...)
	}
	return strings.Join(parts, "; ")
}

// seenBefore reports whether a notice of the step and day of s is in
// sent.
func seenBefore(sent []sentNotice, s sentNotice) bool {
	for _, x := range sent {
		if x.level == s.level && x.on == s.on {
			return true
		}
	}
	return false
}

// smtpCode finds an SMTP reply code and enhanced code ("550 5.1.1") in a
// mail error; httpCode and providerCode an SMS provider's.
var (
	smtpCode     = regexp.MustCompile(`\b([45]\d\d)(?: ([45]\.\d{1,3}\.\d{1,3}))?\b`)
	httpCode     = regexp.MustCompile(`HTTP (\d{3})`)
	providerCode = regexp.MustCompile(`code ([A-Za-z0-9_-]{1,20})`)
)

// failReason says why a notice failed, as a code that the digest explains
// in its language (templates.FailAddressInvalid…), and the provider's
// codes ("550 5.1.1", "HTTP 400, code 21211"); never the error's text,
// which is English and may quote the server.
func failReason(lastErr, class string) (code, detail string) {
	switch {
	case strings.Contains(lastErr, "mail: "):
		if m := smtpCode.FindStringSubmatch(lastErr); m != nil {
			detail = strings.TrimSpace(m[1] + " " + m[2])
		}
	case strings.Contains(lastErr, "sms: "):
		var parts []string
		if m := httpCode.FindStringSubmatch(lastErr); m != nil {
			parts = append(parts, "HTTP "+m[1])
		}
		if m := providerCode.FindStringSubmatch(lastErr); m != nil {
			parts = append(parts, "code "+m[1])
		}
		detail = strings.Join(parts, ", ")
	}
	switch {
	case strings.Contains(lastErr, mail.ErrInvalidAddress.Error()):
		code = templates.FailAddressInvalid
	case strings.Contains(lastErr, sms.ErrInvalidPhone.Error()):
		code = templates.FailPhoneInvalid
	case strings.Contains(lastErr, "SMS disabled"):
		code = templates.FailSMSDisabled
	case class == "temporary" || strings.HasSuffix(lastErr, "(temporary)"):
		code = templates.FailGaveUp
	case strings.Contains(lastErr, "mail: "):
		code = templates.FailMailRejected
		if strings.Contains(detail, " 5.1.") || strings.Contains(lastErr, "RCPT TO") && (strings.HasPrefix(detail, "550") || strings.HasPrefix(detail, "551") || strings.HasPrefix(detail, "553")) {
			code = templates.FailMailboxRejected
		}
	case strings.Contains(lastErr, "sms: "):
		code = templates.FailSMSRejected
	}
	return code, detail
}

// connectionLevel reports a temporary failure that is not the server's
// answer about this message (no connection, a timeout, a cancelled ctx):
// the next digest would fail the same way.
func connectionLevel(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var me *mail.Error
	return errors.As(err, &me) && me.Code == 0
}

// lastAttempt reports whether ctx is its task's last attempt
// (WithAttempt): a temporary failure is then recorded as failed.
func lastAttempt(ctx context.Context) bool {
	a, ok := AttemptOf(ctx)
	return ok && a.Last()
}

func capOr(n int) int {
	if n <= 0 {
		return defaultDigestCap
	}
	return n
}

func (d *Digest) maxSectionRows() int {
	if d.MaxSectionRows <= 0 {
		return defaultMaxSectionRows
	}
	return d.MaxSectionRows
}

func (d *Digest) maxHTML() int {
	if d.MaxHTML <= 0 {
		return defaultMaxHTML
	}
	return d.MaxHTML
}

func (d *Digest) officeLang() string {
	if d.OfficeLang == "" {
		return "ru"
	}
	return templates.Lang(d.OfficeLang)
}

func (d *Digest) leaseSeconds() int64 {
	if d.Lease <= 0 {
		return int64((10 * time.Minute) / time.Second)
	}
	return max(int64(d.Lease/time.Second), 1)
}

func (d *Digest) location() *time.Location {
	if d.Location != nil {
		return d.Location
	}
	if l, err := time.LoadLocation("Asia/Almaty"); err == nil {
		return l
	}
	return time.FixedZone("+05", 5*60*60)
}

func (d *Digest) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
