-- Steps that are no longer news: an obligation that closes because its
-- action can no longer be taken (close_reason 'departure passed' or 'entry
-- date passed'), and a step first reached long after its date, whose
-- urgent emails give way to a digest listing marked "found late".

-- +goose Up
-- found_late holds the digest bits (rules.Actions: office digest, dean
-- digest) that list the obligation in place of the urgent emails a stale
-- step did not send; the digests list an obligation whose actions or
-- found_late have their bit, from found_late_on on while it stays open.
ALTER TABLE sisnotify.obligations
    ADD COLUMN found_late     int NOT NULL DEFAULT 0,
    ADD COLUMN found_late_on  date;
COMMENT ON COLUMN sisnotify.obligations.close_reason IS
    'resolved | new_anchor | departure passed | entry date passed';
-- The closed-as-moot obligations the next office digest lists once.
CREATE INDEX obligations_moot ON sisnotify.obligations (closed_on)
    WHERE close_reason IN ('departure passed', 'entry date passed');

-- +goose Down
DROP INDEX sisnotify.obligations_moot;
ALTER TABLE sisnotify.obligations DROP COLUMN found_late_on, DROP COLUMN found_late;
