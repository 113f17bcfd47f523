-- A digest's claim knows its owner, as a notice's does (00007): a digest a
-- killed process was sending is free at once for the process that runs
-- the night again, not after the claim's ten-minute lease.

-- +goose Up
ALTER TABLE sisnotify.digests ADD COLUMN claimed_by bigint;

-- +goose Down
ALTER TABLE sisnotify.digests DROP COLUMN claimed_by;
