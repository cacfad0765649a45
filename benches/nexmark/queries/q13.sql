-- Query 13: bounded side input join (not in the original suite). Bids
-- enriched from a side table by a processing-time lookup join: needs
-- issue 5. The side table is read with today's filesystem connector
-- (Flink's q13 uses the legacy one); `runnel bench` writes it to
-- ${OUTPUT_DIR}/side_input.csv as Flink's side_input_gen does (keys 0..9999).
-- Flink's mod(B.auction, 10000) is `B.auction % 10000` (DataFusion has no
-- MOD function).
CREATE TABLE side_input (
  key BIGINT,
  `value` VARCHAR
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/side_input.csv',
  'format' = 'csv'
);

CREATE TABLE nexmark_q13 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  `value`  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q13
SELECT
    B.auction,
    B.bidder,
    B.price,
    B.dateTime,
    S.`value`
FROM (SELECT *, PROCTIME() as p_time FROM bid) B
JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S
ON B.auction % 10000 = S.key;
