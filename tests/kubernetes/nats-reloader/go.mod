// nats-server-config-reloader (github.com/nats-io/nack), the sidecar the
// production overlay runs beside NATS, pinned with its dependencies'
// checksums in go.sum at the version of the image it names: `go install`
// is refused here (the proxy answers 403 for the command's path), so
// build-nats-reloader.sh builds it from this module, and
// test_nats_reload.py runs it against Debian's nats-server. Not a program
// of ours.
module connect-shop.local/nats-reloader

go 1.24

tool github.com/nats-io/nack/cmd/nats-server-config-reloader

require (
	github.com/fsnotify/fsnotify v1.7.0 // indirect
	github.com/nats-io/nack v0.16.2 // indirect
	golang.org/x/sys v0.21.0 // indirect
)
