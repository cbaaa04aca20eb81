package lbtest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// The markers that delimit the upstream servers in both shipped files.
const (
	beginServers = "# BEGIN upstream servers"
	endServers   = "# END upstream servers"
)

// directive matches one nginx directive line: indentation, name, first
// argument, the `;` right after it, the rest of the line.
var directive = regexp.MustCompile(`^(\s*)(\S+)\s+(\S+?)(;?)(\s.*)?$`)

// renderNginx rewrites the shipped nginx configuration src so that it runs
// from dir: the upstream servers become upstreams (with the parameters of the
// first shipped server line), the one `listen` becomes listen, the pid, log
// and temp paths go under dir, and `user` becomes root when the master runs
// as root (its workers then read dir) and is dropped otherwise. Anything else
// is left as shipped. It fails when a line it must replace is missing, so a
// reshaped file is noticed rather than silently half-rendered.
func renderNginx(src []byte, listen string, upstreams []string, dir string, asRoot bool) ([]byte, error) {
	lines, err := replaceServers(src, upstreams, func(indent, params, up string, _ int) string {
		return indent + "server " + up + params
	})
	if err != nil {
		return nil, fmt.Errorf("nginx config: %w", err)
	}
	counts := map[string]int{}
	var out []string
	for _, line := range lines {
		m := directive.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
			continue
		}
		indent, name, tail := m[1], m[2], m[4]+m[5]
		switch {
		case name == "listen":
			line = indent + "listen " + listen + ";"
		case name == "user":
			if !asRoot {
				continue
			}
			line = indent + "user root;"
		case name == "pid":
			line = indent + "pid " + filepath.Join(dir, "nginx.pid") + ";"
		case name == "error_log":
			line = indent + "error_log " + filepath.Join(dir, "error.log") + tail
		case name == "access_log":
			line = indent + "access_log " + filepath.Join(dir, "access.log") + tail
		case strings.HasSuffix(name, "_temp_path"):
			line = indent + name + " " + filepath.Join(dir, "temp", strings.TrimSuffix(name, "_temp_path")) + tail
		default:
			out = append(out, line)
			continue
		}
		counts[name]++
		out = append(out, line)
	}
	for _, want := range []string{"listen", "pid", "error_log", "access_log", "client_body_temp_path", "proxy_temp_path"} {
		if counts[want] == 0 {
			return nil, fmt.Errorf("nginx config: no %s line to replace", want)
		}
	}
	if counts["listen"] != 1 {
		return nil, fmt.Errorf("nginx config: %d listen lines, expected exactly one", counts["listen"])
	}
	return []byte(strings.Join(out, "\n")), nil
}

// renderHAProxy rewrites the shipped HAProxy configuration src so that it
// runs in the foreground from dir: the upstream servers become upstreams
// (named ecb1, ecb2, ... with the parameters of the first shipped server
// line), the one `bind` becomes listen, chroot/user/group/daemon are dropped,
// the global log goes to stderr and the stats socket under dir. It fails when
// a line it must replace is missing.
func renderHAProxy(src []byte, listen string, upstreams []string, dir string) ([]byte, error) {
	lines, err := replaceServers(src, upstreams, func(indent, params, up string, i int) string {
		return fmt.Sprintf("%sserver ecb%d %s%s", indent, i+1, up, params)
	})
	if err != nil {
		return nil, fmt.Errorf("haproxy config: %w", err)
	}
	counts := map[string]int{}
	section := ""
	var out []string
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			out = append(out, line)
			continue
		}
		fields := strings.Fields(trimmed)
		if line[0] != ' ' && line[0] != '\t' {
			section = fields[0]
			out = append(out, line)
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		switch {
		case fields[0] == "bind":
			line = indent + "bind " + listen
			if len(fields) > 2 {
				line += " " + strings.Join(fields[2:], " ")
			}
		case section == "global" && (fields[0] == "chroot" || fields[0] == "user" || fields[0] == "group" || fields[0] == "daemon"):
			counts[fields[0]]++
			continue
		case section == "global" && fields[0] == "log":
			line = indent + "log stderr format raw local0 info"
		case section == "global" && fields[0] == "stats" && len(fields) > 2 && fields[1] == "socket":
			line = indent + "stats socket " + filepath.Join(dir, "admin.sock") + " " + strings.Join(fields[3:], " ")
		default:
			out = append(out, line)
			continue
		}
		counts[fields[0]]++
		out = append(out, line)
	}
	if counts["bind"] != 1 {
		return nil, fmt.Errorf("haproxy config: %d bind lines, expected exactly one", counts["bind"])
	}
	return []byte(strings.Join(out, "\n")), nil
}

// replaceServers replaces the server lines between the BEGIN/END markers of
// src with one line per upstream, made by line from the indentation and the
// parameters (what follows the address) of the first shipped server line.
func replaceServers(src []byte, upstreams []string, line func(indent, params, upstream string, i int) string) ([]string, error) {
	if len(upstreams) == 0 {
		return nil, fmt.Errorf("no upstreams")
	}
	in := strings.Split(string(bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))), "\n")
	begin, end := -1, -1
	for i, l := range in {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), beginServers):
			begin = i
		case strings.HasPrefix(strings.TrimSpace(l), endServers):
			end = i
		}
	}
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("no %q ... %q block", beginServers, endServers)
	}
	var indent, params string
	found := false
	for _, l := range in[begin+1 : end] {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "server" {
			continue
		}
		indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		// nginx: server ADDR params;  haproxy: server NAME ADDR params
		addrAt := 1
		if !strings.HasSuffix(strings.TrimSpace(l), ";") {
			addrAt = 2
		}
		if len(f) <= addrAt {
			return nil, fmt.Errorf("server line %q has no address", l)
		}
		params = strings.TrimSuffix(" "+strings.Join(f[addrAt+1:], " "), " ")
		if addrAt == 1 {
			if strings.HasSuffix(f[addrAt], ";") {
				params = ";"
			} else if !strings.HasSuffix(params, ";") {
				params += ";"
			}
		}
		found = true
		break
	}
	if !found {
		return nil, fmt.Errorf("no server line between the markers")
	}
	out := append([]string(nil), in[:begin+1]...)
	for i, up := range upstreams {
		out = append(out, line(indent, params, up, i))
	}
	return append(out, in[end:]...), nil
}
