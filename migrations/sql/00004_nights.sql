-- The nights the service ran, phase by phase, and the operator alerts it
-- raised: what /metrics, the ops alert and the catch-up of a missed night
-- read.

-- +goose Up
CREATE TABLE sisnotify.nights (
    night        date PRIMARY KEY,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    phase        text NOT NULL DEFAULT 'sync',     -- the phase running, failed, or last done
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text,
    counts       jsonb NOT NULL DEFAULT '{}'
);

-- One open alert per kind at a time: it is mailed once, and again only
-- after it was resolved and opened anew.
CREATE TABLE sisnotify.alerts (
    alert_id     bigserial PRIMARY KEY,
    kind         text NOT NULL,                    -- night_failed | no_night
    subject      text NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    notified_at  timestamptz,
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX alerts_open ON sisnotify.alerts (kind) WHERE resolved_at IS NULL;

-- +goose Down
DROP TABLE sisnotify.alerts;
DROP TABLE sisnotify.nights;
