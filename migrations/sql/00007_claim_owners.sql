-- Claims that know their owner: every process that delivers takes an id
-- from claim_owners and holds a PostgreSQL session advisory lock on it
-- while it lives (store/owner.go). A notice's claim records that id,
-- so a claim whose owner holds no lock (the process died) is free at once,
-- not after the claim's lease.

-- +goose Up
CREATE SEQUENCE sisnotify.claim_owners;
ALTER TABLE sisnotify.notices ADD COLUMN claimed_by bigint;

-- +goose Down
ALTER TABLE sisnotify.notices DROP COLUMN claimed_by;
DROP SEQUENCE sisnotify.claim_owners;
