-- Query 22: get URL directories (not in the original suite). The url's
-- first three directories.
-- Differs from Flink's q22 in one spelling: Flink's SPLIT_INDEX(url, '/', i)
-- (from 0) is split_part(url, '/', i + 1) (from 1). Nexmark urls always
-- have these parts, so the results are the same.
CREATE TABLE nexmark_q22 (
      auction  BIGINT,
      bidder  BIGINT,
      price  BIGINT,
      channel  VARCHAR,
      dir1  VARCHAR,
      dir2  VARCHAR,
      dir3  VARCHAR
) WITH (
    'connector' = 'blackhole'
);

INSERT INTO nexmark_q22
SELECT
    auction, bidder, price, channel,
    split_part(url, '/', 4) as dir1,
    split_part(url, '/', 5) as dir2,
    split_part(url, '/', 6) as dir3 FROM bid;
