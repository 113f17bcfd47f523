// Package store owns the worker database: every SQL statement against the
// sisnotify schema (created by package migrations) is here, and nowhere
// else. The snapshot of the SIS and its sync, the obligations the rules
// open and close, the notices of the outbox with their claims and
// attempts, the digests and the nights each have their file; the states of
// a notice, a digest, an obligation step and a night are the typed
// constants below, so that a state is spelled once.
//
// The jobs (package jobs) decide what to do and call the store's methods;
// the store knows tables, indexes and statements, not rules or templates.
package store

import (
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Store is the worker database. Its methods are safe for concurrent use.
type Store struct {
	db *sqlx.DB
}

// New returns the store over db, a pool on the worker database.
func New(db *sqlx.DB) *Store { return &Store{db: db} }

// DB is the pool the store runs on.
func (s *Store) DB() *sqlx.DB { return s.db }

// NoticeStatus is the state of a notice (sisnotify.notices.status).
type NoticeStatus string

// The states of a notice: pending → sending (claimed) → sent | failed |
// cancelled; a temporary failure goes back to pending. A sent notice
// becomes delivered or bounced when a receipt or a bounce says so.
const (
	NoticePending   NoticeStatus = "pending"
	NoticeSending   NoticeStatus = "sending"
	NoticeSent      NoticeStatus = "sent"
	NoticeDelivered NoticeStatus = "delivered"
	NoticeBounced   NoticeStatus = "bounced"
	NoticeFailed    NoticeStatus = "failed"
	NoticeCancelled NoticeStatus = "cancelled"
)

// DigestStatus is the state of a digest (sisnotify.digests.status): the
// same states as a notice.
type DigestStatus string

// The states of a digest.
const (
	DigestPending   DigestStatus = "pending"
	DigestSending   DigestStatus = "sending"
	DigestSent      DigestStatus = "sent"
	DigestFailed    DigestStatus = "failed"
	DigestCancelled DigestStatus = "cancelled"
)

// StepStatus is what became of an obligation's step
// (sisnotify.obligation_steps.status).
type StepStatus string

// The states of a step: due (its notices were created) or skipped (found
// late, or replaced by a later step on the same night).
const (
	StepDue     StepStatus = "due"
	StepSkipped StepStatus = "skipped"
)

// RunStatus is the state of a night or a sync (sisnotify.nights.status,
// sisnotify.syncs.status).
type RunStatus string

// The states of a night or a sync.
const (
	RunRunning RunStatus = "running"
	RunOK      RunStatus = "ok"
	RunFailed  RunStatus = "failed"
)

// Close reasons of an obligation (sisnotify.obligations.close_reason)
// besides the moot ones the rules name (rules.MootDeparturePassed,
// rules.MootEntryPassed).
const (
	CloseResolved  = "resolved"   // done, or out of scope
	CloseNewAnchor = "new_anchor" // replaced by an obligation with a new anchor
)

// dayNum is the SQL expression of a date column as a day number
// (date.Date), 0 for NULL: cheaper to scan than a date.
func dayNum(col string) string {
	return "coalesce((" + col + " - DATE '1970-01-01') + " + strconv.Itoa(int(date.UnixEpoch)) + ", 0)"
}
