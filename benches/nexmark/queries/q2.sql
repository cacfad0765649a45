-- Query 2: selection. Bids on every 123rd auction.
-- Differs from Flink's q2 in one spelling: Flink's MOD(auction, 123) is
-- `auction % 123` (DataFusion has no MOD function).
CREATE TABLE nexmark_q2 (
  auction  BIGINT,
  price  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q2
SELECT auction, price FROM bid WHERE auction % 123 = 0;
