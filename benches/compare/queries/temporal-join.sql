-- input: tumble-json
-- An event-time temporal join (issue 20): every row of a JSON-lines file
-- (10K keys, one row per event-time millisecond), read as probes half a
-- second earlier than their own time, meets its key's latest version at or
-- before that time in the same file read as a versioned table (PRIMARY KEY
-- k, WATERMARK), or NULLs (LEFT JOIN). ${INPUT} is the input path, ${SINK}
-- the sink's WITH options.
CREATE TABLE probes (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  pts AS ts - INTERVAL '0.5' SECOND,
  WATERMARK FOR pts AS pts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE versions (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND,
  PRIMARY KEY (k) NOT ENFORCED
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE out_table (k BIGINT, pts TIMESTAMP(3), v BIGINT, version_v BIGINT, version_ts TIMESTAMP(3)) WITH (${SINK});
INSERT INTO out_table
SELECT p.k, p.pts, p.v, r.v, r.ts
FROM probes AS p
LEFT JOIN versions FOR SYSTEM_TIME AS OF p.pts AS r ON p.k = r.k;
