-- The checks across tables (students of unknown faculties, travel
-- requests of unknown students) look at the rows a sync changed, and at
-- every row when no sync of the last week did: full_checks marks the
-- syncs that did.

-- +goose Up
ALTER TABLE sisnotify.syncs ADD COLUMN full_checks boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE sisnotify.syncs DROP COLUMN full_checks;
