-- A night evaluates only the students whose obligations can have changed
-- since the last night: those whose facts changed, those with open
-- obligations, and those whose wake date has come. The rules give each
-- evaluated student the first later date on which the result may change
-- by the date alone (eval_wakes, one row per student with such a date;
-- stale rows only wake a student early). eval_state is what the last
-- night's evaluation was built from: the last sync it saw (the snapshot's
-- rows carry the sync that last changed them), when it ran (reports made
-- or decided since are read again), when every student was last
-- evaluated, and a digest of
-- the rules, the periods, the calendar and the program; a different
-- digest, or a full evaluation more than a week old, makes the night
-- evaluate every student.

-- +goose Up
CREATE TABLE sisnotify.eval_wakes (
    student_id text COLLATE "C" NOT NULL,
    wake_on    date NOT NULL
);

CREATE TABLE sisnotify.eval_state (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    night        date NOT NULL,
    sync_id      bigint NOT NULL,
    evaluated_at timestamptz NOT NULL,
    full_on      date NOT NULL,
    inputs       text NOT NULL
);

-- +goose Down
DROP TABLE sisnotify.eval_state;
DROP TABLE sisnotify.eval_wakes;
