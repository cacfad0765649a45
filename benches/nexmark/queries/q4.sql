-- Query 4: average price for a category. The average of the winning bid
-- prices of all auctions in each category. A regular join and unwindowed
-- GROUP BYs (updating): needs issue 5. Same as Flink's q4.
-- compare: changelog (updating output: each engine's changelog applied, the final tables compared)
CREATE TABLE nexmark_q4 (
  id BIGINT,
  final BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q4
SELECT
    Q.category,
    AVG(Q.final)
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category;
