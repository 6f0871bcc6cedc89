// Calls the running catalog with connect-go clients generated from proto/
// (protoc-gen-go and protoc-gen-connect-go, no managed mode) over Connect,
// gRPC and gRPC-Web: a product, a page of products, and a precise error.
// Run by tests/interop/run.sh; exits non-zero on the first surprise.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	catalogv1 "github.com/connect-shop/connect-shop/gen/go/shop/catalog/v1"
	"github.com/connect-shop/connect-shop/gen/go/shop/catalog/v1/catalogv1connect"
	// Every generated package compiles and links, not only the catalog's.
	_ "github.com/connect-shop/connect-shop/gen/go/shop/bff/v1/bffv1connect"
	_ "github.com/connect-shop/connect-shop/gen/go/shop/orders/v1/ordersv1connect"
	_ "github.com/connect-shop/connect-shop/gen/go/shop/payments/v1/paymentsv1connect"
	_ "github.com/connect-shop/connect-shop/gen/go/shop/users/v1/usersv1connect"
)

func main() {
	url := os.Getenv("CATALOG_URL")
	if url == "" {
		url = "http://127.0.0.1:8082"
	}
	// HTTP/2 without TLS (h2c), which gRPC needs and Connect may use.
	h2c := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	protocols := []struct {
		name   string
		option []connect.ClientOption
	}{
		{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"connect+proto", nil},
		{"connect GET", []connect.ClientOption{connect.WithHTTPGet()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	for _, protocol := range protocols {
		client := catalogv1connect.NewCatalogServiceClient(h2c, url, protocol.option...)
		if err := walk(client); err != nil {
			fmt.Fprintf(os.Stderr, "connect-go over %s: %v\n", protocol.name, err)
			os.Exit(1)
		}
		fmt.Printf("connect-go over %s: ok\n", protocol.name)
	}
}

func walk(catalog catalogv1connect.CatalogServiceClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	product, err := catalog.GetProduct(ctx, connect.NewRequest(&catalogv1.GetProductRequest{Id: "prod_grinder"}))
	if err != nil {
		return fmt.Errorf("GetProduct: %w", err)
	}
	if got := product.Msg.GetProduct().GetSku(); got != "GRND-HAND-01" {
		return fmt.Errorf("GetProduct: sku %q", got)
	}
	page, err := catalog.ListProducts(ctx, connect.NewRequest(&catalogv1.ListProductsRequest{PageSize: 4, Query: "beans"}))
	if err != nil {
		return fmt.Errorf("ListProducts: %w", err)
	}
	if n := len(page.Msg.GetProducts()); n != 3 {
		return fmt.Errorf("ListProducts: %d products, want 3", n)
	}
	_, err = catalog.GetProduct(ctx, connect.NewRequest(&catalogv1.GetProductRequest{Id: "no-such-product"}))
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeNotFound {
		return fmt.Errorf("GetProduct of an unknown id: %v, want not_found", err)
	}
	return nil
}
