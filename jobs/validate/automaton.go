package validate

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
)

// An automaton runs a libphonenumber pattern, compiled as Go's regexp
// compiles it, over ASCII digits, to tell whether a prefix of a number
// decides the pattern's answer whatever digits follow.
type automaton struct {
	prog  *syntax.Prog
	start state
	// memo of every, none, noneWithin and allWithin, by question, state
	// and remaining length.
	memo map[string]bool
}

// state is a set of NFA threads: the instructions waiting for a digit, and
// whether the input read so far is accepted.
type state struct {
	pcs    []uint32
	accept bool
}

var automata struct {
	mu        sync.Mutex
	byPattern map[string]*automaton // nil: not analysable
}

// automatonFor compiles pattern once; nil when it cannot be analysed (a
// syntax the library itself would reject, or a pattern with anchors or
// word boundaries, which number patterns do not use and this analysis
// does not model). The caller holds automata.mu.
func automatonFor(pattern string) *automaton {
	if a, ok := automata.byPattern[pattern]; ok {
		return a
	}
	if automata.byPattern == nil {
		automata.byPattern = map[string]*automaton{}
	}
	a := compileAutomaton(pattern)
	automata.byPattern[pattern] = a
	return a
}

func compileAutomaton(pattern string) *automaton {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	for _, i := range prog.Inst {
		if i.Op == syntax.InstEmptyWidth {
			return nil
		}
	}
	a := &automaton{prog: prog, memo: map[string]bool{}}
	a.start = a.closure([]uint32{uint32(prog.Start)})
	return a
}

// closure follows the empty moves from pcs.
func (a *automaton) closure(pcs []uint32) state {
	var st state
	seen := make([]bool, len(a.prog.Inst))
	stack := slices.Clone(pcs)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		switch i := &a.prog.Inst[pc]; i.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, i.Out, i.Arg)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, i.Out)
		case syntax.InstMatch:
			st.accept = true
		case syntax.InstFail:
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			st.pcs = append(st.pcs, pc)
		}
	}
	slices.Sort(st.pcs)
	return st
}

// step reads the digit c.
func (a *automaton) step(st state, c byte) state {
	var next []uint32
	for _, pc := range st.pcs {
		if i := &a.prog.Inst[pc]; i.MatchRune(rune(c)) {
			next = append(next, i.Out)
		}
	}
	if len(next) == 0 {
		return state{}
	}
	return a.closure(next)
}

func (a *automaton) run(st state, digits string) state {
	for i := 0; i < len(digits); i++ {
		st = a.step(st, digits[i])
	}
	return st
}

// The questions the memo answers.
const (
	askEvery      = iota // every continuation of exactly m digits is accepted
	askNone              // no continuation of exactly m digits is accepted
	askNoneWithin        // no continuation of at most m digits is accepted
	askAllWithin         // every continuation of m digits has an accepted prefix
)

// ask answers question q for state st and m digits still to come.
func (a *automaton) ask(q int, st state, m int) bool {
	key := binary.AppendUvarint([]byte{byte(q), boolByte(st.accept)}, uint64(m))
	for _, pc := range st.pcs {
		key = binary.AppendUvarint(key, uint64(pc))
	}
	if v, ok := a.memo[string(key)]; ok {
		return v
	}
	v := a.answer(q, st, m)
	a.memo[string(key)] = v
	return v
}

func (a *automaton) answer(q int, st state, m int) bool {
	switch {
	case q == askNoneWithin && st.accept, q == askAllWithin && st.accept:
		return q == askAllWithin
	case m == 0:
		return q == askEvery && st.accept || q == askNone && !st.accept || q == askNoneWithin
	case len(st.pcs) == 0:
		return q == askNone || q == askNoneWithin
	}
	for c := byte('0'); c <= '9'; c++ {
		if !a.ask(q, a.step(st, c), m-1) {
			return false
		}
	}
	return true
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// fullMatchDecided tells whether pattern, matched against a whole number
// of n digits starting with p (as libphonenumber's "^(?:pattern)$"), has
// the same answer whatever digits follow p, and that answer.
func fullMatchDecided(pattern, p string, n int) (matched, decided bool) {
	automata.mu.Lock()
	defer automata.mu.Unlock()
	a := automatonFor(pattern)
	if a == nil || len(p) > n {
		return false, false
	}
	st := a.run(a.start, p)
	switch m := n - len(p); {
	case a.ask(askEvery, st, m):
		return true, true
	case a.ask(askNone, st, m):
		return false, true
	}
	return false, false
}

// lookingAtDecided is fullMatchDecided for a match at the start of the
// number only (as libphonenumber's "^(?:pattern)" for leading digits and
// national prefixes).
func lookingAtDecided(pattern, p string, n int) (matched, decided bool) {
	automata.mu.Lock()
	defer automata.mu.Unlock()
	a := automatonFor(pattern)
	if a == nil || len(p) > n {
		return false, false
	}
	st := a.start
	for i := 0; ; i++ {
		if st.accept {
			return true, true
		}
		if len(st.pcs) == 0 {
			return false, true
		}
		if i == len(p) {
			break
		}
		st = a.step(st, p[i])
	}
	switch m := n - len(p); {
	case a.ask(askNoneWithin, st, m):
		return false, true
	case a.ask(askAllWithin, st, m):
		return true, true
	}
	return false, false
}
