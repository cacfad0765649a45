-- input: nexmark
-- Nexmark q2, Runnel: the body of benches/nexmark/queries/q2.sql (see its
-- comment for how it differs from Flink's) over the exported events.
${NEXMARK_DDL}

CREATE TABLE nexmark_q2 (
  auction  BIGINT,
  price  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q2
SELECT auction, price FROM bid WHERE auction % 123 = 0;
