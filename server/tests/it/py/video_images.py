"""GetImages: pictures decoded from the keyframes of ffmpeg's H.264, at a
sampling interval and a size, as JPEG and PNG, paged; each picture must
look like the frame ffmpeg itself decodes at that time.

argv: endpoint."""

import base64
import math
import os
import subprocess
import sys
import tempfile
import time

from common import done, video_client
from video_common import (
    check_acks, create_stream, expect_client_error, make_mkv, parse_source, put_media, video_clients, watchdog,
)

watchdog(120)
ENDPOINT = sys.argv[1]
kv = video_client("kinesisvideo", ENDPOINT)
create_stream(kv, "cam")
base = int(time.time()) - 600
tmp = tempfile.TemporaryDirectory()
source_path = os.path.join(tmp.name, "cam.mkv")
data = make_mkv(source_path, 10, offset=base)
source = parse_source(data)
put = put_media(ENDPOINT, data, name="cam")
check_acks(put, [c["timecode"] for c in source["clusters"]])
_, archive = video_clients(ENDPOINT, "cam")


def rgb_of(path, width, height, frame=0):
    """Raw RGB pixels of a picture, or of the source's `frame`th frame,
    decoded and scaled by ffmpeg."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-frames:v", "1",
               "-vf", f"select=eq(n\\,{frame}),scale={width}:{height}", "-fps_mode", "passthrough",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    out = subprocess.run(command, capture_output=True, timeout=60)
    assert out.returncode == 0 and len(out.stdout) == width * height * 3, out.stderr.decode(errors="replace")
    return out.stdout


def mean_difference(a, b):
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def images(**kwargs):
    args = dict(StreamName="cam", ImageSelectorType="PRODUCER_TIMESTAMP", Format="JPEG", SamplingInterval=1000)
    args.update(kwargs)
    return archive.get_images(**args)


# One picture a second of the whole put, 320x180 JPEG: a fragment's
# samples come from its one keyframe, at its start.
out = images(StartTimestamp=base, EndTimestamp=base + 9, WidthPixels=320, HeightPixels=180, MaxResults=100)
got = out["Images"]
assert "NextToken" not in out, out.get("NextToken")
assert len(got) == 10, [i.get("Error") for i in got]
for k, image in enumerate(got):
    assert abs(image["TimeStamp"].timestamp() - (base + k)) < 0.002, (k, image["TimeStamp"])
    assert "ImageContent" in image and "Error" not in image, (k, image.get("Error"))
    jpeg = base64.b64decode(image["ImageContent"])
    assert jpeg[:2] == b"\xff\xd8", jpeg[:4]
for k in (0, 3):
    path = os.path.join(tmp.name, f"{k}.jpg")
    with open(path, "wb") as f:
        f.write(base64.b64decode(got[k * 2]["ImageContent"]))
    # Sample 2k is at the start of fragment k: its keyframe, the source's frame 60k.
    diff = mean_difference(rgb_of(path, 320, 180), rgb_of(source_path, 320, 180, frame=60 * k))
    assert diff < 12, f"picture of fragment {k} differs from ffmpeg's frame by {diff:.1f} per channel"
assert got[0]["ImageContent"] != got[2]["ImageContent"], "two fragments gave the same picture"

# PNG at the stream's own size, in pages of 4, from the server's clock.
listed = archive.list_fragments(StreamName="cam")["Fragments"]
# botocore sends whole seconds: start at the first whole second of media.
first_server = math.ceil(min(f["ServerTimestamp"] for f in listed).timestamp())
pages, token = [], None
for _ in range(10):
    kwargs = {"NextToken": token} if token else {}
    page = images(ImageSelectorType="SERVER_TIMESTAMP", StartTimestamp=first_server, EndTimestamp=first_server + 2,
                  Format="PNG", SamplingInterval=500, MaxResults=4, **kwargs)
    pages.append(page["Images"])
    token = page.get("NextToken")
    if not token:
        break
assert [len(p) for p in pages] == [4, 1], [len(p) for p in pages]
png = base64.b64decode(pages[0][0]["ImageContent"])
assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
assert (width, height) == (640, 360), (width, height)

# Outside the stored media: NO_MEDIA for each sample; bad requests refused.
empty = images(StartTimestamp=base - 100, EndTimestamp=base - 98)["Images"]
assert [i.get("Error") for i in empty] == ["NO_MEDIA"] * 3, empty
expect_client_error(archive, "InvalidArgumentException", archive.get_images, StreamName="cam",
                    ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=base, EndTimestamp=base + 301,
                    Format="JPEG", SamplingInterval=1000)
expect_client_error(archive, "InvalidArgumentException", archive.get_images, StreamName="cam",
                    ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=base, EndTimestamp=base + 5,
                    Format="JPEG", SamplingInterval=100)
expect_client_error(archive, "ResourceNotFoundException", archive.get_images, StreamName="nope",
                    ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=base, EndTimestamp=base + 5,
                    Format="JPEG", SamplingInterval=1000)
tmp.cleanup()
done()
