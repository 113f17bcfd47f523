package sisdemo

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// maxTrips bounds the travel requests of one student: a past vacation, a
// past term trip and up to two recent ones.
const maxTrips = 4

// The shares of the roster that have something happening around AsOf: they
// set how many notices a night sends. Most students are quiet; these are the
// ones a rule reaches. Tuned so that the first night of a 1,000,000-student
// SIS as of 2026-11-25 (BenchmarkNight's) creates about 20,000 notices
// (student email and SMS, office and dean emails) for about 1% of the
// students, the figures of the scale issue ("about 2% of students due a
// notice tonight, about 20,000 notices"); they were 2.4 times as high before
// (about 49,000 notices for 2.2% of the students). A roster of 40,000 still
// has students of every rule on any as-of date and the days around it
// (TestEveryRuleFires); one of 2,000 shows most rules.
const (
	// applicantArrivedShare of the applicants have already crossed the
	// border (arrival check-in, registration).
	applicantArrivedShare = 0.05
	// freshEntryShare of the enrolled students entered the country in the
	// last weeks (arrival check-in, registration).
	freshEntryShare = 0.0025
	// recentTripShare of the enrolled students have a trip around AsOf, of
	// the kinds in recentTripKinds (the travel rules, return check-in).
	recentTripShare = 0.009
	// stayEndingUnaskedShare of the enrolled students have a stay ending
	// within 75 days (or just ended) and no extension asked for
	// (stay-extension). Another 12% have asked already: quiet.
	stayEndingUnaskedShare = 0.002
	// recentMoveShare of the enrolled students moved in the last weeks
	// (address-registration).
	recentMoveShare = 0.0035
	// passportWindowShare of the students have a passport expiring inside
	// the renewal ladder (passport-renewal); another 0.05% later in it or
	// expired.
	passportWindowShare = 0.0025
	// passportNotBackShare of the past vacations ended without the passport
	// brought back to the office (return and arrival check-in, long overdue).
	passportNotBackShare = 0.0015

	// staleShare of those recent events (an entry, a move, a return, a
	// request to the dean) are up to staleDays old rather than days old:
	// obligations nobody acted on, which the digests list and a night some
	// weeks before AsOf shows too. The events are few, so the share is
	// high enough to keep every rule open on AsOf-30 (TestEveryRuleFires).
	staleShare = 0.4
	staleDays  = 60
)

// recentTripKinds weighs (out of 100) the cases of recentTrip: a vacation
// coming up, notified too late, a term trip waiting for the dean, a second
// term trip in the semester, back from a trip in the last days, cancelled.
// The cases of the rarest rules (exit-visa, travel-late-notice) weigh more
// than those that open several obligations at once (a return opens arrival
// check-in, registration and return check-in; a request the dean ignores
// mails the student, the office and the dean).
var recentTripKinds = [...]int{36, 24, 8, 12, 8, 12}

// trip is one travel request. Zero dates are NULL.
type trip struct {
	kind                          string
	submitted, departure, ret     date.Date
	decision                      string
	exitVisa                      int8 // -1 NULL, 0 false, 1 true
	departed, returned, checkedIn date.Date
	cancelled                     bool
	recent                        bool // a trip of recentTrip, around asOf
	bad                           bool // return_on before departure_on
}

// student is one generated student with its travel requests. Strings are
// the values written; an empty string is NULL except where noted.
type student struct {
	idx                   int
	given, family         string
	email, phone, lang    string
	citizenship, regime   string
	facultyID, status     string
	passportNo            string
	passportExpires       date.Date
	plannedEntry, invDocs date.Date
	entered, checkIn      date.Date
	registered, regExpiry date.Date
	extRequested          date.Date
	moved, addrRegistered date.Date
	updatedMinute         int // minute of the day of updated_at
	updatedOn             date.Date

	bad         BadClass // "" for a clean row
	emailEmpty  bool     // email is '' rather than NULL (email_missing)
	nullFaculty bool

	trips  [maxTrips]trip
	ntrips int
}

// gen generates students one at a time. Each student's data depends only on
// (seed, index, AsOf): gen reseeds its PCG for every student, so students
// can be generated again, in any order or in parallel chunks.
type gen struct {
	asOf     date.Date
	badShare float64
	k1, k2   uint64
	pcg      rand.PCG
	r        *rand.Rand

	periods   []Period // history(asOf): Calendar(asOf) and the year before
	written   int      // index in periods of the first period Calendar(asOf) writes
	lastBreak int      // index of the latest break that ended before asOf-15, or -1

	countryTotal, facultyTotal, statusTotal int

	s   student
	buf []byte
}

func newGen(opt Options, share float64) *gen {
	g := &gen{
		asOf:     opt.AsOf,
		badShare: share,
		k1:       splitmix(uint64(opt.Seed) ^ 0x5349_5344_454d_4f31),
		k2:       splitmix(uint64(opt.Seed) + 0x9e37_79b9_7f4a_7c15),
		periods:  history(opt.AsOf),
	}
	g.r = rand.New(&g.pcg)
	g.lastBreak = -1
	g.written = len(g.periods) - len(Calendar(opt.AsOf))
	for i, p := range g.periods {
		if p.Kind != Semester && p.EndsOn < g.asOf.AddDays(-15) {
			g.lastBreak = i
		}
	}
	for _, c := range countries {
		g.countryTotal += c.weight
	}
	for _, f := range faculties {
		g.facultyTotal += f.weight
	}
	for _, s := range statuses {
		g.statusTotal += s.weight
	}
	return g
}

// splitmix is SplitMix64's finaliser: it spreads neighbouring seeds and
// indexes over unrelated PCG states.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (g *gen) seed(idx int) {
	g.pcg.Seed(g.k1^splitmix(uint64(idx)), g.k2+splitmix(uint64(idx)^0xa076_1d64_78bd_642f))
}

// Random helpers.

func (g *gen) n(n int) int             { return g.r.IntN(n) }
func (g *gen) chance(p float64) bool   { return g.r.Float64() < p }
func (g *gen) between(a, b int) int    { return a + g.r.IntN(b-a+1) }
func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// day returns asOf moved by a random number of days in [a, b].
func (g *gen) day(a, b int) date.Date { return g.asOf.AddDays(g.between(a, b)) }

// recent returns asOf minus 0..near days, or, with probability tail,
// minus near+1..far days: most events are fresh, some are stale.
func (g *gen) recent(near, far int, tail float64) date.Date {
	if g.chance(tail) {
		return g.day(-far, -near-1)
	}
	return g.day(-near, 0)
}

// weighted picks an index of ws (summing to total).
func (g *gen) weighted(total int, w func(i int) int) int {
	x := g.r.IntN(total)
	for i := 0; ; i++ {
		x -= w(i)
		if x < 0 {
			return i
		}
	}
}

// notAfter returns d when it is on or before asOf, else NULL: a fact
// dated in the future has not happened yet.
func (g *gen) notAfter(d date.Date) date.Date {
	if d > g.asOf {
		return 0
	}
	return d
}

// nextWorkingDay returns the first Monday-Friday day after d (public
// holidays are ignored: it only spreads check-ins realistically).
func nextWorkingDay(d date.Date) date.Date {
	d = d.AddDays(1)
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDays(1)
	}
	return d
}

// build generates student idx into g.s.
func (g *gen) build(idx int) {
	g.seed(idx)
	s := &g.s
	*s = student{idx: idx}

	c := &countries[g.weighted(g.countryTotal, func(i int) int { return countries[i].weight })]
	s.citizenship = c.code
	s.regime = c.regime
	female := g.chance(0.45)
	if female {
		s.given = g.pick(c.female)
	} else {
		s.given = g.pick(c.male)
	}
	s.family = g.pick(c.family)
	if female && c.femSuffix {
		s.family = feminine(s.family)
	}
	s.status = statuses[g.weighted(g.statusTotal, func(i int) int { return statuses[i].weight })].code
	s.facultyID = faculties[g.weighted(g.facultyTotal, func(i int) int { return faculties[i].weight })].id
	switch g.weighted(100, func(i int) int { return c.lang[i] }) {
	case 0:
		s.lang = "ru"
	case 1:
		s.lang = "en"
	case 2:
		s.lang = "kk"
	}
	s.email = g.email(s.given, s.family, idx+1)
	if g.chance(0.85) {
		s.phone = g.kzPhone()
	} else {
		m := g.pick(c.mobile)
		s.phone = g.digits(c.cc+m, c.natLen-len(m))
	}
	if !g.chance(0.015) {
		s.passportNo = g.digits(c.passport, c.passDigs)
	}

	// Passport: most far in the future; a few inside the 6-month window
	// (the renewal ladder starts 7 months before expiry), a very few later
	// in it or expired.
	switch x := g.r.Float64(); {
	case x < 0.01:
		// NULL: the SIS never got it.
	case x < 0.01+passportWindowShare:
		s.passportExpires = g.day(150, 250)
	case x < 0.0105+passportWindowShare:
		s.passportExpires = g.day(-20, 149)
	default:
		s.passportExpires = g.day(280, 3650)
	}

	if s.status == "applicant" {
		g.applicant()
	} else {
		g.enrolled()
	}
	g.mutate()
	g.stamp()
}

// applicant fills an applicant: visa applicants plan their entry, and
// hand in the invitation documents 45 days before it (or late, or never);
// some applicants have already crossed the border.
func (g *gen) applicant() {
	s := &g.s
	if g.chance(applicantArrivedShare) {
		// Already in Kazakhstan, enrolment not yet complete.
		s.entered = g.recent(14, staleDays, staleShare)
		if s.regime == "visa" {
			s.plannedEntry = s.entered.AddDays(-g.between(0, 3))
			s.invDocs = s.plannedEntry.AddDays(-45 - g.between(0, 30))
		}
		g.arrive()
		if s.registered >= s.entered {
			s.regExpiry = s.registered.AddDays(g.between(90, 365))
		}
		return
	}
	if s.regime != "visa" {
		if g.chance(0.4) {
			s.plannedEntry = g.day(0, 90) // not needed without a visa: no rule
		}
		return
	}
	s.plannedEntry = g.day(-15, 120)
	switch x := g.r.Float64(); { // on time, late, not (yet)
	case x < 0.8:
		s.invDocs = g.notAfter(s.plannedEntry.AddDays(-45 - g.between(0, 40)))
	case x < 0.88:
		s.invDocs = g.notAfter(s.plannedEntry.AddDays(-45 + g.between(1, 30)))
	}
}

// enrolled fills a student who is (or was) enrolled: the current stay, the
// address, the trips.
func (g *gen) enrolled() {
	s := &g.s
	T := g.asOf

	// Trips first: the last border crossing may be the return from one.
	g.pastTrips()
	if g.chance(recentTripShare) {
		g.recentTrip()
	}
	g.sortTrips()

	// The last entry into Kazakhstan: long ago for most, recently for a
	// few (back from home or from a trip), never while a trip is under way.
	entered := g.day(-300, -11)
	fresh := g.chance(freshEntryShare)
	if fresh {
		entered = g.recent(10, staleDays, staleShare)
	}
	var abroadSince date.Date
	var back *trip // the trip whose return is the last entry
	for i := range s.ntrips {
		t := &s.trips[i]
		if t.cancelled || t.departed == 0 {
			continue
		}
		if t.returned == 0 {
			abroadSince = max(abroadSince, t.departed)
		} else if t.returned > entered {
			entered, back = t.returned, t
		}
	}
	if abroadSince != 0 && entered >= abroadSince {
		entered = abroadSince.AddDays(-g.between(10, 200))
		fresh, back = false, nil
	}
	if back != nil {
		fresh = back.recent
	}
	s.entered = entered
	if fresh {
		g.arrive()
	} else {
		s.checkIn = entered
		if g.chance(0.35) {
			s.checkIn = nextWorkingDay(entered)
		}
		s.registered = entered.AddDays(g.between(0, 3))
		if g.chance(0.02) {
			s.registered = entered.AddDays(g.between(4, 7)) // late, but done
		}
	}
	if back != nil {
		// The office records the passport handed in after a trip as the
		// check-in of the new entry.
		s.checkIn = back.checkedIn
	}

	// The end of the allowed stay: renewed yearly for most (citizens of the
	// Eurasian Economic Union are registered for the whole study period);
	// those whose stay ends within 90 days have mostly asked for the
	// extension already; a few have not.
	switch x := g.r.Float64(); {
	case x < 0.12:
		s.regExpiry = g.day(0, 90)
		lo, hi := s.regExpiry.AddDays(-90), min(T, s.regExpiry.AddDays(-14))
		if hi < lo {
			hi = T
		}
		s.extRequested = lo.AddDays(g.between(0, hi.Sub(lo)))
	case x < 0.12+stayEndingUnaskedShare:
		if g.chance(0.8) {
			s.regExpiry = g.day(0, 75)
		} else {
			s.regExpiry = g.day(-30, -1)
		}
		if g.chance(0.3) {
			// An old request, for the previous stay: it does not count.
			s.extRequested = s.regExpiry.AddDays(-g.between(100, 400))
		}
	case s.regime == "eaeu":
		s.regExpiry = g.day(91, 1400)
	default:
		s.regExpiry = g.day(91, 450)
	}
	if floor := max(s.registered, s.entered); s.regExpiry < floor {
		// A good row never ends its stay before it began.
		s.regExpiry = floor.AddDays(g.between(90, 365))
		s.extRequested = 0
	}

	// Address changes: a quarter moved at some point; a few in the last
	// days, not all re-registered yet.
	switch x := g.r.Float64(); {
	case x < 0.25:
		s.moved = g.day(-900, -31)
		s.addrRegistered = s.moved.AddDays(g.between(0, 2))
	case x < 0.25+recentMoveShare:
		s.moved = g.recent(10, staleDays, staleShare)
		switch y := g.r.Float64(); {
		case y < 0.55:
			s.addrRegistered = g.notAfter(s.moved.AddDays(g.between(0, 2)))
		case y < 0.65:
			s.addrRegistered = s.moved.AddDays(-g.between(30, 300)) // the previous address
		}
	}
}

// arrive fills the office check-in and the migration registration after
// the entry s.entered: most on time, some late, some missing, and some
// still showing the dates of the previous entry.
func (g *gen) arrive() {
	s := &g.s
	e := s.entered
	switch x := g.r.Float64(); {
	case x < 0.65:
		s.checkIn = g.notAfter(e)
	case x < 0.8:
		s.checkIn = g.notAfter(nextWorkingDay(e))
	case x < 0.86:
		s.checkIn = g.notAfter(e.AddDays(g.between(2, 6)))
	case x < 0.97:
		// not yet
	default:
		s.checkIn = e.AddDays(-g.between(30, 200)) // the previous entry
	}
	switch x := g.r.Float64(); {
	case x < 0.8:
		s.registered = g.notAfter(e.AddDays(g.between(0, 3)))
	case x < 0.86:
		s.registered = g.notAfter(e.AddDays(g.between(4, 8)))
	case x < 0.97:
		// not yet
	default:
		s.registered = e.AddDays(-g.between(30, 200))
	}
}

// pastTrips adds the trips long done: a vacation in the last break, a term
// trip earlier in the year, some cancelled.
func (g *gen) pastTrips() {
	s := &g.s
	T := g.asOf
	visa := s.regime == "visa"
	if g.lastBreak >= 0 && g.chance(0.35) {
		b := g.periods[g.lastBreak]
		t := g.addTrip("vacation")
		t.departure = b.StartsOn.AddDays(g.between(0, 10))
		t.submitted = t.departure.AddDays(-g.between(3, 30))
		t.ret = b.EndsOn.AddDays(-g.between(0, 6))
		t.decision = "not_required"
		if g.chance(0.15) {
			t.decision = "approved"
		}
		t.exitVisa = g.exitVisaDone(visa)
		if g.chance(0.04) {
			t.cancelled = true
			return
		}
		t.departed = t.departure
		t.returned = min(max(t.ret.AddDays(g.between(-2, 2)), t.departed.AddDays(1)), T.AddDays(-11))
		if !g.chance(passportNotBackShare) { // a very few never brought the passport back
			t.checkedIn = t.returned.AddDays(g.between(0, 2))
		}
	}
	if g.chance(0.06) {
		// A term trip 25-200 days ago, inside a semester.
		dep := g.day(-200, -25)
		if i := periodAt(g.periods, dep); i < 0 || g.periods[i].Kind != Semester {
			return
		}
		t := g.addTrip("term")
		t.departure = dep
		t.submitted = dep.AddDays(-g.between(3, 20))
		t.ret = dep.AddDays(g.between(3, 10))
		t.decision = "approved"
		t.exitVisa = g.exitVisaDone(visa)
		t.departed = dep
		t.returned = min(t.ret, T.AddDays(-11))
		t.checkedIn = t.returned.AddDays(g.between(0, 1))
	}
}

// exitVisaDone is exit_visa_ready of a trip that went well.
func (g *gen) exitVisaDone(visa bool) int8 {
	switch {
	case visa && g.chance(0.97):
		return 1
	case !visa && g.chance(0.1):
		return 1
	}
	return -1
}

// recentTrip adds one trip (or, for term trips, two in the same semester)
// around asOf, in one of the states the travel rules look at. A share of
// them is stale: a departure weeks ago that the office never recorded.
func (g *gen) recentTrip() {
	s := &g.s
	T := g.asOf
	visa := s.regime == "visa"
	first := s.ntrips
	defer func() {
		for i := first; i < s.ntrips; i++ {
			s.trips[i].recent = true
		}
	}()
	switch g.weighted(100, func(i int) int { return recentTripKinds[i] }) {
	case 0: // a vacation coming up (or, for a few, long gone unrecorded)
		t := g.addTrip("vacation")
		if g.chance(0.15) {
			t.departure = g.day(-30, -6)
		} else {
			t.departure = g.day(-5, 35)
			if b := g.breakStartingBetween(T.AddDays(-5), T.AddDays(35)); b != 0 && g.chance(0.7) {
				t.departure = b.AddDays(g.between(-2, 6))
			}
		}
		lead := g.between(3, 30)
		if g.chance(0.15) {
			lead = g.between(0, 2)
		}
		t.submitted = min(t.departure.AddDays(-lead), T)
		if g.chance(0.9) {
			t.ret = t.departure.AddDays(g.between(7, 45))
		}
		t.decision = []string{"not_required", "approved", "pending", "rejected"}[g.weighted(100, func(i int) int { return []int{75, 12, 8, 5}[i] })]
		t.exitVisa = g.exitVisaMaybe(visa)
		if t.departure <= T && g.chance(0.8) {
			t.departed = t.departure
			if t.ret != 0 && t.ret <= T && g.chance(0.7) {
				g.comeBack(t, min(max(t.ret.AddDays(g.between(-1, 2)), t.departed), T))
			}
		}
	case 1: // notified too late
		dep := g.day(-2, 6)
		stale := g.chance(0.35)
		if stale {
			dep = g.day(-50, -3)
		}
		kind := "vacation"
		if g.inSemester(dep) && g.chance(0.4) {
			kind = "term"
		}
		t := g.addTrip(kind)
		t.departure = dep
		t.submitted = min(dep.AddDays(-g.between(0, 2)), T)
		t.ret = dep.AddDays(g.between(3, 20))
		t.decision = "not_required"
		if kind == "term" {
			t.decision = []string{"pending", "approved"}[g.n(2)]
		}
		t.exitVisa = g.exitVisaMaybe(visa)
		if dep <= T && (stale && g.chance(0.3) || !stale && g.chance(0.5)) {
			t.departed = dep
		}
	case 2: // a term trip waiting for (or just given) the dean's decision
		t := g.addTrip("term")
		t.submitted = g.recent(12, staleDays, staleShare)
		t.departure = g.semesterDay(t.submitted.AddDays(g.between(3, 25)))
		t.ret = t.departure.AddDays(g.between(3, 14))
		t.decision = []string{"pending", "approved", "rejected"}[g.weighted(100, func(i int) int { return []int{60, 25, 15}[i] })]
		t.exitVisa = g.exitVisaMaybe(visa)
		if t.departure <= T && t.decision == "approved" && g.chance(0.8) {
			t.departed = t.departure
		}
	case 3: // a second term trip in the same semester
		dep2 := g.semesterNear(g.day(-30, 40))
		sem := periodAt(g.periods, dep2)
		if sem < 0 || g.periods[sem].Kind != Semester {
			return
		}
		p := g.periods[sem]
		if dep2 < p.StartsOn.AddDays(6) {
			dep2 = p.StartsOn.AddDays(g.between(6, 20))
		}
		dep1 := max(dep2.AddDays(-g.between(5, 40)), p.StartsOn)
		t1 := g.addTrip("term")
		t1.departure = dep1
		t1.submitted = min(dep1.AddDays(-g.between(3, 20)), T)
		t1.ret = min(dep1.AddDays(g.between(2, 7)), dep2.AddDays(-1))
		t1.decision = "approved"
		if g.chance(0.2) {
			t1.decision = "pending"
		}
		t1.exitVisa = g.exitVisaMaybe(visa)
		if dep1 <= T && t1.decision == "approved" {
			t1.departed = dep1
			if t1.ret <= T {
				g.comeBack(t1, t1.ret)
			}
		}
		t2 := g.addTrip("term")
		t2.departure = dep2
		lead := g.between(3, 20)
		if g.chance(0.3) {
			lead = g.between(21, 60) // asked long in advance
		}
		t2.submitted = min(max(dep2.AddDays(-lead), t1.submitted), T)
		t2.ret = dep2.AddDays(g.between(2, 7))
		t2.decision = []string{"pending", "approved", "rejected"}[g.weighted(100, func(i int) int { return []int{50, 35, 15}[i] })]
		t2.exitVisa = g.exitVisaMaybe(visa)
	case 4: // back from a trip in the last days
		returned := g.recent(10, staleDays, staleShare)
		departed := returned.AddDays(-g.between(3, 40))
		kind := "vacation"
		if g.inSemester(departed) && g.chance(0.4) {
			kind = "term"
		}
		t := g.addTrip(kind)
		t.departure = departed.AddDays(g.between(-1, 1))
		t.submitted = t.departure.AddDays(-g.between(3, 25))
		t.ret = max(returned.AddDays(g.between(-2, 2)), t.departure)
		t.decision = "not_required"
		if kind == "term" || g.chance(0.1) {
			t.decision = "approved"
		}
		t.exitVisa = g.exitVisaDone(visa)
		t.departed = departed
		g.comeBack(t, returned)
	case 5: // cancelled
		t := g.addTrip([]string{"vacation", "term"}[g.n(2)])
		t.departure = g.day(-10, 30)
		t.submitted = min(t.departure.AddDays(-g.between(0, 20)), T)
		t.ret = t.departure.AddDays(g.between(3, 30))
		t.decision = []string{"not_required", "pending", "approved", "rejected"}[g.n(4)]
		t.exitVisa = g.exitVisaMaybe(visa)
		t.cancelled = true
	}
}

// comeBack records the return of t on returned and the passport handed in
// after it: mostly in time, some late, some not yet.
func (g *gen) comeBack(t *trip, returned date.Date) {
	t.returned = returned
	limit := 3
	if t.kind == "term" {
		limit = 1
	}
	switch x := g.r.Float64(); {
	case x < 0.65:
		t.checkedIn = g.notAfter(returned.AddDays(g.between(0, limit)))
	case x < 0.75:
		t.checkedIn = g.notAfter(returned.AddDays(g.between(limit+1, limit+5)))
	}
}

// exitVisaMaybe is exit_visa_ready of a trip still being prepared.
func (g *gen) exitVisaMaybe(visa bool) int8 {
	x := g.r.Float64()
	if visa {
		switch {
		case x < 0.55:
			return 1
		case x < 0.8:
			return 0
		}
		return -1
	}
	switch {
	case x < 0.1:
		return 1
	case x < 0.15:
		return 0
	}
	return -1
}

func (g *gen) addTrip(kind string) *trip {
	s := &g.s
	t := &s.trips[s.ntrips]
	s.ntrips++
	*t = trip{kind: kind, exitVisa: -1}
	return t
}

// sortTrips orders the trips by departure, then submission: request ids
// follow that order.
func (g *gen) sortTrips() {
	ts := g.s.trips[:g.s.ntrips]
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && (ts[j].departure < ts[j-1].departure ||
			ts[j].departure == ts[j-1].departure && ts[j].submitted < ts[j-1].submitted); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func (g *gen) inSemester(d date.Date) bool {
	i := periodAt(g.periods, d)
	return i >= 0 && g.periods[i].Kind == Semester
}

// semesterAtOrAfter returns the semester containing d, else the next one.
func (g *gen) semesterAtOrAfter(d date.Date) int {
	for i, p := range g.periods {
		if p.Kind == Semester && p.EndsOn >= d {
			return i
		}
	}
	return -1
}

// semesterDay returns d when it falls in a semester, else a day early in
// the next semester.
func (g *gen) semesterDay(d date.Date) date.Date {
	i := g.semesterAtOrAfter(d)
	if i < 0 || g.periods[i].StartsOn <= d {
		return d
	}
	return g.periods[i].StartsOn.AddDays(g.between(3, 20))
}

// semesterNear returns d when it falls in a semester, else (even odds) a
// day late in the semester before (when the SIS calendar has it) or early
// in the one after.
func (g *gen) semesterNear(d date.Date) date.Date {
	i := g.semesterAtOrAfter(d)
	if i < 0 || g.periods[i].StartsOn <= d {
		return d
	}
	if i-2 >= g.written && g.chance(0.5) {
		return g.periods[i-2].EndsOn.AddDays(-g.between(0, 20))
	}
	return g.periods[i].StartsOn.AddDays(g.between(3, 20))
}

// breakStartingBetween returns the start of a break in [a, b], or 0.
func (g *gen) breakStartingBetween(a, b date.Date) date.Date {
	for _, p := range g.periods {
		if p.Kind != Semester && a <= p.StartsOn && p.StartsOn <= b {
			return p.StartsOn
		}
	}
	return 0
}

// mutate turns a clean row into a bad one of a random class, with
// probability badShare, and marks bad travel requests.
func (g *gen) mutate() {
	s := &g.s
	T := g.asOf
	for i := range s.ntrips {
		if g.chance(g.badShare) {
			t := &s.trips[i]
			t.bad = true
			t.ret = t.departure.AddDays(-g.between(1, 30))
		}
	}
	if !g.chance(g.badShare) {
		return
	}
	s.bad = studentClasses[g.weighted(badTotal, func(i int) int { return studentClasses[i].weight })].class
	switch s.bad {
	case BadEmailMalformed:
		local, domain, _ := strings.Cut(s.email, "@")
		switch g.n(5) {
		case 0:
			s.email = local + domain
		case 1:
			s.email = strings.Replace(local, ".", " ", 1) + "@" + domain
		case 2:
			s.email = local + "@@" + domain
		case 3:
			s.email = local + "@student"
		default:
			s.email = s.email + ", " + local + "@example.com"
		}
	case BadEmailMissing:
		s.email = ""
		s.emailEmpty = g.chance(0.2)
	case BadPhoneInvalid:
		s.phone = g.pick(invalidPhones)
	case BadPhoneNotE164:
		p := g.kzPhone()[2:] // 7011234567
		switch g.n(4) {
		case 0:
			s.phone = "8 " + p[0:3] + " " + p[3:6] + " " + p[6:8] + " " + p[8:10]
		case 1:
			s.phone = "8" + p
		case 2:
			s.phone = "+7 (" + p[0:3] + ") " + p[3:6] + "-" + p[6:8] + "-" + p[8:10]
		default:
			s.phone = "+7 " + p[0:3] + " " + p[3:6] + " " + p[6:10]
		}
	case BadPhoneMissing:
		s.phone = ""
	case BadLanguageUnknown:
		s.lang = g.pick(unknownLanguages)
	case BadLanguageNonCanonical:
		s.lang = g.pick(nonCanonicalLangs)
	case BadVisaRegimeUnknown:
		s.regime = g.pick(unknownRegimes)
	case BadStatusUnknown:
		s.status = g.pick(unknownStatuses)
	case BadFacultyMissing:
		s.nullFaculty = true
		if s.status != "applicant" && s.status != "on_leave" {
			s.status = "active" // only in-scope students need a faculty
		}
	case BadRegistrationDates:
		if s.registered == 0 {
			s.registered = g.day(-200, -20)
			if s.entered == 0 || s.entered > s.registered {
				s.entered = s.registered.AddDays(-g.between(0, 3))
			}
		}
		s.regExpiry = s.registered.AddDays(-g.between(1, 300))
		s.extRequested = 0
	case BadPassportFar:
		s.passportExpires = T.AddMonths(150 * 12).AddDays(g.between(0, 365))
	case BadNameControl:
		if g.chance(0.5) {
			s.given = g.pick(namesWithLineBreaks)
		} else {
			s.family = g.pick(namesWithLineBreaks)
		}
	case BadNameMarkup:
		s.family = g.pick(markupNames)
	}
}

// stamp sets updated_at: a working hour of the day of the latest change
// the row records, or of some day in the last year when it records none.
func (g *gen) stamp() {
	s := &g.s
	T := g.asOf
	var last date.Date
	for _, d := range [...]date.Date{s.invDocs, s.entered, s.checkIn, s.registered, s.extRequested, s.moved, s.addrRegistered} {
		if d <= T {
			last = max(last, d)
		}
	}
	if last == 0 {
		last = g.day(-400, -30)
	}
	s.updatedOn = last
	s.updatedMinute = g.between(8*60, 19*60+59)
}

// feminine gives a Slavic-style family name its feminine form.
func feminine(f string) string {
	if strings.HasSuffix(f, "ov") || strings.HasSuffix(f, "ev") || strings.HasSuffix(f, "in") {
		return f + "a"
	}
	return f
}

// email builds given.family<n>@student.example.edu in lower-case ASCII.
func (g *gen) email(given, family string, n int) string {
	b := g.buf[:0]
	b = appendASCII(b, given)
	b = append(b, '.')
	b = appendASCII(b, family)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "@student.example.edu"...)
	g.buf = b
	return string(b)
}

// appendASCII appends s lower-cased and transliterated to ASCII, without
// apostrophes and spaces.
func appendASCII(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b = append(b, byte(r))
		case r >= 'A' && r <= 'Z':
			b = append(b, byte(r-'A'+'a'))
		default:
			switch r {
			case 'ı', 'İ':
				b = append(b, 'i')
			case 'ş', 'Ş':
				b = append(b, 's')
			case 'ç', 'Ç':
				b = append(b, 'c')
			case 'ğ', 'Ğ':
				b = append(b, 'g')
			case 'ö', 'Ö':
				b = append(b, 'o')
			case 'ü', 'Ü':
				b = append(b, 'u')
			}
		}
	}
	return b
}

func (g *gen) kzPhone() string { return g.digits("+7"+g.pick(kzMobile), 7) }

// digits returns prefix followed by n random digits.
func (g *gen) digits(prefix string, n int) string {
	b := append(g.buf[:0], prefix...)
	for range n {
		b = append(b, byte('0'+g.r.IntN(10)))
	}
	g.buf = b
	return string(b)
}
