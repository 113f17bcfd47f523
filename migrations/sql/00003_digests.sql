-- The daily digests: one row per (night, recipient), so each recipient
-- gets at most one digest a night across reruns, crashes and replicas, and
-- the obligations each digest listed, so the next one can mark what is new.

-- +goose Up
-- recipient_key names the recipient by role: 'office1', 'office2', … (the
-- position in SISNOTIFY_OFFICE_EMAILS) or 'dean-<faculty_id>'; never the
-- address. A digest is claimed ('sending') with a lease, like a notice.
CREATE TABLE sisnotify.digests (
    digest_id         bigserial PRIMARY KEY,
    night             date NOT NULL,
    audience          text NOT NULL CHECK (audience IN ('office', 'dean')),
    recipient_key     text NOT NULL,
    recipient         text NOT NULL,                -- the address
    language          text,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts          int NOT NULL DEFAULT 0,
    claimed_at        timestamptz,
    listed            int NOT NULL DEFAULT 0,       -- obligations listed
    new_rows          int NOT NULL DEFAULT 0,       -- of which new since the recipient's previous digest
    last_error        text,
    error_class       text,                         -- temporary | permanent
    message_id        text NOT NULL,
    provider_id       text,
    template_version  text,
    content_hash      text,
    sent_at           timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (night, recipient_key)
);
CREATE INDEX digests_previous ON sisnotify.digests (recipient_key, night) WHERE status = 'sent';

-- The obligations a digest listed. Kept for a week after the recipient's
-- next digest; "new since yesterday" compares with the last digest sent.
CREATE TABLE sisnotify.digest_rows (
    digest_id      bigint NOT NULL REFERENCES sisnotify.digests ON DELETE CASCADE,
    obligation_id  bigint NOT NULL REFERENCES sisnotify.obligations ON DELETE CASCADE,
    PRIMARY KEY (digest_id, obligation_id)
);

-- +goose Down
DROP TABLE sisnotify.digest_rows;
DROP TABLE sisnotify.digests;
