-- The history of every notice: each delivery attempt and each re-queue by
-- an operator, so that a retry never erases why a notice failed before.
-- The notice row keeps the latest outcome (status, attempts, last_error);
-- these tables keep all of them.

-- +goose Up
-- One row per recorded attempt, written in the same statement as the
-- outcome on the notice (jobs/deliver.go, recordQuery). attempt is the
-- notice's attempts counter at that claim (it is never reset, a re-queue
-- included). error is the text stored in notices.last_error (never an
-- address or a phone: the senders redact them).
CREATE TABLE sisnotify.notice_attempts (
    notice_id    bigint NOT NULL REFERENCES sisnotify.notices ON DELETE CASCADE,
    attempt      int NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'cancelled')),
    error_class  text,                              -- temporary | permanent
    error        text,
    PRIMARY KEY (notice_id, attempt)
);

-- One row per re-queue an operator asked for (`notices retry`, with or
-- without --pending, `run --once --retry-now`): who (the OS user, or
-- "serve"), when, what (failed notices back to pending, or pending ones
-- sent now whatever their back-off), and which notices.
CREATE TABLE sisnotify.notice_requeues (
    requeue_id   bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    who          text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('failed', 'pending')),
    notices      int NOT NULL,
    notice_ids   bigint[] NOT NULL
);

-- +goose Down
DROP TABLE sisnotify.notice_requeues;
DROP TABLE sisnotify.notice_attempts;
