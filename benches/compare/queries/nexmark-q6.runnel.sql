-- input: nexmark
-- Nexmark q6, Runnel: the body of benches/nexmark/queries/q6.sql (see its
-- comment for how it differs from Flink's q6, which Flink does not run) over
-- the exported events.
-- check: skip (updating output, which a filesystem JSON sink does not take in Flink)
${NEXMARK_DDL}

CREATE TABLE nexmark_q6 (
  seller BIGINT,
  avg_price  BIGINT
) WITH (${SINK});

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
