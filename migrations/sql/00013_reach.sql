-- Whether a notice reached its person: what bounces (delivery status
-- notifications in the bounce mailbox) and SMS providers' receipts say
-- after a notice was sent, and the contacts that are known not to work.

-- +goose Up
-- A sent notice can become delivered (a receipt says it arrived) or
-- bounced (a DSN or a receipt says it never will).
ALTER TABLE sisnotify.notices DROP CONSTRAINT notices_status_check;
ALTER TABLE sisnotify.notices ADD CONSTRAINT notices_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'bounced', 'failed', 'cancelled'));
ALTER TABLE sisnotify.notices ADD COLUMN receipt_at timestamptz;

-- The Message-ID of a notice's email is derived from its key (a hash, so
-- it reveals nothing): a bounce names it, and this finds the notice.
-- convert_to with a fixed encoding does not depend on any setting.
-- +goose StatementBegin
CREATE FUNCTION sisnotify.message_hash(key text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN substr(sha256(convert_to(key, 'UTF8')), 1, 16);
-- +goose StatementEnd
CREATE INDEX notices_message_hash ON sisnotify.notices (sisnotify.message_hash(notice_key)) WHERE channel = 'email';
-- An SMS provider's receipt names its own message id.
CREATE INDEX notices_provider_id ON sisnotify.notices (provider_id) WHERE channel = 'sms' AND provider_id IS NOT NULL;

-- Every bounce and receipt read, matched or not: what it said and what
-- was done with it. (source, external_id) makes reading one twice
-- harmless.
CREATE TABLE sisnotify.delivery_events (
    event_id     bigserial PRIMARY KEY,
    source       text NOT NULL CHECK (source IN ('imap', 'twilio', 'mobizon')),
    external_id  text NOT NULL,      -- the message's Message-ID in the mailbox; the provider's id and status
    notice_id    bigint,             -- NULL: it matched no notice
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'bounced', 'soft-bounce', 'sent', 'ignored')),
    reason       text NOT NULL DEFAULT '', -- ignored: malformed | unknown-notice | not-a-bounce | ...; else the status code
    detail       text NOT NULL DEFAULT '', -- the diagnostic, shortened
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id)
);
CREATE INDEX delivery_events_notice ON sisnotify.delivery_events (notice_id) WHERE notice_id IS NOT NULL;

-- A contact that cannot receive: a hard bounce of the address, a failed
-- SMS to the number. It applies while the student's snapshot still holds
-- that value: a new address or number in the SIS is reachable again.
CREATE TABLE sisnotify.unreachable_contacts (
    student_id  text COLLATE "C" NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'sms')),
    contact     text NOT NULL,       -- the address or E.164 number, as the notice had it
    since       timestamptz NOT NULL DEFAULT now(),
    notice_id   bigint NOT NULL,     -- the notice that showed it (the latest)
    last_error  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, channel, contact)
);

-- +goose Down
DROP TABLE sisnotify.unreachable_contacts;
DROP TABLE sisnotify.delivery_events;
DROP INDEX sisnotify.notices_provider_id;
DROP INDEX sisnotify.notices_message_hash;
DROP FUNCTION sisnotify.message_hash(text);
ALTER TABLE sisnotify.notices DROP COLUMN receipt_at;
UPDATE sisnotify.notices SET status = 'sent' WHERE status IN ('delivered', 'bounced');
ALTER TABLE sisnotify.notices DROP CONSTRAINT notices_status_check;
ALTER TABLE sisnotify.notices ADD CONSTRAINT notices_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled'));
