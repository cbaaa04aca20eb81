package support

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Queues inside a workgroup (Fastpath's several queues per workgroup,
// chosen by the request's metadata). A workgroup may have ordered queues;
// a request lands in the first whose Match all equals its metadata (a
// queue without Match takes every request: a catch-all), and is offered
// only to the agents of that queue. A workgroup without queues has one
// implicit queue (named "") that every agent of the workgroup serves, and
// behaves as before queues existed.
//
// Routing stays oldest first within the workgroup: an agent who serves
// several queues is offered the request that has waited longest in any of
// them, so within one queue the order is FIFO. A request whose queue has
// no agent available waits in it: agents of other queues do not take it
// (docs/decisions.md); its position, estimated wait and the status count
// per queue.

// Limits of a workgroup's queues.
const (
	MaxQueues       = 32
	MaxQueueName    = 64
	MaxQueueMatch   = 16
	MaxQueueAgents  = 256
	maxMatchKeyLen  = 128
	maxMatchValLen  = 256
	maxAgentNameLen = 256
)

// Queue is one of a workgroup's ordered queues.
type Queue struct {
	Name string
	// Match are the metadata fields a request must carry, each equal to
	// its value (a string; a metadata number or boolean matches its JSON
	// text: 2 matches "2", true matches "true"). Empty: a catch-all.
	Match map[string]string
	// Agents are the user ids of the agents who serve the queue (they also
	// need the workgroup in their token); empty: every agent of the workgroup.
	Agents []string
}

// QueueConfig is a queue in the configuration (support.workgroups[i].queues).
type QueueConfig struct {
	Queue  string            `yaml:"queue" json:"queue"`
	Match  map[string]string `yaml:"match" json:"match,omitempty"`
	Agents []string          `yaml:"agents" json:"agents,omitempty"`
}

// QueueStatus is one queue's state as visitors see it.
type QueueStatus struct {
	Queue           string        `json:"queue"`
	AgentsAvailable int           `json:"agentsAvailable"`
	QueueLength     int           `json:"queueLength"`
	EstimatedWait   time.Duration `json:"estimatedWaitNs"`
}

// ParseQueues checks the queues of a workgroup's configuration (key names
// the list in errors: support.workgroups[0].queues).
func ParseQueues(qs []QueueConfig, key string) ([]Queue, error) {
	if len(qs) > MaxQueues {
		return nil, fmt.Errorf("%s: at most %d queues", key, MaxQueues)
	}
	out := make([]Queue, 0, len(qs))
	for i, qc := range qs {
		at := fmt.Sprintf("%s[%d]", key, i)
		q := Queue{Name: qc.Queue, Match: maps.Clone(qc.Match), Agents: slices.Clone(qc.Agents)}
		if err := q.validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		for _, p := range out {
			if p.Name == q.Name {
				return nil, fmt.Errorf("%s: queue %q is defined twice", at, q.Name)
			}
		}
		out = append(out, q)
	}
	return out, nil
}

func (q Queue) validate() error {
	switch {
	case q.Name == "" || len(q.Name) > MaxQueueName || !printableText(q.Name):
		return fmt.Errorf("queue must be a name of 1 to %d printable bytes", MaxQueueName)
	case len(q.Match) > MaxQueueMatch:
		return fmt.Errorf("queue %q: match: at most %d fields", q.Name, MaxQueueMatch)
	case len(q.Agents) > MaxQueueAgents:
		return fmt.Errorf("queue %q: agents: at most %d", q.Name, MaxQueueAgents)
	}
	for k, v := range q.Match {
		if k == "" || len(k) > maxMatchKeyLen || !printableText(k) {
			return fmt.Errorf("queue %q: match: a key must be 1 to %d printable bytes", q.Name, maxMatchKeyLen)
		}
		if len(v) > maxMatchValLen || !utf8.ValidString(v) {
			return fmt.Errorf("queue %q: match.%s: at most %d bytes of UTF-8", q.Name, k, maxMatchValLen)
		}
	}
	for i, a := range q.Agents {
		if a == "" || len(a) > maxAgentNameLen || !printableText(a) {
			return fmt.Errorf("queue %q: agents[%d] must be a user id of 1 to %d printable bytes", q.Name, i, maxAgentNameLen)
		}
		if slices.Contains(q.Agents[:i], a) {
			return fmt.Errorf("queue %q: agents[%d] repeats %q", q.Name, i, a)
		}
	}
	return nil
}

func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// Config returns q in its configuration form.
func (q Queue) Config() QueueConfig {
	return QueueConfig{Queue: q.Name, Match: maps.Clone(q.Match), Agents: slices.Clone(q.Agents)}
}

// Matches reports whether metadata carries every field of q.Match with its value.
func (q Queue) Matches(metadata map[string]any) bool {
	for k, want := range q.Match {
		v, ok := metadata[k]
		if !ok {
			return false
		}
		got, ok := scalarText(v)
		if !ok || got != want {
			return false
		}
	}
	return true
}

// scalarText is the text a metadata value matches: a string itself, a
// number or boolean its JSON text; nothing for null, objects and arrays.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case interface{ String() string }: // json.Number
		return x.String(), true
	}
	return "", false
}

// cloneQueues deep-copies qs (nil for none).
func cloneQueues(qs []Queue) []Queue {
	if len(qs) == 0 {
		return nil
	}
	out := make([]Queue, len(qs))
	for i, q := range qs {
		out[i] = Queue{Name: q.Name, Match: maps.Clone(q.Match), Agents: slices.Clone(q.Agents)}
	}
	return out
}

// validateQueues checks a Workgroup's queues (names unique, each valid).
func validateQueues(w Workgroup) error {
	if len(w.Queues) > MaxQueues {
		return fmt.Errorf("support: workgroup %q: at most %d queues", w.Name, MaxQueues)
	}
	for i, q := range w.Queues {
		if err := q.validate(); err != nil {
			return fmt.Errorf("support: workgroup %q: queues[%d]: %w", w.Name, i, err)
		}
		for _, p := range w.Queues[:i] {
			if p.Name == q.Name {
				return fmt.Errorf("support: workgroup %q: queue %q is defined twice", w.Name, q.Name)
			}
		}
	}
	return nil
}

// queueFor returns the name of the first of w's queues metadata matches
// ("" when w has no queues), and false when it has queues and none matches.
func (w Workgroup) queueFor(metadata map[string]any) (string, bool) {
	if len(w.Queues) == 0 {
		return "", true
	}
	for _, q := range w.Queues {
		if q.Matches(metadata) {
			return q.Name, true
		}
	}
	return "", false
}

// queue returns w's queue name (nil for the implicit queue "" or an unknown name).
func (w Workgroup) queue(name string) *Queue {
	for i := range w.Queues {
		if w.Queues[i].Name == name {
			return &w.Queues[i]
		}
	}
	return nil
}

// serves reports whether agentID serves g's queue name (the agent serving
// the workgroup is checked by the caller).
func (g *wgState) serves(name, agentID string) bool {
	if name == "" {
		return len(g.Queues) == 0
	}
	q := g.queue(name)
	return q != nil && (len(q.Agents) == 0 || slices.Contains(q.Agents, agentID))
}

// queueStat is a queue's wait average.
type queueStat struct {
	avgWait time.Duration
	samples int
}

// stat returns the wait average of g's queue name (the workgroup's for "").
func (g *wgState) stat(name string) queueStat {
	if name == "" {
		return queueStat{g.avgWait, g.samples}
	}
	return g.qstats[name]
}

// availableInQueue counts the available agents of g who serve its queue name.
func (e *Engine) availableInQueue(g *wgState, name string) int {
	n := 0
	for _, a := range e.agents {
		if a.available && a.workgroups[g.Name] && g.serves(name, a.id) {
			n++
		}
	}
	return n
}

// estimateIn is the wait at position pos of g's queue name with n agents.
func (e *Engine) estimateIn(g *wgState, name string, pos, n int) time.Duration {
	per := e.opts.DefaultWait
	if st := g.stat(name); st.samples > 0 {
		per = st.avgWait
	}
	if n < 1 {
		n = 1
	}
	return (per * time.Duration(pos) / time.Duration(n)).Round(time.Second)
}

// queueStatuses returns the status of each of g's queues, in order (nil
// without queues).
func (e *Engine) queueStatuses(g *wgState) []QueueStatus {
	if len(g.Queues) == 0 {
		return nil
	}
	waiting := map[string]int{}
	for _, r := range g.waiting {
		waiting[r.Queue]++
	}
	out := make([]QueueStatus, 0, len(g.Queues))
	for _, q := range g.Queues {
		n := e.availableInQueue(g, q.Name)
		out = append(out, QueueStatus{Queue: q.Name, AgentsAvailable: n, QueueLength: waiting[q.Name],
			EstimatedWait: e.estimateIn(g, q.Name, waiting[q.Name]+1, n)})
	}
	return out
}

// requeue checks that every waiting request of g lands in one of the
// queues of w (its settings to be) and returns the new queue of each of
// g's active requests; the caller applies them. A chat's queue is where it
// goes back when transferred to the queue: the first of w's queues it
// matches, else the last. Refused (KindConflict) when a waiting request
// would match no queue: nothing is lost.
func (e *Engine) requeue(g *wgState, w Workgroup) (map[*request]string, error) {
	out := map[*request]string{}
	for _, r := range e.requests {
		if r.Workgroup != g.Name {
			continue
		}
		name, ok := w.queueFor(r.Metadata)
		if !ok {
			if r.State == StateQueued || r.State == StateOffered {
				return nil, errf(KindConflict, "request %s waiting in workgroup %q would match none of the new queues: add a catch-all queue (one without match)", r.ID, w.Name)
			}
			name = w.Queues[len(w.Queues)-1].Name
		}
		out[r] = name
	}
	return out, nil
}

// pushQueuePositions is pushPositions for a workgroup with queues: the
// positions and estimates are within each request's queue. The figures of
// each queue are gathered once, and a request's queue found by a scan of
// the few queues (no map per request: this runs on every transition).
func (e *Engine) pushQueuePositions(g *wgState, force bool) {
	nq := len(g.Queues)
	ahead := make([]int, nq)
	n := make([]int, nq)
	per := make([]time.Duration, nq)
	for i, q := range g.Queues {
		n[i] = max(e.availableInQueue(g, q.Name), 1)
		per[i] = e.opts.DefaultWait
		if st := g.stat(q.Name); st.samples > 0 {
			per[i] = st.avgWait
		}
	}
	qi := 0 // the queue of the previous request: consecutive requests often share it
	for _, r := range g.waiting {
		if qi >= nq || g.Queues[qi].Name != r.Queue {
			qi = slices.IndexFunc(g.Queues, func(q Queue) bool { return q.Name == r.Queue })
			if qi < 0 {
				qi = nq
				continue // cannot happen: every waiting request is in one of g's queues
			}
		}
		ahead[qi]++
		pos := ahead[qi]
		est := (per[qi] * time.Duration(pos) / time.Duration(n[qi])).Round(time.Second) // estimateIn's
		if !force && pos == r.pos && est == r.est {
			continue
		}
		r.pos, r.est = pos, est
		if !r.away {
			e.emitQueue(r.VisitorID, r.ID, r.Queue, pos, est)
		}
	}
}
