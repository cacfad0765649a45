-- Query 5: hot items. Which auctions have seen the most bids in the last
-- period? Sliding windows of 10 s every 2 s, each window's counts joined
-- with that window's maximum count (a window join).
-- Differs from Flink's q5 in names only, as q8: the window columns keep
-- their names (Flink renames them starttime and endtime) so that the join
-- is seen as a window join (of two window aggregations: MaxBids' GROUP BY
-- of CountBids' window_start, window_end is one too), append-only as in
-- Flink.
CREATE TABLE nexmark_q5 (
  auction  BIGINT,
  num  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q5
SELECT AuctionBids.auction, AuctionBids.num
 FROM (
   SELECT
     auction,
     count(*) AS num,
     window_start,
     window_end
     FROM TABLE(
             HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
 ) AS AuctionBids
 JOIN (
   SELECT
     max(CountBids.num) AS maxn,
     CountBids.window_start,
     CountBids.window_end
   FROM (
     SELECT
       count(*) AS num,
       window_start,
       window_end
     FROM TABLE(
                HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
     ) AS CountBids
   GROUP BY CountBids.window_start, CountBids.window_end
 ) AS MaxBids
 ON AuctionBids.window_start = MaxBids.window_start AND
    AuctionBids.window_end = MaxBids.window_end AND
    AuctionBids.num >= MaxBids.maxn;
