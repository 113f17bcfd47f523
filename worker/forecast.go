package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/pace"
	"github.com/iec-almaty/sisnotify/store"
)

// DefaultOfficeOpens is when the office opens, in the university's time
// zone: the notices of a night should all be out by then.
const DefaultOfficeOpens = 9 * time.Hour

// alertLate is the kind of the operators' alert of a night whose notices
// the rate limits will not let out before the office opens.
const alertLate = "late_delivery"

// Forecast says, once a night's notices are queued, whether the rate
// limits (package pace) let every one of them go before the office opens:
// when not, it mails the operators (once per night) how many will be late
// and when the last should go, and sets the gauges of /metrics. Time is
// the night's clock, given to Check.
type Forecast struct {
	DB *sqlx.DB
	// Limits are each channel's limits (pace.Mail, pace.SMS); a channel
	// without is never late.
	Limits map[string][]pace.Limit
	// Location is the university's time zone; nil: UTC.
	Location *time.Location
	// Opens is when the office opens on the night's date; default
	// DefaultOfficeOpens.
	Opens time.Duration
	// Mail and Ops: who hears of a late night.
	Mail    jobs.MailSender
	Ops     []string
	Metrics *Metrics
	Log     *slog.Logger
}

// ChannelForecast is the forecast of one channel's deliveries.
type ChannelForecast struct {
	Channel string
	Pending int       // notices to go
	Finish  time.Time // when the last should go at the limits
	Late    int       // how many will go after the office opens
}

// Check forecasts the deliveries of night as of now (the night's clock),
// records the gauges, and alerts the operators when some channel will be
// late.
func (f *Forecast) Check(ctx context.Context, night date.Date, now time.Time) ([]ChannelForecast, error) {
	counts, err := store.New(f.DB).NoticesToGoByChannel(ctx, night, now)
	if err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	opens := f.Opens
	if opens <= 0 {
		opens = DefaultOfficeOpens
	}
	y, m, d := night.Civil()
	openAt := time.Date(y, m, d, int(opens/time.Hour), int(opens%time.Hour/time.Minute), 0, 0, loc)
	var out []ChannelForecast
	for _, ch := range []string{pace.Mail, pace.SMS} {
		limits := f.Limits[ch]
		n := counts[ch]
		c := ChannelForecast{Channel: ch, Pending: n, Finish: now.Add(pace.Finish(limits, n))}
		if len(limits) > 0 && c.Finish.After(openAt) {
			c.Late = n - capacity(limits, n, openAt.Sub(now))
		}
		f.Metrics.SetForecast(ch, c.Finish, c.Late)
		out = append(out, c)
	}
	var late []ChannelForecast
	for _, c := range out {
		if c.Late > 0 {
			late = append(late, c)
		}
	}
	w := &Watchdog{DB: f.DB, Mail: f.Mail, Ops: f.Ops, Log: f.Log}
	// Each late night is news: the previous night's alert is resolved
	// first, so this one is mailed.
	if err := w.resolve(ctx, alertLate); err != nil {
		return out, err
	}
	if len(late) == 0 {
		return out, nil
	}
	subject, body := lateMessage(night, late, f.Limits, openAt, loc)
	if f.Log != nil {
		for _, c := range late {
			f.Log.WarnContext(ctx, "deliveries will end after the office opens", "night", night.String(), "channel", c.Channel,
				"pending", c.Pending, "late", c.Late, "expected_finish", c.Finish.In(loc).Format(time.RFC3339))
		}
	}
	return out, errors.Join(w.raise(ctx, alertLate, subject, body))
}

// capacity is how many of n messages the limits let go within d, from
// an idle limiter.
func capacity(limits []pace.Limit, n int, d time.Duration) int {
	if d < 0 {
		return 0
	}
	return sort.Search(n+1, func(k int) bool { return pace.Finish(limits, k) > d }) - 1
}

func lateMessage(night date.Date, late []ChannelForecast, limits map[string][]pace.Limit, openAt time.Time, loc *time.Location) (string, string) {
	names := map[string]string{pace.Mail: "emails", pace.SMS: "SMS"}
	vars := map[string]string{pace.Mail: "SISNOTIFY_MAIL_RATE", pace.SMS: "SISNOTIFY_SMS_RATE"}
	var parts []string
	var b strings.Builder
	fmt.Fprintf(&b, "The notices of the night of %s cannot all go before the office opens at %s at the providers' rate limits:\n\n",
		night, openAt.In(loc).Format("15:04 MST"))
	for _, c := range late {
		parts = append(parts, fmt.Sprintf("%d %s", c.Late, names[c.Channel]))
		ls := make([]string, len(limits[c.Channel]))
		for i, l := range limits[c.Channel] {
			ls[i] = l.String()
		}
		fmt.Fprintf(&b, "  %s: %d to send at %s (%s); %d will go after the office opens; the last is expected at %s.\n",
			names[c.Channel], c.Pending, strings.Join(ls, ","), vars[c.Channel], c.Late, c.Finish.In(loc).Format("2006-01-02 15:04 MST"))
	}
	b.WriteString("\nNothing is lost: they are sent in turn, the office's and the deans' first. If this happens often, ask the provider for a higher limit and raise the variable, or move the night earlier (SISNOTIFY_SCHEDULE).\n")
	return fmt.Sprintf("[sisnotify] the night of %s: %s will go after the office opens", night, strings.Join(parts, " and ")), b.String()
}
