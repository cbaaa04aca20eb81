package limits

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// ParseProxies parses a trusted proxy list: IP addresses and CIDR prefixes.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client that sent r: the peer's
// address, unless the peer is a trusted proxy, in which case the rightmost
// address of X-Forwarded-For that is not a trusted proxy (the leftmost ones
// are whatever the client wrote). The zero Addr means unknown.
func ClientIP(r *http.Request, proxies []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if len(proxies) == 0 || !trusted(peer, proxies) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing further left
		}
		client = a.Unmap()
		if !trusted(client, proxies) {
			break
		}
	}
	return client
}

// IPKey is the key a client IP is limited under: the address for IPv4, its
// /64 network for IPv6 (one host usually holds a whole /64).
func IPKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// maxIPs bounds the per-IP buckets of a node.
const maxIPs = 100000

// Handshakes limits new connections and token exchanges per client IP.
type Handshakes struct {
	ips     *Keyed[string]
	proxies []netip.Prefix
}

// NewHandshakes returns the per-IP handshake limit of cfg (defaults set),
// finding client IPs behind the trusted proxies.
func NewHandshakes(cfg Config, proxies []netip.Prefix) *Handshakes {
	return &Handshakes{ips: NewKeyed[string](cfg.HandshakesPerSecondPerIP, cfg.HandshakeBurstPerIP, maxIPs), proxies: proxies}
}

// Allow takes a token of r's client IP; the error is rate_limited.
func (h *Handshakes) Allow(r *http.Request) error {
	if ok, retry := h.ips.Allow(IPKey(ClientIP(r, h.proxies)), time.Now()); !ok {
		return Limited("too many new connections from this address", retry)
	}
	return nil
}

// Sweep drops idle buckets.
func (h *Handshakes) Sweep(now time.Time) { h.ips.Sweep(now) }
