-- The trip's stated reason (sis.travel_requests.reason, free text, may be
-- NULL): staff notices about a trip show it. Existing rows get it at the
-- next sync: the new column changes every travel row's hash, so each is
-- read as changed once and rewritten with its reason.

-- +goose Up
ALTER TABLE sisnotify.travel_requests ADD COLUMN reason text;

-- +goose Down
ALTER TABLE sisnotify.travel_requests DROP COLUMN reason;
