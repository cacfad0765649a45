"""Shared helpers for the Kinesis Video Streams scripts: test video made by
ffmpeg, a Matroska (EBML) reader for what goes in and what comes back, and
a PutMedia client (boto3 has none: it is a chunked upload answered by a
stream of JSON acknowledgements on the same connection).

Nothing here may hang: every socket has a timeout, every wait a bound, and
`watchdog` ends a script that runs too long with every thread's stack."""

import faulthandler
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from botocore.exceptions import ClientError

from common import video_client

# EBML element ids.
EBML = 0x1A45DFA3
SEGMENT = 0x18538067
INFO = 0x1549A966
TRACKS = 0x1654AE6B
TAGS = 0x1254C367
CLUSTER = 0x1F43B675
TRACK_ENTRY = 0xAE
CODEC_ID = 0x86
TAG = 0x7373
SIMPLE_TAG = 0x67C8
TAG_NAME = 0x45A3
TAG_STRING = 0x4487
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
# What may sit in a Cluster: an unknown-size Cluster ends at the first
# element that may not.
CLUSTER_CHILDREN = {TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, 0xA7, 0xAB, 0x5854, 0xEC, 0xBF, 0xAF}

FRAGMENT_NUMBER = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
SERVER_TIMESTAMP = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
PRODUCER_TIMESTAMP = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
MILLIS_BEHIND_NOW = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
CONTINUATION_TOKEN = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"
GET_MEDIA_TAGS = (FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, MILLIS_BEHIND_NOW, CONTINUATION_TOKEN)

FPS = 30
FRAGMENT_SECONDS = 2


def watchdog(seconds):
    """Ends the script after `seconds`, printing where every thread was,
    so a server that never answers fails the test instead of hanging it."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def wait_for(check, seconds, interval=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


# ---------------------------------------------------------------- ffmpeg


def make_mkv(path, seconds, offset=None):
    """An H.264 640x360 30 fps MKV of `seconds` with a keyframe and a new
    Cluster every 2 s; Cluster timecodes (ms) start at `offset` seconds
    (epoch, for ABSOLUTE) or at 0 (for RELATIVE). Returns its bytes."""
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-profile:v", "main", "-pix_fmt", "yuv420p",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
        "-f", "matroska", "-live", "1",
        "-cluster_time_limit", "2100", "-cluster_size_limit", "50000000",
    ]
    if offset is not None:
        command += ["-output_ts_offset", str(offset)]
    command.append(path)
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == 0, f"ffmpeg failed: {result.stderr.decode(errors='replace')}"
    with open(path, "rb") as f:
        data = f.read()
    # The checks below depend on ffmpeg's layout: fail here, clearly, if a
    # different ffmpeg lays the file out differently.
    source = parse_source(data)
    clusters = source["clusters"]
    count = seconds // FRAGMENT_SECONDS
    assert len(clusters) == count, f"ffmpeg wrote {len(clusters)} clusters, expected {count}"
    first = 0 if offset is None else offset * 1000
    assert [c["timecode"] for c in clusters] == [first + 2000 * i for i in range(count)], [
        c["timecode"] for c in clusters
    ]
    for c in clusters:
        assert len(c["frames"]) == FPS * FRAGMENT_SECONDS, len(c["frames"])
        assert c["keyframes"][0] and not any(c["keyframes"][1:]), "one keyframe per cluster, first"
        assert c["size"] is not None, "ffmpeg -live writes sized clusters"
    return data


def make_camera_mkv(path, seconds, offset, size="320x240", rate=48000):
    """A camera with a microphone: H.264 at 30 fps (a keyframe and a new
    Cluster every 2 s) and a 440 Hz tone as stereo AAC at `rate`, Cluster
    timecodes from `offset` (epoch seconds). Returns the path."""
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}",
         "-t", str(seconds),
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
         "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
         "-c:a", "aac", "-b:a", "96k", "-ac", "2",
         "-f", "matroska", "-live", "1", "-cluster_time_limit", "2100", "-cluster_size_limit", "50000000",
         "-output_ts_offset", str(offset), path],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return path


def ffprobe_video(data, tmpdir, name="doc.mkv"):
    """(codec, width, height, frames decoded) of a Matroska document."""
    path = os.path.join(tmpdir, name)
    with open(path, "wb") as f:
        f.write(data)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_streams", "-of", "json", path],
        capture_output=True, timeout=60,
    )
    assert result.returncode == 0, f"ffprobe cannot read the document: {result.stderr.decode(errors='replace')}"
    streams = json.loads(result.stdout)["streams"]
    assert len(streams) == 1, f"ffprobe found {len(streams)} video streams"
    s = streams[0]
    return s["codec_name"], s["width"], s["height"], int(s["nb_read_frames"])


def probe_media(source, *extra):
    """(codec, width, height, frames decoded, duration or None) of the first
    video stream of a file or URL (an HLS playlist, a DASH manifest)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", *extra, "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration",
         "-of", "default=noprint_wrappers=1", source],
        capture_output=True, timeout=60,
    )
    assert result.returncode == 0, f"ffprobe {source}: {result.stderr.decode(errors='replace')}"
    fields = dict(line.split("=", 1) for line in result.stdout.decode().splitlines() if "=" in line)
    duration = float(fields["duration"]) if fields.get("duration", "N/A") != "N/A" else None
    return fields["codec_name"], int(fields["width"]), int(fields["height"]), int(fields["nb_read_frames"]), duration


def http_get(url, timeout=30):
    """(status, content type, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


# ---------------------------------------------------------------- EBML


class Incomplete(Exception):
    """The data ends inside an element: wait for more."""


def _vint(data, pos, keep_marker):
    if pos >= len(data):
        raise Incomplete
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError(f"invalid EBML variable-size integer 0x{first:02x} at byte {pos}")
    if pos + length > len(data):
        raise Incomplete
    value = first if keep_marker else first & ((0x80 >> (length - 1)) - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, length


def element_header(data, pos):
    """(id, size or None when unknown, header length) of the element at pos."""
    eid, id_len = _vint(data, pos, keep_marker=True)
    if id_len > 4:
        raise ValueError(f"invalid EBML id at byte {pos}")
    size, size_len = _vint(data, pos + id_len, keep_marker=False)
    unknown = size == (1 << (7 * size_len)) - 1
    return eid, (None if unknown else size), id_len + size_len


def _uint(data):
    return int.from_bytes(data, "big")


def _children(data, start, end):
    """(id, body start, body end) of the sized children of a complete element."""
    pos = start
    while pos < end:
        eid, size, hl = element_header(data, pos)
        if size is None:
            raise ValueError(f"unknown-size element 0x{eid:X} inside a sized one at byte {pos}")
        yield eid, pos + hl, pos + hl + size
        pos += hl + size


def _simple_tags(data, start, end, out):
    for eid, b, e in _children(data, start, end):
        if eid == SIMPLE_TAG:
            name = value = None
            for cid, cb, ce in _children(data, b, e):
                if cid == TAG_NAME:
                    name = data[cb:ce].decode("utf-8", "replace")
                elif cid == TAG_STRING:
                    value = data[cb:ce].decode("utf-8", "replace").rstrip("\x00")
            if name is not None:
                out.append((name, value))
            _simple_tags(data, b, e, out)  # nested SimpleTags
        elif eid == TAG:
            _simple_tags(data, b, e, out)


def _block_frame(body):
    """(keyframe, frame bytes) of a SimpleBlock/Block body: the frame without
    the track number, relative timecode and flags (which a server may
    rewrite) so frames can be compared with what was put."""
    _, track_len = _vint(body, 0, keep_marker=False)
    flags = body[track_len + 2]
    return bool(flags & 0x80), bytes(body[track_len + 3 :])


def _parse_cluster(data, start, body, size, final):
    """(end, cluster) of the Cluster whose body starts at `body`; raises
    Incomplete if the data does not hold it whole yet."""
    n = len(data)
    limit = None if size is None else body + size
    if limit is not None and limit > n:
        raise Incomplete
    cluster = {"start": start, "size": size, "timecode": None, "frames": [], "keyframes": []}
    pos = body
    while True:
        if limit is not None and pos >= limit:
            break
        if limit is None and pos >= n:
            if final:
                break
            raise Incomplete
        try:
            eid, csize, hl = element_header(data, pos)
        except Incomplete:
            if final and limit is None:
                raise ValueError(f"data ends inside an element header at byte {pos}")
            raise
        if limit is None and eid not in CLUSTER_CHILDREN:
            break  # an unknown-size Cluster ends where its next sibling starts
        if csize is None:
            raise ValueError(f"unknown-size element 0x{eid:X} in a Cluster at byte {pos}")
        cend = pos + hl + csize
        if cend > n:
            raise Incomplete
        if eid == TIMECODE:
            cluster["timecode"] = _uint(data[pos + hl : cend])
        elif eid == SIMPLE_BLOCK:
            key, frame = _block_frame(data[pos + hl : cend])
            cluster["keyframes"].append(key)
            cluster["frames"].append(frame)
        elif eid == BLOCK_GROUP:
            for gid, gb, ge in _children(data, pos + hl, cend):
                if gid == BLOCK:
                    _, frame = _block_frame(data[gb:ge])
                    cluster["keyframes"].append(None)
                    cluster["frames"].append(frame)
        pos = cend
    cluster["end"] = pos
    return pos, cluster


def _new_doc(start):
    return {"start": start, "end": None, "tags": [], "clusters": [], "codecs": [],
            "has_info": False, "has_tracks": False, "first_cluster": None, "truncated": False}


def parse_documents(data, final=False):
    """The Matroska documents (EBML header + Segment) one after another in
    `data`, as GetMedia sends them. Each is a dict: start/end offsets, tags
    [(name, value)], complete clusters (timecode, frames), codec ids. With
    final=False the data may end anywhere (more may come): only complete
    elements are reported, and the last document says `truncated`."""
    docs = []
    pos = 0
    n = len(data)
    while pos < n:
        try:
            eid, size, hl = element_header(data, pos)
            if eid == EBML:
                if size is None or pos + hl + size > n:
                    raise Incomplete
                if docs:
                    docs[-1]["end"] = pos
                docs.append(_new_doc(pos))
                pos += hl + size
                continue
            if not docs:
                raise ValueError(f"expected an EBML header at byte {pos}, found element 0x{eid:X}")
            if eid == SEGMENT:
                pos = _parse_segment(data, pos + hl, size, docs[-1], final)
                continue
            if size is None or pos + hl + size > n:
                raise Incomplete
            pos += hl + size  # e.g. a Void between documents
        except Incomplete:
            if final:
                raise ValueError(f"the data ends inside an element at byte {pos}")
            if docs:
                docs[-1]["truncated"] = True
            break
    if docs and docs[-1]["end"] is None and not docs[-1]["truncated"]:
        docs[-1]["end"] = pos
    return docs


def _parse_segment(data, body, size, doc, final):
    n = len(data)
    limit = None if size is None else body + size
    pos = body
    while True:
        if limit is not None and pos >= limit:
            return pos
        if pos >= n:
            if final or (limit is not None and limit <= n):
                return pos
            raise Incomplete
        eid, csize, hl = element_header(data, pos)
        if limit is None and eid in (EBML, SEGMENT):
            return pos  # an unknown-size Segment ends where the next document starts
        if eid == CLUSTER:
            if doc["first_cluster"] is None:
                doc["first_cluster"] = pos
            pos, cluster = _parse_cluster(data, pos, pos + hl, csize, final)
            doc["clusters"].append(cluster)
            continue
        if csize is None:
            raise ValueError(f"unknown-size element 0x{eid:X} in a Segment at byte {pos}")
        cend = pos + hl + csize
        if cend > n:
            raise Incomplete
        if eid == TAGS:
            found = []
            _simple_tags(data, pos + hl, cend, found)
            doc["tags"].extend(found)
        elif eid == INFO:
            doc["has_info"] = True
        elif eid == TRACKS:
            doc["has_tracks"] = True
            for tid, tb, te in _children(data, pos + hl, cend):
                if tid == TRACK_ENTRY:
                    for cid, cb, ce in _children(data, tb, te):
                        if cid == CODEC_ID:
                            doc["codecs"].append(data[cb:ce].decode("ascii", "replace").rstrip("\x00"))
        pos = cend


def tag(doc, name):
    """The value of tag `name` in a document, None if absent."""
    values = [v for k, v in doc["tags"] if k == name]
    return values[0] if values else None


def parse_source(data):
    """The one document of an MKV file made by `make_mkv`."""
    docs = parse_documents(data, final=True)
    assert len(docs) == 1, f"{len(docs)} documents in the file"
    return docs[0]


def ebml_element(eid, payload):
    """An element with an 8-byte size, as the server writes them."""
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + b"\x01" + len(payload).to_bytes(7, "big") + payload


def tags_element(items, track_uid=None):
    """A Tags element of one Tag holding `items` [(name, value)], as the
    producer SDK sends fragment metadata; with `track_uid`, aimed at that
    track as ffmpeg writes its per-track tags."""
    targets = b"" if track_uid is None else ebml_element(0x63C5, track_uid.to_bytes(8, "big"))
    simple = b"".join(
        ebml_element(SIMPLE_TAG, ebml_element(TAG_NAME, name.encode()) + ebml_element(TAG_STRING, value.encode()))
        for name, value in items
    )
    return ebml_element(TAGS, ebml_element(TAG, ebml_element(0x63C0, targets) + simple))


def with_unknown_sizes(data):
    """The file rewritten as the AWS producer SDK (and GStreamer's
    streamable matroskamux) writes it: every Cluster of unknown size."""
    out = bytearray(data)
    for cluster in parse_source(data)["clusters"]:
        _, size_len = _vint(data, cluster["start"] + 4, keep_marker=False)
        marker = bytes([0xFF >> (size_len - 1)]) + b"\xff" * (size_len - 1)
        out[cluster["start"] + 4 : cluster["start"] + 4 + size_len] = marker
    return bytes(out)


# ---------------------------------------------------------------- PutMedia


class PutMedia:
    """One PutMedia request: the body is sent as HTTP/1.1 chunks by the
    caller, while a thread reads the response, which starts before the body
    ends, and collects its acknowledgements.

    headers: extra request headers, e.g. {"x-amzn-stream-name": "cam"}."""

    def __init__(self, endpoint, headers, timeout=30):
        url = urllib.parse.urlsplit(endpoint)
        self.sock = socket.create_connection((url.hostname, url.port or 80), timeout=timeout)
        self.sock.settimeout(timeout)
        lines = [
            "POST /putMedia HTTP/1.1",
            f"Host: {url.netloc}",
            "Transfer-Encoding: chunked",
            "Content-Type: application/octet-stream",
            "User-Agent: runnel-tests",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.status = None
        self.response_headers = {}
        self.body = b""  # the whole response body (acks, or an error)
        self.events = []  # every JSON object of the body, IDLE included
        self.read_error = None
        self.send_error = None
        self.ended = threading.Event()
        self.changed = threading.Condition()
        self.finished_sending = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # The response.

    def _read(self):
        try:
            f = self.sock.makefile("rb")
            status_line = f.readline(65537).decode("latin-1")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError(f"not an HTTP response: {status_line!r}")
            headers = {}
            while True:
                line = f.readline(65537).decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            with self.changed:
                self.status = int(parts[1])
                self.response_headers = headers
                self.changed.notify_all()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = f.readline(65537)
                    if not size_line:
                        raise ValueError("the chunked response ended without its last chunk")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while f.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    chunk = f.read(size)
                    if len(chunk) < size:
                        raise ValueError("the response ended inside a chunk")
                    f.readline(65537)
                    self._feed(chunk)
            elif "content-length" in headers:
                self._feed(f.read(int(headers["content-length"])))
            else:
                while True:
                    chunk = f.read1(65536)
                    if not chunk:
                        break
                    self._feed(chunk)
        except Exception as e:  # noqa: BLE001 - reported by the checks
            with self.changed:
                self.read_error = e
        finally:
            with self.changed:
                self.ended.set()
                self.changed.notify_all()

    def _feed(self, chunk):
        with self.changed:
            self.body += chunk
            if self.status == 200:
                self._decode()
            self.changed.notify_all()

    def _decode(self):
        """Acks are JSON objects one after another (newline-separated)."""
        decoder = json.JSONDecoder()
        text = self.body.decode("utf-8", "replace")
        events = []
        pos = 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                break
            try:
                event, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                break  # an ack cut by the chunking: the rest comes later
            events.append(event)
        self.events = events

    def acks(self, kind=None):
        """Acknowledgements so far (IDLE keep-alives left out)."""
        with self.changed:
            events = [e for e in self.events if e.get("EventType") != "IDLE"]
        return [e for e in events if kind is None or e.get("EventType") == kind]

    def wait(self, check, seconds):
        """Waits until check(self) holds or the response ends; its result."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while not check(self) and not self.ended.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(min(left, 0.5))
        return check(self)

    def wait_end(self, seconds):
        """Waits for the server to end the response; whether it did."""
        self.ended.wait(seconds)
        return self.ended.is_set()

    # The request body.

    def send(self, data, chunk_size=64 * 1024):
        """Sends data as chunks; False (and send_error set) if the server
        stopped reading, e.g. it closed the connection after an error."""
        for start in range(0, len(data), chunk_size):
            piece = data[start : start + chunk_size]
            try:
                self.sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            except OSError as e:
                self.send_error = e
                return False
        return True

    def finish(self):
        """Ends the body (the last, empty chunk)."""
        self.finished_sending = True
        try:
            self.sock.sendall(b"0\r\n\r\n")
        except OSError as e:
            self.send_error = e

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)

    def describe(self):
        return (f"status {self.status}, read error {self.read_error!r}, send error {self.send_error!r}, "
                f"body {self.body[:2000]!r}")


def stream_header(name=None, arn=None):
    return {"x-amzn-stream-arn": arn} if arn else {"x-amzn-stream-name": name}


def put_media(endpoint, data, name=None, arn=None, relative_start=None, seconds=30, chunk_size=64 * 1024):
    """Puts a whole MKV and waits until the server ends the response.
    ABSOLUTE timecodes, or RELATIVE to `relative_start` (epoch seconds).
    Returns the finished PutMedia (closed)."""
    headers = stream_header(name, arn)
    if relative_start is None:
        headers["x-amzn-fragment-timecode-type"] = "ABSOLUTE"
    else:
        headers["x-amzn-fragment-timecode-type"] = "RELATIVE"
        headers["x-amzn-producer-start-timestamp"] = f"{relative_start:.3f}"
    headers["x-amzn-fragment-acknowledgment-required"] = "1"
    put = PutMedia(endpoint, headers)
    try:
        put.send(data, chunk_size)
        put.finish()
        assert put.wait_end(seconds), f"PutMedia response did not end within {seconds} s of the body's end: {put.describe()}"
    finally:
        put.close()
    return put


def check_acks(put, timecodes):
    """The acks of a PutMedia whose every fragment should be persisted:
    BUFFERING, RECEIVED then PERSISTED for each Cluster, with the Cluster's
    timecode, fragment numbers increasing. Returns the PERSISTED numbers."""
    assert put.status == 200, f"PutMedia: {put.describe()}"
    assert put.read_error is None, f"PutMedia response unreadable: {put.describe()}"
    errors = put.acks("ERROR")
    assert not errors, f"ERROR acks: {errors}"
    persisted = put.acks("PERSISTED")
    assert [a.get("FragmentTimecode") for a in persisted] == timecodes, (
        f"PERSISTED acks' FragmentTimecode {[a.get('FragmentTimecode') for a in persisted]}, expected {timecodes}"
    )
    numbers = [a.get("FragmentNumber") for a in persisted]
    check_numbers(numbers)
    acks = put.acks()
    for number in numbers:
        kinds = [a["EventType"] for a in acks if a.get("FragmentNumber") == number]
        assert kinds == ["BUFFERING", "RECEIVED", "PERSISTED"], f"acks of fragment {number}: {kinds}\n{acks}"
    for a in acks:
        assert a.get("EventType") in ("BUFFERING", "RECEIVED", "PERSISTED"), f"unexpected ack {a}"
        assert isinstance(a.get("FragmentTimecode"), int), f"ack without an integer FragmentTimecode: {a}"
    return numbers


def check_numbers(numbers):
    for n in numbers:
        assert isinstance(n, str) and n.isdigit(), f"fragment number {n!r} is not a decimal string"
    values = [int(n) for n in numbers]
    assert values == sorted(set(values)), f"fragment numbers do not increase: {numbers}"


# ---------------------------------------------------------------- reading


def video_clients(endpoint, stream, read_timeout=15):
    """(kinesis-video-media, kinesis-video-archived-media) clients aimed at
    the data endpoints GetDataEndpoint gives for the stream."""
    kv = video_client("kinesisvideo", endpoint)
    media_url = kv.get_data_endpoint(StreamName=stream, APIName="GET_MEDIA")["DataEndpoint"]
    archive_url = kv.get_data_endpoint(StreamName=stream, APIName="LIST_FRAGMENTS")["DataEndpoint"]
    return (
        video_client("kinesis-video-media", media_url, read_timeout=read_timeout),
        video_client("kinesis-video-archived-media", archive_url, read_timeout=read_timeout),
    )


def list_fragments(archive, stream, selector=None, max_results=None, max_pages=100):
    """Every page of ListFragments: (fragments, page sizes)."""
    kwargs = {"StreamName": stream}
    if selector:
        kwargs["FragmentSelector"] = selector
    if max_results:
        kwargs["MaxResults"] = max_results
    fragments, sizes = [], []
    for _ in range(max_pages):
        page = archive.list_fragments(**kwargs)
        fragments += page["Fragments"]
        sizes.append(len(page["Fragments"]))
        token = page.get("NextToken")
        if not token:
            return fragments, sizes
        kwargs = {"StreamName": stream, "NextToken": token}
        if max_results:
            kwargs["MaxResults"] = max_results
    raise AssertionError(f"ListFragments kept giving NextTokens for {max_pages} pages")


def server_range(start, end):
    return {"FragmentSelectorType": "SERVER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end}}


def producer_range(start, end):
    return {"FragmentSelectorType": "PRODUCER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end}}


def wait_listed(archive, stream, numbers, selector, seconds=10):
    """ListFragments is eventually consistent (AWS says so): waits, with a
    bound, until every number is listed; returns the last listing."""
    listed = []

    def all_there():
        nonlocal listed
        listed, _ = list_fragments(archive, stream, selector)
        return set(numbers) <= {f["FragmentNumber"] for f in listed}

    wait_for(all_there, seconds, interval=0.2)
    return listed


def _read_some(payload, size=65536):
    raw = getattr(payload, "_raw_stream", None)
    if raw is not None and hasattr(raw, "read1"):
        return raw.read1(size)  # what has arrived, without waiting for `size`
    return payload.read(4096)


def read_documents(payload, done, seconds):
    """Reads a GetMedia payload (a live tail: it need not end) until
    done(ready documents) holds, the body ends, or `seconds` pass; then
    closes it. Returns (data, ready documents, whether the body ended).

    A document is ready when it holds a whole Cluster and either a later
    document has begun or its closing tags (with the continuation token)
    are in."""
    data = bytearray()
    ended = False
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if done(ready_documents(data, final=False)):
                break
            try:
                chunk = _read_some(payload)
            except Exception as e:  # noqa: BLE001 - a read timeout: check the deadline
                if "timeout" in type(e).__name__.lower() or "timed out" in str(e):
                    continue
                raise
            if not chunk:
                ended = True
                break
            data += chunk
    finally:
        payload.close()
    return bytes(data), ready_documents(data, final=ended), ended


def ready_documents(data, final):
    docs = parse_documents(bytes(data), final=final)
    ready = []
    for i, doc in enumerate(docs):
        later = i + 1 < len(docs)
        if doc["clusters"] and (final or later or tag(doc, CONTINUATION_TOKEN) is not None):
            ready.append(doc)
    return ready


def numbers_of(docs):
    return [tag(d, FRAGMENT_NUMBER) for d in docs]


def check_document(doc, number, source_cluster, producer_seconds, window, get_media=True):
    """A fragment as GetMedia (or GetMediaForFragmentList) gives it back:
    its tags, an H.264 track, and exactly the frames that were put."""
    names = [k for k, _ in doc["tags"]]
    assert tag(doc, FRAGMENT_NUMBER) == number, f"fragment number tag {tag(doc, FRAGMENT_NUMBER)!r}, expected {number}"
    assert doc["has_info"] and doc["has_tracks"], f"document of {number} lacks Info or Tracks"
    assert doc["codecs"] == ["V_MPEG4/ISO/AVC"], f"document of {number} has codecs {doc['codecs']}"
    assert len(doc["clusters"]) == 1, f"document of {number} has {len(doc['clusters'])} clusters"
    cluster = doc["clusters"][0]
    assert len(cluster["frames"]) == len(source_cluster["frames"]), (
        f"fragment {number}: {len(cluster['frames'])} frames, {len(source_cluster['frames'])} were put"
    )
    assert cluster["frames"] == source_cluster["frames"], f"fragment {number}: frame bytes differ from what was put"
    if get_media:
        for name in GET_MEDIA_TAGS:
            assert name in names, f"document of {number} lacks tag {name}; has {names}"
        producer = float(tag(doc, PRODUCER_TIMESTAMP))
        assert abs(producer - producer_seconds) < 0.0015, (
            f"fragment {number}: {PRODUCER_TIMESTAMP} {tag(doc, PRODUCER_TIMESTAMP)}, expected {producer_seconds:.3f}"
        )
        server = float(tag(doc, SERVER_TIMESTAMP))
        assert window[0] - 1 <= server <= window[1] + 1, (
            f"fragment {number}: {SERVER_TIMESTAMP} {server} outside the put's window {window}"
        )
        behind = tag(doc, MILLIS_BEHIND_NOW)
        assert behind is not None and behind.isdigit(), f"fragment {number}: {MILLIS_BEHIND_NOW} {behind!r}"
        assert tag(doc, CONTINUATION_TOKEN), f"fragment {number}: empty {CONTINUATION_TOKEN}"


def expect_client_error(client, code, call, *args, **kwargs):
    """Runs a boto3 call that must fail with `code`, checking the HTTP
    status against the one botocore's model gives that error."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        message = e.response["Error"].get("Message", "")
        assert got == code, f"{call.__name__}: expected {code}, got {got} ({status}): {message}"
        shape = client.meta.service_model.shape_for(code)
        expected = shape.metadata.get("error", {}).get("httpStatusCode", 400)
        assert status == expected, f"{call.__name__}: {code} came with HTTP {status}, the model says {expected}"
        return message
    raise AssertionError(f"{call.__name__}({kwargs}) should have failed with {code}")


def raw_post(endpoint, path, body, timeout=30):
    """A REST-JSON request boto3 would not send as is: (status, headers, body)."""
    request = urllib.request.Request(
        endpoint.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def health(endpoint):
    with urllib.request.urlopen(endpoint.rstrip("/") + "/v1/health", timeout=10) as response:
        return response.status


def create_stream(kv, name, retention=24, **kwargs):
    """Creates a stream and waits (bounded) for it to be ACTIVE: AWS
    creates asynchronously (CREATING first)."""
    arn = kv.create_stream(StreamName=name, DataRetentionInHours=retention, MediaType="video/h264", **kwargs)["StreamARN"]
    status = {}

    def active():
        status["info"] = kv.describe_stream(StreamName=name)["StreamInfo"]
        return status["info"]["Status"] == "ACTIVE"

    assert wait_for(active, 10, interval=0.1), f"stream {name} not ACTIVE: {status}"
    return arn


def log(*args):
    print(*args, file=sys.stderr, flush=True)
