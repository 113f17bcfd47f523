-- What students tell the office from their page (the signed link in every
-- student email): one row per report. The SIS stays the source of truth;
-- a report acts until the SIS (or the office) agrees.

-- +goose Up
CREATE TABLE sisnotify.student_reports (
    report_id      bigserial PRIMARY KEY,
    student_id     text COLLATE "C" NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('done', 'lost-documents', 'address-changed', 'status-changed')),
    -- done: the obligation reported done; the obligations a report opens
    -- (document-loss, status-change, address-registration) point back to
    -- it through their subject ("R<report_id>") or anchor.
    obligation_id  bigint REFERENCES sisnotify.obligations ON DELETE SET NULL,
    moved_on       date,                       -- address-changed: the date of the move
    new_status     text CHECK (new_status IN ('rvp', 'residence-permit', 'citizenship')), -- status-changed
    reported_on    date NOT NULL,              -- the university's date of the report
    reported_at    timestamptz NOT NULL DEFAULT now(),
    notice_id      bigint,                     -- the notice whose link was used
    -- open → confirmed | rejected (by the office, in the console); a done
    -- report also ends when its obligation closes or its pause runs out.
    state          text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'confirmed', 'rejected', 'lapsed')),
    decided_by     text,
    decided_at     timestamptz,
    decision_reason text,
    -- Submitting the same report twice records it once.
    dedup_key      text NOT NULL UNIQUE
);
CREATE INDEX student_reports_student ON sisnotify.student_reports (student_id, reported_at DESC);
CREATE INDEX student_reports_open ON sisnotify.student_reports (kind, reported_on) WHERE state = 'open';

-- +goose Down
DROP TABLE sisnotify.student_reports;
