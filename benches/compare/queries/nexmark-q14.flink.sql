-- Nexmark q14, Flink: Flink's q14 with HOUR(dateTime), but its count_char(extra, 'c') UDF
-- (a Java class in Flink's nexmark jar, which PyFlink does not ship) is
-- spelled as Runnel's: the length difference after removing every 'c'.
-- Blackhole sink when measuring (${SINK}).
${NEXMARK_DDL}

CREATE TABLE nexmark_q14 (
    auction BIGINT,
    bidder BIGINT,
    price  DECIMAL(23, 3),
    bidTimeType VARCHAR,
    dateTime TIMESTAMP(3),
    extra VARCHAR,
    c_counts BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q14
SELECT
    auction,
    bidder,
    0.908 * price as price,
    CASE
        WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
        WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime'
        ELSE 'otherTime'
    END AS bidTimeType,
    dateTime,
    extra,
    CHARACTER_LENGTH(extra) - CHARACTER_LENGTH(REPLACE(extra, 'c', '')) AS c_counts
FROM bid
WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000;
