package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// EvalRecord is what Record changed.
type EvalRecord struct {
	Opened       int64 // obligations opened
	Closed       int64 // obligations closed
	ClosedMoot   int64 // of Closed: the action can no longer be taken
	FoundLate    int64 // obligations marked found late: listed in digests instead of urgent emails
	StepsDue     int64 // steps recorded due
	StepsSkipped int64 // lower steps recorded skipped
	Notices      int64 // notices created
}

// Record merges the obligations staged in eval_obligations into
// sisnotify.obligations for night, closes the ones that are gone,
// records the steps that became due (and the lower ones skipped) and
// creates their notices: a step first reached more than staleAfter days
// after its date is found late; officeEmails get one office urgent notice
// each.
func (ev *Evaluation) Record(ctx context.Context, asOf date.Date, staleAfter int, officeEmails []string) (res EvalRecord, err error) {
	night := asOf.String()
	exec := func(what, q string, args ...any) (int64, error) {
		r, err := ev.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("evaluate: %s: %w", what, err)
		}
		n, _ := r.RowsAffected()
		return n, nil
	}
	if _, err = exec("index", `CREATE INDEX ON eval_obligations (rule, subject_id, anchor)`); err != nil {
		return res, err
	}
	if _, err = exec("analyze", `ANALYZE eval_obligations`); err != nil {
		return res, err
	}
	// New obligations; open ones move to their reached step. A closed
	// obligation never reopens: it never sends again. One that is moot when
	// first seen is never opened.
	if res.Opened, err = exec("open obligations", `
		INSERT INTO sisnotify.obligations AS o (rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, repeat, actions, opened_on, last_seen_on)
		SELECT rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, 0, actions, $1, $1 FROM eval_obligations
		WHERE moot IS NULL
		ON CONFLICT (rule, subject_id, anchor) DO NOTHING`, night); err != nil {
		return res, err
	}
	// A repeat step is due again repeat_every days after its last
	// delivery (the night its current repeat was recorded due), however
	// late the first one came: never on two nights closer than that.
	if _, err = exec("update obligations", `
		UPDATE sisnotify.obligations o
		SET due_on = e.due_on, level = e.level, step_on = e.step_on, actions = e.actions,
		    period_id = e.period_id, last_seen_on = $1,
		    repeat = CASE
		        WHEN e.level <> o.level THEN 0
		        WHEN e.repeat_every > 0 AND EXISTS (
		            SELECT 1 FROM sisnotify.obligation_steps st
		            WHERE st.obligation_id = o.obligation_id AND st.level = o.level AND st.repeat = o.repeat
		              AND st.status = '`+string(StepDue)+`' AND st.recorded_on <= $1::date - e.repeat_every) THEN o.repeat + 1
		        ELSE o.repeat END
		FROM eval_obligations e
		WHERE o.rule = e.rule AND o.subject_id = e.subject_id AND o.anchor = e.anchor AND o.closed_at IS NULL AND e.moot IS NULL
		  AND (o.last_seen_on, o.level, o.due_on, o.actions) IS DISTINCT FROM ($1::date, e.level, e.due_on, e.actions)`, night); err != nil {
		return res, err
	}
	// Gone tonight: done, out of scope, replaced by a new anchor, or moot
	// (the action can no longer be taken: the reason is the rule's). Of
	// the students evaluated: the others' obligations are as they were.
	if res.Closed, err = exec("close obligations", `
		UPDATE sisnotify.obligations o
		SET closed_on = $1, closed_at = now(),
		    close_reason = CASE
		        WHEN EXISTS (SELECT 1 FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id AND e.moot IS NULL)
		            THEN '`+CloseNewAnchor+`'
		        ELSE coalesce((SELECT min(e.moot) FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id), '`+CloseResolved+`') END
		WHERE o.closed_at IS NULL`+ev.onlyStudent("o.student_id")+ev.onlyWoken("o.student_id")+`
		  AND NOT EXISTS (SELECT 1 FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id AND e.anchor = o.anchor AND e.moot IS NULL)`, night); err != nil {
		return res, err
	}
	if err = ev.conn.QueryRowContext(ctx, `SELECT count(*) FROM sisnotify.obligations WHERE closed_on = $1 AND close_reason = ANY($2)`,
		night, pq.Array([]string{rules.MootDeparturePassed, rules.MootEntryPassed})).Scan(&res.ClosedMoot); err != nil {
		return res, fmt.Errorf("evaluate: count moot: %w", err)
	}
	if _, err = exec("steps table", `CREATE TEMP TABLE eval_due (obligation_id bigint, level int, repeat int, stale bool) ON COMMIT DROP`); err != nil {
		return res, err
	}
	// A step reached for the first time more than stale_after days after
	// its date is stale: its student parts are sent, worded for how late
	// they are, but its office-urgent and dean emails are not; the digests
	// list the obligation instead, marked found late, while it stays open.
	if res.StepsDue, err = exec("due steps", `
		WITH due AS (
			INSERT INTO sisnotify.obligation_steps (obligation_id, level, repeat, status, recorded_on)
			SELECT o.obligation_id, o.level, o.repeat, '`+string(StepDue)+`', $1
			FROM sisnotify.obligations o
			WHERE o.closed_at IS NULL AND o.last_seen_on = $1`+ev.onlyStudent("o.student_id")+`
			ON CONFLICT (obligation_id, level, repeat) DO NOTHING
			RETURNING obligation_id, level, repeat)
		INSERT INTO eval_due
		SELECT d.obligation_id, d.level, d.repeat, d.repeat = 0 AND o.step_on < $1::date - $2::int
		FROM due d JOIN sisnotify.obligations o ON o.obligation_id = d.obligation_id`, night, staleAfter); err != nil {
		return res, err
	}
	if res.FoundLate, err = exec("found late", `
		UPDATE sisnotify.obligations o
		SET found_late = o.found_late
		        | CASE WHEN o.actions & `+strconv.Itoa(int(rules.OfficeUrgent))+` <> 0 THEN `+strconv.Itoa(int(rules.OfficeDigest))+` ELSE 0 END
		        | CASE WHEN o.actions & `+strconv.Itoa(int(rules.DeanEmail))+` <> 0 THEN `+strconv.Itoa(int(rules.DeanDigest))+` ELSE 0 END,
		    found_late_on = coalesce(o.found_late_on, $1)
		FROM eval_due d
		WHERE d.obligation_id = o.obligation_id AND d.stale
		  AND o.actions & `+strconv.Itoa(int(rules.OfficeUrgent|rules.DeanEmail))+` <> 0`, night); err != nil {
		return res, err
	}
	// Earlier steps never delivered are skipped, not sent in a burst.
	if res.StepsSkipped, err = exec("skipped steps", `
		INSERT INTO sisnotify.obligation_steps (obligation_id, level, repeat, status, recorded_on)
		SELECT d.obligation_id, l, 0, '`+string(StepSkipped)+`', $1
		FROM eval_due d, generate_series(1, d.level - 1) AS l
		ON CONFLICT (obligation_id, level, repeat) DO NOTHING`, night); err != nil {
		return res, err
	}
	// The notices of the due steps, one per recipient and channel. A
	// recipient without a usable address or phone gets none: that is a
	// data problem, reported by the sync. A student notice of an
	// obligation the office snoozed past tonight is created held
	// (not_before) until the snooze's date, so that the night does not wait
	// for it (NoticesToGo); the claim is what keeps it from going before
	// the date in the university's zone (noticeNotSnoozed), and this
	// database's midnight of that date is near enough for the count.
	c, err := ev.insertStepNotices(ctx, "eval_due", night, officeEmails, evalNoticeRecipients)
	res.Notices += c
	if err != nil {
		return res, err
	}
	return res, nil
}

// insertStepNotices creates the notices of the steps in the table from
// (obligation_id, level, repeat, stale: eval_due or one of its shape) for
// the recipients, and returns how many it created.
func (ev *Evaluation) insertStepNotices(ctx context.Context, from, night string, officeEmails []string, recipients []struct{ what, q string }) (int64, error) {
	var created int64
	for _, n := range recipients {
		args := []any{night}
		if n.what == "office urgent" {
			args = append(args, pq.Array(officeEmails))
		}
		r, err := ev.conn.ExecContext(ctx, `
			INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, repeat, student_id, subject_id, audience, channel, recipient, language, due_on, night, not_before)
			SELECT o.rule || '/' || o.subject_id || '/' || o.anchor || '/L' || d.level || '/R' || d.repeat || '/' || r.role || '/' || r.channel,
			       o.obligation_id, o.rule, d.level, d.repeat, o.student_id, o.subject_id, r.audience, r.channel, r.recipient, r.lang, o.due_on, $1,
			       CASE WHEN r.audience = 'student' AND o.snoozed_until > $1::date THEN o.snoozed_until::timestamptz END
			FROM `+from+` d
			JOIN sisnotify.obligations o ON o.obligation_id = d.obligation_id
			CROSS JOIN LATERAL (`+n.q+`) AS r(audience, channel, role, recipient, lang)
			ON CONFLICT (notice_key) DO NOTHING`, args...)
		if err != nil {
			return created, fmt.Errorf("evaluate: %s notices: %w", n.what, err)
		}
		c, _ := r.RowsAffected()
		created += c
	}
	return created, nil
}

// evalNoticeRecipients are the recipients of a due step's notices, by
// kind, in the order their notices are created: each query yields
// (audience, channel, role, recipient, lang) for the step d of the
// obligation o; the office's takes the office addresses as $2. A student
// notice of an obligation whose student reported it done is not created
// while the report pauses it (eval_paused). The first two are the
// student's (ReportsSettle creates those alone).
//
// No student notice is created to a contact known not to receive
// (sisnotify.unreachable_contacts, while the snapshot still holds it: a
// new address or number in the SIS is reachable again). In its place the
// step's student notice goes by the other channel when the step has none
// on it and the student's contact there is usable: an email step whose
// address bounced texts the phone, an SMS step whose number failed
// emails. Such a notice has the key of the step's own notice on that
// channel (rule/subject/anchor/level/repeat/student/channel), which the
// step does not otherwise create: one per step, however many nights.
var evalNoticeRecipients = []struct{ what, q string }{
	{"student email", `SELECT 'student', 'email', 'student', s.email, s.preferred_language FROM sisnotify.students s
			WHERE s.student_id = o.student_id AND s.email IS NOT NULL AND NOT ` + emailUnreachable + `
			  AND (o.actions & ` + strconv.Itoa(int(rules.StudentEmail)) + ` <> 0
			    OR o.actions & ` + strconv.Itoa(int(rules.StudentSMS)) + ` <> 0 AND ` + phoneUnreachable + `)` + reportsNotPaused},
	{"student sms", `SELECT 'student', 'sms', 'student', s.phone, s.preferred_language FROM sisnotify.students s
			WHERE s.student_id = o.student_id AND s.phone IS NOT NULL AND NOT ` + phoneUnreachable + `
			  AND (o.actions & ` + strconv.Itoa(int(rules.StudentSMS)) + ` <> 0
			    OR o.actions & ` + strconv.Itoa(int(rules.StudentEmail)) + ` <> 0 AND ` + emailUnreachable + `)` + reportsNotPaused},
	{"office urgent", `SELECT 'office', 'email', 'office' || a.n, a.addr, NULL FROM unnest($2::text[]) WITH ORDINALITY AS a(addr, n)
			WHERE NOT d.stale AND o.actions & ` + strconv.Itoa(int(rules.OfficeUrgent)) + ` <> 0`},
	{"dean email", `SELECT 'dean', 'email', 'dean-' || f.faculty_id, f.dean_email, f.dean_language
			FROM sisnotify.students s JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL
			WHERE NOT d.stale AND s.student_id = o.student_id AND f.dean_email IS NOT NULL AND o.actions & ` + strconv.Itoa(int(rules.DeanEmail)) + ` <> 0`},
}

// emailUnreachable and phoneUnreachable hold when the snapshot's address
// (number) of the student s is known not to receive: unreachableNow, seen
// from the student.
const (
	emailUnreachable = `EXISTS (SELECT 1 FROM sisnotify.unreachable_contacts u
			WHERE u.student_id = s.student_id AND u.channel = 'email' AND u.contact = s.email)`
	phoneUnreachable = `EXISTS (SELECT 1 FROM sisnotify.unreachable_contacts u
			WHERE u.student_id = s.student_id AND u.channel = 'sms' AND u.contact = s.phone)`
)
