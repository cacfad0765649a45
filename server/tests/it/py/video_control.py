"""The Kinesis Video Streams control plane through boto3 `kinesisvideo`:
streams, versions, retention, data endpoints, both tag APIs, and errors
with the codes and HTTP statuses botocore's model gives them."""

import datetime
import re
import sys
import time

from common import done, video_client
from video_common import create_stream, expect_client_error, raw_post, wait_for, watchdog

watchdog(120)
endpoint = sys.argv[1]
kv = video_client("kinesisvideo")
before = time.time()

# Create, then describe by name and by ARN.
arn = kv.create_stream(
    StreamName="cam-1",
    DeviceName="front-door",
    MediaType="video/h264",
    DataRetentionInHours=24,
    Tags={"site": "home", "floor": "1"},
)["StreamARN"]
match = re.fullmatch(r"arn:aws:kinesisvideo:us-east-1:(\d{12}):stream/cam-1/(\d{13})", arn)
assert match, f"StreamARN {arn}"
created_ms = int(match.group(2))
assert before * 1000 - 1000 <= created_ms <= time.time() * 1000 + 1000, f"ARN time {created_ms}, test began {before}"
expect_client_error(kv, "ResourceInUseException", kv.create_stream, StreamName="cam-1")

info = {}
assert wait_for(lambda: info.update(kv.describe_stream(StreamName="cam-1")["StreamInfo"]) or info["Status"] == "ACTIVE", 10), info
assert info["StreamName"] == "cam-1" and info["StreamARN"] == arn, info
assert info["DeviceName"] == "front-door", info
assert info["MediaType"] == "video/h264", info
assert info["DataRetentionInHours"] == 24, info
assert isinstance(info.get("KmsKeyId"), str) and info["KmsKeyId"], f"no default KmsKeyId: {info}"
assert info["Version"] and re.fullmatch(r"[a-zA-Z0-9]{1,64}", info["Version"]), info
created = info["CreationTime"]
assert isinstance(created, datetime.datetime), info
assert abs(created.timestamp() * 1000 - created_ms) < 1000, f"CreationTime {created}, ARN says {created_ms}"
assert kv.describe_stream(StreamARN=arn)["StreamInfo"] == info

# A stream with its own key; and the defaults of a bare create.
kv.create_stream(StreamName="cam-2", KmsKeyId="arn:aws:kms:us-east-1:000000000000:key/abc")
assert kv.describe_stream(StreamName="cam-2")["StreamInfo"]["KmsKeyId"] == "arn:aws:kms:us-east-1:000000000000:key/abc"
bare = kv.describe_stream(StreamName="cam-2")["StreamInfo"]
assert bare["DataRetentionInHours"] == 0, f"retention defaults to 0: {bare}"

# Listing: pages, and a name prefix.
for name in ("door-1", "door-2", "yard"):
    kv.create_stream(StreamName=name, DataRetentionInHours=1)
page = kv.list_streams(MaxResults=2)
assert len(page["StreamInfoList"]) == 2 and page.get("NextToken"), page
names = [s["StreamName"] for s in page["StreamInfoList"]]
for _ in range(10):
    if not page.get("NextToken"):
        break
    page = kv.list_streams(MaxResults=2, NextToken=page["NextToken"])
    assert len(page["StreamInfoList"]) <= 2, page
    names += [s["StreamName"] for s in page["StreamInfoList"]]
assert sorted(names) == ["cam-1", "cam-2", "door-1", "door-2", "yard"], f"pages listed {names}"
everything = kv.list_streams()["StreamInfoList"]
assert len(everything) == 5 and "NextToken" not in kv.list_streams(), everything
listed = [s for s in everything if s["StreamName"] == "cam-1"][0]
assert listed == info, f"ListStreams says {listed}, DescribeStream {info}"
doors = kv.list_streams(StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "door"})
assert sorted(s["StreamName"] for s in doors["StreamInfoList"]) == ["door-1", "door-2"], doors
none = kv.list_streams(StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "zzz"})
assert none["StreamInfoList"] == [], none

# UpdateStream: guarded by the version, which then changes.
version = info["Version"]
kv.update_stream(StreamName="cam-1", CurrentVersion=version, DeviceName="back-door", MediaType="video/h265")
updated = kv.describe_stream(StreamName="cam-1")["StreamInfo"]
assert updated["DeviceName"] == "back-door" and updated["MediaType"] == "video/h265", updated
assert updated["Version"] != version, f"the version did not change: {updated}"
assert updated["CreationTime"] == created and updated["StreamARN"] == arn, updated
expect_client_error(kv, "VersionMismatchException", kv.update_stream,
                    StreamName="cam-1", CurrentVersion=version, DeviceName="x")
kv.update_stream(StreamARN=arn, CurrentVersion=updated["Version"], MediaType="video/h264")
assert kv.describe_stream(StreamName="cam-1")["StreamInfo"]["MediaType"] == "video/h264"


def current_version(name):
    return kv.describe_stream(StreamName=name)["StreamInfo"]["Version"]


# UpdateDataRetention: up, down, never below 0, guarded by the version.
kv.update_data_retention(StreamName="cam-1", CurrentVersion=current_version("cam-1"),
                         Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=24)
assert kv.describe_stream(StreamName="cam-1")["StreamInfo"]["DataRetentionInHours"] == 48
kv.update_data_retention(StreamARN=arn, CurrentVersion=current_version("cam-1"),
                         Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=12)
assert kv.describe_stream(StreamName="cam-1")["StreamInfo"]["DataRetentionInHours"] == 36
expect_client_error(kv, "InvalidArgumentException", kv.update_data_retention, StreamName="cam-1",
                    CurrentVersion=current_version("cam-1"), Operation="DECREASE_DATA_RETENTION",
                    DataRetentionChangeInHours=37)
expect_client_error(kv, "VersionMismatchException", kv.update_data_retention, StreamName="cam-1",
                    CurrentVersion=version, Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=1)
assert kv.describe_stream(StreamName="cam-1")["StreamInfo"]["DataRetentionInHours"] == 36

# GetDataEndpoint: this server, for every API.
for api in ("PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_MEDIA_FOR_FRAGMENT_LIST",
            "GET_HLS_STREAMING_SESSION_URL", "GET_DASH_STREAMING_SESSION_URL", "GET_CLIP", "GET_IMAGES"):
    url = kv.get_data_endpoint(StreamName="cam-1", APIName=api)["DataEndpoint"]
    assert url.rstrip("/") == endpoint.rstrip("/"), f"{api}: DataEndpoint {url}, expected {endpoint}"
assert kv.get_data_endpoint(StreamARN=arn, APIName="GET_MEDIA")["DataEndpoint"].rstrip("/") == endpoint.rstrip("/")
expect_client_error(kv, "ResourceNotFoundException", kv.get_data_endpoint, StreamName="nope", APIName="GET_MEDIA")
status, _, body = raw_post(endpoint, "/getDataEndpoint", {"StreamName": "cam-1", "APIName": "NOPE"})
assert status == 400 and body.get("__type", "").rsplit("#", 1)[-1] == "InvalidArgumentException", (status, body)

# Tags by stream (a map) and by resource (a list of pairs): one tag set.
assert kv.list_tags_for_stream(StreamName="cam-1")["Tags"] == {"site": "home", "floor": "1"}
kv.tag_stream(StreamName="cam-1", Tags={"owner": "me", "floor": "2"})
kv.untag_stream(StreamARN=arn, TagKeyList=["site"])
assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"owner": "me", "floor": "2"}
kv.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "test"}])
kv.untag_resource(ResourceARN=arn, TagKeyList=["owner"])
assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"floor": "2", "env": "test"}
assert kv.list_tags_for_stream(StreamName="cam-1")["Tags"] == {"floor": "2", "env": "test"}
expect_client_error(kv, "TagsPerResourceExceededLimitException", kv.tag_stream, StreamName="cam-1",
                    Tags={f"k{i}": "v" for i in range(49)})
assert kv.list_tags_for_stream(StreamName="cam-1")["Tags"] == {"floor": "2", "env": "test"}, "a refused tag call changes nothing"
expect_client_error(kv, "ResourceNotFoundException", kv.list_tags_for_stream, StreamName="nope")

# Errors: unknown streams (404), names the model forbids (botocore does
# not check patterns or maximum lengths, the server must).
unknown_arn = "arn:aws:kinesisvideo:us-east-1:000000000000:stream/nope/1700000000000"
expect_client_error(kv, "ResourceNotFoundException", kv.describe_stream, StreamName="nope")
expect_client_error(kv, "ResourceNotFoundException", kv.describe_stream, StreamARN=unknown_arn)
expect_client_error(kv, "ResourceNotFoundException", kv.delete_stream, StreamARN=unknown_arn)
expect_client_error(kv, "ResourceNotFoundException", kv.update_stream, StreamName="nope", CurrentVersion="1")
expect_client_error(kv, "ResourceNotFoundException", kv.tag_resource, ResourceARN=unknown_arn,
                    Tags=[{"Key": "a", "Value": "b"}])
expect_client_error(kv, "InvalidArgumentException", kv.create_stream, StreamName="has space")
expect_client_error(kv, "InvalidArgumentException", kv.create_stream, StreamName="x" * 257)
status, headers, body = raw_post(endpoint, "/describeStream", {"StreamName": "nope"})
assert status == 404, (status, body)
error_type = {k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype", "")
assert error_type.split(":")[0] == "ResourceNotFoundException", f"x-amzn-ErrorType {error_type!r}"
assert body.get("__type", "").rsplit("#", 1)[-1] == "ResourceNotFoundException", body
assert isinstance(body.get("message"), str) and body["message"], body

# Delete: guarded by the version when one is given.
expect_client_error(kv, "VersionMismatchException", kv.delete_stream, StreamARN=arn, CurrentVersion=version)
kv.describe_stream(StreamName="cam-1")
kv.delete_stream(StreamARN=arn, CurrentVersion=current_version("cam-1"))


def gone(name):
    try:
        status = kv.describe_stream(StreamName=name)["StreamInfo"]["Status"]
    except kv.exceptions.ResourceNotFoundException:
        return True
    assert status == "DELETING", f"{name} is {status} after DeleteStream"
    return False


assert wait_for(lambda: gone("cam-1"), 10), "cam-1 still there"
cam2 = kv.describe_stream(StreamName="cam-2")["StreamInfo"]["StreamARN"]
kv.delete_stream(StreamARN=cam2)
assert wait_for(lambda: gone("cam-2"), 10), "cam-2 still there"
assert sorted(s["StreamName"] for s in kv.list_streams()["StreamInfoList"]) == ["door-1", "door-2", "yard"]
expect_client_error(kv, "ResourceNotFoundException", kv.get_data_endpoint, StreamName="cam-1", APIName="PUT_MEDIA")

# The name is free again; a new stream gets a new ARN.
again = create_stream(kv, "cam-1")
assert again != arn, f"re-created stream reuses the ARN {arn}"
done()
