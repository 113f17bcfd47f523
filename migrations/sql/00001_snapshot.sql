-- The roster snapshot: the SIS as the last sync saw it, for change
-- detection, evaluation, digests and history. Rows are kept after they
-- disappear from the SIS (removed_at), so history survives.

-- +goose Up
CREATE TABLE sisnotify.syncs (
    sync_id            bigserial PRIMARY KEY,
    as_of              date NOT NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    status             text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    counts             jsonb NOT NULL DEFAULT '{}',
    error              text
);

CREATE TABLE sisnotify.faculties (
    faculty_id     text COLLATE "C" PRIMARY KEY,
    name           text NOT NULL,
    dean_name      text NOT NULL,
    dean_email     text,
    dean_language  text,
    row_hash       bigint NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    changed_at     timestamptz NOT NULL DEFAULT now(),
    removed_at     timestamptz
);

-- Values are the SIS's after validation: a field that failed validation is
-- NULL here and has a row in data_problems. row_hash is a hash of the raw
-- SIS row, so an unchanged row is recognised without comparing fields.
CREATE TABLE sisnotify.students (
    student_id               text COLLATE "C" PRIMARY KEY,
    given_name               text NOT NULL,
    family_name              text NOT NULL,
    email                    text,
    phone                    text,          -- E.164
    preferred_language       text,
    citizenship              text,
    visa_regime              text,
    faculty_id               text,
    enrollment_status        text,
    passport_number          text,
    passport_expires_on      date,
    planned_entry_on         date,
    invitation_docs_on       date,
    entered_on               date,
    office_check_in_on       date,
    registered_on            date,
    registration_expires_on  date,
    extension_requested_on   date,
    moved_on                 date,
    address_registered_on    date,
    sis_updated_at           timestamptz,
    row_hash                 bigint NOT NULL,
    first_seen_at            timestamptz NOT NULL DEFAULT now(),
    changed_at               timestamptz NOT NULL DEFAULT now(),
    -- When each deadline-relevant fact last changed.
    passport_changed_at      timestamptz,
    entry_changed_at         timestamptz,
    registration_changed_at  timestamptz,
    move_changed_at          timestamptz,
    removed_at               timestamptz,
    last_sync_id             bigint NOT NULL
);

CREATE TABLE sisnotify.travel_requests (
    request_id          text COLLATE "C" PRIMARY KEY,
    student_id          text COLLATE "C" NOT NULL,
    kind                text,
    submitted_on        date,
    departure_on        date,
    return_on           date,
    dean_decision       text,
    exit_visa_ready     boolean,
    departed_on         date,
    returned_on         date,
    return_check_in_on  date,
    cancelled           boolean NOT NULL DEFAULT false,
    sis_updated_at      timestamptz,
    row_hash            bigint NOT NULL,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    changed_at          timestamptz NOT NULL DEFAULT now(),
    removed_at          timestamptz,
    last_sync_id        bigint NOT NULL
);
CREATE INDEX travel_requests_student ON sisnotify.travel_requests (student_id, request_id) WHERE removed_at IS NULL;

CREATE TABLE sisnotify.academic_periods (
    period_id      text COLLATE "C" PRIMARY KEY,
    kind           text,
    starts_on      date,
    ends_on        date,
    row_hash       bigint NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    changed_at     timestamptz NOT NULL DEFAULT now(),
    removed_at     timestamptz
);

-- Data problems found in the SIS: the current set, one row per (table, row,
-- field, problem). A problem names the row and the field, never the value
-- of a personal field. Problems of a row are replaced when the row changes
-- and removed when it leaves the SIS.
CREATE TABLE sisnotify.data_problems (
    entity         text NOT NULL,      -- student | travel_request | faculty | academic_period
    row_id         text COLLATE "C" NOT NULL,
    field          text NOT NULL,
    code           text NOT NULL,      -- malformed_email, invalid_phone, unknown_code, impossible_date, ...
    severity       text NOT NULL CHECK (severity IN ('error', 'warning')),
    message        text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_sync_id   bigint NOT NULL,
    PRIMARY KEY (entity, row_id, field, code)
);

-- +goose Down
DROP TABLE sisnotify.data_problems;
DROP TABLE sisnotify.academic_periods;
DROP TABLE sisnotify.travel_requests;
DROP TABLE sisnotify.students;
DROP TABLE sisnotify.faculties;
DROP TABLE sisnotify.syncs;
