-- input: nexmark
-- Nexmark q18, Runnel: the body of benches/nexmark/queries/q18.sql (see its
-- comment for how it differs from Flink's) over the exported events.
-- check: skip (updating output, which a filesystem JSON sink does not take in Flink)
${NEXMARK_DDL}

CREATE TABLE nexmark_q18 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q18
SELECT auction, bidder, price, channel, url, dateTime, extra
 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number
       FROM bid)
 WHERE rank_number <= 1;
