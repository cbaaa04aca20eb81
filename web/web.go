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
	return http.FileServerFS(validNames{sub})
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
