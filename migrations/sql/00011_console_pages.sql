-- The console's pages: the indexes their reads need on a national roster
-- (a million students), so that a student's page and the lists read only
-- their rows.

-- +goose Up
-- A student's page lists every obligation of theirs, closed ones too
-- (obligations_open covers only the open ones). student_id never changes,
-- so the nightly updates of open obligations stay HOT.
CREATE INDEX obligations_student ON sisnotify.obligations (student_id);
-- Today's "recently closed": closed on a day, as moot or by the office.
CREATE INDEX obligations_closed_on ON sisnotify.obligations (closed_on) WHERE closed_on IS NOT NULL;
-- The Failed notices page: the newest failed notices first.
CREATE INDEX notices_failed ON sisnotify.notices (night DESC, notice_id DESC) WHERE status = 'failed';

-- +goose Down
DROP INDEX sisnotify.notices_failed;
DROP INDEX sisnotify.obligations_closed_on;
DROP INDEX sisnotify.obligations_student;
