// Package config owns ECB's configuration: the Config struct (whose zero
// fields mean the documented defaults), loading it from a YAML file, ECB_*
// environment variables and --set flags (in that order, later wins), and
// validating it with errors that name the bad key and say what is expected.
//
// docs/configuration.md is the reference; keep the two in step.
package config

import (
	"bytes"
	"crypto/tls"
	"encoding"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/limits"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/serverapi"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/internal/tracing"
)

// Config is the whole configuration of `ecb serve`.
type Config struct {
	// Listen is the client API address: REST, SSE, Socket.IO (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// AdminListen, when set, serves /metrics and /debug/pprof on a separate
	// address; when empty /metrics is served on Listen and pprof is off.
	AdminListen string `yaml:"adminListen"`

	Auth       auth.Config      `yaml:"auth"`
	Backend    backend.Config   `yaml:"backend"`
	Operations ops.Config       `yaml:"operations"`
	HTTP       HTTP             `yaml:"http"`
	Hub        Hub              `yaml:"hub"`
	SSE        SSE              `yaml:"sse"`
	SocketIO   SocketIO         `yaml:"socketio"`
	Log        Log              `yaml:"log"`
	ServerAPI  serverapi.Config `yaml:"serverApi"`
	Limits     limits.Config    `yaml:"limits"`
	Support    support.Config   `yaml:"support"`
	Callbacks  Callbacks        `yaml:"callbacks"`
	Cluster    Cluster          `yaml:"cluster"`
	Tracing    tracing.Config   `yaml:"tracing"`
}

// Cluster configures cluster mode (docs/cluster.md). Without a RedisURL the
// node runs alone, everything in memory.
type Cluster struct {
	// RedisURL is the Redis 7 the nodes share (redis://host:port/db,
	// rediss:// for TLS); empty: one node, in memory.
	RedisURL string `yaml:"redisURL"`
	// Prefix is put before every Redis key and channel (default ecb), so that
	// several deployments share one Redis.
	Prefix string `yaml:"prefix"`
	// Partitions spreads the threads over this many pub/sub partitions
	// (default 16); the same on every node.
	Partitions int `yaml:"partitions"`
	// ShardedPubSub uses SPUBLISH/SSUBSCRIBE (Redis Cluster).
	ShardedPubSub bool `yaml:"shardedPubSub"`
	// NodeName names this node in logs, the ECB-Node response header and
	// connection ids (default: a random name).
	NodeName string `yaml:"nodeName"`
	// AdvertiseURL is where the other nodes reach this one, for the
	// requests of the sessions and streams it holds that a balancer without
	// stickiness sends to them (default: http:// or https:// and the listen
	// address, with this host's name when it listens on every address).
	AdvertiseURL string `yaml:"advertiseURL"`
	// MetaTTL is how long an idle thread keeps its epoch and offset (default 24h).
	MetaTTL time.Duration `yaml:"metaTTL"`
	// Timeout bounds each Redis call (default 2s).
	Timeout time.Duration `yaml:"timeout"`
	// ProbeInterval is how often every subscription is probed (default 2s).
	ProbeInterval time.Duration `yaml:"probeInterval"`
	// Heartbeat is how often a node refreshes its liveness in Redis and
	// looks for dead nodes (default 3s); DeadAfter is how old a node's
	// heartbeat may be before another node removes its users' presence
	// (default 10s). A dead node's users turn offline within DeadAfter +
	// Heartbeat.
	Heartbeat time.Duration `yaml:"heartbeat"`
	DeadAfter time.Duration `yaml:"deadAfter"`
}

// Callbacks configures the support events ECB posts to the backend
// (internal/callbacks).
type Callbacks struct {
	// URL receives the events (POST, signed with backend.secret); empty: off.
	URL string `yaml:"url"`
	// MaxRetryDuration bounds the retries of one event (default 1m).
	MaxRetryDuration time.Duration `yaml:"maxRetryDuration"`
	// Offline posts message.offline, the offline nudge, for the messages
	// of every thread (default true; only with a url).
	Offline *bool `yaml:"offline"`
	// OfflineWindow is how long a thread's messages are batched into one
	// message.offline, from the first (default 2s).
	OfflineWindow time.Duration `yaml:"offlineWindow"`
	// OfflineMaxBatches caps the batches open or being sent at once
	// (default 10000); a message that would open one more nudges nobody.
	OfflineMaxBatches int `yaml:"offlineMaxBatches"`
}

// HTTP tunes the client listener.
type HTTP struct {
	// AllowedOrigins lists the browser origins allowed to call ECB (CORS and
	// the Socket.IO/SSE Origin check). Empty: only requests without an Origin
	// header (server-to-server) and same-origin pages. "*" allows any origin
	// but never with credentials.
	AllowedOrigins []string `yaml:"allowedOrigins"`
	// TrustedProxies lists the reverse proxies (IPs or CIDR prefixes) whose
	// X-Forwarded-For names the client IP, for the per-IP limits. Empty:
	// the peer's address is the client's.
	TrustedProxies []string `yaml:"trustedProxies"`
	// MaxBodyBytes caps a REST request body (default 65536).
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// ReadHeaderTimeout bounds slow headers (default 10s).
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// ReadBodyTimeout bounds the time a client takes to send a request body (default 30s).
	ReadBodyTimeout time.Duration `yaml:"readBodyTimeout"`
	// ShutdownTimeout bounds the graceful shutdown (default 15s).
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// ReconnectJitter spreads the reconnects of the clients a shutting-down
	// node lets go: each is told to wait a random time up to it (default 2s).
	ReconnectJitter time.Duration `yaml:"reconnectJitter"`
	// TLSCertFile and TLSKeyFile, when both set, make the client listener
	// serve HTTPS (and WSS) with that certificate chain and key (PEM).
	// Without them ECB serves plain HTTP, for a TLS-terminating proxy.
	TLSCertFile string `yaml:"tlsCertFile"`
	TLSKeyFile  string `yaml:"tlsKeyFile"`
}

// Hub tunes the recent push history kept for recovery.
type Hub struct {
	HistorySize int           `yaml:"historySize"` // pushes per thread (default 256)
	HistoryTTL  time.Duration `yaml:"historyTTL"`  // default 5m
}

// SSE tunes the Server-Sent Events streams.
type SSE struct {
	Heartbeat  time.Duration `yaml:"heartbeat"`  // comment line interval (default 15s)
	QueueBytes int           `yaml:"queueBytes"` // per stream before it is cut as too slow (default 1 MiB)
	// ResumeWindow is how long a dropped stream is kept so that a reconnect
	// with Last-Event-ID resumes it (default 2m).
	ResumeWindow time.Duration `yaml:"resumeWindow"`
	// ResumeEvents is how many recent events a stream keeps for that (default 256).
	ResumeEvents int `yaml:"resumeEvents"`
	// MaxStreamsPerUser caps concurrent streams of one user (default 16).
	MaxStreamsPerUser int `yaml:"maxStreamsPerUser"`
}

// SocketIO tunes the Socket.IO transport.
type SocketIO struct {
	PingInterval   time.Duration `yaml:"pingInterval"`   // default 25s
	PingTimeout    time.Duration `yaml:"pingTimeout"`    // default 20s
	MaxPayload     int           `yaml:"maxPayload"`     // bytes per Engine.IO payload (default 1000000)
	ConnectTimeout time.Duration `yaml:"connectTimeout"` // default 45s
	QueueBytes     int           `yaml:"queueBytes"`     // per connection before it is cut as too slow (default 1 MiB)
	// WriteDelay is how long a WebSocket that gets something to write waits
	// before the write, so that a busy thread's next pushes leave with it in
	// one write(2): latency traded for fewer system calls (default 0: none).
	WriteDelay time.Duration `yaml:"writeDelay"`
	// Netpoll: on Linux, an idle WebSocket waits in one epoll set per node
	// instead of in a reader goroutine of its own (≈ 2.4 KB of stack and
	// goroutine per idle connection less). Default true; false keeps a
	// blocking reader per connection. Elsewhere, and for TLS served by ECB
	// itself, reads block either way.
	Netpoll *bool `yaml:"netpoll"`
	// TokenExpiryWarning is how long before the userToken expires the socket
	// gets a tokenExpiring event (default 60s).
	TokenExpiryWarning time.Duration `yaml:"tokenExpiryWarning"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error (default info)
	Format string `yaml:"format"` // json or text (default json)
}

// SetDefaults fills the zero fields with the documented defaults.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		c.HTTP.MaxBodyBytes = 64 << 10
	}
	setDur(&c.HTTP.ReadHeaderTimeout, 10*time.Second)
	setDur(&c.HTTP.ReadBodyTimeout, 30*time.Second)
	setDur(&c.HTTP.ShutdownTimeout, 15*time.Second)
	setDur(&c.HTTP.ReconnectJitter, 2*time.Second)
	setInt(&c.Hub.HistorySize, 256)
	setDur(&c.Hub.HistoryTTL, 5*time.Minute)
	if c.Cluster.Prefix == "" {
		c.Cluster.Prefix = "ecb"
	}
	setInt(&c.Cluster.Partitions, 16)
	setDur(&c.Cluster.MetaTTL, 24*time.Hour)
	setDur(&c.Cluster.Timeout, 2*time.Second)
	setDur(&c.Cluster.ProbeInterval, 2*time.Second)
	setDur(&c.Cluster.Heartbeat, 3*time.Second)
	setDur(&c.Cluster.DeadAfter, 10*time.Second)
	setDur(&c.SSE.Heartbeat, 15*time.Second)
	setInt(&c.SSE.QueueBytes, 1<<20)
	setDur(&c.SSE.ResumeWindow, 2*time.Minute)
	setInt(&c.SSE.ResumeEvents, 256)
	setInt(&c.SSE.MaxStreamsPerUser, 16)
	setDur(&c.SocketIO.PingInterval, 25*time.Second)
	setDur(&c.SocketIO.PingTimeout, 20*time.Second)
	setInt(&c.SocketIO.MaxPayload, 1000000)
	setDur(&c.SocketIO.ConnectTimeout, 45*time.Second)
	setInt(&c.SocketIO.QueueBytes, 1<<20)
	setDur(&c.SocketIO.TokenExpiryWarning, time.Minute)
	if c.SocketIO.Netpoll == nil {
		on := true
		c.SocketIO.Netpoll = &on
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Callbacks.Offline == nil {
		on := true
		c.Callbacks.Offline = &on
	}
	setDur(&c.Callbacks.OfflineWindow, 2*time.Second)
	setInt(&c.Callbacks.OfflineMaxBatches, 10000)
	c.Operations.SetDefaults()
	c.Support.SetDefaults()
	c.ServerAPI.SetDefaults()
	c.Limits.SetDefaults()
	c.Tracing.SetDefaults()
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(i *int, def int) {
	if *i <= 0 {
		*i = def
	}
}

// Validate checks the configuration; every problem is reported, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	checkAddr := func(key, v string, required bool) {
		if v == "" {
			if required {
				bad(key, "required (host:port, e.g. 127.0.0.1:8080)")
			}
			return
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			bad(key, "%q is not host:port (e.g. 127.0.0.1:8080)", v)
		}
	}
	checkAddr("listen", c.Listen, true)
	checkAddr("adminListen", c.AdminListen, false)
	if u := c.Cluster.RedisURL; u != "" && !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		bad("cluster.redisURL", "%q is not a Redis URL (redis://host:port/db)", u)
	}
	if c.Cluster.DeadAfter < 2*c.Cluster.Heartbeat {
		bad("cluster.deadAfter", "%s must be at least twice cluster.heartbeat (%s), or a live node could be taken for dead", c.Cluster.DeadAfter, c.Cluster.Heartbeat)
	}
	if strings.ContainsAny(c.Cluster.Prefix, " {}") {
		bad("cluster.prefix", "%q may not contain spaces or braces", c.Cluster.Prefix)
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Backend.URL == "" {
		bad("backend.url", "required: the base URL of your backend's ECB contract (e.g. http://127.0.0.1:8081/ecb/v1)")
	} else if u, err := url.Parse(c.Backend.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("backend.url", "%q is not an http(s) URL", c.Backend.URL)
	}
	if c.Backend.Secret == "" {
		bad("backend.secret", "required: the HMAC secret shared with your backend (at least 32 characters)")
	} else if len(c.Backend.Secret) < 32 {
		bad("backend.secret", "too short (%d characters, expected at least 32)", len(c.Backend.Secret))
	}
	for _, o := range c.HTTP.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("http.allowedOrigins", "%q is not an origin (scheme://host[:port], or *)", o)
		}
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		bad("http.tlsCertFile", "http.tlsCertFile and http.tlsKeyFile go together (PEM files)")
	} else if c.HTTP.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile); err != nil {
			bad("http.tlsCertFile", "cannot load the certificate and key: %v", err)
		}
	}
	if c.SocketIO.WriteDelay < 0 || c.SocketIO.WriteDelay > time.Second {
		bad("socketio.writeDelay", "%s is not between 0 and 1s", c.SocketIO.WriteDelay)
	}
	if c.SocketIO.PingTimeout >= c.SocketIO.PingInterval*4 {
		bad("socketio.pingTimeout", "%s is unreasonably long for pingInterval %s", c.SocketIO.PingTimeout, c.SocketIO.PingInterval)
	}
	if c.Operations.DefaultPageSize > c.Operations.MaxPageSize {
		bad("operations.defaultPageSize", "must not exceed operations.maxPageSize (%d)", c.Operations.MaxPageSize)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not one of json, text", c.Log.Format)
	}
	if err := c.ServerAPI.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ServerAPI.Listen != "" && (c.ServerAPI.Listen == c.Listen || c.ServerAPI.Listen == c.AdminListen) {
		bad("serverApi.listen", "must differ from listen and adminListen (leave it empty to serve /server/v1 on listen)")
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Support.Resolve(); err != nil {
		errs = append(errs, err)
	}
	if _, err := limits.ParseProxies(c.HTTP.TrustedProxies); err != nil {
		bad("http.trustedProxies", "%v", err)
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Load reads the YAML file at path (none when empty), then applies the ECB_*
// variables of env, then the key=value overrides, fills in the defaults and
// validates.
func Load(path string, env []string, overrides []string) (*Config, error) {
	var c Config
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := ApplyEnv(&c, env); err != nil {
		return nil, err
	}
	for _, kv := range overrides {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: expected key=value (e.g. backend.url=http://127.0.0.1:8081/ecb/v1)", kv)
		}
		if err := Set(&c, key, value); err != nil {
			return nil, fmt.Errorf("--set %w", err)
		}
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return &c, nil
}

// ApplyEnv applies the variables named ECB_<KEY> where KEY is a dotted key in
// upper snake case: backend.url is ECB_BACKEND_URL, auth.publicKeyFile is
// ECB_AUTH_PUBLIC_KEY_FILE. Unknown ECB_ variables are an error, so a typo is
// never silently ignored.
func ApplyEnv(c *Config, env []string) error {
	keys := map[string]string{}
	for _, k := range Keys() {
		keys[EnvName(k)] = k
	}
	var errs []error
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ECB_") {
			continue
		}
		key, ok := keys[name]
		if !ok {
			errs = append(errs, fmt.Errorf("environment %s: no such setting (see docs/configuration.md)", name))
			continue
		}
		if err := Set(c, key, value); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// EnvName is the environment variable of a dotted key.
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString("ECB_")
	for i, r := range key {
		switch {
		case r == '.':
			b.WriteByte('_')
		case unicode.IsUpper(r) && i > 0 && key[i-1] != '.' && !unicode.IsUpper(rune(key[i-1])):
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// Keys lists every dotted key of the configuration.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, prefix+tag+".")
				continue
			}
			out = append(out, prefix+tag)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// Set assigns the text value to the dotted key.
func Set(c *Config, key, value string) error {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return fmt.Errorf("%s: no such setting", key)
		}
		found := false
		for i := range v.NumField() {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v = v.Field(i)
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: no such setting (see docs/configuration.md)", key)
		}
	}
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := tu.UnmarshalText([]byte(value)); err != nil {
			return fmt.Errorf("%s: %w", key, err) // the error must not quote value: it may be a secret
		}
		return nil
	}
	if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Bool {
		v.Set(reflect.New(v.Type().Elem())) // an optional switch: set means given
		v = v.Elem()
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (e.g. 5s, 2m)", key, value)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(value)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
		v.SetBool(b)
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number", key, value)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number (e.g. 0.25)", key, value)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("%s: cannot be set from text", key)
	}
	return nil
}
