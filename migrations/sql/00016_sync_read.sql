-- A sync may read only the SIS rows whose updated_at moved since the last
-- good sync (SISNOTIFY_SIS_UPDATED_AT=trusted). It needs the SIS's clock
-- when that sync read it, whether the read was full, and the version of
-- the row hashes it compared (a read of changes follows a full read of the
-- same version at most a week old), and the rows present in each snapshot
-- table after it ({"student": 1000000, ...}), which the SIS's count of keys
-- must match once the changes are in.

-- +goose Up
ALTER TABLE sisnotify.syncs
    ADD COLUMN sis_read_at timestamptz,
    ADD COLUMN full_read boolean NOT NULL DEFAULT true,
    ADD COLUMN hash_version text,
    ADD COLUMN present jsonb;

-- +goose Down
ALTER TABLE sisnotify.syncs
    DROP COLUMN sis_read_at,
    DROP COLUMN full_read,
    DROP COLUMN hash_version,
    DROP COLUMN present;
