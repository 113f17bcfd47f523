-- A sync compares every SIS row with the snapshot's by key, reading the
-- snapshot's keys, hashes and removal marks in key order. With those two
-- columns in the primary key's index the read is an index-only scan (once
-- autovacuum has seen the table, as it has by the next night): half the
-- time of fetching a million heap rows through the index.

-- +goose Up
ALTER TABLE sisnotify.students DROP CONSTRAINT students_pkey,
    ADD CONSTRAINT students_pkey PRIMARY KEY (student_id) INCLUDE (row_hash, removed_at);
ALTER TABLE sisnotify.travel_requests DROP CONSTRAINT travel_requests_pkey,
    ADD CONSTRAINT travel_requests_pkey PRIMARY KEY (request_id) INCLUDE (row_hash, removed_at);

-- +goose Down
ALTER TABLE sisnotify.students DROP CONSTRAINT students_pkey,
    ADD CONSTRAINT students_pkey PRIMARY KEY (student_id);
ALTER TABLE sisnotify.travel_requests DROP CONSTRAINT travel_requests_pkey,
    ADD CONSTRAINT travel_requests_pkey PRIMARY KEY (request_id);
