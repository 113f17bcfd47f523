package simulation

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// check holds tonight against the invariants. What was sent is read from
// the SMTP server's and the SMS stub's records; the worker's tables say
// only what it meant to send and when an obligation closed.
func (h *harness) check(night date.Date, f fault, broken bool, code int, began time.Time, inFlight int, sis map[string]sisStudent) {
	t := h.t
	fail := func(invariant, format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d night %s (fault %s): invariant %q broken: %s\nreplay: SISNOTIFY_SIM_SEED=%d SISNOTIFY_SIM_STUDENTS=%d SISNOTIFY_SIM_NIGHTS=%d",
			h.cfg.seed, night, orNone(f), invariant, fmt.Sprintf(format, args...), h.cfg.seed, h.cfg.students, night.Sub(yearStart)+1)
	}
	mails := h.smtp.Messages()[h.mailSeen:]
	smss := h.sms.Messages()[h.smsSeen:]
	h.mailSeen += len(mails)
	h.smsSeen += len(smss)

	// 3. Duplicates: none without a crash, and no more than were in
	// flight with one.
	dups := 0
	var noticeHashes [][]byte
	var noticeMail []int // index into mails of each hash
	var offDigests, alertsOps, alertsOffice int
	officeDigestID := bare(jobs.DigestMessageID(night, "office1"))
	for i, m := range mails {
		id := m.MessageID()
		h.seenMail[id]++
		if h.seenMail[id] == 1 {
			if m.Header(mail.HeaderKind) == "notice" {
				h.sum.notices++
			}
		} else {
			dups++
		}
		switch {
		case m.Header(mail.HeaderKind) == "notice":
			if hash, ok := jobs.MessageHash(id); ok {
				noticeHashes = append(noticeHashes, hash)
				noticeMail = append(noticeMail, i)
			}
		case id == officeDigestID:
			offDigests++
		case m.Header(mail.HeaderKind) == "alert":
			for _, to := range m.To {
				switch to {
				case "ops@uni.example":
					alertsOps++
				case "office@uni.example":
					alertsOffice++
				}
			}
		}
	}
	for _, s := range smss {
		h.seenSMS[s.Reference]++
		if h.seenSMS[s.Reference] == 1 {
			h.sum.notices++
		} else {
			dups++
		}
	}
	h.sum.duplicates += dups
	switch {
	case f == faultKill || f == faultRedisFlush || f == faultRedisRestart || f == faultPGRestart:
		if dups > inFlight {
			fail("duplicates within the deliveries in flight", "%d duplicates, %d in flight at the fault", dups, inFlight)
		}
	case dups > 0:
		fail("no duplicates without a crash", "%d messages sent twice", dups)
	}

	// 5. A held night sends nothing and alerts ops and the office once.
	if broken {
		if len(smss) != 0 || len(mails) != alertsOps+alertsOffice || alertsOps != 1 || alertsOffice != 1 {
			fail("a held night sends nothing and alerts once", "%d emails (%d alerts to ops, %d to the office), %d SMS",
				len(mails), alertsOps, alertsOffice, len(smss))
		}
		return
	}
	if f == faultSISUnreachable {
		return
	}

	// 4. One office digest a night, even with nothing overdue.
	// (A digest sent again after a crash is a duplicate, held to the
	// deliveries in flight above.)
	if h.seenMail[officeDigestID] == 0 {
		h.sum.missingDigests++
		fail("one office digest per night", "%d office digests of %s tonight, %d in all", offDigests, night, h.seenMail[officeDigestID])
	}

	// A dean's digest exactly when the dean has cases: students of the
	// faculty with an open obligation whose reached step is in the dean's
	// digest.
	var deans []struct {
		Faculty string `db:"faculty_id"`
		Cases   bool   `db:"cases"`
	}
	if err := h.db.Select(&deans, `SELECT f.faculty_id, EXISTS (SELECT 1 FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id)
			WHERE s.faculty_id = f.faculty_id AND o.closed_at IS NULL AND (o.actions | o.found_late) & $1 <> 0) AS cases
		FROM sisnotify.faculties f WHERE f.removed_at IS NULL AND f.dean_email IS NOT NULL ORDER BY 1`, int(rules.DeanDigest)); err != nil {
		t.Fatal(err)
	}
	for _, d := range deans {
		got := h.seenMail[bare(jobs.DigestMessageID(night, "dean-"+d.Faculty))]
		if d.Cases != (got > 0) {
			h.sum.missingDigests++
			fail("a dean digest exactly when the dean has cases", "faculty %s: cases %v, %d digests of %s", d.Faculty, d.Cases, got, night)
		}
	}

	// 2. Nothing to a student out of scope, nothing for a closed
	// obligation.
	for _, m := range mails {
		if m.Header(mail.HeaderAudience) != "student" {
			continue
		}
		if left, ok := h.world.Left(m.Header(mail.HeaderStudent)); ok && left <= night {
			h.sum.outOfScope++
			fail("no notice out of scope", "student %s left on %s and got %s level %s", m.Header(mail.HeaderStudent), left,
				m.Header(mail.HeaderRule), m.Header(mail.HeaderLevel))
		}
	}
	for _, s := range smss {
		if left, ok := h.world.Left(s.Student); ok && left <= night {
			h.sum.outOfScope++
			fail("no notice out of scope", "student %s left on %s and got an SMS of %s (notice %s)", s.Student, left, s.Rule, s.Reference)
		}
	}
	if len(noticeHashes) > 0 {
		var closed []struct {
			Hash     []byte    `db:"hash"`
			NoticeID int64     `db:"notice_id"`
			Closed   time.Time `db:"closed_at"`
			Reason   string    `db:"close_reason"`
		}
		if err := h.db.Select(&closed, `SELECT sisnotify.message_hash(n.notice_key) AS hash, n.notice_id, o.closed_at, coalesce(o.close_reason, '') AS close_reason
			FROM sisnotify.notices n JOIN sisnotify.obligations o USING (obligation_id)
			WHERE n.channel = 'email' AND sisnotify.message_hash(n.notice_key) = ANY($1) AND o.closed_at IS NOT NULL`, pq.Array(noticeHashes)); err != nil {
			t.Fatal(err)
		}
		at := map[string]time.Time{}
		for i, hsh := range noticeHashes {
			at[string(hsh)] = mails[noticeMail[i]].Received
		}
		for _, c := range closed {
			if sent := at[string(c.Hash)]; sent.After(c.Closed) {
				h.sum.afterClose++
				fail("nothing after an obligation closed", "notice %d arrived at %s, its obligation closed (%s) at %s",
					c.NoticeID, sent.Format(time.RFC3339Nano), c.Reason, c.Closed.Format(time.RFC3339Nano))
			}
		}
	}

	// The SIS alone says when three rules are done for a student: checked
	// in at the office after the last entry, registered after it, a
	// passport valid for more than a year. No student notice of such a
	// rule goes once the SIS the night read says so, and each step (by
	// the entry or the expiry it is anchored on) goes on one night only.
	type got struct {
		student, rule string
		level         int
		channel       string
		what          string
	}
	var received []got
	for _, m := range mails {
		if m.Header(mail.HeaderAudience) == "student" && m.Header(mail.HeaderKind) == "notice" {
			level, _ := strconv.Atoi(m.Header(mail.HeaderLevel))
			received = append(received, got{m.Header(mail.HeaderStudent), m.Header(mail.HeaderRule), level, "email", "email " + m.MessageID()})
		}
	}
	for _, s := range smss {
		received = append(received, got{s.Student, s.Rule, s.Level, "sms", "SMS of notice " + s.Reference})
	}
	for _, r := range received {
		st, ok := sis[r.student]
		if !ok {
			continue
		}
		var done bool
		var anchor string
		switch r.rule {
		case "arrival-check-in":
			done, anchor = st.checkedIn(), st.entered
		case "registration":
			done, anchor = st.registered(), st.entered
		case "passport-renewal":
			done, anchor = st.passportValid(night), st.passport
		default:
			continue
		}
		if done {
			h.sum.afterClose++
			fail("nothing after an obligation closed", "%s of %s level %d to student %s, whom the SIS shows done (%+v)", r.what, r.rule, r.level, r.student, st)
		}
		key := r.rule + "|" + r.student + "|" + strconv.Itoa(r.level) + "|" + r.channel + "|" + anchor
		// A step that repeats (passport renewal's third, every 30 days)
		// goes again once its interval has passed.
		every := 0
		if rule, ok := rules.Lookup(rules.ID(r.rule)); ok && r.level >= 1 && r.level <= len(rule.Steps) {
			every = rule.Steps[r.level-1].Repeat
		}
		if last, seen := h.steps[key]; seen && last != night && (every == 0 || night.Sub(last) < every) {
			h.sum.duplicates++
			fail("a step goes once", "%s of %s level %d to student %s (anchored on %s), sent before on %s (repeats every %d days)",
				r.what, r.rule, r.level, r.student, anchor, last, every)
		}
		h.steps[key] = night
	}

	// 1 and 6. What the worker recorded sent is in the record, and
	// nothing due is left pending once the night and the day's retries
	// have run (a notice held for later, by quiet hours or a snooze, is
	// not due yet).
	var rows []struct {
		ID      int64  `db:"notice_id"`
		Key     string `db:"notice_key"`
		Channel string `db:"channel"`
		Status  string `db:"status"`
		Student string `db:"student_id"`
		To      string `db:"recipient"`
	}
	if err := h.db.Select(&rows, `SELECT notice_id, notice_key, channel, status, student_id, recipient FROM sisnotify.notices
		WHERE night = $1 OR status IN ('pending', 'sending')`, night.String()); err != nil {
		t.Fatal(err)
	}
	lost := 0
	var evidence []string
	for _, r := range rows {
		inRecord := false
		if r.Channel == "email" {
			inRecord = h.seenMail[bare(jobs.MessageID(r.Key))] > 0
		} else {
			inRecord = h.seenSMS[strconv.FormatInt(r.ID, 10)] > 0
		}
		switch r.Status {
		case "sent", "delivered", "bounced":
			if !inRecord {
				lost++
				evidence = append(evidence, "notice "+strconv.FormatInt(r.ID, 10)+" recorded sent, never received")
			}
		case "pending", "sending":
			var later bool
			if err := h.db.Get(&later, `SELECT coalesce(not_before > now(), false) FROM sisnotify.notices WHERE notice_id = $1`, r.ID); err != nil {
				t.Fatal(err)
			}
			if !later {
				lost++
				evidence = append(evidence, "notice "+strconv.FormatInt(r.ID, 10)+" of student "+r.Student+" still "+r.Status+" after the night and the day's retries")
			}
		case "failed":
			if r.Channel == "email" && !h.rejected[strings.ToLower(r.To)] && code == 0 {
				evidence = append(evidence, "notice "+strconv.FormatInt(r.ID, 10)+" failed for an address nobody rejected")
				lost++
			}
		}
	}
	if lost > 0 {
		h.sum.lost += lost
		if len(evidence) > 5 {
			evidence = append(evidence[:5], "…")
		}
		fail("every due step delivered once, failed with a reason, or held", "%d notices: %s", lost, strings.Join(evidence, "; "))
	}
}

// bare is a Message-ID without its angle brackets, as the record keeps it.
func bare(id string) string { return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">") }

// sisStudent is what the SIS says of a student before a night.
type sisStudent struct {
	entered, checkIn, registeredOn, passport string // dates, "" for NULL
}

func (s sisStudent) checkedIn() bool  { return s.entered != "" && s.checkIn >= s.entered }
func (s sisStudent) registered() bool { return s.entered != "" && s.registeredOn >= s.entered }
func (s sisStudent) passportValid(night date.Date) bool {
	return s.passport != "" && s.passport > night.AddDays(365).String()
}

// sisState reads what the night's sync will read of every student.
func (h *harness) sisState() map[string]sisStudent {
	rows, err := h.sisDB.QueryContext(h.ctx, `SELECT student_id, coalesce(entered_on::text, ''), coalesce(office_check_in_on::text, ''),
		coalesce(registered_on::text, ''), coalesce(passport_expires_on::text, '') FROM sis.students`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]sisStudent{}
	for rows.Next() {
		var id string
		var s sisStudent
		if err := rows.Scan(&id, &s.entered, &s.checkIn, &s.registeredOn, &s.passport); err != nil {
			h.t.Fatal(err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}
