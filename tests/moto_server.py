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

And a third: moto answers a Query on the table's key by sorting every item of the table and
keeping those of the queried partition, so each Query costs time in proportion to the whole
table (the hourly-job benchmark, 2,000 providers, crawled at a dozen requests a second). Here
it sorts just that partition, which is what it keeps anyway.

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


_original_query = Table.query
_original_all_items = Table.all_items


def _query(self, hash_key, *args, **kwargs):
    # A query on an index walks the index's items, not the table's partition.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    on_table = index_name is None
    self._queried_partition = hash_key if on_table else None
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        self._queried_partition = None


def _all_items(self):
    partition = getattr(self, "_queried_partition", None)
    if partition is not None and self.range_key_attr:
        items = self.items.get(partition, {})
        return sorted(items.values(), key=lambda x: (x.hash_key, x.range_key))
    return _original_all_items(self)


dynamodb_models.copy = _TablesNotCopied
DynamoDBBackend.transact_write_items = _transact_write_items
Table.query = _query
Table.all_items = _all_items


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
