-- Query 11: user sessions (not in the original suite). Bids per bidder per
-- session (10 s gap), with Flink's legacy SESSION group window.
-- Differs from Flink's q11 in one spelling: `FROM bid` without Flink's
-- alias B, as the planner wants the key beside SESSION(...) to be a plain
-- column and rejects `B.bidder` ("keys beside a SESSION group window must
-- be plain columns").
CREATE TABLE nexmark_q11 (
  bidder BIGINT,
  bid_count BIGINT,
  starttime TIMESTAMP(3),
  endtime TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q11
SELECT
    bidder,
    count(*) as bid_count,
    SESSION_START(dateTime, INTERVAL '10' SECOND) as starttime,
    SESSION_END(dateTime, INTERVAL '10' SECOND) as endtime
FROM bid
GROUP BY bidder, SESSION(dateTime, INTERVAL '10' SECOND);
