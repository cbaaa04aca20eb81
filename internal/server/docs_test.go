package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/web"
)

// A node (ecb serve, no demo web app) serves the client API's browsable
// page at /v1/docs/, /v1/docs redirects there, and the discovery document
// links it. The page's scripts and stylesheets are relative URLs that the
// node itself serves under /v1/docs/ (nothing from another origin), and it
// is sent with a Content-Security-Policy that allows only this origin.
func TestDocsPageIsServedFromThisOrigin(t *testing.T) {
	n := startNode(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(n.URL + "/v1/docs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/v1/docs/" {
		t.Fatalf("GET /v1/docs: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, err = http.Get(n.URL + "/v1/docs")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /v1/docs/: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if csp != web.DocsCSP || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "http") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	base, _ := url.Parse(n.URL + "/v1/docs/")
	var scripts, styles int
	for _, m := range regexp.MustCompile(`<(script|link)\b[^>]*\b(src|href)="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		ref, err := url.Parse(m[3])
		if err != nil {
			t.Fatalf("%s %q: %v", m[1], m[3], err)
		}
		if ref.Scheme == "data" {
			continue // the inline icon
		}
		abs := base.ResolveReference(ref)
		if ref.IsAbs() || ref.Host != "" || abs.Host != base.Host || !strings.HasPrefix(abs.Path, "/v1/docs/") {
			t.Fatalf("the page refers to %q, not an asset of this origin under /v1/docs/", m[3])
		}
		a, err := http.Get(abs.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(a.Body)
		a.Body.Close()
		if a.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("GET %s: %d, %d bytes", abs, a.StatusCode, len(body))
		}
		if m[1] == "script" {
			scripts++
		} else if strings.HasSuffix(abs.Path, ".css") {
			styles++
		}
	}
	if scripts < 2 || styles < 1 {
		t.Fatalf("the page loads %d scripts and %d stylesheets:\n%s", scripts, styles, page)
	}
	// Swagger UI's bundle is there, and the initializer reads the spec this
	// node serves, with the online validator off.
	init, err := http.Get(n.URL + "/v1/docs/docs.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(init.Body)
	init.Body.Close()
	if !strings.Contains(string(js), `"../openapi.yaml"`) || !strings.Contains(string(js), "validatorUrl: null") {
		t.Fatalf("docs.js:\n%s", js)
	}
	if a, err := http.Get(n.URL + "/v1/docs/no-such.js"); err != nil || a.StatusCode != 404 {
		t.Fatalf("GET /v1/docs/no-such.js: %v %v", a, err)
	} else {
		a.Body.Close()
	}

	var env struct {
		Data struct {
			Endpoints struct {
				Docs    string `json:"docs"`
				OpenAPI string `json:"openApi"`
			} `json:"endpoints"`
		} `json:"data"`
	}
	d, err := http.Get(n.URL + "/v1/discover")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(d.Body).Decode(&env)
	d.Body.Close()
	if err != nil || env.Data.Endpoints.Docs != "/v1/docs/" || env.Data.Endpoints.OpenAPI != "/v1/openapi.yaml" {
		t.Fatalf("discovery endpoints %+v (%v)", env.Data.Endpoints, err)
	}
}
