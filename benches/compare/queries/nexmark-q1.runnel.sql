-- input: nexmark
-- Nexmark q1, Runnel: the body of benches/nexmark/queries/q1.sql (see its
-- comment for how it differs from Flink's) over the exported events.
${NEXMARK_DDL}

CREATE TABLE nexmark_q1 (
  auction  BIGINT,
  bidder  BIGINT,
  price  DECIMAL(23, 3),
  dateTime  TIMESTAMP(3),
  extra  VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q1
SELECT
    auction,
    bidder,
    0.908 * price as price, -- convert dollar to euro
    dateTime,
    extra
FROM bid;
