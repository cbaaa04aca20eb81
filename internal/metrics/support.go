package metrics

import "github.com/prometheus/client_golang/prometheus"

// WorkgroupGauges are one customer-support workgroup's live numbers on this
// node, read at each scrape.
type WorkgroupGauges struct {
	Workgroup       string
	Open            bool // takes new requests now (its switch and opening hours)
	AgentsAvailable int
	QueueLength     int // waiting requests, offered or not
	Chats           int // live chats, pending or in progress
}

var (
	descSupportOpen   = prometheus.NewDesc("ecb_support_open", "1 when the workgroup takes new requests now (its switch and opening hours).", []string{"workgroup"}, nil)
	descSupportAgents = prometheus.NewDesc("ecb_support_agents_available", "Agents available in the workgroup.", []string{"workgroup"}, nil)
	descSupportQueue  = prometheus.NewDesc("ecb_support_queue_length", "Requests waiting in the workgroup's queue.", []string{"workgroup"}, nil)
	descSupportChats  = prometheus.NewDesc("ecb_support_chats", "Live support chats of the workgroup (pending or in progress).", []string{"workgroup"}, nil)
)

// WatchWorkgroups registers the ecb_support_* gauges, whose values read
// returns at each scrape (the routing engine's state, not a copy that
// could drift). Call it once.
func (m *Metrics) WatchWorkgroups(read func() []WorkgroupGauges) {
	m.reg.MustRegister(workgroupCollector(read))
}

type workgroupCollector func() []WorkgroupGauges

func (workgroupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSupportOpen, descSupportAgents, descSupportQueue, descSupportChats} {
		ch <- d
	}
}

func (read workgroupCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range read() {
		open := 0.0
		if w.Open {
			open = 1
		}
		for d, v := range map[*prometheus.Desc]float64{descSupportOpen: open, descSupportAgents: float64(w.AgentsAvailable),
			descSupportQueue: float64(w.QueueLength), descSupportChats: float64(w.Chats)} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, w.Workgroup)
		}
	}
}
