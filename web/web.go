// Package web embeds the demo web app (built into web/dist by
// `npm run build` in web/, committed so that `go run ./cmd/ecb demo` needs no
// Node) and serves it.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed dist
var dist embed.FS

// Handler serves the demo web app.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return http.FileServerFS(sub)
}
