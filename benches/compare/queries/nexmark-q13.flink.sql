-- Nexmark q13, Flink: Flink's own query (mod(B.auction, 10000); Runnel
-- spells it %), a lookup join against the side table in ${SIDE_INPUT},
-- declared with the legacy connector properties Flink's nexmark uses (the
-- current filesystem connector is not a lookup source).
-- Blackhole sink when measuring (${SINK}).
${NEXMARK_DDL}

CREATE TABLE side_input (
  key BIGINT,
  `value` VARCHAR
) WITH (
  'connector.type' = 'filesystem',
  'connector.path' = 'file://${SIDE_INPUT}',
  'format.type' = 'csv'
);

CREATE TABLE nexmark_q13 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  `value`  VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q13
SELECT
    B.auction,
    B.bidder,
    B.price,
    B.dateTime,
    S.`value`
FROM (SELECT *, PROCTIME() as p_time FROM bid) B
JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S
ON mod(B.auction, 10000) = S.key;
