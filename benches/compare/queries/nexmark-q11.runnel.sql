-- input: nexmark
-- Nexmark q11, Runnel: the body of benches/nexmark/queries/q11.sql (see its
-- comment for how it differs from Flink's) over the exported events.
${NEXMARK_DDL}

CREATE TABLE nexmark_q11 (
  bidder BIGINT,
  bid_count BIGINT,
  starttime TIMESTAMP(3),
  endtime TIMESTAMP(3)
) WITH (${SINK});

INSERT INTO nexmark_q11
SELECT
    bidder,
    count(*) as bid_count,
    SESSION_START(dateTime, INTERVAL '10' SECOND) as starttime,
    SESSION_END(dateTime, INTERVAL '10' SECOND) as endtime
FROM bid
GROUP BY bidder, SESSION(dateTime, INTERVAL '10' SECOND);
