//! Arrow columns for a batch of nexmark events: `event_type` and the three
//! nested rows, of which each event fills one and leaves the others null.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBufferBuilder, Int32Array, Int64Builder, StringBuilder, StructArray,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

pub const PERSON: i32 = 0;
pub const AUCTION: i32 = 1;
pub const BID: i32 = 2;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn fields(columns: &[(&str, DataType)]) -> Fields {
    columns
        .iter()
        .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
        .collect()
}

pub fn person_fields() -> Fields {
    fields(&[
        ("id", DataType::Int64),
        ("name", DataType::Utf8),
        ("emailAddress", DataType::Utf8),
        ("creditCard", DataType::Utf8),
        ("city", DataType::Utf8),
        ("state", DataType::Utf8),
        ("dateTime", timestamp()),
        ("extra", DataType::Utf8),
    ])
}

pub fn auction_fields() -> Fields {
    fields(&[
        ("id", DataType::Int64),
        ("itemName", DataType::Utf8),
        ("description", DataType::Utf8),
        ("initialBid", DataType::Int64),
        ("reserve", DataType::Int64),
        ("dateTime", timestamp()),
        ("expires", timestamp()),
        ("seller", DataType::Int64),
        ("category", DataType::Int64),
        ("extra", DataType::Utf8),
    ])
}

pub fn bid_fields() -> Fields {
    fields(&[
        ("auction", DataType::Int64),
        ("bidder", DataType::Int64),
        ("price", DataType::Int64),
        ("channel", DataType::Utf8),
        ("url", DataType::Utf8),
        ("dateTime", timestamp()),
        ("extra", DataType::Utf8),
    ])
}

/// The physical columns of Flink's nexmark table, as Runnel's DDL types them
/// (every column and nested field nullable).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_type", DataType::Int32, true),
        Field::new("person", DataType::Struct(person_fields()), true),
        Field::new("auction", DataType::Struct(auction_fields()), true),
        Field::new("bid", DataType::Struct(bid_fields()), true),
    ]))
}

pub struct PersonColumns {
    valid: BooleanBufferBuilder,
    pub id: Int64Builder,
    pub name: StringBuilder,
    pub email_address: StringBuilder,
    pub credit_card: StringBuilder,
    pub city: StringBuilder,
    pub state: StringBuilder,
    pub date_time: TimestampMillisecondBuilder,
    pub extra: StringBuilder,
}

pub struct AuctionColumns {
    valid: BooleanBufferBuilder,
    pub id: Int64Builder,
    pub item_name: StringBuilder,
    pub description: StringBuilder,
    pub initial_bid: Int64Builder,
    pub reserve: Int64Builder,
    pub date_time: TimestampMillisecondBuilder,
    pub expires: TimestampMillisecondBuilder,
    pub seller: Int64Builder,
    pub category: Int64Builder,
    pub extra: StringBuilder,
}

pub struct BidColumns {
    valid: BooleanBufferBuilder,
    pub auction: Int64Builder,
    pub bidder: Int64Builder,
    pub price: Int64Builder,
    pub channel: StringBuilder,
    pub url: StringBuilder,
    pub date_time: TimestampMillisecondBuilder,
    pub extra: StringBuilder,
}

fn strings(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, bytes)
}

impl PersonColumns {
    fn new(rows: usize) -> Self {
        PersonColumns {
            valid: BooleanBufferBuilder::new(rows),
            id: Int64Builder::with_capacity(rows),
            name: strings(rows, rows / 32 * 16),
            email_address: strings(rows, rows / 32 * 16),
            credit_card: strings(rows, rows / 32 * 20),
            city: strings(rows, rows / 32 * 12),
            state: strings(rows, rows / 32 * 2),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, rows / 32 * 200),
        }
    }

    /// Marks the row valid; the caller appends every field.
    fn begin(&mut self) {
        self.valid.append(true);
    }

    fn append_null(&mut self) {
        self.valid.append(false);
        self.id.append_null();
        self.name.append_null();
        self.email_address.append_null();
        self.credit_card.append_null();
        self.city.append_null();
        self.state.append_null();
        self.date_time.append_null();
        self.extra.append_null();
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.email_address.finish()),
            Arc::new(self.credit_card.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ];
        let nulls = NullBuffer::new(self.valid.finish());
        StructArray::try_new(person_fields(), columns, Some(nulls))
    }
}

impl AuctionColumns {
    fn new(rows: usize) -> Self {
        AuctionColumns {
            valid: BooleanBufferBuilder::new(rows),
            id: Int64Builder::with_capacity(rows),
            item_name: strings(rows, rows / 16 * 12),
            description: strings(rows, rows / 16 * 50),
            initial_bid: Int64Builder::with_capacity(rows),
            reserve: Int64Builder::with_capacity(rows),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            expires: TimestampMillisecondBuilder::with_capacity(rows),
            seller: Int64Builder::with_capacity(rows),
            category: Int64Builder::with_capacity(rows),
            extra: strings(rows, rows / 16 * 450),
        }
    }

    fn begin(&mut self) {
        self.valid.append(true);
    }

    fn append_null(&mut self) {
        self.valid.append(false);
        self.id.append_null();
        self.item_name.append_null();
        self.description.append_null();
        self.initial_bid.append_null();
        self.reserve.append_null();
        self.date_time.append_null();
        self.expires.append_null();
        self.seller.append_null();
        self.category.append_null();
        self.extra.append_null();
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.item_name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.initial_bid.finish()),
            Arc::new(self.reserve.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.expires.finish()),
            Arc::new(self.seller.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.extra.finish()),
        ];
        let nulls = NullBuffer::new(self.valid.finish());
        StructArray::try_new(auction_fields(), columns, Some(nulls))
    }
}

impl BidColumns {
    fn new(rows: usize) -> Self {
        BidColumns {
            valid: BooleanBufferBuilder::new(rows),
            auction: Int64Builder::with_capacity(rows),
            bidder: Int64Builder::with_capacity(rows),
            price: Int64Builder::with_capacity(rows),
            channel: strings(rows, rows * 8),
            url: strings(rows, rows * 60),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, rows * 75),
        }
    }

    fn begin(&mut self) {
        self.valid.append(true);
    }

    fn append_null(&mut self) {
        self.valid.append(false);
        self.auction.append_null();
        self.bidder.append_null();
        self.price.append_null();
        self.channel.append_null();
        self.url.append_null();
        self.date_time.append_null();
        self.extra.append_null();
    }

    fn finish(&mut self) -> Result<StructArray, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.auction.finish()),
            Arc::new(self.bidder.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ];
        let nulls = NullBuffer::new(self.valid.finish());
        StructArray::try_new(bid_fields(), columns, Some(nulls))
    }
}

/// One batch under construction. An event is written by `person()`,
/// `auction()` or `bid()`, which null the other two rows and hand back the
/// columns to fill; the caller must then append exactly one value to each.
pub struct EventBatchBuilder {
    event_type: Vec<i32>,
    person: PersonColumns,
    auction: AuctionColumns,
    bid: BidColumns,
}

impl EventBatchBuilder {
    pub fn new(rows: usize) -> Self {
        EventBatchBuilder {
            event_type: Vec::with_capacity(rows),
            person: PersonColumns::new(rows),
            auction: AuctionColumns::new(rows),
            bid: BidColumns::new(rows),
        }
    }

    pub fn person(&mut self) -> &mut PersonColumns {
        self.event_type.push(PERSON);
        self.auction.append_null();
        self.bid.append_null();
        self.person.begin();
        &mut self.person
    }

    pub fn auction(&mut self) -> &mut AuctionColumns {
        self.event_type.push(AUCTION);
        self.person.append_null();
        self.bid.append_null();
        self.auction.begin();
        &mut self.auction
    }

    pub fn bid(&mut self) -> &mut BidColumns {
        self.event_type.push(BID);
        self.person.append_null();
        self.auction.append_null();
        self.bid.begin();
        &mut self.bid
    }

    /// The batch, with `schema` (the table's own, equal to [`schema()`]).
    pub fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {
        let event_type = Int32Array::from(std::mem::take(&mut self.event_type));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(event_type),
                Arc::new(self.person.finish()?),
                Arc::new(self.auction.finish()?),
                Arc::new(self.bid.finish()?),
            ],
        )
    }
}
