package support

import (
	"errors"
	"fmt"
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
		w := Workgroup{Name: wc.Name, DisplayName: wc.DisplayName, Strategy: Strategy(wc.Strategy),
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
		if err := w.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("support.workgroups[%d]: %w", i, err))
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
