#!/usr/bin/env bash
# Starts `runnel server` on its embedded default (./runnel-data, port 4567),
# shows it answering, then keeps it running until Ctrl-C.
# DEMO_EXIT=1 stops the server once the tour is shown.
set -euo pipefail

BIN=${RUNNEL_BIN:?set RUNNEL_BIN to the runnel binary}
PORT=${RUNNEL_PORT:-4567}
DATA_DIR=${RUNNEL_DATA_DIR:-./runnel-data}
URL="http://127.0.0.1:$PORT"
LOG=./runnel-server.log

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; echo; }

if curl -s -o /dev/null "$URL/v1/health"; then
  echo "demo: something already answers on $URL; stop it or set RUNNEL_PORT" >&2
  exit 1
fi

step "Starting runnel server (data dir $DATA_DIR, logs in $LOG)"
"$BIN" server --port "$PORT" --data-dir "$DATA_DIR" >"$LOG" 2>&1 &
SERVER_PID=$!
stop_server() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    tail -n 2 "$LOG"
  fi
}
trap stop_server EXIT

for _ in $(seq 1 300); do
  curl -s -o /dev/null "$URL/v1/health" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG"; echo "demo: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -s -o /dev/null "$URL/v1/health" || { cat "$LOG"; echo "demo: the server did not come up" >&2; exit 1; }

step "Health: the store id stays the same across restarts of this data dir"
show curl -s "$URL/v1/health"

step "The AWS endpoint: requests are routed by X-Amz-Target, errors come back in the AWS shape"
show curl -s -i -X POST "$URL/" -H 'X-Amz-Target: Kinesis_20131202.NoSuchOperation' \
  -H 'Content-Type: application/x-amz-json-1.1' -d '{}'

step "Kinesis Data Streams: a stream, records in, records out (the aws CLI works the same way)"
STREAM="demo-$(date +%s)"
show "$BIN" streams --endpoint "$URL" create "$STREAM" --shards 2
show "$BIN" streams --endpoint "$URL" put "$STREAM" -k user-1 '{"order": 1}' '{"order": 2}' '{"order": 3}'
show "$BIN" streams --endpoint "$URL" tail "$STREAM" --from trim-horizon --count 3 --show-meta
show curl -s -X POST "$URL/" -H 'X-Amz-Target: Kinesis_20131202.DescribeStreamSummary' \
  -H 'Content-Type: application/x-amz-json-1.1' -d "{\"StreamName\": \"$STREAM\"}"

step "Firehose: a delivery stream buffers records durably and writes them as GZIP objects into a bucket"
DELIVERY="demo-logs-$(date +%s)"
firehose() {
  curl -s -X POST "$URL/" -H "X-Amz-Target: Firehose_20150804.$1" \
    -H 'Content-Type: application/x-amz-json-1.1' -d "$2"
  echo
}
show firehose CreateDeliveryStream "{\"DeliveryStreamName\": \"$DELIVERY\", \"ExtendedS3DestinationConfiguration\": {
  \"RoleARN\": \"arn:aws:iam::000000000000:role/demo\", \"BucketARN\": \"arn:aws:s3:::demo-lake\",
  \"Prefix\": \"logs/\", \"CompressionFormat\": \"GZIP\", \"BufferingHints\": {\"SizeInMBs\": 1, \"IntervalInSeconds\": 2},
  \"ProcessingConfiguration\": {\"Enabled\": true, \"Processors\": [{\"Type\": \"AppendDelimiterToRecord\"}]}}}"
show firehose PutRecordBatch "{\"DeliveryStreamName\": \"$DELIVERY\", \"Records\": [
  {\"Data\": \"$(printf '{"level": "info", "msg": "started"}' | base64 -w0)\"},
  {\"Data\": \"$(printf '{"level": "warn", "msg": "slow disk"}' | base64 -w0)\"}]}"
echo "(IntervalInSeconds is 2: the object appears two seconds after the first record)"
for _ in $(seq 1 50); do
  OBJECT=$(find "$DATA_DIR/buckets/demo-lake/logs" -type f -name "$DELIVERY-*" 2>/dev/null | head -n 1 || true)
  [ -n "$OBJECT" ] && break
  sleep 0.1
done
echo "$ find $DATA_DIR/buckets/demo-lake -type f"
find "$DATA_DIR/buckets/demo-lake" -type f -name "$DELIVERY-*" || true
if [ -n "$OBJECT" ]; then
  echo "$ gunzip -c ..."
  gunzip -c "$OBJECT"
fi

step "A second server on the same data dir is refused, so nothing can corrupt it"
"$BIN" server --port $((PORT + 1)) --data-dir "$DATA_DIR" 2>&1 | tail -n 1 || true

step "Prometheus metrics"
curl -s "$URL/metrics" | grep -E '^runnel_' || true

step "Streaming SQL: a tumbling window over a JSON file, run embedded by 'runnel sql run'"
DEMO_DIR="$DATA_DIR/demo"
mkdir -p "$DEMO_DIR"
# 6,000 page views over one minute of event time from 5 users.
for ((i = 0; i < 6000; i++)); do
  printf '{"user_id": %d, "url": "/page/%d", "ts": "2026-11-25 12:00:%02d.%03d"}\n' \
    $((i * 7 % 5)) $((i % 13)) $((i / 100)) $((i % 100 * 10))
done >"$DEMO_DIR/clicks.jsonl"
cat >"$DEMO_DIR/clicks.sql" <<SQL
CREATE TABLE clicks (
  user_id BIGINT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '$DEMO_DIR/clicks.jsonl', 'format' = 'json');

SELECT window_start, window_end, user_id, COUNT(*) AS views, COUNT(DISTINCT url) AS pages
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '20' SECOND))
GROUP BY window_start, window_end, user_id;
SQL
show cat "$DEMO_DIR/clicks.sql"
show "$BIN" sql run --workers 2 --file "$DEMO_DIR/clicks.sql"

step "MATCH_RECOGNIZE: users whose page views fell back after rising (a pattern per user, in event time)"
cat >"$DEMO_DIR/patterns.sql" <<SQL
CREATE TABLE clicks (
  user_id BIGINT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '$DEMO_DIR/clicks.jsonl', 'format' = 'json');

SELECT user_id, COUNT(*) AS up_then_down FROM clicks MATCH_RECOGNIZE (
  PARTITION BY user_id ORDER BY ts
  MEASURES FIRST(START.url) AS first_url, LAST(DOWN.url) AS last_url
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (START UP{2} DOWN)
  DEFINE UP AS CHAR_LENGTH(url) >= CHAR_LENGTH(PREV(url)), DOWN AS CHAR_LENGTH(url) < CHAR_LENGTH(PREV(url))
) AS m GROUP BY user_id;
SQL
show cat "$DEMO_DIR/patterns.sql"
show "$BIN" sql run --file "$DEMO_DIR/patterns.sql"

# A throwaway PostgreSQL (Debian's, from `make deps`) for the jdbc connector;
# the step is skipped where none is installed.
jdbc_demo() {
  local initdb pg_bin pg_dir pg_port as_pg=()
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort | tail -n 1)
  [ -n "$initdb" ] || { echo "(no PostgreSQL installed: skipped)"; return 0; }
  pg_bin=$(dirname "$initdb")
  pg_dir=$(mktemp -d)
  pg_port=$((PORT + 1000))
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$pg_dir"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U runnel --no-sync >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
  "${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U runnel -d postgres -q -c \
    "CREATE TABLE users (user_id BIGINT PRIMARY KEY, name TEXT); CREATE TABLE views_by_name (name TEXT PRIMARY KEY, views BIGINT);
     INSERT INTO users VALUES (0, 'ada'), (1, 'bob'), (2, 'cy'), (3, 'dee');"
  cat >"$DEMO_DIR/jdbc.sql" <<SQL
CREATE TABLE clicks (user_id BIGINT, url STRING, ts TIMESTAMP(3), proc AS PROCTIME())
WITH ('connector' = 'filesystem', 'path' = '$DEMO_DIR/clicks.jsonl', 'format' = 'json');
CREATE TABLE users (user_id BIGINT, name STRING, PRIMARY KEY (user_id) NOT ENFORCED)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:$pg_port/postgres', 'table-name' = 'users',
      'username' = 'runnel', 'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '100');
CREATE TABLE views_by_name (name STRING, views BIGINT, PRIMARY KEY (name) NOT ENFORCED)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:$pg_port/postgres', 'table-name' = 'views_by_name',
      'username' = 'runnel');

INSERT INTO views_by_name
SELECT COALESCE(u.name, 'unknown'), COUNT(*)
FROM clicks AS c LEFT JOIN users FOR SYSTEM_TIME AS OF c.proc AS u ON c.user_id = u.user_id
GROUP BY COALESCE(u.name, 'unknown');
SQL
  show cat "$DEMO_DIR/jdbc.sql"
  show "$BIN" sql run -q --file "$DEMO_DIR/jdbc.sql"
  echo "$ psql -c 'SELECT * FROM views_by_name ORDER BY name'"
  "${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U runnel -d postgres -c "SELECT * FROM views_by_name ORDER BY name"
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null
  rm -rf "$pg_dir"
}
step "The jdbc connector: each view looked up in PostgreSQL (a lookup join with a cache), counts upserted back"
jdbc_demo || echo "(the jdbc step failed; see above)"

step "Analytics: a SQL job inside the server reads one stream and writes its windows to another"
PAGES="pages-$(date +%s)"
COUNTS="page-counts-$(date +%s)"
"$BIN" streams --endpoint "$URL" create "$PAGES" --shards 2 >/dev/null
"$BIN" streams --endpoint "$URL" create "$COUNTS" --shards 1 >/dev/null
cat >"$DEMO_DIR/page-counts.sql" <<SQL
CREATE TABLE pages (
  user_id BIGINT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'kinesis', 'stream' = '$PAGES', 'format' = 'json',
        'source.init.position' = 'TRIM_HORIZON');

CREATE TABLE page_counts (window_start TIMESTAMP(3), url STRING, views BIGINT)
WITH ('connector' = 'kinesis', 'stream' = '$COUNTS', 'format' = 'json');

INSERT INTO page_counts
SELECT window_start, url, COUNT(*) FROM TABLE(TUMBLE(TABLE pages, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, url;
SQL
show cat "$DEMO_DIR/page-counts.sql"
JOB=$("$BIN" jobs --endpoint "$URL" submit "$DEMO_DIR/page-counts.sql")
echo "submitted job $JOB"
# 26 views, one a second, spread over both shards by their partition keys;
# the windows of the first 20 seconds close once every shard is past them.
VIEWS=()
for ((i = 0; i < 26; i++)); do
  VIEWS+=("{\"user_id\": $((i % 3)), \"url\": \"/page/$((i % 2))\", \"ts\": \"2026-11-25 12:00:$(printf %02d $i).000\"}")
done
show "$BIN" streams --endpoint "$URL" put "$PAGES" "${VIEWS[@]}"
show "$BIN" streams --endpoint "$URL" tail "$COUNTS" --from trim-horizon --count 4
show "$BIN" jobs --endpoint "$URL" list

if command -v ffmpeg >/dev/null; then
  step "Kinesis Video: ffmpeg streams 6 s of H.264 into PutMedia, acknowledged per fragment; a clip comes back as MP4"
  CAM="camera-$(date +%s)"
  START=$(date +%s)
  curl -s -X POST "$URL/createStream" -H 'Content-Type: application/json' \
    -d "{\"StreamName\": \"$CAM\", \"DataRetentionInHours\": 24}"
  echo
  echo "$ ffmpeg -f lavfi -i testsrc2 -t 6 -c:v libx264 ... -f matroska -live 1 - | curl -X POST $URL/putMedia -H 'x-amzn-stream-name: $CAM' ..."
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x360:rate=30 -t 6 \
    -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -g 60 -keyint_min 60 -bf 0 \
    -sc_threshold 0 -f matroska -live 1 -cluster_time_limit 2100 -cluster_size_limit 50000000 -output_ts_offset "$START" - |
    curl -s -X POST "$URL/putMedia" -H "x-amzn-stream-name: $CAM" \
      -H 'x-amzn-fragment-timecode-type: ABSOLUTE' -H 'Transfer-Encoding: chunked' --data-binary @-
  show curl -s -X POST "$URL/listFragments" -H 'Content-Type: application/json' -d "{\"StreamName\": \"$CAM\"}"
  echo
  curl -s -X POST "$URL/getClip" -H 'Content-Type: application/json' -o "$DEMO_DIR/clip.mp4" \
    -d "{\"StreamName\": \"$CAM\", \"ClipFragmentSelector\": {\"FragmentSelectorType\": \"PRODUCER_TIMESTAMP\",
         \"TimestampRange\": {\"StartTimestamp\": $START, \"EndTimestamp\": $((START + 6))}}}"
  echo "GetClip wrote $DEMO_DIR/clip.mp4:"
  show ffprobe -v error -show_entries stream=codec_name,width,height:format=duration -of compact "$DEMO_DIR/clip.mp4"

  step "Video as SQL: a job reads the camera's fragments (the kinesis-video connector) into a Kinesis stream"
  CAM_STATS="camera-stats-$(date +%s)"
  "$BIN" streams --endpoint "$URL" create "$CAM_STATS" --shards 1 >/dev/null
  cat >"$DEMO_DIR/camera-stats.sql" <<SQL
CREATE TABLE fragments (fragment_number STRING, producer_timestamp TIMESTAMP(3), frames INT,
                        keyframes INT, bytes BIGINT, width INT, height INT)
WITH ('connector' = 'kinesis-video', 'stream' = '$CAM', 'table' = 'fragments');

CREATE TABLE camera_stats (fragment_number STRING, producer_timestamp TIMESTAMP(3), frames INT,
                           keyframes INT, kbit_per_s BIGINT, width INT, height INT)
WITH ('connector' = 'kinesis', 'stream' = '$CAM_STATS', 'format' = 'json');

INSERT INTO camera_stats
SELECT fragment_number, producer_timestamp, frames, keyframes, bytes * 8 / 2000, width, height FROM fragments;
SQL
  show cat "$DEMO_DIR/camera-stats.sql"
  VIDEO_JOB=$("$BIN" jobs --endpoint "$URL" submit "$DEMO_DIR/camera-stats.sql")
  echo "submitted job $VIDEO_JOB"
  show "$BIN" streams --endpoint "$URL" tail "$CAM_STATS" --from trim-horizon --count 3
fi

cat <<MSG

Runnel is running at $URL (pid $SERVER_PID).
Try next:
  curl $URL/v1/health
  curl $URL/metrics
  $BIN sql run --file $DEMO_DIR/clicks.sql      (edit the query: HOP, CUMULATE, FILTER, views...)
  (write EXPLAIN before the SELECT in clicks.sql to print the dataflow instead of running it)
  $BIN jobs describe $JOB            (the job's plan, its shards' positions, rows in and out)
  $BIN jobs stop $JOB
  $BIN server --help
  $BIN sql run --help
MSG

if [ "${DEMO_EXIT:-0}" = 1 ]; then
  step "DEMO_EXIT=1: stopping the jobs and the server"
  # Recorded as STOPPED before the server goes, or they would run again
  # when the next demo starts the server on this data dir.
  for job in "$JOB" ${VIDEO_JOB:+"$VIDEO_JOB"}; do
    "$BIN" jobs --endpoint "$URL" stop "$job"
    for _ in $(seq 1 100); do
      "$BIN" jobs --endpoint "$URL" describe "$job" | grep -q '"status": "STOPPED"' && break
      sleep 0.1
    done
  done
  exit 0
fi
echo "The console: open $URL/ in a browser (streams, delivery streams, jobs, video)."
echo "Press Ctrl-C to stop the server (the store is flushed on the way out)."
wait "$SERVER_PID"
