"""The web console in headless Chromium (Debian's), driven by Playwright
(`../js/console_browser.mjs`). This script puts what the pages should
show that a browser cannot make itself: 10 s of H.264 video (made by
ffmpeg, put with PutMedia), a camera putting live video as the browser
joins it, and a delivery stream that delivers objects; the browser does
the rest through the console. Then it checks that every page left a
screenshot, a PNG.

argv: endpoint, node_modules dir holding playwright-core, screenshot dir."""

import json
import os
import sys
import tempfile
import threading
import time

import boto3
import botocore.config

from common import done, video_client
from console_common import check_browser, run_browser_script
from video_common import (
    PutMedia, check_acks, create_stream, make_mkv, parse_source, put_media, wait_for, watchdog,
)

watchdog(300)
endpoint, modules, shots = sys.argv[1], sys.argv[2], sys.argv[3]
CAMERA = "console-cam"
LIVE = "console-live"
DELIVERY = "console-delivery"
PAGES = ["streams", "stream", "jobs", "job", "firehose", "video", "video-live"]
check_browser(modules)
tmp = tempfile.TemporaryDirectory()

# --- 10 s of video, five fragments of 2 s, for the timeline and playback.
kv = video_client("kinesisvideo")
create_stream(kv, CAMERA)
put_url = kv.get_data_endpoint(StreamName=CAMERA, APIName="PUT_MEDIA")["DataEndpoint"]
start = int(time.time()) - 60
data = make_mkv(os.path.join(tmp.name, "cam.mkv"), 10, offset=start)
check_acks(put_media(put_url, data, name=CAMERA), [start * 1000 + 2000 * i for i in range(5)])

# --- a delivery stream that delivers at once, into the data dir's bucket.
firehose = boto3.client(
    "firehose", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="runnel",
    aws_secret_access_key="runnel", config=botocore.config.Config(retries={"max_attempts": 1}),
)
firehose.create_delivery_stream(
    DeliveryStreamName=DELIVERY,
    ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::000000000000:role/firehose",
        "BucketARN": "arn:aws:s3:::console-bucket",
        "Prefix": "events/",
        "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    },
)
assert wait_for(
    lambda: firehose.describe_delivery_stream(DeliveryStreamName=DELIVERY)["DeliveryStreamDescription"][
        "DeliveryStreamStatus"] == "ACTIVE", 10, interval=0.1,
), "the delivery stream is not ACTIVE"
firehose.put_record_batch(
    DeliveryStreamName=DELIVERY, Records=[{"Data": json.dumps({"n": n}).encode() + b"\n"} for n in range(20)],
)

# --- a camera that puts 90 s, each 2 s Cluster once its time has come,
# for as long as the browser runs.
create_stream(kv, LIVE)
live_start = int(time.time()) - 3
live_data = make_mkv(os.path.join(tmp.name, "live.mkv"), 90, offset=live_start)
live_source = parse_source(live_data)
live = PutMedia(put_url, {"x-amzn-stream-name": LIVE, "x-amzn-fragment-timecode-type": "ABSOLUTE",
                          "x-amzn-fragment-acknowledgment-required": "1"})
stop = threading.Event()


def produce():
    clock = time.monotonic()
    live.send(live_data[: live_source["first_cluster"]])
    for i, cluster in enumerate(live_source["clusters"]):
        if stop.wait(max(0.0, clock + 2 * i - time.monotonic())):
            return
        if not live.send(live_data[cluster["start"] : cluster["end"]]):
            return
    live.finish()


producer = threading.Thread(target=produce, daemon=True)
producer.start()
assert live.wait(lambda p: len(p.acks("PERSISTED")) >= 2, 20), f"live producer: {live.describe()}"

# --- the browser.
try:
    run_browser_script("console_browser.mjs", modules, [endpoint, shots, DELIVERY, CAMERA, LIVE], timeout=240)
finally:
    stop.set()
    producer.join(10)
    live.close()
assert not live.acks("ERROR"), f"live producer's ERROR acks: {live.acks('ERROR')}"

for page in PAGES:
    path = os.path.join(shots, f"{page}.png")
    assert os.path.exists(path), f"no screenshot of the {page} page in {shots}"
    with open(path, "rb") as f:
        png = f.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000, f"{path} is not a PNG of a page ({len(png)} bytes)"
print(f"screenshots in {shots}")
done()
