-- Nexmark q10, Flink: Flink's DATE_FORMAT patterns 'yyyy-MM-dd', 'HH:mm'
-- (Runnel: '%Y-%m-%d', '%H:%M'); no PARTITIONED BY (see the Runnel file).
-- Blackhole sink when measuring (${SINK}).
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
SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm')
FROM bid;
