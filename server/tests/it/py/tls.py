"""Kinesis over TLS with the server's self-signed certificate: boto3 trusts
it through verify=, and refuses the server without it.

Usage: tls.py https://localhost:PORT <data dir>/tls/cert.pem
"""

import sys

import boto3
from botocore.exceptions import SSLError

from common import client, done, read_shard, wait_active

endpoint, ca = sys.argv[1], sys.argv[2]
assert endpoint.startswith("https://localhost:"), endpoint


k = client(endpoint, verify=ca)
k.create_stream(StreamName="secure", ShardCount=1)
wait_active(k, "secure")
put = k.put_records(
    StreamName="secure",
    Records=[{"Data": f"r{i}".encode(), "PartitionKey": "p"} for i in range(3)],
)
assert put["FailedRecordCount"] == 0, put
one = k.put_record(StreamName="secure", Data=b"last", PartitionKey="p")
iterator = k.get_shard_iterator(
    StreamName="secure", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
)["ShardIterator"]
records, _ = read_shard(k, iterator)
assert [r["Data"] for r in records] == [b"r0", b"r1", b"r2", b"last"], records
assert records[-1]["SequenceNumber"] == one["SequenceNumber"]

# Kinesis Video hands out URLs on the scheme the request came over: the
# data endpoint and an HLS session over TLS are https, and play.
video = boto3.client("kinesisvideo", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="runnel", aws_secret_access_key="runnel", verify=ca)
video.create_stream(StreamName="cam", DataRetentionInHours=1)
data_endpoint = video.get_data_endpoint(StreamName="cam", APIName="GET_HLS_STREAMING_SESSION_URL")["DataEndpoint"]
assert data_endpoint == endpoint, data_endpoint
archive = boto3.client("kinesis-video-archived-media", endpoint_url=data_endpoint, region_name="us-east-1",
                       aws_access_key_id="runnel", aws_secret_access_key="runnel", verify=ca)
try:
    archive.get_hls_streaming_session_url(StreamName="cam", PlaybackMode="LIVE")
except archive.exceptions.ResourceNotFoundException:
    pass  # no fragments yet: what matters here is the data endpoint's scheme

# The default trust store does not know the certificate.
try:
    client(endpoint, verify=True).list_streams()
except SSLError as e:
    assert "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e), e
else:
    raise AssertionError("an unverified certificate was accepted")

done()
