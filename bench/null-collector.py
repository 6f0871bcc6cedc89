"""An OTLP/HTTP collector that takes spans and forgets them: the far end of
a traced benchmark, so that only the server's own work is measured.

    python3 bench/null-collector.py 19391   # then OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:19391
"""

import http.server
import sys


class TakeAndForget(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    address = ("127.0.0.1", int(sys.argv[1]))
    http.server.ThreadingHTTPServer(address, TakeAndForget).serve_forever()
