-- Query 21: add channel id (not in the original suite). A channel id from
-- the channel name or, with a regular expression, from the url.
-- Differs from Flink's q21 in one spelling: Flink's
-- REGEXP_EXTRACT(url, re, 2) is DataFusion's regexp_match(url, re)[2]
-- (NULL without a match in both).
CREATE TABLE nexmark_q21 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    channel_id  VARCHAR
) WITH (
    'connector' = 'blackhole'
);

INSERT INTO nexmark_q21
SELECT
    auction, bidder, price, channel,
    CASE
        WHEN lower(channel) = 'apple' THEN '0'
        WHEN lower(channel) = 'google' THEN '1'
        WHEN lower(channel) = 'facebook' THEN '2'
        WHEN lower(channel) = 'baidu' THEN '3'
        ELSE regexp_match(url, '(&|^)channel_id=([^&]*)')[2]
        END
    AS channel_id FROM bid
    where regexp_match(url, '(&|^)channel_id=([^&]*)')[2] is not null or
          lower(channel) in ('apple', 'google', 'facebook', 'baidu');
