package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iec-almaty/sisnotify/store"
)

// BounceMetrics counts what the bounce mailbox said
// (sisnotify_bounces_total{outcome}); it is a jobs.BounceObserver. Serve
// registers it when SISNOTIFY_BOUNCE_IMAP_URL is set.
type BounceMetrics struct {
	total *prometheus.CounterVec
}

// NewBounceMetrics registers the counter in m's registry, every outcome at
// 0 so rate() sees the first one; nil m gives a counter that counts
// nowhere.
func NewBounceMetrics(m *Metrics) *BounceMetrics {
	b := &BounceMetrics{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sisnotify_bounces_total",
		Help: "Messages of the bounce mailbox recorded, by outcome: bounced (a hard bounce of a notice), soft-bounce, delivered (a positive DSN), ignored (malformed, unknown notice, not a bounce, a digest's).",
	}, []string{"outcome"})}
	for _, o := range []string{store.OutcomeBounced, store.OutcomeSoftBounce, store.OutcomeDelivered, store.OutcomeIgnored} {
		b.total.WithLabelValues(o)
	}
	if m != nil {
		m.reg.MustRegister(b.total)
	}
	return b
}

// Bounce counts one message recorded with outcome.
func (b *BounceMetrics) Bounce(outcome string) {
	if b == nil {
		return
	}
	b.total.WithLabelValues(outcome).Inc()
}
