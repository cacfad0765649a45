-- The nexmark table and its three views, as Flink's nexmark suite declares
-- them (ddl_gen.sql + ddl_views.sql). `runnel bench nexmark` fills in
-- ${TPS} and ${EVENTS_NUM} and prepends this to every query.
--
-- One difference: the views name each nested field (`bid.price AS price`).
-- Flink names `bid.price` `price` by itself; DataFusion names it
-- `datagen.bid[price]`, so without the alias `SELECT price FROM bid` fails.
CREATE TABLE datagen (
    event_type INT,
    person ROW<
        id BIGINT,
        name VARCHAR,
        emailAddress VARCHAR,
        creditCard VARCHAR,
        city VARCHAR,
        state VARCHAR,
        dateTime TIMESTAMP(3),
        extra VARCHAR>,
    auction ROW<
        id BIGINT,
        itemName VARCHAR,
        description VARCHAR,
        initialBid BIGINT,
        reserve BIGINT,
        dateTime TIMESTAMP(3),
        expires TIMESTAMP(3),
        seller BIGINT,
        category BIGINT,
        extra VARCHAR>,
    bid ROW<
        auction BIGINT,
        bidder BIGINT,
        price BIGINT,
        channel VARCHAR,
        url VARCHAR,
        dateTime TIMESTAMP(3),
        extra VARCHAR>,
    dateTime AS
        CASE
            WHEN event_type = 0 THEN person.dateTime
            WHEN event_type = 1 THEN auction.dateTime
            ELSE bid.dateTime
        END,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'first-event.rate' = '${TPS}',
    'next-event.rate' = '${TPS}',
    'events.num' = '${EVENTS_NUM}',
    'person.proportion' = '1',
    'auction.proportion' = '3',
    'bid.proportion' = '46'
);

CREATE VIEW person AS
SELECT
    person.id AS id,
    person.name AS name,
    person.emailAddress AS emailAddress,
    person.creditCard AS creditCard,
    person.city AS city,
    person.state AS state,
    dateTime,
    person.extra AS extra
FROM datagen WHERE event_type = 0;

CREATE VIEW auction AS
SELECT
    auction.id AS id,
    auction.itemName AS itemName,
    auction.description AS description,
    auction.initialBid AS initialBid,
    auction.reserve AS reserve,
    dateTime,
    auction.expires AS expires,
    auction.seller AS seller,
    auction.category AS category,
    auction.extra AS extra
FROM datagen WHERE event_type = 1;

CREATE VIEW bid AS
SELECT
    bid.auction AS auction,
    bid.bidder AS bidder,
    bid.price AS price,
    bid.channel AS channel,
    bid.url AS url,
    dateTime,
    bid.extra AS extra
FROM datagen WHERE event_type = 2;
