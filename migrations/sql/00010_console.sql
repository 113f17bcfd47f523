-- The office console: who is signed in, what the office did, and the two
-- states an office action puts on an obligation.

-- +goose Up
-- A console session. The cookie carries a random token; only its SHA-256
-- is kept, so a copy of this table signs nobody in. A session ends when it
-- has been idle longer than the console's idle timeout, at its absolute
-- expiry, or at sign-out (the row is deleted).
CREATE TABLE sisnotify.console_sessions (
    token_hash    bytea PRIMARY KEY,
    email         text NOT NULL,               -- the signed-in account, lower case
    role          text NOT NULL CHECK (role IN ('office', 'dean')),
    faculty_ids   text[] NOT NULL DEFAULT '{}', -- a dean's faculties
    csrf          text NOT NULL,               -- the session's form token
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON sisnotify.console_sessions (expires_at);

-- Every act of a person in the console (and, later, of a student on their
-- page): who, when, what, on which obligation, notice, night or student,
-- and why. Rows are only ever inserted.
CREATE TABLE sisnotify.audit_log (
    audit_id       bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,              -- an email, or "break-glass:<user>"
    role           text NOT NULL,
    action         text NOT NULL,              -- close | snooze | retry | release | sign-in | sign-out | ...
    student_id     text COLLATE "C",
    obligation_id  bigint,
    notice_id      bigint,
    night          date,
    reason         text NOT NULL DEFAULT '',
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_student ON sisnotify.audit_log (student_id, at DESC) WHERE student_id IS NOT NULL;
CREATE INDEX audit_log_at ON sisnotify.audit_log (at DESC);

-- Office actions on an obligation: closed by a person (close_reason
-- 'office', closed_by the actor), and snoozed: its student notices wait
-- until snoozed_until (the digests keep listing it, marked snoozed).
ALTER TABLE sisnotify.obligations
    ADD COLUMN closed_by     text,
    ADD COLUMN snoozed_until date,
    ADD COLUMN snoozed_by    text;

-- +goose Down
ALTER TABLE sisnotify.obligations DROP COLUMN closed_by, DROP COLUMN snoozed_until, DROP COLUMN snoozed_by;
DROP TABLE sisnotify.audit_log;
DROP TABLE sisnotify.console_sessions;
