"""moto server for the tests and scripts/run, as `moto_server` runs it, with one difference:
DynamoDB requests are served one at a time.

DynamoDB applies each request atomically: two transactions touching one item never interleave
(one is cancelled instead). moto serves requests on threads and does not lock its tables, so
two concurrent TransactWriteItems can interleave and lose an update (a counter incremented
twice ends up +1). Serializing DynamoDB requests makes every request atomic, as in DynamoDB;
KMS and SQS keep being served concurrently.

Usage: moto_server.py HOST PORT
"""

import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_TARGET_PREFIX = "DynamoDB_"


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    backend = DomainDispatcherApplication(create_backend_app)
    dynamodb_lock = threading.Lock()

    def app(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET_PREFIX):
            with dynamodb_lock:
                # The whole body is produced under the lock: the request is done when it is released.
                return [b"".join(backend(environ, start_response))]
        return backend(environ, start_response)

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
