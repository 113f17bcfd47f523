-- A failed night's cause, typed (feed_guard, past_night, error), so that
-- the watchdog tells a held night from a failed one without reading the
-- error's text. run --once and serve record nights the same way.

-- +goose Up
ALTER TABLE sisnotify.nights ADD COLUMN cause text
    CHECK (cause IN ('feed_guard', 'past_night', 'error'));
UPDATE sisnotify.nights SET cause = CASE WHEN error LIKE '%feed guard%' THEN 'feed_guard' ELSE 'error' END
WHERE status = 'failed';

-- +goose Down
ALTER TABLE sisnotify.nights DROP COLUMN cause;
