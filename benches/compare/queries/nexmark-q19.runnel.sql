-- input: nexmark
-- Nexmark q19, Runnel: the body of benches/nexmark/queries/q19.sql (see its
-- comment for how it differs from Flink's) over the exported events.
-- check: skip (updating output, which a filesystem JSON sink does not take in Flink)
${NEXMARK_DDL}

CREATE TABLE nexmark_q19 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR,
    rank_number  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q19
SELECT * FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10;
