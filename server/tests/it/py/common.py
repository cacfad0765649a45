"""Shared helpers for the boto3 end-to-end scripts: a Kinesis client aimed at
the server under test, and bounded polling."""

import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
from botocore.exceptions import ClientError


def client(endpoint=None, verify=None):
    """`verify`: a CA bundle to trust over TLS (None: the system's), or
    True/False, as boto3 takes it."""
    endpoint = endpoint or sys.argv[1]
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="runnel",
        aws_secret_access_key="runnel",
        verify=verify,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def video_client(service, endpoint=None, read_timeout=60):
    """A Kinesis Video Streams client (`kinesisvideo`, `kinesis-video-media`
    or `kinesis-video-archived-media`) aimed at the server under test; the
    read timeout bounds each wait for bytes of a live GetMedia."""
    return boto3.client(
        service,
        endpoint_url=endpoint or sys.argv[1],
        region_name="us-east-1",
        aws_access_key_id="runnel",
        aws_secret_access_key="runnel",
        config=botocore.config.Config(
            retries={"max_attempts": 1}, connect_timeout=10, read_timeout=read_timeout
        ),
    )


def error_of(call, *args, **kwargs):
    """Runs a call that must fail; returns (code, message, http status)."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        err = e.response["Error"]
        return err["Code"], err.get("Message", ""), e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} should have failed")


def expect_error(code, call, *args, **kwargs):
    got, message, status = error_of(call, *args, **kwargs)
    assert got == code, f"expected {code}, got {got}: {message}"
    assert status == (500 if code == "InternalFailure" else 400), status
    return message


def read_shard(kinesis, iterator, limit=10000, max_calls=1000):
    """Reads from an iterator until it is caught up (or the shard ends)."""
    records = []
    for _ in range(max_calls):
        out = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        records.extend(out["Records"])
        iterator = out.get("NextShardIterator")
        if iterator is None or (not out["Records"] and out["MillisBehindLatest"] == 0):
            return records, out
    raise AssertionError("shard did not drain")


def wait_active(kinesis, name):
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )


def done():
    """Says the script's checks ran: the Rust side requires this line, and
    it is printed only when `assert` statements are executed (not under
    PYTHONOPTIMIZE, which would skip every check)."""
    checked = []
    assert checked.append(True) is None
    if not checked:
        sys.exit("assertions are turned off (PYTHONOPTIMIZE?): nothing was checked")
    print("ok:", os.path.basename(sys.argv[0]))


def raw(op, body, endpoint=None, target="Kinesis_20131202"):
    """Sends a request boto3 would refuse to send (it checks minimums
    itself); returns (status, decoded JSON body)."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        endpoint or sys.argv[1],
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": f"{target}.{op}",
            "Content-Type": "application/x-amz-json-1.1",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def runnel_api(endpoint, method, path, body=None):
    """A request to Runnel's own `/v1` API: (status, the JSON answer)."""
    request = urllib.request.Request(
        endpoint + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
