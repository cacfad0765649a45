-- The same query as tumble.runnel.sql, in Flink SQL: the text is identical
-- (Flink's JSON format reads 'yyyy-MM-dd HH:mm:ss.SSS' with its default
-- 'json.timestamp-format.standard' = 'SQL').
CREATE TABLE input (k BIGINT, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT}', 'format' = 'json');
CREATE TABLE out_table (window_start TIMESTAMP(3), k BIGINT, c BIGINT, s BIGINT) WITH (${SINK});
INSERT INTO out_table
SELECT window_start, k, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
