package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/jmoiron/sqlx"
)

// EveryTravelRequestPlan explains the check of every travel request as
// crossChecks runs it (sync 0), in a transaction of its own that it rolls
// back, and returns the plan's lines and the planner's settings after it
// ("enable_nestloop enable_hashjoin enable_sort" as on or off).
func EveryTravelRequestPlan(ctx context.Context, db *sqlx.DB) (plan []string, after string, err error) {
	c, err := openTxConn(ctx, db)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `BEGIN`); err != nil {
		return nil, "", err
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	err = mergePlan(ctx, c, func() error {
		rows, err := c.QueryContext(ctx, `EXPLAIN (COSTS OFF) `+everyTravelRequest, 0)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan = append(plan, line)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	var settings sql.NullString
	err = c.QueryRowContext(ctx, `SELECT concat_ws(' ', current_setting('enable_nestloop'), current_setting('enable_hashjoin'), current_setting('enable_sort'))`).Scan(&settings)
	return plan, strings.TrimSpace(settings.String), err
}
