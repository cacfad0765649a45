-- Query 0: pass-through (not in the original suite).
-- Measures the source and the engine's overhead: bids, as they are most
-- numerous with the default mix. Same as Flink's q0.
CREATE TABLE nexmark_q0 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q0
SELECT auction, bidder, price, dateTime, extra FROM bid;
