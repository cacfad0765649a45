-- input: tumble-json
-- The tumbling aggregation of benches/sql/tumble_json.sh: 10 s windows,
-- COUNT(*) and SUM(v) per key (10K keys) over a JSON-lines file.
-- ${INPUT} is the input path, ${SINK} the sink's WITH options (blackhole
-- when measuring, a filesystem JSON dir for the correctness check).
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE out_table (window_start TIMESTAMP(3), k BIGINT, c BIGINT, s BIGINT) WITH (${SINK});
INSERT INTO out_table
SELECT window_start, k, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
