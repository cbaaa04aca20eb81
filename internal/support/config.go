package support

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the support section of ECB's configuration. The scalar settings
// are the defaults of the workgroups that do not give their own, so that one
// --set (support.offerTimeout=5s) changes every workgroup of `ecb demo`.
type Config struct {
	// Workgroups lists the workgroups ECB serves (default: none).
	Workgroups []WorkgroupConfig `yaml:"workgroups"`
	// Strategy is the default routing strategy: round-robin or least-busy (default round-robin).
	Strategy string `yaml:"strategy"`
	// OfferTimeout is the default time an agent has to answer an offer (default 30s).
	OfferTimeout time.Duration `yaml:"offerTimeout"`
	// MaxChats is the default maximum of concurrent chats per agent (default 4).
	MaxChats int `yaml:"maxChats"`
	// Grace is how long a disconnected visitor keeps their place in the queue (default 60s).
	Grace time.Duration `yaml:"grace"`
}

// WorkgroupConfig is one workgroup in the configuration.
type WorkgroupConfig struct {
	Name           string        `yaml:"name"`
	DisplayName    string        `yaml:"displayName"`
	Strategy       string        `yaml:"strategy"`
	OfferTimeout   time.Duration `yaml:"offerTimeout"`
	MaxChats       int           `yaml:"maxChats"`
	Open           *bool         `yaml:"open"` // default true
	RequiredFields []string      `yaml:"requiredFields"`
	// Hours, when set, are the opening hours (hours.go); without them the
	// workgroup is open whenever Open is.
	Hours *HoursConfig `yaml:"hours"`
	// Queues, when set, are the workgroup's ordered queues (queues.go).
	Queues []QueueConfig `yaml:"queues"`
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	if c.Strategy == "" {
		c.Strategy = string(RoundRobin)
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = 30 * time.Second
	}
	if c.MaxChats <= 0 {
		c.MaxChats = 4
	}
	if c.Grace <= 0 {
		c.Grace = time.Minute
	}
}

// Resolve returns the workgroups with the defaults applied, validated.
func (c Config) Resolve() ([]Workgroup, error) {
	c.SetDefaults()
	var errs []error
	seen := map[string]bool{}
	out := make([]Workgroup, 0, len(c.Workgroups))
	for i, wc := range c.Workgroups {
		w, verr, herr := c.workgroup(wc, fmt.Sprintf("support.workgroups[%d].hours", i))
		if verr != nil {
			errs = append(errs, fmt.Errorf("support.workgroups[%d]: %w", i, verr))
		}
		if herr != nil {
			errs = append(errs, herr) // each names its key
		}
		if verr != nil || herr != nil {
			continue
		}
		if seen[w.Name] {
			errs = append(errs, fmt.Errorf("support.workgroups[%d]: workgroup %q is defined twice", i, w.Name))
			continue
		}
		seen[w.Name] = true
		out = append(out, w)
	}
	return out, errors.Join(errs...)
}

// ResolveWorkgroup returns one workgroup with c's defaults applied (for the
// zero values of wc), validated; errors about its hours name the keys below
// hoursKey ("hours").
func (c Config) ResolveWorkgroup(wc WorkgroupConfig, hoursKey string) (Workgroup, error) {
	c.SetDefaults()
	w, verr, herr := c.workgroup(wc, hoursKey)
	if err := errors.Join(verr, herr); err != nil {
		return Workgroup{}, err
	}
	return w, nil
}

// workgroup applies the defaults of c (already set) to wc and validates it:
// verr is about the settings, herr about the hours and the queues (each
// error names its key: hoursKey, and its "queues" sibling).
func (c Config) workgroup(wc WorkgroupConfig, hoursKey string) (w Workgroup, verr, herr error) {
	w = Workgroup{Name: wc.Name, DisplayName: wc.DisplayName, Strategy: Strategy(wc.Strategy),
		OfferTimeout: wc.OfferTimeout, MaxChats: wc.MaxChats, Open: wc.Open == nil || *wc.Open,
		RequiredFields: wc.RequiredFields}
	if w.Strategy == "" {
		w.Strategy = Strategy(c.Strategy)
	}
	if w.OfferTimeout <= 0 {
		w.OfferTimeout = c.OfferTimeout
	}
	if w.MaxChats <= 0 {
		w.MaxChats = c.MaxChats
	}
	if w.DisplayName == "" {
		w.DisplayName = w.Name
	}
	var qerr error
	if len(wc.Queues) > 0 {
		w.Queues, qerr = ParseQueues(wc.Queues, strings.TrimSuffix(hoursKey, "hours")+"queues")
	}
	verr = w.Validate()
	if wc.Hours != nil {
		w.Hours, herr = ParseHours(*wc.Hours, hoursKey)
	}
	return w, verr, errors.Join(herr, qerr)
}
