-- Obligations (rule x subject x anchor), the steps reached, and the notices
-- outbox. PostgreSQL is the record of what must be and what was sent; Redis
-- only carries notice ids.

-- +goose Up
CREATE TABLE sisnotify.obligations (
    obligation_id      bigserial PRIMARY KEY,
    rule               text NOT NULL,
    subject_id         text COLLATE "C" NOT NULL,  -- student id or travel request id
    anchor             date NOT NULL,
    student_id         text COLLATE "C" NOT NULL,
    period_id          text,                        -- break-briefing: the break
    due_on             date NOT NULL,
    level              int NOT NULL,                -- the reached step, 1-based
    step_on            date NOT NULL,               -- the reached step's date
    repeat             int NOT NULL DEFAULT 0,
    actions            int NOT NULL,                -- bit set of the reached step (rules.Actions)
    opened_on          date NOT NULL,               -- the as-of date it was first seen
    opened_at          timestamptz NOT NULL DEFAULT now(),
    last_seen_on       date NOT NULL,
    closed_on          date,
    closed_at          timestamptz,
    close_reason       text,                        -- resolved | new_anchor
    UNIQUE (rule, subject_id, anchor)
);
CREATE INDEX obligations_open ON sisnotify.obligations (student_id) WHERE closed_at IS NULL;

-- One row per (obligation, step, repeat) the worker has acted on: 'due'
-- (its notices were created) or 'skipped' (it was passed while the worker
-- was off or the data arrived late).
CREATE TABLE sisnotify.obligation_steps (
    obligation_id  bigint NOT NULL REFERENCES sisnotify.obligations ON DELETE CASCADE,
    level          int NOT NULL,
    repeat         int NOT NULL DEFAULT 0,
    status         text NOT NULL CHECK (status IN ('due', 'skipped')),
    recorded_on    date NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (obligation_id, level, repeat)
);

-- The outbox: one row per (obligation, step, repeat, recipient, channel).
-- notice_key is the identity (and the asynq TaskID): it names the recipient
-- by role (student, dean of a faculty, n-th office address), never by
-- address, so it carries no personal data.
CREATE TABLE sisnotify.notices (
    notice_id         bigserial PRIMARY KEY,
    notice_key        text NOT NULL UNIQUE,
    obligation_id     bigint NOT NULL REFERENCES sisnotify.obligations,
    rule              text NOT NULL,
    level             int NOT NULL,
    repeat            int NOT NULL DEFAULT 0,
    student_id        text COLLATE "C" NOT NULL,
    subject_id        text COLLATE "C" NOT NULL,
    audience          text NOT NULL CHECK (audience IN ('student', 'office', 'dean')),
    channel           text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient         text NOT NULL,                -- address or E.164 number
    language          text,
    due_on            date NOT NULL,
    night             date NOT NULL,                -- the as-of date that created it
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    not_before        timestamptz,                  -- quiet hours: held until then
    attempts          int NOT NULL DEFAULT 0,
    claimed_at        timestamptz,
    last_error        text,
    error_class       text,                         -- temporary | permanent
    provider_id       text,                         -- provider message id or SMTP reply
    template_version  text,
    content_hash      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notices_pending ON sisnotify.notices (notice_id) WHERE status IN ('pending', 'sending');
CREATE INDEX notices_student ON sisnotify.notices (student_id);
CREATE INDEX notices_night ON sisnotify.notices (night);

-- +goose Down
DROP TABLE sisnotify.notices;
DROP TABLE sisnotify.obligation_steps;
DROP TABLE sisnotify.obligations;
