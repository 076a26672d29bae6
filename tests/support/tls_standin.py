#!/usr/bin/env python3
"""An https stand-in for tests/test_https_client.c, on 127.0.0.1 only.

Usage: tls_standin.py CERT KEY. Prints the port it listens on, then serves (HTTP/1.1, keep-alive)
until killed:
  POST /echo           the body back, with Content-Length
  POST /echo-chunked   the body back, chunked (in pieces)
  GET  /chunked        "hello world", chunked
  GET  /conn           the number of the TLS connection this request came on (1, 2, ...)
  GET  /close          "bye" with Connection: close
  GET  /big/N          N bytes of 'x'
  POST /rpc            JSON-RPC: eth_chainId answers 0x7a69 (31337); single calls or batches
"""
import http.server
import json
import socketserver
import ssl
import sys
import threading

lock = threading.Lock()
connections = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        self.request = self.server.ctx.wrap_socket(self.request, server_side=True)
        with lock:
            connections += 1
            self.conn_no = connections
        super().setup()

    def log_message(self, *args):
        pass

    def reply(self, body, chunked=False, close=False, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = max(1, len(body) // 3)
            for i in range(0, len(body), step):
                piece = body[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/chunked":
            self.reply(b"hello world", chunked=True)
        elif self.path == "/conn":
            self.reply(str(self.conn_no).encode())
        elif self.path == "/close":
            self.reply(b"bye", close=True)
        elif self.path.startswith("/big/"):
            self.reply(b"x" * int(self.path[5:]))
        else:
            self.reply(b"not found", status=404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/echo":
            self.reply(body)
        elif self.path == "/echo-chunked":
            self.reply(body, chunked=True)
        elif self.path == "/rpc":
            calls = json.loads(body)

            def answer(call):
                if call.get("method") == "eth_chainId":
                    return {"jsonrpc": "2.0", "id": call.get("id"), "result": "0x7a69"}
                return {"jsonrpc": "2.0", "id": call.get("id"),
                        "error": {"code": -32601, "message": "method not found"}}
            out = [answer(c) for c in calls] if isinstance(calls, list) else answer(calls)
            self.reply(json.dumps(out).encode())
        else:
            self.reply(b"not found", status=404)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # refused handshakes are expected in the tests


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    server = Server(("127.0.0.1", 0), Handler)
    server.ctx = ctx
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
