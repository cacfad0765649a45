-- input: tumble-json
-- MATCH_RECOGNIZE (issue 20): V shapes in each key's values, a fall of one
-- or more rows then a rise, over the 10K keys of a JSON-lines file (one row
-- per event-time millisecond, values random). ${INPUT} is the input path,
-- ${SINK} the sink's WITH options.
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE out_table (k BIGINT, start_ts TIMESTAMP(3), bottom_ts TIMESTAMP(3), end_ts TIMESTAMP(3), bottom BIGINT) WITH (${SINK});
INSERT INTO out_table
SELECT k, start_ts, bottom_ts, end_ts, bottom
FROM input MATCH_RECOGNIZE (
  PARTITION BY k
  ORDER BY ts
  MEASURES FIRST(S.ts) AS start_ts, LAST(D.ts) AS bottom_ts, U.ts AS end_ts, LAST(D.v) AS bottom
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (S D+ U)
  DEFINE D AS v < PREV(v), U AS v > PREV(v)
) AS T;
