// Package api holds ECB's published OpenAPI documents (backend.yaml,
// server.yaml, client.yaml) and embeds the client API's, which ECB serves
// at GET /v1/openapi.yaml.
package api

import _ "embed"

// ClientYAML is api/client.yaml, the client REST API (OpenAPI 3.1).
//
//go:embed client.yaml
var ClientYAML []byte
