"""Signed requests against a server with access keys (`auth.rs` writes its
config): boto3 and the aws CLI with the right key, a wrong secret, an
unknown key, a skewed clock, no signature at all; a read-only policy; a
source-IP condition; a key of another account that only a stream's
resource policy lets in; presigned URLs in and past their expiry; console
sessions; `/metrics` with Basic; and the audit log of it all.

argv: endpoint, audit log path."""

import base64
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.config
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from common import done

endpoint, audit_path = sys.argv[1], sys.argv[2]
KEYS = {
    "alice": ("AKIAALICE", "alice-secret"),
    "reader": ("AKIAREADER", "reader-secret"),
    "office": ("AKIAOFFICE", "office-secret"),
    "local": ("AKIALOCAL", "local-secret"),
    "partner": ("AKIAPARTNER", "partner-secret"),
}
ACCOUNT = "000000000000"


def aws(service, who=None, key=None):
    key_id, secret = key or KEYS[who]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=30),
    )


def refused(call, **kwargs):
    """(code, message, status) of a call that must fail."""
    try:
        call(**kwargs)
    except ClientError as e:
        error = e.response["Error"]
        return error["Code"], error.get("Message", ""), e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} should have been refused")


def http(method, path, headers=None, body=None):
    """(status, headers, body) of a plain request."""
    request = urllib.request.Request(endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def presigned(who, method, path, service, expires, headers=None, body=b""):
    key_id, secret = KEYS[who]
    request = AWSRequest(method=method, url=endpoint + path, headers=headers or {}, data=body)
    botocore.auth.SigV4QueryAuth(Credentials(key_id, secret), service, "us-east-1", expires=expires).add_auth(request)
    return request.url


alice = aws("kinesis", "alice")
alice.create_stream(StreamName="orders", ShardCount=1)
alice.get_waiter("stream_exists").wait(StreamName="orders", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
alice.put_record(StreamName="orders", Data=b"first", PartitionKey="k")
shard = alice.list_shards(StreamName="orders")["Shards"][0]["ShardId"]
iterator = alice.get_shard_iterator(StreamName="orders", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
assert [r["Data"] for r in alice.get_records(ShardIterator=iterator)["Records"]] == [b"first"]

# Who: a wrong secret, an unknown key, no signature, a clock 10 minutes off.
code, message, status = refused(aws("kinesis", key=("AKIAALICE", "wrong")).list_streams)
assert (code, status) == ("InvalidSignatureException", 400), (code, message, status)
assert "signature we calculated does not match" in message, message
code, message, status = refused(aws("kinesis", key=("AKIANOBODY", "x")).list_streams)
assert (code, status) == ("UnrecognizedClientException", 400), (code, message, status)
status, _, body = http(
    "POST", "/", {"X-Amz-Target": "Kinesis_20131202.ListStreams", "Content-Type": "application/x-amz-json-1.1"}, b"{}"
)
assert status == 400 and json.loads(body)["__type"] == "MissingAuthenticationTokenException", (status, body)
real_now = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real_now() - datetime.timedelta(minutes=10)
try:
    code, message, status = refused(alice.list_streams)
finally:
    botocore.auth.get_current_datetime = real_now
assert code == "InvalidSignatureException" and message.startswith("Signature expired:"), (code, message)

# What: a read-only policy reads and may not write.
reader = aws("kinesis", "reader")
assert "orders" in reader.list_streams()["StreamNames"]
reader.describe_stream_summary(StreamName="orders")
code, message, status = refused(reader.put_record, StreamName="orders", Data=b"x", PartitionKey="k")
assert code == "AccessDeniedException" and status == 400, (code, message, status)
assert message == (
    f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: kinesis:PutRecord "
    f"on resource: arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders because no identity-based "
    "policy allows the kinesis:PutRecord action"
), message
code, _, _ = refused(reader.delete_stream, StreamName="orders")
assert code == "AccessDeniedException", code
code, _, _ = refused(aws("firehose", "reader").list_delivery_streams)
assert code == "AccessDeniedException", code
aws("firehose", "alice").list_delivery_streams()
code, _, status = refused(aws("kinesisvideo", "reader").list_streams)
assert (code, status) == ("AccessDeniedException", 401), (code, status)
assert aws("kinesisvideo", "alice").list_streams()["StreamInfoList"] == []

# Where: a policy that allows only callers from 10.0.0.0/8 refuses
# 127.0.0.1; one that allows loopback lets it in.
code, message, _ = refused(aws("kinesis", "office").list_streams)
assert code == "AccessDeniedException", (code, message)
assert "orders" in aws("kinesis", "local").list_streams()["StreamNames"]

# Another account: nothing without the stream's resource policy, then what
# the policy grants and no more.
partner = aws("kinesis", "partner")
stream_arn = alice.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
code, message, _ = refused(partner.describe_stream_summary, StreamARN=stream_arn)
assert code == "AccessDeniedException" and "no resource-based policy allows" in message, message
alice.put_resource_policy(
    ResourceARN=stream_arn,
    Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": ["kinesis:DescribeStreamSummary", "kinesis:GetShardIterator", "kinesis:GetRecords"],
            "Resource": stream_arn,
        }],
    }),
)
partner.describe_stream_summary(StreamARN=stream_arn)
iterator = partner.get_shard_iterator(StreamARN=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
assert partner.get_records(ShardIterator=iterator, StreamARN=stream_arn)["Records"][0]["Data"] == b"first"
code, _, _ = refused(partner.put_record, StreamARN=stream_arn, Data=b"x", PartitionKey="k")
assert code == "AccessDeniedException", code

# Presigned URLs: good within their expiry, refused past it.
status, _, body = http("GET", presigned("alice", "GET", "/v1/jobs", "runnel", 60)[len(endpoint):])
assert status == 200, (status, body)
target = {"X-Amz-Target": "Kinesis_20131202.ListStreams", "Content-Type": "application/x-amz-json-1.1"}
url = presigned("alice", "POST", "/", "kinesis", 60, headers=target)
status, _, body = http("POST", url[len(endpoint):], target)
assert status == 200 and "orders" in json.loads(body)["StreamNames"], (status, body)
url = presigned("alice", "GET", "/v1/jobs", "runnel", 1)
time.sleep(2.1)
status, _, body = http("GET", url[len(endpoint):])
assert status == 401 and json.loads(body)["__type"] == "InvalidSignatureException", (status, body)
assert json.loads(body)["message"].startswith("Signature expired"), body

# Runnel's own API: signed, or a console session; /metrics also with Basic.
status, _, body = http("GET", "/v1/jobs")
assert status == 401 and json.loads(body)["__type"] == "MissingAuthenticationTokenException", (status, body)
assert http("GET", "/v1/health")[0] == 200
status, _, _ = http("POST", "/v1/console/session", {"Content-Type": "application/json"},
                    json.dumps({"access_key_id": "AKIAALICE", "secret_access_key": "nope"}).encode())
assert status == 401, status
status, headers, body = http("POST", "/v1/console/session", {"Content-Type": "application/json"},
                             json.dumps({"access_key_id": "AKIAALICE", "secret_access_key": "alice-secret"}).encode())
assert status == 200 and json.loads(body)["principal"] == "alice", (status, body)
cookie = headers["Set-Cookie"].split(";")[0]
assert "HttpOnly" in headers["Set-Cookie"], headers["Set-Cookie"]
assert http("GET", "/v1/jobs", {"Cookie": cookie})[0] == 200
assert json.loads(http("GET", "/v1/console/session", {"Cookie": cookie})[2])["principal"] == "alice"
status, _, body = http("POST", "/", dict(target, Cookie=cookie), b"{}")
assert status == 200 and "orders" in json.loads(body)["StreamNames"], (status, body)
assert http("DELETE", "/v1/console/session", {"Cookie": cookie})[0] == 204
assert http("GET", "/v1/jobs", {"Cookie": cookie})[0] == 401
basic = base64.b64encode(b"AKIAALICE:alice-secret").decode()
assert http("GET", "/metrics", {"Authorization": "Basic " + basic})[0] == 200
assert http("GET", "/metrics")[0] == 401

# The aws CLI, as users run it.
env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIAALICE", AWS_SECRET_ACCESS_KEY="alice-secret",
           AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
out = subprocess.run(["aws", "--endpoint-url", endpoint, "kinesis", "list-streams"],
                     env=env, capture_output=True, text=True, timeout=120)
assert out.returncode == 0 and "orders" in out.stdout, out
env["AWS_SECRET_ACCESS_KEY"] = "wrong"
out = subprocess.run(["aws", "--endpoint-url", endpoint, "kinesis", "list-streams"],
                     env=env, capture_output=True, text=True, timeout=120)
assert out.returncode != 0 and "InvalidSignatureException" in out.stderr, out

# The audit log: the denial and the writes, who and what.
with open(audit_path) as f:
    lines = [json.loads(line) for line in f]
denied = [l for l in lines if l["action"] == "kinesis:PutRecord" and not l["allowed"]]
assert any(l["principal"] == "reader" and l["resource"].endswith(":stream/orders") for l in denied), lines
assert any(l["principal"] == "alice" and l["action"] == "kinesis:CreateStream" and l["allowed"] for l in lines), lines
assert not any(l["action"] == "kinesis:ListStreams" and l["allowed"] for l in lines), "reads are not audited"
assert any(l["principal"] == "office" and not l["allowed"] and l["source_ip"] == "127.0.0.1" for l in lines), lines

done()
