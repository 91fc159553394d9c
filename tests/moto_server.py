"""moto server for the tests and scripts/run, as `moto_server` runs it, with one difference:
DynamoDB requests are served one at a time.

DynamoDB applies each request atomically: two transactions touching one item never interleave
(one is cancelled instead). moto serves requests on threads and does not lock its tables, so
two concurrent TransactWriteItems can interleave and lose an update (a counter incremented
twice ends up +1). Serializing DynamoDB requests makes every request atomic, as in DynamoDB;
KMS and SQS keep being served concurrently.

One more: moto backs up every table a transaction touches with a deep copy of the whole
table, so each transaction costs time in proportion to the table (a thousand number
transactions on one provider took minutes). Here a transaction backs up only the items it
touches, and restores them if it is cancelled; with requests serialized that is the same
all-or-nothing.

Usage: moto_server.py HOST PORT
"""

import copy
import signal
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_TARGET_PREFIX = "DynamoDB_"


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a table is not copied
    (the transaction wrapper below backs up the items instead); anything else is."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_original_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    backups = []
    try:
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                key = {name: op["Item"][name] for name in names}
            else:
                key = op["Key"]
            current = self.get_item(table_name, key)
            backups.append((table_name, key, None if current is None else current.to_json()["Attributes"]))
    except Exception:
        # Malformed: let moto answer it as it does.
        return _original_transact_write_items(self, transact_items)
    try:
        return _original_transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, attributes in reversed(backups):
            if attributes is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, copy.deepcopy(attributes))
        raise


dynamodb_models.copy = _TablesNotCopied
DynamoDBBackend.transact_write_items = _transact_write_items


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
