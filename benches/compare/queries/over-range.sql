-- input: tumble-json
-- An OVER RANGE aggregation (issue 20): every row with the count, sum and
-- maximum of its key's values over the 10 seconds of event time up to it
-- (10K keys, one row per event-time millisecond) over a JSON-lines file.
-- ${INPUT} is the input path, ${SINK} the sink's WITH options.
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE out_table (k BIGINT, ts TIMESTAMP(3), c BIGINT, s BIGINT, m BIGINT) WITH (${SINK});
INSERT INTO out_table
SELECT k, ts, COUNT(v) OVER w, SUM(v) OVER w, MAX(v) OVER w
FROM input
WINDOW w AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW);
