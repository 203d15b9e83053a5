"""moto in server mode, with the conditional writes teal's ledgers rely on made
faithful. Run as `python moto_server.py -H 127.0.0.1 -p PORT` (moto_server's
own arguments).

teal's mutual exclusion rests on two atomic compare-and-set primitives, and
moto 5.2.5 models neither the way AWS does:

- Route 53 `ChangeResourceRecordSets`: AWS applies a change batch atomically
  and refuses it whole (InvalidChangeBatch) when a DELETE names values that
  are not the record set's current ones, or a CREATE names a record set that
  exists. moto accepts a DELETE of any values the record set ever had (it
  checks its change journal) and a CREATE over an existing set, so two writers
  that read the same TXT record both "win".
- DynamoDB `PutItem` with a ConditionExpression: moto evaluates the condition
  and then writes, in two steps with no lock between them, while moto_server
  answers requests on several threads. AWS makes the pair atomic.

Patched here, and nothing else: Route 53 change batches are checked against
the zone's current record sets (name, type, set identifier, TTL, values, all
under one lock with the apply), and DynamoDB's condition-and-write is done
under one lock. Every other call is moto's, unchanged. Not modelled: Route 53
change propagation (moto reports INSYNC at once), and DynamoDB's eventual
consistency for reads that do not ask for ConsistentRead (teal always asks).
"""

import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.route53 import exceptions as r53_errors
from moto.route53.models import Route53Backend
from moto.server import main

_lock = threading.RLock()


class _ValuesDoNotMatch(r53_errors.Route53ClientError):
    def __init__(self, name, rtype):
        super().__init__(
            "InvalidChangeBatch",
            f"[Tried to delete resource record set [name='{name}', type='{rtype}'] "
            "but the values provided do not match the current values]",
        )


class _NotFound(r53_errors.Route53ClientError):
    def __init__(self, name, rtype):
        super().__init__(
            "InvalidChangeBatch",
            f"[Tried to delete resource record set [name='{name}', type='{rtype}'] "
            "but it was not found]",
        )


def _dot(name):
    return name if name.endswith(".") else name + "."


def _values(records):
    return [r["Value"] if isinstance(r, dict) else r for r in (records or [])]


def _same_set(stored, change):
    return (
        _dot(stored.name) == _dot(change["Name"])
        and stored.type == change.get("Type")
        and (stored.set_identifier or None) == (change.get("SetIdentifier") or None)
    )


def _check_batch(zone, change_list):
    """AWS's rules for a change batch, against the zone's current state."""
    for value in change_list:
        action, rrs = value["Action"], value["ResourceRecordSet"]
        current = [s for s in zone.rrsets if _same_set(s, rrs)]
        if action == "DELETE":
            if not current:
                raise _NotFound(_dot(rrs["Name"]), rrs.get("Type"))
            s = current[0]
            if "ResourceRecords" in rrs and (
                _values(s.records) != _values(rrs["ResourceRecords"])
                or str(s.ttl) != str(rrs.get("TTL"))
            ):
                raise _ValuesDoNotMatch(_dot(rrs["Name"]), rrs.get("Type"))
        elif action == "CREATE" and current:
            # A DELETE of the same set earlier in this batch frees the name.
            deleted_first = any(
                v["Action"] == "DELETE" and _same_set(current[0], v["ResourceRecordSet"])
                for v in change_list[: change_list.index(value)]
            )
            if not deleted_first:
                raise r53_errors.ResourceRecordAlreadyExists(
                    name=_dot(rrs["Name"]), _type=rrs.get("Type")
                )


_change = Route53Backend.change_resource_record_sets


def change_resource_record_sets(self, zoneid, change_list):
    with _lock:
        _check_batch(self.get_hosted_zone(zoneid), change_list)
        return _change(self, zoneid, change_list)


Route53Backend.change_resource_record_sets = change_resource_record_sets

_put_item = DynamoDBBackend.put_item


def put_item(self, *args, **kwargs):
    with _lock:
        return _put_item(self, *args, **kwargs)


DynamoDBBackend.put_item = put_item

if __name__ == "__main__":
    main(sys.argv[1:])
