-- Query 6: average selling price by seller, over each seller's last 10
-- auctions. Flink's own q6 does not run in Flink (its OVER window cannot
-- consume the updates of the top-1 below it, and it selects B.dateTime,
-- which is not in its GROUP BY), so this is a rewrite with the same meaning
-- that Runnel (and Flink) run:
--   - an auction's final price is MAX(bid price) over the bids within its
--     lifetime (a GROUP BY over the join, as q4 does), not a top-1 per
--     auction, so the auction's own dateTime can be kept beside it;
--   - "last 10 auctions" is a top-10 per seller by the auction's dateTime
--     (ROW_NUMBER ... <= 10) instead of Flink's OVER ROWS window, which
--     needs an append-only input; ties on dateTime (many auctions share a
--     millisecond at high event rates) are broken by the auction id, which
--     grows with event time, so the 10 are the same in every engine;
--   - then AVG per seller, an updating GROUP BY.
-- As in Flink's, an auction counts once it has a bid (closed or not), and
-- the sink's seller is BIGINT (Flink's q6 declares VARCHAR for a BIGINT).
-- compare: changelog (updating output: each engine's changelog applied, the final tables compared)
CREATE TABLE nexmark_q6 (
  seller BIGINT,
  avg_price  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q6
SELECT
    seller,
    AVG(final) AS avg_price
FROM (
    SELECT seller, final,
        ROW_NUMBER() OVER (PARTITION BY seller ORDER BY dateTime DESC, id DESC) AS rownum
    FROM (
        SELECT A.id, A.seller, A.dateTime, MAX(B.price) AS final
        FROM auction AS A, bid AS B
        WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
        GROUP BY A.id, A.seller, A.dateTime
    )
)
WHERE rownum <= 10
GROUP BY seller;
