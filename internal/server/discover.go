package server

import (
	"net/http"
	"strings"

	"github.com/ecbridge/ecb/api"
	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/discover"
	"github.com/ecbridge/ecb/sdk/ecbserver"
	"github.com/ecbridge/ecb/web"
)

// newDiscovery builds the discovery document of this node (GET /v1/discover).
func (s *Server) newDiscovery(cfg *config.Config, v discover.Versions) *discover.Document {
	v.Contract = ecbserver.ContractFullVersion
	ep := discover.Endpoints{ClientAPI: "/v1", Events: "/v1/events", Ops: "/v1/ops", SocketIO: "/socket.io/", Discover: discover.Path, OpenAPI: discover.OpenAPIPath, Docs: web.DocsPath}
	if cfg.ServerAPI.Enabled() && cfg.ServerAPI.Listen == "" {
		ep.ServerAPI = "/server/v1"
	}
	return discover.New(discover.Config{
		Versions:   v,
		Endpoints:  ep,
		Transports: []string{"socketio", "sse"},
		Tokens:     discover.Tokens{Algorithms: cfg.Auth.AcceptedAlgorithms(), Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer},
		Operations: s.ops.Operations(),
		Optional:   ecbserver.OptionalCalls(),
	})
}

// mountDiscovery serves the document at /v1/discover and the client API's
// OpenAPI document (api/client.yaml) at /v1/openapi.yaml, under the origin
// policy of the client API, with no token; and the browsable page of that
// document at /v1/docs/ (package web: Swagger UI, every asset embedded),
// /v1/docs redirected there.
func (s *Server) mountDiscovery(mux *http.ServeMux, origins originPolicy) {
	mux.Handle(discover.Path, origins.cors(s.discover))
	mux.Handle(discover.OpenAPIPath, origins.cors(discover.ServeOpenAPI(api.ClientYAML)))
	mux.Handle("GET "+web.DocsPath, web.Docs())
	mux.Handle("GET "+strings.TrimSuffix(web.DocsPath, "/"), http.RedirectHandler(web.DocsPath, http.StatusMovedPermanently))
}
