module github.com/ecbridge/ecb/internal/socketio/wsbench

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/ecbridge/ecb v0.0.0
	github.com/gobwas/ws v1.5.0
	github.com/gorilla/websocket v1.5.3
)

require github.com/gobwas/httphead v0.1.0 // indirect

replace github.com/ecbridge/ecb => ../../..
