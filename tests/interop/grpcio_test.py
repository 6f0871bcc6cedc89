"""Calls the running catalog with Python's grpcio: unary, errors, a stream
and the standard health service. Run by tests/interop/run.sh."""

import os
import sys
import unittest

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen", "python"))
from shop.catalog.v1 import catalog_pb2, catalog_pb2_grpc  # noqa: E402

ADDRESS = os.environ.get("CATALOG_ADDR", "127.0.0.1:8082")


class CatalogOverGrpcio(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(ADDRESS)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def test_get_and_list_products(self):
        answer = self.catalog.GetProduct(catalog_pb2.GetProductRequest(id="prod_grinder"), timeout=5)
        self.assertEqual(answer.product.sku, "GRND-HAND-01")
        self.assertEqual(answer.product.price.minor_units, 8900)
        page = self.catalog.ListProducts(catalog_pb2.ListProductsRequest(page_size=4, query="beans"), timeout=5)
        self.assertEqual(len(page.products), 3)

    def test_unknown_product_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.catalog.GetProduct(catalog_pb2.GetProductRequest(id="nope"), timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_bad_page_token_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.catalog.ListProducts(catalog_pb2.ListProductsRequest(page_token="garbage!"), timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("page_token", caught.exception.details())

    def test_watch_stock_until_the_deadline(self):
        stream = self.catalog.WatchStock(catalog_pb2.WatchStockRequest(product_ids=["prod_mug"]), timeout=0.5)
        first = next(stream)
        self.assertEqual(first.product_id, "prod_mug")
        with self.assertRaises(grpc.RpcError) as caught:
            for _ in stream:
                pass
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_health_check(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "shop.catalog.v1.CatalogService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(answer.status, health_pb2.HealthCheckResponse.SERVING, service)


if __name__ == "__main__":
    unittest.main(verbosity=2)
