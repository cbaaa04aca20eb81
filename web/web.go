// Package web embeds the demo web app (built into web/dist by
// `npm run build` in web/, committed so that `go run ./cmd/ecb demo` needs no
// Node) and serves it; and the client API's browsable page, Swagger UI
// rendering api/client.yaml (built into web/apidocs by the same build, with
// Swagger UI's bundle copied from the swagger-ui-dist package), which ECB
// serves at /v1/docs/ on every node.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed dist
var dist embed.FS

//go:embed apidocs
var apidocs embed.FS

// Handler serves the demo web app.
func Handler() http.Handler {
	return http.FileServerFS(validNames{sub(dist, "dist")})
}

// DocsPath is where the client API's browsable page is served.
const DocsPath = "/v1/docs/"

// DocsCSP is the Content-Security-Policy of the page: every script, style,
// font and fetch from this origin (the OpenAPI document is read from
// /v1/openapi.yaml); images may also be data: URLs (Swagger UI's
// stylesheet draws its icons so); inline styles are allowed because
// Swagger UI sets style attributes as it renders; no frame, object, or
// form posting elsewhere.
const DocsCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Docs serves the client API's browsable page and its assets for requests
// under DocsPath (the prefix is stripped here), each with DocsCSP.
func Docs() http.Handler {
	files := http.StripPrefix(DocsPath, http.FileServerFS(validNames{sub(apidocs, "apidocs")}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", DocsCSP)
		// The files change with the binary, and embed.FS gives them no
		// modification time to revalidate against: keep them a minute.
		h.Set("Cache-Control", "public, max-age=60")
		files.ServeHTTP(w, r)
	})
}

func sub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return s
}

// validNames answers a name that is not a valid fs path (fs.ValidPath: not
// UTF-8, such as the %c0 of GET /%c0) as missing. fs.Sub refuses such a name
// with fs.ErrInvalid, which http.FileServer turns into a 500: no file can
// have that name, so it is a 404.
type validNames struct{ fs.FS }

func (v validNames) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v.FS.Open(name)
}
