-- Nexmark q2, Flink: Flink's MOD(auction, 123) where Runnel writes auction % 123.
-- Blackhole sink when measuring (${SINK}).
${NEXMARK_DDL}

CREATE TABLE nexmark_q2 (
  auction  BIGINT,
  price  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q2
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
