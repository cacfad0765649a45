-- input: nexmark
-- Nexmark q10, Runnel: the body of benches/nexmark/queries/q10.sql over the
-- exported events. Measured into ${SINK} like every pair, so its
-- PARTITIONED BY (a filesystem sink's) is left out here, as in the Flink file.
${NEXMARK_DDL}

CREATE TABLE nexmark_q10 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR,
  dt VARCHAR,
  hm VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q10
SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, '%Y-%m-%d'), DATE_FORMAT(dateTime, '%H:%M')
FROM bid;
