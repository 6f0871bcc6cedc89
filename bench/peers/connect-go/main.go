// Command connect-go-peer is a benchmark peer for `just bench`: bench.v1.EchoService
// on connect-go (Connect, gRPC and gRPC-Web) over cleartext HTTP/1.1 and HTTP/2
// (prior knowledge), with the same semantics as the Rust servers.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"

	"connectrpc.com/connect"

	benchv1 "connectshop/bench/peers/connect-go/gen/bench/v1"
	"connectshop/bench/peers/connect-go/gen/bench/v1/benchv1connect"
)

// maxTicks is the most messages Ticks streams.
const maxTicks = 1000

type echoServer struct{}

func (echoServer) Echo(
	_ context.Context,
	req *connect.Request[benchv1.EchoRequest],
) (*connect.Response[benchv1.EchoResponse], error) {
	return connect.NewResponse(&benchv1.EchoResponse{
		Message: req.Msg.GetMessage(),
		Number:  req.Msg.GetNumber(),
		Tags:    req.Msg.GetTags(),
	}), nil
}

func (echoServer) Ticks(
	_ context.Context,
	req *connect.Request[benchv1.TicksRequest],
	stream *connect.ServerStream[benchv1.TicksResponse],
) error {
	count := req.Msg.GetCount()
	if count < 0 || count > maxTicks {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("count must be between 0 and 1000"))
	}
	for index := range count {
		if err := stream.Send(&benchv1.TicksResponse{Index: index, Message: req.Msg.GetMessage()}); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9094", "address to listen on")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle(benchv1connect.NewEchoServiceHandler(echoServer{}))

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	server := &http.Server{Addr: *addr, Handler: mux, Protocols: &protocols}
	log.Printf("connect-go peer listening on %s", *addr)
	log.Fatal(server.ListenAndServe())
}
